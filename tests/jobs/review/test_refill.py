"""The refill rule: the selection's own rule (quality order, min_distance), extended by one."""

from __future__ import annotations

import numpy as np
import pytest

from jobs.review.refill import choose_next, nearest_distance
from quality.selection import select_diverse


def unit(rows: list[list[float]]) -> np.ndarray:
    array = np.asarray(rows, dtype=np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def test_takes_the_best_candidate_that_keeps_its_distance():
    picks = unit([[1, 0, 0], [0, 1, 0]])
    # Best first: a near-copy of pick 0 (planted), then a row far from both picks.
    candidates = unit([[1, 0.01, 0], [0, 0, 1], [0.7, 0.7, 0.1]])
    choice = choose_next([0.9, 0.8, 0.7], lambda idx: candidates[idx], picks, min_distance=0.1)
    assert choice.index == 1 and not choice.fallback
    assert choice.distance == pytest.approx(1.0, abs=1e-6)


def test_farthest_first_when_nothing_keeps_its_distance():
    picks = unit([[1, 0], [0, 1]])
    candidates = unit([[1, 0.05], [0.6, 0.8], [0.8, 0.6]])  # the last two tie on distance
    choice = choose_next([0.9, 0.5, 0.7], lambda idx: candidates[idx], picks, min_distance=0.5)
    assert choice.fallback
    # Among the tied farthest, the one first in (score, id) order, as the selection does.
    assert choice.index == 1


def test_no_candidate_means_no_choice():
    assert choose_next([], lambda idx: np.zeros((0, 2)), unit([[1, 0]]), min_distance=0.1) is None


def test_no_remaining_pick_takes_the_best_candidate():
    candidates = unit([[1, 0], [0, 1]])
    choice = choose_next(
        [0.9, 0.8], lambda idx: candidates[idx], np.zeros((0, 2)), min_distance=0.1
    )
    assert choice.index == 0 and not choice.fallback


def test_embeds_only_the_chunks_it_needs():
    candidates = unit([[0, 1]] * 100)
    asked: list[list[int]] = []

    def vectors_of(indices: list[int]) -> np.ndarray:
        asked.append(indices)
        return candidates[indices]

    choose_next([1.0] * 100, vectors_of, unit([[1, 0]]), min_distance=0.1, chunk=8)
    assert asked == [list(range(8))]


@pytest.mark.parametrize("min_distance", [0.05, 0.3, 0.9])
def test_matches_the_selection_taking_one_more_row(min_distance):
    """For every quota q: the row select_diverse adds at q+1 is the refill of its first q."""
    rng = np.random.default_rng(7)
    vectors = unit(rng.normal(size=(40, 6)).tolist())
    scores = np.round(rng.uniform(size=40), 1)  # rounded: ties are common, as in real runs
    for quota in range(0, 39):
        picks = select_diverse(vectors, scores, quota, min_distance=min_distance)
        expected = select_diverse(vectors, scores, quota + 1, min_distance=min_distance)[-1]
        rest = [i for i in np.lexsort((np.arange(40), -scores)) if i not in set(picks)]
        choice = choose_next(
            scores[rest].tolist(),
            lambda idx, rest=rest: vectors[[rest[i] for i in idx]],
            vectors[picks],
            min_distance=min_distance,
        )
        assert rest[choice.index] == expected, quota


def test_nearest_distance_is_clipped_and_inf_without_picks():
    v = unit([[1, 0], [0, 1]])
    assert np.all(np.isinf(nearest_distance(v, np.zeros((0, 2)))))
    d = nearest_distance(v, unit([[1, 0]]))
    assert d[0] == pytest.approx(0.0, abs=1e-6) and d[1] == pytest.approx(1.0)
    assert d.min() >= 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_coverage_refill_is_the_row_facility_location_takes_next(seed):
    from jobs.review.refill import choose_covering
    from quality.covering import facility_location

    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(40, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = rng.uniform(0.5, 1.0, size=40)
    picks, _ = facility_location(vectors, scores, 6, quality_power=1.5)
    kept = picks[:5]
    candidates = np.array([i for i in range(40) if i not in set(picks[:5])])
    chosen, gain = choose_covering(scores, vectors, kept, candidates, quality_power=1.5)
    assert chosen == picks[5] and gain > 0
    assert (
        choose_covering(scores, vectors, kept, np.array([], dtype=int), quality_power=1.5) is None
    )
