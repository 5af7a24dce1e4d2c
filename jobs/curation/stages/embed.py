"""embed: sentence embeddings in an actor pool (GPUs when ``embed.num_gpus`` > 0).

Each row is embedded once: instruction and response in one encoder pass, the row vector
their normalized sum (:func:`quality.embeddings.row_vectors`). With the relevance signal
on, the two part vectors are kept as columns until the relevance stage has used them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pyarrow as pa

from jobs.curation.stage import Resources, Stage

if TYPE_CHECKING:
    from jobs.curation.config import CurateConfig

PART_COLUMNS = ("instruction_embedding", "response_embedding")


def build(cfg: CurateConfig) -> Stage:
    """Raises ModelNotFoundError now, on the driver, when embed.model cannot be found
    (rather than in every embedding actor once Ray has started)."""
    e = cfg.embed
    if e.model != "hashing":
        from infra.errors import ModelNotFoundError
        from quality.embeddings import resolve_encoder_path

        try:
            resolve_encoder_path(e.model)
        except ModelNotFoundError as err:
            raise ModelNotFoundError(f"embed.model={e.model}: {err}") from None
    gpu = e.num_gpus > 0
    return Stage(
        name="embed",
        process=Embedder,
        batch_size=e.batch_size,
        # An actor pool hands out whole blocks, and a groupby leaves a few big ones (one
        # per shuffle partition): cut them so that every actor gets a share.
        block_rows=4 * e.batch_size,
        resources=Resources(cpus=e.num_cpus, gpus=e.num_gpus, actors=e.num_actors),
        adds=("embedding", *(PART_COLUMNS if cfg.relevance_runs else ())),
        kwargs=dict(
            model=e.model,
            device="cuda" if gpu else "cpu",
            batch_size=e.batch_size,
            max_length=e.max_length,
            parts=cfg.relevance_runs,
        ),
    )


class Embedder:
    """Ray Data actor: loads the encoder once and embeds each batch's rows.

    Adds ``embedding`` (the row's vector, see :func:`quality.embeddings.row_vectors`) and,
    with ``parts``, the ``instruction_embedding`` and ``response_embedding`` it is made of.
    """

    def __init__(
        self, model: str, device: str, batch_size: int, max_length: int, parts: bool = False
    ) -> None:
        import torch

        from infra.ray_env import assigned_cpus
        from quality.embeddings import load_encoder

        threads = assigned_cpus()
        if device == "cpu" and threads > 0:
            # Ray sets OMP_NUM_THREADS to the actor's CPU count; torch must be told too.
            torch.set_num_threads(threads)
            os.environ["OMP_NUM_THREADS"] = str(threads)
        self.encoder = load_encoder(
            model, device=device, batch_size=batch_size, max_length=max_length
        )
        self.parts = parts

    def __call__(self, batch: pa.Table) -> pa.Table:
        from ray.data.extensions import ArrowTensorArray

        from quality.embeddings import row_vectors

        row, instruction, response = row_vectors(
            self.encoder, batch["prompt"].to_pylist(), batch["response"].to_pylist()
        )
        out = batch.append_column("embedding", ArrowTensorArray.from_numpy(row))
        if self.parts:
            out = out.append_column(
                "instruction_embedding", ArrowTensorArray.from_numpy(instruction)
            ).append_column("response_embedding", ArrowTensorArray.from_numpy(response))
        return out
