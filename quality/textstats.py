"""Cheap text statistics behind the heuristic rules: tokens, repetition, symbols, markup,
and the task cues of a prompt.

Every function is pure and fast: precompiled regexes, C-level string methods, and a
cheap pre-check before any expensive pass. The functions of a whole text that several
rules share are cached, since ``evaluate_batch`` scores 100k+ rows and each row is looked
at by every rule; the caches are keyed by the strings, whose hashes Python computes once.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Sequence
from functools import lru_cache

# Caches only need to span one row (its rules share the same analyses); a small size also
# bounds the memory held by cached keys when records are large.
CACHE_SIZE = 256

_WORD_RE = re.compile(r"\w+")
# ASCII characters outside \w, mapped to spaces: ASCII text tokenizes by translate + split.
_ASCII_NON_WORD = str.maketrans(
    {c: " " for c in map(chr, range(128)) if not (c.isalnum() or c == "_")}
)
_DIGITS_TO_SPACE = str.maketrans("0123456789_", " " * 11)  # "codice_12" -> "codice"
_LIST_MARKER_RE = re.compile(r"^(?:[-*•+]|\(?\d{1,4}[.)]|[a-zA-Z][.)])\s+")
_MARKER_STARTS = frozenset("-*•+(0123456789")
_BAD_CHAR_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd\ue000-\uf8ff]")
_ASCII_BAD = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
# Symbols, except the ones tables and rule lines are drawn with (| - = _ + :).
_SYMBOL_RE = re.compile(r"[^\w\s|\-=_+:]")
_STRUCTURE_RE = re.compile(r"[\s|\-=_+:]")
_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]+")
_ASCII_STRUCTURE = (string.whitespace + "|-=_+:").encode()
_ASCII_SYMBOLS = "".join(c for c in string.punctuation if c not in "|-=_+:").encode()
# One character repeated 10+ times, or a 2-10 character unit 8+ times ("hahahaha...").
# Digits (0.3333333333), rule lines and ellipses (----, ====, ....) are left alone.
_RUN_RE = re.compile(r"([^\s\d\-=_*#~.|`])\1{9,}|([^\s\d]{2,10}?)\2{7,}")

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
_WIKI_RE = re.compile(
    r"\[\[(?:file|image|category):|\{\{\s*(?:cite|citation|reflist|infobox)\b", re.IGNORECASE
)
# UTF-8 read as Latin-1/cp1252: "é" -> "Ã©", "’" -> "â€™", "😀" -> "ðŸ˜€", "п" -> "Ð¿".
_CP1252_HIGH = "\u0080-\u00bf€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ"
_MOJIBAKE_RE = re.compile(f"[ÂÃ][{_CP1252_HIGH}]|â€|â\u0080|ðŸ|[ÐÑ][{_CP1252_HIGH}]")


# A line is code-like when it starts with a keyword or ends with a brace or semicolon.
def _alternatives(text: str) -> tuple[str, ...]:
    return tuple(text.split("|"))


_CODE_STARTS = _alternatives(
    "def |class |import |from |#include|#!|function |const |let |var |public |private |"
    "return |return;|SELECT |CREATE |package |using |fn |func "
)
_CODE_ENDS = ("{", "}", ";")
# Inline code and quoted brackets, which need not balance: `print("(")`, c == '{'.
# (Quoted strings in general are not skipped: apostrophes in prose would pair up.)
_QUOTED_RE = re.compile(r"`[^`\n]*`|([\"'])[(){}\[\]]{1,3}\1")
_INCH_RE = re.compile(r'(?<=\d)"')  # 12" is twelve inches, not a quotation
_LIST_ITEM_RE = re.compile(r"^\s*(?:[-*•+]|\d{1,3}[.)]|[a-zA-Z][.)]|#+)\s")


@lru_cache(maxsize=CACHE_SIZE)
def words(text: str) -> tuple[str, ...]:
    """Lower-cased word tokens (Unicode ``\\w+`` runs) of ``text``."""
    if text.isascii():  # same tokens, about twice as fast
        return tuple(text.lower().translate(_ASCII_NON_WORD).split())
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
        A fraction in [0, 1]; 0 for texts of ``n`` words or fewer.
    """
    if len(tokens) <= n:
        return 0.0
    grams = list(zip(*[tokens[i:] for i in range(n)], strict=False))
    if len(set(grams)) == len(grams):  # the common case, without the Python-level scan
        return 0.0
    seen: set[tuple[str, ...]] = set()
    repeated = 0
    i, last = 0, len(grams) - 1
    while i <= last:
        gram = grams[i]
        if gram in seen:
            repeated += sum(map(len, gram))
            i += n
        else:
            seen.add(gram)
            i += 1
    total = sum(map(len, tokens))
    return repeated / total if total else 0.0


def duplicate_line_fraction(text: str) -> float:
    """Share of non-blank line characters in lines identical to an earlier line, once list
    markers are removed ("7. Click" and "8. Click" are the same line). Lines under 10
    characters ("}", "Prime") may repeat freely."""
    if "\n" not in text:
        return 0.0
    seen: set[str] = set()
    total = repeated = 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line[0] in _MARKER_STARTS or line[1:2] in (".", ")"):
            line = _LIST_MARKER_RE.sub("", line)
        total += len(line)
        if line in seen and len(line) >= 10:
            repeated += len(line)
        else:
            seen.add(line)
    return repeated / total if total else 0.0


def run_fraction(text: str) -> float:
    """Share of non-blank characters inside runs like "!!!!!!!!!!" or "hahahahahahahaha"."""
    runs = sum(m.end() - m.start() for m in _RUN_RE.finditer(text))
    return min(1.0, runs / max(1, len(text) - text.count(" "))) if runs else 0.0


def _ngram_tokens(text: str) -> list[str]:
    """Tokens for repetition n-grams: whole words in code (func1 and func2 differ), else
    letters only, so the counters of a loop ("Input: 15% tip", "item_12") do not hide it."""
    tokens = words(text)
    if looks_like_code(text):
        return list(tokens)
    joined = " ".join(tokens)
    if joined.replace(" ", "").isalpha():
        return list(tokens)
    return joined.translate(_DIGITS_TO_SPACE).split()


@lru_cache(maxsize=CACHE_SIZE)
def repetition(text: str) -> float:
    """How repetitive ``text`` is: the largest of its duplicated 8-gram, duplicated line and
    character-run fractions, each in [0, 1].

    8-grams rather than Gopher's 5-grams: templated answers ("Brie is a type of cheese.
    Pita is a type of bread.") legitimately repeat 5-grams, while degenerate loops repeat
    whole sentences.
    """
    tokens = _ngram_tokens(text)
    score = max(duplicate_ngram_fraction(tokens, 8), duplicate_line_fraction(text))
    # Runs hide in long tokens ("hahahahaha") or in text that is not words at all (emoji,
    # "!!!!!!"); ordinary prose is mostly words, so the regex pass is skipped for it.
    lengths = list(map(len, tokens))
    if sum(lengths) < 0.6 * (len(text) - text.count(" ")) or max(lengths, default=0) > 25:
        score = max(score, run_fraction(text))
    return score


def has_bad_chars(text: str) -> bool:
    """True for control characters (other than tab/newline/CR), U+FFFD or private use."""
    if text.isascii():  # bytes.translate scans in C, many times faster than a regex
        raw = text.encode()
        return len(raw.translate(None, _ASCII_BAD)) != len(raw)
    return _BAD_CHAR_RE.search(text) is not None


def symbol_fraction(text: str) -> float:
    """Share of symbols (not letters or digits) among the characters of ``text``, leaving out
    whitespace and the characters tables and rule lines are drawn with (| - = _ + :)."""
    raw = text.encode("ascii", "ignore")  # bytes.translate counts in C
    visible = len(raw.translate(None, _ASCII_STRUCTURE))
    symbols = len(raw) - len(raw.translate(None, _ASCII_SYMBOLS))
    if len(raw) < len(text):  # the few non-ASCII characters, by regex
        rest = non_ascii(text)
        visible += len(rest) - len(_STRUCTURE_RE.findall(rest))
        symbols += len(_SYMBOL_RE.findall(rest))
    return symbols / visible if visible > 0 else 0.0


def non_ascii(text: str) -> str:
    """The non-ASCII characters of ``text``, concatenated."""
    return "".join(_NON_ASCII_RE.findall(text))


def markup_count(text: str) -> int:
    """Leftover HTML tags, HTML entities and wiki markup in ``text``."""
    count = 0
    if "<" in text:
        count += len(_HTML_TAG_RE.findall(text))
    if "&" in text:
        count += len(_ENTITY_RE.findall(text))
    if "[[" in text or "{{" in text:
        count += len(_WIKI_RE.findall(text))
    return count


def mojibake_count(text: str) -> int:
    """Sequences typical of UTF-8 decoded as Latin-1/cp1252 ("Ã©", "â€™", "ðŸ")."""
    if text.isascii():
        return 0
    return len(_MOJIBAKE_RE.findall(text))


@lru_cache(maxsize=CACHE_SIZE)
def looks_like_code(text: str) -> bool:
    """True when ``text`` holds a code fence or at least two lines that look like code."""
    if "```" in text:
        return True
    if "\n" not in text:
        return False
    hits = 0
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(_CODE_STARTS) or line.endswith(_CODE_ENDS):
            hits += 1
            if hits == 2:
                return True
    return False


def is_list_item(line: str) -> bool:
    """True for a bullet, numbered or lettered list item, or a Markdown heading."""
    return _LIST_ITEM_RE.match(line) is not None


def unbalanced_brackets(text: str) -> bool:
    """True when a Markdown code fence or some bracket kind is opened and never closed.

    Brackets count as unbalanced only if they are both with and without quoted brackets
    and inline code (``c == '('`` but also ``"Person{" + name + "}"``); sad faces ":(" never
    count.
    """
    if text.count("```") % 2:
        return True
    if not _opens_more(text):
        return False
    text = text.replace(":(", "").replace(";(", "")
    if not _opens_more(text):
        return False
    return _opens_more(_QUOTED_RE.sub("", text.replace("```", "")))


def open_quote(text: str) -> bool:
    """True when a double quotation is opened and never closed: an odd number of straight
    double quotes (inch marks such as 12" left out) or more “ than ”."""
    if text.count("“") > text.count("”"):
        return True
    quotes = text.count('"')
    return quotes % 2 == 1 and (quotes - len(_INCH_RE.findall(text))) % 2 == 1


def _opens_more(text: str) -> bool:
    return (
        text.count("(") > text.count(")")
        or text.count("[") > text.count("]")
        or text.count("{") > text.count("}")
    )


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
