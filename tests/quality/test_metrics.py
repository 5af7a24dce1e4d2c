"""Metrics on tiny cases whose answers are known by hand."""

from __future__ import annotations

import math

import pytest

from quality import metrics


def test_identical_strings_score_perfectly():
    text = "The capital of France is Paris."
    assert metrics.rouge_l(text, text) == pytest.approx(1.0)
    assert metrics.chrf(text, text) == pytest.approx(100.0)
    assert metrics.mean_rouge_l([text, "red blue"], [text, "red blue"]) == pytest.approx(1.0)
    assert metrics.corpus_chrf([text], [text]) == pytest.approx(100.0)


def test_disjoint_strings_score_zero():
    assert metrics.rouge_l("alpha beta gamma", "delta epsilon") == 0.0
    assert metrics.chrf("xyz", "abc") == 0.0
    assert metrics.corpus_chrf(["qqq"], ["www"]) == 0.0


def test_rouge_l_is_the_longest_common_subsequence_f1():
    # LCS of "a b c d" and "a c d e" is "a c d": P = R = 3/4, F1 = 3/4.
    assert metrics.rouge_l("a b c d", "a c d e") == pytest.approx(0.75)
    # Order matters: reversed words share an LCS of one word out of three.
    assert metrics.rouge_l("one two three", "three two one") == pytest.approx(1 / 3)


def test_partial_overlap_ranks_between_the_extremes():
    ref = "Red, blue and yellow are the primary colors."
    close = "Red, blue and yellow are primary colours."
    far = "Bananas are rich in potassium."
    assert 0 < metrics.chrf(far, ref) < metrics.chrf(close, ref) < 100
    assert 0 <= metrics.rouge_l(far, ref) < metrics.rouge_l(close, ref) < 1


def test_pairs_must_align_and_empty_input_is_nan():
    with pytest.raises(ValueError, match="one reference per prediction"):
        metrics.mean_rouge_l(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="one reference per prediction"):
        metrics.corpus_chrf(["a"], [])
    assert math.isnan(metrics.mean_rouge_l([], []))
    assert math.isnan(metrics.corpus_chrf([], []))


def test_sequence_nll_of_a_hand_built_case():
    torch = pytest.importorskip("torch")
    vocab = 4
    # Position 0 predicts label 1 with uniform logits: NLL = log 4.
    # Position 1 predicts label 2 with logit 10 on token 2 among zeros:
    # NLL = log(e^10 + 3) - 10. Position 2's label is ignored (a prompt token).
    logits = torch.zeros(1, 4, vocab)
    logits[0, 1, 2] = 10.0
    labels = torch.tensor([[metrics.IGNORE_INDEX, 1, 2, metrics.IGNORE_INDEX]])
    sums, counts = metrics.sequence_nll(logits, labels)
    expected = math.log(4) + (math.log(math.exp(10) + 3) - 10)
    assert counts.tolist() == [2.0]
    assert sums.item() == pytest.approx(expected, rel=1e-5)


def test_sequence_nll_ignores_padding_per_row():
    torch = pytest.importorskip("torch")
    logits = torch.zeros(2, 3, 5)  # uniform: every counted token costs log 5
    labels = torch.tensor([[0, 1, 2], [0, 3, metrics.IGNORE_INDEX]])
    sums, counts = metrics.sequence_nll(logits, labels)
    assert counts.tolist() == [2.0, 1.0]
    assert sums.tolist() == pytest.approx([2 * math.log(5), math.log(5)], rel=1e-5)


def test_mean_nll_weights_by_tokens_and_perplexity_is_its_exp():
    # 10 nats over 4 tokens and 2 nats over 1 token: 12 / 5, not the mean of 2.5 and 2.
    nll = metrics.mean_nll([10.0, 2.0], [4, 1])
    assert nll == pytest.approx(12 / 5)
    assert metrics.perplexity(nll) == pytest.approx(math.exp(12 / 5))
    assert metrics.perplexity(0.0) == 1.0
    assert metrics.perplexity(1e6) == math.inf
    assert math.isnan(metrics.mean_nll([], []))
