"""The turns of one input row, by schema, and the checks on its fields.

Each schema of :mod:`quality.records` has a builder here that turns a row (fields already
renamed by ``read.field_map``) into ``[{role, content}, ...]``; a bad field raises
:class:`RowError`, which the readers turn into a quarantined row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quality.schema import REASONS

# The answer field of the single-turn schemas, by preference: ``response`` is taken only
# when the schema's own name is absent (GPTeacher: instruction/input/response).
ANSWER_KEYS = {
    "alpaca": ("output", "response"),
    "prompt_completion": ("completion", "response"),
}

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


def _alpaca_turns(row: Mapping[str, Any]) -> list[dict[str, str]]:
    instruction = _required_text(row, "instruction")
    extra_input = _optional_text(row, "input")
    user = f"{instruction}\n\n{extra_input}" if extra_input else instruction
    turns = _system_turn(row)
    turns += [
        {"role": "user", "content": user},
        {"role": "assistant", "content": _required_text(row, answer_key(row, "alpaca"))},
    ]
    return turns


def _prompt_completion_turns(row: Mapping[str, Any]) -> list[dict[str, str]]:
    turns = _system_turn(row)
    prompt = _required_text(row, "prompt")
    answer = _required_text(row, answer_key(row, "prompt_completion"))
    turns += [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    return turns


def answer_key(row: Mapping[str, Any], schema: str) -> str:
    """The field holding the answer: the schema's own name, else an alias present."""
    keys = ANSWER_KEYS[schema]
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
        raise RowError("wrong_type", f"field {field!r} must be a list, got {type_name(items)}")
    if not items:
        raise RowError("empty_field", f"field {field!r} is an empty list")
    turns = []
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        if not isinstance(item, Mapping):
            raise RowError("wrong_type", f"{where} must be an object, got {type_name(item)}")
        name = _required_text(item, role_key, where=f"{where}.{role_key}")
        role = roles.get(name.lower())
        if role is None:
            allowed = ", ".join(roles)
            raise RowError("bad_roles", f"{where} has unknown role {name!r}; allowed: {allowed}")
        if role == "system" and is_blank(item.get(text_key)):
            continue
        content = _required_text(item, text_key, where=f"{where}.{text_key}")
        turns.append({"role": role, "content": content})
    return turns


TURN_BUILDERS = {
    "alpaca": _alpaca_turns,
    "messages": _messages_turns,
    "sharegpt": _sharegpt_turns,
    "prompt_completion": _prompt_completion_turns,
}


def check_roles(turns: list[dict[str, str]], field: str) -> None:
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


def _required_text(row: Mapping[str, Any], key: str, *, where: str | None = None) -> str:
    where = where or repr(key)
    if key not in row:
        raise RowError("missing_field", f"required field {where} is missing{_hint(row, key)}")
    value = row[key]
    if value is None:
        raise RowError("empty_field", f"field {where} is null")
    if not isinstance(value, str):
        raise RowError("wrong_type", f"field {where} must be a string, got {type_name(value)}")
    value = value.strip()
    if not value:
        raise RowError("empty_field", f"field {where} is empty")
    return value


def _optional_text(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RowError("wrong_type", f"field {key!r} must be a string, got {type_name(value)}")
    return value.strip()


def _system_turn(row: Mapping[str, Any]) -> list[dict[str, str]]:
    system = _optional_text(row, "system")
    return [{"role": "system", "content": system}] if system else []


def _hint(row: Mapping[str, Any], key: str) -> str:
    present = [alias for alias in _ALIASES.get(key, ()) if alias in row]
    if not present:
        return ""
    return f" (found {present[0]!r}: set read.field_map {{{present[0]}: {key}}})"


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def type_name(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)
