"""Spherical k-means over embeddings (faiss): the unit of per-cluster work and of diversity.

k-means trains on a sample (:func:`train_kmeans`), then every row is assigned to its
nearest centroid by cosine similarity (:func:`assign_clusters`), batch by batch.
"""

from __future__ import annotations

import math

import faiss
import numpy as np


def choose_k(n: int, *, rows_per_cluster: int, max_clusters: int) -> int:
    """Number of clusters for n embedded rows.

    Args:
        n: Rows to cluster.
        rows_per_cluster: Target mean cluster size; per-cluster pairwise work grows with its
            square.
        max_clusters: Upper bound on k.

    Returns:
        ceil(n / rows_per_cluster), clamped to [1, min(n, max_clusters)] (1 when n is 0).
    """
    if rows_per_cluster < 1 or max_clusters < 1:
        raise ValueError(
            f"rows_per_cluster ({rows_per_cluster}) and max_clusters ({max_clusters}) "
            "must be at least 1"
        )
    return max(1, min(math.ceil(n / rows_per_cluster), max_clusters, n))


def _unit_float32(vectors: np.ndarray) -> np.ndarray:
    """C-contiguous float32 rows of unit length (zero rows stay zero), as faiss needs."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.where(norms > 0, norms, 1.0))


def _kmeans_plusplus(points: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means++ seeding: each next seed is drawn with probability proportional to its
    squared distance to the nearest seed so far, so no blob starts without a centroid
    (faiss seeds uniformly at random, which can put two seeds in one blob and none in
    another). Costs about one k-means iteration.
    """
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(len(points)))]
    # Squared distance between unit rows: 2 - 2 * cosine.
    dist = np.maximum(2.0 - 2.0 * (points @ points[chosen[0]]), 0.0)
    for _ in range(1, k):
        cumulative = np.cumsum(dist, dtype=np.float64)
        if cumulative[-1] > 0:
            nxt = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
            chosen.append(min(nxt, len(points) - 1))
        else:  # every row sits on a seed (up to float error): any unchosen row will do
            chosen.append(int(rng.choice(np.setdiff1d(np.arange(len(points)), chosen))))
        np.minimum(dist, np.maximum(2.0 - 2.0 * (points @ points[chosen[-1]]), 0.0), out=dist)
    return points[chosen]


def train_kmeans(sample: np.ndarray, k: int, *, iterations: int = 20, seed: int = 0) -> np.ndarray:
    """Spherical k-means centroids of a sample of embeddings (faiss.Kmeans, k-means++ seeds).

    Args:
        sample: Embeddings, shape (n, d), n >= 1; rows are L2-normalized here.
        k: Wanted clusters, >= 1. A sample with fewer distinct rows than k gets one
            centroid per distinct row instead.
        iterations: k-means iterations.
        seed: Seed of the k-means++ initialization.

    Returns:
        Unit-length centroids, float32 of shape (min(k, distinct rows of sample), d).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    points = _unit_float32(sample)
    if len(points) == 0:
        raise ValueError("train_kmeans needs at least one sample row")
    # Counting distinct rows through their bytes is cheap; sorting them is only needed here.
    if len({row.tobytes() for row in points}) <= k:
        return np.unique(points, axis=0)
    if k == 1:
        return _unit_float32(points.mean(axis=0, keepdims=True))
    kmeans = faiss.Kmeans(
        points.shape[1],
        k,
        niter=iterations,
        seed=seed,
        spherical=True,
        verbose=False,
        # The caller already sampled: train on all of it, and allow small clusters
        # without faiss's "please provide at least N training points" warning.
        min_points_per_centroid=1,
        max_points_per_centroid=len(points),
    )
    kmeans.train(points, init_centroids=_kmeans_plusplus(points, k, seed))
    return _unit_float32(kmeans.centroids)


def assign_clusters(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest centroid (largest inner product) of every vector.

    Args:
        vectors: Embeddings, shape (n, d); L2-normalized rows, since the ranking is by
            inner product.
        centroids: From :func:`train_kmeans`, shape (k, d).

    Returns:
        Cluster index per row, int64 of shape (n,).
    """
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or centroids.ndim != 2 or vectors.shape[1] != centroids.shape[1]:
        raise ValueError(
            f"vectors {vectors.shape} and centroids {centroids.shape} must be 2-D with the "
            "same dimension"
        )
    if len(vectors) == 0:
        return np.empty(0, dtype=np.int64)
    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(centroids)
    _, labels = index.search(vectors, 1)
    return labels[:, 0].astype(np.int64)
