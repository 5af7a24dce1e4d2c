"""Text normalization and keys shared by exact dedup, fuzzy dedup and conflict detection.

Two texts that differ only in Unicode form, case, punctuation or spacing normalize to the
same string, so they get the same :func:`exact_key` and the same shingles.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Set
from functools import cache

# Apostrophes join a word ("don't" -> "dont"); every other punctuation mark separates words
# ("allez-vous" -> "allez vous"), so both spellings of either kind normalize alike.
_APOSTROPHES = "'\u2019\u02bc\u2018\uff07"


@cache
def _punctuation_table() -> dict[int, str | None]:
    """str.translate table: apostrophes to nothing, other Unicode punctuation (P*) to a space."""
    table: dict[int, str | None] = {}
    # Every punctuation code point lies in planes 0-1 (planes 2+ hold ideographs, tags and
    # private use); scanning only those keeps the one-off cost ~10x lower.
    for code in range(0x20000):
        if unicodedata.category(chr(code)).startswith("P"):
            table[code] = " "
    for char in _APOSTROPHES:
        table[ord(char)] = None
    return table


def normalize_text(s: str) -> str:
    """Normalize a text for comparison: NFKC, casefold, strip punctuation, collapse whitespace.

    Symbols and digits are kept ("2+2" and "3+3" stay different).

    Args:
        s: Any text.

    Returns:
        The normalized text: lowercase words separated by single spaces, no leading or
        trailing whitespace.
    """
    s = unicodedata.normalize("NFKC", s).casefold()
    return " ".join(s.translate(_punctuation_table()).split())


def _digest(*parts: str) -> str:
    """Hex digest of parts, length-prefixed so the boundaries between parts matter."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        data = part.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def exact_key(prompt: str, response: str) -> str:
    """Key of a row for exact dedup: rows equal after normalization share it.

    Args:
        prompt: The row's prompt.
        response: The row's response.

    Returns:
        A 32-character hex digest of the normalized prompt and response. Moving words
        across the prompt/response boundary changes the key.
    """
    return _digest(normalize_text(prompt), normalize_text(response))


def instruction_key(prompt: str) -> str:
    """Key of a row's instruction, grouping rows for conflict detection.

    Args:
        prompt: The row's prompt.

    Returns:
        A 32-character hex digest of the normalized prompt.
    """
    return _digest(normalize_text(prompt))


def shingles(s: str, size: int) -> set[str]:
    """Word shingles (n-grams of ``size`` words) of the normalized text.

    Args:
        s: Any text; it is normalized first.
        size: Words per shingle, at least 1.

    Returns:
        The set of shingles, each its words joined by a space. A text with fewer than
        ``size`` words is one shingle (the whole text); an empty text has none.
    """
    if size < 1:
        raise ValueError(f"shingle size must be at least 1, got {size}")
    words = normalize_text(s).split()
    if len(words) <= size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def jaccard(a: Set, b: Set) -> float:
    """Jaccard similarity |a & b| / |a | b| of two sets; two empty sets are identical (1.0)."""
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)
