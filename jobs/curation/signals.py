"""Model-based quality signals as Ray Data operators, and the quality score they feed.

- relevance: after embedding, each row's response competes against a sample of the
  dataset's instructions (:mod:`quality.relevance`); ``mismatched`` rows are dropped.
- IFD and perplexity: a causal LM in an actor pool (:class:`IFDScorer`), GPUs when
  ``signals.ifd_num_gpus > 0``; scores cached by content and model.
- judge: an OpenAI-compatible endpoint rates the rows still active 1-5 (:class:`JudgeRater`),
  after a cost estimate when prices are set (:func:`judge_estimate_batch`).
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

from jobs.curation import ops
from quality import schema

PART_COLUMNS = ["instruction_embedding", "response_embedding"]


# --- relevance -----------------------------------------------------------------------------


def relevance_enabled(cfg) -> bool:
    """signals.relevance, where None means on unless the encoder is the hashing one."""
    return cfg.relevance_runs


def relevance_sample(embedded, n_rows: int, size: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Ids and instruction vectors of about ``size`` rows, keyed by id (reproducible)."""
    fraction = min(1.0, size / max(n_rows, 1))
    return ops.sampled_vectors(embedded, "instruction_embedding", fraction=fraction, seed=seed)


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
        from infra.models import resolve_base_model
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

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
"""Judge hosts that may run without an API key (``finesift serve``, a local vLLM)."""


def judge_api_key(url: str, api_key_env: str) -> str:
    """The judge's API key, read on the driver: Ray workers on an existing cluster do not
    inherit the driver's environment, so the key is handed to the actors explicitly.

    Raises:
        InputError: ``api_key_env`` is unset and ``url`` is not a local server.
    """
    from urllib.parse import urlsplit

    from infra.errors import InputError

    key = os.environ.get(api_key_env)
    if key:
        return key
    host = urlsplit(url if "://" in url else f"http://{url}").hostname or ""
    if host in LOCAL_HOSTS:
        return "no-key"  # local servers ignore the key
    raise InputError(
        f"judge.url {url} is not a local server and ${api_key_env} is not set, so every "
        f"judge request would fail with 401; export {api_key_env}=<your API key> before "
        "`finesift curate` (any value works for a server that ignores keys), or point "
        "judge.api_key_env at the variable that holds it"
    )


def make_judge(
    *,
    url: str,
    model: str,
    api_key: str,
    concurrency: int,
    retries: int,
    timeout: float,
    max_tokens: int,
    cache_path: str | None,
):
    """A :class:`quality.judge.Judge` caching verdicts in the score cache."""
    from quality.judge import Judge
    from quality.score_cache import ScoreCache, default_cache_path

    return Judge(
        url,
        model,
        api_key,
        concurrency=concurrency,
        retries=retries,
        timeout=timeout,
        max_tokens=max_tokens,
        cache=ScoreCache(cache_path or default_cache_path()),
    )


def _active_rows(batch: pa.Table) -> list[int]:
    return [i for i, s in enumerate(batch["status"].to_pylist()) if s == schema.ACTIVE]


def judge_estimate_batch(
    batch: pa.Table, *, usd_per_1k_input: float, usd_per_1k_output: float, **judge_kwargs: Any
) -> pa.Table:
    """One row per batch: what judging its active rows the cache does not answer costs."""
    from quality.judge import estimate_cost

    judge = make_judge(**judge_kwargs)
    active = _active_rows(batch)
    prompts = [batch["prompt"][i].as_py() for i in active]
    responses = [batch["response"][i].as_py() for i in active]
    todo = judge.uncached(prompts, responses)
    cost = estimate_cost(
        [prompts[i] for i in todo],
        [responses[i] for i in todo],
        max_tokens=judge_kwargs["max_tokens"],
        usd_per_1k_input=usd_per_1k_input,
        usd_per_1k_output=usd_per_1k_output,
    )
    return pa.table(
        {
            "requests": [cost.requests],
            "input_tokens": [cost.input_tokens],
            "output_tokens": [cost.output_tokens],
            "usd": [cost.usd],
        }
    )


class JudgeRater:
    """Ray Data actor: the judge's rating per active row; low ratings dropped as judge_low.

    Rows already dropped (by IFD or perplexity) are not sent: a paid judge would rate
    rows that are thrown away. Their judge columns stay null.
    """

    def __init__(self, min_score: float, **judge_kwargs: Any) -> None:
        self.judge = make_judge(**judge_kwargs)
        self.min_score = min_score

    def __call__(self, batch: pa.Table) -> pa.Table:
        from quality.judge import OK

        v = ops.Verdicts(batch)
        active = _active_rows(batch)
        prompts, responses = batch["prompt"].to_pylist(), batch["response"].to_pylist()
        results = (
            self.judge.rate([prompts[i] for i in active], [responses[i] for i in active])
            if active
            else []
        )
        scores: list[float | None] = [None] * len(v)
        statuses: list[str | None] = [None] * len(v)
        for i, r in zip(active, results, strict=True):
            scores[i] = r.score
            statuses[i] = r.status if r.status == OK else f"{r.status}: {r.raw[:200]}"
            if r.status != OK:
                continue
            if self.min_score > 0 and r.score is not None and r.score < self.min_score:
                v.drop(
                    i, "judge_low", f"judge rated {r.score:g} < judge.min_score {self.min_score}"
                )
        return v.table(
            judge_score=pa.array(scores, pa.float64()),
            judge_status=pa.array(statuses, pa.string()),
        )


def judge_outcomes(statuses: list[str | None]) -> dict[str, int]:
    """Rows per judge outcome (ok, unparseable, failed) from ``judge_status`` values."""
    counts: dict[str, int] = {}
    for s in statuses:
        if s:
            outcome = s.split(":", 1)[0]
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts


# --- the quality score ---------------------------------------------------------------------


def compose_quality(
    batch: pa.Table, *, weights: dict[str, float], relevance_threshold: float
) -> pa.Table:
    """``quality`` = weighted mean of the heuristic score and every signal that ran; the
    heuristic score alone where no weighted signal ran for a row."""
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
    # No weighted signal for the row (weight_heuristics=0 and the judge failed, say):
    # the heuristic score, never None, which would leave selection to row order.
    quality = np.where(np.isnan(quality), terms["heuristics"], quality)
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


def preflight(cfg) -> None:
    """Driver-side checks before Ray starts, so a bad setting fails with its own message
    rather than as an actor's death: the IFD model resolves, the judge has its API key.

    Raises:
        ModelNotFoundError: signals.ifd_model cannot be found.
        InputError: the judge is remote and its API key variable is unset.
    """
    if cfg.signals.ifd:
        from infra.models import resolve_base_model

        resolve_base_model(cfg.signals.ifd_model)
    if cfg.judge.enabled:
        judge_api_key(cfg.judge.url, cfg.judge.api_key_env)


def apply_model_signals(survivors, cfg, console=None):
    """IFD/perplexity and the judge when configured, then the composed quality score."""
    from ray.data import ActorPoolStrategy

    from infra.ray_env import largest_node_cpus

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
    """Estimate the judge's cost when priced (refusing above judge.max_usd), then rate
    the active rows and warn when the judge answered none of them."""
    from ray.data import ActorPoolStrategy

    j = cfg.judge
    judge_kwargs = dict(
        url=j.url,
        model=j.model,
        api_key=judge_api_key(j.url, j.api_key_env),
        concurrency=j.concurrency,
        retries=j.retries,
        timeout=j.timeout,
        max_tokens=j.max_tokens,
        cache_path=cfg.signals.cache,
    )
    if j.usd_per_1k_input > 0 or j.usd_per_1k_output > 0 or j.max_usd > 0:
        _check_judge_cost(survivors, j, judge_kwargs, console)
    rated = survivors.map_batches(
        JudgeRater,
        batch_size=max(16, 4 * j.concurrency),
        batch_format="pyarrow",
        compute=ActorPoolStrategy(size=1),
        fn_constructor_kwargs=dict(min_score=j.min_score, **judge_kwargs),
        num_cpus=1,
    ).materialize()
    _warn_judge_failures(rated, j.url, console)
    return rated


def _check_judge_cost(survivors, j, judge_kwargs: dict[str, Any], console) -> None:
    """Print the estimate for the uncached active rows; refuse above judge.max_usd."""
    from infra.errors import InputError

    counts = survivors.map_batches(
        judge_estimate_batch,
        batch_format="pyarrow",
        fn_kwargs=dict(
            usd_per_1k_input=j.usd_per_1k_input,
            usd_per_1k_output=j.usd_per_1k_output,
            **judge_kwargs,
        ),
    )
    requests = input_tokens = output_tokens = 0
    usd = 0.0
    for batch in counts.iter_batches(batch_size=4096, batch_format="pyarrow"):
        requests += sum(batch["requests"].to_pylist())
        input_tokens += sum(batch["input_tokens"].to_pylist())
        output_tokens += sum(batch["output_tokens"].to_pylist())
        usd += sum(batch["usd"].to_pylist())
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


def _warn_judge_failures(rated, url: str, console) -> None:
    """A loud warning when the judge answered no row (a wrong URL or key, a dead server)."""
    statuses: list[str | None] = []
    for batch in rated.select_columns(["judge_status"]).iter_batches(
        batch_size=65_536, batch_format="pyarrow"
    ):
        statuses.extend(batch["judge_status"].to_pylist())
    outcomes = judge_outcomes(statuses)
    asked = sum(outcomes.values())
    if console is not None and asked:
        console.print(f"[bold cyan]judge[/] verdicts: {outcomes}")
    if asked and not outcomes.get("ok"):
        first = next(s for s in statuses if s)
        message = (
            f"WARNING: the judge at {url} gave no usable verdict for any of {asked} rows "
            f"(first: {first[:300]}); the judge term is missing from every quality score. "
            "Check judge.url, judge.model and the API key (judge.api_key_env)."
        )
        if console is not None:
            console.print(f"[bold red]{message}[/]")
        else:
            print(message)
