"""Quality-weighted facility location (quality/covering.py)."""

from __future__ import annotations

import numpy as np
import pytest

from quality.covering import allocate_by_gains, facility_location
from quality.selection import coverage, random_pick


def _blobs(rng: np.random.Generator, sizes: list[int], dim: int = 16) -> np.ndarray:
    centers = rng.normal(size=(len(sizes), dim))
    return np.concatenate(
        [c + 0.15 * rng.normal(size=(n, dim)) for c, n in zip(centers, sizes, strict=True)]
    ).astype(np.float32)


def test_one_pick_per_blob_before_a_second_in_any() -> None:
    rng = np.random.default_rng(0)
    vectors = _blobs(rng, [30, 30, 30])
    picks, gains = facility_location(vectors, np.ones(90), 3, quality_power=0)
    assert sorted(int(p) // 30 for p in picks) == [0, 1, 2]
    assert np.all(np.diff(gains) <= 1e-9)  # submodular: gains never increase


def test_covers_better_than_random_on_uneven_blobs() -> None:
    rng = np.random.default_rng(1)
    vectors = _blobs(rng, [200, 50, 20, 10, 5])
    picks, _ = facility_location(vectors, np.ones(len(vectors)), 10, quality_power=0)
    ours = coverage(vectors, vectors[picks])
    randoms = [coverage(vectors, vectors[random_pick(len(vectors), 10, seed=s)]) for s in range(5)]
    assert ours < min(randoms)


def test_quality_decides_between_rows_covering_the_same_region() -> None:
    vectors = np.array([[1.0, 0.0], [0.999, 0.04], [0.0, 1.0]], dtype=np.float32)
    scores = np.array([0.5, 0.9, 0.8])
    picks, _ = facility_location(vectors, scores, 2)
    assert sorted(picks.tolist()) == [1, 2]  # row 1 covers row 0's spot and is better
    # exact duplicates with equal scores: the lower index
    same = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    assert facility_location(same, np.array([0.7, 0.7]), 1)[0].tolist() == [0]


def test_quota_larger_than_the_group_and_bad_arguments() -> None:
    vectors = np.eye(3, dtype=np.float32)
    picks, gains = facility_location(vectors, np.array([0.2, np.nan, 0.9]), 10)
    assert sorted(picks.tolist()) == [0, 1, 2] and len(gains) == 3
    assert facility_location(vectors, np.ones(3), 0)[0].size == 0
    with pytest.raises(ValueError, match="shape"):
        facility_location(vectors, np.ones(2), 1)
    with pytest.raises(ValueError, match=">= 0"):
        facility_location(vectors, np.ones(3), -1)


def test_allocate_by_gains_takes_the_largest_gains_across_clusters() -> None:
    gains = {0: np.array([5.0, 1.0, 0.5]), 1: np.array([4.0, 3.0, 2.0]), 2: np.array([0.1])}
    assert allocate_by_gains(gains, 4) == {0: 1, 1: 3, 2: 0}
    assert allocate_by_gains(gains, 100) == {0: 3, 1: 3, 2: 1}
    assert allocate_by_gains({}, 5) == {}
    with pytest.raises(ValueError, match="budget"):
        allocate_by_gains(gains, -1)
