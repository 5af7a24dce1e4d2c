"""``finesift train``: fine-tune a LoRA adapter on curated rows with Ray Train + TRL + peft.

The driver reads, audits and checks the rows, holds some out, guards the adapter name,
then runs a ``TorchTrainer`` whose workers run :func:`jobs.training.loop.train_loop_per_worker`.
Ray Train persists checkpoints under ``scaling.storage_path/NAME``, ranked by held-out
loss: the adapter published to ``adapters_dir/NAME`` (with a finesift.json describing the
run) is the best checkpoint, not the last. A failure is retried from the latest
checkpoint (up to ``scaling.max_failures``), an out-of-memory error with half the batch
(:mod:`jobs.training.memory`), and running the same ``--name`` again resumes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from infra.config import to_dict
from infra.errors import FinesiftError
from jobs.training.config import TrainConfig
from jobs.training.fit import FitOutcome, fit, worker_resources  # noqa: F401  (public here)
from jobs.training.rows import PreparedRows, prepare_rows  # noqa: F401  (public here)

console = Console()


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced."""

    adapter_dir: Path
    """adapters_dir/NAME."""
    steps: int
    """Optimizer steps completed in total."""
    base_eval_loss: float | None
    """Held-out loss of the base model (before the first step), if evaluated."""
    eval_loss: float | None
    """Held-out loss of the published adapter: the lowest any checkpoint reached."""
    resumed_from: tuple[int, ...]
    """Steps this run resumed from (worker retries and reruns), in order."""
    merged_dir: Path | None
    """The merged full model, with merge=true."""
    adapter_step: int | None = None
    """The step of the checkpoint published: the lowest held-out loss (the last without
    held-out rows)."""
    stopped_early: bool = False
    """The held-out loss stopped improving for early_stop.patience evaluations."""
    notes: tuple[str, ...] = ()
    """What the run did on its own, in plain words (early stop, out-of-memory retries)."""


def train(
    cfg: TrainConfig, *, fail_at_step: int | None = None, oom_at_step: int | None = None
) -> TrainResult:
    """Run a LoRA fine-tune on Ray Train and publish the adapter.

    Args:
        cfg: the full config; ``data`` and ``name`` must be set.
        fail_at_step: test/chaos hook: every worker raises once at this step (in a session
            that started from step 0), to exercise retry and resume.
        oom_at_step: test/chaos hook: the first attempt raises ``torch.OutOfMemoryError``
            at this step, to exercise the smaller-batch retry.

    Returns:
        Where the adapter is and how it did.

    Raises:
        FinesiftError: on bad input (data, base model, a name taken by other inputs, a
            tracker not installed, a failed audit with strict) or when training fails more
            often than scaling.max_failures.
    """
    from infra.models import resolve_base_model
    from jobs.training import tracking

    cfg.require_inputs()
    assert cfg.data is not None and cfg.name is not None
    started = time.time()
    tracking.check_installed(cfg)
    model_path = resolve_base_model(cfg.base_model)
    rows = prepare_rows(cfg, model_path)
    for note in rows.notes:
        console.print(f"[yellow]warning:[/] {note}")
    _report_audit(cfg, rows)

    from jobs.training import adapters, push

    adapter_dir = push.local_adapter_dir(cfg)
    identity = adapters.run_identity(
        cfg.base_model, cfg.data, rows.data_sha256, rows.data_rows, to_dict(cfg.lora)
    )
    adapters.check_adapter_dir(adapter_dir, identity, cfg.name)
    push.check_destination(cfg, identity)
    storage_path = _storage_path(cfg.scaling.storage_path)
    manifest = adapters.read_run_manifest(storage_path, cfg.name)
    adapters.check_identity(identity, manifest, f"{storage_path}/{cfg.name}", cfg.name)
    adapters.write_run_manifest(storage_path, cfg.name, identity)
    console.print(
        f"training {cfg.name}: {len(rows.train)} rows, {len(rows.eval)} held out, "
        f"base model {cfg.base_model} ({model_path})"
        + (", resuming from the last checkpoint" if manifest else "")
    )

    outcome = fit(cfg, storage_path, rows, fail_at_step, oom_at_step)
    checkpoint = outcome.best
    with checkpoint.as_directory() as ckpt_dir:
        meta = adapters.build_meta(
            Path(ckpt_dir),
            identity,
            name=cfg.name,
            eval_data=cfg.eval_data,
            train_rows=len(rows.train),
            eval_rows=len(rows.eval),
            runtime_s=time.time() - started,
            config=to_dict(cfg),
            latest=outcome.latest,
            run=_run_record(cfg, outcome, rows),
        )
        adapters.write_adapter(Path(ckpt_dir), adapter_dir, meta)
    merged = None
    if cfg.merge:
        merged = adapters.merge_adapter(adapter_dir, model_path, adapter_dir / "merged")
    push.publish(cfg, adapter_dir)
    result = TrainResult(
        adapter_dir=adapter_dir,
        steps=meta["steps"],
        base_eval_loss=meta["base_eval_loss"],
        eval_loss=meta["final_eval_loss"],
        resumed_from=tuple(meta["resumed_from"]),
        merged_dir=merged,
        adapter_step=meta["adapter_step"],
        stopped_early=meta["early_stop"]["stopped"],
        notes=tuple(meta["notes"]),
    )
    _print_summary(result, meta)
    return result


def _storage_path(storage_path: str) -> str:
    """An absolute local path (Ray needs one), or the URI as given."""
    return storage_path if "://" in storage_path else str(Path(storage_path).resolve())


def _report_audit(cfg: TrainConfig, rows: PreparedRows) -> None:
    """Print the audit of uncurated data; with strict, refuse data it found problems in."""
    audit = rows.audit
    if audit is None:
        return
    if not audit.problems:
        console.print(
            f"data audit ({cfg.data} did not come from finesift curate): {audit.summary()}"
        )
        return
    console.print(
        f"[yellow]data audit:[/] {cfg.data} did not come from finesift curate: {audit.summary()}. "
        f"Curate it first (`finesift curate {cfg.data} --out runs/curated`): training on "
        "duplicates, empty answers and contradictions makes the adapter worse"
    )
    if cfg.strict:
        raise FinesiftError(
            f"--strict: the data audit found problems in {cfg.data} ({audit.summary()}); "
            f"run `finesift curate {cfg.data} --out runs/curated` and train on "
            "runs/curated/selected.jsonl, or drop --strict"
        )


def _run_record(cfg: TrainConfig, outcome: FitOutcome, rows: PreparedRows) -> dict[str, Any]:
    """What finesift.json says about how the run went: early stop, memory, batch, notes."""
    from jobs.training.memory import describe_recovery
    from jobs.training.stopping import eval_losses, replay, stop_message

    state = outcome.latest["trainer_state"]
    progress = replay(eval_losses(state["log_history"]), cfg.early_stop.min_delta)
    stopped = (
        bool(rows.eval)
        and progress.should_stop(cfg.early_stop.patience)
        and state["global_step"] < state["max_steps"]
    )
    notes = [describe_recovery(r) for r in outcome.recoveries]
    if stopped:
        notes.append(stop_message(progress, cfg.early_stop.patience))
    elif progress.best_step is not None and progress.best_step != progress.last_step:
        notes.append(
            f"kept step {progress.best_step}: its held-out loss {progress.best_loss:.4f} is "
            f"lower than the last one's ({progress.last_loss:.4f} at step {progress.last_step})"
        )
    batch = outcome.latest["run_state"].get("batch") or {}
    return {
        "early_stop": {
            "patience": cfg.early_stop.patience,
            "min_delta": cfg.early_stop.min_delta,
            "stopped": stopped,
            "message": stop_message(progress, cfg.early_stop.patience) if stopped else None,
        },
        "oom_recoveries": outcome.recoveries,
        "batch": {
            **batch,
            "effective": batch.get("batch_size", 0)
            * batch.get("gradient_accumulation", 0)
            * batch.get("workers", 0)
            or None,
        },
        "notes": notes,
    }


def _print_summary(result: TrainResult, meta: dict[str, Any]) -> None:
    """The end-of-run table: base vs adapter eval loss, steps, tokens, where things are."""
    table = Table(title=f"adapter {result.adapter_dir.name}", show_header=False)
    fmt = "{:.4f}".format
    table.add_row(
        "eval loss, base model",
        fmt(result.base_eval_loss) if result.base_eval_loss is not None else "-",
    )
    table.add_row(
        "eval loss, adapter", fmt(result.eval_loss) if result.eval_loss is not None else "-"
    )
    table.add_row("steps", str(result.steps))
    if result.adapter_step is not None and result.adapter_step != result.steps:
        table.add_row("adapter from step", f"{result.adapter_step} (lowest held-out loss)")
    batch = meta.get("batch") or {}
    if meta.get("oom_recoveries") and batch:
        table.add_row(
            "batch",
            f"{batch.get('batch_size')} x accumulation {batch.get('gradient_accumulation')} "
            "(after out-of-memory retries)",
        )
    table.add_row("tokens seen", f"{meta.get('tokens_seen') or 0:,}")
    table.add_row("runtime", f"{meta['runtime_s']:.0f} s")
    if result.resumed_from:
        table.add_row("resumed from step", ", ".join(map(str, result.resumed_from)))
    table.add_row("adapter", str(result.adapter_dir))
    if result.merged_dir:
        table.add_row("merged model", str(result.merged_dir))
    console.print(table)
    for note in result.notes:
        console.print(note)
