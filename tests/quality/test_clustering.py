"""Spherical k-means with faiss (quality/clustering.py)."""

from __future__ import annotations

import numpy as np
import pytest

from quality.clustering import assign_clusters, choose_k, train_kmeans


def _blobs(per_blob: int, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated directions with a little noise, and each row's true blob."""
    rng = np.random.default_rng(seed)
    directions = np.eye(dim, dtype=np.float32)[:3]
    truth = np.repeat(np.arange(3), per_blob)
    vectors = directions[truth] + 0.05 * rng.normal(size=(len(truth), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, truth


@pytest.mark.parametrize(
    ("n", "rows_per_cluster", "max_clusters", "k"),
    [
        (1000, 400, 4096, 3),
        (800, 400, 4096, 2),
        (5, 400, 4096, 1),
        (0, 400, 4096, 1),
        (10**6, 10, 4096, 4096),
        (3, 1, 100, 3),
    ],
)
def test_choose_k(n: int, rows_per_cluster: int, max_clusters: int, k: int) -> None:
    assert choose_k(n, rows_per_cluster=rows_per_cluster, max_clusters=max_clusters) == k


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_separates_well_separated_blobs(seed: int) -> None:
    vectors, truth = _blobs(per_blob=40, seed=seed)
    centroids = train_kmeans(vectors, 3, iterations=10, seed=seed)
    assert centroids.shape == (3, 16) and centroids.dtype == np.float32
    assert np.allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-5)
    labels = assign_clusters(vectors, centroids)
    assert labels.dtype == np.int64
    # Each blob is exactly one cluster (whatever its number).
    for blob in range(3):
        assert len(set(labels[truth == blob].tolist())) == 1
    assert len(set(labels.tolist())) == 3


def test_kmeans_is_deterministic_for_a_seed() -> None:
    vectors, _ = _blobs(per_blob=30, seed=1)
    a = train_kmeans(vectors, 4, seed=3)
    assert np.array_equal(a, train_kmeans(vectors, 4, seed=3))


def test_kmeans_with_more_clusters_than_rows() -> None:
    vectors, _ = _blobs(per_blob=1)  # 3 rows
    centroids = train_kmeans(vectors, 10)
    assert centroids.shape == (3, 16)
    assert sorted(assign_clusters(vectors, centroids).tolist()) == [0, 1, 2]


def test_kmeans_with_duplicate_rows_and_k_one() -> None:
    vectors, _ = _blobs(per_blob=2)
    copies = np.concatenate([vectors[:1]] * 5)
    assert train_kmeans(copies, 3).shape == (1, 16)  # one distinct row, one centroid
    single = train_kmeans(vectors, 1)
    assert single.shape == (1, 16)
    assert assign_clusters(vectors, single).tolist() == [0] * 6


def test_kmeans_with_rows_distinct_only_by_float_noise() -> None:
    # Rows 0-2 differ in their bytes but not in float32 distance: seeding must still find
    # three seeds.
    e1, e2 = np.eye(16, dtype=np.float32)[:2]
    vectors = np.stack([e1, e1 + np.float32(1e-7) * e2, e1 + np.float32(2e-7) * e2, e2])
    centroids = train_kmeans(vectors, 3)
    assert centroids.shape == (3, 16)
    labels = assign_clusters(vectors, centroids)
    assert labels[3] not in labels[:3].tolist()


def test_kmeans_normalizes_its_sample() -> None:
    vectors, truth = _blobs(per_blob=20)
    scaled = vectors * np.where(truth == 0, 100.0, 0.01)[:, None]
    centroids = train_kmeans(scaled, 3)
    assert np.allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-5)
    labels = assign_clusters(vectors, centroids)
    assert len(set(labels.tolist())) == 3


def test_kmeans_prints_no_faiss_warning(capfd) -> None:
    vectors, _ = _blobs(per_blob=5)  # 15 rows for 4 centroids: far below faiss's 39 per centroid
    train_kmeans(vectors, 4)
    out, err = capfd.readouterr()
    assert "WARNING" not in out + err


def test_assign_clusters_picks_the_largest_inner_product() -> None:
    centroids = np.array([[1, 0], [0, 1]], dtype=np.float32)
    vectors = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.61]], dtype=np.float32)
    assert assign_clusters(vectors, centroids).tolist() == [0, 1, 1]
    assert assign_clusters(np.empty((0, 2), np.float32), centroids).tolist() == []
    with pytest.raises(ValueError, match="same dimension"):
        assign_clusters(np.ones((2, 3), np.float32), centroids)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError):
        train_kmeans(np.ones((3, 2), np.float32), 0)
    with pytest.raises(ValueError):
        train_kmeans(np.empty((0, 2), np.float32), 1)
    with pytest.raises(ValueError):
        choose_k(10, rows_per_cluster=0, max_clusters=3)
