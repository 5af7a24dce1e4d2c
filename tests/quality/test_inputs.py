"""quality.inputs: discovering input files and planning the chunks they are read in."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from infra.errors import InputError
from quality import lines as lines_module
from quality.inputs import discover, plan_chunks
from quality.readers import read_all, read_chunk


def alpaca(i: int, **extra: object) -> dict:
    return {"instruction": f"Task {i}: say {i}.", "output": f"{i}", **extra}


def jsonl(*objs: object) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


# --- chunk planning ------------------------------------------------------------------------


@pytest.fixture
def mixed_jsonl(tmp_path: Path) -> Path:
    """Lines of varied length, blank lines, a bad line and CRLF endings."""
    parts = []
    for i in range(40):
        parts.append(json.dumps(alpaca(i, pad="z" * (i * 7 % 50))).encode())
        parts.append(b"\r\n" if i % 5 == 0 else b"\n")
        if i % 9 == 0:
            parts.append(b"\n")  # a blank line: counted, not a row
        if i == 20:
            parts.append(b"{not json\n")
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"".join(parts))
    return path


@pytest.mark.parametrize("chunk_bytes", [1, 13, 64, 500])
def test_split_jsonl_reads_the_same_rows_as_one_chunk(mixed_jsonl: Path, chunk_bytes: int) -> None:
    whole = plan_chunks([str(mixed_jsonl)], chunk_bytes=10**9)
    assert len(whole) == 1
    expected = [row for chunk in whole for row in read_chunk(chunk)]
    chunks = plan_chunks([str(mixed_jsonl)], chunk_bytes=chunk_bytes)
    assert len(chunks) > 1
    assert chunks[0]["start"] == 0 and chunks[-1]["end"] == mixed_jsonl.stat().st_size
    assert all(a["end"] == b["start"] for a, b in zip(chunks, chunks[1:], strict=False))
    split = [row for chunk in chunks for row in read_chunk(chunk)]
    assert split == expected  # same rows, same order: every line once, none twice
    assert len(expected) == 41
    assert sum(r["reason"] == "invalid_json" for r in expected) == 1


def test_split_sources_are_physical_line_numbers(
    mixed_jsonl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # newline counts and line skips both cross block boundaries
    monkeypatch.setattr(lines_module, "BLOCK", 7)
    lines = mixed_jsonl.read_bytes().split(b"\n")
    for row in read_all([str(mixed_jsonl)], chunk_bytes=29):
        line_no = int(row["source"].rsplit(":", 1)[1])
        text = lines[line_no - 1].rstrip(b"\r").decode()
        if row["status"] == "active":
            assert json.loads(text)["output"] == row["response"]
        else:
            assert text == row["raw"] == "{not json"


def test_first_line_counts_newlines_before_the_chunk(tmp_path: Path) -> None:
    path = tmp_path / "lines.jsonl"
    path.write_bytes(b"aaaa\nbbbb\ncccc\n")  # lines start at bytes 0, 5, 10
    chunks = plan_chunks([str(path)], chunk_bytes=5)
    assert [(c["start"], c["end"], c["first_line"]) for c in chunks] == [
        (0, 5, 1),
        (5, 10, 2),
        (10, 15, 3),
    ]
    chunks = plan_chunks([str(path)], chunk_bytes=4)
    # [4, 8) owns line 2 (starts at 5); [8, 12) owns line 3 (starts at 10); [12, 15) owns none
    assert [c["first_line"] for c in chunks] == [1, 2, 3, 4]


def test_other_formats_are_one_chunk_per_file(tmp_path: Path) -> None:
    paths = {}
    for name, data in [
        ("a.jsonl.gz", gzip.compress(jsonl(alpaca(1)) * 50)),
        ("b.json", json.dumps([alpaca(1)] * 50).encode()),
        ("c.csv", b"instruction,output\n" + b"q,a\n" * 50),
    ]:
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    chunks = plan_chunks([str(p) for p in paths.values()], chunk_bytes=16)
    assert [c["kind"] for c in chunks] == ["jsonl", "json", "csv"]


# --- discovery and user errors -------------------------------------------------------------


def test_discover_directory_recursive_sorted(tmp_path: Path) -> None:
    for rel in ["b/z.jsonl", "b/a.parquet", "a.csv", "notes.txt", ".hidden/x.jsonl", "c/d.json.gz"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    extra = tmp_path / "a.csv"
    found = discover([str(tmp_path), str(extra)])
    assert found == [
        str(tmp_path / p) for p in ["a.csv", "b/a.parquet", "b/z.jsonl", "c/d.json.gz"]
    ]


def test_missing_path_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(InputError, match="nope.jsonl.*does not exist"):
        discover([str(missing)])


def test_unknown_extension_names_path_and_formats(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"")
    with pytest.raises(InputError, match=r"data\.xlsx.*\.jsonl.*\.parquet"):
        discover([str(path)])


def test_directory_without_supported_files(tmp_path: Path) -> None:
    (tmp_path / "readme.md").write_text("hi")
    with pytest.raises(InputError, match=str(tmp_path)):
        discover([str(tmp_path)])
