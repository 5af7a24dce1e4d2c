"""Out-of-memory recovery: retry from the last checkpoint with half the batch.

A worker that runs out of memory (``torch.OutOfMemoryError`` on a GPU, ``MemoryError`` on
the host) raises :class:`WorkerOutOfMemory`; Ray Train stops the worker group and the
driver (:mod:`jobs.training.train`) starts it again from the last checkpoint with half the
per-device batch and twice the gradient accumulation, so the effective batch, the number
of optimizer steps and the learning-rate schedule stay the same. It halves down to batch 1
and says what it did; Ray's memory monitor killing a worker counts too. These retries do
not use up ``scaling.max_failures``, which keeps covering lost workers and other errors.
"""

from __future__ import annotations

import re
from typing import Any

from transformers import TrainerCallback


class WorkerOutOfMemory(RuntimeError):
    """A training worker ran out of memory (raised in place of the original error)."""


def smaller_batch(batch_size: int, accumulation: int) -> tuple[int, int] | None:
    """The next per-device batch and gradient accumulation after an out-of-memory error.

    Halves the batch (its largest divisor not above half, so that batch x accumulation
    stays exactly the same for odd sizes too) and scales the accumulation up to match.

    Returns:
        (batch, accumulation), or None at batch 1: there is nothing left to halve.
    """
    if batch_size <= 1:
        return None
    smaller = max(d for d in range(1, batch_size // 2 + 1) if batch_size % d == 0)
    return smaller, accumulation * (batch_size // smaller)


def out_of_memory_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean "out of memory" in a worker."""
    import torch

    return (torch.OutOfMemoryError, MemoryError)


def is_out_of_memory(error: BaseException | None) -> bool:
    """Whether a training failure was an out-of-memory error, on any worker.

    Looks through Ray Train's ``WorkerGroupError`` (one error per failed worker) and each
    error's causes, for :class:`WorkerOutOfMemory`, the original OOM types, or Ray's own
    ``OutOfMemoryError`` (its memory monitor killed the worker).
    """
    import ray.exceptions

    kinds = (WorkerOutOfMemory, ray.exceptions.OutOfMemoryError, *out_of_memory_errors())
    seen: set[int] = set()
    todo = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kinds) or type(current).__name__ == WorkerOutOfMemory.__name__:
            return True
        todo.extend(getattr(current, "worker_failures", {}).values())
        todo.extend([current.__cause__, current.__context__, getattr(current, "cause", None)])
    return False


def recovery_record(
    exc: BaseException, batch: int, accumulation: int, smaller: tuple[int, int]
) -> dict:
    """The record of one out-of-memory retry, for finesift.json."""
    found = re.search(r"out of memory at step (\d+)", str(exc))
    return {
        "step": int(found.group(1)) if found else None,
        "from": {"batch_size": batch, "gradient_accumulation": accumulation},
        "to": {"batch_size": smaller[0], "gradient_accumulation": smaller[1]},
    }


def describe_recovery(recovery: dict[str, Any]) -> str:
    """One out-of-memory retry in plain words."""
    before, after = recovery["from"], recovery["to"]
    where = f" at step {recovery['step']}" if recovery.get("step") is not None else ""
    return (
        f"ran out of memory{where} with batch {before['batch_size']} x accumulation "
        f"{before['gradient_accumulation']}; retried from the last checkpoint with batch "
        f"{after['batch_size']} x accumulation {after['gradient_accumulation']} "
        "(same effective batch)"
    )


class InjectedOutOfMemory(TrainerCallback):
    """Test and chaos-drill hook: raise ``torch.OutOfMemoryError`` once, at ``step``.

    The driver arms it for the first attempt only, so the retry (with the smaller batch)
    goes through.
    """

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Raise as step ``step`` starts, as a CUDA allocator would in its forward pass."""
        import torch

        if state.global_step + 1 == self.step:
            raise torch.OutOfMemoryError(
                f"finesift: injected out-of-memory error at step {self.step} "
                f"(batch {args.per_device_train_batch_size})"
            )
