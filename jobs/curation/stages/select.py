"""select: per-cluster quotas under the budget, then diverse, high-quality picks in each
cluster; afterwards, how well the picks cover the rows that survived, against a random
pick of the same size."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from jobs.curation.batches import id_keys, in_id_order, value_counts, vectors_of
from jobs.curation.stage import DataView, Plan, Stage, Verdicts
from quality import schema

if TYPE_CHECKING:
    from jobs.curation.config import CurateConfig


def build(cfg: CurateConfig) -> Stage:
    sel = cfg.selection
    return Stage(
        name="select",
        process=select_cluster,
        group_by="cluster",
        needs=("embedding",),
        prepare=partial(plan_quotas, budget=sel.budget, strategy=sel.quota),
        finish=partial(coverage, seed=cfg.seed),
        kwargs=dict(min_distance=sel.min_distance, informative_weight=sel.informative_weight),
    )


def plan_quotas(view: DataView, *, budget: int, strategy: str) -> Plan:
    """How many rows each cluster gets (:func:`quality.selection.cluster_quotas`)."""
    from quality.selection import cluster_quotas

    counts: Counter[int] = Counter()
    table = view.collect(value_counts, column="cluster")
    for value, rows in zip(table["value"].to_pylist(), table["rows"].to_pylist(), strict=True):
        counts[int(value)] += int(rows)
    quotas = cluster_quotas(counts, budget, strategy=strategy)
    return Plan(kwargs=dict(quotas=quotas))


def select_cluster(
    group: pa.Table,
    *,
    quotas: Mapping[int, int],
    min_distance: float,
    informative_weight: float = 0.0,
) -> pa.Table:
    """One cluster's survivors: pick its quota of diverse, high-quality rows.

    With ``informative_weight``, rows are ordered by quality + weight x IFD (IFD below 1
    only): harder examples the instruction still explains come first.
    """
    from quality.composite import informativeness
    from quality.selection import select_diverse

    group = in_id_order(group)
    v = Verdicts(group)
    n = len(v)
    if n == 0:
        return v.table()
    cluster = int(v.columns["cluster"][0])
    quota = int(quotas.get(cluster, 0))
    picks: set[int] = set()
    if quota > 0:
        scores = np.asarray(v.columns["quality"], dtype=float)
        if informative_weight > 0:
            ifd = np.asarray(group["ifd"].to_pylist(), dtype=float)
            scores = scores + informative_weight * informativeness(ifd)
        picks = {
            int(i)
            for i in select_diverse(vectors_of(group), scores, quota, min_distance=min_distance)
        }
    for i in range(n):
        if i in picks:
            v.columns["status"][i] = schema.SELECTED
        else:
            v.drop(
                i,
                "not_selected",
                f"cluster {cluster}'s quota of {quota} went to better or more diverse rows",
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


def coverage(view: DataView, *, seed: int) -> dict[str, Any]:
    """Mean cosine distance from each survivor to its nearest pick: ours vs random.

    The random baseline takes as many survivors as were picked, by smallest hash-derived
    key; only the picks and a small oversample of candidates reach the driver.
    """
    survivors = view.count()
    chosen_count = view.collect(_chosen_count)["chosen"].to_pylist()
    n_picks = int(sum(chosen_count))
    keep_below = min(1.0, (2 * n_picks + 64) / max(survivors, 1))
    table = view.collect(coverage_candidates, seed=seed, keep_below=keep_below)
    vectors = vectors_of(table) if table.num_rows else np.zeros((0, 1), np.float32)
    chosen = np.asarray(table["chosen"].to_pylist(), dtype=bool)
    keys = np.asarray(table["random_key"].to_pylist(), dtype=float)
    pick_vectors = vectors[chosen]
    random_vectors = vectors[np.argsort(keys, kind="stable")[:n_picks]]
    sums = view.collect(pick_distances, picks=pick_vectors, random_picks=random_vectors)
    count = max(survivors, 1)
    return {
        "coverage": {
            "selected": round(sum(sums["to_selected"].to_pylist()) / count, 4),
            "random": round(sum(sums["to_random"].to_pylist()) / count, 4),
            "picks": int(len(pick_vectors)),
            "random_picks": int(len(random_vectors)),
            "survivors": survivors,
        }
    }


def _chosen_count(batch: pa.Table) -> pa.Table:
    chosen = sum(1 for s in batch["status"].to_pylist() if s == schema.SELECTED)
    return pa.table({"chosen": [chosen]})
