"""The embed stage of the curation job: the encoder actor pool and what each actor runs.

:func:`embed_pool` sizes the pool from the cluster's resources and the ``embed`` config
(:func:`embed_gpus`: a static model reserves no GPU);
:class:`Embedder` is the Ray Data actor that loads the encoder once and adds the
``embedding`` column (and, for the relevance signal, its instruction and response parts)
to each batch. :func:`jobs.curate_ops.vectors_of` reads those columns back as arrays.
"""

from __future__ import annotations

import os
import sys

import pyarrow as pa


def embed_pool(
    *,
    num_actors: int,
    num_cpus: float,
    num_gpus: float,
    cluster_cpus: int,
    cluster_gpus: float,
    node_cpus: int,
    blocks: int,
) -> tuple[int, int]:
    """How many embedding actors to start and how many torch threads each gets.

    ``num_actors`` 0 sizes the pool to the cluster: one actor per ``num_gpus`` GPUs, or on
    CPU one per ``num_cpus`` CPUs (1 by default), but never more actors than ``blocks``
    to embed: each actor loads the encoder, and one without a block would only hold its
    CPUs (or make the autoscaler start a node for it). Actors side by side beat threads in
    one actor on CPU (MiniLM on 2 cores: two 1-thread processes embed 36 texts/s, one
    2-thread process 31). A set ``num_actors`` keeps the older split: each actor gets
    ``num_cpus`` threads, or a node's cores divided among the actors.

    Returns:
        (actors, threads per actor); threads is 0 on GPU (torch's own default).
    """
    work = max(1, blocks)
    if num_gpus > 0:
        return num_actors or min(work, max(1, int(cluster_gpus // num_gpus))), 0
    if num_actors:
        return num_actors, int(num_cpus) or max(1, node_cpus // num_actors)
    threads = max(1, int(num_cpus))
    return min(work, max(1, cluster_cpus // threads)), threads


def embed_gpus(model: str, num_gpus: float) -> float:
    """GPUs each embedding actor reserves: ``embed.num_gpus``, but none for a static model.

    A static (model2vec) model is a tokenizer and a table lookup, so a GPU would sit idle
    (and on an autoscaling cluster, a GPU node would start for nothing).

    Args:
        model: ``embed.model``.
        num_gpus: ``embed.num_gpus``.
    """
    from quality.embeddings import is_static_model

    return 0.0 if is_static_model(model) else num_gpus


class Embedder:
    """Ray Data actor: loads the encoder once and embeds each batch's rows.

    Adds ``embedding`` (the row's vector, see :func:`quality.embeddings.row_vectors`) and,
    with ``parts``, the ``instruction_embedding`` and ``response_embedding`` it is made of,
    for the relevance signal.
    """

    def __init__(
        self,
        model: str,
        device: str,
        batch_size: int,
        max_length: int,
        threads: int,
        parts: bool = False,
    ) -> None:
        from quality.embeddings import load_encoder

        if device == "cpu" and threads > 0:
            os.environ["OMP_NUM_THREADS"] = str(threads)
        self.encoder = load_encoder(
            model, device=device, batch_size=batch_size, max_length=max_length
        )
        # Only an encoder that runs torch imports it (a static or hashing one does not);
        # Ray sets OMP_NUM_THREADS to the actor's CPU count, and torch must be told too.
        if device == "cpu" and threads > 0 and "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
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
