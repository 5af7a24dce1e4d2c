"""Diverse, high-quality selection under a budget.

Design: per-cluster quotas, then a DEITA-style distance threshold inside each cluster.

1. **Quotas across clusters** (:func:`cluster_quotas`). k-means clusters are the unit of
   diversity. Taking the global top-N by quality would let one big, easy topic (say, short
   arithmetic) fill the whole budget; splitting the budget in proportion to cluster size
   has the same problem more politely. The default ``sqrt`` strategy gives each cluster a
   share proportional to the square root of its size: big topics still get more rows, but
   a cluster 100x larger only gets 10x the quota, so rare skills survive. Every cluster
   gets at least one row when the budget allows, and quota a small cluster cannot use is
   redistributed to the others (water-filling), so the budget is met whenever there are
   enough rows.
2. **Threshold inside a cluster** (:func:`select_diverse`). Within its quota a cluster
   takes rows in descending quality and accepts a row only if its cosine distance to every
   row already picked is at least ``min_distance`` (the "Repr Filter" of DEITA, Liu et al.
   2024, applied per cluster so it costs O(cluster size x quota) instead of O(N x budget)).
   Quality decides the order, diversity decides admission. If the threshold leaves the quota
   unfilled, the rest is filled farthest-first (max-min distance to the picks), which spends
   the budget on whatever is least redundant instead of on near-duplicates of earlier picks.
3. **Measuring it** (:func:`coverage`): the mean cosine distance from every candidate row to
   its nearest pick. Lower means every part of the data has a representative close by; it is
   compared against :func:`random_pick` of the same size.

Everything here is deterministic: ties break by cluster id or row index.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

QUOTA_STRATEGIES = ("sqrt", "proportional")
_CHUNK_ROWS = 16_384


def cluster_quotas(
    counts: Mapping[int, int], budget: int, *, strategy: str = "sqrt"
) -> dict[int, int]:
    """Split a budget across clusters.

    Quotas never exceed a cluster's count and sum to ``min(budget, total rows)``. When the
    budget covers every non-empty cluster, each gets at least 1 and the rest is shared by
    weight (``sqrt``: sqrt(size); ``proportional``: size), with leftovers from clusters too
    small for their share going to the others. When the budget is smaller than the number of
    non-empty clusters, the largest clusters get 1 each (ties: lower cluster id), since one
    row of a big cluster represents the most data.

    Args:
        counts: Rows available per cluster id.
        budget: Rows to select in total.
        strategy: "sqrt" or "proportional".

    Returns:
        Quota per cluster id, for every id in ``counts`` (0 for empty or unlucky clusters).

    Raises:
        ValueError: Negative budget or count, or an unknown strategy.
    """
    if strategy not in QUOTA_STRATEGIES:
        raise ValueError(f"selection.quota must be one of {QUOTA_STRATEGIES}, got {strategy!r}")
    if budget < 0:
        raise ValueError(f"selection.budget must be >= 0, got {budget}")
    if any(n < 0 for n in counts.values()):
        raise ValueError("cluster counts must be >= 0")
    quotas = {c: 0 for c in sorted(counts)}
    nonempty = [c for c in quotas if counts[c] > 0]
    target = min(budget, sum(counts[c] for c in nonempty))
    if target < len(nonempty):
        for c in sorted(nonempty, key=lambda c: (-counts[c], c))[:target]:
            quotas[c] = 1
        return quotas
    for c in nonempty:
        quotas[c] = 1
    weight = {c: math.sqrt(counts[c]) if strategy == "sqrt" else float(counts[c]) for c in nonempty}
    _water_fill(quotas, {c: counts[c] - 1 for c in nonempty}, weight, target - len(nonempty))
    return quotas


def _water_fill(
    quotas: dict[int, int], capacity: dict[int, int], weight: dict[int, float], remaining: int
) -> None:
    """Add ``remaining`` rows to ``quotas`` in proportion to weight, capped by capacity.

    Clusters whose share reaches their capacity are filled and taken out, and the rest is
    shared again; the final fractional shares are rounded by largest remainder.
    """
    active = [c for c in capacity if capacity[c] > 0]
    while remaining > 0 and active:
        total = sum(weight[c] for c in active)
        share = {c: remaining * weight[c] / total for c in active}
        full = [c for c in active if share[c] >= capacity[c]]
        if full:
            for c in full:
                quotas[c] += capacity[c]
                remaining -= capacity[c]
            active = [c for c in active if c not in full]
            continue
        floors = {c: int(share[c]) for c in active}
        for c in active:
            quotas[c] += floors[c]
        remaining -= sum(floors.values())
        # share < capacity, so every cluster here has room for one more row.
        by_remainder = sorted(active, key=lambda c: (-(share[c] - floors[c]), c))
        for c in by_remainder[:remaining]:
            quotas[c] += 1
        remaining = 0


def select_diverse(
    vectors: np.ndarray, scores: np.ndarray, quota: int, *, min_distance: float
) -> np.ndarray:
    """Pick up to ``quota`` high-quality rows that are not near each other.

    Rows are visited in descending score (ties: lower index) and accepted when their cosine
    distance (1 - cos) to every earlier pick is at least ``min_distance``. If that leaves the
    quota unfilled, the remaining rows farthest from all picks are added one at a time
    (ties: higher score, then lower index), so the budget is met and near-duplicates are only
    taken when nothing else is left.

    Args:
        vectors: (n, d) embeddings of one group (e.g. a cluster); rows are L2-normalized here.
        scores: (n,) quality scores, higher is better; NaN counts as lowest.
        quota: Rows to pick.
        min_distance: Cosine-distance threshold in [0, 2].

    Returns:
        int64 indices into ``vectors``, in the order they were picked.

    Raises:
        ValueError: Mismatched shapes, negative quota, or min_distance outside [0, 2].
    """
    unit = _unit_rows(vectors)
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    n = unit.shape[0]
    if scores.shape != (n,):
        raise ValueError(f"scores has shape {scores.shape}, expected ({n},) like vectors")
    if quota < 0:
        raise ValueError(f"quota must be >= 0, got {quota}")
    if not 0.0 <= min_distance <= 2.0:
        raise ValueError(f"selection.min_distance must be in [0, 2], got {min_distance}")
    quota = min(quota, n)
    picks: list[int] = []
    picked = np.zeros(n, dtype=bool)
    # Distance from each row to its nearest pick so far; +inf before the first pick.
    nearest = np.full(n, np.inf)

    def take(i: int) -> None:
        picks.append(i)
        picked[i] = True
        # Clip: rounding can make an exact duplicate's distance slightly negative.
        np.minimum(nearest, np.clip(1.0 - unit @ unit[i], 0.0, 2.0), out=nearest)

    for i in np.lexsort((np.arange(n), -scores)):
        if len(picks) == quota:
            break
        if nearest[i] >= min_distance:
            take(int(i))
    while len(picks) < quota:
        dist = np.where(picked, -np.inf, nearest)
        tied = np.flatnonzero(dist == dist.max())
        take(int(tied[np.argmax(scores[tied])]))  # argmax keeps the lowest index on ties
    return np.asarray(picks, dtype=np.int64)


def nearest_pick_distance(vectors: np.ndarray, pick_vectors: np.ndarray) -> np.ndarray:
    """Cosine distance from each row to its nearest pick.

    Works in chunks of rows, so a Ray job can also call it batch by batch and average.

    Args:
        vectors: (n, d) embeddings of the candidate rows.
        pick_vectors: (k, d) embeddings of the selected rows, k >= 1.

    Returns:
        float32 array of n distances in [0, 2].

    Raises:
        ValueError: No picks, or the dims differ.
    """
    import faiss

    picks = _unit_rows(pick_vectors)
    if picks.shape[0] == 0:
        raise ValueError("no picks: coverage needs at least one selected row")
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != picks.shape[1]:
        raise ValueError(
            f"vectors have shape {vectors.shape} but picks have dim {picks.shape[1]}; "
            "embed both with the same encoder"
        )
    index = faiss.IndexFlatIP(picks.shape[1])
    index.add(picks)
    out = np.empty(vectors.shape[0], dtype=np.float32)
    for start in range(0, vectors.shape[0], _CHUNK_ROWS):
        chunk = _unit_rows(vectors[start : start + _CHUNK_ROWS])
        sims, _ = index.search(chunk, 1)
        out[start : start + len(chunk)] = 1.0 - sims[:, 0]
    return np.clip(out, 0.0, 2.0)


def coverage(vectors: np.ndarray, pick_vectors: np.ndarray) -> float:
    """Mean cosine distance from each row to its nearest pick; lower is better.

    Args:
        vectors: (n, d) embeddings of all candidate rows, n >= 1.
        pick_vectors: (k, d) embeddings of the selected rows, k >= 1.

    Returns:
        The mean distance, in [0, 2].

    Raises:
        ValueError: No rows or no picks, or the dims differ.
    """
    distances = nearest_pick_distance(vectors, pick_vectors)
    if distances.size == 0:
        raise ValueError("no rows: coverage needs at least one candidate row")
    return float(distances.mean(dtype=np.float64))


def random_pick(n: int, k: int, *, seed: int) -> np.ndarray:
    """The random baseline: ``min(k, n)`` distinct row indices, sorted.

    Args:
        n: Rows to pick from.
        k: Rows to pick.
        seed: Seed; the same seed gives the same pick.

    Returns:
        Sorted int64 indices in [0, n).

    Raises:
        ValueError: n or k is negative.
    """
    if n < 0 or k < 0:
        raise ValueError(f"random_pick needs n >= 0 and k >= 0, got n={n}, k={k}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(k, n), replace=False)).astype(np.int64)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """float32, C-contiguous, L2-normalized rows (zero rows stay zero)."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"vectors must be a 2-D (rows, dim) array, got shape {array.shape}")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.ascontiguousarray(array / np.maximum(norms, 1e-12))
