"""The per-batch and per-group functions of the curation job.

Each function here is what one Ray Data operator runs on one block or one group:
it turns the columns of :class:`quality.schema.Row` into arguments for the pure
functions of ``quality/`` and writes their verdicts back as ``status``/``reason``
columns. Nothing here holds more than one batch or one group.
"""

from __future__ import annotations

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
        # model-based signals (jobs/curation/signals.py); null where a signal did not run
        ("relevance", pa.float64()),
        ("ifd", pa.float64()),
        ("perplexity", pa.float64()),
        ("judge_score", pa.float64()),
        ("judge_status", pa.string()),
    ]
)

ROWS_PER_BLOCK = 5_000


def read_chunk_blocks(chunk: dict[str, np.ndarray], **read_kwargs: Any) -> Iterator[pa.Table]:
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


class Verdicts:
    """The writable columns of one block or group as Python lists, and back to Arrow.

    Stages read a pyarrow table, record drops here, and return ``table()``: every
    column keeps its declared type whatever the block holds (Ray would otherwise
    guess types from all-null columns and fail to merge blocks).
    """

    WRITABLE = (
        "status",
        "reason",
        "detail",
        "duplicate_of",
        "kept_instead",
        "quality",
        "failed_rules",
        "cluster",
    )

    def __init__(self, table: pa.Table) -> None:
        self.source = table
        self.columns = {name: table[name].to_pylist() for name in self.WRITABLE}

    def __len__(self) -> int:
        return self.source.num_rows

    def drop(
        self,
        i: int,
        reason: str,
        detail: str,
        *,
        duplicate_of: str | None = None,
        kept_instead: str | None = None,
    ) -> None:
        self.columns["status"][i] = schema.DROPPED
        self.columns["reason"][i] = reason
        self.columns["detail"][i] = detail
        if duplicate_of is not None:
            self.columns["duplicate_of"][i] = str(duplicate_of)
        if kept_instead is not None:
            self.columns["kept_instead"][i] = str(kept_instead)

    def table(self, **extra: pa.Array) -> pa.Table:
        out = self.source
        for name, values in self.columns.items():
            array = pa.array(values, type=ROW_SCHEMA.field(name).type)
            out = out.set_column(out.schema.get_field_index(name), name, array)
        for name, array in extra.items():
            if name in out.column_names:
                out = out.set_column(out.schema.get_field_index(name), name, array)
            else:
                out = out.append_column(name, array)
        return out


def score_rows(
    batch: pa.Table,
    *,
    thresholds: Mapping[str, float],
    weights: Mapping[str, float],
    min_score: float,
    since: str | None,
) -> pa.Table:
    """Quality-score the active rows of a batch; drop low scorers and stale rows.

    Also adds the grouping keys used by the exact-duplicate and conflict stages.
    """
    from quality.filters import is_stale, parse_since
    from quality.heuristics import evaluate_batch
    from quality.text import exact_key, instruction_key

    v = Verdicts(batch)
    n = len(v)
    exact_keys: list[str | None] = [None] * n
    instruction_keys: list[str | None] = [None] * n
    active = [i for i in range(n) if v.columns["status"][i] == schema.ACTIVE]
    prompts_all, responses_all = batch["prompt"].to_pylist(), batch["response"].to_pylist()
    prompts = [prompts_all[i] for i in active]
    responses = [responses_all[i] for i in active]
    if active:
        scores, failed, reasons = evaluate_batch(
            prompts, responses, thresholds=thresholds or None, weights=weights or None
        )
        for j, i in enumerate(active):
            v.columns["quality"][i] = float(scores[j])
            v.columns["failed_rules"][i] = ",".join(failed[j])
            exact_keys[i] = exact_key(prompts[j], responses[j])
            instruction_keys[i] = instruction_key(prompts[j])
            if scores[j] < min_score:
                v.drop(
                    i,
                    reasons[j] or "low_quality",
                    f"quality {scores[j]:.2f} < heuristics.min_score {min_score}; "
                    f"failed: {', '.join(failed[j]) or 'none'}",
                )
    if since is not None:
        cutoff = parse_since(since)
        timestamps = batch["timestamp"].to_pylist()
        still = [i for i in range(n) if v.columns["status"][i] == schema.ACTIVE]
        stale = is_stale([timestamps[i] for i in still], cutoff)
        for i, old in zip(still, stale, strict=True):
            if old:
                v.drop(i, "stale", f"timestamp {timestamps[i]} is before filters.since {since}")
    return v.table(
        exact_key=pa.array(exact_keys, pa.string()),
        instruction_key=pa.array(instruction_keys, pa.string()),
    )


def resolve_instruction_group(
    group: pa.Table, *, exact: bool, conflicts: bool, agree_threshold: float, shingle_size: int
) -> pa.Table:
    """One group of rows sharing a normalized instruction: exact duplicates, then conflicts."""
    from quality.conflicts import resolve_instruction_group as resolve
    from quality.dedup import exact_dedup

    group = in_id_order(group)
    v = Verdicts(group)
    n = len(v)
    if n < 2:
        return v.table()
    ids = group["id"].to_pylist()
    scores = np.asarray(v.columns["quality"], dtype=float)
    alive = np.arange(n)
    if exact:
        dup_of = exact_dedup(group["exact_key"].to_pylist(), scores, ids)
        for i in np.flatnonzero(dup_of >= 0):
            v.drop(
                int(i),
                "exact_duplicate",
                "same text after normalization",
                duplicate_of=ids[dup_of[i]],
            )
        alive = np.flatnonzero(dup_of < 0)
    if conflicts and len(alive) > 1:
        responses = group["response"].to_pylist()
        sub_ids = [ids[i] for i in alive]
        dup_of, conflict_with = resolve(
            [responses[i] for i in alive],
            scores[alive],
            sub_ids,
            agree_threshold=agree_threshold,
            shingle_size=shingle_size,
        )
        for j, i in enumerate(alive):
            if dup_of[j] >= 0:
                v.drop(
                    int(i),
                    "near_duplicate",
                    "same instruction, an answer that agrees",
                    duplicate_of=sub_ids[dup_of[j]],
                )
            elif conflict_with[j] >= 0:
                v.drop(
                    int(i),
                    "conflict",
                    "same instruction, a different answer",
                    kept_instead=sub_ids[conflict_with[j]],
                )
    return v.table()


def vectors_of(table: pa.Table, column: str = "embedding") -> np.ndarray:
    """An embedding column (``embedding`` by default) as a float32 (n, d) array."""
    if table.num_rows == 0:
        return np.zeros((0, 1), dtype=np.float32)
    column = table[column].combine_chunks()
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float32)


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


def in_id_order(group: pa.Table) -> pa.Table:
    """The group sorted by row id.

    A group's rows reach its function in whatever order the shuffle's blocks arrived,
    and the algorithms break ties (equal quality scores are common) by position, so
    sorting makes a rerun on the same input give the same ledger.
    """
    return group.sort_by("id")


def id_keys(ids: list[str], seed: int) -> np.ndarray:
    """A uniform [0, 1) key per row id, stable across runs and block layouts."""
    import hashlib

    keys = np.empty(len(ids), dtype=np.float64)
    for i, row_id in enumerate(ids):
        digest = hashlib.blake2b(f"{seed}:{row_id}".encode(), digest_size=8).digest()
        keys[i] = int.from_bytes(digest, "little") / 2**64
    return keys


def sample_by_id(batch: pa.Table, *, seed: int, fraction: float) -> pa.Table:
    """The rows whose id key falls below ``fraction``: a reproducible sample, unlike
    ``Dataset.random_sample``, whose draw depends on how rows fall into blocks."""
    return batch.filter(pa.array(id_keys(batch["id"].to_pylist(), seed) < fraction))


def sampled_vectors(ds, column: str, *, fraction: float, seed: int) -> tuple[list[str], np.ndarray]:
    """Ids and ``column`` vectors of an id-keyed sample of a Ray dataset, sorted by id.

    The same rows in the same order however the dataset falls into blocks, so what is
    computed from the sample (k-means seeds, relevance competitors) is reproducible.
    """
    sample = ds.select_columns(["id", column])
    if fraction < 1.0:
        sample = sample.map_batches(
            sample_by_id, batch_format="pyarrow", fn_kwargs=dict(seed=seed, fraction=fraction)
        )
    ids: list[str] = []
    vectors = []
    for batch in sample.iter_batches(batch_size=8192, batch_format="pyarrow"):
        if batch.num_rows:
            ids.extend(batch["id"].to_pylist())
            vectors.append(vectors_of(batch, column))
    if not ids:
        return [], np.zeros((0, 1), np.float32)
    order = np.argsort(np.asarray(ids, dtype=object), kind="stable")
    return [ids[i] for i in order], np.concatenate(vectors)[order]


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
    """Each survivor's cosine distance to its nearest selected row and nearest random row."""
    from quality.selection import nearest_pick_distance

    vectors = vectors_of(batch)
    return pa.table(
        {
            "to_selected": pa.array(nearest_pick_distance(vectors, picks), pa.float64()),
            "to_random": pa.array(nearest_pick_distance(vectors, random_picks), pa.float64()),
        }
    )


def keep_status(batch: pa.Table, *, active: bool) -> pa.Table:
    """Rows still in play (``active=True``) or rows already decided."""
    import pyarrow.compute as pc

    mask = pc.equal(batch["status"], schema.ACTIVE)
    return batch.filter(mask if active else pc.invert(mask))


def to_row_schema(batch: pa.Table) -> pa.Table:
    """Just the canonical columns (no keys, no embeddings), for the ledger."""
    columns = []
    for field in ROW_SCHEMA:
        column = batch[field.name] if field.name in batch.column_names else None
        if column is None or pa.types.is_null(column.type):
            column = pa.nulls(batch.num_rows, field.type)
        try:
            columns.append(column.cast(field.type))
        except pa.ArrowInvalid as exc:
            raise ValueError(f"column {field.name} of type {column.type}: {exc}") from exc
    return pa.table(columns, schema=ROW_SCHEMA)
