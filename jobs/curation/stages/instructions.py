"""instructions: rows grouped by normalized instruction; exact duplicates, then conflicts
(the same instruction with answers that disagree)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from jobs.curation.batches import in_id_order
from jobs.curation.stage import Stage, Verdicts

if TYPE_CHECKING:
    from jobs.curation.config import CurateConfig


def build(cfg: CurateConfig) -> Stage:
    return Stage(
        name="instructions",
        process=resolve_instruction_group,
        group_by="instruction_key",
        skip_single_groups=True,
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


def resolve_instruction_group(
    group: pa.Table,
    *,
    exact: bool,
    conflicts: bool,
    agree_threshold: float,
    shingle_size: int,
    tolerance: float = 0.01,
) -> pa.Table:
    """One group of rows sharing a normalized instruction: exact duplicates, then conflicts.

    Each group keeps the row with the best composed quality score. A conflict whose answers
    no signal tells apart (scores within ``tolerance``) says so in ``detail``.
    """
    from quality.conflicts import conflict_detail
    from quality.conflicts import resolve_instruction_group as resolve
    from quality.dedup import exact_dedup

    group = in_id_order(group)
    v = Verdicts(group)
    n = len(v)
    if n < 2:
        return v.table()
    ids = group["id"].to_pylist()
    scores = np.asarray(v.columns["quality"], dtype=float)
    alive = np.arange(n)
    if exact:
        dup_of = exact_dedup(group["exact_key"].to_pylist(), scores, ids)
        for i in np.flatnonzero(dup_of >= 0):
            v.drop(
                int(i),
                "exact_duplicate",
                "same text after normalization",
                duplicate_of=ids[dup_of[i]],
            )
        alive = np.flatnonzero(dup_of < 0)
    if conflicts and len(alive) > 1:
        responses = group["response"].to_pylist()
        sub_ids = [ids[i] for i in alive]
        dup_of, conflict_with = resolve(
            [responses[i] for i in alive],
            scores[alive],
            sub_ids,
            agree_threshold=agree_threshold,
            shingle_size=shingle_size,
        )
        for j, i in enumerate(alive):
            if dup_of[j] >= 0:
                v.drop(
                    int(i),
                    "near_duplicate",
                    "same instruction, an answer that agrees",
                    duplicate_of=sub_ids[dup_of[j]],
                )
            elif conflict_with[j] >= 0:
                kept = alive[conflict_with[j]]
                v.drop(
                    int(i),
                    "conflict",
                    conflict_detail(scores[i], scores[kept], tolerance=tolerance),
                    kept_instead=sub_ids[conflict_with[j]],
                )
    return v.table()
