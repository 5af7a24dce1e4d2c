"""JSON documents (``.json`` files): an array of records, a list of records under a
container key (``{"data": [...]}``), or one object.

A document that parses is read record by record as it is. One that does not (a syntax
error, invalid UTF-8, a record nested too deep, a file cut short) is not one bad row: its
array is cut into elements without parsing (:func:`quality.jsonscan.element_end`), each
element that parses on its own is read, and each one that does not is quarantined at its
index with the reason. A document with no array to recover (one broken object, or text
that is not JSON) is one quarantined record. Files that are really JSON lines are told
apart by :func:`is_json_lines` and read line by line by the caller.
"""

from __future__ import annotations

import bisect
import io
import json
import re
from collections.abc import Generator, Mapping
from typing import Any

from quality.jsonscan import element_end, too_deep, top_level_keys
from quality.lines import LineReader
from quality.record_text import (
    PREVIEW_BYTES,
    TOO_DEEP,
    Normalizer,
    row_from_text,
    too_deep_object,
    too_large,
)
from quality.records import quarantined_row
from quality.schema import Row

# A JSON file holding one object may keep its rows in a list under one of these keys.
CONTAINER_KEYS = ("data", "rows", "examples", "records", "instances", "items", "train")
# A top-level JSON object with one of these keys is a row, not a container.
SCHEMA_KEYS = frozenset(
    ("messages", "conversations", "instruction", "output", "prompt", "completion")
)
_BLANK = re.compile(r"[ \t\r\n]*")
_LINE_END = re.compile(r"\r\n|\r|\n")
BROKEN = object()
"""What :func:`parse_document` returns for a document that does not parse."""


def parse_document(data: bytes) -> Any:
    """The parsed document, or :data:`BROKEN` when it is not valid JSON as a whole."""
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError too
        return BROKEN


def is_json_lines(data: bytes) -> bool:
    """True when the first non-blank line is on its own a JSON object."""
    lines = LineReader(io.BytesIO(data))
    while (line := lines.read_line()) is not None:
        if line.head.strip():
            if not line.head.lstrip().startswith(b"{"):
                return False  # not an object: no need to parse a long first line
            try:
                return isinstance(json.loads(line.head.decode("utf-8")), dict)
            except (ValueError, RecursionError):
                return False
    return False


def document_rows(
    data: bytes,
    value: Any,
    path: str,
    norm: Normalizer,
    max_bytes: int,
    field_map: Mapping[str, str],
) -> Generator[Row, None, int]:
    """Rows of a JSON document, parsed (``value``) or recovered (``value is BROKEN``).

    Args:
        data: the document's bytes, without a BOM.
        value: :func:`parse_document` of ``data``.
        path: the file, for each row's source (``path#index``).
        norm: turns one parsed record into a Row.
        max_bytes: ``read.max_record_bytes``.
        field_map: ``read.field_map`` (a mapped schema key marks an object as a row).

    Returns:
        (as the generator's value) the index the next record would have had.
    """
    if value is BROKEN:
        return (yield from _recovered_rows(data, path, norm, max_bytes, field_map))
    records = _records(value, field_map)
    for index, obj in records:
        yield _parsed_record(obj, f"{path}#{index}", norm, max_bytes)
    return len(records)


def _records(value: Any, field_map: Mapping[str, str]) -> list[tuple[int, Any]]:
    """The rows of a JSON document: an array, a list under a container key, or one object."""
    if isinstance(value, dict) and not any(field_map.get(k, k) in SCHEMA_KEYS for k in value):
        for key in CONTAINER_KEYS:
            if isinstance(value.get(key), list):
                return list(enumerate(value[key]))
    if isinstance(value, list):
        return list(enumerate(value))
    return [(0, value)]


def _parsed_record(obj: Any, source: str, norm: Normalizer, max_bytes: int) -> Row:
    try:
        raw = json.dumps(obj, ensure_ascii=False)
    except RecursionError:
        return quarantined_row(source=source, raw="", reason="too_deep", detail=TOO_DEEP)
    encoded = raw.encode("utf-8", "surrogatepass")
    if len(encoded) > max_bytes:
        return too_large(source, encoded, len(encoded), max_bytes)
    if too_deep_object(obj):
        return quarantined_row(source=source, raw=raw, reason="too_deep", detail=TOO_DEEP)
    return norm(obj, source, raw=lambda: raw)


# --- recovery ----------------------------------------------------------------------------


class _Locator:
    """Line and column of an offset in the document, for error details (built on demand)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._starts: list[int] | None = None

    def __call__(self, offset: int) -> str:
        if self._starts is None:
            self._starts = [0] + [m.end() for m in _LINE_END.finditer(self._text)]
        line = bisect.bisect_right(self._starts, offset)
        return f"line {line} column {offset - self._starts[line - 1] + 1} of the file"


def _recovered_rows(
    data: bytes, path: str, norm: Normalizer, max_bytes: int, field_map: Mapping[str, str]
) -> Generator[Row, None, int]:
    # surrogateescape: invalid bytes survive as lone surrogates, so each element can say
    # whether it holds any, and offsets stay those of the text.
    text = data.decode("utf-8", "surrogateescape")
    start = _BLANK.match(text).end()  # type: ignore[union-attr]
    if start == len(text):
        return 0  # an empty or blank file holds no record
    array_at = _array_start(text, start, field_map)
    locate = _Locator(text)
    if array_at is None:
        yield _whole_document(text, path)
        return 1
    spans, after = _element_spans(text, array_at)
    index = 0
    for begin, end in spans:
        element = text[begin:end].rstrip(" \t\r\n")
        if not element:
            continue  # `[]`, a trailing comma: no record
        yield _element_row(element, begin, f"{path}#{index}", norm, max_bytes, locate)
        index += 1
    rest = text[after:].strip(" \t\r\n")
    if rest and array_at == start:
        yield quarantined_row(
            source=f"{path}#{index}",
            raw=rest[:PREVIEW_BYTES],
            reason="invalid_json",
            detail=f"text after the end of the JSON array, at {locate(after)}",
        )
        index += 1
    return index


def _element_spans(text: str, array_at: int) -> tuple[list[tuple[int, int]], int]:
    """The spans of the elements of the array opening at ``array_at`` (possibly blank), and
    the offset after its closing bracket (``len(text)`` when it never closes).

    An element that does not parse ends early where a later line, indented as the array's
    elements are, starts an element that does (:func:`_resync`): a missing quote or
    bracket then costs that element alone, not every element after it.
    """
    spans: list[tuple[int, int]] = []
    begin, indent = array_at + 1, None
    while True:
        first = _BLANK.match(text, begin).end()  # type: ignore[union-attr]
        end = element_end(text, first)
        if first < end:
            indent = _line_indent(text, first) if indent is None else indent
            if not _parses(text[first:end]):
                cut = _resync(text, first, end, indent)
                if cut is not None:
                    spans.append((first, _trim(text, first, cut)))
                    begin = cut
                    continue
        spans.append((first, end))
        if end >= len(text):
            return spans, len(text)
        if text[end] == "]":
            return spans, end + 1
        begin = end + 1


# A line that starts a value: not blank, not a closing bracket.
_ELEMENT_LINE = re.compile(r"[\r\n]([ \t]*)(?=[^ \t\r\n\]}])")
_DECODER = json.JSONDecoder()


def _resync(text: str, first: int, end: int, indent: str | None) -> int | None:
    """Where, inside the broken element ``text[first:end]``, the next element starts.

    That is a line indented like the array's elements (any, when unknown) that starts a
    value, and either follows a line ending in a comma (the separator was there: a quote
    or bracket of the broken element went missing) or holds a value that parses and is
    followed by a comma or the closing bracket (the separator itself went missing).
    """
    for match in _ELEMENT_LINE.finditer(text, first, end):
        if indent is not None and match.group(1) != indent:
            continue
        if _comma_before(text, match.start(), first) or _value_then_separator(text, match.end()):
            return match.end()
    return None


def _comma_before(text: str, line_end: int, floor: int) -> bool:
    """True when the line ending at ``line_end`` ends in a comma (blanks aside)."""
    at = line_end - 1
    while at > floor and text[at] in " \t\r":
        at -= 1
    return text[at] == ","


def _value_then_separator(text: str, at: int) -> bool:
    try:
        _, stop = _DECODER.raw_decode(text, at)
    except (ValueError, RecursionError):
        return False
    after = _BLANK.match(text, stop).end()  # type: ignore[union-attr]
    return after == len(text) or text[after] in ",]"


def _parses(element: str) -> bool:
    if too_deep(element):
        return False  # looked into for a cut; whole, it is quarantined as too_deep
    try:
        json.loads(element)
    except (ValueError, RecursionError):
        return False
    return True


def _line_indent(text: str, at: int) -> str | None:
    """The blanks before ``at`` on its line, or None when other text precedes it there."""
    line_start = max(text.rfind("\n", 0, at), text.rfind("\r", 0, at)) + 1
    prefix = text[line_start:at]
    return prefix if not prefix.strip(" \t") else None


def _trim(text: str, first: int, cut: int) -> int:
    """The end of a broken element cut at ``cut``: blanks and a trailing comma left out."""
    end = len(text[first:cut].rstrip(" \t\r\n"))
    if text[first : first + end].endswith(","):
        end -= 1
    return first + end


def _array_start(text: str, start: int, field_map: Mapping[str, str]) -> int | None:
    """Where the array of records opens: the document itself, or a container key's value."""
    if text.startswith("[", start):
        return start
    if not text.startswith("{", start):
        return None
    keys = top_level_keys(text, start)
    if any(field_map.get(k, k) in SCHEMA_KEYS for k in keys):
        return None  # one (broken) row, not a container
    for key in CONTAINER_KEYS:
        if key in keys and text.startswith("[", keys[key]):
            return keys[key]
    return None


def _element_row(
    element: str, begin: int, source: str, norm: Normalizer, max_bytes: int, locate: _Locator
) -> Row:
    encoded = element.encode("utf-8", "surrogateescape")
    if len(encoded) > max_bytes:
        return too_large(source, encoded, len(encoded), max_bytes)
    try:
        element.encode("utf-8")
    except UnicodeEncodeError as err:
        return quarantined_row(
            source=source,
            raw=encoded.decode("utf-8", "replace"),
            reason="invalid_utf8",
            detail=f"invalid UTF-8 at {locate(begin + err.start)}",
        )
    return row_from_text(element, source, norm, locate=lambda pos: locate(begin + pos))


def _whole_document(text: str, path: str) -> Row:
    """A document with no array of records to recover: one quarantined record."""
    raw = text.encode("utf-8", "surrogateescape")[:PREVIEW_BYTES].decode("utf-8", "replace")
    line, reason, detail = _document_error(text)
    return quarantined_row(source=f"{path}:{line}", raw=raw, reason=reason, detail=detail)


def _document_error(text: str) -> tuple[int, str, str]:
    """(line, reason, detail) of why a whole document does not parse."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        line = text.count("\n", 0, err.start) + 1
        return line, "invalid_utf8", f"invalid UTF-8 at line {line}; the whole file was skipped"
    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        where = f"line {err.lineno} column {err.colno}"
        return err.lineno, "invalid_json", f"{err.msg} at {where}; the whole file was skipped"
    except RecursionError:
        return 1, "too_deep", f"{TOO_DEEP}; the whole file was skipped"
    except ValueError as err:
        return 1, "invalid_json", f"{err}; the whole file was skipped"
    return 1, "invalid_json", "the document does not parse; the whole file was skipped"
