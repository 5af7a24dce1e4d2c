"""JSON documents (``.json`` files): an array of records, a list of records under a
container key (``{"data": [...]}``), or one object.

A document that parses is read record by record as it is. One that does not (a syntax
error, invalid UTF-8, a record nested too deep, a file cut short) is not one bad row: its
array is cut into elements without parsing (:func:`quality.jsonscan.array_elements`), each
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

from quality.jsonscan import array_elements, top_level_keys
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
            self._starts = [0] + [m.end() for m in re.finditer("\n", self._text)]
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
    spans, after = array_elements(text, array_at)
    index = 0
    for begin, end in spans:
        skip = _BLANK.match(text, begin).end()  # type: ignore[union-attr]
        element = text[skip:end].rstrip(" \t\r\n")
        if not element:
            continue  # `[]`, a trailing comma: no record
        yield _element_row(element, skip, f"{path}#{index}", norm, max_bytes, locate)
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
