"""decontaminate: rows that duplicate a row of an evaluation set are dropped as
``contaminated``, with ``duplicate_of`` naming the evaluation row (``FILE:LINE``).

The evaluation sets (``filters.decontaminate``) are small: the driver reads them, embeds
them with the run's encoder and indexes them once (``prepare``); every batch is then
looked up against that index (:mod:`quality.decontaminate`) with dedup's switches and
thresholds. The stage runs right after embed, so a contaminated row never survives as
the kept row of a duplicate group or takes a place in the selection.
"""

from __future__ import annotations

from functools import partial
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from jobs.curation.batches import vectors_of
from jobs.curation.stage import DataView, Plan, Stage, Verdicts
from quality import schema

if TYPE_CHECKING:
    from jobs.curation.config import CurateConfig


def build(cfg: CurateConfig) -> Stage:
    """The stage, off unless ``filters.decontaminate`` names evaluation files.

    Raises:
        InputError: an evaluation file does not exist or has an unsupported format.
    """
    files = cfg.filters.decontaminate
    d = cfg.dedup
    if files:
        from infra.errors import InputError
        from quality.inputs import discover

        try:
            discover(list(files))
        except InputError as exc:
            raise InputError(f"filters.decontaminate: {exc}") from exc
    return Stage(
        name="decontaminate",
        process=drop_contaminated,
        batch_size=2_000,
        needs=("exact_key", "embedding") if d.semantic else ("exact_key",),
        enabled=bool(files),
        prepare=partial(
            index_eval_sets,
            files=files,
            model=cfg.embed.model,
            embed_batch_size=cfg.embed.batch_size,
            embed_max_length=cfg.embed.max_length,
            fuzzy_threshold=d.fuzzy_threshold if d.fuzzy else None,
            semantic=d.semantic,
            num_perm=d.num_perm,
            shingle_size=d.shingle_size,
        ),
        kwargs=dict(
            fuzzy_threshold=d.fuzzy_threshold if d.fuzzy else None,
            semantic_threshold=cfg.semantic_threshold if d.semantic else None,
        ),
    )


def index_eval_sets(
    view: DataView,
    *,
    files: tuple[str, ...],
    model: str,
    embed_batch_size: int,
    embed_max_length: int,
    fuzzy_threshold: float | None,
    semantic: bool,
    num_perm: int,
    shingle_size: int,
) -> Plan:
    """Read, embed and index the evaluation rows on the driver.

    Raises:
        InputError: the evaluation files hold no readable row.
    """
    from infra import storage
    from infra.errors import InputError
    from quality.decontaminate import build_index
    from quality.readers import read_all

    rows = [r for r in read_all(list(files)) if r["status"] == schema.ACTIVE]
    if not rows:
        raise InputError(
            f"filters.decontaminate: {', '.join(files)} hold no readable row; give the "
            "evaluation sets in a format curate reads (JSONL with messages, alpaca...)"
        )
    prompts, responses = [r["prompt"] for r in rows], [r["response"] for r in rows]
    vectors = None
    if semantic:
        from quality.embeddings import load_encoder, row_vectors

        encoder = load_encoder(model, batch_size=embed_batch_size, max_length=embed_max_length)
        vectors = row_vectors(encoder, prompts, responses)[0]
    # "heldout.jsonl:12" (JSONL line) or "heldout.json#3" (array index): the row's source
    # without its directory, which no ledger id is.
    labels = [PurePosixPath(storage.name_of(r["source"])).name for r in rows]
    index = build_index(
        labels,
        prompts,
        responses,
        vectors=vectors,
        fuzzy_threshold=fuzzy_threshold,
        num_perm=num_perm,
        shingle_size=shingle_size,
    )
    return Plan(kwargs={"index": index})


def drop_contaminated(
    batch: pa.Table,
    *,
    index: Any,
    fuzzy_threshold: float | None,
    semantic_threshold: float | None,
) -> pa.Table:
    """Drop the active rows of a batch that duplicate an evaluation row."""
    from quality.decontaminate import find_contaminated

    v = Verdicts(batch)
    active = v.active()
    if not active:
        return v.table()
    prompts, responses = batch["prompt"].to_pylist(), batch["response"].to_pylist()
    vectors = None
    if semantic_threshold is not None and "embedding" in batch.column_names:
        vectors = vectors_of(batch)[np.asarray(active)]
    found = find_contaminated(
        index,
        [prompts[i] for i in active],
        [responses[i] for i in active],
        vectors=vectors,
        fuzzy_threshold=fuzzy_threshold,
        semantic_threshold=semantic_threshold,
    )
    for i, match in zip(active, found, strict=True):
        if match is not None:
            v.drop(
                i,
                "contaminated",
                match.describe(fuzzy_threshold or 0.0, semantic_threshold or 0.0),
                duplicate_of=match.eval_row,
            )
    return v.table()
