"""The embed pool: how many encoder actors start, and how many threads each gets."""

from __future__ import annotations

from jobs.curate_embed import embed_pool


def pool(**settings) -> tuple[int, int]:
    cluster = dict(cluster_cpus=8, cluster_gpus=0, node_cpus=4)
    knobs = dict(num_actors=0, num_cpus=0, num_gpus=0)
    return embed_pool(**{**cluster, **knobs, **settings})


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
