"""Cheap language identification: Unicode script plus stopword profiles, no model.

Good enough to notice an English question answered in Spanish or in Cyrillic, which is
all ``language_mismatch`` needs. It only knows six Latin-script languages (en, fr, es,
de, it, pt); other Latin-script text usually has too few of their stopwords to get a
guess, and is then not judged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

LANGUAGES = ("en", "fr", "es", "de", "it", "pt")

_STOPWORDS: dict[str, str] = {
    "en": "a the and is are was were of to in that it with for this you have be not on as by at "
    "from or which what how an they will can would there their been has do does i we my "
    "your if but about when who should could these those",
    "fr": "le la les des est et une un du dans pour que qui pas sur ce cette il elle nous vous "
    "sont avec au aux plus ne se ou mais je être été leur très sa son ses mes comme tout "
    "fait peut",
    "es": "el la los las es y de que en un una por con para del al se no su sus lo como más "
    "pero está son este esta fue muy yo también hay ser tiene puede cuando sobre entre",
    "de": "der die das und ist nicht ein eine zu den mit von sich des auf für im dem auch es "
    "an werden aus er sie wir ich wie oder aber sind hat wird einen nach bei dass kann "
    "noch nur einer",
    "it": "il lo la gli le di che è e un una per non sono con del della nel alla anche come "
    "più ma questo questa si ha ho io essere dei delle degli nella sul può molto",
    "pt": "o a os as de que é e um uma para com não em do da dos das no na por se mais mas "
    "como ele ela são foi também muito eu você isso está pelo pela seu sua",
}

# word -> indices (into LANGUAGES) of the languages whose stopword list holds it
_STOP_LANGS: dict[str, tuple[int, ...]] = {}
for _i, _lang in enumerate(LANGUAGES):
    for _word in _STOPWORDS[_lang].split():
        _STOP_LANGS[_word] = (*_STOP_LANGS.get(_word, ()), _i)
_STOP_KEYS = frozenset(_STOP_LANGS)
_ASCII_NON_LETTERS = bytes(b for b in range(128) if not chr(b).isalpha())
_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]+")

_SCRIPTS: dict[str, re.Pattern[str]] = {
    "latin": re.compile(r"[A-Za-z\u00c0-\u024f]"),
    "cyrillic": re.compile(r"[\u0400-\u04ff]"),
    "greek": re.compile(r"[\u0370-\u03ff]"),
    "arabic": re.compile(r"[\u0600-\u06ff\u0750-\u077f]"),
    "hebrew": re.compile(r"[\u0590-\u05ff]"),
    "devanagari": re.compile(r"[\u0900-\u097f]"),
    "thai": re.compile(r"[\u0e00-\u0e7f]"),
    "cjk": re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]"),
}


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Naming a language (in English or in that language) is the cue that an answer in another
# language is expected: "translate into French", "answer in Spanish", "in German".
_LANGUAGE_NAMES = _wordset(
    "english french spanish german italian portuguese chinese mandarin cantonese japanese "
    "korean russian arabic hindi hebrew greek latin dutch polish turkish swedish norwegian "
    "danish finnish ukrainian vietnamese thai indonesian persian farsi urdu bengali "
    "français francais español espanol deutsch italiano português portugues inglés ingles "
    "anglais englisch"
)
_WORD_RE = re.compile(r"\w+")


def stopwords(language: str) -> frozenset[str]:
    """The stopword profile of ``language`` (a code from :data:`LANGUAGES`)."""
    return _wordset(_STOPWORDS[language])


def script_counts(text: str) -> dict[str, int]:
    """Letters per Unicode script in ``text``.

    Args:
        text: Any text.

    Returns:
        Counts by script name (latin, cyrillic, greek, arabic, hebrew, devanagari, thai, cjk);
        scripts with no letters are absent.
    """
    # ASCII letters are counted in C; only the (usually few) other characters by regex.
    raw = text.encode("ascii", "ignore")
    ascii_letters = len(raw.translate(None, _ASCII_NON_LETTERS))
    counts = {"latin": ascii_letters} if ascii_letters else {}
    if len(raw) < len(text):
        rest = "".join(_NON_ASCII_RE.findall(text))
        for name, pattern in _SCRIPTS.items():
            n = len(pattern.findall(rest))
            if n:
                counts[name] = counts.get(name, 0) + n
    return counts


def stopword_counts(words: Iterable[str]) -> tuple[int, ...]:
    """Distinct stopwords of each language of :data:`LANGUAGES` among lower-cased ``words``.

    Distinct words, not occurrences: a name or URL part repeated many times ("com", "a")
    cannot outweigh the rest of the text.

    Args:
        words: Lower-cased word tokens.

    Returns:
        One count per language, in the order of :data:`LANGUAGES`.
    """
    counts = [0] * len(LANGUAGES)
    for word in _STOP_KEYS.intersection(words):
        for i in _STOP_LANGS[word]:
            counts[i] += 1
    return tuple(counts)


def dominant_script(counts: dict[str, int]) -> str | None:
    """The script holding most letters, or None for text without letters."""
    return max(counts, key=counts.__getitem__) if counts else None


def guess_language(
    words: Sequence[str],
    *,
    counts: Sequence[int] | None = None,
    min_hits: int = 3,
    min_share: float = 0.05,
) -> str | None:
    """The stopword language of Latin-script ``words``, or None when unsure.

    Args:
        words: Lower-cased word tokens.
        counts: Their :func:`stopword_counts`, when already known.
        min_hits: Fewest distinct stopwords of the winning language to make a call.
        min_share: Fewest distinct stopwords per word: 100 words of prose hold 20-30, while
            lists of names or titles hold too few to tell.

    Returns:
        A code from :data:`LANGUAGES`, or None when there is too little evidence or two
        languages are close.
    """
    if counts is None:
        counts = stopword_counts(words)
    top = max(counts)
    runner_up = sorted(counts)[-2]
    if top < max(min_hits, min_share * len(words)) or top < 1.5 * runner_up:
        return None
    return LANGUAGES[counts.index(top)]


def mentions_language(text: str, words: Sequence[str] | None = None) -> bool:
    """True when ``text`` names a language or asks for a translation.

    Args:
        text: Lower-cased text.
        words: Its word tokens, when already known.
    """
    if "translat" in text or "language" in text:
        return True
    return not _LANGUAGE_NAMES.isdisjoint(_WORD_RE.findall(text) if words is None else words)
