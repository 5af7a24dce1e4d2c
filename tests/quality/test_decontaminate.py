"""Decontamination: training rows that duplicate an evaluation row, exactly, fuzzily or
semantically, are found and name the evaluation row; unrelated rows are not."""

from __future__ import annotations

import numpy as np
import pytest

from quality.decontaminate import build_index, find_contaminated, overlap_counts

LONG = (
    "Photosynthesis turns light, water and carbon dioxide into glucose and oxygen. "
    "It happens in the chloroplasts of plant cells, where chlorophyll absorbs mostly "
    "red and blue light and reflects green light back to our eyes."
)
EVAL = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Explain photosynthesis.", LONG),
    ("Name a prime number larger than ten.", "Thirteen is a prime number."),
]
LABELS = ["heldout.jsonl#e0", "heldout.jsonl#e1", "heldout.jsonl#e2"]


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@pytest.fixture
def eval_vectors() -> np.ndarray:
    return unit(np.random.default_rng(0).normal(size=(3, 16)).astype(np.float32))


def index(vectors=None):
    return build_index(
        LABELS,
        [p for p, _ in EVAL],
        [r for _, r in EVAL],
        vectors=vectors,
        fuzzy_threshold=0.7,
    )


def test_exact_and_same_instruction_rows_are_contaminated():
    rows = [
        ("what is the CAPITAL of France", "the capital of france is paris"),  # exact after norm.
        ("What is the capital of France?", "Paris, of course."),  # same instruction
        ("What is the capital of Spain?", "Madrid."),  # unrelated
    ]
    found = find_contaminated(index(), [p for p, _ in rows], [r for _, r in rows])
    assert (found[0].eval_row, found[0].kind) == ("heldout.jsonl#e0", "exact")
    assert (found[1].eval_row, found[1].kind) == ("heldout.jsonl#e0", "instruction")
    assert found[2] is None


def test_a_near_duplicate_of_an_eval_row_is_found_by_minhash():
    edited = LONG.replace("mostly", "chiefly")  # one word changed: Jaccard well above 0.7
    rows = [
        ("Explain how photosynthesis works.", edited),  # another instruction, same answer
        ("Explain how rain forms.", "Water vapour cools, condenses on dust and falls."),
    ]
    found = find_contaminated(
        index(), [p for p, _ in rows], [r for _, r in rows], fuzzy_threshold=0.7
    )
    assert found[0].kind == "fuzzy" and found[0].eval_row == "heldout.jsonl#e1"
    assert 0.7 <= found[0].similarity < 1.0
    assert "dedup.fuzzy_threshold 0.7" in found[0].describe(0.7, 0.95)
    assert found[1] is None
    # Without a fuzzy threshold the same row passes: the check is the one that caught it.
    assert find_contaminated(index(), [rows[0][0]], [rows[0][1]]) == [None]


def test_a_paraphrase_close_in_embedding_space_is_found_semantically(eval_vectors):
    rows = [
        ("Give me one prime above 10.", "Eleven, for example."),  # paraphrase of e2
        ("Tell me a joke.", "Why did the chicken cross the road?"),
    ]
    rng = np.random.default_rng(1)
    vectors = np.stack(
        [
            unit(eval_vectors[2] + 0.05 * unit(rng.normal(size=16))),  # cosine ~0.999
            unit(rng.normal(size=16)),
        ]
    ).astype(np.float32)
    idx = index(eval_vectors)
    found = find_contaminated(
        idx, [p for p, _ in rows], [r for _, r in rows], vectors=vectors, semantic_threshold=0.95
    )
    assert found[0].kind == "semantic" and found[0].eval_row == "heldout.jsonl#e2"
    assert found[0].similarity >= 0.95
    assert found[1] is None
    # A stricter threshold than the pair's cosine keeps the row.
    strict = find_contaminated(
        idx, [rows[0][0]], [rows[0][1]], vectors=vectors[:1], semantic_threshold=0.9999
    )
    assert strict == [None]


def test_an_empty_evaluation_set_contaminates_nothing():
    empty = build_index([], [], [], fuzzy_threshold=0.7)
    assert find_contaminated(empty, ["a"], ["b"], fuzzy_threshold=0.7) == [None]


def test_overlap_counts_identical_and_same_instruction_rows():
    train = [EVAL[0], ("Explain photosynthesis.", "Plants make sugar from light.")]
    held = [*EVAL, ("Unrelated?", "Yes.")]
    assert overlap_counts(train, held) == (1, 1)
