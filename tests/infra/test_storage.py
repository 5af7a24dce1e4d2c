"""infra.storage: local paths and URIs through one set of helpers, without the network.

s3:// and gs:// are only routed (their filesystems are built, never contacted); reading and
writing is exercised over file:// and an fsspec in-memory filesystem.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from infra import storage
from infra.errors import InputError

fsspec = pytest.importorskip("fsspec")


@pytest.fixture
def memory_dir() -> Iterator[str]:
    """A fresh memory:// directory (the in-memory filesystem is shared by the process)."""
    root = f"/finesift-{uuid.uuid4().hex[:8]}"
    yield f"memory://{root}"
    memory = fsspec.filesystem("memory")
    if memory.exists(root):
        memory.rm(root, recursive=True)


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        ("s3://bucket/key.jsonl", True),
        ("gs://bucket/dir/", True),
        ("file:///tmp/x.jsonl", True),
        ("memory://x", True),
        ("runs/curate", False),
        ("/abs/data=2024/x.jsonl", False),
        ("C://not/a/scheme", False),
    ],
)
def test_is_uri(path: str, uri: bool) -> None:
    assert storage.is_uri(path) is uri


def test_s3_and_gs_are_routed_to_pyarrow_filesystems_offline() -> None:
    # With the region given, pyarrow builds the S3 filesystem without a HeadBucket call.
    fs, inner = storage.resolve("s3://bucket/dir/a.jsonl?region=eu-west-1")
    assert isinstance(fs, pafs.S3FileSystem) and inner == "bucket/dir/a.jsonl"
    assert fs.region == "eu-west-1"
    fs, inner = storage.resolve("gs://bucket/dir/a.jsonl")
    assert isinstance(fs, pafs.GcsFileSystem) and inner == "bucket/dir/a.jsonl"


def test_unknown_scheme_is_an_input_error_naming_it() -> None:
    with pytest.raises(InputError, match=r"nosuchfs://.*s3://, gs://"):
        storage.resolve("nosuchfs://bucket/a.jsonl")


def test_names_joins_and_parents_keep_the_query() -> None:
    uri = "s3://bucket/runs?region=eu-west-1"
    assert storage.join(uri, "out", "selected.jsonl") == (
        "s3://bucket/runs/out/selected.jsonl?region=eu-west-1"
    )
    assert storage.parent(storage.join(uri, "a.jsonl")) == uri
    assert storage.name_of("s3://bucket/x.JSONL.gz?region=r") == "/x.JSONL.gz"
    assert storage.join("runs", "a.jsonl") == str(Path("runs", "a.jsonl"))
    assert storage.parent("selected.jsonl") == "."


def test_file_uri_round_trip(tmp_path: Path) -> None:
    out = f"file://{tmp_path}/new/dir"
    storage.make_dirs(out)
    assert (tmp_path / "new" / "dir").is_dir()
    storage.write_text(storage.join(out, "a.txt"), "héllo\nworld\n")
    assert (tmp_path / "new" / "dir" / "a.txt").read_text(encoding="utf-8") == "héllo\nworld\n"
    assert storage.kind_of(out) == "dir"
    assert storage.kind_of(storage.join(out, "a.txt")) == "file"
    assert storage.kind_of(storage.join(out, "missing.txt")) is None
    assert storage.file_size(storage.join(out, "a.txt")) == len("héllo\nworld\n".encode())


def test_memory_filesystem_through_fsspec(memory_dir: str, tmp_path: Path) -> None:
    storage.write_text(f"{memory_dir}/sub/b.jsonl", "{}\n")
    storage.write_text(f"{memory_dir}/a.jsonl", "line 1\nline 2\n")
    assert storage.list_files(memory_dir) == [
        ("a.jsonl", f"{memory_dir}/a.jsonl"),
        ("sub/b.jsonl", f"{memory_dir}/sub/b.jsonl"),
    ]
    with storage.open_input(f"{memory_dir}/a.jsonl") as f:
        f.seek(3)
        assert f.readline() == b"e 1\n"  # seekable and line-buffered, as the readers need
    local = tmp_path / "copy.jsonl"
    storage.copy_file(f"{memory_dir}/a.jsonl", str(local))
    storage.copy_file(str(local), f"{memory_dir}/back.jsonl")
    assert storage.read_text(f"{memory_dir}/back.jsonl") == "line 1\nline 2\n"


def test_missing_uri_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        storage.open_input(f"file://{tmp_path}/nope.jsonl")


def test_write_errors_name_the_uri_and_the_fix(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("a regular file, where a directory should be\n")
    out = (blocker / "out").as_uri()  # file:///.../afile/out
    for write in (
        lambda: storage.make_dirs(out),
        lambda: storage.open_output(storage.join(out, "ledger.parquet")),
        lambda: storage.write_text(storage.join(out, "summary.json"), "{}"),
        lambda: storage.make_dirs(str(blocker / "out")),  # a local path too
    ):
        with pytest.raises(InputError, match=r"afile/out.*not a file.*credentials"):
            write()


def test_published_dir_replaces_the_target_whole_or_not_at_all(tmp_path):
    import pytest

    from infra.storage import published_dir

    target = tmp_path / "models" / "m"
    with published_dir(target) as tmp:
        (tmp / "weights").write_text("v1")
    assert (target / "weights").read_text() == "v1"
    assert oct((target / "weights").stat().st_mode & 0o777) == oct(0o644)  # shared cache

    with pytest.raises(RuntimeError, match="half written"), published_dir(target) as tmp:
        (tmp / "weights").write_text("v2")
        raise RuntimeError("half written")
    assert (target / "weights").read_text() == "v1"  # the old one stays

    with published_dir(target) as tmp:
        (tmp / "weights").write_text("v2")
    assert (target / "weights").read_text() == "v2"
    assert sorted(p.name for p in target.parent.iterdir()) == ["m"]  # no temp or stale left
