"""quality.inputs and readers over URIs: the same rows, reasons and line numbers as local paths.

file:// goes through pyarrow's filesystem layer (as s3:// and gs:// do); memory:// goes
through fsspec wrapped in a pyarrow PyFileSystem. No network is used.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from infra import storage
from infra.errors import InputError
from quality.inputs import discover, file_kind, plan_chunks
from quality.readers import read_all, read_chunk

fsspec = pytest.importorskip("fsspec")


def alpaca(i: int) -> dict:
    return {"instruction": f"Task {i}: say {i}.", "output": f"{i}"}


def jsonl(*objs: object) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


# One file per reader kind; each holds a planted bad row whose source must survive.
FILES = {
    "a.jsonl": jsonl(*(alpaca(i) for i in range(40))) + b"{broken\n" + jsonl(alpaca(99)),
    "b/c.jsonl.gz": gzip.compress(jsonl(alpaca(1)) + b"[1]\n"),
    "b/d.json": json.dumps({"data": [alpaca(2), {"question": "q"}]}).encode(),
    "e.csv": b"instruction,output\nq1,a1\nq2,\n",
    ".hidden/skip.jsonl": jsonl(alpaca(3)),
    "_SUCCESS": b"",
    "notes.txt": b"not data",
}


def write_tree(put) -> None:
    for name, data in FILES.items():
        put(name, data)
    table = pa.table({"instruction": [f"p{i}" for i in range(6)], "output": ["x"] * 6})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=2)
    put("f.parquet", sink.getvalue().to_pybytes())


@pytest.fixture
def local_tree(tmp_path: Path) -> Path:
    def put(name: str, data: bytes) -> None:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)

    write_tree(put)
    return tmp_path


@pytest.fixture
def memory_tree() -> Iterator[str]:
    root = f"/readers-{uuid.uuid4().hex[:8]}"
    memory = fsspec.filesystem("memory")
    write_tree(lambda name, data: memory.pipe(f"{root}/{name}", data))
    yield f"memory://{root}"
    memory.rm(root, recursive=True)


def fates(rows: list, prefix: str) -> list[tuple[str, str, str | None]]:
    """(source without the directory prefix, status, reason) of every row."""
    assert all(r["source"].startswith(prefix) for r in rows)
    return [(r["source"][len(prefix) :], r["status"], r["reason"]) for r in rows]


@pytest.mark.parametrize("chunk_bytes", [64, 10**6])
def test_file_uri_reads_the_same_rows_as_the_local_path(local_tree: Path, chunk_bytes: int) -> None:
    uri = f"file://{local_tree}"
    local = list(read_all([str(local_tree)], chunk_bytes=chunk_bytes))
    remote = list(read_all([uri], chunk_bytes=chunk_bytes))
    assert fates(remote, uri) == fates(local, str(local_tree))
    assert len(remote) == 42 + 2 + 2 + 2 + 6  # every input row, bad ones included
    assert [r["prompt"] for r in remote] == [r["prompt"] for r in local]
    bad = {r["source"]: r["reason"] for r in remote if r["status"] == "quarantined"}
    assert bad == {
        f"{uri}/a.jsonl:41": "invalid_json",
        f"{uri}/b/c.jsonl.gz:2": "wrong_type",
        f"{uri}/b/d.json#1": "unknown_schema",
        f"{uri}/e.csv:3": "empty_field",
    }


def test_memory_uri_discovers_skips_hidden_and_splits_chunks(memory_tree: str) -> None:
    files = discover([memory_tree, f"{memory_tree}/a.jsonl"])
    names = ["a.jsonl", "b/c.jsonl.gz", "b/d.json", "e.csv", "f.parquet"]
    assert files == [f"{memory_tree}/{n}" for n in names]
    chunks = plan_chunks(files, chunk_bytes=64)
    assert sum(c["path"].endswith("a.jsonl") for c in chunks) > 1
    assert sum(c["path"].endswith("f.parquet") for c in chunks) == 3  # one per row group
    rows = [r for c in chunks for r in read_chunk(c)]
    assert len(rows) == 54
    assert f"{memory_tree}/f.parquet#5" in {r["source"] for r in rows}


def test_missing_and_unsupported_uris_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"file://.*nope\.jsonl does not exist"):
        discover([f"file://{tmp_path}/nope.jsonl"])
    (tmp_path / "data.xlsx").write_bytes(b"")
    with pytest.raises(InputError, match=r"data\.xlsx.*unsupported extension"):
        discover([f"file://{tmp_path}/data.xlsx"])
    (tmp_path / "readme.md").write_text("hi")
    with pytest.raises(InputError, match="holds no supported input files"):
        discover([f"file://{tmp_path}"])


def test_a_uri_file_deleted_after_planning_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "gone.jsonl"
    path.write_bytes(jsonl(alpaca(1)))
    (chunk,) = plan_chunks(discover([f"file://{path}"]), chunk_bytes=1000)
    path.unlink()
    with pytest.raises(InputError, match="cannot read file://.*gone.jsonl"):
        list(read_chunk(chunk))


def test_query_options_do_not_hide_the_extension(tmp_path: Path) -> None:
    # s3://bucket/x.jsonl?region=... must still read as JSONL; file:// ignores no query,
    # so check the naming rule on its own.
    assert file_kind("s3://bucket/x.tsv.gz?region=eu-west-1") == "csv"
    assert file_kind("gs://bucket/x.parquet") == "parquet"
    assert storage.name_of("s3://bucket/x.jsonl?region=r").endswith(".jsonl")
