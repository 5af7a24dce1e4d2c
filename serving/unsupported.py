"""OpenAI request fields finesift does not honour, and how each is refused.

A field that would change the answer in a way finesift cannot honour is refused with a 400
naming it and what to send instead, unless it holds its neutral value (``n: 1``,
``presence_penalty: 0``, ``response_format: {"type": "text"}``): clients that always send
the defaults keep working, and no client gets an answer other than the one it asked for.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticCustomError

# Field: (its neutral values besides null, why it is refused and what to send instead).
UNSUPPORTED: dict[str, tuple[tuple[Any, ...], str]] = {
    "n": ((1,), "only n=1 is supported; send several requests for more choices"),
    "best_of": ((1,), "best_of is not supported; send several requests and compare them"),
    "logprobs": ((False, 0), "logprobs are not supported; leave logprobs unset"),
    "top_logprobs": ((0,), "logprobs are not supported; leave top_logprobs unset"),
    "echo": ((False,), "echo is not supported; leave it false"),
    "suffix": (("",), "suffix (insertion) is not supported; leave it unset"),
    "tools": (([],), "tool calling is not supported; leave tools unset"),
    "tool_choice": (("none",), "tool calling is not supported; leave tool_choice unset"),
    "functions": (([],), "function calling is not supported; leave functions unset"),
    "function_call": (("none",), "function calling is not supported; leave it unset"),
    "response_format": (
        ({"type": "text"},),
        'structured output is not supported; leave response_format unset or {"type": "text"}',
    ),
    "logit_bias": (({},), "logit_bias is not supported; leave it unset"),
    "presence_penalty": ((0,), "presence_penalty is not supported; leave it unset or 0"),
    "frequency_penalty": ((0,), "frequency_penalty is not supported; leave it unset or 0"),
    "modalities": ((["text"],), "only text output is supported; leave modalities unset"),
    "audio": ((), "audio output is not supported; leave audio unset"),
    "prediction": ((), "predicted outputs are not supported; leave prediction unset"),
    "reasoning_effort": ((), "this server's models do not reason; leave it unset"),
    "verbosity": ((), "verbosity is not supported; leave it unset"),
    "web_search_options": ((), "web search is not supported; leave it unset"),
    "store": ((False,), "stored completions are not supported; leave store unset or false"),
}
MESSAGE_UNSUPPORTED: dict[str, tuple[tuple[Any, ...], str]] = {
    "name": (
        ("",),
        "message names are not supported (the chat template has no place for "
        "them); leave name unset",
    ),
    "tool_calls": (([],), "tool calls are not supported; leave tool_calls unset"),
    "refusal": ((), "refusal is not supported in requests; leave it unset"),
}


def _same(a: Any, b: Any) -> bool:
    """JSON equality that tells ``true`` from ``1`` (Python's ``True == 1`` does not)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def refuse_unsupported(data: Any, table: dict[str, tuple[tuple[Any, ...], str]]) -> Any:
    """Drop the fields of ``table`` that hold a neutral value; refuse any other value.

    Raises:
        PydanticCustomError: ``unsupported_field``, its ``field`` in the context.
    """
    if not isinstance(data, dict):
        return data
    for name in table.keys() & data.keys():
        neutral, why = table[name]
        value = data[name]
        if value is not None and not any(_same(value, n) for n in neutral):
            raise PydanticCustomError("unsupported_field", why, {"field": name})
    return {k: v for k, v in data.items() if k not in table}
