"""embed: sentence embeddings in an actor pool (GPUs when ``embed.num_gpus`` > 0).

Each row is embedded once: instruction and response in one encoder pass, the row vector
their normalized sum (:func:`quality.embeddings.row_vectors`). With the relevance signal
on, the two part vectors are kept as columns until the relevance stage has used them.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from jobs.curation.batches import embedding_column
from jobs.curation.stage import Resources, Stage

if TYPE_CHECKING:
    from jobs.curation.config import CurateConfig

PART_COLUMNS = ("instruction_embedding", "response_embedding")


STATIC_BATCH_ROWS = 2_048
"""Rows per call of a static encoder (at least; embed.batch_size when larger)."""


def build(cfg: CurateConfig) -> Stage:
    """A static model is distilled now, on the driver, if it is not cached yet: otherwise
    the first actor would distil it (minutes) while the others wait holding their CPUs.
    Any other embed.model is resolved now, so a missing model is one line before Ray
    starts rather than an error in every embedding actor.

    Raises:
        ModelNotFoundError: embed.model cannot be found.
    """
    from infra.errors import ModelNotFoundError
    from infra.models import resolve_encoder_path
    from quality.embeddings import is_static_model

    e = cfg.embed
    static = is_static_model(e.model)
    if static and e.model == "static":
        prepare_static_model()
    elif e.model != "hashing":
        try:
            resolve_encoder_path(e.model)
        except ModelNotFoundError as err:
            raise ModelNotFoundError(f"embed.model={e.model}: {err}") from None
    # A static model is a tokenizer and a table lookup: a GPU would sit idle (and on an
    # autoscaling cluster a GPU node would start for nothing).
    gpus = 0.0 if static else e.num_gpus
    gpu = gpus > 0
    # A static model is a table lookup: at 128 rows a call it would wait on Ray's cost per
    # batch more than it works (100k rows: embed stage 23-38 s at 128, see BENCHMARKS.md).
    batch_size = max(e.batch_size, STATIC_BATCH_ROWS) if static else e.batch_size
    return Stage(
        name="embed",
        decides=False,
        process=Embedder,
        batch_size=batch_size,
        # An actor pool hands out whole blocks, and a groupby leaves a few big ones (one
        # per shuffle partition): cut them so that every actor gets a share.
        block_rows=4 * batch_size,
        resources=Resources(cpus=e.num_cpus, gpus=gpus, actors=e.num_actors),
        adds=("embedding", *(PART_COLUMNS if cfg.relevance_runs else ())),
        kwargs=dict(
            model=e.model,
            device="cuda" if gpu else "cpu",
            batch_size=batch_size,
            max_length=e.max_length,
            parts=cfg.relevance_runs,
        ),
    )


def prepare_static_model() -> None:
    """Distil the bundled encoder's static model once (cached under $FINESIFT_HOME)."""
    from rich.console import Console

    from infra.static_model import cache_problem, ensure_static_model, static_model_dir

    problem = cache_problem(static_model_dir())
    if problem is not None:
        console = Console(stderr=True)
        console.print(
            f"[bold cyan]finesift curate[/] static embedder {problem}: distilling "
            "all-MiniLM-L6-v2 once (a few minutes; `finesift models --prepare` does it ahead)"
        )
        ensure_static_model(progress=console.print)


class Embedder:
    """Ray Data actor: loads the encoder once and embeds each batch's rows.

    Adds ``embedding`` (the row's vector, see :func:`quality.embeddings.row_vectors`) and,
    with ``parts``, the ``instruction_embedding`` and ``response_embedding`` it is made of.
    """

    def __init__(
        self, model: str, device: str, batch_size: int, max_length: int, parts: bool = False
    ) -> None:
        from infra.ray_env import assigned_cpus
        from quality.embeddings import load_encoder

        threads = assigned_cpus()
        if device == "cpu" and threads > 0:
            os.environ["OMP_NUM_THREADS"] = str(threads)
            os.environ.setdefault("RAYON_NUM_THREADS", str(threads))  # tokenizers' own pool
        self.encoder = load_encoder(
            model, device=device, batch_size=batch_size, max_length=max_length
        )
        # Only an encoder that runs torch imports it (a static or hashing one does not);
        # Ray sets OMP_NUM_THREADS to the actor's CPU count, and torch must be told too.
        if device == "cpu" and threads > 0 and "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
        self.parts = parts

    def __call__(self, batch: pa.Table) -> pa.Table:
        from quality.embeddings import row_vectors

        row, instruction, response = row_vectors(
            self.encoder, batch["prompt"].to_pylist(), batch["response"].to_pylist()
        )
        out = batch.append_column("embedding", embedding_column(row))
        if self.parts:
            # Only the relevance margins read the parts (thresholds of -0.2 and -0.8 on
            # cosines): float16 is precise enough and halves two of the three vectors
            # held from here to the relevance stage, the run's largest columns.
            out = out.append_column(
                "instruction_embedding", embedding_column(instruction, np.float16)
            ).append_column("response_embedding", embedding_column(response, np.float16))
        return out
