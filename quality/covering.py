"""A selection that covers: quality-weighted facility location, per cluster.

The coverage figure the job reports is the mean cosine distance from each survivor to its
nearest pick. Minimizing it is the facility-location problem: choose picks S to maximize

    F(S) = sum over rows i of  max over picks j in S of  w_j * sim(i, j)

with ``sim`` the cosine similarity clipped at 0. With every weight ``w_j = 1`` this is exactly
the coverage figure (1 - mean distance); here ``w_j = (score_j / max score) ** quality_power``
so a pick covers its neighbours in proportion to its quality: among rows that would cover
the same region, the better row wins, and a low-quality row is picked only where nothing
better covers its neighbours. F is monotone submodular, so the greedy pick is within
1 - 1/e of the best (Nemhauser et al. 1978), and its marginal gains never increase.

Two ways to spend a budget across k-means clusters (each cluster covers only its own rows,
so F is a sum over clusters and each cluster is solved apart, in parallel):

1. fixed quotas (:func:`quality.selection.cluster_quotas`), then :func:`facility_location`
   per cluster with its quota;
2. gain-allocated: each cluster runs :func:`facility_location` for up to the whole budget
   and reports its marginal gains; :func:`allocate_by_gains` takes the budget's largest
   gains across clusters, which is exactly the greedy over the whole dataset (a cluster's
   gains are non-increasing), and gives each cluster the count of its gains taken. Only the
   gains (floats) travel to the driver.

Pure numpy; importable without Ray.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

DEFAULT_QUALITY_POWER = 1.5
"""Exponent of the quality weight; 0 ignores quality (pure coverage)."""
_MAX_DENSE = 6_000
"""Rows of a cluster solved with a dense similarity matrix (6,000 rows: 144 MB in float32,
twice that while a step's gains are summed);
larger clusters take their candidates from the best-scored rows only."""


def facility_location(
    vectors: np.ndarray,
    scores: np.ndarray,
    quota: int,
    *,
    quality_power: float = DEFAULT_QUALITY_POWER,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy quality-weighted facility location over one group of rows.

    Args:
        vectors: (n, d) embeddings; rows are L2-normalized here.
        scores: (n,) quality scores, higher is better, >= 0; NaN counts as 0.
        quota: Rows to pick (clipped to n).
        quality_power: Exponent of the quality weight (0: coverage alone).

    Returns:
        (picks, gains): int64 indices in pick order and the float64 marginal gain of each
        pick (non-increasing). Ties go to the higher score, then the lower index.

    Raises:
        ValueError: Mismatched shapes, a negative quota or quality_power.
    """
    unit = _unit_rows(vectors)
    n = len(unit)
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0)
    if scores.shape != (n,):
        raise ValueError(f"scores has shape {scores.shape}, expected ({n},) like vectors")
    if quota < 0 or quality_power < 0:
        raise ValueError(f"quota ({quota}) and quality_power ({quality_power}) must be >= 0")
    quota = min(quota, n)
    if quota == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    candidates = _candidates(scores, n)
    weight = _weights(scores[candidates], quality_power)
    # covered[i, c]: how well candidate c would cover row i.
    covered = np.clip(unit @ unit[candidates].T, 0.0, None) * weight[None, :].astype(np.float32)
    # Ties: the larger score, then the lower index, through a tiny rank bonus.
    order = np.lexsort((candidates, -scores[candidates]))
    tie = np.empty(len(candidates))
    tie[order] = -np.arange(len(candidates)) * 1e-12
    current = np.zeros(n, dtype=np.float32)
    taken = np.zeros(len(candidates), dtype=bool)
    picks, gains = [], []
    for _ in range(quota):
        gain = np.maximum(covered - current[:, None], 0.0).sum(axis=0, dtype=np.float64)
        gain = np.where(taken, -np.inf, gain + tie)
        c = int(np.argmax(gain))
        picks.append(int(candidates[c]))
        gains.append(max(float(gain[c]), 0.0))
        taken[c] = True
        np.maximum(current, covered[:, c], out=current)
    return np.asarray(picks, np.int64), np.asarray(gains, np.float64)


def _candidates(scores: np.ndarray, n: int) -> np.ndarray:
    """All rows, or for a very large group the _MAX_DENSE best-scored ones."""
    if n <= _MAX_DENSE:
        return np.arange(n)
    return np.sort(np.argsort(-scores, kind="stable")[:_MAX_DENSE])


def _weights(scores: np.ndarray, power: float) -> np.ndarray:
    top = float(scores.max()) if len(scores) else 0.0
    if power == 0 or top <= 0:
        return np.ones(len(scores))
    return np.clip(scores / top, 0.0, 1.0) ** power


def allocate_by_gains(gains: Mapping[int, np.ndarray], budget: int) -> dict[int, int]:
    """Quotas per cluster from their greedy marginal gains: the budget's largest gains.

    Args:
        gains: Per cluster id, the non-increasing gains of :func:`facility_location`.
        budget: Picks in total.

    Returns:
        {cluster: picks}, summing to min(budget, total gains listed). Ties go to the lower
        cluster id, then to earlier picks.
    """
    if budget < 0:
        raise ValueError(f"selection.budget must be >= 0, got {budget}")
    ids, values, positions = [], [], []
    for cluster in sorted(gains):
        g = np.asarray(gains[cluster], dtype=np.float64)
        ids.append(np.full(len(g), cluster, dtype=np.int64))
        values.append(g)
        positions.append(np.arange(len(g)))
    quotas = {int(c): 0 for c in gains}
    if not ids:
        return quotas
    cluster_of = np.concatenate(ids)
    order = np.lexsort((np.concatenate(positions), cluster_of, -np.concatenate(values)))
    for c in cluster_of[order[:budget]]:
        quotas[int(c)] += 1
    return quotas


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"vectors must be a 2-D (rows, dim) array, got shape {array.shape}")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.maximum(norms, 1e-12)
