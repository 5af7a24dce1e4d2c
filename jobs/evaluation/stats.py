"""Figures over seeds and over prompts: the mean and range of an arm's runs, and the paired
bootstrap behind the experiment's verdict. Pure numpy, no Ray.

The bootstrap follows Koehn (2004) and sacrebleu's paired test: resample the held-out
prompts with replacement, score both systems on the same resample from their summed
per-prompt statistics, and count how often one is ahead. The statistics make either kind
of figure: chrF's n-gram counts give corpus chrF (a corpus metric stays one), and
``[chrF of the answer, 1]`` gives the mean over answers. An arm trained with several
seeds is scored as the mean of its runs on each resample, the same figure the table
reports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Spread:
    """Mean, minimum and maximum of one figure over an arm's runs."""

    mean: float
    low: float
    high: float


def spread(values: Sequence[float | None], digits: int = 4) -> Spread | None:
    """Mean and min-max range of the values that exist; None when none does.

    With two seeds a standard deviation says no more than the range and hides it behind a
    formula, so the experiment reports the range.
    """
    present = [float(v) for v in values if v is not None]
    if not present:
        return None
    return Spread(
        round(sum(present) / len(present), digits),
        round(min(present), digits),
        round(max(present), digits),
    )


def resample_counts(prompts: int, resamples: int, seed: int = 0) -> np.ndarray:
    """How often each prompt is drawn in each resample: ``[resamples, prompts]`` ints.

    Drawing ``prompts`` indices with replacement per resample; counts (rather than
    indices) let a resample's summed statistics be one matrix product.
    """
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, prompts, size=(resamples, prompts))
    counts = np.zeros((resamples, prompts), dtype=np.float64)
    np.add.at(counts, (np.arange(resamples)[:, None], draws), 1.0)
    return counts


def resampled_scores(
    runs: Sequence[np.ndarray], counts: np.ndarray, score: Callable[[np.ndarray], float]
) -> np.ndarray:
    """An arm's score on every resample: the mean over its runs of ``score(summed stats)``.

    Args:
        runs: one ``[prompts, k]`` array of per-prompt statistics per run (seed).
        counts: from :func:`resample_counts`.
        score: the metric of statistics summed over prompts (corpus chrF, or the mean
            over answers).

    Returns:
        ``[resamples]`` floats.
    """
    per_run = [np.array([score(row) for row in counts @ stats]) for stats in runs]
    return np.mean(per_run, axis=0)


def ahead_share(
    arm: Sequence[np.ndarray],
    versus: Sequence[np.ndarray],
    score: Callable[[np.ndarray], float],
    resamples: int = 1000,
    seed: int = 0,
) -> float:
    """Share of paired resamples of the prompts in which ``arm`` scores above ``versus``.

    Both arms are scored on the same resamples (paired); ties count half, so two identical
    systems get 0.5.

    Args:
        arm: per-prompt statistics of each of the arm's runs, ``[prompts, k]`` each.
        versus: the same for the other arm, on the same prompts in the same order.
        score: the metric of statistics summed over prompts.
        resamples: bootstrap resamples.
        seed: seed of the resampling (fixed: the same files give the same figure).

    Raises:
        ValueError: when the arms were not scored on the same number of prompts.
    """
    sizes = {len(s) for s in (*arm, *versus)}
    if len(sizes) != 1 or not arm or not versus:
        raise ValueError(f"every run must be scored on the same prompts; got sizes {sizes}")
    counts = resample_counts(sizes.pop(), resamples, seed)
    a = resampled_scores(arm, counts, score)
    b = resampled_scores(versus, counts, score)
    return float(np.mean(a > b) + 0.5 * np.mean(a == b))
