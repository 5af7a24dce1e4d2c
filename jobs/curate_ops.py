"""The per-batch and per-group functions of the curation job.

Each function here is what one Ray Data operator runs on one block or one group:
it turns the columns of :class:`quality.schema.Row` into arguments for the pure
functions of ``quality/`` and writes their verdicts back as ``status``/``reason``
columns. Nothing here holds more than one batch or one group.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from quality import schema

# Columns every block carries, in this order and with these types. The pipeline
# adds `exact_key`/`instruction_key` (strings) and `embedding` (a tensor) later.
ROW_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("messages", pa.string()),
        ("prompt", pa.string()),
        ("response", pa.string()),
        ("extras", pa.string()),
        ("timestamp", pa.string()),
        ("raw", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("duplicate_of", pa.string()),
        ("kept_instead", pa.string()),
        ("quality", pa.float64()),
        ("failed_rules", pa.string()),  # comma-joined; a list in the ledger
        ("cluster", pa.int64()),
    ]
)

Batch = dict[str, np.ndarray]
ROWS_PER_BLOCK = 5_000


def read_chunk_blocks(chunk: Batch, **read_kwargs: Any) -> Iterator[pa.Table]:
    """Read one planned chunk (a batch of size 1) and yield blocks of canonical rows."""
    from quality.readers import read_chunk

    spec = {key: _scalar(values[0]) for key, values in chunk.items()}
    rows: list[dict[str, Any]] = []
    for row in read_chunk(spec, **read_kwargs):
        rows.append(_canonical(row))
        if len(rows) >= ROWS_PER_BLOCK:
            yield pa.Table.from_pylist(rows, schema=ROW_SCHEMA)
            rows = []
    if rows:
        yield pa.Table.from_pylist(rows, schema=ROW_SCHEMA)


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _canonical(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {name: row.get(name) for name in ROW_SCHEMA.names}
    rules = row.get("failed_rules") or []
    out["failed_rules"] = ",".join(rules) if not isinstance(rules, str) else rules
    out["cluster"] = -1 if row.get("cluster") is None else int(row["cluster"])
    return out


def score_rows(
    batch: Batch,
    *,
    thresholds: Mapping[str, float],
    weights: Mapping[str, float],
    min_score: float,
    since: str | None,
) -> Batch:
    """Quality-score the active rows of a batch; drop low scorers and stale rows.

    Also adds the grouping keys used by the exact-duplicate and conflict stages.
    """
    from quality.filters import is_stale, parse_since
    from quality.heuristics import evaluate_batch
    from quality.text import exact_key, instruction_key

    batch = _writable(batch)
    n = len(batch["id"])
    batch["exact_key"] = np.full(n, None, dtype=object)
    batch["instruction_key"] = np.full(n, None, dtype=object)
    active = np.flatnonzero(batch["status"] == schema.ACTIVE)
    if len(active) == 0:
        return batch
    prompts = [batch["prompt"][i] for i in active]
    responses = [batch["response"][i] for i in active]
    scores, failed, reasons = evaluate_batch(
        prompts, responses, thresholds=thresholds or None, weights=weights or None
    )
    for j, i in enumerate(active):
        batch["quality"][i] = float(scores[j])
        batch["failed_rules"][i] = ",".join(failed[j])
        batch["exact_key"][i] = exact_key(prompts[j], responses[j])
        batch["instruction_key"][i] = instruction_key(prompts[j])
        if scores[j] < min_score:
            _drop(
                batch,
                i,
                reasons[j] or "low_quality",
                f"quality {scores[j]:.2f} < heuristics.min_score {min_score}; "
                f"failed: {', '.join(failed[j]) or 'none'}",
            )
    if since is not None:
        cutoff = parse_since(since)
        still = np.flatnonzero(batch["status"] == schema.ACTIVE)
        stale = is_stale([batch["timestamp"][i] for i in still], cutoff)
        for i in still[stale]:
            _drop(batch, i, "stale", f"timestamp {batch['timestamp'][i]} is before {since}")
    return batch


def resolve_instruction_group(
    group: Batch, *, exact: bool, conflicts: bool, agree_threshold: float, shingle_size: int
) -> Batch:
    """One group of rows sharing a normalized instruction: exact duplicates, then conflicts."""
    from quality.conflicts import resolve_instruction_group as resolve
    from quality.dedup import exact_dedup

    n = len(group["id"])
    if n < 2:
        return group
    group = _writable(group)
    ids, scores = group["id"], group["quality"].astype(float)
    alive = np.arange(n)
    if exact:
        dup_of = exact_dedup(list(group["exact_key"]), scores, list(ids))
        for i in np.flatnonzero(dup_of >= 0):
            _drop(
                group,
                i,
                "exact_duplicate",
                "same text after normalization",
                duplicate_of=ids[dup_of[i]],
            )
        alive = np.flatnonzero(dup_of < 0)
    if conflicts and len(alive) > 1:
        sub_ids = [ids[i] for i in alive]
        dup_of, conflict_with = resolve(
            [group["response"][i] for i in alive],
            scores[alive],
            sub_ids,
            agree_threshold=agree_threshold,
            shingle_size=shingle_size,
        )
        for j, i in enumerate(alive):
            if dup_of[j] >= 0:
                _drop(
                    group,
                    i,
                    "near_duplicate",
                    "same instruction, an answer that agrees",
                    duplicate_of=sub_ids[dup_of[j]],
                )
            elif conflict_with[j] >= 0:
                _drop(
                    group,
                    i,
                    "conflict",
                    "same instruction, a different answer",
                    kept_instead=sub_ids[conflict_with[j]],
                )
    return group


class Embedder:
    """Ray Data actor: loads the encoder once, embeds ``prompt`` + ``response`` per batch."""

    def __init__(
        self, model: str, device: str, batch_size: int, max_length: int, threads: int
    ) -> None:
        import torch

        from quality.embeddings import load_encoder

        if device == "cpu" and threads > 0:
            # Ray sets OMP_NUM_THREADS to the actor's CPU count; torch must be told too.
            torch.set_num_threads(threads)
            os.environ["OMP_NUM_THREADS"] = str(threads)
        self.encoder = load_encoder(
            model, device=device, batch_size=batch_size, max_length=max_length
        )

    def __call__(self, batch: Batch) -> Batch:
        from quality.embeddings import embedding_text

        texts = [
            embedding_text(p, r) for p, r in zip(batch["prompt"], batch["response"], strict=True)
        ]
        batch = dict(batch)
        batch["embedding"] = np.asarray(self.encoder.encode(texts), dtype=np.float32)
        return batch


def assign_rows(
    batch: Batch,
    *,
    centroids: np.ndarray,
    reference: np.ndarray | None,
    reference_min_similarity: float,
) -> Batch:
    """Nearest k-means centroid per row, and the off-distribution filter when configured."""
    from quality.clustering import assign_clusters
    from quality.filters import reference_similarity

    batch = _writable(batch)
    vectors = np.asarray(batch["embedding"], dtype=np.float32)
    batch["cluster"] = assign_clusters(vectors, centroids).astype(np.int64)
    if reference is not None:
        sims = reference_similarity(vectors, reference)
        for i in np.flatnonzero(sims < reference_min_similarity):
            _drop(
                batch,
                i,
                "off_distribution",
                f"best similarity to the reference set {sims[i]:.2f} < "
                f"filters.reference_min_similarity {reference_min_similarity}",
            )
    return batch


def dedup_cluster(
    group: Batch,
    *,
    fuzzy: bool,
    fuzzy_threshold: float,
    num_perm: int,
    shingle_size: int,
    semantic: bool,
    semantic_threshold: float,
) -> Batch:
    """One k-means cluster: MinHash LSH near-duplicates, then SemDeDup."""
    from quality.dedup import fuzzy_dedup, minhash_signatures, semantic_dedup

    n = len(group["id"])
    if n < 2:
        return group
    group = _writable(group)
    ids, scores = list(group["id"]), group["quality"].astype(float)
    alive = np.arange(n)
    if fuzzy:
        texts = [f"{p}\n{r}" for p, r in zip(group["prompt"], group["response"], strict=True)]
        signatures = minhash_signatures(texts, num_perm=num_perm, shingle_size=shingle_size)
        dup_of = fuzzy_dedup(signatures, scores, ids, threshold=fuzzy_threshold, num_perm=num_perm)
        for i in np.flatnonzero(dup_of >= 0):
            _drop(
                group,
                i,
                "near_duplicate",
                f"MinHash Jaccard >= dedup.fuzzy_threshold {fuzzy_threshold}",
                duplicate_of=ids[dup_of[i]],
            )
        alive = np.flatnonzero(dup_of < 0)
    if semantic and len(alive) > 1:
        vectors = np.asarray(group["embedding"], dtype=np.float32)[alive]
        sub_ids = [ids[i] for i in alive]
        dup_of = semantic_dedup(vectors, scores[alive], sub_ids, threshold=semantic_threshold)
        for j in np.flatnonzero(dup_of >= 0):
            _drop(
                group,
                alive[j],
                "semantic_duplicate",
                f"cosine similarity >= dedup.semantic_threshold {semantic_threshold}",
                duplicate_of=sub_ids[dup_of[j]],
            )
    return group


def select_cluster(group: Batch, *, quotas: Mapping[int, int], min_distance: float) -> Batch:
    """One cluster's survivors: pick its quota of diverse, high-quality rows."""
    from quality.selection import select_diverse

    group = _writable(group)
    n = len(group["id"])
    quota = int(quotas.get(int(group["cluster"][0]), 0))
    picks = np.array([], dtype=np.int64)
    if quota > 0:
        vectors = np.asarray(group["embedding"], dtype=np.float32)
        picks = select_diverse(
            vectors, group["quality"].astype(float), quota, min_distance=min_distance
        )
    chosen = np.zeros(n, dtype=bool)
    chosen[picks] = True
    for i in range(n):
        if chosen[i]:
            group["status"][i] = schema.SELECTED
        else:
            _drop(
                group,
                i,
                "not_selected",
                f"cluster {group['cluster'][i]} quota of {quota} filled by better or "
                "more diverse rows",
            )
    return group


def random_key(batch: Batch, *, seed: int) -> Batch:
    """A uniform pseudo-random number per row from its id, for the random baseline pick."""
    import hashlib

    keys = np.empty(len(batch["id"]), dtype=np.float64)
    for i, row_id in enumerate(batch["id"]):
        digest = hashlib.blake2b(f"{seed}:{row_id}".encode(), digest_size=8).digest()
        keys[i] = int.from_bytes(digest, "little") / 2**64
    return {"id": batch["id"], "embedding": batch["embedding"], "random_key": keys}


def pick_distances(batch: Batch, *, picks: np.ndarray, random_picks: np.ndarray) -> Batch:
    """Each survivor's cosine distance to its nearest selected row and nearest random row."""
    from quality.selection import nearest_pick_distance

    vectors = np.asarray(batch["embedding"], dtype=np.float32)
    return {
        "to_selected": nearest_pick_distance(vectors, picks),
        "to_random": nearest_pick_distance(vectors, random_picks),
    }


def keep_status(batch: pa.Table, *, active: bool) -> pa.Table:
    """Rows still in play (``active=True``) or rows already decided."""
    import pyarrow.compute as pc

    mask = pc.equal(batch["status"], schema.ACTIVE)
    return batch.filter(mask if active else pc.invert(mask))


def to_row_schema(batch: pa.Table) -> pa.Table:
    """Just the canonical columns (no keys, no embeddings), for the ledger."""
    if batch.num_rows == 0:
        return ROW_SCHEMA.empty_table()
    return batch.select(ROW_SCHEMA.names).cast(ROW_SCHEMA)


def _drop(
    batch: Batch,
    i: int,
    reason: str,
    detail: str,
    *,
    duplicate_of: str | None = None,
    kept_instead: str | None = None,
) -> None:
    batch["status"][i] = schema.DROPPED
    batch["reason"][i] = reason
    batch["detail"][i] = detail
    if duplicate_of is not None:
        batch["duplicate_of"][i] = duplicate_of
    if kept_instead is not None:
        batch["kept_instead"][i] = kept_instead


def _writable(batch: Batch) -> Batch:
    """Copies of the columns a stage writes (Ray hands out read-only zero-copy arrays)."""
    out = dict(batch)
    for name in ("status", "reason", "detail", "duplicate_of", "kept_instead", "failed_rules"):
        if name in out:
            out[name] = np.array(out[name], dtype=object)
    for name in ("quality",):
        if name in out:
            out[name] = np.array(out[name], dtype=np.float64)
    if "cluster" in out:
        out["cluster"] = np.array(out["cluster"], dtype=np.int64)
    return out
