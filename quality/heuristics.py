"""Rule-based quality scoring of (prompt, response) rows, datatrove style.

Each rule is a plain function ``(prompt, response, threshold) -> failed?`` (see
:mod:`quality.rules`) registered in :data:`RULES` under its name, which is also the reason
code a dropped row carries. A row's score blends cheap quality signals (length adequacy,
lexical diversity, repetition, completeness, novelty) into a base in [0.55, 1] and
multiplies it by ``1 - weight`` for every failed rule; severe rules weigh more than 0.5, so
failing one drops the row at the default ``min_score`` of 0.5 on its own, while rows
failing nothing always pass it.

Importable without Ray; pure Python on strings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from quality import prompts, textstats
from quality.rules import (
    empty_response,
    junk_characters,
    language_mismatch,
    markup_mojibake,
    ngram_repetition,
    repeats_instruction,
    short_response,
    truncated_response,
    unclear_instruction,
    unvisitable_url,
)
from quality.textstats import words

_ENOUGH_WORDS = 60  # a response this long is long enough for any task (base_score)
_CLEAN_END = frozenset(".!?…\"'”’)]}>`*|;")


# --- registry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One named rule; its name is the reason code of the rows it drops."""

    name: str
    description: str
    threshold: float
    weight: float
    """Penalty in [0, 1]: a failing row's score is multiplied by 1 - weight; 0 disables."""
    check: Callable[[str, str, float], bool]


def _rule(check: Callable[..., bool], weight: float) -> Rule:
    doc = " ".join((check.__doc__ or "").replace("``", "").split())
    default = check.__defaults__[0]  # type: ignore[index]
    return Rule(check.__name__, doc, float(default), weight, check)


# Severe rules weigh > 0.5 so that failing one drops the row at min_score 0.5.
RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        _rule(empty_response, 0.9),
        _rule(unclear_instruction, 0.6),
        _rule(short_response, 0.6),  # no answer to the task: drop
        _rule(truncated_response, 0.6),
        _rule(repeats_instruction, 0.7),
        _rule(ngram_repetition, 0.7),
        _rule(junk_characters, 0.8),
        _rule(markup_mojibake, 0.6),
        _rule(unvisitable_url, 0.6),  # an invented source is a hallucination: drop
        _rule(language_mismatch, 0.6),
    )
}


@dataclass(frozen=True)
class RuleResult:
    """The verdict on one row."""

    score: float
    """Quality in [0, 1]."""
    failed: tuple[str, ...]
    """Names of the failed rules, in registry order."""
    reason: str | None
    """The failed rule with the highest weight; None when no rule failed."""


def describe_rules() -> list[dict]:
    """Every rule's name, description, default threshold and weight, in registry order."""
    return [
        {"name": r.name, "description": r.description, "threshold": r.threshold, "weight": r.weight}
        for r in RULES.values()
    ]


def _resolve(
    thresholds: Mapping[str, float] | None, weights: Mapping[str, float] | None
) -> list[tuple[Rule, float, float]]:
    """Active rules with their effective (threshold, weight); rejects unknown names."""
    for label, given in (("thresholds", thresholds), ("weights", weights)):
        unknown = sorted(set(given or {}) - RULES.keys())
        if unknown:
            raise ValueError(
                f"unknown heuristic rule(s) in {label}: {', '.join(unknown)}; "
                f"known rules: {', '.join(RULES)}"
            )
    active = []
    for name, rule in RULES.items():
        weight = float((weights or {}).get(name, rule.weight))
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight of rule {name} must be in [0, 1], got {weight}")
        if weight > 0.0:
            active.append((rule, float((thresholds or {}).get(name, rule.threshold)), weight))
    return active


def base_score(prompt: str, response: str) -> float:
    """The continuous quality signal of a row before rule penalties, in [0.55, 1].

    Blends length adequacy for the task (saturating log length; a short-answer task is
    satisfied by one word), lexical diversity, absence of repetition, a clean ending and
    novelty with respect to the prompt.
    """
    tokens = words(response)
    n = len(tokens)
    if n >= _ENOUGH_WORDS:  # adequate for any task: no need to read the task's cues
        length = 1.0
    else:
        p = prompts.task_cues(prompt)
        target = 1 if p.short_task and not p.long_task else _ENOUGH_WORDS
        length = min(1.0, math.log1p(n) / math.log1p(target))
    diversity = min(1.0, max(0.0, (textstats.lexical_diversity(tokens) - 0.6) / 0.3))
    repeat = 1.0 - min(1.0, textstats.repetition(response) / 0.4)
    novelty = 1.0 - prompts.instruction_containment(prompt, response)
    signal = (
        0.35 * length
        + 0.2 * diversity
        + 0.2 * repeat
        + 0.15 * _completeness(response)
        + 0.1 * novelty
    )
    return 0.55 + 0.45 * signal


def _completeness(response: str) -> float:
    """1 when the response ends cleanly (punctuation, a list item, code, a short answer)."""
    text = response.rstrip()
    if not text or text[-1] in _CLEAN_END or len(words(response)) < 5:
        return 1.0
    if textstats.is_list_item(text.rsplit("\n", 1)[-1]) or textstats.looks_like_code(text):
        return 1.0
    return 0.5


def ends_cleanly(response: str) -> bool:
    """Whether a response ends as a finished answer does (punctuation, a list item, code, a
    short answer); a cut-off answer usually does not (the composed score's completeness)."""
    return _completeness(response) == 1.0


def _evaluate(
    prompt: str, response: str, active: list[tuple[Rule, float, float]]
) -> tuple[float, list[str], str | None]:
    score = base_score(prompt, response)
    failed: list[str] = []
    reason, worst = None, -1.0
    for rule, threshold, weight in active:
        if rule.check(prompt, response, threshold):
            failed.append(rule.name)
            score *= 1.0 - weight
            if weight > worst:
                reason, worst = rule.name, weight
    return min(1.0, max(0.0, score)), failed, reason


def evaluate(
    prompt: str,
    response: str,
    *,
    thresholds: Mapping[str, float] | None = None,
    weights: Mapping[str, float] | None = None,
) -> RuleResult:
    """Score one row and name the rules it fails.

    Args:
        prompt: Everything before the final assistant turn, as plain text.
        response: The final assistant turn.
        thresholds: Per-rule threshold overrides by rule name.
        weights: Per-rule penalty overrides in [0, 1] by rule name; 0 disables a rule.

    Returns:
        The score in [0, 1], the failed rules and the reason (the heaviest failed rule).

    Raises:
        ValueError: A name in ``thresholds``/``weights`` is not a rule, or a weight is
            outside [0, 1].
    """
    score, failed, reason = _evaluate(prompt, response, _resolve(thresholds, weights))
    return RuleResult(score, tuple(failed), reason)


def evaluate_batch(
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    thresholds: Mapping[str, float] | None = None,
    weights: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, list[list[str]], list[str | None]]:
    """Score many rows; see :func:`evaluate`.

    Args:
        prompts: One prompt per row.
        responses: One response per row, aligned with ``prompts``.
        thresholds: Per-rule threshold overrides by rule name.
        weights: Per-rule penalty overrides in [0, 1] by rule name; 0 disables a rule.

    Returns:
        Scores (float64 array), failed rule names per row and the reason per row.

    Raises:
        ValueError: Unknown rule names, a weight outside [0, 1], or unaligned inputs.
    """
    if len(prompts) != len(responses):
        raise ValueError(f"got {len(prompts)} prompts but {len(responses)} responses")
    active = _resolve(thresholds, weights)
    scores = np.empty(len(prompts), dtype=np.float64)
    failed: list[list[str]] = []
    reasons: list[str | None] = []
    for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        scores[i], row_failed, reason = _evaluate(prompt or "", response or "", active)
        failed.append(row_failed)
        reasons.append(reason)
    return scores, failed, reasons


def evaluate_conversations(
    conversations: Sequence[Sequence[tuple[str, str]]],
    *,
    thresholds: Mapping[str, float] | None = None,
    weights: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, list[list[str]], list[str | None]]:
    """Score rows by every assistant turn: a conversation is as good as its worst answer.

    Each (prompt, response) pair (see :func:`quality.records.assistant_turns`) is scored as
    a row of its own; the row's score is the lowest turn score, its failed rules those
    failed by any turn (registry order) and its reason the heaviest of them. Training
    learns every assistant turn, so one empty or garbled answer spoils the row. A row with
    one turn scores exactly as :func:`evaluate_batch` scores it.

    Args:
        conversations: per row, its (prompt, response) pairs; at least one per row.
        thresholds: Per-rule threshold overrides by rule name.
        weights: Per-rule penalty overrides in [0, 1] by rule name; 0 disables a rule.

    Returns:
        Scores (float64 array), failed rule names per row and the reason per row.

    Raises:
        ValueError: Unknown rule names, a weight outside [0, 1], or a row without turns.
    """
    active = _resolve(thresholds, weights)
    weight_of = {rule.name: weight for rule, _, weight in active}
    order = {name: i for i, name in enumerate(RULES)}
    scores = np.empty(len(conversations), dtype=np.float64)
    failed: list[list[str]] = []
    reasons: list[str | None] = []
    for i, turns in enumerate(conversations):
        if not turns:
            raise ValueError(f"conversation {i} has no assistant turn to score")
        results = [_evaluate(prompt or "", response or "", active) for prompt, response in turns]
        scores[i] = min(score for score, _, _ in results)
        names = sorted({name for _, row_failed, _ in results for name in row_failed}, key=order.get)
        failed.append(names)
        reasons.append(max(names, key=lambda n: (weight_of[n], -order[n])) if names else None)
    return scores, failed, reasons
