"""The Ray Train run of ``finesift train``: workers, retries and the checkpoint to publish.

Each attempt is a ``TorchTrainer`` run of the adapter's name, which resumes from the run's
latest checkpoint. The driver, not Ray Train, retries a failed attempt: after an
out-of-memory error with a smaller batch (:mod:`jobs.training.memory`; not counted as a
failure), after any other error up to ``scaling.max_failures`` times. Checkpoints are
ranked by held-out loss, and the best one is what gets published.
"""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from infra.errors import FinesiftError
from jobs.training.config import TrainConfig
from jobs.training.rows import PreparedRows

console = Console()
# Environment a worker on another node needs to find and load models the way the driver does.
FORWARDED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "FINESIFT_HOME")


@dataclass
class FitOutcome:
    """What the Ray Train run left: the checkpoint to publish and the run's record."""

    best: Any
    """The checkpoint with the lowest held-out loss (the latest without held-out rows)."""
    latest: dict[str, Any]
    """The latest checkpoint's trainer_state.json and finesift-state.json (the full curve)."""
    recoveries: list[dict[str, Any]] = field(default_factory=list)
    """Out-of-memory retries: the step, the batch shape before and after."""


def fit(
    cfg: TrainConfig,
    storage_path: str,
    rows: PreparedRows,
    fail_at_step: int | None,
    oom_at_step: int | None,
) -> FitOutcome:
    """Run the TorchTrainer until it finishes, retrying failures from the latest checkpoint.

    Each retry is a new Ray Train run of the same name, which resumes from the run's latest
    checkpoint: after an out-of-memory error with half the batch and twice the gradient
    accumulation (not counted as a failure), after any other error up to
    scaling.max_failures times. The test hooks are armed on the first attempt only.
    """
    import ray
    import ray.train

    from infra.ray_env import init_ray
    from jobs.training import adapters
    from jobs.training.memory import (
        describe_recovery,
        is_out_of_memory,
        recovery_record,
        smaller_batch,
    )

    init_ray()
    num_workers, resources = worker_resources(cfg)
    rows_ref = ray.put({"train": rows.train, "eval": rows.eval})
    memory = adapters.read_memory(storage_path, cfg.name, cfg.optim)
    run_cfg = _with_batch(cfg, memory["batch_size"], memory["gradient_accumulation"])
    recoveries: list[dict[str, Any]] = list(memory["recoveries"])
    failures, attempt = 0, 0
    while True:
        hooks = {"fail_at_step": fail_at_step, "oom_at_step": oom_at_step} if not attempt else {}
        attempt += 1
        workers = (num_workers, resources)
        trainer = _trainer(run_cfg, storage_path, workers, rows_ref, hooks, bool(rows.eval))
        try:
            result = trainer.fit()
            break
        except ray.train.TrainingFailedError as exc:
            o = run_cfg.optim
            if is_out_of_memory(exc):
                smaller = smaller_batch(o.batch_size, o.gradient_accumulation)
                if smaller is None:
                    raise FinesiftError(
                        f"training {cfg.name} ran out of memory at batch 1: lower "
                        "text.max_length, set optim.gradient_checkpointing=true or a smaller "
                        "lora.r, or use a device with more memory"
                    ) from exc
                recoveries.append(
                    recovery_record(exc, o.batch_size, o.gradient_accumulation, smaller)
                )
                console.print(f"[yellow]out of memory:[/] {describe_recovery(recoveries[-1])}")
                run_cfg = _with_batch(cfg, *smaller)
                adapters.write_memory(storage_path, cfg.name, cfg.optim, run_cfg.optim, recoveries)
                continue
            failures += 1
            limit = cfg.scaling.max_failures
            if limit != -1 and failures > limit:
                raise FinesiftError(
                    f"training {cfg.name} failed after {limit} retries: {exc}. Fix the cause "
                    "and rerun the same command: it resumes from the last checkpoint in "
                    f"{storage_path}/{cfg.name}"
                ) from exc
            console.print(
                f"[yellow]training failed[/] ({_first_line(exc)}); retry {failures} of "
                f"{'unlimited' if limit == -1 else limit}, from the last checkpoint"
            )
    if result.checkpoint is None:
        raise FinesiftError(
            f"training {cfg.name} finished without a checkpoint in {storage_path}/{cfg.name}"
        )
    return FitOutcome(
        best=_best(result) if rows.eval else result.checkpoint,
        latest=_checkpoint_state(result.checkpoint),
        recoveries=recoveries,
    )


def _best(result: Any) -> Any:
    """The kept checkpoint with the lowest held-out loss; on a tie the earlier one, as
    :func:`jobs.training.stopping.replay` counts it (Ray would take the later)."""
    scored = [(m.get("eval_loss"), m.get("step", 0), c) for c, m in result.best_checkpoints or []]
    scored = [s for s in scored if s[0] is not None]
    return min(scored, key=lambda s: s[:2])[2] if scored else result.checkpoint


def _trainer(
    cfg: TrainConfig,
    storage_path: str,
    workers: tuple[int, dict[str, float]],
    rows_ref: Any,
    hooks: dict[str, int | None],
    ranked: bool,
) -> Any:
    """One Ray Train run: the workers, where checkpoints go and how they are ranked."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from jobs.training import tracking
    from jobs.training.loop import train_loop_per_worker

    num_workers, resources = workers
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    # Ray Train's print patch tees prints to its logger: every progress line shows twice,
    # and output libraries capture (dill's dis in datasets' fingerprinting) leaks out.
    env["RAY_TRAIN_ENABLE_PRINT_PATCH"] = "0"
    env |= tracking.worker_env(cfg, storage_path)
    # Ranked by held-out loss: Ray keeps the `keep` best (and always the latest, to resume
    # from). A run without held-out rows keeps the most recent (every checkpoint of a
    # ranked run carries its eval_loss: an unscored one would rank first in Ray).
    checkpoints = ray.train.CheckpointConfig(
        num_to_keep=cfg.checkpoint.keep,
        checkpoint_score_attribute="eval_loss" if ranked else None,
        checkpoint_score_order="min",
    )
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "cfg": cfg,
            "rows": rows_ref,
            "cpus": resources.get("CPU", 1),
            "run_id": f"{cfg.name}-{uuid.uuid4().hex[:8]}",
            **hooks,
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=num_workers,
            use_gpu=cfg.scaling.use_gpu,
            resources_per_worker=resources,
        ),
        run_config=ray.train.RunConfig(
            name=cfg.name,
            storage_path=storage_path,
            # Retries are the driver's (see _fit): an out-of-memory error needs a new batch
            # shape, which a Ray Train retry would not give it.
            failure_config=ray.train.FailureConfig(max_failures=0),
            checkpoint_config=checkpoints,
            worker_runtime_env={"env_vars": env},
        ),
    )


def _with_batch(cfg: TrainConfig, batch_size: int, accumulation: int) -> TrainConfig:
    """The config with another per-device batch and gradient accumulation."""
    optim = dataclasses.replace(
        cfg.optim, batch_size=batch_size, gradient_accumulation=accumulation
    )
    return dataclasses.replace(cfg, optim=optim)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _checkpoint_state(checkpoint: Any) -> dict[str, Any]:
    """trainer_state.json and finesift-state.json of a persisted checkpoint."""
    from jobs.training.adapters import STATE_FILE

    with checkpoint.as_directory() as ckpt_dir:
        path = Path(ckpt_dir)
        run_state = path / STATE_FILE
        return {
            "trainer_state": json.loads((path / "trainer_state.json").read_text()),
            "run_state": json.loads(run_state.read_text()) if run_state.is_file() else {},
        }


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
