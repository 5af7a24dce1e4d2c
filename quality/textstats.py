"""Cheap text statistics behind the heuristic rules: tokens, repetition, symbols, markup.

Every function is pure and fast (precompiled regexes, one pass where possible). The ones
taking a whole text are cached, because several rules look at the same response and
``evaluate_batch`` scores 100k+ rows; the cache is keyed by the string, whose hash Python
computes once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache

_CACHE = 4096

_WORD_RE = re.compile(r"\w+")
_BAD_CHAR_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd\ue000-\uf8ff]")
_SYMBOL_RE = re.compile(r"[^\w\s]")
# One character repeated 10+ times, or a 2-4 character unit 8+ times ("hahahaha...").
# Rule lines and ellipses (----, ====, ....) are left alone.
_CHAR_RUN_RE = re.compile(r"([^\s\-=_*#~.|`])\1{9,}|(\S{2,4}?)\2{7,}")

_HTML_TAG_RE = re.compile(
    r"</?(?:a|abbr|b|blockquote|body|br|center|code|div|em|font|h[1-6]|head|hr|html|i|"
    r"iframe|img|li|link|meta|ol|p|pre|script|section|small|span|strong|style|sub|sup|"
    r"table|tbody|td|th|thead|title|tr|u|ul)\b[^<>]{0,200}>",
    re.IGNORECASE,
)
_ENTITY_RE = re.compile(
    r"&(?:amp|lt|gt|quot|apos|nbsp|mdash|ndash|hellip|rsquo|lsquo|ldquo|rdquo|copy|reg|"
    r"#\d{2,5}|#x[0-9a-f]{2,4});",
    re.IGNORECASE,
)
_WIKI_RE = re.compile(r"\[\[(?:file|image|category):|\{\{\s*(?:cite|citation|reflist|infobox)\b",
                      re.IGNORECASE)
# UTF-8 read as Latin-1/cp1252: "é" -> "Ã©", "’" -> "â€™", "😀" -> "ðŸ˜€", "п" -> "Ð¿".
_CP1252_HIGH = "\u0080-\u00bf€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ"
_MOJIBAKE_RE = re.compile(f"[ÂÃ][{_CP1252_HIGH}]|â€|â\u0080|ðŸ|[ÐÑ][{_CP1252_HIGH}]")

_URL_RE = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'`()\[\]{}|]+", re.IGNORECASE)
_URL_HOST_RE = re.compile(r"^(?:https?://)?(?:[^@/]*@)?([^/:?#]+)", re.IGNORECASE)
# Hosts that name no real page: code samples and templates use them as placeholders.
_PLACEHOLDER_HOST_RE = re.compile(
    r"^(?:localhost|127\.\d+\.\d+\.\d+|0\.0\.0\.0|(?:[\w-]+\.)*example\.(?:com|org|net)|"
    r"(?:[\w-]+\.)*your[\w-]*\.\w+|(?:www\.)?(?:domain|site|website|mysite)\.com)$",
    re.IGNORECASE,
)

_CODE_RE = re.compile(
    r"```|^\s*(?:def |class |import |from \S+ import|#include|function\b|const |let |var |"
    r"public |private |return\b|SELECT |CREATE |package |using |fn |func )|[{};]\s*$",
    re.MULTILINE,
)
_LIST_ITEM_RE = re.compile(r"^\s*(?:[-*•+]|\d{1,3}[.)]|[a-zA-Z][.)]|#+)\s")


@lru_cache(maxsize=_CACHE)
def words(text: str) -> tuple[str, ...]:
    """Lower-cased word tokens (Unicode ``\\w+`` runs) of ``text``."""
    return tuple(_WORD_RE.findall(text.lower()))


def trigrams(tokens: Sequence[str]) -> list[tuple[str, str, str]]:
    """Consecutive word trigrams of ``tokens``."""
    return list(zip(tokens, tokens[1:], tokens[2:], strict=False))


def duplicate_ngram_fraction(tokens: Sequence[str], n: int) -> float:
    """Share of word characters inside n-grams that already occurred earlier (Gopher).

    Scans left to right; a repeated n-gram counts its characters once and the scan jumps
    past it, as in datatrove's ``find_all_duplicate``.

    Args:
        tokens: Word tokens.
        n: N-gram size in words.

    Returns:
        A fraction in [0, 1]; 0 for texts shorter than ``n`` words.
    """
    total = sum(map(len, tokens))
    if len(tokens) < n or total == 0:
        return 0.0
    seen: set[tuple[str, ...]] = set()
    repeated = 0
    i, last = 0, len(tokens) - n
    while i <= last:
        gram = tuple(tokens[i : i + n])
        if gram in seen:
            repeated += sum(map(len, gram))
            i += n
        else:
            seen.add(gram)
            i += 1
    return repeated / total


def duplicate_line_fraction(text: str) -> float:
    """Share of non-blank line characters in lines identical to an earlier line."""
    seen: set[str] = set()
    total = repeated = 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        total += len(line)
        if line in seen:
            repeated += len(line)
        else:
            seen.add(line)
    return repeated / total if total else 0.0


def char_run_fraction(text: str) -> float:
    """Share of non-blank characters inside runs like "!!!!!!!!!!" or "hahahahahahahaha"."""
    runs = sum(m.end() - m.start() for m in _CHAR_RUN_RE.finditer(text))
    if not runs:
        return 0.0
    return min(1.0, runs / max(1, len(text) - text.count(" ")))


@lru_cache(maxsize=_CACHE)
def repetition(text: str) -> float:
    """How repetitive ``text`` is: the largest of its duplicated 5-gram, line and character-run
    fractions, each in [0, 1]."""
    return max(
        duplicate_ngram_fraction(words(text), 5),
        duplicate_line_fraction(text),
        char_run_fraction(text),
    )


def bad_char_count(text: str) -> int:
    """Control characters (other than tab/newline/CR), U+FFFD and private-use characters."""
    return len(_BAD_CHAR_RE.findall(text))


def symbol_fraction(text: str) -> float:
    """Share of non-blank characters that are neither letters, digits nor underscore."""
    visible = len(text) - sum(text.count(ch) for ch in " \n\t\r")
    if visible <= 0:
        return 0.0
    return len(_SYMBOL_RE.findall(text)) / visible


def markup_count(text: str) -> int:
    """Leftover HTML tags, HTML entities and wiki markup in ``text``."""
    if "<" not in text and "&" not in text and "[[" not in text and "{{" not in text:
        return 0
    return (len(_HTML_TAG_RE.findall(text)) + len(_ENTITY_RE.findall(text))
            + len(_WIKI_RE.findall(text)))


def mojibake_count(text: str) -> int:
    """Sequences typical of UTF-8 decoded as Latin-1/cp1252 ("Ã©", "â€™", "ðŸ")."""
    if text.isascii():
        return 0
    return len(_MOJIBAKE_RE.findall(text))


def urls(text: str) -> list[str]:
    """URLs in ``text`` (http(s):// or www.), trailing punctuation removed."""
    if "http" not in text and "www." not in text:
        return []
    return [u.rstrip(".,;:!?*_'\"") for u in _URL_RE.findall(text)]


def url_host(url: str) -> str:
    """The lower-cased host of ``url``, without a leading "www."."""
    m = _URL_HOST_RE.match(url)
    host = (m.group(1) if m else url).lower()
    return host[4:] if host.startswith("www.") else host


def is_placeholder_host(host: str) -> bool:
    """True for hosts that name no real page (localhost, example.com, yourdomain.com...)."""
    return _PLACEHOLDER_HOST_RE.match(host) is not None


@lru_cache(maxsize=_CACHE)
def looks_like_code(text: str) -> bool:
    """True when ``text`` holds a code fence or at least two lines that look like code."""
    if "```" in text:
        return True
    hits = 0
    for _ in _CODE_RE.finditer(text):
        hits += 1
        if hits >= 2:
            return True
    return False


def is_list_item(line: str) -> bool:
    """True for a bullet, numbered or lettered list item, or a Markdown heading."""
    return _LIST_ITEM_RE.match(line) is not None


def unbalanced_brackets(text: str) -> bool:
    """True when some bracket kind, or a Markdown code fence, is opened and never closed."""
    if text.count("```") % 2:
        return True
    return any(text.count(o) > text.count(c) for o, c in ("()", "[]", "{}"))


def lexical_diversity(tokens: Sequence[str]) -> float:
    """Herdan's C, log(types) / log(tokens): ~0.85-0.95 for ordinary text, lower when
    words repeat. It depends on length far less than the plain type/token ratio.

    Returns:
        A value in [0, 1]; 1.0 for texts of fewer than 10 words, which are too short to tell.
    """
    n = len(tokens)
    if n < 10:
        return 1.0
    return math.log(len(set(tokens))) / math.log(n)
