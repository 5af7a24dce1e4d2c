"""What a curation stage is: a declaration the runner turns into Ray Data operators.

A :class:`Stage` names itself, says what it needs (CPUs or GPUs, tasks or an actor pool,
a batch size, rows grouped by a column) and gives a function from one batch (or group) of
rows to the same rows with their verdicts. It never deletes a row: it sets ``status`` and
``reason`` through :class:`Verdicts`, and the runner takes decided rows out of the stream
for the ledger. Nothing here imports Ray; :mod:`jobs.curation.runner` is the only module
of curation that does.

Some stages need a small fact about the whole dataset before they run (k-means centroids
from a sample, per-cluster quotas from counts) or report a figure after (the coverage of
the selection). They get it through ``prepare`` and ``finish``, driver-side functions of a
:class:`DataView`: a narrow window the runner opens on the data, never the data itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from quality import schema


@dataclass(frozen=True)
class Resources:
    """What one task or actor of a stage reserves."""

    cpus: float = 1.0
    """CPUs per task or actor; for an actor pool 0 means a node's cores divided among
    ``actors`` (or 1 when the pool is sized to the cluster)."""
    gpus: float = 0.0
    """GPUs per actor; a stage with GPUs always runs in an actor pool."""
    actors: int | None = None
    """None: stateless tasks. 0: an actor pool sized to the cluster (one actor per ``gpus``
    GPUs, else one per ``cpus`` CPUs). n: a pool of n actors. Never more actors than blocks."""


class DataView(Protocol):
    """The small questions a stage may ask about the rows it is given, driver-side."""

    def count(self) -> int:
        """Rows in the view."""
        ...

    def collect(self, fn: Callable[..., pa.Table], **kwargs: Any) -> pa.Table:
        """``fn(batch, **kwargs)`` on every batch, concatenated on the driver.

        ``fn`` must return a small table (a sample, a count per batch): this is how a
        stage gets facts, never rows, back to the driver.
        """
        ...


@dataclass(frozen=True)
class Plan:
    """What ``prepare`` learned: more arguments for ``process``, figures for the summary."""

    kwargs: Mapping[str, Any] = field(default_factory=dict)
    figures: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stage:
    """One step of curation, declared: the runner decides how it maps onto Ray Data.

    ``process`` is a function ``(table, **kwargs) -> table`` or, for stages that load a
    model once per worker, a class whose ``__init__(**kwargs)`` is the setup and whose
    ``__call__(table)`` processes one batch.
    """

    name: str
    process: Callable[..., pa.Table] | type
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Flat arguments for ``process`` (a class gets them in ``__init__``)."""
    group_by: str | None = None
    """Run ``process`` once per group of rows sharing this column, instead of per batch."""
    skip_single_groups: bool = False
    """With ``group_by``: a group of one row has nothing to decide (a duplicate needs two),
    so it passes through without a call to ``process``."""
    whole_buckets: bool = False
    """With ``group_by``: ``process`` takes a hash bucket of many groups at once and finds
    the groups itself (cheaper than a call per group when most groups are tiny)."""
    batch_size: int | None = None
    """Rows per call; None lets Ray Data choose."""
    resources: Resources = field(default_factory=Resources)
    block_rows: int | None = None
    """Cut the input into blocks of about this many rows first, so an actor pool gets
    work for every actor (an actor pool hands out whole blocks)."""
    needs: tuple[str, ...] = ()
    """Columns an earlier stage must have added (checked when the pipeline is built)."""
    adds: tuple[str, ...] = ()
    """Working columns this stage adds beside the row's own (keys, embeddings)."""
    prepare: Callable[[DataView], Plan] | None = None
    """Driver-side, before ``process``: learn from the active rows."""
    finish: Callable[[DataView], Mapping[str, Any]] | None = None
    """Driver-side, after ``process``: figures from the stage's output (every row it saw)."""
    source: tuple[Mapping[str, Any], ...] | None = None
    """For the first stage only: the work items (file chunks) ``process`` turns into rows."""
    enabled: bool = True
    """A stage turned off by the config is skipped; its columns are then absent."""
    decides: bool = True
    """False for a stage that only adds columns (it never drops, quarantines or selects a
    row): its output then needs no split into active and decided rows, a copy saved."""


class Verdicts:
    """The writable columns of one batch or group as Python lists, and back to Arrow.

    A stage reads a table, records its verdicts here, and returns :meth:`table`: every
    column keeps its declared type whatever the batch holds (Ray would otherwise guess
    types from all-null columns and fail to merge blocks).
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
        self.original = {name: table[name].to_pylist() for name in self.WRITABLE}
        self.columns = {name: list(values) for name, values in self.original.items()}

    def __len__(self) -> int:
        return self.source.num_rows

    def active(self) -> list[int]:
        """Positions of the rows no stage has decided yet."""
        return [i for i, s in enumerate(self.columns["status"]) if s == schema.ACTIVE]

    def undecided(self) -> list[int]:
        """Active rows not already bound to go. A row the relevance stage found mismatched
        (its ``mismatch`` column) is decided by the instructions stage, so the model
        signals need neither judge nor drop it."""
        if "mismatch" not in self.source.column_names:
            return self.active()
        pending = self.source["mismatch"].to_pylist()
        return [i for i in self.active() if pending[i] is None]

    def drop(
        self,
        i: int,
        reason: str,
        detail: str,
        *,
        duplicate_of: str | None = None,
        kept_instead: str | None = None,
    ) -> None:
        """Mark row ``i`` dropped with a reason code and its explanation."""
        self.columns["status"][i] = schema.DROPPED
        self.columns["reason"][i] = reason
        self.columns["detail"][i] = detail
        if duplicate_of is not None:
            self.columns["duplicate_of"][i] = str(duplicate_of)
        if kept_instead is not None:
            self.columns["kept_instead"][i] = str(kept_instead)

    def table(self, **extra: pa.Array) -> pa.Table:
        """The batch with the recorded verdicts, plus ``extra`` columns (added or replaced)."""
        out = self.source
        for name, values in self.columns.items():
            declared = schema.ROW_SCHEMA.field(name).type
            if values == self.original[name] and out.schema.field(name).type == declared:
                continue  # unchanged: no new array (most groups decide nothing)
            array = pa.array(values, type=declared)
            out = out.set_column(out.schema.get_field_index(name), name, array)
        for name, array in extra.items():
            if name in out.column_names:
                out = out.set_column(out.schema.get_field_index(name), name, array)
            else:
                out = out.append_column(name, array)
        return out


def check_order(stages: list[Stage]) -> None:
    """Every column a stage needs is added by an earlier enabled stage.

    Raises:
        ValueError: naming the stage and the missing column: a reordering that cannot work.
    """
    available = set(schema.ROW_SCHEMA.names)
    for stage in stages:
        if not stage.enabled:
            continue
        missing = [c for c in stage.needs if c not in available]
        if missing:
            raise ValueError(
                f"curation stage {stage.name!r} needs column(s) {missing} that no earlier "
                "stage adds; move it after the stage that adds them"
            )
        available.update(stage.adds)
