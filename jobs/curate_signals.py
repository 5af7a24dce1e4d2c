"""Model-based quality signals as Ray Data operators, and the quality score they feed.

- relevance: after embedding, each row's response competes against a sample of the
  dataset's instructions (:mod:`quality.relevance`); ``mismatched`` rows are dropped.
- IFD and perplexity: a causal LM in an actor pool (:class:`IFDScorer`), GPUs when
  ``signals.ifd_num_gpus > 0``; scores cached by content and model.
- judge: an OpenAI-compatible endpoint rates rows 1-5 (:class:`JudgeRater`), after a cost
  estimate (:func:`judge_estimate`).
- :func:`compose_quality` folds whatever ran into ``quality`` (:mod:`quality.composite`).

Each batch function here only fills signal columns and ``status``/``reason``; nothing
holds more than one batch.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pyarrow as pa

from jobs import curate_ops as ops
from quality import schema

PART_COLUMNS = ["instruction_embedding", "response_embedding"]


# --- relevance -----------------------------------------------------------------------------


def relevance_enabled(cfg) -> bool:
    """signals.relevance, where None means on unless the encoder is the hashing one."""
    if cfg.signals.relevance is None:
        return cfg.embed.model != "hashing"
    return bool(cfg.signals.relevance)


def relevance_sample(embedded, n_rows: int, size: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Ids and instruction vectors of at most ``size`` rows, drawn without a shuffle."""
    sample = embedded.select_columns(["id", "instruction_embedding"])
    fraction = min(1.0, size / max(n_rows, 1))
    if fraction < 1.0:
        sample = sample.random_sample(fraction, seed=seed)
    ids: list[str] = []
    vectors = []
    for batch in sample.iter_batches(batch_size=8192, batch_format="pyarrow"):
        if batch.num_rows:
            ids.extend(batch["id"].to_pylist())
            vectors.append(ops.vectors_of(batch, "instruction_embedding"))
    return ids, (np.concatenate(vectors) if vectors else np.zeros((0, 1), np.float32))


def score_relevance(
    batch: pa.Table,
    *,
    sample_ids: list[str],
    sample: np.ndarray,
    top_k: int,
    threshold: float,
) -> pa.Table:
    """Relevance margin per row; rows below ``threshold`` dropped as mismatched."""
    from quality.relevance import mismatched, relevance_margin

    v = ops.Verdicts(batch)
    margins = relevance_margin(
        ops.vectors_of(batch, "instruction_embedding"),
        ops.vectors_of(batch, "response_embedding"),
        sample,
        top_k=top_k,
        row_ids=batch["id"].to_pylist(),
        sample_ids=sample_ids,
    )
    for i in np.flatnonzero(mismatched(margins, threshold=threshold)):
        if v.columns["status"][i] == schema.ACTIVE:
            v.drop(
                int(i),
                "mismatched",
                f"relevance margin {margins[i]:.2f} < signals.relevance_threshold {threshold}: "
                "other instructions of the dataset fit this response better than its own",
            )
    out = v.table(relevance=pa.array(margins, pa.float64()))
    return out.drop_columns([c for c in PART_COLUMNS if c in out.column_names])


# --- IFD and perplexity --------------------------------------------------------------------


class IFDScorer:
    """Ray Data actor: a causal LM scores IFD and perplexity per batch, through the cache.

    Args:
        model: ``signals.ifd_model`` ("default" is the bundled base model).
        device: "cpu" or "cuda".
        max_length: Tokens per scored sequence.
        batch_size: Sequences per forward pass.
        threads: torch CPU threads (0: leave the default).
        cache_path: SQLite score cache; None uses the default under $FINESIFT_HOME.
        max_ifd: Drop rows with IFD >= this as misaligned (0: none).
        max_perplexity: Drop rows above this perplexity as high_perplexity (0: none).
    """

    def __init__(
        self,
        model: str,
        device: str,
        max_length: int,
        batch_size: int,
        threads: int,
        cache_path: str | None,
        max_ifd: float = 0.0,
        max_perplexity: float = 0.0,
    ) -> None:
        from jobs.models import resolve_base_model
        from quality.ifd import load_causal_lm
        from quality.score_cache import ScoreCache, default_cache_path

        if device == "cpu" and threads > 0:
            os.environ["OMP_NUM_THREADS"] = str(threads)
        path = resolve_base_model(model)
        self.model, self.tokenizer = load_causal_lm(path, device=device, threads=threads)
        self.model_key = path
        self.signal = f"ifd:max_length={max_length}"
        self.max_length, self.batch_size = max_length, batch_size
        self.max_ifd, self.max_perplexity = max_ifd, max_perplexity
        self.cache = ScoreCache(cache_path or default_cache_path())

    def scores(self, prompts: list[str], responses: list[str]) -> list[dict[str, float]]:
        """{"conditioned", "unconditioned", "tokens"} per row, from the cache when there."""
        from quality.ifd import score_ifd
        from quality.score_cache import score_key

        keys = [
            score_key(self.signal, self.model_key, p, r)
            for p, r in zip(prompts, responses, strict=True)
        ]
        found = self.cache.get_many(keys)
        todo = [i for i, k in enumerate(keys) if k not in found]
        if todo:
            fresh = score_ifd(
                self.model,
                self.tokenizer,
                [prompts[i] for i in todo],
                [responses[i] for i in todo],
                max_length=self.max_length,
                batch_size=self.batch_size,
            )
            new = {
                keys[i]: {
                    "conditioned": s.conditioned,
                    "unconditioned": s.unconditioned,
                    "tokens": s.tokens,
                }
                for i, s in zip(todo, fresh, strict=True)
            }
            self.cache.put_many(new)
            found.update(new)
        return [found[k] for k in keys]

    def __call__(self, batch: pa.Table) -> pa.Table:
        from quality.ifd import IFDScore

        v = ops.Verdicts(batch)
        rows = self.scores(batch["prompt"].to_pylist(), batch["response"].to_pylist())
        scored = [IFDScore(r["conditioned"], r["unconditioned"], int(r["tokens"])) for r in rows]
        ifd = [_or_none(s.ifd) for s in scored]
        ppl = [_or_none(s.perplexity) for s in scored]
        for i in range(len(v)):
            if v.columns["status"][i] != schema.ACTIVE:
                continue
            if self.max_ifd > 0 and ifd[i] is not None and ifd[i] >= self.max_ifd:
                v.drop(i, "misaligned", f"IFD {ifd[i]:.2f} >= signals.max_ifd {self.max_ifd}")
            elif self.max_perplexity > 0 and ppl[i] is not None and ppl[i] > self.max_perplexity:
                v.drop(
                    i,
                    "high_perplexity",
                    f"perplexity {ppl[i]:.0f} > signals.max_perplexity {self.max_perplexity}",
                )
        return v.table(ifd=pa.array(ifd, pa.float64()), perplexity=pa.array(ppl, pa.float64()))


def _or_none(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


# --- judge ---------------------------------------------------------------------------------


def make_judge(
    *,
    url: str,
    model: str,
    api_key_env: str,
    concurrency: int,
    retries: int,
    timeout: float,
    max_tokens: int,
    cache_path: str | None,
):
    """A :class:`quality.judge.Judge` with the key read from the environment."""
    from quality.judge import Judge
    from quality.score_cache import ScoreCache, default_cache_path

    return Judge(
        url,
        model,
        os.environ.get(api_key_env) or "no-key",
        concurrency=concurrency,
        retries=retries,
        timeout=timeout,
        max_tokens=max_tokens,
        cache=ScoreCache(cache_path or default_cache_path()),
    )


def judge_estimate_batch(batch: pa.Table, **judge_kwargs: Any) -> pa.Table:
    """One row per batch: the rows the cache does not answer, and their characters."""
    judge = make_judge(**judge_kwargs)
    prompts, responses = batch["prompt"].to_pylist(), batch["response"].to_pylist()
    todo = judge.uncached(prompts, responses)
    return pa.table(
        {
            "requests": [len(todo)],
            "prompt_chars": [sum(len(prompts[i]) for i in todo)],
            "response_chars": [sum(len(responses[i]) for i in todo)],
        }
    )


class JudgeRater:
    """Ray Data actor: the judge's rating per row; low ratings dropped as judge_low."""

    def __init__(self, min_score: float, **judge_kwargs: Any) -> None:
        self.judge = make_judge(**judge_kwargs)
        self.min_score = min_score

    def __call__(self, batch: pa.Table) -> pa.Table:
        from quality.judge import OK

        v = ops.Verdicts(batch)
        results = self.judge.rate(batch["prompt"].to_pylist(), batch["response"].to_pylist())
        for i, r in enumerate(results):
            if v.columns["status"][i] != schema.ACTIVE or r.status != OK:
                continue
            if self.min_score > 0 and r.score is not None and r.score < self.min_score:
                v.drop(
                    i, "judge_low", f"judge rated {r.score:g} < judge.min_score {self.min_score}"
                )
        return v.table(
            judge_score=pa.array([r.score for r in results], pa.float64()),
            judge_status=pa.array(
                [r.status if r.status == OK else f"{r.status}: {r.raw[:200]}" for r in results],
                pa.string(),
            ),
        )


# --- the quality score ---------------------------------------------------------------------


def compose_quality(
    batch: pa.Table, *, weights: dict[str, float], relevance_threshold: float
) -> pa.Table:
    """``quality`` = weighted mean of the heuristic score and every signal that ran."""
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
    values = [None if math.isnan(q) else float(q) for q in quality]
    index = batch.schema.get_field_index("quality")
    return batch.set_column(index, "quality", pa.array(values, pa.float64()))


# --- wiring --------------------------------------------------------------------------------


def apply_relevance(embedded, n_rows: int, cfg):
    """Relevance margins for every embedded row; mismatched rows dropped."""
    ids, sample = relevance_sample(embedded, n_rows, cfg.signals.relevance_sample, cfg.seed)
    return embedded.map_batches(
        score_relevance,
        batch_format="pyarrow",
        fn_kwargs=dict(
            sample_ids=ids,
            sample=sample,
            top_k=cfg.signals.relevance_top_k,
            threshold=cfg.signals.relevance_threshold,
        ),
    ).materialize()


def apply_model_signals(survivors, cfg, console=None):
    """IFD/perplexity and the judge when configured, then the composed quality score."""
    from ray.data import ActorPoolStrategy

    from jobs.ray_env import largest_node_cpus

    s = cfg.signals
    if s.ifd and survivors.count():
        gpu = s.ifd_num_gpus > 0
        threads = int(s.ifd_num_cpus) or max(1, largest_node_cpus() // s.ifd_num_actors)
        survivors = survivors.map_batches(
            IFDScorer,
            batch_size=max(64, 8 * s.ifd_batch_size),
            batch_format="pyarrow",
            compute=ActorPoolStrategy(size=s.ifd_num_actors),
            fn_constructor_kwargs=dict(
                model=s.ifd_model,
                device="cuda" if gpu else "cpu",
                max_length=s.ifd_max_length,
                batch_size=s.ifd_batch_size,
                threads=0 if gpu else threads,
                cache_path=s.cache,
                max_ifd=s.max_ifd,
                max_perplexity=s.max_perplexity,
            ),
            num_gpus=s.ifd_num_gpus if gpu else None,
            num_cpus=1 if gpu else threads,
        ).materialize()
    if cfg.judge.enabled and survivors.count():
        survivors = _judge(survivors, cfg, console)
    weights = {
        "heuristics": s.weight_heuristics,
        "relevance": s.weight_relevance,
        "ifd": s.weight_ifd,
        "perplexity": s.weight_perplexity,
        "judge": s.weight_judge,
    }
    return survivors.map_batches(
        compose_quality,
        batch_format="pyarrow",
        fn_kwargs=dict(weights=weights, relevance_threshold=s.relevance_threshold),
    ).materialize()


def _judge(survivors, cfg, console):
    """Estimate the judge's cost (refusing above judge.max_usd), then rate every row."""
    from ray.data import ActorPoolStrategy

    from quality.errors import InputError
    from quality.judge import CHARS_PER_TOKEN, JUDGE_TEMPLATE

    j = cfg.judge
    judge_kwargs = dict(
        url=j.url,
        model=j.model,
        api_key_env=j.api_key_env,
        concurrency=j.concurrency,
        retries=j.retries,
        timeout=j.timeout,
        max_tokens=j.max_tokens,
        cache_path=cfg.signals.cache,
    )
    counts = survivors.map_batches(
        judge_estimate_batch, batch_format="pyarrow", fn_kwargs=judge_kwargs
    )
    requests = chars = 0
    for batch in counts.iter_batches(batch_size=4096, batch_format="pyarrow"):
        requests += sum(batch["requests"].to_pylist())
        chars += sum(batch["prompt_chars"].to_pylist()) + sum(batch["response_chars"].to_pylist())
    overhead = len(JUDGE_TEMPLATE.format(prompt="", response=""))
    input_tokens = int((chars + requests * overhead) / CHARS_PER_TOKEN)
    output_tokens = requests * j.max_tokens
    usd = input_tokens / 1000 * j.usd_per_1k_input + output_tokens / 1000 * j.usd_per_1k_output
    if console is not None:
        console.print(
            f"[bold cyan]judge[/] {requests} uncached requests to {j.url} ({j.model}): "
            f"~{input_tokens:,} input + <= {output_tokens:,} output tokens, ~${usd:.2f}"
        )
    if j.max_usd > 0 and usd > j.max_usd:
        raise InputError(
            f"the judge would cost about ${usd:.2f}, above judge.max_usd={j.max_usd}; raise "
            "judge.max_usd, lower selection pressure upstream, or use a local server"
        )
    return survivors.map_batches(
        JudgeRater,
        batch_size=max(16, 4 * j.concurrency),
        batch_format="pyarrow",
        compute=ActorPoolStrategy(size=1),
        fn_constructor_kwargs=dict(min_score=j.min_score, **judge_kwargs),
        num_cpus=1,
    ).materialize()
