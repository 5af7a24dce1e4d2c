"""The order of the curation stages: the one list to edit to move a stage.

A stage may only come after the stages that add the columns it needs (``Stage.needs``);
:func:`build_stages` checks that, so a reordering that cannot work fails at once with the
stage and column named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.curation.stage import Stage, check_order
from jobs.curation.stages import (
    cluster,
    compose,
    decontaminate,
    dedup,
    embed,
    ifd,
    instructions,
    judge,
    read,
    relevance,
    score,
    select,
)

if TYPE_CHECKING:
    from jobs.curation.config import CurateConfig

STAGES = (
    read,  # files -> canonical rows; bad rows quarantined
    score,  # heuristic quality score; low scorers and stale rows dropped
    instructions,  # same instruction: exact duplicates, then conflicts
    embed,  # row vectors in an actor pool
    decontaminate,  # rows duplicating an evaluation set's row (filters.decontaminate)
    cluster,  # k-means; rows far from the reference set dropped
    relevance,  # responses that fit other instructions better: mismatched
    dedup,  # per cluster: MinHash near-duplicates, then semantic duplicates
    ifd,  # instruction-following difficulty and perplexity from a causal LM
    judge,  # an LLM judge's rating
    compose,  # the quality score from every signal that ran
    select,  # per-cluster quotas, diverse picks, coverage
)
"""The curation pipeline, in order: each module's ``build(cfg)`` declares its stage."""


def build_stages(cfg: CurateConfig) -> list[Stage]:
    """Every stage declared from ``cfg``, in pipeline order, checked.

    Builders do their driver-side checks here, before Ray starts: the inputs exist and are
    readable, the IFD model resolves, a remote judge has its API key.

    Raises:
        InputError: a missing input path or an unsupported format, a judge without a key.
        ModelNotFoundError: the IFD model cannot be found.
    """
    stages = [module.build(cfg) for module in STAGES]
    check_order(stages)
    return stages
