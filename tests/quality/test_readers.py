"""quality.readers: planned chunks -> Rows; bad rows are quarantined by reason."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from infra.errors import InputError
from quality.inputs import plan_chunks
from quality.readers import read_all, read_chunk
from quality.schema import Row


def alpaca(i: int, **extra: object) -> dict:
    return {"instruction": f"Task {i}: say {i}.", "output": f"{i}", **extra}


def jsonl(*objs: object) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


def by_source(rows: list[Row]) -> dict[str, Row]:
    index = {row["source"]: row for row in rows}
    assert len(index) == len(rows), "every source appears once"
    return index


def reasons(rows: list[Row], path: Path, sep: str = ":") -> dict[int, str | None]:
    prefix = f"{path}{sep}"
    return {int(r["source"].removeprefix(prefix)): r["reason"] for r in rows}


# --- JSONL: every quarantine reason, planted by line --------------------------------------

PLANTED = [
    (1, jsonl(alpaca(1, category="math")), None),
    (2, b'{"instruction": "broken", \n', "invalid_json"),
    (3, b'{"instruction": "caf\xe9", "output": "x"}\n', "invalid_utf8"),
    (4, jsonl({"instruction": "no output here"}), "missing_field"),
    (5, jsonl({"instruction": "empty output", "output": "  "}), "empty_field"),
    (6, jsonl({"instruction": "number output", "output": 7}), "wrong_type"),
    (
        7,
        jsonl(
            {"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]}
        ),
        "bad_roles",
    ),
    (8, jsonl({"messages": [{"role": "user", "content": "anyone?"}]}), "no_assistant_turn"),
    (9, jsonl(alpaca(9, pad="x" * 400)), "too_large"),
    (10, b"   \n", "blank"),
    (11, b"[1, 2]\n", "wrong_type"),
    (12, jsonl({"question": "q", "answer": "a"}), "unknown_schema"),
    (13, b'{"instruction": "last line, no newline", "output": "ok"}', None),
]


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    path = tmp_path / "planted.jsonl"
    path.write_bytes(b"".join(data for _, data, _ in PLANTED))
    return path


def test_jsonl_quarantines_each_bad_row_by_reason(planted: Path) -> None:
    rows = list(read_all([str(planted)], max_record_bytes=300))
    expected = {line: reason for line, _, reason in PLANTED if reason != "blank"}
    assert reasons(rows, planted) == expected
    index = by_source(rows)
    good = index[f"{planted}:1"]
    assert good["status"] == "active" and good["response"] == "1"
    assert json.loads(good["extras"]) == {"category": "math"}
    bad_json = index[f"{planted}:2"]
    assert bad_json["status"] == "quarantined"
    assert bad_json["raw"] == '{"instruction": "broken", '
    assert "\ufffd" in index[f"{planted}:3"]["raw"]  # invalid bytes decoded with replace
    assert "output" in index[f"{planted}:4"]["detail"]
    assert "400" not in index[f"{planted}:9"]["detail"] and "300" in index[f"{planted}:9"]["detail"]


def test_too_large_line_is_never_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(jsonl(alpaca(1, pad="y" * 50_000), alpaca(2)))
    rows = list(read_all([str(path)], max_record_bytes=1_000))
    assert reasons(rows, path) == {1: "too_large", 2: None}
    assert len(rows[0]["raw"]) < 5_000  # only a preview is kept


# --- other formats -------------------------------------------------------------------------


def test_gzipped_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl.gz"
    path.write_bytes(gzip.compress(jsonl(alpaca(1)) + b"\n" + b"{bad\n" + jsonl(alpaca(2))))
    rows = list(read_all([str(path)]))
    assert reasons(rows, path) == {1: None, 3: "invalid_json", 4: None}


def test_truncated_gzip_is_quarantined_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(gzip.compress(jsonl(*[alpaca(i) for i in range(200)]))[:-30])
    rows = list(read_all([str(path)]))
    # A stream that fails cannot vouch for any of its text (corruption can end like a
    # cut): each line is quarantined where it stands, its text kept, then the rest.
    *lines, rest = rows
    assert {(r["status"], r["reason"]) for r in rows} == {("quarantined", "unreadable")}
    assert [r["source"] for r in lines] == [f"{path}:{i + 1}" for i in range(len(lines))]
    assert [json.loads(r["raw"]) for r in lines] == [alpaca(i) for i in range(len(lines))]
    assert 150 < len(lines) < 200 and rest["source"] == f"{path}:{len(lines) + 1}"
    assert "Compressed file ended" in rest["detail"] and "Re-export" in rest["detail"]


def test_json_array_sources_are_indices(tmp_path: Path) -> None:
    path = tmp_path / "arr.json"
    path.write_text(json.dumps([alpaca(0), "not an object", {"instruction": "x", "output": ""}]))
    rows = list(read_all([str(path)]))
    assert reasons(rows, path, sep="#") == {0: None, 1: "wrong_type", 2: "empty_field"}
    assert json.loads(by_source(rows)[f"{path}#2"]["raw"]) == {"instruction": "x", "output": ""}


def test_json_object_with_data_list_and_gz(tmp_path: Path) -> None:
    path = tmp_path / "wrapped.json.gz"
    path.write_bytes(
        gzip.compress(json.dumps({"version": 2, "data": [alpaca(0), alpaca(1)]}).encode())
    )
    rows = list(read_all([str(path)]))
    assert [r["response"] for r in rows] == ["0", "1"]
    assert [r["source"] for r in rows] == [f"{path}#0", f"{path}#1"]


def test_json_array_with_a_syntax_error_keeps_the_records_that_parse(tmp_path: Path) -> None:
    broken = tmp_path / "a_broken.json"
    broken.write_text(
        '[{"instruction": "x", "output": "y"},\n  {"oops" 1},\n  ' + json.dumps(alpaca(2)) + "\n]\n"
    )
    good = tmp_path / "b_good.jsonl"
    good.write_bytes(jsonl(alpaca(1)))
    rows = list(read_all([str(tmp_path)]))
    assert [(r["source"], r["status"], r["reason"]) for r in rows] == [
        (f"{broken}#0", "active", None),
        (f"{broken}#1", "quarantined", "invalid_json"),
        (f"{broken}#2", "active", None),
        (f"{good}:1", "active", None),
    ]
    assert rows[1]["raw"] == '{"oops" 1}'
    assert rows[1]["detail"] == "Expecting ':' delimiter at line 2 column 11 of the file"


def test_json_document_with_no_array_to_recover_is_one_quarantined_row(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text('{"instruction": "x",\n "output" "y"}')
    (row,) = read_all([str(path)])
    assert (row["source"], row["reason"]) == (f"{path}:2", "invalid_json")
    assert row["detail"].endswith("the whole file was skipped")


def test_json_extension_holding_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "lines.json"
    path.write_bytes(jsonl(alpaca(1), alpaca(2)) + b"{oops\n")
    rows = list(read_all([str(path)]))
    assert reasons(rows, path) == {1: None, 2: None, 3: "invalid_json"}


def test_parquet_row_groups_and_list_of_struct_messages(tmp_path: Path) -> None:
    path = tmp_path / "chat.parquet"
    messages = [
        [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
        for i in range(7)
    ]
    messages[4] = [{"role": "user", "content": "alone"}]  # planted: no assistant turn
    table = pa.table({"messages": messages, "topic": [f"t{i}" for i in range(7)]})
    pq.write_table(table, path, row_group_size=2)
    chunks = plan_chunks([str(path)], chunk_bytes=1)
    assert [(c["start"], c["end"], c["first_line"]) for c in chunks] == [
        (0, 1, 0),
        (1, 2, 2),
        (2, 3, 4),
        (3, 4, 6),
    ]
    rows = [row for chunk in chunks for row in read_chunk(chunk)]
    assert reasons(rows, path, sep="#") == {
        i: ("no_assistant_turn" if i == 4 else None) for i in range(7)
    }
    assert rows[6]["response"] == "a6"
    assert json.loads(rows[6]["extras"]) == {"topic": "t6"}
    assert rows == list(read_all([str(path)]))  # one chunk for the whole file


def test_csv_header_empty_cells_and_multiline_records(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(
        b"instruction,input,output,category\n"
        b"Say hi.,,hi,chat\n"  # line 2: empty input -> None
        b'"Write two lines.",,"one\ntwo",poem\n'  # line 3-4: quoted newline
        b"\n"  # line 5: blank
        b"Empty answer,,,x\n"  # line 6
        b"Bad bytes \xff,,ok,x\n"  # line 7
        b"Too many,,cells,x,y\n"  # line 8
    )
    rows = list(read_all([str(path)]))
    assert reasons(rows, path) == {
        2: None,
        3: None,
        6: "empty_field",
        7: "invalid_utf8",
        8: "wrong_type",
    }
    index = by_source(rows)
    assert index[f"{path}:2"]["prompt"] == "Say hi."
    assert json.loads(index[f"{path}:2"]["extras"]) == {"category": "chat"}
    assert index[f"{path}:3"]["response"] == "one\ntwo"
    assert index[f"{path}:6"]["raw"] == "Empty answer,,,x"


def test_csv_messages_column_holds_json_and_tsv(tmp_path: Path) -> None:
    convo = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    path = tmp_path / "chat.tsv"
    path.write_text(f"id\tchat\n7\t{json.dumps(convo)}\n8\t[broken\n")
    rows = list(read_all([str(path)], field_map={"chat": "messages"}))
    assert reasons(rows, path) == {2: None, 3: "invalid_json"}
    assert rows[0]["id"] == "7" and rows[0]["response"] == "a"


# --- bad options, real samples -------------------------------------------------------------


def test_bad_options_raise_before_reading(planted: Path) -> None:
    (chunk,) = plan_chunks([str(planted)], chunk_bytes=10**6)
    with pytest.raises(InputError, match="chatml"):
        read_chunk(chunk, fmt="chatml")
    with pytest.raises(InputError, match="max_record_bytes"):
        read_chunk(chunk, max_record_bytes=0)


def test_real_dolly_sample_reads_clean(shared_data: Path) -> None:
    rows = list(read_all([str(shared_data / "dolly" / "dolly_3k.json")]))
    assert len(rows) == 2996
    assert all(r["status"] == "active" for r in rows)
    assert {json.loads(r["extras"])["category"] for r in rows} >= {"open_qa", "brainstorming"}


def test_real_gpteacher_reads_without_a_field_map(shared_data: Path) -> None:
    # GPTeacher writes instruction/input/response; response is read as the answer.
    rows = list(read_all([str(shared_data / "gpteacher" / "codegen-instruct.json")]))
    assert len(rows) == 4535
    assert all(r["status"] == "active" for r in rows), {r["reason"] for r in rows}
    assert all(r["response"] and json.loads(r["extras"]) == {} for r in rows)
