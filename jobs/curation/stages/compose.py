"""compose: the quality score composed from the heuristic score and every signal that
ran (relevance, IFD, perplexity, judge), by the weights in ``signals.weight_*``
(:mod:`quality.composite`). The dedup and select stages rank rows by it."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from jobs.curation.stage import Stage

if TYPE_CHECKING:
    from jobs.curation.config import CurateConfig


def build(cfg: CurateConfig) -> Stage:
    s = cfg.signals
    return Stage(
        name="compose",
        process=compose_quality,
        kwargs=dict(
            weights={
                "heuristics": s.weight_heuristics,
                "relevance": s.weight_relevance,
                "ifd": s.weight_ifd,
                "perplexity": s.weight_perplexity,
                "judge": s.weight_judge,
            },
            relevance_threshold=s.relevance_threshold,
        ),
    )


def compose_quality(
    batch: pa.Table, *, weights: dict[str, float], relevance_threshold: float
) -> pa.Table:
    """``quality`` = weighted mean of the heuristic score and every signal that ran; the
    heuristic score alone where no weighted signal ran for a row."""
    from quality import composite

    def column(name: str) -> np.ndarray:
        return np.asarray(batch[name].to_pylist(), dtype=float)  # None -> NaN

    terms = {
        "heuristics": column("quality"),
        "relevance": composite.relevance_term(column("relevance"), threshold=relevance_threshold),
        "ifd": composite.ifd_term(column("ifd")),
        "perplexity": composite.perplexity_term(column("perplexity")),
        "judge": composite.judge_term(column("judge_score")),
    }
    quality = composite.combine(terms, weights)
    # No weighted signal for the row (weight_heuristics=0 and the judge failed, say):
    # the heuristic score, never None, which would leave selection to row order.
    quality = np.where(np.isnan(quality), terms["heuristics"], quality)
    values = [None if math.isnan(q) else float(q) for q in quality]
    index = batch.schema.get_field_index("quality")
    return batch.set_column(index, "quality", pa.array(values, pa.float64()))
