"""instructions: rows grouped by normalized instruction; exact duplicates, then conflicts
(the same instruction with answers that disagree). Each group keeps its row with the best
composed quality score; a conflict no signal decides is flagged in ``detail``.

Rows the relevance stage found mismatched (the ``mismatch`` column) are decided here,
beside their instruction's other answers: in a group with a fitting answer they rank last,
so a fitting answer is kept and the mismatched one goes as its conflict (or duplicate);
every mismatched row left is then dropped as ``mismatched``.

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
    from jobs.curation.stages.relevance import defers_mismatch

    return Stage(
        name="instructions",
        process=resolve_instructions,
        group_by="instruction_key",
        whole_buckets=True,
        needs=("exact_key", "instruction_key", *(("mismatch",) if defers_mismatch(cfg) else ())),
        enabled=cfg.dedup.exact or cfg.conflicts.enabled,
        kwargs=dict(
            exact=cfg.dedup.exact,
            conflicts=cfg.conflicts.enabled,
            agree_threshold=cfg.conflicts.agree_threshold,
            shingle_size=cfg.dedup.shingle_size,
            tolerance=cfg.conflicts.indistinguishable_tolerance,
        ),
    )


def _rank(score: float | None, row_id: str, mismatch: str | None = None) -> tuple:
    """Sort key of the best row first: a fitting answer before a mismatched one, then
    higher score, then smaller id; no score last."""
    return (
        mismatch is not None,
        math.inf if score is None or math.isnan(score) else -score,
        row_id,
    )


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
    A conflict whose answers' scores are within ``tolerance`` says so in ``detail``. With
    a ``mismatch`` column, mismatched rows rank after fitting ones and those no group
    decided are dropped as ``mismatched`` at the end.
    """
    from quality.conflicts import conflict_detail, mismatched_conflict_detail
    from quality.conflicts import resolve_instruction_group as resolve

    v = Verdicts(table)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(table["instruction_key"].to_pylist()):
        if v.columns["status"][i] == "active":
            groups[key].append(i)
    ids = table["id"].to_pylist()
    scores = v.columns["quality"]
    exact_keys = table["exact_key"].to_pylist() if exact else None
    mismatch = (
        table["mismatch"].to_pylist()
        if "mismatch" in table.column_names
        else [None] * table.num_rows
    )
    responses = None
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda i: _rank(scores[i], ids[i], mismatch[i]))  # the best row first
        alive = members
        if exact_keys is not None:
            kept_by_key: dict[str, int] = {}
            alive = []
            for i in members:
                kept = kept_by_key.setdefault(exact_keys[i], i)
                if kept == i:
                    alive.append(i)
                elif mismatch[kept] is not None:
                    # No fitting copy (a fitting one would rank first): the copies go as
                    # mismatched like the row they copy, not as duplicates of a row dropped.
                    v.drop(i, "mismatched", mismatch[i] or mismatch[kept])
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
        fits = np.array([mismatch[i] is None for i in alive])
        if not fits.any():
            continue  # no answer fits: each is dropped as mismatched below
        # A mismatched answer ranks last (NaN), after a fitting one even without a score.
        ranking = np.where(fits, np.nan_to_num(group_scores, nan=-1e300), np.nan)
        dup_of, conflict_with = resolve(
            [responses[i] for i in alive],
            ranking,
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
                detail = (
                    mismatched_conflict_detail(mismatch[i])
                    if mismatch[i] is not None
                    else conflict_detail(
                        group_scores[j], group_scores[conflict_with[j]], tolerance=tolerance
                    )
                )
                v.drop(i, "conflict", detail, kept_instead=ids[kept])
    for i, reason in enumerate(mismatch):
        if reason is not None and v.columns["status"][i] == "active":
            v.drop(i, "mismatched", reason)
    out = v.table()
    return out.drop_columns(["mismatch"]) if "mismatch" in out.column_names else out
