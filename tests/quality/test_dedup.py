"""Exact, fuzzy and semantic dedup of one group (quality/dedup.py)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from quality.dedup import (
    _permutations,
    dedup_groups,
    estimated_jaccard,
    exact_dedup,
    fuzzy_dedup,
    lsh_bands,
    minhash_signatures,
    pick_best,
    quality_order,
    semantic_dedup,
)
from quality.text import exact_key, jaccard, shingles

NUM_PERM = 128
THRESHOLD = 0.7


def _text(seed: int, words: int = 60) -> str:
    rng = random.Random(seed)
    return " ".join(f"w{rng.randrange(5000)}" for _ in range(words))


def _edit(text: str, changes: int, seed: int) -> str:
    """The text with ``changes`` words replaced: a near-duplicate when changes are few."""
    rng = random.Random(seed)
    words = text.split()
    for position in rng.sample(range(len(words)), changes):
        words[position] = f"edit{seed}x{position}"
    return " ".join(words)


def _ids(n: int) -> list[str]:
    return [f"r{i}" for i in range(n)]


# --- survivors -------------------------------------------------------------------------


def test_pick_best_prefers_score_then_smaller_id() -> None:
    assert pick_best(np.array([0.2, 0.9, 0.5]), ["a", "b", "c"]) == 1
    assert pick_best(np.array([0.7, 0.7, 0.1]), ["z", "m", "a"]) == 1  # tie: "m" < "z"
    assert pick_best(np.array([np.nan, 0.1]), ["a", "b"]) == 1  # NaN is worst
    with pytest.raises(ValueError):
        pick_best(np.array([]), [])


def test_quality_order_is_independent_of_input_order() -> None:
    scores = np.array([0.5, 0.9, 0.5, 0.1])
    ids = ["d", "c", "b", "a"]
    order = quality_order(scores, ids)
    assert [ids[i] for i in order] == ["c", "b", "d", "a"]


def test_dedup_groups_points_to_the_best_of_each_group() -> None:
    labels = np.array([7, 3, 7, 3, 9])
    scores = np.array([0.1, 0.5, 0.8, 0.5, 0.0])
    dup_of = dedup_groups(labels, scores, ["a", "b", "c", "a2", "e"])
    # group 7: row 2 has the best score; group 3: a tie, "a2" < "b"
    assert dup_of.tolist() == [2, 3, -1, -1, -1]
    assert dup_of.dtype == np.int64


# --- exact -----------------------------------------------------------------------------


def test_exact_dedup_differing_only_in_case_and_punctuation() -> None:
    rows = [
        ("What is the capital of France?", "Paris."),
        ("Name a prime number.", "7"),
        ("what is the capital of france", "PARIS"),  # exact duplicate of 0
        ("What is the capital of Spain?", "Madrid."),
        ("WHAT IS THE CAPITAL OF FRANCE ?!", "paris"),  # exact duplicate of 0
    ]
    keys = [exact_key(p, r) for p, r in rows]
    scores = np.array([0.6, 0.9, 0.8, 0.7, 0.3])
    dup_of = exact_dedup(keys, scores, _ids(5))
    # Row 2 has the best score of its group, so it survives, not row 0.
    assert dup_of.tolist() == [2, -1, -1, -1, 2]


def test_exact_dedup_tie_goes_to_smaller_id() -> None:
    keys = ["k", "k", "k"]
    dup_of = exact_dedup(keys, np.array([0.5, 0.5, 0.5]), ["r9", "r10", "r2"])
    assert dup_of.tolist() == [1, -1, 1]  # "r10" < "r2" < "r9" as strings


def test_exact_dedup_empty_and_single() -> None:
    assert exact_dedup([], np.array([]), []).tolist() == []
    assert exact_dedup(["k"], np.array([0.1]), ["a"]).tolist() == [-1]


# --- MinHash ---------------------------------------------------------------------------


def test_minhash_signatures_shape_dtype_and_determinism() -> None:
    texts = [_text(i) for i in range(5)]
    sig = minhash_signatures(texts, num_perm=64, shingle_size=3, seed=1)
    assert sig.shape == (5, 64) and sig.dtype == np.uint64
    assert np.array_equal(sig, minhash_signatures(texts, num_perm=64, shingle_size=3, seed=1))
    assert not np.array_equal(sig, minhash_signatures(texts, num_perm=64, seed=2))
    assert sig.max() <= np.iinfo(np.uint32).max


def test_minhash_signatures_normalize_the_text() -> None:
    sig = minhash_signatures(["Hello, World! How are you?", "hello world how are you"])
    assert np.array_equal(sig[0], sig[1])


def test_minhash_signatures_short_and_empty_texts() -> None:
    sig = minhash_signatures(["", "one two", "One, two!", "three", "...", ""])
    assert np.array_equal(sig[1], sig[2])  # short texts are one shingle
    assert estimated_jaccard(sig[1], sig[3]) < 0.1
    assert np.array_equal(sig[0], sig[4]) and np.array_equal(sig[0], sig[5])
    assert (sig[0] == np.iinfo(np.uint32).max).all()  # no shingles: the empty signature


def test_minhash_permutations_are_datasketch_affine32() -> None:
    from datasketch import MinHash

    a, b = _permutations(16, 1)
    expected = MinHash(num_perm=16, seed=1, scheme="affine32").permutations
    assert np.array_equal(a[:, 0], expected[0]) and np.array_equal(b[:, 0], expected[1])


def test_estimated_jaccard_tracks_true_jaccard() -> None:
    base = _text(0, words=100)
    texts = [base] + [_edit(base, changes, seed=changes) for changes in (3, 10, 25, 60)]
    sig = minhash_signatures(texts, num_perm=256)
    for i in range(1, len(texts)):
        true = jaccard(shingles(base, 3), shingles(texts[i], 3))
        assert abs(estimated_jaccard(sig[0], sig[i]) - true) < 0.1, (i, true)


def test_minhash_rows_with_many_shingles_span_chunks(monkeypatch) -> None:
    import quality.dedup as dedup

    texts = [_text(i, words=50) for i in range(7)] + [""]
    whole = minhash_signatures(texts)
    monkeypatch.setattr(dedup, "_SHINGLES_PER_CHUNK", 30)  # smaller than one row
    assert np.array_equal(minhash_signatures(texts), whole)


# --- fuzzy -----------------------------------------------------------------------------


def _fuzzy_fixture() -> list[str]:
    texts = [_text(seed) for seed in range(6)]
    texts[3] = _edit(texts[1], 2, seed=3)  # near-duplicate of 1
    return texts


def test_lsh_bands_fit_the_signature() -> None:
    bands, rows = lsh_bands(THRESHOLD, NUM_PERM)
    assert bands * rows <= NUM_PERM

    # the S-curve rises just below the threshold: near-duplicates are rarely missed
    # candidates, unrelated rows rarely become candidates
    def candidate(s: float) -> float:
        return 1 - (1 - s**rows) ** bands

    assert candidate(THRESHOLD + 0.1) > 0.99
    assert candidate(0.3) < 0.05


def test_fuzzy_dedup_drops_the_worse_near_duplicate() -> None:
    texts = _fuzzy_fixture()
    sig = minhash_signatures(texts, num_perm=NUM_PERM)
    scores = np.array([0.5, 0.8, 0.5, 0.4, 0.5, 0.5])
    dup_of = fuzzy_dedup(sig, scores, _ids(6), threshold=THRESHOLD, num_perm=NUM_PERM)
    assert dup_of.tolist() == [-1, -1, -1, 1, -1, -1]


def test_fuzzy_dedup_keeps_the_better_near_duplicate() -> None:
    texts = _fuzzy_fixture()
    sig = minhash_signatures(texts, num_perm=NUM_PERM)
    scores = np.array([0.5, 0.4, 0.5, 0.8, 0.5, 0.5])
    dup_of = fuzzy_dedup(sig, scores, _ids(6), threshold=THRESHOLD, num_perm=NUM_PERM)
    assert dup_of.tolist() == [-1, 3, -1, -1, -1, -1]


def test_fuzzy_dedup_resolves_chains_to_the_kept_row() -> None:
    # a ~ b ~ c, but a and c share too little to be near-duplicates themselves:
    # b rewrites the first 10 words of a, c also rewrites the last 10.
    a = _text(10, words=100).split()
    b = [f"b{i}" for i in range(10)] + a[10:]
    c = b[:90] + [f"c{i}" for i in range(10)]
    a, b, c = " ".join(a), " ".join(b), " ".join(c)
    texts = [_text(20), a, b, c]
    # 256 permutations: estimates within ~0.03 of the true 0.82 (a~b, b~c) and 0.66 (a~c)
    sig = minhash_signatures(texts, num_perm=256)
    threshold = 0.74
    assert estimated_jaccard(sig[1], sig[2]) >= threshold
    assert estimated_jaccard(sig[2], sig[3]) >= threshold
    assert estimated_jaccard(sig[1], sig[3]) < threshold
    scores = np.array([0.5, 0.2, 0.3, 0.9])  # c is best: a reaches it only through b
    dup_of = fuzzy_dedup(sig, scores, _ids(4), threshold=threshold, num_perm=256)
    assert dup_of.tolist() == [-1, 3, 3, -1]


def test_fuzzy_dedup_ignores_distinct_rows_and_collapses_copies() -> None:
    texts = [_text(seed) for seed in range(40)] + [_text(7)] * 3  # copies of row 7
    sig = minhash_signatures(texts, num_perm=NUM_PERM)
    scores = np.full(len(texts), 0.5)
    ids = [f"r{i:02d}" for i in range(len(texts))]
    dup_of = fuzzy_dedup(sig, scores, ids, threshold=THRESHOLD, num_perm=NUM_PERM)
    assert dup_of[:40].tolist() == [-1] * 40
    assert dup_of[40:].tolist() == [7, 7, 7]  # tie on score: "r07" is the smallest id


def test_fuzzy_dedup_is_independent_of_row_order() -> None:
    texts = _fuzzy_fixture() + [_edit(_fuzzy_fixture()[4], 3, seed=99)]  # near-dup of 4
    scores = np.array([0.5, 0.8, 0.5, 0.4, 0.3, 0.5, 0.6])
    ids = _ids(7)
    perm = np.array([6, 2, 0, 5, 1, 3, 4])
    sig = minhash_signatures(texts, num_perm=NUM_PERM)
    dup_of = fuzzy_dedup(sig, scores, ids, threshold=THRESHOLD, num_perm=NUM_PERM)
    shuffled = fuzzy_dedup(
        sig[perm], scores[perm], [ids[i] for i in perm], threshold=THRESHOLD, num_perm=NUM_PERM
    )
    kept = {ids[i] for i in np.flatnonzero(dup_of < 0)}
    assert kept == {ids[perm[i]] for i in np.flatnonzero(shuffled < 0)}
    assert kept == {"r0", "r1", "r2", "r5", "r6"}


def test_fuzzy_dedup_checks_its_inputs() -> None:
    sig = minhash_signatures(["a b c d"], num_perm=NUM_PERM)
    with pytest.raises(ValueError, match="shape"):
        fuzzy_dedup(sig, np.array([0.5]), ["a"], threshold=THRESHOLD, num_perm=64)
    assert fuzzy_dedup(sig, np.array([0.5]), ["a"], threshold=THRESHOLD, num_perm=128).tolist() == [
        -1
    ]


# --- semantic --------------------------------------------------------------------------


def _unit(*v: float) -> np.ndarray:
    a = np.array(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def test_semantic_dedup_with_hand_built_vectors() -> None:
    vectors = np.stack(
        [
            _unit(1, 0, 0),
            _unit(0, 1, 0),
            _unit(1, 0.05, 0),  # semantic duplicate of 0 (cos ~0.999)
            _unit(0, 0, 1),
            _unit(0.02, 1, 0.02),  # semantic duplicate of 1
            _unit(1, 1, 0),  # cos 0.71 to rows 0 and 1: kept
        ]
    )
    scores = np.array([0.9, 0.3, 0.5, 0.5, 0.8, 0.5])
    dup_of = semantic_dedup(vectors, scores, _ids(6), threshold=0.95)
    # row 4 is better than row 1, so row 1 goes and points to it
    assert dup_of.tolist() == [-1, 4, 0, -1, -1, -1]


def test_semantic_dedup_points_to_the_most_similar_kept_row() -> None:
    vectors = np.stack([_unit(1, 0.2, 0), _unit(1, -0.2, 0), _unit(1, -0.15, 0)])
    scores = np.array([0.9, 0.8, 0.1])
    dup_of = semantic_dedup(vectors, scores, _ids(3), threshold=0.9)
    # rows 0 and 1 are 0.92 apart: 1 goes to 0; row 2 is closest to row 1, but 1 is dropped
    assert dup_of.tolist() == [-1, 0, 0]


def test_semantic_dedup_is_greedy_over_kept_rows_only() -> None:
    # b is near a and near c, a and c are not near: with a kept and b dropped, c stays.
    angle = np.deg2rad(15)
    vectors = np.stack(
        [
            _unit(1, 0, 0),
            _unit(np.cos(angle), np.sin(angle), 0),
            _unit(np.cos(2 * angle), np.sin(2 * angle), 0),
        ]
    )
    scores = np.array([0.9, 0.8, 0.7])
    dup_of = semantic_dedup(vectors, scores, _ids(3), threshold=np.cos(np.deg2rad(20)))
    assert dup_of.tolist() == [-1, 0, -1]


def test_semantic_dedup_exact_copies_at_threshold_one() -> None:
    v = _unit(0.3, 0.4, 0.5)
    vectors = np.stack([v, v, _unit(1, 0, 0)])
    dup_of = semantic_dedup(vectors, np.array([0.1, 0.2, 0.3]), _ids(3), threshold=1.0)
    assert dup_of.tolist() == [1, -1, -1]


def test_semantic_dedup_in_blocks_matches_one_block(monkeypatch) -> None:
    import quality.dedup as dedup

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(30, 16))
    vectors = centers[rng.integers(0, 30, size=300)] + 0.15 * rng.normal(size=(300, 16))
    scores = rng.random(300)
    ids = _ids(300)
    whole = semantic_dedup(vectors, scores, ids, threshold=0.97)
    monkeypatch.setattr(dedup, "_SIMILARITIES_PER_CHUNK", 300 * 7)  # blocks of 7 rows
    assert np.array_equal(semantic_dedup(vectors, scores, ids, threshold=0.97), whole)
    dropped = np.flatnonzero(whole >= 0)
    assert 0 < len(dropped) < 300
    assert (whole[whole[dropped]] == -1).all()  # every drop points at a kept row
