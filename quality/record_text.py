"""One record's raw text -> a Row: the checks every reader applies before normalizing
(size, UTF-8, nesting depth, JSON syntax), and the quarantined rows that stand for damage.

Readers of each format (:mod:`quality.readers`, :mod:`quality.json_documents`) find the
records; this module decides what one record becomes. Nothing here raises on bad input:
every failure is a quarantined Row with a reason code from :data:`quality.schema.REASONS`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from quality.jsonscan import MAX_DEPTH, too_deep
from quality.records import RowError, quarantined_row
from quality.schema import Row

Normalizer = Callable[..., Row]  # (obj, source, raw=lambda: text) -> Row
PREVIEW_BYTES = 2_000  # raw text kept for a too-large record or a damaged remainder
TOO_DEEP = f"objects and arrays nest deeper than {MAX_DEPTH} levels"


def parse_json(text: str, locate: Callable[[int], str] | None = None) -> Any:
    """``json.loads`` with every failure hostile text can cause turned into a RowError.

    Args:
        text: one record's JSON text.
        locate: names a character offset of ``text`` in an error (default: its column).

    Raises:
        RowError: ``too_deep`` (nesting that would exhaust the parser's recursion) or
            ``invalid_json`` (syntax, or an integer too long to convert).
    """
    if too_deep(text):
        raise RowError("too_deep", TOO_DEEP)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        where = locate(err.pos) if locate else f"column {err.colno}"
        raise RowError("invalid_json", f"{err.msg} at {where}") from None
    except RecursionError:  # too_deep counts brackets; a deep stack already in use adds up
        raise RowError("too_deep", TOO_DEEP) from None
    except ValueError as err:  # e.g. an integer of more than 4300 digits
        raise RowError("invalid_json", str(err)) from None


def row_from_bytes(data: bytes, source: str, norm: Normalizer) -> Row:
    """One JSON record's bytes -> a Row: decoded, parsed and normalized, or quarantined."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        detail = f"invalid UTF-8 at byte {err.start}: {err.reason}"
        return quarantined_row(
            source=source, raw=data.decode("utf-8", "replace"), reason="invalid_utf8", detail=detail
        )
    return row_from_text(text, source, norm)


def row_from_text(
    text: str, source: str, norm: Normalizer, locate: Callable[[int], str] | None = None
) -> Row:
    """One JSON record's text -> a Row: parsed and normalized, or quarantined."""
    try:
        obj = parse_json(text, locate)
    except RowError as err:
        return quarantined_row(source=source, raw=text, reason=err.reason, detail=err.detail)
    return norm(obj, source, raw=lambda: text)


def too_large(source: str, data: bytes, size: int, max_bytes: int) -> Row:
    """The quarantined row of a record over ``read.max_record_bytes`` (raw: its start)."""
    return quarantined_row(
        source=source,
        raw=data[:PREVIEW_BYTES].decode("utf-8", "replace"),
        reason="too_large",
        detail=f"record is {size} bytes, over read.max_record_bytes={max_bytes} "
        f"(raw keeps the first {PREVIEW_BYTES} bytes)",
    )


def unreadable_rest(source: str, partial: bytes, err: BaseException) -> Row:
    """The quarantined row standing for the part of a file that could not be read.

    Args:
        source: where reading stopped (the line or index the rest starts at).
        partial: the text of the record reading stopped in, if any (kept as raw).
        err: what the stream raised.
    """
    return quarantined_row(
        source=source,
        raw=partial[:PREVIEW_BYTES].decode("utf-8", "replace"),
        reason="unreadable",
        detail=f"the file could not be read from here on ({type(err).__name__}: {err}); "
        "the records before it were read. Re-export or re-download the file to recover the rest",
    )


def too_deep_object(obj: Any) -> bool:
    """True when an already parsed value (a Parquet row) nests deeper than allowed."""
    from quality.jsonscan import object_depth

    return object_depth(obj) > MAX_DEPTH
