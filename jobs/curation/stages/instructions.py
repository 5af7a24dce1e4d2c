"""instructions: rows grouped by normalized instruction; exact duplicates, then conflicts
(the same instruction with answers that disagree). Each group keeps its row with the best
composed quality score; a conflict no signal decides is flagged in ``detail``.

Most instructions are unique, so the stage takes whole hash buckets of rows and finds the
groups itself: Python lists over a bucket, not an Arrow table per group.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from jobs.curation.stage import Stage, Verdicts

if TYPE_CHECKING:
    from jobs.curation.config import CurateConfig


def build(cfg: CurateConfig) -> Stage:
    return Stage(
        name="instructions",
        process=resolve_instructions,
        group_by="instruction_key",
        whole_buckets=True,
        needs=("exact_key", "instruction_key"),
        enabled=cfg.dedup.exact or cfg.conflicts.enabled,
        kwargs=dict(
            exact=cfg.dedup.exact,
            conflicts=cfg.conflicts.enabled,
            agree_threshold=cfg.conflicts.agree_threshold,
            shingle_size=cfg.dedup.shingle_size,
            tolerance=cfg.conflicts.indistinguishable_tolerance,
        ),
    )


def _rank(score: float | None, row_id: str) -> tuple[float, str]:
    """Sort key of the best row first: higher score, then smaller id; no score last."""
    return (math.inf if score is None or math.isnan(score) else -score, row_id)


def resolve_instructions(
    table: pa.Table,
    *,
    exact: bool,
    conflicts: bool,
    agree_threshold: float,
    shingle_size: int,
    tolerance: float = 0.01,
) -> pa.Table:
    """Every group of rows sharing a normalized instruction in ``table``: exact
    duplicates, then conflicts.

    Each group keeps the row with the best composed quality score (ties: the smaller id).
    A conflict whose answers' scores are within ``tolerance`` says so in ``detail``.
    """
    from quality.conflicts import conflict_detail
    from quality.conflicts import resolve_instruction_group as resolve

    v = Verdicts(table)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(table["instruction_key"].to_pylist()):
        if v.columns["status"][i] == "active":
            groups[key].append(i)
    ids = table["id"].to_pylist()
    scores = v.columns["quality"]
    exact_keys = table["exact_key"].to_pylist() if exact else None
    responses = None
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda i: _rank(scores[i], ids[i]))  # the best row first
        alive = members
        if exact_keys is not None:
            kept_by_key: dict[str, int] = {}
            alive = []
            for i in members:
                kept = kept_by_key.setdefault(exact_keys[i], i)
                if kept == i:
                    alive.append(i)
                else:
                    v.drop(
                        i,
                        "exact_duplicate",
                        "same text after normalization",
                        duplicate_of=ids[kept],
                    )
        if not conflicts or len(alive) < 2:
            continue
        if responses is None:
            responses = table["response"].to_pylist()
        alive.sort(key=lambda i: ids[i])  # the conflict module breaks ties by position
        group_scores = np.array([np.nan if scores[i] is None else scores[i] for i in alive])
        dup_of, conflict_with = resolve(
            [responses[i] for i in alive],
            group_scores,
            [ids[i] for i in alive],
            agree_threshold=agree_threshold,
            shingle_size=shingle_size,
        )
        for j, i in enumerate(alive):
            if dup_of[j] >= 0:
                v.drop(
                    i,
                    "near_duplicate",
                    "same instruction, an answer that agrees",
                    duplicate_of=ids[alive[dup_of[j]]],
                )
            elif conflict_with[j] >= 0:
                kept = alive[conflict_with[j]]
                v.drop(
                    i,
                    "conflict",
                    conflict_detail(
                        group_scores[j], group_scores[conflict_with[j]], tolerance=tolerance
                    ),
                    kept_instead=ids[kept],
                )
    return v.table()
