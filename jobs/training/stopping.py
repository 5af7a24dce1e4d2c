"""Best checkpoint and early stop, both decided by the held-out loss.

Every checkpoint is evaluated on the held-out rows, so Ray Train can rank checkpoints by
``eval_loss`` (``CheckpointConfig(checkpoint_score_attribute="eval_loss", "min")``) and the
adapter published is the best one, not the last. An evaluation that reaches a new best
also forces a checkpoint, so the best model is always one Ray Train holds. After
``early_stop.patience`` evaluations in a row without beating the best by more than
``early_stop.min_delta``, the run stops: the held-out loss has turned, and training longer
on this data only makes the adapter worse.

The decision is replayed from the Trainer's log history, so it survives a resume, and
rank 0's decision is broadcast so every DDP rank stops (and checkpoints) at the same step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from transformers import TrainerCallback


@dataclass(frozen=True)
class Progress:
    """The held-out losses of a run so far, replayed."""

    best_step: int | None = None
    best_loss: float | None = None
    last_step: int | None = None
    last_loss: float | None = None
    stale: int = 0
    """Evaluations since the last one that beat the best by more than min_delta."""

    def should_stop(self, patience: int) -> bool:
        """True once ``patience`` evaluations in a row made no progress (never with 0)."""
        return patience > 0 and self.stale >= patience


def eval_losses(log_history: list[dict[str, Any]]) -> list[tuple[int, float]]:
    """(step, held-out loss) of every evaluation of a trained model (the base model's
    step-0 evaluation is a reference, not a candidate)."""
    return [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e and e["step"] > 0]


def replay(losses: list[tuple[int, float]], min_delta: float) -> Progress:
    """Follow a run's evaluations: the best so far, and how long since progress.

    The best is the lowest loss (as Ray Train ranks checkpoints); progress is a loss lower
    than the previous best by more than ``min_delta``. A NaN loss is never progress.
    """
    best: tuple[int, float] | None = None
    stale = 0
    for step, loss in losses:
        if best is None or loss < best[1] - min_delta:
            stale = 0
        else:
            stale += 1
        if not math.isnan(loss) and (best is None or loss < best[1]):
            best = (step, loss)
    last = losses[-1] if losses else (None, None)
    return Progress(
        best_step=best[0] if best else None,
        best_loss=best[1] if best else None,
        last_step=last[0],
        last_loss=last[1],
        stale=stale,
    )


def stop_message(progress: Progress, patience: int) -> str:
    """The run's early stop in plain words, for the summary and finesift.json."""
    verb = (
        "rose"
        if progress.last_loss is not None
        and progress.best_loss is not None
        and progress.last_loss > progress.best_loss
        else "did not improve"
    )
    return (
        f"held-out loss {verb} for {patience} evaluations after step {progress.best_step}; "
        f"stopped at step {progress.last_step} and kept step {progress.best_step} "
        f"(held-out loss {progress.best_loss:.4f}). Noisy data or too many epochs?"
    )


class HeldOutLossCallback(TrainerCallback):
    """Evaluate at every checkpoint, checkpoint every new best, stop when the loss turns.

    Args:
        patience: evaluations without progress before stopping; 0 never stops.
        min_delta: how much a loss must beat the best by to count as progress.
    """

    def __init__(self, patience: int, min_delta: float) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.stopped: Progress | None = None

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """A step about to be checkpointed is evaluated first (after DefaultFlowCallback)."""
        if control.should_save:
            control.should_evaluate = True

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict | None = None, **kwargs: Any
    ) -> None:
        """Checkpoint a new best; stop after ``patience`` evaluations without progress."""
        if state.global_step == 0 or not metrics or "eval_loss" not in metrics:
            return  # the base model's loss, before the first step
        progress = replay(eval_losses(state.log_history), self.min_delta)
        new_best = progress.best_step == state.global_step
        stop = progress.should_stop(self.patience)
        new_best, stop = _agree(args, new_best, stop)
        if new_best or stop:
            control.should_save = True
        if stop:
            control.should_training_stop = True
            self.stopped = progress
            if state.is_world_process_zero:
                print(f"[finesift] {stop_message(progress, self.patience)}", flush=True)


def _agree(args: Any, new_best: bool, stop: bool) -> tuple[bool, bool]:
    """Rank 0's decision on every rank: ranks that disagreed on a float would deadlock DDP
    (one saving or stopping while the others wait in a collective)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return new_best, stop
    flags = torch.tensor([int(new_best), int(stop)], device=args.device)
    dist.broadcast(flags, src=0)
    return bool(flags[0]), bool(flags[1])
