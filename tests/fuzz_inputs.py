"""Planted input datasets for the property-based tests of the curate boundary.

A strategy draws a directory of files in every supported format (JSONL, .jsonl.gz, JSON
arrays in three layouts and in a container object, CSV, Parquet), each mixing valid rows
of the four schemas with malformed records (syntax, invalid UTF-8, lone surrogates, deep
nesting, wrong types, missing and empty fields, bad roles, oversized records), with
LF, CRLF, bare-CR or mixed line ends, BOMs, blank lines, ids shared across rows, empty
files and damaged gzip files. Every record's expected fate is written down as it is
planted: where the ledger must name it, and either the response it must be read with or
the reasons it may be quarantined for.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import strategies as st

MAX_RECORD_BYTES = 6_000  # read.max_record_bytes of the fuzz runs: "too large" stays cheap
BAD_BYTE = "\ue000"  # planted as text, written as the invalid UTF-8 byte 0xE9
_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class Expect:
    """What must become of one planted record."""

    source: str
    """How the ledger names it: ``path:line`` or ``path#index``."""
    reasons: frozenset[str] | None
    """None for a valid row (read as active); else the reasons it may be quarantined for."""
    response: str | None = None
    """A valid row's response, as it must be read."""
    row_id: str | None = None
    """A valid row's planted id, if it has one."""


@dataclass
class Planted:
    """A planted directory: its files and the fate of every record in them."""

    files: list[str] = field(default_factory=list)
    expected: list[Expect] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    """Damaged gzip files: every line of them is quarantined as unreadable, how many
    lines there are depends on where the damage falls."""
    odd_name: str | None = None
    """A file whose name is not UTF-8 (curate must refuse it before Ray starts)."""

    def refused(self) -> bool:
        """True when curate must stop before Ray starts: a file name that is not UTF-8,
        or every input file empty."""
        return self.odd_name is not None or all(os.path.getsize(f) == 0 for f in self.files)

    def describe(self) -> str:
        """A listing for hypothesis to print with a failing example."""
        return "\n".join(f"{e.source}: {sorted(e.reasons or ['ok'])}" for e in self.expected)


# --- records ------------------------------------------------------------------------------

# Text a valid field may hold: any printable character, tabs and line breaks included.
TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Co")) | st.sampled_from("\n\r\t"),
    min_size=1,
    max_size=16,
).filter(lambda t: t.strip() != "")
IDS = st.none() | st.sampled_from(["x1", "x2", "x3"])  # a small pool: ids get shared


@st.composite
def valid_record(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid row of one of the four schemas, and the response it must be read with."""
    schema = draw(st.sampled_from(["alpaca", "messages", "sharegpt", "prompt_completion"]))
    answer = draw(TEXT)
    if schema == "alpaca":
        obj: dict[str, Any] = {"instruction": draw(TEXT)}
        if draw(st.booleans()):
            obj["input"] = draw(TEXT)
        obj[draw(st.sampled_from(["output", "response"]))] = answer
    elif schema == "prompt_completion":
        obj = {"prompt": draw(TEXT), draw(st.sampled_from(["completion", "response"])): answer}
    else:
        role, text, user, assistant = (
            ("role", "content", "user", "assistant")
            if schema == "messages"
            else ("from", "value", "human", "gpt")
        )
        turns = [{role: "system", text: draw(TEXT)}] if draw(st.booleans()) else []
        for _ in range(draw(st.integers(0, 1))):
            turns += [{role: user, text: draw(TEXT)}, {role: assistant, text: draw(TEXT)}]
        turns += [{role: user, text: draw(TEXT)}, {role: assistant, text: answer}]
        obj = {schema if schema == "messages" else "conversations": turns}
    row_id = draw(IDS)
    if row_id is not None:
        obj["id"] = row_id
    if draw(st.booleans()):
        obj["timestamp"] = "2024-05-06"
    return obj, answer.strip()


def _deep(levels: int) -> str:
    return '{"instruction": "x", "output": "y", "n": ' + "[" * levels + "]" * levels + "}"


# (JSON text, reasons). "Balanced" ones keep their brackets and quotes paired, so even a
# one-line JSON array can be cut into elements around them.
BALANCED_BAD = [
    ('{"instruction" "x", "output": "y"}', "invalid_json"),
    ("{'instruction': 'x'}", "invalid_json"),
    ("nope", "invalid_json"),
    ('{"instruction": "x", "output": "y", "n": ' + "9" * 4400 + "}", "invalid_json"),
    ('{"instruction": "caf' + BAD_BYTE + '", "output": "y"}', "invalid_utf8"),
    ('{"id": "\\ud800", "instruction": "x", "output": "y"}', "invalid_utf8"),
    ('{"timestamp": "\\udfff", "instruction": "x", "output": "y"}', "invalid_utf8"),
    ('{"instruction": "x\\ud800", "output": "y"}', "invalid_utf8"),
    (_deep(129), "too_deep"),
    (_deep(1500), "too_deep"),
    ('{"instruction": "x", "output": "y", "pad": "' + "z" * 13_000 + '"}', "too_large"),
    ('{"instruction": 5, "output": "y"}', "wrong_type"),
    ("[1, 2]", "wrong_type"),
    ('"a string"', "wrong_type"),
    ("null", "wrong_type"),
    ('{"instruction": "x"}', "missing_field"),
    ('{"instruction": "x", "output": "   "}', "empty_field"),
    ('{"question": "q"}', "unknown_schema"),
    (
        '{"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]}',
        "bad_roles",
    ),
    ('{"messages": [{"role": "user", "content": "q"}]}', "no_assistant_turn"),
]
# Unpaired quotes or brackets: a JSON array recovers around them only line by line.
UNBALANCED_BAD = [
    ('{"instruction": "x", ', "invalid_json"),
    ('{"instruction": "unterminated, "output": "y"}', "invalid_json"),
]


def _encode(text: str) -> bytes:
    """UTF-8, except that a planted BAD_BYTE becomes one invalid byte."""
    return text.encode("utf-8").replace(BAD_BYTE.encode(), b"\xe9")


@st.composite
def entries(draw: st.DrawFn, unbalanced: bool) -> list[tuple[bytes, frozenset | None, Any]]:
    """Records of a JSON-based file: (text, reasons or None, (response, id) when valid)."""
    out = []
    bad = BALANCED_BAD + (UNBALANCED_BAD if unbalanced else [])
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 2)):
            obj, answer = draw(valid_record())
            text = json.dumps(obj, ensure_ascii=draw(st.booleans()))
            out.append((text.encode(), None, (answer, obj.get("id"))))
        else:
            text, reason = draw(st.sampled_from(bad))
            out.append((_encode(text), frozenset([reason]), None))
    return out


# --- files --------------------------------------------------------------------------------


def _line_numbers(data: bytes, offsets: list[int]) -> list[int]:
    """1-based line of each offset (each one starts a line), by universal line ends."""
    return [len(_LINE_END.findall(data, 0, offset)) + 1 for offset in offsets]


@st.composite
def jsonl_file(draw: st.DrawFn, path: Path, planted: Planted) -> None:
    records = draw(entries(unbalanced=True))
    style = draw(st.sampled_from([b"\n", b"\r\n", b"\r", b"mixed"]))
    chunks, offsets = [b"\xef\xbb\xbf"] if draw(st.booleans()) else [], []
    size = sum(map(len, chunks))
    for text, _, _ in records:
        if draw(st.integers(0, 4)) == 0:  # a blank line: counted, not a record
            blank = draw(st.sampled_from([b"", b"  ", b"\t"])) + b"\n"
            chunks.append(blank)
            size += len(blank)
        end = draw(st.sampled_from([b"\n", b"\r\n", b"\r"])) if style == b"mixed" else style
        offsets.append(size)
        chunks.append(text + end)
        size += len(text) + len(end)
    data = b"".join(chunks)
    if records and draw(st.booleans()):
        data = data.rstrip(b"\r\n")  # the last line without its line end
    gz = draw(st.booleans())
    name = str(path) + (".jsonl.gz" if gz else ".jsonl")
    Path(name).write_bytes(gzip.compress(data, mtime=0) if gz else data)
    _expect_lines(planted, name, data, records, offsets)


def _expect_lines(planted: Planted, name: str, data: bytes, records, offsets) -> None:
    planted.files.append(name)
    for (_, reasons, good), line in zip(records, _line_numbers(data, offsets), strict=True):
        answer, row_id = good if good else (None, None)
        planted.expected.append(Expect(f"{name}:{line}", reasons, answer, row_id))


@st.composite
def json_file(draw: st.DrawFn, path: Path, planted: Planted) -> None:
    layout = draw(st.sampled_from(["lines", "pretty", "minified", "container"]))
    records = draw(entries(unbalanced=layout != "minified"))
    texts = []
    for text, reasons, _ in records:
        if layout == "pretty" and reasons is None:  # json.dump(indent=2): a record per block
            text = json.dumps(json.loads(text), indent=2).replace("\n", "\n  ").encode()
        texts.append(text)
    if layout == "minified":
        body = b"[" + b", ".join(texts) + b"]"
    else:
        body = b"[\n  " + b",\n  ".join(texts) + b"\n]" if texts else b"[]"
        if layout == "container":
            body = b'{"version": 1, "data": ' + body + b"}"
    gz = draw(st.booleans())
    name = str(path) + (".json.gz" if gz else ".json")
    Path(name).write_bytes(gzip.compress(body, mtime=0) if gz else body)
    planted.files.append(name)
    for index, (_, reasons, good) in enumerate(records):
        answer, row_id = good if good else (None, None)
        planted.expected.append(Expect(f"{name}#{index}", reasons, answer, row_id))


@st.composite
def csv_file(draw: st.DrawFn, path: Path, planted: Planted) -> None:
    schema = draw(st.sampled_from(["alpaca", "prompt_completion", "messages"]))
    columns = {
        "alpaca": ["instruction", "input", "output"],
        "prompt_completion": ["prompt", "completion"],
        "messages": ["messages"],
    }[schema] + ["id"]
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    head = io.StringIO()
    csv.writer(head, lineterminator=end, quoting=csv.QUOTE_ALL).writerow(columns)
    chunks, offsets, records = [head.getvalue().encode()], [], []
    size = len(chunks[0])
    for _ in range(draw(st.integers(0, 6))):
        cells, reasons, good = draw(_csv_record(schema))
        out = io.StringIO()
        csv.writer(out, lineterminator=end, quoting=csv.QUOTE_ALL).writerow(cells)
        text = _encode(out.getvalue())
        if any(cell.strip() for cell in cells):  # a record of empty cells is no record
            offsets.append(size)
            records.append((text, reasons, good))
        chunks.append(text)
        size += len(text)
    data = b"".join(chunks)
    gz = draw(st.booleans())
    name = str(path) + (".csv.gz" if gz else ".csv")
    Path(name).write_bytes(gzip.compress(data, mtime=0) if gz else data)
    _expect_lines(planted, name, data, records, offsets)


@st.composite
def _csv_record(draw: st.DrawFn, schema: str) -> tuple[list[str], frozenset | None, Any]:
    row_id = draw(IDS)
    answer = draw(TEXT)
    if schema == "messages":
        turns = [{"role": "user", "content": draw(TEXT)}, {"role": "assistant", "content": answer}]
        cells = [json.dumps(turns)]
    elif schema == "alpaca":
        cells = [draw(TEXT), "", answer]
    else:
        cells = [draw(TEXT), answer]
    kind = draw(st.sampled_from(["ok", "ok", "ok", "empty", "utf8", "extra", "large", "json"]))
    if kind == "empty":
        cells[-1] = draw(st.sampled_from(["", "   "]))
        # A blank messages cell is parsed as JSON first (and is not JSON).
        reasons = ["empty_field"] + (["invalid_json"] if schema == "messages" else [])
        return cells + [row_id or ""], frozenset(reasons), None
    if kind == "utf8":
        cells[-1] = "caf" + BAD_BYTE
        return cells + [row_id or ""], frozenset(["invalid_utf8"]), None
    if kind == "extra":
        return cells + [row_id or "", "surplus"], frozenset(["wrong_type"]), None
    if kind == "large":
        cells[-1] = "z" * (2 * MAX_RECORD_BYTES)
        return cells + [row_id or ""], frozenset(["too_large"]), None
    if kind == "json" and schema == "messages":
        cells[0], reason = draw(
            st.sampled_from([("[{oops", "invalid_json"), ("[" * 1500 + "]" * 1500, "too_deep")])
        )
        return cells + [row_id or ""], frozenset([reason]), None
    return cells + [row_id or ""], None, (answer.strip(), row_id)


@st.composite
def parquet_file(draw: st.DrawFn, path: Path, planted: Planted) -> None:
    schema = draw(st.sampled_from(["alpaca", "prompt_completion", "messages"]))
    rows, fates = [], []
    for _ in range(draw(st.integers(0, 6))):
        answer, question, row_id = draw(TEXT), draw(TEXT), draw(IDS)
        kind = draw(st.sampled_from(["ok", "ok", "ok", "null", "blank", "large"]))
        value = {"ok": answer, "null": None, "blank": "  ", "large": "z" * 2 * MAX_RECORD_BYTES}
        reply = value[kind]
        if schema == "messages":
            turns = (
                None
                if reply is None
                else [
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": reply},
                ]
            )
            rows.append({"messages": turns, "id": row_id})
        else:
            keys = ("instruction", "output") if schema == "alpaca" else ("prompt", "completion")
            rows.append({keys[0]: question, keys[1]: reply, "id": row_id})
        reasons = {"ok": None, "null": "empty_field", "blank": "empty_field", "large": "too_large"}
        fates.append((reasons[kind], (answer.strip(), row_id)))
    name = str(path) + ".parquet"
    columns = {
        "alpaca": ["instruction", "output"],
        "prompt_completion": ["prompt", "completion"],
        "messages": ["messages"],
    }[schema] + ["id"]
    types = {c: pa.string() for c in columns}
    types["messages"] = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    table = pa.Table.from_pylist(rows, schema=pa.schema([(c, types[c]) for c in columns]))
    pq.write_table(table, name, row_group_size=draw(st.integers(1, 4)))
    planted.files.append(name)
    for index, (reason, good) in enumerate(fates):
        if reason is None:
            planted.expected.append(Expect(f"{name}#{index}", None, good[0], good[1]))
        else:
            planted.expected.append(Expect(f"{name}#{index}", frozenset([reason])))


@st.composite
def empty_file(draw: st.DrawFn, path: Path, planted: Planted) -> None:
    suffix, data = draw(
        st.sampled_from(
            [
                (".jsonl", b""),
                (".jsonl", b" \n\r\n\t\r"),
                (".json", b""),
                (".json", b"[]"),
                (".json", b"  [ ]\n"),
                (".csv", b"instruction,output\n"),
                (".csv", b"instruction,output\r\n\r\n"),
            ]
        )
    )
    Path(str(path) + suffix).write_bytes(data)
    planted.files.append(str(path) + suffix)


@st.composite
def damaged_gzip(draw: st.DrawFn, path: Path, planted: Planted) -> None:
    lines = b"".join(b'{"instruction": "q%d", "output": "a%d"}\n' % (i, i) for i in range(400))
    packed = bytearray(gzip.compress(lines, mtime=0))
    if draw(st.booleans()):
        packed = packed[: draw(st.integers(20, len(packed) - 1))]  # cut short
    else:
        at = draw(st.integers(20, len(packed) - 30))
        packed[at : at + 16] = b"\xff" * 16  # a damaged deflate block
    name = str(path) + ".jsonl.gz"
    Path(name).write_bytes(bytes(packed))
    planted.files.append(name)
    planted.damaged.append(name)


@st.composite
def planted_inputs(draw: st.DrawFn, root: Path, *, odd_names: bool = False) -> Planted:
    """A directory of 1-5 planted files under ``root`` (which must be empty).

    Args:
        odd_names: sometimes give a file a name that is not UTF-8 (latin-1 bytes).
    """
    planted = Planted()
    kinds = [jsonl_file, json_file, csv_file, parquet_file, empty_file, damaged_gzip]
    count = draw(st.integers(1, 5))
    for n in range(count):
        kind = draw(st.sampled_from(kinds), label=f"file {n}")
        draw(kind(root / f"f{n:02d}", planted))
    if odd_names and draw(st.integers(0, 5)) == 0:
        old = os.fsencode(planted.files[0])
        new = old.replace(b"/f00", b"/caf\xe9-f00")
        os.rename(old, new)
        planted.odd_name = os.fsdecode(new)
    return planted
