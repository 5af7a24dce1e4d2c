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

SCHEMAS = ("alpaca", "messages", "sharegpt", "prompt_completion")

# Fields each schema consumes; everything else goes to ``extras``.
_SCHEMA_FIELDS = {
    "alpaca": ("instruction", "input", "output", "system"),
    "messages": ("messages",),
    "sharegpt": ("conversations",),
    "prompt_completion": ("prompt", "completion", "system"),
}

# The answer field of the single-turn schemas, by preference: ``response`` is taken only
# when the schema's own name is absent (GPTeacher: instruction/input/response).
_ANSWER_KEYS = {
    "alpaca": ("output", "response"),
    "prompt_completion": ("completion", "response"),
}

FIELD_NAMES = frozenset(
    name for names in (*_SCHEMA_FIELDS.values(), *_ANSWER_KEYS.values()) for name in names
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

# Common spellings of a missing field, offered as a field_map fix in the error detail.
_ALIASES = {
    "output": ("answer", "target", "completion"),
    "instruction": ("question", "query", "prompt"),
    "completion": ("output", "answer"),
    "prompt": ("question", "instruction", "input"),
}

_ROLES = {"system": "system", "user": "user", "assistant": "assistant"}
_SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
}


class RowError(Exception):
    """A row that cannot be normalized.

    Attributes:
        reason: a code from :data:`quality.schema.REASONS`.
        detail: a human-readable explanation naming the field.
    """

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown reason code {reason!r}; add it to quality.schema.REASONS")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


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
        raise RowError("wrong_type", f"a row must be a JSON object, got {_type_name(obj)}")
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
    turns = _TURN_BUILDERS[schema](row)
    _check_roles(turns, "conversations" if schema == "sharegpt" else "messages")
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


# --- schema-specific turn builders -------------------------------------------------------


def _alpaca_turns(row: Mapping[str, Any]) -> list[dict[str, str]]:
    instruction = _required_text(row, "instruction")
    extra_input = _optional_text(row, "input")
    user = f"{instruction}\n\n{extra_input}" if extra_input else instruction
    turns = _system_turn(row)
    turns += [
        {"role": "user", "content": user},
        {"role": "assistant", "content": _required_text(row, _answer_key(row, "alpaca"))},
    ]
    return turns


def _prompt_completion_turns(row: Mapping[str, Any]) -> list[dict[str, str]]:
    turns = _system_turn(row)
    prompt = _required_text(row, "prompt")
    answer = _required_text(row, _answer_key(row, "prompt_completion"))
    turns += [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    return turns


def _answer_key(row: Mapping[str, Any], schema: str) -> str:
    """The field holding the answer: the schema's own name, else an alias present."""
    keys = _ANSWER_KEYS[schema]
    return next((key for key in keys if key in row), keys[0])


def _messages_turns(row: Mapping[str, Any]) -> list[dict[str, str]]:
    return _chat_turns(row, "messages", "role", "content", _ROLES)


def _sharegpt_turns(row: Mapping[str, Any]) -> list[dict[str, str]]:
    return _chat_turns(row, "conversations", "from", "value", _SHAREGPT_ROLES)


def _chat_turns(
    row: Mapping[str, Any], field: str, role_key: str, text_key: str, roles: Mapping[str, str]
) -> list[dict[str, str]]:
    """Parse a list of turns, mapping role names; empty system turns are dropped."""
    if field not in row:
        raise RowError("missing_field", f"required field {field!r} is missing")
    items = row[field]
    if items is None:
        raise RowError("empty_field", f"field {field!r} is null")
    if not isinstance(items, list):
        raise RowError("wrong_type", f"field {field!r} must be a list, got {_type_name(items)}")
    if not items:
        raise RowError("empty_field", f"field {field!r} is an empty list")
    turns = []
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        if not isinstance(item, Mapping):
            raise RowError("wrong_type", f"{where} must be an object, got {_type_name(item)}")
        name = _required_text(item, role_key, where=f"{where}.{role_key}")
        role = roles.get(name.lower())
        if role is None:
            allowed = ", ".join(roles)
            raise RowError("bad_roles", f"{where} has unknown role {name!r}; allowed: {allowed}")
        if role == "system" and _is_blank(item.get(text_key)):
            continue
        content = _required_text(item, text_key, where=f"{where}.{text_key}")
        turns.append({"role": role, "content": content})
    return turns


_TURN_BUILDERS = {
    "alpaca": _alpaca_turns,
    "messages": _messages_turns,
    "sharegpt": _sharegpt_turns,
    "prompt_completion": _prompt_completion_turns,
}


def _check_roles(turns: list[dict[str, str]], field: str) -> None:
    """Optional system first, then user/assistant alternating from user, ending on assistant."""
    body = turns[1:] if turns and turns[0]["role"] == "system" else turns
    for i, turn in enumerate(body):
        expected = "user" if i % 2 == 0 else "assistant"
        if turn["role"] != expected:
            raise RowError(
                "bad_roles",
                f"{field} turn {i + len(turns) - len(body)} has role {turn['role']!r} where "
                f"{expected!r} was expected; roles must alternate user/assistant after an "
                "optional leading system turn",
            )
    if not any(turn["role"] == "assistant" for turn in body):
        raise RowError("no_assistant_turn", f"{field} has no assistant turn to learn from")
    if body[-1]["role"] != "assistant":
        raise RowError(
            "bad_roles", f"{field} ends with a user turn; the last turn must be the assistant's"
        )


# --- field helpers -----------------------------------------------------------------------


def _rename(obj: Mapping[str, Any], field_map: Mapping[str, str] | None) -> dict[str, Any]:
    if not field_map:
        return dict(obj)
    renamed = {k: v for k, v in obj.items() if k not in field_map}
    # Mapped fields win over same-named unmapped ones: the user asked for them explicitly.
    renamed.update({field_map[k]: v for k, v in obj.items() if k in field_map})
    return renamed


def _required_text(row: Mapping[str, Any], key: str, *, where: str | None = None) -> str:
    where = where or repr(key)
    if key not in row:
        raise RowError("missing_field", f"required field {where} is missing{_hint(row, key)}")
    value = row[key]
    if value is None:
        raise RowError("empty_field", f"field {where} is null")
    if not isinstance(value, str):
        raise RowError("wrong_type", f"field {where} must be a string, got {_type_name(value)}")
    value = value.strip()
    if not value:
        raise RowError("empty_field", f"field {where} is empty")
    return value


def _optional_text(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RowError("wrong_type", f"field {key!r} must be a string, got {_type_name(value)}")
    return value.strip()


def _system_turn(row: Mapping[str, Any]) -> list[dict[str, str]]:
    system = _optional_text(row, "system")
    return [{"role": "system", "content": system}] if system else []


def _hint(row: Mapping[str, Any], key: str) -> str:
    present = [alias for alias in _ALIASES.get(key, ()) if alias in row]
    if not present:
        return ""
    return f" (found {present[0]!r}: set read.field_map {{{present[0]}: {key}}})"


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _type_name(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


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
    if schema in _ANSWER_KEYS:
        consumed.add(_answer_key(row, schema))  # an alias used as the answer is no extra
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
    if _is_blank(value):
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
