"""cluster: spherical k-means trained on a sample of the rows, every row assigned to its
nearest centroid; rows far from the trusted reference set (when one is given) dropped.

The cluster is the unit of the dedup and select stages' pairwise work, and of diversity.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from jobs.curation.batches import sample_by_id, sorted_sample, vectors_of
from jobs.curation.stage import DataView, Plan, Stage, Verdicts
from quality import schema

if TYPE_CHECKING:
    from jobs.curation.config import CurateConfig

MAP_ROWS = 5_000  # rows drawn on the report's 2-D embedding map


def build(cfg: CurateConfig) -> Stage:
    return Stage(
        name="cluster",
        process=assign_rows,
        needs=("embedding",),
        prepare=partial(
            fit,
            rows_per_cluster=cfg.clusters.rows_per_cluster,
            max_clusters=cfg.clusters.max_clusters,
            sample_size=cfg.clusters.sample_size,
            iterations=cfg.clusters.iterations,
            seed=cfg.seed,
            reference=partial(reference_vectors, cfg) if cfg.filters.reference else None,
        ),
        kwargs=dict(reference_min_similarity=cfg.filters.reference_min_similarity),
    )


def fit(
    view: DataView,
    *,
    rows_per_cluster: int,
    max_clusters: int,
    sample_size: int,
    iterations: int,
    seed: int,
    reference=None,
) -> Plan:
    """k-means on an id-keyed sample of at most ``sample_size`` rows; a 2-D map of part of
    that sample for the report; the reference set's vectors when one is configured."""
    from quality.clustering import assign_clusters, choose_k, train_kmeans

    n_rows = view.count()
    k = choose_k(n_rows, rows_per_cluster=rows_per_cluster, max_clusters=max_clusters)
    fraction = min(1.0, sample_size / n_rows)
    # k-means seeds by position, so the sample comes back in id order.
    ids, stacked = sorted_sample(
        view.collect(sample_by_id, seed=seed, fraction=fraction, columns=["id", "embedding"]),
        "embedding",
    )
    centroids = train_kmeans(
        stacked, min(k, max(1, len(stacked))), iterations=iterations, seed=seed
    )
    shown = stacked[:MAP_ROWS]
    xy = pca_2d(shown)
    embedding_map = {
        "id": ids[:MAP_ROWS],
        "x": xy[:, 0].tolist(),
        "y": xy[:, 1].tolist(),
        "cluster": assign_clusters(shown, centroids).tolist(),
    }
    return Plan(
        kwargs=dict(centroids=centroids, reference=reference() if reference else None),
        figures={"embedding_map": embedding_map},
    )


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """First two principal components, for the report's map of the embedding space."""
    if len(vectors) < 2:
        return np.zeros((len(vectors), 2), dtype=np.float32)
    centered = vectors - vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    xy = centered @ vt[:2].T
    return xy if xy.shape[1] == 2 else np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))


def reference_vectors(cfg: CurateConfig) -> np.ndarray:
    """Embeddings of the trusted reference set (small by definition), on the driver.

    Raises:
        InputError: the reference set has no valid rows.
    """
    from infra.errors import InputError
    from quality.embeddings import load_encoder, row_vectors
    from quality.readers import read_all

    rows = [r for r in read_all([cfg.filters.reference]) if r["status"] == schema.ACTIVE]
    if not rows:
        raise InputError(
            f"reference set {cfg.filters.reference} has no valid rows; "
            "give a small file of trusted examples in a supported format"
        )
    encoder = load_encoder(
        cfg.embed.model, batch_size=cfg.embed.batch_size, max_length=cfg.embed.max_length
    )
    return row_vectors(encoder, [r["prompt"] for r in rows], [r["response"] for r in rows])[0]


def assign_rows(
    batch: pa.Table,
    *,
    centroids: np.ndarray,
    reference: np.ndarray | None,
    reference_min_similarity: float,
) -> pa.Table:
    """Nearest k-means centroid per row, and the off-distribution filter when configured."""
    from quality.clustering import assign_clusters
    from quality.filters import reference_similarity

    v = Verdicts(batch)
    vectors = vectors_of(batch)
    v.columns["cluster"] = [int(c) for c in assign_clusters(vectors, centroids)]
    if reference is not None:
        sims = reference_similarity(vectors, reference)
        for i in np.flatnonzero(sims < reference_min_similarity):
            v.drop(
                int(i),
                "off_distribution",
                f"best similarity to the reference set {sims[i]:.2f} < "
                f"filters.reference_min_similarity {reference_min_similarity}",
            )
    return v.table()
