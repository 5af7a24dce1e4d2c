"""Helpers stages share for reading a batch: its vectors, its rows in id order, and
samples drawn by id so that they do not depend on how rows fall into blocks."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa


def embedding_column(vectors: np.ndarray, dtype: type = np.float32) -> pa.FixedSizeListArray:
    """(n, d) vectors as an Arrow column of fixed-size lists of ``dtype`` (float32, or
    float16 for half the memory): plain Arrow, which every block operation (groupby,
    repartition, Parquet) carries without extensions. :func:`vectors_of` reads either
    back as float32."""
    vectors = np.ascontiguousarray(vectors, dtype=dtype)
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])


def vectors_of(table: pa.Table, column: str = "embedding") -> np.ndarray:
    """An embedding column (``embedding`` by default) as a float32 (n, d) array."""
    if table.num_rows == 0:
        return np.zeros((0, 1), dtype=np.float32)
    values = table[column].combine_chunks()
    if pa.types.is_fixed_size_list(values.type):
        flat = values.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(values), values.type.list_size).astype(np.float32, copy=False)
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float32)


def in_id_order(group: pa.Table) -> pa.Table:
    """The group sorted by row id.

    A group's rows reach its function in whatever order the shuffle's blocks arrived,
    and the algorithms break ties (equal quality scores are common) by position, so
    sorting makes a rerun on the same input give the same ledger.
    """
    ids = group["id"].to_pylist()
    if all(a <= b for a, b in zip(ids, ids[1:], strict=False)):
        return group  # the runner hands groups over sorted already
    return group.sort_by("id")


def id_keys(ids: list[str], seed: int) -> np.ndarray:
    """A uniform [0, 1) key per row id, stable across runs and block layouts."""
    keys = np.empty(len(ids), dtype=np.float64)
    for i, row_id in enumerate(ids):
        digest = hashlib.blake2b(f"{seed}:{row_id}".encode(), digest_size=8).digest()
        keys[i] = int.from_bytes(digest, "little") / 2**64
    return keys


def sample_by_id(
    batch: pa.Table, *, seed: int, fraction: float, columns: list[str] | None = None
) -> pa.Table:
    """The rows whose id key falls below ``fraction`` (only ``columns`` when given): a
    reproducible sample, unlike ``Dataset.random_sample``, whose draw depends on how rows
    fall into blocks."""
    if columns is not None:
        batch = batch.select(columns)
    if fraction >= 1.0:
        return batch
    return batch.filter(pa.array(id_keys(batch["id"].to_pylist(), seed) < fraction))


def sorted_sample(table: pa.Table, column: str) -> tuple[list[str], np.ndarray]:
    """Ids and ``column`` vectors of a sample, sorted by id: the same rows in the same
    order however the dataset fell into blocks, so what is computed from the sample
    (k-means seeds, relevance competitors) is reproducible."""
    if table.num_rows == 0:
        return [], np.zeros((0, 1), np.float32)
    ids = table["id"].to_pylist()
    order = np.argsort(np.asarray(ids, dtype=object), kind="stable")
    return [ids[i] for i in order], vectors_of(table, column)[order]


def value_counts(batch: pa.Table, *, column: str) -> pa.Table:
    """Rows per value of ``column`` in one batch (summed on the driver)."""
    counts = batch[column].value_counts()
    return pa.table({"value": counts.field("values"), "rows": counts.field("counts")})
