"""relevance: each row's response competes against a sample of the dataset's
instructions, and with ``signals.relevance_method=paired`` their answers
(:mod:`quality.relevance`); a response that fits other instructions better than its own
is ``mismatched``. The margin that decided stays in the ``relevance`` column for the
quality score.

When conflicts are resolved (``conflicts.enabled``), a mismatched row is not dropped here:
its reason goes into the ``mismatch`` column and the instructions stage decides it. A row
whose instruction is asked again in the data with a fitting answer is that answer's
conflict (the ledger names the row kept instead); the others are dropped as mismatched
there."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from jobs.curation.batches import sample_by_id, sorted_sample, vectors_of
from jobs.curation.stage import DataView, Plan, Stage, Verdicts
from jobs.curation.stages.embed import PART_COLUMNS

if TYPE_CHECKING:
    from jobs.curation.config import CurateConfig


def build(cfg: CurateConfig) -> Stage:
    s = cfg.signals
    defer = defers_mismatch(cfg)
    return Stage(
        name="relevance",
        process=score_relevance,
        needs=(*PART_COLUMNS, "instruction_key"),
        adds=("mismatch",) if defer else (),
        enabled=cfg.relevance_runs,
        decides=not defer,
        prepare=partial(competitors, size=s.relevance_sample, seed=cfg.seed),
        kwargs=dict(
            top_k=s.relevance_top_k,
            threshold=cfg.relevance_threshold,
            method=cfg.relevance_method,
            defer=defer,
        ),
    )


def defers_mismatch(cfg: CurateConfig) -> bool:
    """Mismatched rows are decided by the instructions stage, beside their instruction's
    other answers: when relevance runs and conflicts are resolved."""
    return cfg.relevance_runs and cfg.conflicts.enabled


def competitors(view: DataView, *, size: int, seed: int) -> Plan:
    """Instruction keys, instruction and response vectors of about ``size`` rows, drawn
    by id (reproducible).

    The competitors are named by instruction key, and so are the rows they compete with
    (:func:`quality.relevance.relevance_margin`): a row never competes with its own
    instruction asked again (a repeat, or a conflicting answer elsewhere in the data).
    """
    fraction = min(1.0, size / max(view.count(), 1))
    columns = ["id", "instruction_key", *PART_COLUMNS]
    sample = view.collect(sample_by_id, seed=seed, fraction=fraction, columns=columns)
    ids, instructions = sorted_sample(sample, "instruction_embedding")
    _, responses = sorted_sample(sample, "response_embedding")
    key_of = dict(zip(sample["id"].to_pylist(), sample["instruction_key"].to_pylist(), strict=True))
    return Plan(
        kwargs=dict(
            sample_ids=[key_of[i] for i in ids], sample=instructions, sample_responses=responses
        )
    )


def score_relevance(
    batch: pa.Table,
    *,
    sample_ids: list[str],
    sample: np.ndarray,
    sample_responses: np.ndarray,
    top_k: int,
    threshold: float,
    method: str = "cross",
    defer: bool = False,
) -> pa.Table:
    """Relevance margin per row (cross, or paired with ``method="paired"``); rows below
    ``threshold`` are mismatched: dropped, or with ``defer`` their reason is written to the
    ``mismatch`` column (null for a fitting row) for the instructions stage. The
    ``relevance`` column holds the margin on the cross scale
    (:func:`quality.relevance.on_cross_scale`)."""
    from quality.relevance import mismatched, on_cross_scale, paired_margin, relevance_margin

    v = Verdicts(batch)
    instructions = vectors_of(batch, "instruction_embedding")
    responses = vectors_of(batch, "response_embedding")
    keys = batch["instruction_key"].to_pylist()
    margins = relevance_margin(
        instructions, responses, sample, top_k=top_k, row_ids=keys, sample_ids=sample_ids
    )
    decided = margins
    what = "other instructions of the dataset fit this response better than its own"
    if method == "paired":
        decided = paired_margin(
            instructions,
            responses,
            sample,
            sample_responses,
            top_k=top_k,
            row_ids=keys,
            sample_ids=sample_ids,
        )
        what = (
            "other instructions of the dataset, and the answers to its own instruction's "
            "nearest ones, say this response answers another task"
        )
    active = set(v.active())
    reasons: list[str | None] = [None] * len(batch)
    for i in np.flatnonzero(mismatched(decided, threshold=threshold)):
        if int(i) in active:
            reasons[i] = (
                f"{method} relevance margin {decided[i]:.2f} < signals.relevance_threshold "
                f"{threshold}: {what}"
            )
            if not defer:
                v.drop(int(i), "mismatched", reasons[i])
    # The margin that decided is the one the quality score ranks by, on the cross scale.
    column = margins if method != "paired" else on_cross_scale(decided)
    extra = {"relevance": pa.array(column, pa.float64())}
    if defer:
        extra["mismatch"] = pa.array(reasons, pa.string())
    out = v.table(**extra)
    return out.drop_columns([c for c in PART_COLUMNS if c in out.column_names])
