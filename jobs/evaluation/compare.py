"""From the training runs and the eval to experiment.json: each arm's figures over its
seeds, and curated against the other arms on chrF (per answer, and corpus) with a paired
bootstrap over prompts."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobs.curation.result import CurateResult
from jobs.evaluation.arms import TrainingRun
from jobs.evaluation.config import ExperimentConfig
from jobs.evaluation.result import ArmResult, Comparison, EvalResult, ExperimentResult, SeedRun
from jobs.evaluation.stats import ahead_share, spread

FIGURES = ("nll", "perplexity", "rouge_l", "chrf", "corpus_chrf", "length_ratio")
"""A model's figures, as eval.json, SeedRun and ArmResult name them."""


def read_generations(path: Path) -> dict[str, list[tuple[str, str, str]]]:
    """Per model, its greedy answers as (row id, answer, reference), in row order
    (eval_samples.jsonl; rows without an answer are left out)."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    if not path.is_file():
        return out
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if "generation" in record:
                triple = (record["id"], record["generation"], record["reference"])
                out.setdefault(record["model"], []).append(triple)
    return out


def assemble(
    cfg: ExperimentConfig,
    runs: list[TrainingRun],
    trained: dict[str, dict[str, Any]],
    eval_result: EvalResult,
    generations: dict[str, list[tuple[str, str, str]]],
    curate_summary: CurateResult | None,
) -> ExperimentResult:
    """experiment.json: the base model, then one row per arm (its runs inside), and the
    comparisons of curated with the other arms."""
    base = eval_result.model("base")
    arms = [ArmResult("base", **{k: getattr(base, k) for k in FIGURES})]
    for arm in cfg.arms:
        seed_runs = []
        for training in (r for r in runs if r.arm == arm):
            scores = eval_result.model(training.model)
            figures = {k: getattr(scores, k) for k in FIGURES}
            cost = trained[training.model]
            seed_runs.append(SeedRun(training.seed, training.model, **figures, **cost))
        arms.append(arm_result(arm, seed_runs))
    comparisons = compare(cfg, arms, generations)
    o = cfg.train.optim
    schedule = (
        f"equal steps (train.optim.max_steps={o.max_steps})"
        if o.max_steps > 0
        else f"equal epochs ({o.epochs:g} per arm)"
    )
    verdict = "; ".join(c.sentence() for c in comparisons) or nll_verdict(arms)
    seeds = ", ".join(f"{a.arm} {','.join(map(str, a.seeds))}" for a in arms if a.runs)
    note = (
        f"Every arm trained with the same settings, {schedule}, once per seed ({seeds}). "
        f"chrF (of each answer, mean over answers; corpus chrF pools them) and ROUGE-L of "
        f"greedy answers to {eval_result.generated_rows} held-out prompts, NLL and "
        f"perplexity on {eval_result.rows} held-out rows (answer tokens only): mean over "
        "seeds (min-max). Train time is the wall time of each training "
        "run, Ray Train worker start included."
    )
    return ExperimentResult(
        data=str(cfg.data),
        eval_data=str(cfg.eval_data),
        budget=cfg.budget,
        schedule=schedule,
        note=note,
        verdict=verdict,
        arms=arms,
        curation=curate_summary.by_status if curate_summary else None,
        seeds=list(cfg.seeds),
        comparisons=comparisons,
        prompts=eval_result.generated_rows,
    )


def arm_result(arm: str, runs: list[SeedRun]) -> ArmResult:
    """An arm's row: figures as mean and range over its runs, cost as mean per run."""
    names = ("nll", "rouge_l", "chrf", "corpus_chrf", "length_ratio")
    figures = {k: spread([getattr(r, k) for r in runs]) for k in names}
    chrf, rouge, nll = figures["chrf"], figures["rouge_l"], figures["nll"]
    corpus, length = figures["corpus_chrf"], figures["length_ratio"]
    cost = {k: spread([getattr(r, k) for r in runs], 1) for k in ("steps", "tokens_seen", "rows")}
    seconds = [r.train_seconds for r in runs if r.train_seconds is not None]
    time_per_run = spread(seconds, 1)
    return ArmResult(
        arm=arm,
        nll=nll.mean if nll else None,
        perplexity=round(math.exp(nll.mean), 4) if nll else None,
        rouge_l=rouge.mean if rouge else None,
        chrf=chrf.mean if chrf else None,
        rows=_int(cost["rows"]),
        steps=_int(cost["steps"]),
        epochs=runs[0].epochs if runs else None,
        tokens_seen=_int(cost["tokens_seen"]),
        train_seconds=time_per_run.mean if time_per_run else None,
        final_eval_loss=(s.mean if (s := spread([r.final_eval_loss for r in runs])) else None),
        chrf_min=chrf.low if chrf else None,
        chrf_max=chrf.high if chrf else None,
        rouge_l_min=rouge.low if rouge else None,
        rouge_l_max=rouge.high if rouge else None,
        nll_min=nll.low if nll else None,
        nll_max=nll.high if nll else None,
        train_seconds_total=round(sum(seconds), 1) if seconds else None,
        corpus_chrf=corpus.mean if corpus else None,
        corpus_chrf_min=corpus.low if corpus else None,
        corpus_chrf_max=corpus.high if corpus else None,
        length_ratio=length.mean if length else None,
        runs=runs,
    )


def _int(figure: Any) -> int | None:
    return None if figure is None else round(figure.mean)


def compare(
    cfg: ExperimentConfig,
    arms: list[ArmResult],
    generations: dict[str, list[tuple[str, str, str]]],
) -> list[Comparison]:
    """curated against every other trained arm on chrF per answer (the headline) and on
    corpus chrF, each with the paired bootstrap over the prompts."""
    from quality.metrics import chrf_from_statistics

    by_name = {a.arm: a for a in arms}
    curated = by_name.get("curated")
    if curated is None or curated.chrf is None:
        return []
    corpus_stats, answer_stats = chrf_statistics_per_model(generations)
    prompts = len(generations.get(curated.runs[0].model, []))
    n = cfg.bootstrap_resamples
    comparisons = []
    for other in (a for a in arms if a.arm not in ("base", "curated") and a.chrf is not None):
        corpus = curated.corpus_chrf is not None and other.corpus_chrf is not None
        comparisons.append(
            Comparison(
                arm="curated",
                versus=other.arm,
                resamples=n,
                prompts=prompts,
                chrf=curated.chrf,
                versus_chrf=other.chrf,
                difference=round(curated.chrf - other.chrf, 4),
                ahead_share=_ahead(n, curated, other, answer_stats, mean_from_statistics),
                corpus_chrf=curated.corpus_chrf,
                versus_corpus_chrf=other.corpus_chrf,
                corpus_difference=(
                    round(curated.corpus_chrf - other.corpus_chrf, 4) if corpus else None
                ),
                corpus_ahead_share=(
                    _ahead(n, curated, other, corpus_stats, chrf_from_statistics)
                    if corpus
                    else None
                ),
            )
        )
    return comparisons


def _ahead(
    resamples: int,
    arm: ArmResult,
    versus: ArmResult,
    stats: dict[str, Any],
    score: Callable[[Any], float],
) -> float | None:
    """Share of paired bootstrap resamples in which ``arm`` is ahead (None: no bootstrap)."""
    if not resamples:
        return None
    runs = [stats[r.model] for r in arm.runs], [stats[r.model] for r in versus.runs]
    return round(ahead_share(*runs, score, resamples=resamples), 4)


def mean_from_statistics(summed: Any) -> float:
    """The mean per-answer chrF of a resample: summed ``[chrF, 1]`` rows (see
    :func:`chrf_statistics_per_model`) give the total and the count."""
    return float(summed[0] / summed[1])


def chrf_statistics_per_model(
    generations: dict[str, list[tuple[str, str, str]]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per model, per prompt: chrF's n-gram statistics (for corpus chrF), and ``[chrF of
    the answer, 1]`` (for the mean per answer). Summed over a resample of the prompts,
    each gives that resample's figure; the models are checked to cover the same prompts.

    Raises:
        FinesiftError: when two models answered different prompts (a paired test needs
            the same ones).
    """
    import numpy as np

    from infra.errors import FinesiftError
    from quality.metrics import chrf, chrf_statistics

    ids = {model: [t[0] for t in triples] for model, triples in generations.items()}
    first = next(iter(ids.values()), [])
    if any(i != first for i in ids.values()):
        raise FinesiftError("eval_samples.jsonl holds different prompts per model; rerun eval")
    corpus, answers = {}, {}
    for model, triples in generations.items():
        corpus[model] = chrf_statistics([t[1] for t in triples], [t[2] for t in triples])
        scores = [chrf(t[1], t[2]) for t in triples]
        answers[model] = np.column_stack([scores, np.ones(len(scores))])
    return corpus, answers


def nll_verdict(arms: list[ArmResult]) -> str | None:
    """Without generated answers (eval.generation.enabled=false), the verdict is on NLL."""
    nll = {a.arm: a.nll for a in arms}
    if nll.get("curated") is None or nll.get("random") is None:
        return None
    better = "beats" if nll["curated"] < nll["random"] else "does not beat"
    return f"curated {better} random on held-out NLL: {nll['curated']:.4f} vs {nll['random']:.4f}"
