"""Figures over seeds (mean and range) and the paired bootstrap over prompts."""

from __future__ import annotations

import numpy as np
import pytest

from jobs.evaluation.compare import mean_from_statistics
from jobs.evaluation.stats import ahead_share, resample_counts, spread
from quality.metrics import chrf_from_statistics, chrf_statistics, corpus_chrf


def test_spread_is_mean_and_range_of_the_values_present():
    s = spread([34.0, 37.0, None])
    assert (s.mean, s.low, s.high) == (35.5, 34.0, 37.0)
    assert spread([None, None]) is None and spread([]) is None
    one = spread([2.5])
    assert one.mean == one.low == one.high == 2.5


def test_resamples_draw_every_prompt_count_with_replacement():
    counts = resample_counts(prompts=20, resamples=300, seed=0)
    assert counts.shape == (300, 20)
    assert (counts.sum(axis=1) == 20).all()  # each resample holds as many prompts as the set
    assert (counts == 0).any() and (counts >= 2).any()  # with replacement: gaps and repeats
    assert np.array_equal(counts, resample_counts(20, 300, seed=0))  # seeded


mean_score = mean_from_statistics
"""Statistics [value, 1] per prompt: the mean value over the resampled prompts (the
experiment's headline, chrF per answer)."""


def per_prompt(values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return np.stack([values, np.ones_like(values)], axis=1)


def test_better_on_every_prompt_is_ahead_in_every_resample():
    rng = np.random.default_rng(1)
    base = rng.uniform(20, 40, size=50)
    assert ahead_share([per_prompt(base + 1)], [per_prompt(base)], mean_score, 200) == 1.0
    assert ahead_share([per_prompt(base)], [per_prompt(base + 1)], mean_score, 200) == 0.0
    # The same system against itself: every resample a tie, counted half.
    assert ahead_share([per_prompt(base)], [per_prompt(base)], mean_score, 200) == 0.5


def test_a_difference_within_the_noise_is_not_called_certain():
    rng = np.random.default_rng(2)
    a, b = rng.normal(30, 8, size=60), rng.normal(30, 8, size=60)
    share = ahead_share([per_prompt(a)], [per_prompt(b)], mean_score, 1000)
    assert 0.05 < share < 0.95
    # A clear but noisy gain: ahead in most resamples, not all.
    c = b + rng.normal(3, 8, size=60)
    assert 0.95 < ahead_share([per_prompt(c)], [per_prompt(b)], mean_score, 1000) <= 1.0


def test_an_arm_with_seeds_is_scored_by_the_mean_of_its_runs():
    rng = np.random.default_rng(3)
    base = rng.uniform(20, 40, size=40)
    # One run far ahead, one slightly behind: the mean over runs is ahead everywhere.
    runs = [per_prompt(base + 4), per_prompt(base - 1)]
    assert ahead_share(runs, [per_prompt(base)], mean_score, 200) == 1.0
    runs = [per_prompt(base + 1), per_prompt(base - 4)]
    assert ahead_share(runs, [per_prompt(base)], mean_score, 200) == 0.0


def test_the_mean_per_answer_matches_a_bootstrap_over_drawn_prompts():
    """The summed [value, 1] statistics give the same share as averaging the values of the
    prompts each resample drew, one by one."""
    rng = np.random.default_rng(4)
    a, b = rng.normal(30, 8, size=30), rng.normal(31, 8, size=30)
    counts = resample_counts(30, 400, seed=0)
    drawn = [np.repeat(np.arange(30), row.astype(int)) for row in counts]
    naive = np.array([a[i].mean() > b[i].mean() for i in drawn]).mean()
    assert 0.05 < naive < 0.95  # a case where the share is not trivially 0 or 1
    assert ahead_share([per_prompt(a)], [per_prompt(b)], mean_score, 400) == pytest.approx(naive)


def test_runs_on_different_prompts_are_refused():
    with pytest.raises(ValueError, match="same prompts"):
        ahead_share([per_prompt([1.0, 2.0])], [per_prompt([1.0])], mean_score)


def test_chrf_statistics_sum_to_the_corpus_score():
    preds = ["the cat sat on the mat", "hello world", "", "Paris is the capital."]
    refs = ["a cat sat on a mat", "hello there world", "nothing", "The capital is Paris."]
    stats = chrf_statistics(preds, refs)
    assert stats.shape[0] == 4
    assert chrf_from_statistics(stats.sum(axis=0)) == pytest.approx(corpus_chrf(preds, refs))
    # A subset of rows scores as that subset's corpus.
    assert chrf_from_statistics(stats[:2].sum(axis=0)) == pytest.approx(
        corpus_chrf(preds[:2], refs[:2])
    )
