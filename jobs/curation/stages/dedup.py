"""dedup: per k-means cluster, MinHash LSH near-duplicates, then SemDeDup semantic
duplicates; of each duplicate group the best-scoring row stays."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from jobs.curation.batches import in_id_order, vectors_of
from jobs.curation.stage import Stage, Verdicts

if TYPE_CHECKING:
    from jobs.curation.config import CurateConfig


def build(cfg: CurateConfig) -> Stage:
    d = cfg.dedup
    return Stage(
        name="dedup",
        process=dedup_cluster,
        group_by="cluster",
        skip_single_groups=True,
        needs=("embedding",),
        enabled=d.fuzzy or d.semantic,
        kwargs=dict(
            fuzzy=d.fuzzy,
            fuzzy_threshold=d.fuzzy_threshold,
            num_perm=d.num_perm,
            shingle_size=d.shingle_size,
            semantic=d.semantic,
            semantic_threshold=cfg.semantic_threshold,
        ),
    )


def dedup_cluster(
    group: pa.Table,
    *,
    fuzzy: bool,
    fuzzy_threshold: float,
    num_perm: int,
    shingle_size: int,
    semantic: bool,
    semantic_threshold: float,
) -> pa.Table:
    """One k-means cluster: MinHash LSH near-duplicates, then SemDeDup."""
    from quality.dedup import estimated_jaccard, fuzzy_dedup, minhash_signatures, semantic_dedup

    group = in_id_order(group)
    v = Verdicts(group)
    n = len(v)
    if n < 2:
        return v.table()
    ids = group["id"].to_pylist()
    scores = np.asarray(v.columns["quality"], dtype=float)
    alive = np.arange(n)
    if fuzzy:
        texts = [
            f"{p}\n{r}"
            for p, r in zip(group["prompt"].to_pylist(), group["response"].to_pylist(), strict=True)
        ]
        signatures = minhash_signatures(texts, num_perm=num_perm, shingle_size=shingle_size)
        dup_of = fuzzy_dedup(signatures, scores, ids, threshold=fuzzy_threshold, num_perm=num_perm)
        for i in np.flatnonzero(dup_of >= 0):
            similarity = estimated_jaccard(signatures[i], signatures[dup_of[i]])
            v.drop(
                int(i),
                "near_duplicate",
                f"MinHash Jaccard {similarity:.2f} >= dedup.fuzzy_threshold {fuzzy_threshold}",
                duplicate_of=ids[dup_of[i]],
            )
        alive = np.flatnonzero(dup_of < 0)
    if semantic and len(alive) > 1:
        vectors = vectors_of(group)[alive]
        sub_ids = [ids[i] for i in alive]
        dup_of = semantic_dedup(vectors, scores[alive], sub_ids, threshold=semantic_threshold)
        for j in np.flatnonzero(dup_of >= 0):
            cosine = float(vectors[j] @ vectors[dup_of[j]])
            v.drop(
                int(alive[j]),
                "semantic_duplicate",
                f"cosine similarity {cosine:.3f} >= dedup.semantic_threshold {semantic_threshold}",
                duplicate_of=sub_ids[dup_of[j]],
            )
    return v.table()
