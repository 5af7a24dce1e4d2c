"""Training that protects the user, end to end on the session's local Ray (2 CPUs): the
best checkpoint by held-out loss is published and a run whose held-out loss turns stops
early (one worker, and two DDP workers over gloo); an out-of-memory error is retried from
the last checkpoint with half the batch; TensorBoard event files land beside the
checkpoints."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from infra.config import load_config
from jobs.training.config import TrainConfig

pytestmark = pytest.mark.ray


def chat(question: str, answer: str, **extra) -> dict:
    return {
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ],
        **extra,
    }


def contradicting(tmp_path: Path) -> tuple[Path, Path]:
    """Training rows whose sums are wrong, held-out rows whose sums are right: the model
    first learns the shared form ("The answer is N.") and the held-out loss falls, then it
    learns the wrong sums and the held-out loss rises."""
    train = [
        chat(f"Add {i % 7} and {i % 5}.", f"The answer is {(i % 7 + i % 5 + 3) % 10}.", id=f"t{i}")
        for i in range(24)
    ]
    held = [
        chat(f"Add {i % 7} and {i % 5}.", f"The answer is {i % 7 + i % 5}.", id=f"h{i}")
        for i in range(24, 32)
    ]
    for path, rows in ((tmp_path / "train.jsonl", train), (tmp_path / "held.jsonl", held)):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path / "train.jsonl", tmp_path / "held.jsonl"


def config(tmp_path: Path, model_dir: Path, data: Path, held: Path, *overrides: str) -> TrainConfig:
    return load_config(
        TrainConfig,
        None,
        [
            "optim.learning_rate=1.0",  # high on purpose: the held-out loss turns within steps
            "optim.lr_scheduler=constant",
            "optim.warmup_ratio=0",
            "optim.batch_size=4",
            "optim.max_steps=30",
            "eval.every_steps=2",
            "checkpoint.every_steps=4",
            "checkpoint.keep=2",
            "checkpoint.logging_steps=2",
            "early_stop.patience=3",
            f"scaling.storage_path={tmp_path}/runs",
            *overrides,
        ],
        data=str(data),
        eval_data=str(held),
        name="turn",
        base_model=str(model_dir),
        adapters_dir=str(tmp_path / "adapters"),
    )


def held_out_loss(adapter_dir: Path, model_dir: Path, cfg: TrainConfig) -> float:
    """The published adapter's held-out loss, measured again in this process."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    from jobs.training.data import load_examples
    from jobs.training.loop import build_sft_trainer

    held, _ = load_examples(cfg.eval_data)
    trainer = build_sft_trainer(cfg, str(model_dir), held, held, adapter_dir.parent / "eval-out")
    weights = load_file(adapter_dir / "adapter_model.safetensors")
    missing = set_peft_model_state_dict(trainer.model, weights).unexpected_keys
    assert not missing, missing  # every saved LoRA weight found its place
    return trainer.evaluate()["eval_loss"]


def test_a_turning_held_out_loss_stops_the_run_and_the_best_checkpoint_is_published(
    ray_session, tmp_path, tiny_model_dir
):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from jobs.training.train import train

    data, held = contradicting(tmp_path)
    cfg = config(tmp_path, tiny_model_dir, data, held, "tracking=tensorboard")
    result = train(cfg)
    meta = json.loads((result.adapter_dir / "finesift.json").read_text())

    evals = [(e["step"], e["eval_loss"]) for e in meta["eval_loss_history"] if e["step"] > 0]
    best_step, best_loss = min(evals, key=lambda e: (e[1], e[0]))
    assert result.stopped_early and meta["early_stop"]["stopped"]
    assert result.steps < 30 and result.steps == evals[-1][0]  # stopped before max_steps
    # Three evaluations after the best, none better: that is what stopped it.
    assert [s for s, _ in evals][-3:] == [best_step + 2, best_step + 4, best_step + 6]
    assert all(loss >= best_loss for _, loss in evals[-3:]) and evals[-1][1] > best_loss
    # The adapter is the best checkpoint, not the last: its step, its loss.
    assert result.adapter_step == meta["adapter_step"] == best_step < result.steps
    assert result.eval_loss == meta["final_eval_loss"] == best_loss
    assert meta["last_eval_loss"] == evals[-1][1] > result.eval_loss
    assert held_out_loss(result.adapter_dir, tiny_model_dir, cfg) == pytest.approx(
        best_loss, rel=1e-4
    )
    message = meta["early_stop"]["message"]
    assert f"after step {best_step}" in message and f"kept step {best_step}" in message
    assert "Noisy data or too many epochs?" in message and message in result.notes

    # TensorBoard: event files beside the checkpoints, readable by TensorBoard's own reader.
    logdir = tmp_path / "runs" / "turn" / "tensorboard"
    events = EventAccumulator(str(logdir)).Reload()
    tags = events.Tags()["scalars"]
    assert "train/loss" in tags and "eval/loss" in tags
    logged = [(e.step, e.value) for e in events.Scalars("eval/loss")]
    assert [s for s, _ in logged if s > 0] == [s for s, _ in evals]
    assert all(math.isfinite(v) for _, v in logged)


def test_an_out_of_memory_error_is_retried_with_half_the_batch(
    ray_session, tmp_path, tiny_model_dir
):
    import torch

    from jobs.training.train import train

    data, held = contradicting(tmp_path)
    cfg = config(
        tmp_path,
        tiny_model_dir,
        data,
        held,
        "optim.learning_rate=0.02",
        "optim.max_steps=4",
        "checkpoint.every_steps=2",
        "eval.every_steps=2",
        "scaling.max_failures=0",  # the retry must not need (or use up) a failure
    )
    result = train(cfg, oom_at_step=3)

    assert result.steps == 4 and result.resumed_from == (2,)  # from the step-2 checkpoint
    meta = json.loads((result.adapter_dir / "finesift.json").read_text())
    assert meta["oom_recoveries"] == [
        {
            "step": 3,
            "from": {"batch_size": 4, "gradient_accumulation": 1},
            "to": {"batch_size": 2, "gradient_accumulation": 2},
        }
    ]
    assert meta["batch"] == {
        "batch_size": 2,
        "gradient_accumulation": 2,
        "workers": 1,
        "effective": 4,  # the same effective batch as configured: 4 x 1 x 1 worker
    }
    assert meta["config"]["optim"]["batch_size"] == 4  # what was asked, kept apart
    assert any("ran out of memory at step 3 with batch 4" in n for n in result.notes)
    # The steps after the retry really ran with batch 2: the last checkpoint's own args.
    args = torch.load(
        tmp_path / "runs" / "turn" / "checkpoint-0000004" / "training_args.bin", weights_only=False
    )
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (2, 2)
    # A rerun of the name starts from the batch that fits, not the one that failed.
    memory = json.loads((tmp_path / "runs" / "turn" / "finesift-memory.json").read_text())
    assert memory["fits"] == {"batch_size": 2, "gradient_accumulation": 2}


def test_two_ddp_workers_stop_together_at_the_same_step(ray_session, tmp_path, tiny_model_dir):
    from jobs.training.train import train

    data, held = contradicting(tmp_path)
    cfg = config(tmp_path, tiny_model_dir, data, held, "scaling.num_workers=2")
    result = train(cfg)

    meta = json.loads((result.adapter_dir / "finesift.json").read_text())
    assert result.stopped_early and result.steps < 30
    assert meta["batch"]["workers"] == 2
    evals = [(e["step"], e["eval_loss"]) for e in meta["eval_loss_history"] if e["step"] > 0]
    best_step, best_loss = min(evals, key=lambda e: (e[1], e[0]))
    assert result.adapter_step == best_step < result.steps and result.eval_loss == best_loss
    # Both ranks reached the stop step and saved it together (each its RNG state), and the
    # run ended there: no rank went on training while the other waited in a collective.
    stop = tmp_path / "runs" / "turn" / f"checkpoint-{result.steps:07d}"
    assert {p.name for p in stop.glob("rng_state_*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}
    assert result.steps == evals[-1][0] == best_step + 6  # patience 3, an evaluation every 2
    assert all(loss >= best_loss for _, loss in evals[-3:])
