"""The quality score: rule-based score and model signals, each mapped to [0, 1], averaged.

    quality = sum(w_s * term_s) / sum(w_s)   over the signals s that ran for the row

- heuristics: the rule score (1 minus the penalties of failed rules), as is;
- relevance: logistic of the margin (0.05 scale), 0.5 at signals.relevance_threshold,
  near 1 when the row's own instruction is its response's best match;
- ifd: 1 - IFD, clipped to [0, 1]: how much the instruction helps predict the answer;
- perplexity: 1 - log(ppl) / log(1000), clipped: 1 for a fluent response, 0 for noise;
- judge: (rating - 1) / 4 for a 1-5 rating.

A signal that did not run for a row (turned off, nothing to score, an unparseable judge
answer) is left out of that row's average rather than counted as 0 or 1, so a missing
signal neither sinks nor lifts a row. Pure numpy; importable without Ray.
"""

from __future__ import annotations

import math

import numpy as np

PERPLEXITY_CEILING = 1000.0
"""Perplexity at which the fluency term reaches 0 (random text under a small LM)."""


def relevance_term(margins: np.ndarray, *, threshold: float) -> np.ndarray:
    """Logistic of the relevance margin with a 0.05 scale: 0.5 at the drop threshold."""
    return 1.0 / (1.0 + np.exp(-(np.asarray(margins, float) - threshold) / 0.05))


def ifd_term(ifd: np.ndarray) -> np.ndarray:
    """1 - IFD, clipped to [0, 1]: how much the instruction helps predict the answer."""
    return np.clip(1.0 - np.asarray(ifd, float), 0.0, 1.0)


def perplexity_term(perplexity: np.ndarray) -> np.ndarray:
    """1 at perplexity 1, 0 at :data:`PERPLEXITY_CEILING` and above, linear in log."""
    logs = np.log(np.maximum(np.asarray(perplexity, float), 1.0))
    return np.clip(1.0 - logs / math.log(PERPLEXITY_CEILING), 0.0, 1.0)


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
