"""One raw input object -> one canonical :class:`~quality.schema.Row`.

Four input schemas are understood:

- ``alpaca``: ``instruction``, optional ``input``, ``output`` (or ``response``, as
  GPTeacher writes it), optional ``system``.
- ``messages``: OpenAI chat, ``messages`` = list of ``{role, content}``.
- ``sharegpt``: ``conversations`` = list of ``{from, value}``; ``from`` is
  human/gpt/system (user/assistant accepted too).
- ``prompt_completion``: ``prompt``, ``completion`` (or ``response``), optional ``system``.

A bad row raises :class:`RowError` with a reason code from :data:`quality.schema.REASONS`;
readers turn it into a quarantined row with :func:`quarantined_row`, so nothing is lost.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from infra.errors import InputError
from quality.schema import ACTIVE, QUARANTINED, REASONS, Row, new_row
from quality.turns import (
    ANSWER_KEYS,
    TURN_BUILDERS,
    RowError,
    answer_key,
    check_roles,
    is_blank,
    type_name,
)

__all__ = [
    "RowError",
    "SCHEMAS",
    "FIELD_NAMES",
    "check_format",
    "detect_schema",
    "normalize",
    "quarantined_row",
    "assistant_turns",
]

SCHEMAS = ("alpaca", "messages", "sharegpt", "prompt_completion")

# Fields each schema consumes; everything else goes to ``extras``.
_SCHEMA_FIELDS = {
    "alpaca": ("instruction", "input", "output", "system"),
    "messages": ("messages",),
    "sharegpt": ("conversations",),
    "prompt_completion": ("prompt", "completion", "system"),
}

FIELD_NAMES = frozenset(
    name for names in (*_SCHEMA_FIELDS.values(), *ANSWER_KEYS.values()) for name in names
)
"""Every input field some schema reads: what ``read.field_map`` may rename a field to."""

# Detection order: the most specific key wins (a chat row may also carry a ``prompt``).
# ``response`` comes last: beside ``prompt`` it is prompt_completion's answer, alone it
# is an alpaca answer whose instruction is missing (and the error says so).
_DETECT_KEYS = (
    ("messages", "messages"),
    ("conversations", "sharegpt"),
    ("instruction", "alpaca"),
    ("prompt", "prompt_completion"),
    ("output", "alpaca"),
    ("completion", "prompt_completion"),
    ("response", "alpaca"),
)


def detect_schema(obj: Mapping[str, Any]) -> str | None:
    """Guess the schema of a row from its keys.

    Args:
        obj: a row whose fields are already renamed by any field map.

    Returns:
        One of :data:`SCHEMAS`, or None when no schema key is present.
    """
    for key, schema in _DETECT_KEYS:
        if key in obj:
            return schema
    return None


def normalize(
    obj: Mapping[str, Any],
    *,
    source: str,
    fmt: str | None = None,
    field_map: Mapping[str, str] | None = None,
    id_field: str = "id",
    timestamp_field: str = "timestamp",
) -> Row:
    """Turn one input object into an active canonical Row.

    Args:
        obj: the parsed input row.
        source: where the row came from ("path:line" or "path#index").
        fmt: force one of :data:`SCHEMAS`; None detects the schema per row.
        field_map: renames input fields to schema names first, ``{input_name: schema_name}``.
        id_field: field holding the row id; without it the id is a stable content hash.
        timestamp_field: field holding the row's date.

    Returns:
        A Row with every key set and status ``active``.

    Raises:
        RowError: the row is malformed (reason says how).
        InputError: ``fmt`` is not a known schema.
    """
    if not isinstance(obj, Mapping):
        raise RowError("wrong_type", f"a row must be a JSON object, got {type_name(obj)}")
    check_format(fmt)
    row = _rename(obj, field_map)
    schema = fmt or detect_schema(row)
    if schema is None:
        raise RowError(
            "unknown_schema",
            f"fields {sorted(row)} match no schema; expected instruction/output or "
            "instruction/response (alpaca), "
            "messages, conversations (sharegpt) or prompt/completion; "
            "map your names with read.field_map",
        )
    turns = TURN_BUILDERS[schema](row)
    check_roles(turns, "conversations" if schema == "sharegpt" else "messages")
    return _build_row(row, turns, schema, source, id_field, timestamp_field)


def check_format(fmt: str | None) -> None:
    """Check a forced input format.

    Args:
        fmt: one of :data:`SCHEMAS`, or None to detect the schema per row.

    Raises:
        InputError: ``fmt`` is not a known schema.
    """
    if fmt is not None and fmt not in SCHEMAS:
        raise InputError(
            f"unknown input format {fmt!r}: use one of {', '.join(SCHEMAS)}, "
            "or leave read.format unset to detect the schema per row"
        )


def quarantined_row(*, source: str, raw: str, reason: str, detail: str) -> Row:
    """A Row for input that could not be normalized, kept for the ledger.

    Args:
        source: where the input came from.
        raw: the raw input text.
        reason: a code from :data:`quality.schema.REASONS`.
        detail: a human-readable explanation.

    Returns:
        A Row with status ``quarantined`` and an id hashed from source and raw text.
    """
    if reason not in REASONS:
        raise ValueError(f"unknown reason code {reason!r}; add it to quality.schema.REASONS")
    raw, detail = _clean_text(raw), _clean_text(detail)
    return new_row(
        id=_sha16(source + "\n" + raw),
        source=source,
        raw=raw,
        status=QUARANTINED,
        reason=reason,
        detail=detail,
    )


def assistant_turns(messages: str) -> list[tuple[str, str]]:
    """Every assistant turn of a row with what precedes it, as curation reads a row.

    Each pair is built like the row's own ``prompt``/``response``: the non-system turns
    before the answer joined by a blank line, and the answer. The last pair is the row's
    (prompt, response); a multi-turn conversation gives one pair per assistant turn.

    Args:
        messages: the row's ``messages`` column (a JSON list of ``{role, content}``).

    Returns:
        (prompt, response) pairs in conversation order; empty for an unparseable value.
    """
    try:
        turns = json.loads(messages)
    except (TypeError, json.JSONDecodeError):
        return []
    body = [t for t in turns if isinstance(t, dict) and t.get("role") != "system"]
    texts = [str(t.get("content") or "") for t in body]
    return [
        ("\n\n".join(texts[:j]), texts[j])
        for j, turn in enumerate(body)
        if turn.get("role") == "assistant"
    ]


def _rename(obj: Mapping[str, Any], field_map: Mapping[str, str] | None) -> dict[str, Any]:
    if not field_map:
        return dict(obj)
    renamed = {k: v for k, v in obj.items() if k not in field_map}
    # Mapped fields win over same-named unmapped ones: the user asked for them explicitly.
    renamed.update({field_map[k]: v for k, v in obj.items() if k in field_map})
    return renamed


# --- row assembly ------------------------------------------------------------------------


def _build_row(
    row: Mapping[str, Any],
    turns: list[dict[str, str]],
    schema: str,
    source: str,
    id_field: str,
    timestamp_field: str,
) -> Row:
    messages = _dumps(turns)
    consumed = set(_SCHEMA_FIELDS[schema]) | {id_field, timestamp_field}
    if schema in ANSWER_KEYS:
        consumed.add(answer_key(row, schema))  # an alias used as the answer is no extra
    extras = _dumps({k: v for k, v in row.items() if k not in consumed})
    _check_encodable(messages, "the conversation text")
    _check_encodable(extras, "an extra field")
    body = [t["content"] for t in turns if t["role"] != "system"]
    raw_id = row.get(id_field)
    row_id = "" if raw_id is None else str(raw_id).strip()
    timestamp = _timestamp(row.get(timestamp_field))
    # The ledger is UTF-8 Parquet: every text column must encode, not only the conversation.
    _check_encodable(row_id, f"field {id_field!r}")
    _check_encodable(timestamp or "", f"field {timestamp_field!r}")
    return new_row(
        id=row_id or _sha16(messages + "\n" + source),
        source=source,
        messages=messages,
        prompt="\n\n".join(body[:-1]),
        response=body[-1],
        extras=extras,
        timestamp=timestamp,
        status=ACTIVE,
    )


def _timestamp(value: Any) -> str | None:
    if is_blank(value):
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value).strip()


# One encoder for every row (json.dumps builds a new one per call when given options);
# default=str: Parquet inputs can carry dates, decimals or bytes in extra columns.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def _check_encodable(text: str, what: str) -> None:
    # JSON escapes such as "\ud800" decode to lone surrogates that no UTF-8 writer accepts.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise RowError(
            "invalid_utf8",
            f"{what} contains a lone surrogate (a \\u{ord(err.object[err.start]):x} "
            "escape) that is not valid Unicode text",
        ) from None


def _clean_text(text: str) -> str:
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _sha16(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
