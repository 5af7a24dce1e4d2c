"""The composed quality score that orders fluent rows: every group decision and selection
ranks by it.

Among rows that pass the rules the heuristic score is nearly flat (on real rows 90% of
clean rows score above 0.92), so it cannot decide which of two fluent answers to keep. The
composed score adds the terms measured to separate good rows from bad ones on real data
(bench/signal_research.py; figures in BENCHMARKS.md):

- ``heuristics``: the rule score, as is;
- ``relevance``: the relevance margin (quality.relevance), half through a logistic centred
  on ``RELEVANCE_CENTER`` (an answer to another task scores low), half through a linear
  ramp over the margins fitting answers have, so that of two fluent answers to one
  instruction the one that fits it better scores higher (the logistic alone saturates);
- ``length``: answer length in words, log scale, saturating at ``LENGTH_SATURATION`` words
  ("the longest answers" is a strong published baseline: Zhao et al. 2024, "Long Is More
  for Alignment"); a cut-off answer is shorter than the whole one;
- ``completeness``: 1 when the answer ends as a finished answer does
  (quality.heuristics.ends_cleanly), else 0; a cut-off answer mostly does not, but neither
  do 22% of Dolly's human answers, so it weighs little;
- ``surface``: casing kept and words spelled (quality.surface): what tells a sloppy
  near-copy from its original.

Model signals (IFD, perplexity, judge: quality.composite) join as further terms when they
ran. ``quality = sum(w * term) / sum(w)`` over the terms present for a row (NaN = absent).
Pure numpy; importable without Ray.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from quality import composite
from quality.surface import surface_term

RELEVANCE_CENTER = -0.1
"""Margin at which the relevance term is 0.5 (clean real rows sit around 0 to +0.2)."""
RELEVANCE_SCALE = 0.05
"""Logistic scale of the relevance term, in cosine units."""
RELEVANCE_RAMP_BOTTOM = -0.2
"""Margin where the linear half of the relevance term is 0 (the default drop threshold)."""
RELEVANCE_RAMP_TOP = 0.4
"""Margin where the linear half of the relevance term reaches 1."""
RELEVANCE_RAMP_SHARE = 0.5
"""Share of the linear half in the relevance term."""
LENGTH_SATURATION = 250
"""Answer words at and above which the length term is 1."""

DEFAULT_WEIGHTS: dict[str, float] = {
    "heuristics": 1.0,
    "relevance": 4.0,
    "length": 0.25,
    "completeness": 0.25,
    "surface": 0.5,
    "ifd": 1.0,
    "perplexity": 0.5,
    "judge": 1.0,
}
"""Weights of the composed score, calibrated on Dolly and GPTeacher codegen with injected
noise and checked on Self-Instruct (bench/signal_research.py)."""


def relevance_rank_term(margins: np.ndarray) -> np.ndarray:
    """The relevance term: half a logistic at RELEVANCE_CENTER, half a linear ramp.

    The logistic separates answers to another task (margins below the drop threshold)
    from fitting ones, but saturates above a margin of about 0.1; the linear half keeps
    ordering fitting answers across the whole range clean rows occupy (margin -0.2 to
    RELEVANCE_RAMP_TOP), which is what decides between two fluent answers to one
    instruction. NaN stays NaN.
    """
    m = np.asarray(margins, float)
    logistic = 1.0 / (1.0 + np.exp(-(m - RELEVANCE_CENTER) / RELEVANCE_SCALE))
    ramp = np.clip((m - RELEVANCE_RAMP_BOTTOM) / (RELEVANCE_RAMP_TOP - RELEVANCE_RAMP_BOTTOM), 0, 1)
    return (1.0 - RELEVANCE_RAMP_SHARE) * logistic + RELEVANCE_RAMP_SHARE * ramp


def length_term(responses: Sequence[str]) -> np.ndarray:
    """log(1 + words) / log(1 + LENGTH_SATURATION), clipped to [0, 1]."""
    words = np.array([len((r or "").split()) for r in responses], float)
    return np.clip(np.log1p(words) / np.log1p(LENGTH_SATURATION), 0.0, 1.0)


def completeness_term(responses: Sequence[str]) -> np.ndarray:
    """1.0 where the response ends cleanly (quality.heuristics.ends_cleanly), else 0.0."""
    from quality.heuristics import ends_cleanly

    return np.array([1.0 if ends_cleanly(r or "") else 0.0 for r in responses])


def quality_terms(
    *,
    heuristics: np.ndarray,
    relevance: np.ndarray | None,
    responses: Sequence[str],
    lexicon: frozenset[str] | None = None,
    ifd: np.ndarray | None = None,
    perplexity: np.ndarray | None = None,
    judge: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every term of the composed score that can be computed, each in [0, 1] (NaN: absent).

    Args:
        heuristics: The rule scores, (n,).
        relevance: Relevance margins (n,), NaN where not computed; None when relevance is off.
        responses: The rows' responses.
        lexicon: Known words for the spelling half of the surface term; None: casing only.
        ifd: IFD per row (NaN where absent), or None.
        perplexity: Response perplexity per row, or None.
        judge: Judge rating 1-5 per row, or None.

    Returns:
        {term name: (n,) float64 array}.
    """
    n = len(responses)
    terms = {
        "heuristics": np.asarray(heuristics, float),
        "length": length_term(responses),
        "completeness": completeness_term(responses),
        "surface": surface_term(responses, lexicon),
    }
    if relevance is not None:
        terms["relevance"] = relevance_rank_term(relevance)
    if ifd is not None:
        terms["ifd"] = composite.ifd_term(ifd)
    if perplexity is not None:
        terms["perplexity"] = composite.perplexity_term(perplexity)
    if judge is not None:
        terms["judge"] = composite.judge_term(judge)
    for name, values in terms.items():
        if values.shape != (n,):
            raise ValueError(f"term {name} has shape {values.shape}, expected ({n},)")
    return terms


def compose(
    terms: Mapping[str, np.ndarray], weights: Mapping[str, float] | None = None
) -> np.ndarray:
    """The composed quality: weighted mean of the terms present per row.

    Args:
        terms: From :func:`quality_terms` (or any {name: (n,) array in [0, 1]}).
        weights: Per term; None uses DEFAULT_WEIGHTS. Terms without a weight count 0.

    Returns:
        (n,) float64; where no weighted term is present, the heuristic term.
    """
    weights = DEFAULT_WEIGHTS if weights is None else weights
    quality = composite.combine(dict(terms), dict(weights))
    if "heuristics" in terms:
        quality = np.where(np.isnan(quality), terms["heuristics"], quality)
    return quality


def score_histogram(
    scores: np.ndarray, clean: np.ndarray | None = None, *, bins: int = 20
) -> dict[str, list]:
    """Counts of scores per bin on [0, 1], overall and for clean / noisy rows when known.

    For the report's distribution plot.

    Args:
        scores: Composed scores (NaN rows are skipped).
        clean: Optional bool (n,) ground truth, to split the counts.
        bins: Equal-width bins on [0, 1].

    Returns:
        {"edges": bins + 1 floats, "all": counts, and "clean"/"noisy" counts when given,
        "quantiles": the 10th, 50th and 90th percentiles}.
    """
    scores = np.asarray(scores, float)
    keep = ~np.isnan(scores)
    edges = np.linspace(0.0, 1.0, bins + 1)
    out: dict[str, list] = {
        "edges": [round(float(e), 4) for e in edges],
        "all": np.histogram(np.clip(scores[keep], 0, 1), edges)[0].tolist(),
        "quantiles": [round(float(q), 4) for q in np.quantile(scores[keep], [0.1, 0.5, 0.9])]
        if keep.any()
        else [],
    }
    if clean is not None:
        clean = np.asarray(clean, bool)
        for label, mask in (("clean", clean), ("noisy", ~clean)):
            out[label] = np.histogram(np.clip(scores[keep & mask], 0, 1), edges)[0].tolist()
    return out
