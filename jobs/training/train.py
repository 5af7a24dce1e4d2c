"""``finesift train``: fine-tune a LoRA adapter on curated rows with Ray Train + TRL + peft.

The driver reads and checks the rows, holds some out, guards the adapter name, then runs
a ``TorchTrainer`` whose workers run :func:`jobs.training.loop.train_loop_per_worker`.
Ray Train persists checkpoints under ``scaling.storage_path/NAME``: a failed worker is
retried from the last one, and running the same ``--name`` again resumes from it.
The result lands in ``adapters_dir/NAME`` with a finesift.json describing the run.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from infra.config import to_dict
from infra.errors import FinesiftError
from jobs.training.config import TrainConfig

console = Console()
# Environment a worker on another node needs to find and load models the way the driver does.
FORWARDED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "FINESIFT_HOME")


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
    """Held-out loss of the adapter at the end."""
    resumed_from: tuple[int, ...]
    """Steps this run resumed from (worker retries and reruns), in order."""
    merged_dir: Path | None
    """The merged full model, with merge=true."""


@dataclass(frozen=True)
class PreparedRows:
    """Rows ready for the workers, and what preparing them found."""

    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    data_sha256: str
    data_rows: int
    notes: tuple[str, ...]


def train(cfg: TrainConfig, *, fail_at_step: int | None = None) -> TrainResult:
    """Run a LoRA fine-tune on Ray Train and publish the adapter.

    Args:
        cfg: the full config; ``data`` and ``name`` must be set.
        fail_at_step: test/chaos hook: every worker raises once at this step (in a session
            that started from step 0), to exercise retry and resume.

    Returns:
        Where the adapter is and how it did.

    Raises:
        FinesiftError: on bad input (data, base model, a name taken by other inputs) or
            when training fails more often than scaling.max_failures.
    """
    from infra.models import resolve_base_model

    cfg.require_inputs()
    assert cfg.data is not None and cfg.name is not None
    started = time.time()
    _check_tracking(cfg)
    model_path = resolve_base_model(cfg.base_model)
    rows = prepare_rows(cfg, model_path)
    for note in rows.notes:
        console.print(f"[yellow]warning:[/] {note}")

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

    checkpoint = _fit(cfg, storage_path, rows, fail_at_step)
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
    )
    _print_summary(result, meta)
    return result


def prepare_rows(cfg: TrainConfig, model_path: str) -> PreparedRows:
    """Read, validate, split and length-check the training (and eval) rows.

    Args:
        cfg: the config (data, eval_data, eval, text, seed).
        model_path: the resolved base model, whose tokenizer and chat template are used.

    Raises:
        InputError: on a missing/empty data file or one without usable rows.
        FinesiftError: when the base model has no chat template or every row is too long.
    """
    from transformers import AutoTokenizer

    from jobs.training.data import apply_length_policy, file_sha256, load_examples, split_heldout

    assert cfg.data is not None
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if not getattr(tokenizer, "chat_template", None):
        raise FinesiftError(
            f"base model {cfg.base_model} has no chat template; use a chat/instruct model "
            "(e.g. the default SmolLM2-135M-Instruct)"
        )
    examples, report = load_examples(cfg.data)
    notes = [w for w in [report.warning()] if w]
    if cfg.eval_data:
        eval_rows, eval_report = load_examples(cfg.eval_data)
        notes += [w for w in [eval_report.warning()] if w]
        train_rows = examples
    else:
        train_rows, eval_rows = split_heldout(
            examples, cfg.eval.fraction, cfg.eval.max_rows, cfg.seed
        )
    train_rows, lengths = apply_length_policy(
        train_rows, tokenizer, cfg.text.max_length, cfg.text.too_long
    )
    eval_rows, eval_lengths = apply_length_policy(
        eval_rows, tokenizer, cfg.text.max_length, cfg.text.too_long
    )
    for split, rep in (("training", lengths), ("eval", eval_lengths)):
        if rep.too_long:
            done = "skipped" if cfg.text.too_long == "skip" else "truncated to keep their start"
            notes.append(
                f"{rep.too_long} {split} rows are longer than text.max_length="
                f"{cfg.text.max_length} tokens (longest {rep.longest}): {done}"
                + (
                    f"; {rep.prompt_fills} whose prompt alone fills max_length are skipped"
                    if rep.prompt_fills and cfg.text.too_long != "skip"
                    else ""
                )
                + ". Raise text.max_length to keep them whole"
            )
    if not train_rows:
        raise FinesiftError(
            f"no training rows fit text.max_length={cfg.text.max_length}; "
            "raise it (e.g. text.max_length=1024) or use shorter rows"
        )
    return PreparedRows(
        train=train_rows,
        eval=eval_rows,
        data_sha256=file_sha256(cfg.data),
        data_rows=report.rows,
        notes=tuple(notes),
    )


def _check_tracking(cfg: TrainConfig) -> None:
    """Fail early when MLflow tracking is asked for but not installed."""
    import importlib.util

    if cfg.tracking == "mlflow" and importlib.util.find_spec("mlflow") is None:
        raise FinesiftError(
            "tracking=mlflow needs MLflow: run `pip install mlflow`, or set tracking=none"
        )


def _storage_path(storage_path: str) -> str:
    """An absolute local path (Ray needs one), or the URI as given."""
    return storage_path if "://" in storage_path else str(Path(storage_path).resolve())


def _fit(cfg: TrainConfig, storage_path: str, rows: PreparedRows, fail_at_step: int | None) -> Any:
    """Run the TorchTrainer and return the latest persisted checkpoint."""
    import ray
    import ray.train
    from ray.train.torch import TorchTrainer

    from infra.ray_env import init_ray
    from jobs.training.loop import train_loop_per_worker

    init_ray()
    num_workers, resources = worker_resources(cfg)
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    # Ray Train's print patch tees prints to its logger: every progress line shows twice,
    # and output libraries capture (dill's dis in datasets' fingerprinting) leaks out.
    env["RAY_TRAIN_ENABLE_PRINT_PATCH"] = "0"
    if cfg.tracking == "mlflow":
        uri = cfg.tracking_uri
        uri = uri if "://" in uri else f"file://{Path(uri).resolve()}"
        env |= {"MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": "finesift"}
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "cfg": cfg,
            "rows": ray.put({"train": rows.train, "eval": rows.eval}),
            "cpus": resources.get("CPU", 1),
            "run_id": f"{cfg.name}-{uuid.uuid4().hex[:8]}",
            "fail_at_step": fail_at_step,
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=num_workers,
            use_gpu=cfg.scaling.use_gpu,
            resources_per_worker=resources,
        ),
        run_config=ray.train.RunConfig(
            name=cfg.name,
            storage_path=storage_path,
            failure_config=ray.train.FailureConfig(max_failures=cfg.scaling.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=cfg.checkpoint.keep),
            worker_runtime_env={"env_vars": env},
        ),
    )
    try:
        result = trainer.fit()
    except ray.train.TrainingFailedError as exc:
        raise FinesiftError(
            f"training {cfg.name} failed after {cfg.scaling.max_failures} retries: {exc}. "
            "Fix the cause and rerun the same command: it resumes from the last checkpoint "
            f"in {storage_path}/{cfg.name}"
        ) from exc
    if result.checkpoint is None:
        raise FinesiftError(
            f"training {cfg.name} finished without a checkpoint in {storage_path}/{cfg.name}"
        )
    return result.checkpoint


def worker_resources(cfg: TrainConfig) -> tuple[int, dict[str, float]]:
    """Workers and per-worker resources: all CPUs of a node for one CPU worker by default,
    one worker per GPU with use_gpu.

    Raises:
        FinesiftError: when use_gpu is set and the Ray cluster has no GPU.
    """
    import ray

    s = cfg.scaling
    total = ray.cluster_resources()
    gpus = int(total.get("GPU", 0))
    if s.use_gpu and gpus == 0 and "GPU" not in s.resources_per_worker:
        raise FinesiftError(
            "scaling.use_gpu is set but the Ray cluster has no GPU; drop --use-gpu to train on CPU"
        )
    num_workers = s.num_workers or (gpus if s.use_gpu else 1)
    if s.resources_per_worker:
        return num_workers, dict(s.resources_per_worker)
    node_cpus = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]), default=1)
    cpus = max(1, int(min(node_cpus, total.get("CPU", 1) // num_workers)))
    resources: dict[str, float] = {"CPU": cpus}
    if s.use_gpu:
        resources["GPU"] = 1
    return num_workers, resources


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
    table.add_row("tokens seen", f"{meta.get('tokens_seen') or 0:,}")
    table.add_row("runtime", f"{meta['runtime_s']:.0f} s")
    if result.resumed_from:
        table.add_row("resumed from step", ", ".join(map(str, result.resumed_from)))
    table.add_row("adapter", str(result.adapter_dir))
    if result.merged_dir:
        table.add_row("merged model", str(result.merged_dir))
    console.print(table)
