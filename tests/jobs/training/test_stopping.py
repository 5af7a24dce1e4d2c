"""Early stop and the best checkpoint, decided from the held-out losses of a run."""

from __future__ import annotations

import math
from types import SimpleNamespace

from transformers import TrainerControl

from jobs.training.stopping import HeldOutLossCallback, Progress, replay, stop_message


def test_replay_finds_the_best_and_counts_evaluations_without_progress():
    losses = [(2, 2.0), (4, 1.5), (6, 1.6), (8, 1.55), (10, 1.7)]
    progress = replay(losses, min_delta=0.0)
    assert (progress.best_step, progress.best_loss) == (4, 1.5)
    assert (progress.last_step, progress.stale) == (10, 3)
    assert progress.should_stop(3) and not progress.should_stop(4)
    assert not progress.should_stop(0)  # patience 0: never stop early


def test_min_delta_makes_small_gains_count_as_none_and_nan_never_counts():
    losses = [(2, 2.0), (4, 1.99), (6, 1.98), (8, float("nan"))]
    assert replay(losses, min_delta=0.0).stale == 1
    progress = replay(losses, min_delta=0.05)
    assert progress.stale == 3 and progress.best_step == 6  # still the lowest loss
    assert replay([(2, float("nan"))], 0.0).best_step is None


def test_the_stop_message_says_what_happened_in_plain_words():
    progress = Progress(best_step=100, best_loss=1.234, last_step=250, last_loss=1.4, stale=3)
    assert stop_message(progress, 3) == (
        "held-out loss rose for 3 evaluations after step 100; stopped at step 250 and kept "
        "step 100 (held-out loss 1.2340). Noisy data or too many epochs?"
    )
    flat = Progress(best_step=100, best_loss=1.2, last_step=250, last_loss=1.2, stale=3)
    assert "did not improve for 3 evaluations" in stop_message(flat, 3)


def evaluated(callback, history, step):
    """Run the callback's on_evaluate for the last entry of ``history`` (one process)."""
    state = SimpleNamespace(global_step=step, log_history=history, is_world_process_zero=True)
    control = TrainerControl()
    callback.on_evaluate(SimpleNamespace(device="cpu"), state, control, metrics=history[-1])
    return control


def test_the_callback_checkpoints_a_new_best_and_stops_when_the_loss_turns():
    callback = HeldOutLossCallback(patience=2, min_delta=0.0)
    history = [{"step": 0, "eval_loss": 3.0}]  # the base model's: not a candidate
    assert not evaluated(callback, history, 0).should_save
    history.append({"step": 2, "eval_loss": 2.0})
    control = evaluated(callback, history, 2)
    assert control.should_save and not control.should_training_stop  # a new best
    history.append({"step": 4, "eval_loss": 2.5})
    control = evaluated(callback, history, 4)
    assert not control.should_save and not control.should_training_stop
    history.append({"step": 6, "eval_loss": 2.6})
    control = evaluated(callback, history, 6)
    assert control.should_save and control.should_training_stop  # patience 2 used up
    assert callback.stopped is not None and callback.stopped.best_step == 2


def test_a_step_that_will_be_checkpointed_is_evaluated_first():
    callback = HeldOutLossCallback(patience=3, min_delta=0.0)
    control = TrainerControl()
    control.should_save = True
    callback.on_step_end(SimpleNamespace(), SimpleNamespace(global_step=7), control)
    assert control.should_evaluate
    quiet = TrainerControl()
    callback.on_step_end(SimpleNamespace(), SimpleNamespace(global_step=8), quiet)
    assert not quiet.should_evaluate


def test_checkpoint_metrics_carry_the_held_out_loss_of_their_own_step():
    from jobs.training.loop import WORST_LOSS, latest_metrics

    history = [
        {"step": 2, "loss": 2.5},
        {"step": 2, "eval_loss": 2.1},
        {"step": 4, "loss": 2.2},
        {"step": 6, "eval_loss": float("nan")},
    ]
    assert latest_metrics(history, 2)["eval_loss"] == 2.1
    assert "eval_loss" not in latest_metrics(history, 4)  # not evaluated at that step
    assert latest_metrics(history, 6)["eval_loss"] == WORST_LOSS  # NaN ranks last
    assert math.isfinite(WORST_LOSS)
