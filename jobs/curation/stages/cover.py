"""cover: in each k-means cluster, rank the surviving rows in the order the selection would
take them: greedy quality-weighted facility location (:mod:`quality.covering`) by default,
or the DEITA-style distance threshold (``selection.method=diverse``). The select stage then
cuts each cluster's ranking at its quota.

How deep a cluster is ranked: with ``selection.quota=gain`` as deep as it could matter (a
cluster rarely earns more than a few times its share of the budget, so ranking stops at
``DEPTH_FACTOR`` times that share, at least ``MIN_DEPTH`` rows); with fixed quotas
(``sqrt``, ``proportional``) exactly its quota.
"""

from __future__ import annotations

import math
from collections import Counter
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from jobs.curation.batches import in_id_order, value_counts, vectors_of
from jobs.curation.stage import DataView, Plan, Stage

if TYPE_CHECKING:
    from jobs.curation.config import CurateConfig

DEPTH_FACTOR = 4
"""With gain quotas, a cluster is ranked to this many times its proportional share."""
MIN_DEPTH = 8
"""...and at least this deep (small budgets, small clusters)."""


def build(cfg: CurateConfig) -> Stage:
    sel = cfg.selection
    return Stage(
        name="cover",
        decides=False,
        process=rank_cluster,
        group_by="cluster",
        needs=("embedding",),
        adds=("pick_rank", "pick_gain"),
        prepare=partial(plan_depth, budget=sel.budget, quota=sel.quota),
        kwargs=dict(
            method=sel.method,
            min_distance=sel.min_distance,
            quality_power=sel.quality_power,
            informative_weight=sel.informative_weight,
        ),
    )


def cluster_counts(view: DataView) -> Counter[int]:
    """Rows per cluster, counted batch by batch."""
    counts: Counter[int] = Counter()
    table = view.collect(value_counts, column="cluster")
    for value, rows in zip(table["value"].to_pylist(), table["rows"].to_pylist(), strict=True):
        counts[int(value)] += int(rows)
    return counts


def plan_depth(view: DataView, *, budget: int, quota: str) -> Plan:
    """How many of each cluster's rows to rank."""
    from quality.selection import cluster_quotas

    counts = cluster_counts(view)
    if quota != "gain":
        return Plan(kwargs=dict(depth=cluster_quotas(counts, budget, strategy=quota)))
    total = sum(counts.values())
    depth = {
        c: min(n, max(MIN_DEPTH, math.ceil(DEPTH_FACTOR * budget * n / total)))
        for c, n in counts.items()
    }
    return Plan(kwargs=dict(depth=depth))


def selection_scores(group: pa.Table, informative_weight: float) -> np.ndarray:
    """What the selection ranks by: the quality score, plus ``informative_weight`` x the
    IFD bonus (IFD below 1: harder examples the instruction still explains)."""
    from quality.composite import informativeness

    scores = np.asarray(group["quality"].to_pylist(), dtype=float)
    if informative_weight > 0:
        ifd = np.asarray(group["ifd"].to_pylist(), dtype=float)
        scores = scores + informative_weight * informativeness(ifd)
    return scores


def rank_cluster(
    group: pa.Table,
    *,
    depth: dict[int, int],
    method: str,
    min_distance: float,
    quality_power: float,
    informative_weight: float = 0.0,
) -> pa.Table:
    """One cluster's rows with ``pick_rank`` (0 = first pick; -1 = not ranked) and
    ``pick_gain`` (the coverage it adds, for gain quotas; null otherwise)."""
    from quality.covering import facility_location
    from quality.selection import select_diverse

    group = in_id_order(group)
    n = group.num_rows
    rank = np.full(n, -1, dtype=np.int64)
    gain = np.full(n, np.nan)
    d = int(depth.get(int(group["cluster"][0].as_py()), 0)) if n else 0
    if d > 0:
        scores = selection_scores(group, informative_weight)
        vectors = vectors_of(group)
        if method == "facility":
            picks, gains = facility_location(vectors, scores, d, quality_power=quality_power)
            gain[picks] = gains
        else:
            picks = select_diverse(vectors, scores, d, min_distance=min_distance)
        rank[picks] = np.arange(len(picks))
    return group.append_column("pick_rank", pa.array(rank, pa.int64())).append_column(
        "pick_gain", pa.array(gain, pa.float64(), from_pandas=True)
    )
