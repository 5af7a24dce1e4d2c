"""score: the heuristic (rule-based) score; low scorers and stale rows dropped.

A multi-turn conversation is scored by every assistant turn (each with the turns before
it as its prompt) and takes its worst turn's score: training learns every answer.

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
    from quality.heuristics import evaluate_conversations
    from quality.text import exact_key, instruction_key

    v = Verdicts(batch)
    n = len(v)
    heuristic: list[float | None] = [None] * n
    exact_keys: list[str | None] = [None] * n
    instruction_keys: list[str | None] = [None] * n
    active = v.active()
    prompts_all, responses_all = batch["prompt"].to_pylist(), batch["response"].to_pylist()
    messages_all = batch["messages"].to_pylist()
    prompts = [prompts_all[i] for i in active]
    responses = [responses_all[i] for i in active]
    if active:
        conversations = [
            _turns(messages_all[i], prompt, response)
            for i, prompt, response in zip(active, prompts, responses, strict=True)
        ]
        scores, failed, reasons = evaluate_conversations(
            conversations, thresholds=thresholds or None, weights=weights or None
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


def _turns(messages: str, prompt: str, response: str) -> list[tuple[str, str]]:
    """The row's (prompt, response) pairs: one per assistant turn.

    Curate writes one ``"role":"assistant"`` per assistant turn, so a single-turn row is
    known without parsing its messages; its one pair is the row's own columns.
    """
    from quality.records import assistant_turns

    if messages.count('"role":"assistant"') > 1:
        turns = assistant_turns(messages)
        if turns:
            return turns
    return [(prompt, response)]
