"""judge: an OpenAI-compatible endpoint rates each active row 1-5 (:mod:`quality.judge`),
after a cost estimate when prices are set; low ratings optionally dropped as judge_low.

Verdicts are cached by content and model, so a rerun pays only for new rows.
"""

from __future__ import annotations

import os
from functools import partial
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from rich.console import Console

from jobs.curation.stage import DataView, Plan, Resources, Stage, Verdicts

if TYPE_CHECKING:
    from jobs.curation.config import CurateConfig, JudgeConfig

console = Console(stderr=True)
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
"""Judge hosts that may run without an API key (``finesift serve``, a local vLLM)."""


def build(cfg: CurateConfig) -> Stage:
    """Raises InputError now, on the driver, when a remote judge has no API key."""
    j = cfg.judge
    judge_kwargs = judge_settings(cfg) if j.enabled else {}
    priced = j.usd_per_1k_input > 0 or j.usd_per_1k_output > 0 or j.max_usd > 0
    return Stage(
        name="judge",
        process=JudgeRater,
        enabled=j.enabled,
        batch_size=max(16, 4 * j.concurrency),
        resources=Resources(cpus=1, actors=1),
        prepare=partial(check_cost, judge=j, judge_kwargs=judge_kwargs) if priced else None,
        finish=partial(report_outcomes, url=j.url),
        kwargs=dict(min_score=j.min_score, **judge_kwargs),
    )


def judge_settings(cfg: CurateConfig) -> dict[str, Any]:
    """The flat arguments of :func:`make_judge` from the config (the API key read now)."""
    j = cfg.judge
    return dict(
        url=j.url,
        model=j.model,
        api_key=judge_api_key(j.url, j.api_key_env),
        concurrency=j.concurrency,
        retries=j.retries,
        timeout=j.timeout,
        max_tokens=j.max_tokens,
        cache_path=cfg.signals.cache,
    )


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


def judge_estimate_batch(
    batch: pa.Table, *, usd_per_1k_input: float, usd_per_1k_output: float, **judge_kwargs: Any
) -> pa.Table:
    """One row per batch: what judging its active rows the cache does not answer costs."""
    from quality.judge import estimate_cost

    judge = make_judge(**judge_kwargs)
    active = Verdicts(batch).undecided()
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


def check_cost(view: DataView, *, judge: JudgeConfig, judge_kwargs: dict[str, Any]) -> Plan:
    """Print the estimate for the uncached active rows; refuse above judge.max_usd.

    Raises:
        InputError: the estimate is above judge.max_usd.
    """
    from infra.errors import InputError

    counts = view.collect(
        judge_estimate_batch,
        usd_per_1k_input=judge.usd_per_1k_input,
        usd_per_1k_output=judge.usd_per_1k_output,
        **judge_kwargs,
    )
    requests = sum(counts["requests"].to_pylist())
    input_tokens = sum(counts["input_tokens"].to_pylist())
    output_tokens = sum(counts["output_tokens"].to_pylist())
    usd = sum(counts["usd"].to_pylist())
    console.print(
        f"[bold cyan]judge[/] {requests} uncached requests to {judge.url} ({judge.model}): "
        f"~{input_tokens:,} input + <= {output_tokens:,} output tokens, ~${usd:.2f}"
    )
    if judge.max_usd > 0 and usd > judge.max_usd:
        raise InputError(
            f"the judge would cost about ${usd:.2f}, above judge.max_usd={judge.max_usd}; raise "
            "judge.max_usd, lower selection pressure upstream, or use a local server"
        )
    return Plan()


class JudgeRater:
    """Ray Data actor: the judge's rating per active row; low ratings dropped as judge_low."""

    def __init__(self, min_score: float, **judge_kwargs: Any) -> None:
        self.judge = make_judge(**judge_kwargs)
        self.min_score = min_score

    def __call__(self, batch: pa.Table) -> pa.Table:
        from quality.judge import OK

        v = Verdicts(batch)
        active = v.undecided()  # a mismatched row is not worth a paid request
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


def _statuses(batch: pa.Table) -> pa.Table:
    return batch.select(["judge_status"])


def report_outcomes(view: DataView, *, url: str) -> dict[str, Any]:
    """Print the verdict counts, loudly when the judge answered no row (a wrong URL or
    key, a dead server): the judge term is then missing from every quality score."""
    statuses = view.collect(_statuses)["judge_status"].to_pylist()
    outcomes = judge_outcomes(statuses)
    asked = sum(outcomes.values())
    if asked:
        console.print(f"[bold cyan]judge[/] verdicts: {outcomes}")
    if asked and not outcomes.get("ok"):
        first = next(s for s in statuses if s)
        console.print(
            f"[bold red]WARNING: the judge at {url} gave no usable verdict for any of {asked} "
            f"rows (first: {first[:300]}); the judge term is missing from every quality score. "
            "Check judge.url, judge.model and the API key (judge.api_key_env).[/]"
        )
    return {}
