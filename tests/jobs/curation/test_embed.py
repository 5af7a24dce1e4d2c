"""Actor pools: how many actors a stage's pool starts and how many threads each gets;
the embed stage's actor."""

from __future__ import annotations

from jobs.curation.runner import pool_size
from jobs.curation.stage import Resources


def pool(num_actors=0, num_cpus=0, num_gpus=0, **cluster) -> tuple[int, int]:
    """The pool of the embed stage's defaults (embed.num_actors=0...) on an 8-CPU cluster."""
    facts = {**dict(cluster_cpus=8, cluster_gpus=0, node_cpus=4, blocks=100), **cluster}
    return pool_size(Resources(cpus=num_cpus, gpus=num_gpus, actors=num_actors), **facts)


def test_the_default_embed_pool_is_one_single_thread_actor_per_cluster_cpu():
    assert pool() == (8, 1)
    assert pool(num_cpus=2) == (4, 2)  # two threads each, as many actors as fit
    assert pool(cluster_cpus=1) == (1, 1)


def test_a_set_number_of_embed_actors_splits_a_node_between_them():
    assert pool(num_actors=1) == (1, 4)  # the whole largest node, as before
    assert pool(num_actors=3) == (3, 1)
    assert pool(num_actors=2, num_cpus=3) == (2, 3)


def test_on_gpus_the_embed_pool_has_one_actor_per_gpu_share():
    assert pool(num_gpus=1, cluster_gpus=4) == (4, 0)
    assert pool(num_gpus=0.5, cluster_gpus=2) == (4, 0)
    assert pool(num_gpus=1, cluster_gpus=0) == (1, 0)  # waits for the autoscaler's GPU node
    assert pool(num_gpus=1, num_actors=2, cluster_gpus=8) == (2, 0)


def test_a_default_pool_never_has_more_actors_than_blocks_to_embed():
    assert pool(cluster_cpus=136, blocks=10) == (10, 1)  # 126 idle encoders otherwise
    assert pool(num_gpus=1, cluster_gpus=8, blocks=3) == (3, 0)
    assert pool(blocks=0) == (1, 1)
    assert pool(num_actors=4, blocks=1) == (4, 1)  # a number the user set is kept


def test_the_embedder_adds_row_vectors_with_their_parts_aligned_to_the_rows():
    import numpy as np
    import pyarrow as pa

    from jobs.curation.batches import vectors_of
    from jobs.curation.stages.embed import Embedder
    from quality.embeddings import load_encoder

    batch = pa.table(
        {
            "id": ["a", "b", "c"],
            "prompt": ["Name a primary colour.", "What is 2 + 2?", "Translate 'cat' to German."],
            "response": ["Red.", "4", "Katze"],
        }
    )
    kwargs = dict(model="hashing", device="cpu", batch_size=8, max_length=64)
    out = Embedder(**kwargs, parts=True)(batch)
    assert out["id"].to_pylist() == ["a", "b", "c"]
    encoder = load_encoder("hashing")
    for i in range(3):
        own = encoder.encode([batch["prompt"][i].as_py(), batch["response"][i].as_py()])
        # The parts are stored as float16 (only relevance margins read them): 3 digits.
        assert np.allclose(vectors_of(out, "instruction_embedding")[i], own[0], atol=1e-3)
        assert np.allclose(vectors_of(out, "response_embedding")[i], own[1], atol=1e-3)
        expected = (own[0] + own[1]) / np.linalg.norm(own[0] + own[1])
        assert np.allclose(vectors_of(out)[i], expected, atol=1e-6)
    without_parts = Embedder(**kwargs)(batch)
    assert "instruction_embedding" not in without_parts.column_names
    assert np.allclose(vectors_of(without_parts), vectors_of(out))
    assert out.schema.field("response_embedding").type.value_type == pa.float16()
    assert out.schema.field("embedding").type.value_type == pa.float32()


def test_a_static_model_reserves_no_gpu_and_minilm_keeps_its_gpus(tmp_path):
    from jobs.curation.config import CurateConfig, EmbedConfig
    from jobs.curation.stages import embed

    (tmp_path / "config.json").write_text('{"model_type": "model2vec"}')

    def gpus(model: str, num_gpus: float) -> float:
        stage = embed.build(CurateConfig(embed=EmbedConfig(model=model, num_gpus=num_gpus)))
        return stage.resources.gpus

    assert gpus(str(tmp_path), 0.5) == 0.0  # any model2vec directory
    assert gpus("default", 1.0) == 1.0 and gpus("default", 0.0) == 0.0
    assert pool(num_gpus=gpus(str(tmp_path), 1.0), cluster_gpus=4) == (8, 1)  # CPU pool
