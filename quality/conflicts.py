"""Conflicts: rows with the same instruction (same :func:`quality.text.instruction_key`)
whose answers disagree.

One group of rows sharing an instruction keeps only its best-quality row. The others are
near-duplicates when their answer agrees with the kept answer (directly or through a chain
of agreeing answers), and conflicts otherwise; both point to the kept row.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from quality.dedup import quality_order
from quality.text import jaccard, normalize_text, shingles

# Characters per n-gram when comparing short answers: long enough that unrelated short
# answers share few grams, short enough that one changed word leaves most of them intact.
CHAR_NGRAM = 4
# Answers shorter than this many shingles' worth of words are compared by character
# n-grams: with 3-word shingles, one changed word in a 10-word answer already halves the
# word-shingle Jaccard.
_SHORT_SHINGLES = 4
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class _Answer:
    """What comparisons need of one answer, computed once."""

    folded: str
    n_words: int
    word_shingles: frozenset[str]
    char_grams: frozenset[str]
    numbers: frozenset[str]


def _fold(s: str) -> str:
    """normalize_text without diacritics, so "ça va" and "ca va" compare equal."""
    s = normalize_text(s)
    if s.isascii():
        return s
    decomposed = unicodedata.normalize("NFKD", s)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _answer(s: str, shingle_size: int) -> _Answer:
    folded = _fold(s)
    grams = {folded[i : i + CHAR_NGRAM] for i in range(max(1, len(folded) - CHAR_NGRAM + 1))}
    return _Answer(
        folded=folded,
        n_words=len(folded.split()),
        word_shingles=frozenset(shingles(folded, shingle_size)),
        char_grams=frozenset(grams),
        numbers=frozenset(_NUMBER.findall(folded)),
    )


def _similarity(a: _Answer, b: _Answer, shingle_size: int) -> float:
    if a.folded == b.folded:
        return 1.0
    if min(a.n_words, b.n_words) >= _SHORT_SHINGLES * shingle_size:
        return jaccard(a.word_shingles, b.word_shingles)
    # In a short answer a different number is a different answer ("42" vs "43").
    if a.numbers != b.numbers:
        return 0.0
    return jaccard(a.char_grams, b.char_grams)


def answer_similarity(a: str, b: str, *, shingle_size: int = 3) -> float:
    """How much two answers to the same instruction agree, in [0, 1].

    1.0 when they are equal after normalization (case, punctuation, spacing, accents).
    Otherwise the Jaccard similarity of their word shingles when both are long (at least
    4 * shingle_size words), else of their character 4-grams, with 0.0 for short answers
    that mention different numbers.

    Args:
        a: One answer.
        b: Another answer.
        shingle_size: Words per shingle.

    Returns:
        The similarity; answers agree when it is >= conflicts.agree_threshold.
    """
    return _similarity(_answer(a, shingle_size), _answer(b, shingle_size), shingle_size)


def resolve_instruction_group(
    responses: Sequence[str],
    scores: np.ndarray,
    ids: Sequence[str],
    *,
    agree_threshold: float,
    shingle_size: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the best row of a group sharing one instruction; say why the others go.

    Rows whose answers agree (:func:`answer_similarity` >= agree_threshold) are linked; the
    rows linked to the kept row, directly or through other agreeing rows, are its
    near-duplicates, and every other row is a conflict with it.

    Args:
        responses: The answers of the rows of one instruction group.
        scores: Quality scores, shape (n,).
        ids: Row ids, length n.
        agree_threshold: Similarity at or above which two answers agree.
        shingle_size: Words per shingle.

    Returns:
        (dup_of, conflict_with), int64 arrays of shape (n,): for each dropped row exactly
        one of them holds the kept row's index, the other -1; the kept row has -1 in both.
        A group of one row is kept.
    """
    n = len(ids)
    if len(responses) != n:
        raise ValueError(f"got {len(responses)} responses for {len(ids)} ids")
    dup_of = np.full(n, -1, dtype=np.int64)
    conflict_with = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return dup_of, conflict_with
    best = int(quality_order(scores, ids)[0])
    agrees = _component_of(best, responses, agree_threshold, shingle_size)
    others = np.arange(n) != best
    dup_of[agrees & others] = best
    conflict_with[~agrees & others] = best
    return dup_of, conflict_with


def _component_of(
    start: int, responses: Sequence[str], agree_threshold: float, shingle_size: int
) -> np.ndarray:
    """Rows linked to ``start`` by chains of agreeing answers (breadth-first search).

    Each row joins at most once, so the cost is (component size) x (group size)
    comparisons, not all pairs, and equal answers are compared once.
    """
    cache: dict[str, _Answer] = {}

    def answer(i: int) -> _Answer:
        if responses[i] not in cache:
            cache[responses[i]] = _answer(responses[i], shingle_size)
        return cache[responses[i]]

    member = np.zeros(len(responses), dtype=bool)
    member[start] = True
    frontier = [start]
    while frontier:
        current = answer(frontier.pop())
        for i in np.flatnonzero(~member):
            if _similarity(current, answer(int(i)), shingle_size) >= agree_threshold:
                member[i] = True
                frontier.append(int(i))
    return member


INDISTINGUISHABLE = 0.01
"""Composed-score gap at or below which a conflict's answers count as indistinguishable."""


def indistinguishable(
    scores: np.ndarray, conflict_with: np.ndarray, *, tolerance: float = INDISTINGUISHABLE
) -> np.ndarray:
    """Conflict rows whose score is within ``tolerance`` of the row kept instead.

    Such a conflict was decided by the tie-break (the smaller id) rather than by evidence:
    no signal tells the answers apart, so the ledger says so (``detail``) and a human can
    check. A NaN score on either side counts as indistinguishable.

    Args:
        scores: Composed quality scores of one instruction group, (n,).
        conflict_with: From :func:`resolve_instruction_group`: the kept row's index for each
            conflicting row, -1 elsewhere.
        tolerance: Largest score gap that still counts as a tie.

    Returns:
        bool (n,), True for the conflict rows decided without evidence.
    """
    scores = np.asarray(scores, dtype=np.float64)
    conflict_with = np.asarray(conflict_with)
    out = np.zeros(len(scores), dtype=bool)
    rows = np.flatnonzero(conflict_with >= 0)
    gap = scores[conflict_with[rows]] - scores[rows]
    out[rows] = ~(gap > tolerance)  # NaN gaps land here too
    return out


MISMATCHED_CONFLICT = "the kept answer fits the instruction, this one does not"
"""How the ``detail`` of a conflict that relevance decided begins: the dropped answer was
mismatched (it fits another task), the kept one fits."""


def mismatched_conflict_detail(reason: str) -> str:
    """The ``detail`` of a mismatched row dropped as a fitting answer's conflict."""
    return f"{MISMATCHED_CONFLICT}: {reason}"


def lost_as_mismatched(detail: str | None) -> bool:
    """True for a conflict whose dropped answer did not fit its instruction: the kept
    answer won it on relevance, not on a close score."""
    return bool(detail) and detail.startswith(MISMATCHED_CONFLICT)


def conflict_detail(
    score: float, kept_score: float, *, tolerance: float = INDISTINGUISHABLE
) -> str:
    """The ledger's ``detail`` for a row dropped as a conflict.

    Args:
        score: The dropped row's composed score.
        kept_score: The kept row's composed score.
        tolerance: As in :func:`indistinguishable`.

    Returns:
        "same instruction, a different answer; quality A < B", with
        "indistinguishable ... (kept the smaller id)" when the gap is within tolerance.
    """
    if not (kept_score - score > tolerance):
        return (
            f"same instruction, a different answer; indistinguishable: quality {score:.3f} vs "
            f"{kept_score:.3f}, within {tolerance} (kept the smaller id); check by hand"
        )
    return f"same instruction, a different answer; quality {score:.3f} < {kept_score:.3f}"
