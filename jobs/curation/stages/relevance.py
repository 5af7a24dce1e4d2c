"""relevance: each row's response competes against a sample of the dataset's
instructions (:mod:`quality.relevance`); a response that fits other instructions better
than its own is dropped as ``mismatched``. The margin stays in the ``relevance`` column
for the quality score."""

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
        prepare=partial(competitors, size=s.relevance_sample, seed=cfg.seed),
        kwargs=dict(top_k=s.relevance_top_k, threshold=s.relevance_threshold),
    )


def competitors(view: DataView, *, size: int, seed: int) -> Plan:
    """Instruction keys and vectors of about ``size`` rows, drawn by id (reproducible).

    The competitors are named by instruction key, and so are the rows they compete with
    (:func:`quality.relevance.relevance_margin`): a row never competes with its own
    instruction asked again (a repeat, or a conflicting answer elsewhere in the data).
    """
    fraction = min(1.0, size / max(view.count(), 1))
    columns = ["id", "instruction_key", "instruction_embedding"]
    sample = view.collect(sample_by_id, seed=seed, fraction=fraction, columns=columns)
    ids, vectors = sorted_sample(sample, "instruction_embedding")
    key_of = dict(zip(sample["id"].to_pylist(), sample["instruction_key"].to_pylist(), strict=True))
    return Plan(kwargs=dict(sample_ids=[key_of[i] for i in ids], sample=vectors))


def score_relevance(
    batch: pa.Table,
    *,
    sample_ids: list[str],
    sample: np.ndarray,
    top_k: int,
    threshold: float,
) -> pa.Table:
    """Relevance margin per row; rows below ``threshold`` dropped as mismatched."""
    from quality.relevance import mismatched, relevance_margin

    v = Verdicts(batch)
    margins = relevance_margin(
        vectors_of(batch, "instruction_embedding"),
        vectors_of(batch, "response_embedding"),
        sample,
        top_k=top_k,
        row_ids=batch["instruction_key"].to_pylist(),
        sample_ids=sample_ids,
    )
    active = set(v.active())
    for i in np.flatnonzero(mismatched(margins, threshold=threshold)):
        if int(i) in active:
            v.drop(
                int(i),
                "mismatched",
                f"relevance margin {margins[i]:.2f} < signals.relevance_threshold {threshold}: "
                "other instructions of the dataset fit this response better than its own",
            )
    out = v.table(relevance=pa.array(margins, pa.float64()))
    return out.drop_columns([c for c in PART_COLUMNS if c in out.column_names])
