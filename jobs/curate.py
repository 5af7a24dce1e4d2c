"""``finesift curate``: the curation job on Ray Data.

Stages, each a Ray Data operator over blocks or groups (nothing collects the data
on the driver; only small things come back: k-means samples, per-cluster counts,
the picks for the coverage figure):

1. read: planned file chunks read in parallel into canonical rows (bad rows quarantined)
2. score: heuristic quality score; low scorers and stale rows dropped
3. instructions: rows grouped by normalized instruction: exact duplicates, conflicts
4. embed: sentence embeddings in an actor pool (GPUs when embed.num_gpus > 0)
5. cluster: k-means trained on a sample, every row assigned; reference filter
6. dedup: per cluster, MinHash LSH near-duplicates and SemDeDup semantic duplicates
7. select: per-cluster quotas and DEITA-style diverse picks under the budget

Rows decided at a stage leave the active stream and are unioned back for the ledger.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from jobs import curate_ops as ops
from jobs.curate_config import CurateConfig
from quality import schema

console = Console(stderr=True)


class StageClock:
    """Wall time per stage, for summary.json and the printed table."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        console.print(f"[bold cyan]finesift curate[/] {name}...")
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 3)


def run(cfg: CurateConfig) -> dict[str, Any]:
    """Curate ``cfg.inputs`` into ``cfg.out``; return the summary (also in summary.json).

    Raises:
        InputError: a missing input path or an unsupported file format.
        ModelNotFoundError: an embedder that cannot be found offline.
    """
    import ray

    from jobs.curate_outputs import write_outputs
    from jobs.ray_env import init_ray
    from quality.readers import discover, plan_chunks

    files = discover(cfg.inputs)  # fail fast, before Ray starts, on a bad path
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    init_ray()
    clock = StageClock()
    decided = []

    with clock.stage("read"):
        chunks = plan_chunks(files, cfg.read.chunk_bytes)
        rows = ray.data.from_items(chunks, override_num_blocks=max(1, len(chunks))).map_batches(
            ops.read_chunk_blocks,
            batch_size=1,
            batch_format="numpy",
            fn_kwargs=dict(
                fmt=cfg.read.format,
                field_map=cfg.read.field_map or None,
                id_field=cfg.read.id_field,
                timestamp_field=cfg.read.timestamp_field,
                max_record_bytes=cfg.read.max_record_bytes,
            ),
        )
        rows = rows.map_batches(
            ops.score_rows,
            batch_format="numpy",
            batch_size=2_000,
            fn_kwargs=dict(
                thresholds=cfg.heuristics.thresholds,
                weights=cfg.heuristics.weights,
                min_score=cfg.heuristics.min_score,
                since=cfg.filters.since,
            ),
        ).materialize()
    active, done = _split(rows)
    decided.append(done)

    with clock.stage("instructions"):
        if cfg.dedup.exact or cfg.conflicts.enabled:
            active = (
                active.groupby("instruction_key")
                .map_groups(
                    ops.resolve_instruction_group,
                    batch_format="numpy",
                    fn_kwargs=dict(
                        exact=cfg.dedup.exact,
                        conflicts=cfg.conflicts.enabled,
                        agree_threshold=cfg.conflicts.agree_threshold,
                        shingle_size=cfg.dedup.shingle_size,
                    ),
                )
                .materialize()
            )
        active = active.drop_columns(["exact_key", "instruction_key"])
    active, done = _split(active)
    decided.append(done)

    n_active = active.count()
    with clock.stage("embed"):
        embedded = _embed(active, cfg) if n_active else active
    with clock.stage("cluster"):
        if n_active:
            centroids = _train_kmeans(embedded, n_active, cfg)
            reference = _reference_vectors(cfg)
            embedded = embedded.map_batches(
                ops.assign_rows,
                batch_format="numpy",
                fn_kwargs=dict(
                    centroids=centroids,
                    reference=reference,
                    reference_min_similarity=cfg.filters.reference_min_similarity,
                ),
            ).materialize()
    active, done = _split(embedded)
    decided.append(done)

    with clock.stage("dedup"):
        if n_active and (cfg.dedup.fuzzy or cfg.dedup.semantic):
            active = (
                active.groupby("cluster")
                .map_groups(
                    ops.dedup_cluster,
                    batch_format="numpy",
                    fn_kwargs=dict(
                        fuzzy=cfg.dedup.fuzzy,
                        fuzzy_threshold=cfg.dedup.fuzzy_threshold,
                        num_perm=cfg.dedup.num_perm,
                        shingle_size=cfg.dedup.shingle_size,
                        semantic=cfg.dedup.semantic,
                        semantic_threshold=cfg.dedup.semantic_threshold,
                    ),
                )
                .materialize()
            )
    survivors, done = _split(active)
    decided.append(done)

    with clock.stage("select"):
        selected, coverage = _select(survivors, cfg)
    decided.append(selected)

    with clock.stage("write"):
        pieces = [d.map_batches(ops.to_row_schema, batch_format="pyarrow") for d in decided]
        ledger = pieces[0].union(*pieces[1:])
        summary = write_outputs(
            ledger, out, clock_seconds=clock.seconds, coverage=coverage, cfg=cfg, input_files=files
        )
    return summary


def _split(ds):
    """(rows still active, rows decided), both materialized."""
    active = ds.map_batches(
        ops.keep_status, batch_format="pyarrow", fn_kwargs=dict(active=True)
    ).materialize()
    done = ds.map_batches(
        ops.keep_status, batch_format="pyarrow", fn_kwargs=dict(active=False)
    ).materialize()
    return active, done


def _embed(active, cfg: CurateConfig):
    """Embeddings in a fixed-size actor pool; one CPU thread per reserved core."""
    import ray
    from ray.data import ActorPoolStrategy

    gpu = cfg.embed.num_gpus > 0
    cores = int(ray.available_resources().get("CPU", 1))
    threads = int(cfg.embed.num_cpus) or max(1, cores // cfg.embed.num_actors)
    return active.map_batches(
        ops.Embedder,
        batch_size=cfg.embed.batch_size,
        batch_format="numpy",
        compute=ActorPoolStrategy(size=cfg.embed.num_actors),
        fn_constructor_kwargs=dict(
            model=cfg.embed.model,
            device="cuda" if gpu else "cpu",
            batch_size=cfg.embed.batch_size,
            max_length=cfg.embed.max_length,
            threads=0 if gpu else threads,
        ),
        num_gpus=cfg.embed.num_gpus if gpu else None,
        num_cpus=1 if gpu else threads,
    ).materialize()


def _train_kmeans(embedded, n_rows: int, cfg: CurateConfig) -> np.ndarray:
    """Spherical k-means on a bounded sample of the embeddings."""
    from quality.clustering import choose_k, train_kmeans

    k = choose_k(
        n_rows,
        rows_per_cluster=cfg.clusters.rows_per_cluster,
        max_clusters=cfg.clusters.max_clusters,
    )
    fraction = min(1.0, cfg.clusters.sample_size / n_rows)
    sample = embedded.select_columns(["embedding"])
    if fraction < 1.0:
        sample = sample.random_sample(fraction, seed=cfg.seed)
    vectors = [
        np.asarray(b["embedding"], dtype=np.float32)
        for b in sample.iter_batches(batch_size=8192, batch_format="numpy")
    ]
    stacked = np.concatenate(vectors) if vectors else np.zeros((0, 1), np.float32)
    return train_kmeans(
        stacked, min(k, max(1, len(stacked))), iterations=cfg.clusters.iterations, seed=cfg.seed
    )


def _reference_vectors(cfg: CurateConfig) -> np.ndarray | None:
    """Embeddings of the trusted reference set (small by definition), or None."""
    if cfg.filters.reference is None:
        return None
    from quality.embeddings import embedding_text, load_encoder
    from quality.errors import InputError
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
    return np.asarray(
        encoder.encode([embedding_text(r["prompt"], r["response"]) for r in rows]), dtype=np.float32
    )


def _select(survivors, cfg: CurateConfig):
    """Per-cluster quotas, diverse picks, and the coverage figure beside a random pick."""
    from quality.selection import cluster_quotas

    counts = {
        int(r["cluster"]): int(r["count()"])
        for r in survivors.groupby("cluster").count().take_all()
    }
    if not counts:
        return survivors, {}
    quotas = cluster_quotas(counts, cfg.selection.budget, strategy=cfg.selection.quota)
    selected = (
        survivors.groupby("cluster")
        .map_groups(
            ops.select_cluster,
            batch_format="numpy",
            fn_kwargs=dict(quotas=quotas, min_distance=cfg.selection.min_distance),
        )
        .materialize()
    )
    return selected, _coverage(selected, sum(quotas.values()), cfg.seed)


def _coverage(selected, n_picks: int, seed: int) -> dict[str, float]:
    """Mean cosine distance from each survivor to its nearest pick: ours vs random."""
    import pyarrow.compute as pc

    picks = selected.filter(expr=f"status == '{schema.SELECTED}'").select_columns(["embedding"])
    pick_vectors = _stack(picks)
    random_rows = (
        selected.map_batches(ops.random_key, batch_format="numpy", fn_kwargs=dict(seed=seed))
        .sort("random_key")
        .limit(n_picks)
        .select_columns(["embedding"])
    )
    random_vectors = _stack(random_rows)
    distances = selected.map_batches(
        ops.pick_distances,
        batch_format="numpy",
        fn_kwargs=dict(picks=pick_vectors, random_picks=random_vectors),
    )
    total, count, total_random = 0.0, 0, 0.0
    for batch in distances.iter_batches(batch_size=8192, batch_format="pyarrow"):
        total += pc.sum(batch["to_selected"]).as_py() or 0.0
        total_random += pc.sum(batch["to_random"]).as_py() or 0.0
        count += batch.num_rows
    count = max(count, 1)
    return {
        "selected": round(total / count, 4),
        "random": round(total_random / count, 4),
        "picks": int(len(pick_vectors)),
        "survivors": count,
    }


def _stack(ds) -> np.ndarray:
    parts = [
        np.asarray(b["embedding"], dtype=np.float32)
        for b in ds.iter_batches(batch_size=4096, batch_format="numpy")
    ]
    return np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)
