"""compose: the quality score that ranks rows, composed from the rule-based score and every
signal that ran (relevance, answer length and completeness, surface care, IFD, perplexity,
judge) by the weights in ``signals.weight_*`` (:mod:`quality.ranking`).

It runs before the group stages on purpose: which row of a conflict or a duplicate group
survives, and which rows the selection picks, are decided by this score, not by the
heuristic score alone (nearly flat on fluent rows).
"""

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
        decides=False,
        process=compose_quality,
        kwargs=dict(
            weights={
                "heuristics": s.weight_heuristics,
                "relevance": s.weight_relevance,
                "length": s.weight_length,
                "completeness": s.weight_completeness,
                "surface": s.weight_surface,
                "ifd": s.weight_ifd,
                "perplexity": s.weight_perplexity,
                "judge": s.weight_judge,
            },
        ),
    )


def compose_quality(batch: pa.Table, *, weights: dict[str, float]) -> pa.Table:
    """``quality`` = weighted mean of the terms present for each row; the rule-based score
    alone where no weighted term is present."""
    from quality.ranking import compose, quality_terms
    from quality.surface import bundled_lexicon

    def column(name: str) -> np.ndarray:
        return np.asarray(batch[name].to_pylist(), dtype=float)  # None -> NaN

    terms = quality_terms(
        heuristics=column("heuristic"),
        relevance=column("relevance"),
        responses=batch["response"].to_pylist(),
        lexicon=bundled_lexicon(),
        ifd=column("ifd"),
        perplexity=column("perplexity"),
        judge=column("judge_score"),
    )
    quality = compose(terms, weights)
    values = [None if math.isnan(q) else float(q) for q in quality]
    index = batch.schema.get_field_index("quality")
    return batch.set_column(index, "quality", pa.array(values, pa.float64()))
