"""``finesift curate``: the curation job on Ray Data.

Stages, each a Ray Data operator over blocks or groups (nothing collects the data
on the driver; only small things come back: k-means samples, per-cluster counts,
the picks for the coverage figure):

1. read: planned file chunks read in parallel into canonical rows (bad rows quarantined)
2. score: heuristic quality score; low scorers and stale rows dropped
3. instructions: rows grouped by normalized instruction: exact duplicates, conflicts
4. embed: sentence embeddings in an actor pool (GPUs when embed.num_gpus > 0)
5. cluster: k-means trained on a sample, every row assigned; reference filter; relevance
   (responses that fit other instructions better than their own: mismatched)
6. dedup: per cluster, MinHash LSH near-duplicates and SemDeDup semantic duplicates
7. signals: IFD/perplexity in an actor pool and the LLM judge when configured; the
   quality score composed from every signal (jobs/curate_signals.py)
8. select: per-cluster quotas and DEITA-style diverse picks under the budget

Rows decided at a stage leave the active stream and are unioned back for the ledger.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console

from jobs import curate_ops as ops
from jobs import curate_signals as signals
from jobs.curate_config import CurateConfig
from jobs.curate_embed import Embedder, embed_gpus, embed_pool
from quality import schema

if TYPE_CHECKING:
    import ray

console = Console(stderr=True)
MAP_ROWS = 5_000  # rows drawn on the report's 2-D embedding map


class StageClock:
    """Wall time per stage, and the rows each stage took in, for summary.json."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.rows_in: dict[str, int] = {}

    @contextmanager
    def stage(self, name: str, rows_in: int | None = None) -> Iterator[None]:
        console.print(f"[bold cyan]finesift curate[/] {name}...")
        if rows_in is not None:
            self.rows_in[name] = rows_in
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 3)


def run(cfg: CurateConfig) -> dict[str, Any]:
    """Curate ``cfg.inputs`` into ``cfg.out``; return the summary (also in summary.json).

    Raises:
        InputError: a missing input path or an unsupported file format.
        ModelNotFoundError: an embedder or IFD model that cannot be found offline.
    """
    import ray

    from jobs.curate_outputs import write_outputs
    from jobs.ray_env import init_ray
    from quality.inputs import discover, plan_chunks
    from quality.storage import make_dirs

    files = discover(cfg.inputs)  # fail fast, before Ray starts, on a bad path
    signals.preflight(cfg)  # and on a missing IFD model or judge API key
    out = cfg.out  # a local directory or a URI (s3://, gs://)
    make_dirs(out)
    init_ray()
    clock = StageClock()
    decided = []
    embedding_map: dict = {}

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
            batch_format="pyarrow",
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

    with clock.stage("instructions", rows_in=active.count()):
        if cfg.dedup.exact or cfg.conflicts.enabled:
            active = (
                active.groupby("instruction_key", num_partitions=_partitions(rows.count()))
                .map_groups(
                    ops.resolve_instruction_group,
                    batch_format="pyarrow",
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
    with clock.stage("embed", rows_in=n_active):
        embedded = _embed(active, cfg) if n_active else active
    with clock.stage("cluster"):
        if n_active:
            centroids, embedding_map = _train_kmeans(embedded, n_active, cfg)
            reference = _reference_vectors(cfg)
            embedded = embedded.map_batches(
                ops.assign_rows,
                batch_format="pyarrow",
                fn_kwargs=dict(
                    centroids=centroids,
                    reference=reference,
                    reference_min_similarity=cfg.filters.reference_min_similarity,
                ),
            ).materialize()
            if signals.relevance_enabled(cfg):
                embedded = signals.apply_relevance(embedded, n_active, cfg)
    active, done = _split(embedded)
    decided.append(done)

    with clock.stage("dedup", rows_in=active.count()):
        if n_active and (cfg.dedup.fuzzy or cfg.dedup.semantic):
            active = (
                active.groupby("cluster", num_partitions=_partitions(n_active))
                .map_groups(
                    ops.dedup_cluster,
                    batch_format="pyarrow",
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

    with clock.stage("signals", rows_in=survivors.count()):
        survivors = signals.apply_model_signals(survivors, cfg, console)
    survivors, done = _split(survivors)
    decided.append(done)

    with clock.stage("select", rows_in=survivors.count()):
        selected, coverage = _select(survivors, cfg)
    decided.append(selected)

    with clock.stage("write"):
        pieces = [d.map_batches(ops.to_row_schema, batch_format="pyarrow") for d in decided]
        ledger = pieces[0].union(*pieces[1:])
        summary = write_outputs(
            ledger,
            out,
            clock_seconds=clock.seconds,
            stage_rows=clock.rows_in,
            coverage=coverage,
            cfg=cfg,
            input_files=files,
            embedding_map=embedding_map,
        )
    if cfg.report:
        summary["report"] = _write_report(out)
    return summary


def _write_report(out: str) -> str | None:
    """report.html beside the outputs; a failed report never fails the curation run."""
    try:
        from jobs.report import write_report

        return str(write_report(out))
    except Exception as exc:  # noqa: BLE001 - the data outputs are already written
        console.print(f"[yellow]warning:[/] report.html not written: {exc}")
        return None


def _partitions(n_rows: int) -> int:
    """Shuffle partitions for a groupby: ~50k rows each, at most two per cluster CPU.

    Ray Data's default (200 partitions, each with an aggregator) costs more than the
    work itself on small inputs and small machines.
    """
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, min(2 * cpus, n_rows // 50_000 + 1))


def _split(ds):
    """(rows still active, rows decided), both materialized."""
    active = ds.map_batches(
        ops.keep_status, batch_format="pyarrow", fn_kwargs=dict(active=True)
    ).materialize()
    done = ds.map_batches(
        ops.keep_status, batch_format="pyarrow", fn_kwargs=dict(active=False)
    ).materialize()
    return active, done


def _embed(active: ray.data.Dataset, cfg: CurateConfig) -> ray.data.Dataset:
    """Embeddings in a fixed-size actor pool, sized by :func:`jobs.curate_embed.embed_pool`."""
    import ray
    from ray.data import ActorPoolStrategy

    from jobs.ray_env import largest_node_cpus

    if cfg.embed.model == "static":
        _prepare_static_model()
    # An actor pool hands out whole blocks, and the instructions stage leaves a few big
    # ones (one per shuffle partition): cut them so every actor gets a share. Cut first,
    # materialized: the pool may reserve every CPU, and a streamed cut then has none left.
    blocks = active.repartition(target_num_rows_per_block=4 * cfg.embed.batch_size).materialize()
    num_gpus = embed_gpus(cfg.embed.model, cfg.embed.num_gpus)
    gpu = num_gpus > 0
    resources = ray.cluster_resources()
    actors, threads = embed_pool(
        num_actors=cfg.embed.num_actors,
        num_cpus=cfg.embed.num_cpus,
        num_gpus=num_gpus,
        cluster_cpus=int(resources.get("CPU", 1)),
        cluster_gpus=resources.get("GPU", 0),
        node_cpus=largest_node_cpus(),
        blocks=blocks.num_blocks(),
    )
    return blocks.map_batches(
        Embedder,
        batch_size=cfg.embed.batch_size,
        batch_format="pyarrow",
        compute=ActorPoolStrategy(size=actors),
        fn_constructor_kwargs=dict(
            model=cfg.embed.model,
            device="cuda" if gpu else "cpu",
            batch_size=cfg.embed.batch_size,
            max_length=cfg.embed.max_length,
            threads=0 if gpu else threads,
            parts=signals.relevance_enabled(cfg),
        ),
        num_gpus=num_gpus if gpu else None,
        num_cpus=1 if gpu else threads,
    ).materialize()


def _prepare_static_model() -> None:
    """Distil the static model on the driver, once, before the actors load it.

    Otherwise the first actor would distil it (minutes, with torch) while the others wait
    on the cache's lock holding their CPUs.
    """
    from jobs.static_model import cache_problem, ensure_static_model, static_model_dir

    problem = cache_problem(static_model_dir())
    if problem is not None:
        console.print(
            f"[bold cyan]finesift curate[/] static embedder {problem}: distilling "
            "all-MiniLM-L6-v2 once (a few minutes; `finesift models --prepare` does it ahead)"
        )
        ensure_static_model(progress=console.print)


def _train_kmeans(embedded, n_rows: int, cfg: CurateConfig) -> tuple[np.ndarray, dict]:
    """Spherical k-means on a bounded sample; also a 2-D map of part of that sample.

    Returns:
        The centroids, and {"id", "x", "y", "cluster"} lists for at most MAP_ROWS rows.
    """
    from quality.clustering import assign_clusters, choose_k, train_kmeans

    k = choose_k(
        n_rows,
        rows_per_cluster=cfg.clusters.rows_per_cluster,
        max_clusters=cfg.clusters.max_clusters,
    )
    fraction = min(1.0, cfg.clusters.sample_size / n_rows)
    # k-means seeds by position, so the sample comes back in id order.
    ids, stacked = ops.sampled_vectors(embedded, "embedding", fraction=fraction, seed=cfg.seed)
    centroids = train_kmeans(
        stacked, min(k, max(1, len(stacked))), iterations=cfg.clusters.iterations, seed=cfg.seed
    )
    shown = stacked[:MAP_ROWS]
    xy = _pca_2d(shown)
    rows_map = {
        "id": ids[:MAP_ROWS],
        "x": xy[:, 0].tolist(),
        "y": xy[:, 1].tolist(),
        "cluster": assign_clusters(shown, centroids).tolist(),
    }
    return centroids, rows_map


def _pca_2d(vectors: np.ndarray) -> np.ndarray:
    """First two principal components, for the report's map of the embedding space."""
    if len(vectors) < 2:
        return np.zeros((len(vectors), 2), dtype=np.float32)
    centered = vectors - vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    xy = centered @ vt[:2].T
    return xy if xy.shape[1] == 2 else np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))


def _reference_vectors(cfg: CurateConfig) -> np.ndarray | None:
    """Embeddings of the trusted reference set (small by definition), or None."""
    if cfg.filters.reference is None:
        return None
    from quality.embeddings import load_encoder, row_vectors
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
    return row_vectors(encoder, [r["prompt"] for r in rows], [r["response"] for r in rows])[0]


def _select(survivors, cfg: CurateConfig):
    """Per-cluster quotas, diverse picks, and the coverage figure beside a random pick."""
    from quality.selection import cluster_quotas

    counts: Counter[int] = Counter()  # streams one int per row; no shuffle needed
    for batch in survivors.select_columns(["cluster"]).iter_batches(
        batch_size=65_536, batch_format="numpy"
    ):
        counts.update(batch["cluster"].tolist())
    if not counts:
        return survivors, {}
    quotas = cluster_quotas(counts, cfg.selection.budget, strategy=cfg.selection.quota)
    selected = (
        survivors.groupby("cluster", num_partitions=_partitions(sum(counts.values())))
        .map_groups(
            ops.select_cluster,
            batch_format="pyarrow",
            fn_kwargs=dict(
                quotas=quotas,
                min_distance=cfg.selection.min_distance,
                informative_weight=cfg.selection.informative_weight,
            ),
        )
        .materialize()
    )
    return selected, _coverage(selected, sum(quotas.values()), cfg.seed)


def _coverage(selected, n_picks: int, seed: int) -> dict[str, float]:
    """Mean cosine distance from each survivor to its nearest pick: ours vs random.

    The random baseline takes the ``n_picks`` survivors with the smallest hash-derived
    random keys; only the picks and a small oversample of candidates reach the driver.
    """
    import pyarrow.compute as pc

    survivors = selected.count()
    keep_below = min(1.0, (2 * n_picks + 64) / max(survivors, 1))
    candidates = selected.map_batches(
        ops.coverage_candidates,
        batch_format="pyarrow",
        fn_kwargs=dict(seed=seed, keep_below=keep_below),
    )
    picks, randoms = [], []
    for batch in candidates.iter_batches(batch_size=4096, batch_format="pyarrow"):
        if batch.num_rows == 0:
            continue
        vectors = ops.vectors_of(batch)
        chosen = np.asarray(batch["chosen"].to_pylist(), dtype=bool)
        picks.append(vectors[chosen])
        randoms.append((np.asarray(batch["random_key"].to_pylist()), vectors))
    pick_vectors = np.concatenate(picks) if picks else np.zeros((0, 1), np.float32)
    keys = np.concatenate([k for k, _ in randoms]) if randoms else np.zeros(0)
    pool = np.concatenate([v for _, v in randoms]) if randoms else np.zeros((0, 1), np.float32)
    random_vectors = pool[np.argsort(keys, kind="stable")[:n_picks]]
    distances = selected.map_batches(
        ops.pick_distances,
        batch_format="pyarrow",
        fn_kwargs=dict(picks=pick_vectors, random_picks=random_vectors),
    )
    total, total_random = 0.0, 0.0
    for batch in distances.iter_batches(batch_size=8192, batch_format="pyarrow"):
        total += pc.sum(batch["to_selected"]).as_py() or 0.0
        total_random += pc.sum(batch["to_random"]).as_py() or 0.0
    count = max(survivors, 1)
    return {
        "selected": round(total / count, 4),
        "random": round(total_random / count, 4),
        "picks": int(len(pick_vectors)),
        "random_picks": int(len(random_vectors)),
        "survivors": survivors,
    }


def _stack(ds) -> np.ndarray:
    parts = [
        ops.vectors_of(b)
        for b in ds.iter_batches(batch_size=4096, batch_format="pyarrow")
        if b.num_rows
    ]
    return np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)


if __name__ == "__main__":  # `python -m jobs.curate IN... --out DIR`, as Ray jobs run it
    from jobs.cli import run_main
    from jobs.curate_cli import curate_command

    run_main(curate_command)
