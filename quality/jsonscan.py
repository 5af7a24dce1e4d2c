"""JSON text read without parsing it: how deep it nests, and where the elements of an
array are when the array as a whole does not parse.

Python's JSON parser recurses once per nesting level, so a short record of ``[[[[...``
raises RecursionError rather than a decoding error; :func:`too_deep` finds such text first
(cheaply: only text with more than :data:`MAX_DEPTH` brackets is scanned), and
:func:`object_depth` checks values that arrive already parsed (Parquet).

:func:`element_end` finds where an array element ends by tracking strings and brackets,
so a file with one syntax error loses only the element that holds it: the others parse
on their own. A string left open ends at the end of its line (a JSON string never holds a
raw line end), which keeps one missing quote from swallowing a whole pretty-printed file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MAX_DEPTH = 128
"""Deepest nesting a record may have (objects and arrays, the record itself counting 1);
serde_json's default recursion limit. A chat row nests 3 deep."""

# A string (closed, or left open at a line end) or one structural character.
_STRING = r'"[^"\\\r\n]*(?:\\.[^"\\\r\n]*)*"?'
_TOKEN = re.compile(_STRING + r"|[\[\]{},:]")
_BRACKETS = re.compile(_STRING + r"|[\[\]{}]")
_BLANK = re.compile(r"[ \t\r\n]*")  # JSON's whitespace
_OPEN = frozenset("[{")
_CLOSE = frozenset("]}")


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """True when the JSON ``text`` nests objects and arrays deeper than ``limit``."""
    if text.count("[") + text.count("{") <= limit:
        return False  # the common case: too few brackets to nest that deep, no scan
    depth = 0
    for match in _BRACKETS.finditer(text):
        char = match.group()
        if char in _OPEN:
            depth += 1
            if depth > limit:
                return True
        elif char in _CLOSE:
            depth = max(0, depth - 1)
    return False


def object_depth(value: Any) -> int:
    """Nesting depth of a parsed value: 0 for a scalar, 1 for a flat list or dict.

    Iterative, so it cannot itself run out of stack on the values it guards against.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def element_end(text: str, begin: int) -> int:
    """Where the array element starting at ``begin`` ends: the offset of the first comma
    or closing bracket outside strings and nested brackets, or ``len(text)``.

    The element's text is not checked, so a malformed element ends where its brackets say.
    """
    depth = 0
    for match in _TOKEN.finditer(text, begin):
        char = match.group()
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            if depth == 0 and char == "]":
                return match.start()
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            return match.start()
    return len(text)


def top_level_keys(text: str, start: int) -> dict[str, int]:
    """Keys of the object opening at ``text[start] == "{"``, each with the offset of its
    value, found without parsing (so also in an object that does not parse).

    Returns:
        ``{key: offset of the first non-blank character of its value}``; a key that
        appears twice keeps its first offset.
    """
    import json

    keys: dict[str, int] = {}
    depth = 0
    pending: str | None = None  # a string at depth 0 that may be a key
    for match in _TOKEN.finditer(text, start + 1):
        token = match.group()
        if token in _OPEN:
            depth += 1
        elif token in _CLOSE:
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and token == ":" and pending is not None:
            keys.setdefault(pending, _BLANK.match(text, match.end()).end())
        if depth == 0 and token.startswith('"'):
            try:
                pending = json.loads(token)
            except ValueError:
                pending = None
        elif token != ":":
            pending = None
    return keys
