"""select: each cluster's ranking (from the cover stage) cut at its quota; afterwards, how
well the picks cover the rows that survived, against a random pick of the same size.

Quotas: ``selection.quota=gain`` (default) gives the budget to the largest marginal
coverage gains across clusters (:func:`quality.covering.allocate_by_gains`: exactly the
greedy over the whole dataset, assembled from per-cluster rankings); ``sqrt`` and
``proportional`` split it by cluster size (:func:`quality.selection.cluster_quotas`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jobs.curation.batches import id_keys, vectors_of
from jobs.curation.stage import DataView, Plan, Stage, Verdicts
from jobs.curation.stages.cover import cluster_counts
from quality import schema

if TYPE_CHECKING:
    from jobs.curation.config import CurateConfig


def build(cfg: CurateConfig) -> Stage:
    sel = cfg.selection
    return Stage(
        name="select",
        process=mark_picks,
        needs=("pick_rank", "pick_gain", "embedding"),
        prepare=partial(plan_quotas, budget=sel.budget, quota=sel.quota),
        finish=partial(coverage, seed=cfg.seed),
    )


def _ranked_gains(batch: pa.Table) -> pa.Table:
    ranked = batch.filter(pc.greater_equal(batch["pick_rank"], 0))
    return ranked.select(["cluster", "pick_rank", "pick_gain"])


def plan_quotas(view: DataView, *, budget: int, quota: str) -> Plan:
    """How many picks each cluster gets."""
    from quality.covering import allocate_by_gains
    from quality.selection import cluster_quotas

    if quota != "gain":
        return Plan(
            kwargs=dict(quotas=cluster_quotas(cluster_counts(view), budget, strategy=quota))
        )
    table = view.collect(_ranked_gains)
    gains: dict[int, np.ndarray] = {}
    if table.num_rows:
        table = table.sort_by([("cluster", "ascending"), ("pick_rank", "ascending")])
        clusters = np.asarray(table["cluster"].to_numpy())
        values = np.asarray(table["pick_gain"].to_numpy(zero_copy_only=False), dtype=float)
        for c in np.unique(clusters):
            gains[int(c)] = values[clusters == c]
    return Plan(kwargs=dict(quotas=allocate_by_gains(gains, budget)))


def mark_picks(batch: pa.Table, *, quotas: Mapping[int, int]) -> pa.Table:
    """Rows ranked within their cluster's quota are selected; the rest not_selected."""
    v = Verdicts(batch)
    ranks = batch["pick_rank"].to_pylist()
    for i, (cluster, rank) in enumerate(zip(v.columns["cluster"], ranks, strict=True)):
        quota = int(quotas.get(int(cluster), 0))
        if 0 <= rank < quota:
            v.columns["status"][i] = schema.SELECTED
        else:
            v.drop(
                i,
                "not_selected",
                f"cluster {cluster}'s {quota} pick(s) went to better or more covering rows"
                + (f" (this row ranked {rank + 1} there)" if rank >= 0 else ""),
            )
    return v.table()


def coverage_candidates(batch: pa.Table, *, seed: int, keep_below: float) -> pa.Table:
    """The selected rows, plus rows whose random key is below ``keep_below``.

    The key is a hash of the row id, so the random baseline is reproducible and drawn
    without shuffling the dataset.
    """
    keys = id_keys(batch["id"].to_pylist(), seed).tolist()
    chosen = [s == schema.SELECTED for s in batch["status"].to_pylist()]
    keep = [c or k < keep_below for c, k in zip(chosen, keys, strict=True)]
    keys = [k if k < keep_below else 2.0 for k in keys]  # 2.0: never among the random picks
    table = pa.table(
        {"embedding": batch["embedding"], "random_key": pa.array(keys), "chosen": pa.array(chosen)}
    )
    return table.filter(pa.array(keep))


def pick_distances(batch: pa.Table, *, picks: np.ndarray, random_picks: np.ndarray) -> pa.Table:
    """Sums over one batch of each survivor's cosine distance to its nearest selected row
    and to its nearest random row."""
    from quality.selection import nearest_pick_distance

    vectors = vectors_of(batch)
    return pa.table(
        {
            "to_selected": [float(nearest_pick_distance(vectors, picks).sum())],
            "to_random": [float(nearest_pick_distance(vectors, random_picks).sum())],
        }
    )


def _chosen_count(batch: pa.Table) -> pa.Table:
    chosen = sum(1 for s in batch["status"].to_pylist() if s == schema.SELECTED)
    return pa.table({"chosen": [chosen]})


def coverage(view: DataView, *, seed: int) -> dict[str, Any]:
    """Mean cosine distance from each survivor to its nearest pick: ours vs random.

    The random baseline takes as many survivors as were picked, by smallest hash-derived
    key; only the picks and a small oversample of candidates reach the driver.
    """
    survivors = view.count()
    n_picks = int(sum(view.collect(_chosen_count)["chosen"].to_pylist()))
    if n_picks == 0:
        return {}
    keep_below = min(1.0, (2 * n_picks + 64) / max(survivors, 1))
    table = view.collect(coverage_candidates, seed=seed, keep_below=keep_below)
    vectors = vectors_of(table)
    chosen = np.asarray(table["chosen"].to_pylist(), dtype=bool)
    keys = np.asarray(table["random_key"].to_pylist(), dtype=float)
    pick_vectors = vectors[chosen]
    random_vectors = vectors[np.argsort(keys, kind="stable")[:n_picks]]
    sums = view.collect(pick_distances, picks=pick_vectors, random_picks=random_vectors)
    return {
        "coverage": {
            "selected": round(sum(sums["to_selected"].to_pylist()) / survivors, 4),
            "random": round(sum(sums["to_random"].to_pylist()) / survivors, 4),
            "picks": int(len(pick_vectors)),
            "random_picks": int(len(random_vectors)),
            "survivors": survivors,
        }
    }
