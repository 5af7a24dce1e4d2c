"""Quotas, diverse selection, coverage and the random baseline."""

from __future__ import annotations

import numpy as np
import pytest

from quality.selection import (
    cluster_quotas,
    coverage,
    nearest_pick_distance,
    random_pick,
    select_diverse,
)


def _blobs(centers: int, per_center: int, dim: int = 16, spread: float = 0.02, seed: int = 0):
    """Unit vectors in tight blobs around random centers; returns (vectors, blob id per row)."""
    rng = np.random.default_rng(seed)
    middle = rng.normal(size=(centers, dim))
    labels = np.repeat(np.arange(centers), per_center)
    vectors = middle[labels] / np.linalg.norm(middle[labels], axis=1, keepdims=True)
    vectors = vectors + rng.normal(scale=spread, size=vectors.shape)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32), labels


# --- cluster_quotas ---------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["sqrt", "proportional"])
def test_quotas_sum_to_budget_within_bounds_and_cover_every_cluster(strategy: str) -> None:
    counts = {0: 1000, 1: 200, 2: 50, 3: 5, 4: 1}
    quotas = cluster_quotas(counts, 100, strategy=strategy)
    assert sum(quotas.values()) == 100
    assert all(1 <= quotas[c] <= counts[c] for c in counts)


def test_sqrt_quotas_keep_a_big_cluster_from_dominating() -> None:
    counts = {0: 10_000} | {c: 100 for c in range(1, 11)}  # one huge topic, ten small ones
    sqrt = cluster_quotas(counts, 200, strategy="sqrt")
    proportional = cluster_quotas(counts, 200, strategy="proportional")
    assert sqrt[0] < 100  # less than half the budget, though it holds 91% of the rows
    assert proportional[0] > sqrt[0]
    assert min(sqrt[c] for c in range(1, 11)) >= 9  # ~sqrt(100)/(100+10*10) * 200 = 10


def test_leftover_from_small_clusters_is_redistributed() -> None:
    counts = {0: 2, 1: 3, 2: 1000, 3: 1000}  # 0 and 1 cannot use an equal share of 100
    quotas = cluster_quotas(counts, 100, strategy="sqrt")
    assert quotas[0] == 2 and quotas[1] == 3  # capped at their size
    assert quotas[2] + quotas[3] == 95
    assert abs(quotas[2] - quotas[3]) <= 1  # equal sizes share equally


def test_budget_larger_than_data_takes_everything() -> None:
    counts = {0: 3, 1: 7, 2: 0}
    assert cluster_quotas(counts, 1000) == {0: 3, 1: 7, 2: 0}


def test_budget_smaller_than_cluster_count_favours_the_largest_clusters() -> None:
    counts = {0: 5, 1: 50, 2: 20, 3: 50}
    assert cluster_quotas(counts, 2) == {0: 0, 1: 1, 2: 0, 3: 1}  # tie 1/3 by size, not id
    assert cluster_quotas(counts, 3) == {0: 0, 1: 1, 2: 1, 3: 1}


def test_quotas_are_deterministic_and_exact_on_awkward_fractions() -> None:
    counts = {c: 10 + c for c in range(7)}
    first = cluster_quotas(counts, 23)
    assert first == cluster_quotas(dict(reversed(counts.items())), 23)
    assert sum(first.values()) == 23


def test_quota_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="selection.quota must be one of"):
        cluster_quotas({0: 1}, 1, strategy="log")
    with pytest.raises(ValueError, match="budget"):
        cluster_quotas({0: 1}, -1)


# --- select_diverse ---------------------------------------------------------------------------


def test_select_diverse_prefers_high_scores_but_skips_near_duplicates() -> None:
    vectors, labels = _blobs(centers=5, per_center=10)
    scores = np.linspace(0.0, 1.0, len(labels))
    scores[labels == 0] += 10.0  # blob 0 holds the ten best rows, all near-duplicates
    picks = select_diverse(vectors, scores, 5, min_distance=0.3)
    assert sorted(labels[picks]) == [0, 1, 2, 3, 4]  # one per blob, not five from blob 0
    assert picks[0] == int(np.argmax(scores))  # the best row goes first
    for blob in range(5):  # and each blob is represented by its best row
        members = np.flatnonzero(labels == blob)
        assert members[np.argmax(scores[members])] in picks


def test_select_diverse_keeps_min_distance_when_enough_far_rows_exist() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(300, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = rng.random(300)
    picks = select_diverse(vectors, scores, 20, min_distance=0.5)
    assert len(picks) == 20 and len(set(picks.tolist())) == 20
    sims = vectors[picks] @ vectors[picks].T
    np.fill_diagonal(sims, -1.0)
    assert 1.0 - sims.max() >= 0.5


def test_select_diverse_fills_the_quota_farthest_first() -> None:
    angles = np.radians([0, 5, 10, 45, 85, 90])  # scores fall in this order
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    scores = np.array([6.0, 5, 4, 3, 2, 1])
    # min_distance 0.5 is ~60 degrees: the threshold admits 0 and 85 degrees only; the fill
    # then takes 45 (40 degrees from any pick), then 10 (10 degrees; 5 and 90 are 5 away).
    picks = select_diverse(vectors, scores, 4, min_distance=0.5)
    assert picks.tolist() == [0, 4, 3, 2]


def test_select_diverse_is_deterministic_on_ties_and_bounded() -> None:
    vectors = np.eye(4, dtype=np.float32)
    picks = select_diverse(vectors, np.zeros(4), 2, min_distance=0.1)
    assert picks.tolist() == [0, 1]  # equal scores: lower index first
    assert sorted(select_diverse(vectors, np.zeros(4), 10, min_distance=0.1)) == [0, 1, 2, 3]
    assert select_diverse(vectors, np.zeros(4), 0, min_distance=0.1).size == 0


def test_select_diverse_takes_exact_duplicates_only_when_nothing_else_is_left() -> None:
    vectors = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)  # 1 duplicates 0
    picks = select_diverse(vectors, np.array([0.9, 0.8, 0.1]), 3, min_distance=0.2)
    assert picks.tolist() == [0, 2, 1]


def test_select_diverse_rejects_bad_arguments() -> None:
    vectors = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="scores has shape"):
        select_diverse(vectors, np.zeros(2), 1, min_distance=0.1)
    with pytest.raises(ValueError, match="min_distance"):
        select_diverse(vectors, np.zeros(3), 1, min_distance=3.0)


# --- coverage and the random baseline ---------------------------------------------------------


def test_coverage_is_lower_for_a_diverse_pick_than_a_clumped_one() -> None:
    vectors, labels = _blobs(centers=8, per_center=25)
    diverse = select_diverse(vectors, np.zeros(len(labels)), 8, min_distance=0.3)
    clumped = np.flatnonzero(labels == 0)[:8]
    assert coverage(vectors, vectors[diverse]) < coverage(vectors, vectors[clumped]) / 3


def test_nearest_pick_distance_per_row_and_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    import quality.selection as selection

    monkeypatch.setattr(selection, "_CHUNK_ROWS", 7)  # force several chunks
    vectors, _ = _blobs(centers=4, per_center=10)
    picks = vectors[[0, 15]]
    expected = 1.0 - (vectors @ picks.T).max(axis=1)
    got = nearest_pick_distance(vectors, picks)
    np.testing.assert_allclose(got, np.clip(expected, 0, 2), atol=1e-5)
    assert got[0] < 1e-5 and got[15] < 1e-5  # picked rows are their own nearest pick
    assert coverage(vectors, picks) == pytest.approx(float(got.mean()), abs=1e-6)


def test_coverage_rejects_no_picks_and_mismatched_dims() -> None:
    vectors = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="no picks"):
        coverage(vectors, np.zeros((0, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="same encoder"):
        coverage(vectors, np.eye(2, dtype=np.float32))


def test_random_pick_is_seeded_distinct_and_bounded() -> None:
    first = random_pick(100, 10, seed=3)
    assert first.tolist() == random_pick(100, 10, seed=3).tolist()
    assert first.tolist() != random_pick(100, 10, seed=4).tolist()
    assert len(set(first.tolist())) == 10 and first.min() >= 0 and first.max() < 100
    assert random_pick(5, 10, seed=0).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        random_pick(-1, 1, seed=0)
