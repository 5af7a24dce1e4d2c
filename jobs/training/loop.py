"""What runs on each Ray Train worker: TRL's SFTTrainer with a peft LoRA adapter.

One code path for every setup: the TorchTrainer starts the workers and the process group
(gloo on CPU, NCCL on GPU); transformers' Trainer sees it and wraps the model in DDP.
Checkpoints written by the Trainer are reported to Ray Train, which persists them and,
after a worker failure or on a rerun with the same name, hands the latest one back
through ``ray.train.get_checkpoint()``.

:func:`build_sft_trainer` is shared with the benchmark, which runs the same trainer in
one plain process.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from jobs.training.adapters import STATE_FILE
from jobs.training.config import TrainConfig


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """The Ray Train worker function: fine-tune, checkpointing through ``ray.train.report``.

    Args:
        loop_config: ``cfg`` (TrainConfig, with the batch shape of this attempt), ``rows``
            (ObjectRef of {"train", "eval"} example lists), ``cpus`` (threads for torch on
            CPU), ``run_id`` (unique per ``finesift train`` attempt), ``fail_at_step``
            and ``oom_at_step`` (test hooks, or None).

    Raises:
        WorkerOutOfMemory: the worker ran out of memory; the driver retries with a smaller
            batch.
    """
    import ray
    import ray.train
    import torch

    from infra.models import resolve_base_model
    from jobs.training import tracking
    from jobs.training.memory import InjectedOutOfMemory, WorkerOutOfMemory, out_of_memory_errors
    from jobs.training.stopping import HeldOutLossCallback

    _quiet_libraries()
    cfg: TrainConfig = loop_config["cfg"]
    rank = ray.train.get_context().get_world_rank()
    if not cfg.scaling.use_gpu:
        torch.set_num_threads(max(1, int(loop_config["cpus"])))
    rows = ray.get(loop_config["rows"])
    # Each node resolves the base model itself: a cached directory, or a locked one-time
    # conversion of the bundled GGUF on nodes that have not seen it yet.
    model_path = resolve_base_model(cfg.base_model)

    work = Path(tempfile.gettempdir()) / "finesift-train" / f"{loop_config['run_id']}-rank{rank}"
    shutil.rmtree(work, ignore_errors=True)  # leftovers of a crashed attempt
    resume_dir, run_state = _restore(ray.train.get_checkpoint(), work / "resume")
    callbacks: list[TrainerCallback] = [RayReportCallback(run_state), ProgressPrinter()]
    if rows["eval"]:
        callbacks.append(HeldOutLossCallback(cfg.early_stop.patience, cfg.early_stop.min_delta))
    if loop_config.get("fail_at_step"):
        callbacks.append(InjectedFailure(int(loop_config["fail_at_step"])))
    if loop_config.get("oom_at_step"):
        callbacks.append(InjectedOutOfMemory(int(loop_config["oom_at_step"])))
    trainer = build_sft_trainer(
        cfg,
        model_path,
        rows["train"],
        rows["eval"],
        output_dir=work / "out",
        callbacks=callbacks,
        eval_on_start=resume_dir is None and cfg.eval.base_loss,
        report_to=tracking.report_to(cfg, rank),
    )
    try:
        if resume_dir is not None and _already_done(trainer, resume_dir, rank, cfg):
            return  # Trainer would run one extra step past max_steps when resumed at the end
        trainer.train(resume_from_checkpoint=str(resume_dir) if resume_dir else None)
    except out_of_memory_errors() as exc:
        # One exception type the driver recognizes, whatever Ray does to the original.
        raise WorkerOutOfMemory(  # global_step counts finished steps: the next one failed
            f"rank {rank} ran out of memory at step {trainer.state.global_step + 1} with "
            f"batch {cfg.optim.batch_size} x accumulation {cfg.optim.gradient_accumulation}: "
            f"{exc}"
        ) from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _already_done(trainer: Any, resume_dir: Path, rank: int, cfg: TrainConfig) -> bool:
    """True when the checkpoint already reached the planned steps, or stopped early."""
    from jobs.training.stopping import eval_losses, replay

    state = json.loads((resume_dir / "trainer_state.json").read_text())
    done = state["global_step"]
    planned = trainer.set_initial_training_values(trainer.args, trainer.get_train_dataloader())[-1]
    progress = replay(eval_losses(state["log_history"]), cfg.early_stop.min_delta)
    stopped = bool(trainer.eval_dataset is not None) and progress.should_stop(
        cfg.early_stop.patience
    )
    if rank == 0 and (done >= planned or stopped):
        why = "stopped early" if stopped and done < planned else "already trained"
        print(f"[finesift] {why} at step {done}/{planned}; nothing to do", flush=True)
    return done >= planned or stopped


def _quiet_libraries() -> None:
    """Keep worker output to the progress lines: no per-map progress bars, no deprecations."""
    import warnings

    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_warning()
    warnings.filterwarnings("ignore", category=FutureWarning)


def _restore(checkpoint: Any, local_dir: Path) -> tuple[Path | None, dict[str, Any]]:
    """Download the checkpoint Ray Train hands back, if any, and read its run state."""
    if checkpoint is None:
        return None, {"resumed_from": []}
    shutil.rmtree(local_dir, ignore_errors=True)
    checkpoint.to_directory(str(local_dir))
    state_file = local_dir / STATE_FILE
    run_state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    trainer_state = json.loads((local_dir / "trainer_state.json").read_text())
    run_state.setdefault("resumed_from", []).append(int(trainer_state["global_step"]))
    return local_dir, run_state


def build_sft_trainer(
    cfg: TrainConfig,
    model_path: str,
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    output_dir: Path,
    callbacks: list[TrainerCallback] = (),
    eval_on_start: bool = False,
    report_to: str | None = None,
) -> Any:
    """An SFTTrainer that trains a LoRA adapter on the assistant turns of conversations.

    The rows are tokenized here with their loss mask (:mod:`jobs.training.masking`: every
    assistant turn, or the last one, per ``text.train_on``); TRL turns the mask into labels,
    truncates and pads.

    Args:
        cfg: the training config (lora, text, optim, eval, checkpoint, seed, tracking).
        model_path: a directory or Hub id of a plain (non-quantized) causal LM.
        train_rows: ``{"prompt": [...], "completion": [...]}`` examples.
        eval_rows: held-out examples; empty disables evaluation.
        output_dir: where the Trainer writes its checkpoints (local, per worker).
        callbacks: extra TrainerCallbacks (reporting, progress, failure injection).
        eval_on_start: evaluate before the first step (the base model's loss).
        report_to: override the tracking integrations (None: cfg.tracking's).

    Returns:
        A ready ``trl.SFTTrainer``.
    """
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, set_seed
    from trl import SFTConfig, SFTTrainer

    set_seed(cfg.seed)  # before the adapter is initialized
    use_bf16 = bool(
        cfg.scaling.use_gpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    )
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(
        model_path, dtype=torch.bfloat16 if use_bf16 else torch.float32
    )
    o, ck = cfg.optim, cfg.checkpoint
    has_eval = bool(eval_rows)
    args = SFTConfig(
        output_dir=str(output_dir),
        seed=cfg.seed,
        data_seed=cfg.seed,
        learning_rate=o.learning_rate,
        lr_scheduler_type=o.lr_scheduler,
        warmup_steps=o.warmup_ratio,
        weight_decay=o.weight_decay,
        max_grad_norm=o.max_grad_norm,
        num_train_epochs=o.epochs,
        max_steps=o.max_steps if o.max_steps > 0 else -1,
        per_device_train_batch_size=o.batch_size,
        per_device_eval_batch_size=o.eval_batch_size,
        gradient_accumulation_steps=o.gradient_accumulation,
        gradient_checkpointing=o.gradient_checkpointing,
        max_length=cfg.text.max_length,
        packing=cfg.text.packing,
        train_sampling_strategy="group_by_length" if cfg.text.group_by_length else "random",
        completion_only_loss=False,  # the loss mask comes with the rows (assistant_masks)
        bf16=use_bf16,
        use_cpu=not cfg.scaling.use_gpu,
        logging_steps=ck.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=ck.every_steps,
        save_total_limit=1,  # Ray Train keeps the history; locally only the latest matters
        eval_strategy="steps" if has_eval else "no",
        eval_steps=cfg.eval.every_steps,
        eval_on_start=eval_on_start and has_eval,
        include_num_input_tokens_seen="non_padding",
        report_to=report_to or (list(cfg.trackers) or "none"),
        run_name=cfg.name,
        disable_tqdm=True,  # Ray forwards worker output line by line; ProgressPrinter prints
        ddp_find_unused_parameters=False,
        dataloader_pin_memory=bool(cfg.scaling.use_gpu),
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=_dataset(Dataset, train_rows, tokenizer, cfg.text.train_on),
        eval_dataset=_dataset(Dataset, eval_rows, tokenizer, cfg.text.train_on)
        if has_eval
        else None,
        processing_class=tokenizer,
        peft_config=LoraConfig(
            r=cfg.lora.r,
            lora_alpha=cfg.lora.alpha,
            lora_dropout=cfg.lora.dropout,
            target_modules=_target_modules(cfg.lora.target_modules),
            task_type="CAUSAL_LM",
        ),
        callbacks=list(callbacks),
    )
    trainer.remove_callback(PrinterCallback)
    return trainer


def _dataset(dataset_cls: Any, rows: list[dict[str, Any]], tokenizer: Any, train_on: str) -> Any:
    """A tokenized datasets.Dataset: input_ids and the assistant mask TRL builds labels from."""
    from jobs.training.data import messages_of
    from jobs.training.masking import tokenize_conversation

    records = []
    for row in rows:
        tokens = tokenize_conversation(tokenizer, messages_of(row), train_on)
        records.append({"input_ids": tokens.input_ids, "assistant_masks": tokens.assistant_masks})
    return dataset_cls.from_list(records)


def _target_modules(value: str | tuple[str, ...]) -> str | list[str]:
    """peft takes 'all-linear' as a string and module names as a list."""
    return value if isinstance(value, str) else list(value)


class RayReportCallback(TrainerCallback):
    """Report each checkpoint the Trainer saves to Ray Train, from every worker.

    Ray Train merges the workers' directories into one checkpoint: rank 0 brings the
    adapter, optimizer, scheduler and trainer state, every rank its RNG state. Ray's own
    ``RayTrainReportCallback`` copies the whole Trainer output directory into a temp
    directory first; reporting the checkpoint directory itself avoids that copy and lets
    us add the run state and name the checkpoint by its step.
    """

    def __init__(self, run_state: dict[str, Any]) -> None:
        self.run_state = run_state

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Persist the checkpoint just written by the Trainer (all ranks must call report)."""
        import ray.train

        ckpt_dir = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and ckpt_dir.is_dir():
            self.run_state["peak_rss_mb"] = round(peak_rss_mb(), 1)
            self.run_state["batch"] = {
                "batch_size": args.per_device_train_batch_size,
                "gradient_accumulation": args.gradient_accumulation_steps,
                "workers": args.world_size,
            }
            (ckpt_dir / STATE_FILE).write_text(json.dumps(self.run_state))
        checkpoint = (
            ray.train.Checkpoint.from_directory(str(ckpt_dir)) if ckpt_dir.is_dir() else None
        )
        ray.train.report(
            latest_metrics(state.log_history, state.global_step),
            checkpoint=checkpoint,
            checkpoint_dir_name=f"checkpoint-{state.global_step:07d}",
        )


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# Ray Train stores checkpoint metrics as JSON, where NaN does not survive: a NaN held-out
# loss is reported as this, which ranks the checkpoint last.
WORST_LOSS = 1e30


def latest_metrics(log_history: list[dict[str, Any]], step: int) -> dict[str, Any]:
    """The checkpoint's metrics: the most recent train loss, and the held-out loss measured
    at this very step (the score Ray Train ranks checkpoints by) when there is one."""
    metrics: dict[str, Any] = {"step": step}
    for entry in log_history:
        for key in ("loss", "epoch", "num_input_tokens_seen"):
            if key in entry:
                metrics[key] = entry[key]
        if "eval_loss" in entry and entry["step"] == step:
            loss = entry["eval_loss"]
            metrics["eval_loss"] = loss if math.isfinite(loss) else WORST_LOSS
    return metrics


class ProgressPrinter(TrainerCallback):
    """One line per logging step on rank 0: step, loss, learning rate, tokens/s, time left."""

    def __init__(self) -> None:
        self.start: tuple[float, int] | None = None  # (time, step) when this session began
        self.last: tuple[float, int] = (0.0, 0)  # (time, tokens seen) at the previous line

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Remember where this session starts (a resumed run starts at its checkpoint)."""
        now = time.time()
        self.start = (now, state.global_step)
        self.last = (now, state.num_input_tokens_seen or 0)
        if state.is_world_process_zero:
            verb = "resuming at" if state.global_step else "starting at"
            print(f"[finesift] {verb} step {state.global_step}/{state.max_steps}", flush=True)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Print the line for this log event."""
        if not state.is_world_process_zero or not logs:
            return
        head = f"[finesift] step {state.global_step}/{state.max_steps}"
        if "eval_loss" in logs:
            print(f"{head} | eval_loss {logs['eval_loss']:.4f}", flush=True)
        elif "loss" in logs and self.start is not None:
            now, tokens = time.time(), state.num_input_tokens_seen or 0
            speed = (tokens - self.last[1]) / max(now - self.last[0], 1e-9)
            self.last = (now, tokens)
            done = state.global_step - self.start[1]
            elapsed = now - self.start[0]
            left = (state.max_steps - state.global_step) * elapsed / max(done, 1)
            print(
                f"{head} | loss {logs['loss']:.4f} | lr {logs.get('learning_rate', 0):.2e} | "
                f"{speed:,.0f} tok/s | elapsed {_clock(elapsed)} | left {_clock(left)}",
                flush=True,
            )


def _clock(seconds: float) -> str:
    """h:mm:ss."""
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class InjectedFailure(TrainerCallback):
    """Test and chaos-drill hook: raise at ``step`` in a session that started from scratch.

    A retried worker resumes from the last checkpoint (step > 0) and does not fail again.
    """

    def __init__(self, step: int) -> None:
        self.step = step
        self.fresh = True

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Only a session starting at step 0 fails."""
        self.fresh = state.global_step == 0

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Raise once the step is reached."""
        if self.fresh and state.global_step == self.step:
            raise RuntimeError(f"finesift: injected failure at step {self.step}")
