"""score: the heuristic (rule-based) score; low scorers and stale rows dropped.

Also adds the grouping keys of the instructions stage: ``exact_key`` (the whole row,
normalized) and ``instruction_key`` (the instruction, normalized).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pyarrow as pa

from jobs.curation.stage import Stage, Verdicts

if TYPE_CHECKING:
    from jobs.curation.config import CurateConfig


def build(cfg: CurateConfig) -> Stage:
    return Stage(
        name="score",
        process=score_rows,
        batch_size=2_000,
        adds=("exact_key", "instruction_key"),
        kwargs=dict(
            thresholds=cfg.heuristics.thresholds,
            weights=cfg.heuristics.weights,
            min_score=cfg.heuristics.min_score,
            since=cfg.filters.since,
        ),
    )


def score_rows(
    batch: pa.Table,
    *,
    thresholds: Mapping[str, float],
    weights: Mapping[str, float],
    min_score: float,
    since: str | None,
) -> pa.Table:
    """Quality-score the active rows of a batch; drop low scorers and stale rows."""
    from quality.filters import is_stale, parse_since
    from quality.heuristics import evaluate_batch
    from quality.text import exact_key, instruction_key

    v = Verdicts(batch)
    n = len(v)
    heuristic: list[float | None] = [None] * n
    exact_keys: list[str | None] = [None] * n
    instruction_keys: list[str | None] = [None] * n
    active = v.active()
    prompts_all, responses_all = batch["prompt"].to_pylist(), batch["response"].to_pylist()
    prompts = [prompts_all[i] for i in active]
    responses = [responses_all[i] for i in active]
    if active:
        scores, failed, reasons = evaluate_batch(
            prompts, responses, thresholds=thresholds or None, weights=weights or None
        )
        for j, i in enumerate(active):
            v.columns["quality"][i] = heuristic[i] = float(scores[j])
            v.columns["failed_rules"][i] = list(failed[j])
            exact_keys[i] = exact_key(prompts[j], responses[j])
            instruction_keys[i] = instruction_key(prompts[j])
            if scores[j] < min_score:
                v.drop(
                    i,
                    reasons[j] or "low_quality",
                    f"quality {scores[j]:.2f} < heuristics.min_score {min_score}; "
                    f"failed: {', '.join(failed[j]) or 'none'}",
                )
    if since is not None:
        cutoff = parse_since(since)
        timestamps = batch["timestamp"].to_pylist()
        still = v.active()
        stale = is_stale([timestamps[i] for i in still], cutoff)
        for i, old in zip(still, stale, strict=True):
            if old:
                v.drop(i, "stale", f"timestamp {timestamps[i]} is before filters.since {since}")
    return v.table(
        heuristic=pa.array(heuristic, pa.float64()),
        exact_key=pa.array(exact_keys, pa.string()),
        instruction_key=pa.array(instruction_keys, pa.string()),
    )
