"""Evaluation metrics: likelihood of reference answers, and generations against references.

Pure functions, no Ray. ROUGE-L comes from Google's ``rouge-score`` (the reference
implementation) and chrF from ``sacrebleu``; the NLL helpers take a causal LM's logits
and a label tensor in which prompt and padding positions are ``IGNORE_INDEX``, so only
the answer tokens count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from typing import Any

IGNORE_INDEX = -100
"""Label value of positions that do not count (prompt and padding), as in transformers."""


@cache
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    # No stemming: the Porter stemmer is English-only and the data need not be English.
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 of one prediction against one reference, in [0, 1].

    rouge-score's default tokenizer lowercases and keeps runs of ``[a-z0-9]``; a text
    without such characters has no tokens and scores 0.
    """
    return float(_rouge_scorer().score(reference, prediction)["rougeL"].fmeasure)


def mean_rouge_l(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Mean sentence-level ROUGE-L F1 over pairs, in [0, 1] (the usual corpus figure)."""
    _check_pairs(predictions, references)
    if not predictions:
        return math.nan
    return sum(rouge_l(p, r) for p, r in zip(predictions, references, strict=True)) / len(
        predictions
    )


def chrf(prediction: str, reference: str) -> float:
    """Sentence-level chrF (character n-gram F-score, beta=2) in [0, 100], from sacrebleu."""
    from sacrebleu.metrics import CHRF

    return float(CHRF().sentence_score(prediction, [reference]).score)


def corpus_chrf(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus-level chrF in [0, 100]: n-gram statistics summed over all pairs (sacrebleu)."""
    from sacrebleu.metrics import CHRF

    _check_pairs(predictions, references)
    if not predictions:
        return math.nan
    return float(CHRF().corpus_score(list(predictions), [list(references)]).score)


@cache
def _chrf_metric() -> Any:
    from sacrebleu.metrics import CHRF

    return CHRF()


def chrf_statistics(predictions: Sequence[str], references: Sequence[str]) -> Any:
    """chrF's sufficient statistics per pair: a float array ``[pairs, 3 * n-gram orders]``.

    Summed over any subset of pairs, they give that subset's corpus chrF through
    :func:`chrf_from_statistics`, which is what a bootstrap over prompts resamples. These
    are the two methods sacrebleu's own paired bootstrap (``sacrebleu.significance``) uses.
    """
    import numpy as np

    _check_pairs(predictions, references)
    stats = _chrf_metric()._extract_corpus_statistics(list(predictions), [list(references)])
    return np.asarray(stats, dtype=np.float64).reshape(len(predictions), -1)


def chrf_from_statistics(summed: Any) -> float:
    """Corpus chrF in [0, 100] from statistics summed over pairs (see chrf_statistics)."""
    return float(_chrf_metric()._compute_score_from_stats(list(summed)).score)


def _check_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} predictions but {len(references)} references; "
            "pass one reference per prediction"
        )


def sequence_nll(logits: Any, labels: Any) -> tuple[Any, Any]:
    """Summed negative log-likelihood of each sequence's labelled tokens, and their count.

    The usual causal-LM shift applies: the logits at position ``t`` predict the label at
    ``t + 1``. Positions whose label is :data:`IGNORE_INDEX` do not count.

    Args:
        logits: float tensor ``[batch, length, vocab]``.
        labels: int tensor ``[batch, length]``: the input ids, with ``IGNORE_INDEX`` at
            prompt and padding positions.

    Returns:
        ``(nll_sums, token_counts)``, two float64 tensors of shape ``[batch]``, in nats.
    """
    import torch
    import torch.nn.functional as F

    shifted_logits = logits[:, :-1, :].float()
    targets = labels[:, 1:]
    nll = F.cross_entropy(
        shifted_logits.reshape(-1, shifted_logits.size(-1)),
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view(targets.shape)
    counted = targets != IGNORE_INDEX
    sums = (nll * counted).sum(dim=1).to(torch.float64)
    return sums, counted.sum(dim=1).to(torch.float64)


def mean_nll(nll_sums: Sequence[float], token_counts: Sequence[float]) -> float:
    """Token-weighted mean NLL over sequences: total NLL / total counted tokens (nats).

    Weighting by tokens (not averaging per-sequence means) is what perplexity is
    defined on and what a training loss reports.
    """
    tokens = float(sum(token_counts))
    if tokens <= 0:
        return math.nan
    return float(sum(nll_sums)) / tokens


def perplexity(nll: float) -> float:
    """exp(mean NLL); inf when it overflows, nan for nan."""
    try:
        return math.exp(nll)
    except OverflowError:
        return math.inf
