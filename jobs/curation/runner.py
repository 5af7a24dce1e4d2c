"""The one place curation meets Ray Data: declared stages become operators.

For each enabled :class:`~jobs.curation.stage.Stage`, in order, the runner

1. asks ``prepare`` (if any) for small facts about the active rows,
2. maps ``process`` over them: per batch as tasks, per batch in an actor pool sized from
   the stage's :class:`~jobs.curation.stage.Resources`, or per group after a groupby,
3. asks ``finish`` (if any) for figures about the stage's output,
4. takes the rows the stage decided out of the stream, for the ledger, and passes the
   rest on.

Nothing collects the data on the driver: only what ``prepare`` and ``finish`` ask for
(samples, counts) comes back. Every stage's output is materialized once, so the time a
stage reports is its own.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import ray
from ray.data import ActorPoolStrategy, Dataset
from rich.console import Console

from infra.errors import FinesiftError
from jobs.curation.stage import Plan, Resources, Stage
from quality import schema

ROWS_PER_PARTITION = 50_000
BUCKET = "_bucket"
BUCKETS = 64  # hash buckets of a group stage; each is split into its groups in one call
SPLIT_ROWS = 16_384
"""Rows per block after a stage's split. An actor stage cuts its input into small blocks
(the embed stage's are a few hundred rows with MiniLM), and every later task stage would
otherwise pay a task per small block: at 100k rows that cost more than the stages' own
work. The stages from embed to the first one after it that decides a row (by default
the instructions stage: relevance leaves mismatched rows to it) run on embed's blocks."""


@dataclass
class StageRun:
    """What one stage did: its time, the rows it took in, the figures it reported."""

    name: str
    seconds: float
    rows_in: int | None
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """Every row with its verdict (a Ray dataset in the row schema) and each stage's run."""

    ledger: Dataset
    stages: list[StageRun]

    def figures(self) -> dict[str, Any]:
        """Every stage's figures in one mapping (names do not collide by construction)."""
        merged: dict[str, Any] = {}
        for run in self.stages:
            merged.update(run.figures)
        return merged


class View:
    """A :class:`~jobs.curation.stage.DataView` over a materialized dataset."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds

    def count(self) -> int:
        return self.ds.count()

    def collect(self, fn: Callable[..., pa.Table], **kwargs: Any) -> pa.Table:
        tables = [
            batch
            for batch in self.ds.map_batches(
                fn, batch_format="pyarrow", fn_kwargs=kwargs
            ).iter_batches(batch_size=None, batch_format="pyarrow")
            if batch.num_rows
        ]
        if not tables:
            return pa.table({})
        return pa.concat_tables(tables, promote_options="default")


def run_stages(stages: Iterable[Stage], console: Console | None = None) -> Outcome:
    """Run ``stages`` in order; the first must be a source (``Stage.source``).

    Returns:
        The ledger (decided rows of every stage, unioned, in the row schema) and what each
        stage did.
    """
    console = console or Console(stderr=True)
    with _user_errors():
        return _run_stages(stages, console)


def _run_stages(stages: Iterable[Stage], console: Console) -> Outcome:
    active: Dataset | None = None
    decided: list[Dataset] = []
    runs: list[StageRun] = []
    for stage in stages:
        if not stage.enabled:
            continue
        console.print(f"[bold cyan]finesift curate[/] {stage.name}...")
        start = time.perf_counter()
        rows_in = None if active is None else active.count()
        figures: dict[str, Any] = {}
        if stage.source is not None:
            output = _read(stage)
        elif rows_in:
            plan = stage.prepare(View(active)) if stage.prepare else Plan()
            figures.update(plan.figures)
            output = _apply(stage, active, {**stage.kwargs, **plan.kwargs}, rows_in)
            # Hold each copy of the rows no longer than needed: a dataset's blocks leave the
            # object store when nothing refers to it (1M rows: peak memory is copies).
            active = None
            if stage.finish:
                figures.update(stage.finish(View(output)))
        else:
            output = active  # no rows left to decide
        if stage.decides or stage.source is not None:
            active, done = _split(output)
            decided.append(done)
            del output  # the active rows are a copy of it now
        else:
            active = output  # every row it saw is still active
        runs.append(StageRun(stage.name, round(time.perf_counter() - start, 3), rows_in, figures))
    if active is not None:
        decided.append(active)  # a pipeline that ends before every row is decided
    pieces = [d.map_batches(to_row_schema, batch_format="pyarrow") for d in decided]
    return Outcome(ledger=pieces[0].union(*pieces[1:]), stages=runs)


@contextmanager
def _user_errors() -> Iterator[None]:
    """A user error raised inside a Ray task (an input deleted since planning) arrives
    wrapped in Ray's exception, its message grown by a traceback and Ray's retry advice:
    raise it as the one-line error it was, which the CLI prints as such."""
    try:
        yield
    except Exception as exc:
        cause = _user_cause(exc)
        if cause is None:
            raise
        raise type(cause)(str(cause).split("\n", 1)[0]) from None


def _user_cause(exc: BaseException) -> FinesiftError | None:
    from ray.exceptions import RayError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, FinesiftError) and not isinstance(current, RayError):
            return current
        cause = getattr(current, "cause", None)  # RayTaskError keeps the task's exception here
        if not isinstance(cause, BaseException):
            cause = None
        current = cause or current.__cause__ or current.__context__
    return None


def _read(stage: Stage) -> Dataset:
    items = list(stage.source or ())
    return (
        ray.data.from_items(items, override_num_blocks=max(1, len(items)))
        .map_batches(
            stage.process,
            batch_size=1,
            batch_format="numpy",
            fn_kwargs=dict(stage.kwargs),
            num_cpus=stage.resources.cpus,
        )
        .materialize()
    )


def _apply(stage: Stage, ds: Dataset, kwargs: dict[str, Any], rows: int) -> Dataset:
    """``stage.process`` over ``ds`` as the stage declares: tasks, actors or groups."""
    if stage.group_by is not None:
        # Shuffle rows into a few buckets by a hash of the group key, then split each
        # bucket into its groups in one call: a Ray Data group per key would cost a call
        # per group, and most instructions are unique (100k groups of one row at 100k).
        bucketed = ds.map_batches(
            add_bucket,
            batch_format="pyarrow",
            fn_kwargs=dict(column=stage.group_by, buckets=BUCKETS),
        )
        return (
            bucketed.groupby(BUCKET, num_partitions=partitions(rows))
            .map_groups(
                run_groups,
                batch_format="pyarrow",
                fn_kwargs=dict(
                    process=stage.process,
                    column=stage.group_by,
                    skip_single=stage.skip_single_groups,
                    whole=stage.whole_buckets,
                    kwargs=kwargs,
                ),
            )
            .materialize()
        )
    res = stage.resources
    if res.actors is None and res.gpus == 0:
        return ds.map_batches(
            stage.process,
            batch_size=stage.batch_size,
            batch_format="pyarrow",
            fn_kwargs=kwargs,
            num_cpus=res.cpus,
        ).materialize()
    if stage.block_rows:
        # Cut first, materialized: the pool may reserve every CPU, and a streamed cut would
        # then have none left.
        ds = ds.repartition(target_num_rows_per_block=stage.block_rows).materialize()
    from infra.ray_env import largest_node_cpus

    cluster = ray.cluster_resources()
    actors, threads = pool_size(
        res,
        cluster_cpus=int(cluster.get("CPU", 1)),
        cluster_gpus=cluster.get("GPU", 0),
        node_cpus=largest_node_cpus(),
        blocks=ds.num_blocks(),
    )
    return ds.map_batches(
        stage.process,
        batch_size=stage.batch_size,
        batch_format="pyarrow",
        compute=ActorPoolStrategy(size=actors),
        fn_constructor_kwargs=kwargs,
        num_gpus=res.gpus or None,
        num_cpus=1 if res.gpus else threads,
    ).materialize()


def add_bucket(batch: pa.Table, *, column: str, buckets: int) -> pa.Table:
    """A ``_bucket`` column: a stable hash of ``column`` modulo ``buckets``."""
    keys = batch[column].to_pylist()
    if pa.types.is_integer(batch[column].type):
        values = [(k if k is not None else -1) % buckets for k in keys]
    else:
        values = [zlib.crc32(str(k).encode("utf-8", "surrogatepass")) % buckets for k in keys]
    return batch.append_column(BUCKET, pa.array(values, pa.int32()))


def run_groups(
    bucket: pa.Table,
    *,
    process: Callable[..., pa.Table],
    column: str,
    skip_single: bool,
    kwargs: dict[str, Any],
    whole: bool = False,
) -> pa.Table:
    """``process`` on every group of rows sharing ``column`` in one bucket (or on the whole
    bucket, with ``whole``); groups of one row pass through untouched when ``skip_single``
    (they have nothing to decide)."""
    if whole:
        return process(bucket.drop_columns([BUCKET]), **kwargs)
    # Sorted by id within each group too, so the stage's own id sort finds nothing to do.
    table = bucket.drop_columns([BUCKET]).sort_by([(column, "ascending"), ("id", "ascending")])
    keys = table[column].to_pylist()
    outputs: list[pa.Table] = []
    singles: list[int] = []
    start = 0
    for end in range(1, len(keys) + 1):
        if end < len(keys) and keys[end] == keys[start]:
            continue
        if end - start == 1 and skip_single:
            singles.append(start)
        else:
            outputs.append(process(table.slice(start, end - start), **kwargs))
        start = end
    if singles:
        outputs.append(table.take(pa.array(singles, pa.int64())))
    if not outputs:
        return table
    return pa.concat_tables(outputs, promote_options="default")


def pool_size(
    res: Resources, *, cluster_cpus: int, cluster_gpus: float, node_cpus: int, blocks: int
) -> tuple[int, int]:
    """How many actors a stage's pool gets and how many CPU threads each.

    ``actors`` 0 sizes the pool to the cluster: one actor per ``gpus`` GPUs, or on CPU one
    per ``cpus`` CPUs (1 by default), but never more actors than ``blocks`` of work: each
    actor loads its model, and one without a block would only hold its CPUs (or make the
    autoscaler start a node for it). Actors side by side beat threads in one actor on CPU
    (MiniLM on 2 cores: two 1-thread processes embed 36 texts/s, one 2-thread process 31).
    A set number of actors gets ``cpus`` threads each, or a node's cores divided among them.

    Returns:
        (actors, threads per actor); threads is 0 on GPU (torch's own default).
    """
    work = max(1, blocks)
    if res.gpus > 0:
        return res.actors or min(work, max(1, int(cluster_gpus // res.gpus))), 0
    if res.actors:
        return res.actors, int(res.cpus) or max(1, node_cpus // res.actors)
    threads = max(1, int(res.cpus))
    return min(work, max(1, cluster_cpus // threads)), threads


def partitions(n_rows: int) -> int:
    """Shuffle partitions for a groupby: ~50k rows each, at most two per cluster CPU.

    Ray Data's default (200 partitions, each with an aggregator) costs more than the
    work itself on small inputs and small machines.
    """
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, min(2 * cpus, n_rows // ROWS_PER_PARTITION + 1))


def _split(ds: Dataset) -> tuple[Dataset, Dataset]:
    """(rows still active, rows decided), both materialized."""
    split = dict(batch_format="pyarrow", batch_size=SPLIT_ROWS)  # small blocks coalesced
    active = ds.map_batches(keep_status, fn_kwargs=dict(active=True), **split)
    done = ds.map_batches(keep_status, fn_kwargs=dict(active=False), **split)
    return active.materialize(), done.materialize()


def keep_status(batch: pa.Table, *, active: bool) -> pa.Table:
    """Rows still in play (``active=True``) or rows already decided."""
    mask = pc.equal(batch["status"], schema.ACTIVE)
    return batch.filter(mask if active else pc.invert(mask))


def to_row_schema(batch: pa.Table) -> pa.Table:
    """Just the row's own columns (no keys, no embeddings), for the ledger."""
    columns = []
    for f in schema.ROW_SCHEMA:
        column = batch[f.name] if f.name in batch.column_names else None
        if column is None or pa.types.is_null(column.type):
            column = pa.nulls(batch.num_rows, f.type)
        try:
            columns.append(column.cast(f.type))
        except pa.ArrowInvalid as exc:
            raise ValueError(f"column {f.name} of type {column.type}: {exc}") from exc
    return pa.table(columns, schema=schema.ROW_SCHEMA)
