"""relevance: each row's response competes against a sample of the dataset's
instructions and their responses (:mod:`quality.relevance`); a response that fits other
instructions (and resembles their answers) better than its own is dropped as
``mismatched``, at a cut the sample calibrates. The cross margin stays in the
``relevance`` column for the quality score."""

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
    return Stage(
        name="relevance",
        process=score_relevance,
        needs=(*PART_COLUMNS, "instruction_key"),
        enabled=cfg.relevance_runs,
        kwargs=dict(top_k=s.relevance_top_k),
        prepare=partial(
            competitors,
            size=s.relevance_sample,
            seed=cfg.seed,
            top_k=s.relevance_top_k,
            threshold=s.relevance_threshold,
            spread=s.relevance_spread,
        ),
    )


def competitors(
    view: DataView, *, size: int, seed: int, top_k: int, threshold: float, spread: float
) -> Plan:
    """Instruction keys, instruction and response vectors of about ``size`` rows, drawn
    by id (reproducible), and the mismatch cut their own margins set.

    The competitors are named by instruction key, and so are the rows they compete with
    (:func:`quality.relevance.paired_margin`): a row never competes with its own
    instruction asked again (a repeat, or a conflicting answer elsewhere in the data).
    The sampled rows are scored against the sample itself, and their margins place the
    cut (:func:`quality.relevance.mismatch_cut`).
    """
    from quality.relevance import mismatch_cut, paired_margin

    fraction = min(1.0, size / max(view.count(), 1))
    columns = ["id", "instruction_key", *PART_COLUMNS]
    sample = view.collect(sample_by_id, seed=seed, fraction=fraction, columns=columns)
    ids, instructions = sorted_sample(sample, "instruction_embedding")
    _, responses = sorted_sample(sample, "response_embedding")
    key_of = dict(zip(sample["id"].to_pylist(), sample["instruction_key"].to_pylist(), strict=True))
    keys = [key_of[i] for i in ids]
    if not keys:
        responses = instructions  # both empty, of one shape
    own = paired_margin(
        instructions, responses, instructions, responses, top_k=top_k, row_ids=keys, sample_ids=keys
    )
    offset, cut = mismatch_cut(own, threshold=threshold, spread=spread)
    return Plan(
        kwargs=dict(
            sample_ids=keys,
            sample=instructions,
            sample_responses=responses,
            offset=offset,
            cut=cut,
            threshold=threshold,
        )
    )


def score_relevance(
    batch: pa.Table,
    *,
    sample_ids: list[str],
    sample: np.ndarray,
    sample_responses: np.ndarray,
    top_k: int,
    offset: float,
    cut: float,
    threshold: float,
) -> pa.Table:
    """Cross margin per row into ``relevance``; rows whose paired margin, counted from
    ``offset``, is below ``cut`` are dropped as mismatched."""
    from quality.relevance import mismatched, paired_margin, relevance_margin

    v = Verdicts(batch)
    instructions = vectors_of(batch, "instruction_embedding")
    responses = vectors_of(batch, "response_embedding")
    keys = batch["instruction_key"].to_pylist()
    margins = relevance_margin(
        instructions, responses, sample, top_k=top_k, row_ids=keys, sample_ids=sample_ids
    )
    paired = paired_margin(
        instructions,
        responses,
        sample,
        sample_responses,
        top_k=top_k,
        row_ids=keys,
        sample_ids=sample_ids,
    )
    active = set(v.active())
    for i in np.flatnonzero(mismatched(paired, threshold=cut, offset=offset)):
        if int(i) in active:
            v.drop(
                int(i),
                "mismatched",
                f"paired relevance margin {paired[i]:.2f} - {offset:.2f} < {cut:.2f} "
                f"(signals.relevance_threshold {threshold}, widened by the data): other "
                "instructions of the dataset and their answers fit this response better "
                "than its own",
            )
    out = v.table(relevance=pa.array(margins, pa.float64()))
    return out.drop_columns([c for c in PART_COLUMNS if c in out.column_names])
