"""Cheap language identification: Unicode script plus stopword profiles, no model.

Good enough to notice an English question answered in Spanish or in Cyrillic, which is
all ``language_mismatch`` needs. It only knows six Latin-script languages (en, fr, es,
de, it, pt); other Latin-script text reads as "unknown" and is never judged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

LANGUAGES = ("en", "fr", "es", "de", "it", "pt")

_STOPWORDS: dict[str, str] = {
    "en": "the and is are was were of to in that it with for this you have be not on as by at "
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

# word -> bitmask of the languages whose stopword list holds it
_STOP_MASK: dict[str, int] = {}
for _bit, _lang in enumerate(LANGUAGES):
    for _word in _STOPWORDS[_lang].split():
        _STOP_MASK[_word] = _STOP_MASK.get(_word, 0) | (1 << _bit)

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

# Naming a language (in English or in that language) is the cue that an answer in another
# language is expected: "translate into French", "answer in Spanish", "in German".
_LANGUAGE_CUE_RE = re.compile(
    r"translat|\blanguage|\b(?:english|french|spanish|german|italian|portuguese|chinese|"
    r"mandarin|cantonese|japanese|korean|russian|arabic|hindi|hebrew|greek|latin|dutch|"
    r"polish|turkish|swedish|norwegian|danish|finnish|ukrainian|vietnamese|thai|"
    r"indonesian|persian|farsi|urdu|bengali|français|francais|español|espanol|deutsch|"
    r"italiano|português|portugues|inglés|ingles|anglais|englisch)\b",
    re.IGNORECASE,
)


def script_counts(text: str) -> dict[str, int]:
    """Letters per Unicode script in ``text``.

    Args:
        text: Any text.

    Returns:
        Counts by script name (latin, cyrillic, greek, arabic, hebrew, devanagari, thai, cjk);
        scripts with no letters are absent.
    """
    if text.isascii():  # the common case, without eight regex scans
        n = sum(1 for ch in text if ch.isalpha())
        return {"latin": n} if n else {}
    counts = {}
    for name, pattern in _SCRIPTS.items():
        n = len(pattern.findall(text))
        if n:
            counts[name] = n
    return counts


@lru_cache(maxsize=4096)
def stopword_counts(words: Sequence[str]) -> tuple[int, ...]:
    """Stopword hits per language of :data:`LANGUAGES` among lower-cased ``words``.

    Args:
        words: Lower-cased word tokens (a tuple, so results can be cached).

    Returns:
        One count per language, in the order of :data:`LANGUAGES`.
    """
    counts = [0] * len(LANGUAGES)
    for word in words:
        mask = _STOP_MASK.get(word)
        if mask:
            for bit in range(len(LANGUAGES)):
                if mask >> bit & 1:
                    counts[bit] += 1
    return tuple(counts)


def dominant_script(counts: dict[str, int]) -> str | None:
    """The script holding most letters, or None for text without letters."""
    return max(counts, key=counts.__getitem__) if counts else None


def guess_language(words: Sequence[str], *, min_hits: int = 3) -> str | None:
    """The stopword language of Latin-script ``words``, or None when unsure.

    Args:
        words: Lower-cased word tokens.
        min_hits: Fewest stopword hits of the winning language to make a call.

    Returns:
        A code from :data:`LANGUAGES`, or None when there is too little evidence or two
        languages tie.
    """
    counts = stopword_counts(tuple(words))
    best = max(range(len(LANGUAGES)), key=counts.__getitem__)
    top = counts[best]
    runner_up = max(c for i, c in enumerate(counts) if i != best)
    if top < min_hits or top < 1.5 * runner_up:
        return None
    return LANGUAGES[best]


def mentions_language(text: str) -> bool:
    """True when ``text`` names a language or asks for a translation."""
    return _LANGUAGE_CUE_RE.search(text) is not None
