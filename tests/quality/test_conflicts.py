"""Same instruction, different answers (quality/conflicts.py)."""

from __future__ import annotations

import numpy as np
import pytest

from quality.conflicts import answer_similarity, resolve_instruction_group
from quality.text import instruction_key

AGREE = 0.6

# One instruction group: "Translate to French: Hello, how are you?"
FRENCH = [
    "Bonjour, comment allez-vous ?",  # 0: the best answer, kept
    "Bonjour comment allez vous",  # 1: near-duplicate of 0 (punctuation only)
    "Bonjour comment ca va",  # 2: conflict with 0
    "Bonjour, comment ça va ?",  # 3: agrees with 2 (accents), so a conflict with 0 too
    "Salut, ça va ?",  # 4: conflict with 0
]


def test_the_french_group_shares_one_instruction_key() -> None:
    prompts = ["Translate to French: Hello, how are you?", "translate to french hello how are you"]
    assert instruction_key(prompts[0]) == instruction_key(prompts[1])


def test_answer_similarity_of_short_answers() -> None:
    assert answer_similarity(FRENCH[0], FRENCH[1]) == 1.0
    assert answer_similarity(FRENCH[2], FRENCH[3]) == 1.0
    assert answer_similarity(FRENCH[0], FRENCH[2]) < AGREE
    assert answer_similarity(FRENCH[0], FRENCH[4]) < AGREE
    # one word added to a short answer still agrees
    assert (
        answer_similarity("The capital of France is Paris.", "The capital city of France is Paris.")
        >= AGREE
    )
    # a different number is a different answer, however similar the words
    assert answer_similarity("The answer is 42.", "The answer is 43.") == 0.0
    assert answer_similarity("It is true.", "It is not true.") < AGREE


def test_answer_similarity_of_long_answers_uses_word_shingles() -> None:
    long_a = (
        "Photosynthesis is the process by which green plants use sunlight, water and carbon "
        "dioxide to make glucose and release oxygen into the air around them."
    )
    near = long_a.replace("green plants", "plants")
    other = (
        "Cellular respiration breaks glucose down with oxygen to release energy, producing "
        "carbon dioxide and water as waste products inside the cells."
    )
    assert answer_similarity(long_a, near) >= AGREE
    assert answer_similarity(long_a, other) < 0.1


def test_resolve_french_group_best_first() -> None:
    scores = np.array([0.9, 0.5, 0.8, 0.4, 0.3])
    dup_of, conflict_with = resolve_instruction_group(
        FRENCH, scores, ["a", "b", "c", "d", "e"], agree_threshold=AGREE
    )
    assert dup_of.tolist() == [-1, 0, -1, -1, -1]
    assert conflict_with.tolist() == [-1, -1, 0, 0, 0]


def test_resolve_french_group_when_a_conflicting_answer_is_best() -> None:
    scores = np.array([0.5, 0.4, 0.3, 0.9, 0.6])  # row 3 ("ça va") is the best row
    dup_of, conflict_with = resolve_instruction_group(
        FRENCH, scores, ["a", "b", "c", "d", "e"], agree_threshold=AGREE
    )
    assert dup_of.tolist() == [-1, -1, 3, -1, -1]
    assert conflict_with.tolist() == [3, 3, -1, -1, 3]


def test_agreement_chains_reach_the_kept_row() -> None:
    # 0 ~ 1 ~ 2 (each adds a few words), 0 and 2 alone would not agree.
    answers = [
        "Paris is the capital of France.",
        "Paris is the capital city of France.",
        "Paris is the capital city of France, on the Seine.",
        "Lyon.",
    ]
    assert answer_similarity(answers[0], answers[1]) >= AGREE
    assert answer_similarity(answers[1], answers[2]) >= AGREE
    assert answer_similarity(answers[0], answers[2]) < AGREE
    dup_of, conflict_with = resolve_instruction_group(
        answers, np.array([0.9, 0.5, 0.6, 0.7]), ["a", "b", "c", "d"], agree_threshold=AGREE
    )
    assert dup_of.tolist() == [-1, 0, 0, -1]
    assert conflict_with.tolist() == [-1, -1, -1, 0]


def test_every_dropped_row_points_to_the_kept_row_exactly_once() -> None:
    answers = ["Yes.", "yes", "No.", "No", "Maybe", "YES!"]
    scores = np.array([0.2, 0.3, 0.9, 0.1, 0.5, 0.3])
    ids = ["r0", "r1", "r2", "r3", "r4", "r5"]
    dup_of, conflict_with = resolve_instruction_group(answers, scores, ids, agree_threshold=AGREE)
    kept = 2  # "No." has the best score
    assert dup_of.tolist() == [-1, -1, -1, kept, -1, -1]
    assert conflict_with.tolist() == [kept, kept, -1, -1, kept, kept]


def test_tie_on_score_keeps_the_smaller_id() -> None:
    dup_of, conflict_with = resolve_instruction_group(
        ["Oui", "Non"], np.array([0.5, 0.5]), ["z", "a"], agree_threshold=AGREE
    )
    assert dup_of.tolist() == [-1, -1] and conflict_with.tolist() == [1, -1]


def test_a_group_of_one_is_untouched() -> None:
    dup_of, conflict_with = resolve_instruction_group(
        ["Bonjour"], np.array([0.1]), ["a"], agree_threshold=AGREE
    )
    assert dup_of.tolist() == [-1] and conflict_with.tolist() == [-1]


def test_mismatched_lengths_are_rejected() -> None:
    with pytest.raises(ValueError, match="responses"):
        resolve_instruction_group(["a"], np.array([0.1, 0.2]), ["a", "b"], agree_threshold=AGREE)
