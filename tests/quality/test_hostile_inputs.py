"""Issue 20's hostile inputs at the reader (no Ray): each one ends as rows with reasons, or
as a one-line InputError naming the file and the fix, never as a crash later on."""

from __future__ import annotations

import builtins
import gzip
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from infra.errors import InputError
from quality.inputs import discover, plan_chunks
from quality.readers import read_all
from quality.schema import ROW_SCHEMA, Row

DEEP = "[" * 5000 + "]" * 5000  # 10 kB: far under max_record_bytes, far over any parser


def alpaca(i: int, **extra: object) -> dict:
    return {"instruction": f"Task {i}: say {i}.", "output": f"{i}", **extra}


def jsonl(*objs: object) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


def read(path: Path, **kwargs) -> list[Row]:
    rows = list(read_all([str(path)], **kwargs))
    # What the read stage does next: a block of rows in the row schema. Text that is not
    # UTF-8 (lone surrogates) fails exactly here, inside a Ray worker.
    pa.Table.from_pylist(rows, schema=ROW_SCHEMA)
    return rows


def fates(rows: list[Row]) -> list[tuple[str, str, str | None]]:
    return [(r["source"].rsplit("/", 1)[1], r["status"], r["reason"]) for r in rows]


# --- lone surrogates in id and timestamp ---------------------------------------------------


@pytest.mark.parametrize("field", ["id", "timestamp"])
def test_a_lone_surrogate_in_id_or_timestamp_is_quarantined(tmp_path: Path, field: str) -> None:
    path = tmp_path / "a.jsonl"
    bad = json.dumps(alpaca(2)).replace("{", '{"' + field + '": "x\\ud800y", ', 1)
    path.write_text(json.dumps(alpaca(1)) + "\n" + bad + "\n")
    rows = read(path)
    assert fates(rows) == [
        ("a.jsonl:1", "active", None),
        ("a.jsonl:2", "quarantined", "invalid_utf8"),
    ]
    assert f"field {field!r}" in rows[1]["detail"] and "surrogate" in rows[1]["detail"]


# --- nesting deeper than the parser ------------------------------------------------------


def test_deep_nesting_in_jsonl_is_quarantined_as_too_deep(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(
        json.dumps(alpaca(1)) + "\n" + '{"instruction": "x", "output": "y", "n": ' + DEEP + "}\n"
    )
    rows = read(path)
    assert fates(rows) == [("a.jsonl:1", "active", None), ("a.jsonl:2", "quarantined", "too_deep")]
    assert rows[1]["raw"].endswith("]]]}")


def test_deep_nesting_in_a_json_array_loses_only_that_element(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text("[" + json.dumps(alpaca(0)) + ", " + DEEP + ", " + json.dumps(alpaca(2)) + "]")
    assert fates(read(path)) == [
        ("a.json#0", "active", None),
        ("a.json#1", "quarantined", "too_deep"),
        ("a.json#2", "active", None),
    ]


def test_nesting_over_the_limit_that_still_parses_is_quarantined_too(tmp_path: Path) -> None:
    # 200 levels parse in Python, but a record's depth must not depend on the stack left.
    path = tmp_path / "a.json"
    path.write_text(json.dumps([alpaca(0, n=json.loads("[" * 200 + "]" * 200))]))
    assert fates(read(path)) == [("a.json#0", "quarantined", "too_deep")]


def test_deep_nesting_in_a_csv_messages_cell_is_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    chat = json.dumps(
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "an answer"}]
    )
    path.write_text('messages\n"' + chat.replace('"', '""') + '"\n"' + DEEP + '"\n')
    rows = read(path)
    assert fates(rows) == [("a.csv:2", "active", None), ("a.csv:3", "quarantined", "too_deep")]
    assert "column 'messages'" in rows[1]["detail"]


def test_an_integer_too_long_for_python_is_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"instruction": "x", "output": "y", "n": ' + "9" * 5000 + "}\n")
    assert fates(read(path)) == [("a.jsonl:1", "quarantined", "invalid_json")]


# --- inputs with zero records ------------------------------------------------------------


@pytest.mark.parametrize(
    "name, data",
    [
        ("empty.jsonl", b""),
        ("blank.jsonl", b"  \n\n\t\r\n"),
        ("header.csv", b"instruction,output\n"),
        ("empty.json", b""),
        ("blank.json", b" \n "),
        ("array.json", b"[]"),
        ("empty.jsonl.gz", gzip.compress(b"")),
    ],
)
def test_an_input_with_no_records_reads_as_no_rows(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    assert read(path) == []


def test_a_parquet_file_with_no_rows_reads_as_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "none.parquet"
    pq.write_table(pa.table({"instruction": pa.array([], pa.string())}), path)
    assert read(path) == []


# --- file names and permissions -----------------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_refused_naming_it(tmp_path: Path) -> None:
    folder = os.fsencode(tmp_path)
    with open(os.path.join(folder, b"caf\xe9.jsonl"), "wb") as f:
        f.write(jsonl(alpaca(1)))
    with pytest.raises(InputError) as err:
        discover([str(tmp_path)])
    message = str(err.value)
    assert "caf\\xe9.jsonl" in message and "not valid UTF-8" in message and "rename" in message
    assert "\n" not in message


def _deny(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    """Opening ``denied`` fails as it would without read permission (tests may run as root,
    which chmod does not stop)."""
    real_open = builtins.open

    def fake_open(file, *args, **kwargs):
        if str(file) == str(denied):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)


def test_an_unreadable_file_is_refused_when_chunks_are_planned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, locked = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    good.write_bytes(jsonl(alpaca(1)))
    locked.write_bytes(jsonl(alpaca(2)))
    _deny(monkeypatch, locked)
    with pytest.raises(InputError) as err:
        plan_chunks(discover([str(tmp_path)]), chunk_bytes=1 << 20)
    message = str(err.value)
    assert str(locked) in message and "Permission denied" in message and "read access" in message


def test_an_unreadable_file_really_without_permission(tmp_path: Path) -> None:
    locked = tmp_path / "b.jsonl"
    locked.write_bytes(jsonl(alpaca(2)))
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as root: chmod does not stop this user reading the file")
        with pytest.raises(InputError, match="read access"):
            plan_chunks(discover([str(tmp_path)]), chunk_bytes=1 << 20)
    finally:
        locked.chmod(0o644)


def test_an_unlistable_directory_is_refused_not_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.jsonl").write_bytes(jsonl(alpaca(1)))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.jsonl").write_bytes(jsonl(alpaca(2)))
    real_scandir = os.scandir

    def scandir(path="."):
        if str(path) == str(tmp_path / "sub"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(InputError, match=r"cannot list input directory .*sub: Permission denied"):
        discover([str(tmp_path)])


# --- damaged compression ------------------------------------------------------------------


@pytest.mark.parametrize("offset", [0.3, 0.5, 0.9])
def test_a_corrupt_gzip_is_quarantined_line_by_line(tmp_path: Path, offset: float) -> None:
    # A damaged deflate block decodes into garbage until the checksum fails at the end, so
    # no line of the file can be trusted: each one is quarantined where it stands.
    path = tmp_path / "a.jsonl.gz"
    packed = bytearray(gzip.compress(jsonl(*[alpaca(i) for i in range(3000)]), mtime=0))
    at = int(len(packed) * offset)
    packed[at : at + 64] = b"\xff" * 64
    path.write_bytes(bytes(packed))
    rows = read(path)
    assert {(r["status"], r["reason"]) for r in rows} == {("quarantined", "unreadable")}
    numbers = [int(r["source"].rsplit(":", 1)[1]) for r in rows]
    assert numbers == sorted(set(numbers)) and len(rows) > 1000
    assert "gzip check" in rows[0]["detail"] and "Re-export" in rows[0]["detail"]
    assert rows[0]["raw"] == json.dumps(alpaca(0))  # the text before the damage, kept


def test_a_file_named_gz_that_is_not_gzip_is_one_unreadable_row(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(jsonl(alpaca(1)))
    (row,) = read(path)
    assert (row["source"], row["reason"]) == (f"{path}:1", "unreadable")
    assert "Not a gzipped file" in row["detail"]


@pytest.mark.parametrize("name", ["a.json.gz", "a.csv.gz"])
def test_truncated_gzip_json_and_csv_are_quarantined_line_by_line(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    if name.endswith(".json.gz"):
        text = "\n".join(json.dumps([alpaca(i) for i in range(2000)], indent=1).splitlines())
    else:
        text = "instruction,output\n" + "".join(f"q {i},a {i}\n" for i in range(4000))
    path.write_bytes(gzip.compress(text.encode())[:-100])
    rows = read(path)
    assert {r["reason"] for r in rows} == {"unreadable"} and len(rows) > 1000
    assert rows[0]["source"] == f"{path}:1"


def test_a_damaged_parquet_row_group_is_quarantined_row_by_row(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    table = pa.table(
        {"instruction": [f"q{i}" for i in range(6)], "output": [f"a{i}" for i in range(6)]}
    )
    pq.write_table(table, path, row_group_size=3, compression="none", use_dictionary=False)
    group = pq.ParquetFile(path).metadata.row_group(1).column(0)
    data = bytearray(path.read_bytes())
    start = group.data_page_offset
    data[start : start + group.total_compressed_size] = b"\xff" * group.total_compressed_size
    path.write_bytes(bytes(data))
    rows = read(path)
    assert fates(rows)[:3] == [(f"a.parquet#{i}", "active", None) for i in range(3)]
    assert fates(rows)[3:] == [(f"a.parquet#{i}", "quarantined", "unreadable") for i in range(3, 6)]
    assert "row group 1" in rows[3]["detail"]


# --- a JSON array with a syntax error ------------------------------------------------------


def array_text(*elements: str) -> str:
    return "[\n  " + ",\n  ".join(elements) + "\n]\n"


GOOD = [json.dumps(alpaca(i)) for i in range(4)]


def pretty(*elements: str) -> str:
    """An array as json.dump(indent=2) writes it: each record over several lines."""
    blocks = [
        "  " + "\n  ".join(json.dumps(json.loads(e), indent=2).splitlines()) for e in elements
    ]
    return "[\n" + ",\n".join(blocks) + "\n]\n"


UNTERMINATED = '{"instruction": "unterminated, "output": "y"}'
OPEN_BRACE = '{"instruction": "no closing brace", "output": "y"'


@pytest.mark.parametrize(
    "text, fates_by_index, good",
    [
        (
            array_text(GOOD[0], GOOD[1], '{"instruction": "x" "output": "y"}', GOOD[2]),
            "oo-o",
            "012",
        ),
        (array_text(GOOD[0], UNTERMINATED, GOOD[1], GOOD[2]), "o-oo", "012"),
        (array_text(GOOD[0], OPEN_BRACE, GOOD[1], GOOD[2]), "o-oo", "012"),
        (array_text(GOOD[0], "{'single': 'quotes'}", GOOD[1], "NaN-ish", GOOD[2]), "o-o-o", "012"),
        (array_text(GOOD[0], GOOD[1]).replace("\n]", ",\n]"), "oo", "01"),  # a trailing comma
        (array_text(GOOD[0], GOOD[1], GOOD[2])[:-20], "oo-", "01"),  # cut short: never closed
        (
            pretty(GOOD[0], GOOD[1], GOOD[2]).replace('"Task 1: say 1."', '"Task 1: say 1.'),
            "o-o",
            "02",
        ),
        ("[" + GOOD[0] + ", " + GOOD[1] + " " + GOOD[2] + ", " + GOOD[3] + "]", "o-o", "03"),
    ],
    ids=[
        "missing-comma",
        "unterminated-string",
        "unclosed-brace",
        "two-bad",
        "trailing-comma",
        "truncated",
        "pretty-printed-unterminated",
        "one-line-missing-comma-between-records",
    ],
)
def test_a_json_array_with_errors_keeps_every_element_that_parses(
    tmp_path: Path, text: str, fates_by_index: str, good: str
) -> None:
    path = tmp_path / "a.json"
    path.write_text(text)
    rows = read(path)
    assert [int(r["source"].rsplit("#", 1)[1]) for r in rows] == list(range(len(rows)))
    got = "".join("o" if r["status"] == "active" else "-" for r in rows)
    assert got == fates_by_index
    # The records that parse are the planted good ones, in order, none lost.
    assert [r["response"] for r in rows if r["status"] == "active"] == list(good)
    assert all("line" in r["detail"] for r in rows if r["status"] == "quarantined")


def test_a_broken_container_object_recovers_its_list(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('{"version": 2, "data": [' + GOOD[0] + ", {oops}, " + GOOD[1] + "]}")
    assert fates(read(path)) == [
        ("a.json#0", "active", None),
        ("a.json#1", "quarantined", "invalid_json"),
        ("a.json#2", "active", None),
    ]


def test_invalid_utf8_inside_one_array_element(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b'[{"instruction": "caf\xe9", "output": "x"}, ' + GOOD[1].encode() + b"]")
    assert fates(read(path)) == [
        ("a.json#0", "quarantined", "invalid_utf8"),
        ("a.json#1", "active", None),
    ]


def test_text_after_the_array_is_one_more_quarantined_record(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text("[" + GOOD[0] + "] trailing words")
    assert fates(read(path)) == [
        ("a.json#0", "active", None),
        ("a.json#1", "quarantined", "invalid_json"),
    ]


# --- line endings --------------------------------------------------------------------------


@pytest.mark.parametrize("end", [b"\r", b"\r\n", b"\n"])
def test_every_line_ending_splits_jsonl_into_rows(tmp_path: Path, end: bytes) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(end.join(json.dumps(alpaca(i)).encode() for i in range(5)) + end)
    rows = read(path)
    assert fates(rows) == [(f"a.jsonl:{i + 1}", "active", None) for i in range(5)]


def test_bare_cr_jsonl_split_into_chunks_reads_each_line_once(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    lines = [json.dumps(alpaca(i, pad="z" * (i % 7))).encode() for i in range(60)]
    path.write_bytes(b"\r".join(lines[:30]) + b"\r\n" + b"\n".join(lines[30:]) + b"\r")
    whole = read(path)
    split = list(read_all([str(path)], chunk_bytes=97))
    assert len(plan_chunks([str(path)], chunk_bytes=97)) > 10
    assert split == whole and [r["response"] for r in whole] == [str(i) for i in range(60)]


def test_bare_cr_csv_splits_into_records(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b'instruction,output\rq1,a1\r"multi\rline",a2\r')
    rows = read(path)
    assert [(r["source"].rsplit(":", 1)[1], r["response"]) for r in rows] == [
        ("2", "a1"),
        ("3", "a2"),
    ]
    assert rows[1]["prompt"] == "multi\rline"


# --- outputs inside the inputs ---------------------------------------------------------------


def test_out_inside_an_input_directory_is_refused(tmp_path: Path) -> None:
    from quality.inputs import check_out_apart

    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl").write_bytes(jsonl(alpaca(1)))
    for out in (data, data / "curated", data / "x" / ".." / "curated"):
        with pytest.raises(InputError, match="inside the input directory"):
            check_out_apart(str(out), [str(data)])
    check_out_apart(str(tmp_path / "curated"), [str(data)])  # beside it: fine
    check_out_apart(str(data), [str(data / "a.jsonl")])  # a named file's folder: fine


def test_a_directory_holding_a_previous_run_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(jsonl(alpaca(1)))
    run = tmp_path / "curated"
    run.mkdir()
    for name in ("selected.jsonl", "quarantine.jsonl", "summary.json"):
        (run / name).write_text("{}\n")
    pq.write_table(pa.table({"id": ["x"]}), run / "ledger.parquet")
    with pytest.raises(InputError, match=r"curated holds the outputs of a finesift run"):
        discover([str(tmp_path)])
    assert discover([str(tmp_path / "a.jsonl"), str(run / "selected.jsonl")])  # named: read
