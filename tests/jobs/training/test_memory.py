"""Out-of-memory recovery: the next batch shape, and telling an OOM from other failures."""

from __future__ import annotations

import pytest

from jobs.training.memory import WorkerOutOfMemory, is_out_of_memory, smaller_batch


@pytest.mark.parametrize(
    ("batch", "accumulation", "expected"),
    [(8, 1, (4, 2)), (4, 2, (2, 4)), (2, 1, (1, 2)), (6, 1, (3, 2)), (3, 1, (1, 3)), (1, 4, None)],
)
def test_the_batch_halves_and_the_effective_batch_stays(batch, accumulation, expected):
    smaller = smaller_batch(batch, accumulation)
    assert smaller == expected
    if smaller:
        assert smaller[0] * smaller[1] == batch * accumulation


def test_out_of_memory_is_recognized_inside_ray_trains_error():
    import ray.exceptions
    import torch
    from ray.train.v2.api.exceptions import WorkerGroupError

    oom = WorkerGroupError("1 worker failed", {0: WorkerOutOfMemory("rank 0 ran out of memory")})
    assert is_out_of_memory(oom)
    try:
        try:
            raise torch.OutOfMemoryError("CUDA out of memory")
        except torch.OutOfMemoryError as exc:
            raise RuntimeError("wrapped") from exc
    except RuntimeError as wrapped:
        assert is_out_of_memory(wrapped)
    killed = ray.exceptions.OutOfMemoryError(
        "Task was killed due to the node running low on memory"
    )
    assert is_out_of_memory(WorkerGroupError("1 worker failed", {1: killed}))  # Ray's monitor
    assert is_out_of_memory(MemoryError())  # the host
    other = WorkerGroupError("1 worker failed", {0: ValueError("bad row"), 1: RuntimeError("x")})
    assert not is_out_of_memory(other)
    assert not is_out_of_memory(None)
