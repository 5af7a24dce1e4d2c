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
    cover,
    decontaminate,
    dedup,
    embed,
    ids,
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
    ids,  # an id more than one row holds becomes id@source in each of them
    score,  # the rules' score; low scorers and stale rows dropped
    embed,  # row vectors (and instruction / response parts) in an actor pool
    decontaminate,  # rows duplicating an evaluation set's row (filters.decontaminate)
    relevance,  # responses that fit other instructions better: mismatched
    ifd,  # instruction-following difficulty and perplexity from a causal LM (off by default)
    judge,  # an LLM judge's rating (off by default)
    compose,  # the quality score from every signal above: it decides every group below
    instructions,  # same instruction: exact duplicates, then conflicts
    cluster,  # k-means; rows far from the reference set dropped
    dedup,  # per cluster: MinHash near-duplicates, then semantic duplicates
    cover,  # per cluster: rows ranked by quality-weighted coverage
    select,  # rankings cut at each cluster's quota; coverage against a random pick
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
