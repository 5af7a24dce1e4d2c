"""The quality score: rule-based score and model signals, each mapped to [0, 1], averaged.

    quality = sum(w_s * term_s) / sum(w_s)   over the signals s that ran for the row

- heuristics: the rule score (1 minus the penalties of failed rules), as is;
- relevance: logistic of the margin (0.05 scale), 0.5 at signals.relevance_threshold,
  near 1 when the row's own instruction is its response's best match;
- ifd: alignment, (1 - IFD) / 0.1 clipped to [0, 1]: full credit while the instruction
  clearly helps predict the answer (IFD <= 0.9), none once it does not (IFD >= 1). How
  informative an aligned row is (a higher IFD below 1) is left to selection
  (selection.informative_weight), not to "clean";
- perplexity: fluency, two-sided in log(ppl): full credit between 3 and 100, falling to 0
  at 1000 (noise) and at 1 (degenerate repetition, which a language model finds almost
  perfectly predictable: Holtzman et al. 2020; on Self-Instruct, davinci's looping answers
  have a median perplexity of 1.5 under the bundled model, text-davinci-003's 12.4);
- judge: (rating - 1) / 4 for a 1-5 rating.

A signal that did not run for a row (turned off, nothing to score, an unparseable judge
answer) is left out of that row's average rather than counted as 0 or 1, so a missing
signal neither sinks nor lifts a row. Pure numpy; importable without Ray.
"""

from __future__ import annotations

import math

import numpy as np

PERPLEXITY_CEILING = 1000.0
"""Perplexity at and above which the fluency term is 0 (noise under a small LM)."""
PERPLEXITY_FLUENT = (3.0, 100.0)
"""The band of perplexity that gets full fluency credit."""
IFD_MARGIN = 0.1
"""The alignment term falls from 1 at IFD = 1 - IFD_MARGIN to 0 at IFD = 1."""


def relevance_term(margins: np.ndarray, *, threshold: float) -> np.ndarray:
    """Logistic of the relevance margin with a 0.05 scale: 0.5 at the drop threshold."""
    return 1.0 / (1.0 + np.exp(-(np.asarray(margins, float) - threshold) / 0.05))


def ifd_term(ifd: np.ndarray) -> np.ndarray:
    """Alignment: 1 for IFD <= 1 - IFD_MARGIN, 0 for IFD >= 1, linear between."""
    return np.clip((1.0 - np.asarray(ifd, float)) / IFD_MARGIN, 0.0, 1.0)


def perplexity_term(perplexity: np.ndarray) -> np.ndarray:
    """Fluency: 1 inside PERPLEXITY_FLUENT, linear in log(ppl) down to 0 at perplexity 1
    (repetition) and at PERPLEXITY_CEILING (noise)."""
    logs = np.log(np.maximum(np.asarray(perplexity, float), 1.0))
    low, high = (math.log(x) for x in PERPLEXITY_FLUENT)
    rising = logs / low
    falling = 1.0 - (logs - high) / (math.log(PERPLEXITY_CEILING) - high)
    return np.clip(np.minimum(rising, falling), 0.0, 1.0)


def judge_term(scores: np.ndarray) -> np.ndarray:
    """A 1-5 rating as (rating - 1) / 4."""
    return np.clip((np.asarray(scores, float) - 1.0) / 4.0, 0.0, 1.0)


def combine(terms: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Weighted mean of the terms per row, skipping NaN terms and zero weights.

    Args:
        terms: Per signal, an (n,) array in [0, 1] with NaN where the signal is missing.
        weights: Per signal, a weight >= 0 (signals absent here weigh 0).

    Returns:
        (n,) quality scores; NaN for a row with no term at all.
    """
    n = len(next(iter(terms.values()))) if terms else 0
    total = np.zeros(n)
    weight = np.zeros(n)
    for name, values in terms.items():
        w = float(weights.get(name, 0.0))
        values = np.asarray(values, float)
        present = ~np.isnan(values)
        if w <= 0:
            continue
        total += np.where(present, w * values, 0.0)
        weight += np.where(present, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0, total / np.maximum(weight, 1e-12), np.nan)


def informativeness(ifd: np.ndarray) -> np.ndarray:
    """The selection bonus: IFD itself below 1 (harder, still aligned), 0 at or above 1
    and where IFD is missing."""
    values = np.asarray(ifd, float)
    return np.where(np.isnan(values) | (values >= 1.0), 0.0, values)
