"""The composed score and the group decisions it drives (quality/ranking.py, issue 15)."""

from __future__ import annotations

import numpy as np
import pytest

from quality import ranking
from quality.conflicts import conflict_detail, indistinguishable, resolve_instruction_group
from quality.dedup import exact_dedup, fuzzy_dedup, minhash_signatures, semantic_dedup
from quality.surface import lexicon_from_vocab

WORDS = (
    "the tides are caused by gravitational pull of moon and sun on oceans water rises falls "
    "twice each day basketball soccer tennis require ball to play sports"
)
LEXICON = lexicon_from_vocab(WORDS.split(" "))
INSTRUCTION = "What causes ocean tides?"
FITTING = (
    "The tides are caused by the gravitational pull of the moon and the sun on the oceans; "
    "the water rises and falls twice each day."
)
OTHER_TASK = (
    "Basketball, soccer and tennis require a ball to play; they are sports played twice "
    "each day by many people around the world."
)


def _composed(responses: list[str], margins: list[float], heuristics: list[float]) -> np.ndarray:
    terms = ranking.quality_terms(
        heuristics=np.array(heuristics),
        relevance=np.array(margins),
        responses=responses,
        lexicon=LEXICON,
    )
    return ranking.compose(terms)


def test_a_conflict_keeps_the_fitting_answer_over_another_tasks_fluent_answer() -> None:
    # Both fluent (same heuristic score, the other task's answer even a little higher);
    # the relevance margin (computed upstream) says which answer fits the instruction.
    responses = [OTHER_TASK, FITTING]
    scores = _composed(responses, margins=[-0.15, 0.12], heuristics=[0.97, 0.95])
    dup_of, conflict_with = resolve_instruction_group(
        responses, scores, ["a-other", "b-fitting"], agree_threshold=0.6
    )
    assert conflict_with.tolist() == [1, -1]  # the other task's answer goes, pointing at b
    assert dup_of.tolist() == [-1, -1]
    assert not indistinguishable(scores, conflict_with).any()
    assert "indistinguishable" not in conflict_detail(scores[0], scores[1])


def test_a_conflict_nothing_tells_apart_is_flagged_not_silently_decided() -> None:
    responses = ["Paris.", "Marseille, on the Mediterranean coast."]
    scores = np.array([0.9, 0.9])
    _, conflict_with = resolve_instruction_group(responses, scores, ["b", "a"], agree_threshold=0.6)
    assert conflict_with.tolist() == [1, -1]  # the tie-break: the smaller id stays
    assert indistinguishable(scores, conflict_with).tolist() == [True, False]
    assert "indistinguishable" in conflict_detail(0.9, 0.9)
    assert indistinguishable(np.array([np.nan, 0.8]), np.array([1, -1])).tolist() == [True, False]


def test_a_duplicate_group_keeps_the_row_with_the_best_composed_score() -> None:
    original = FITTING
    sloppy = original.lower().replace("gravitational", "gravitatoinal").replace("oceans", "oceasn")
    cut = "The tides are caused by the gravitational pull of the moon and the"
    responses = [sloppy, cut, original]  # ids: a, b, c; the original is not the smallest id
    ids = ["a", "b", "c"]
    # The rules cannot tell them apart (equal heuristic scores) nor can relevance.
    scores = _composed(responses, margins=[0.1, 0.1, 0.1], heuristics=[0.95, 0.95, 0.95])
    assert int(np.argmax(scores)) == 2
    # exact (after normalization the sloppy copy differs, so group them by a shared key)
    assert exact_dedup(["k", "k", "k"], scores, ids).tolist() == [2, 2, -1]
    # fuzzy: the three rows are one MinHash component at a low threshold
    texts = [f"{INSTRUCTION}\n{r}" for r in responses]
    signatures = minhash_signatures(texts, num_perm=128)
    dup = fuzzy_dedup(signatures, scores, ids, threshold=0.3, num_perm=128)
    assert dup[2] == -1 and set(dup[:2].tolist()) == {2}
    # semantic: identical vectors
    vectors = np.ones((3, 4), dtype=np.float32)
    assert semantic_dedup(vectors, scores, ids, threshold=0.95).tolist() == [2, 2, -1]


def test_terms_are_in_unit_range_and_missing_signals_are_left_out() -> None:
    responses = [FITTING, "TODO", OTHER_TASK]
    terms = ranking.quality_terms(
        heuristics=np.array([0.9, 0.1, 0.9]),
        relevance=np.array([0.1, np.nan, -0.3]),
        responses=responses,
        lexicon=LEXICON,
    )
    for values in terms.values():
        present = values[~np.isnan(values)]
        assert ((present >= 0) & (present <= 1)).all()
    q = ranking.compose(terms)
    assert not np.isnan(q).any()  # row 1 has no relevance: averaged over what it has
    assert q[0] > max(q[1], q[2])  # the fitting, complete answer leads
    with pytest.raises(ValueError, match="shape"):
        ranking.quality_terms(heuristics=np.ones(2), relevance=None, responses=["a"])


def test_longer_complete_answers_rank_above_their_cut_off_prefix() -> None:
    full = FITTING + " " + FITTING
    cut = " ".join(full.split()[:12])
    assert ranking.length_term([full])[0] > ranking.length_term([cut])[0]
    assert ranking.length_term([""])[0] == 0.0
    assert ranking.length_term([" ".join(["w"] * 400)])[0] == 1.0


def test_score_histogram_counts_every_scored_row() -> None:
    scores = np.array([0.1, 0.5, 0.95, 1.0, np.nan])
    clean = np.array([False, True, True, True, False])
    h = ranking.score_histogram(scores, clean, bins=10)
    assert len(h["edges"]) == 11
    assert sum(h["all"]) == 4 and sum(h["clean"]) == 3 and sum(h["noisy"]) == 1
    assert h["all"][-1] == 2  # 0.95 and 1.0 share the last bin
