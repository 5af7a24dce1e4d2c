"""Experiment trackers: what transformers' ``report_to`` accepts, checked on the driver.

The workers' Trainer reports through its own integrations (TensorBoard, MLflow, Weights &
Biases, Trackio), on rank 0 only: the other ranks get ``report_to="none"``, so a DDP run
is one tracked run. A tracker whose package is missing is a one-line error before Ray
starts, naming the pip command. TensorBoard event files go beside the run's checkpoints
(``scaling.storage_path/NAME/tensorboard``), so ``tensorboard --logdir runs/train`` shows
every run.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from infra.errors import FinesiftError
from jobs.training.config import TrainConfig

# Tracker -> (modules any of which makes it work, the package to install).
PACKAGES = {
    "tensorboard": (("tensorboard", "tensorboardX"), "tensorboard"),
    "mlflow": (("mlflow",), "mlflow"),
    "wandb": (("wandb",), "wandb"),
    "trackio": (("trackio",), "trackio"),
}


def check_installed(cfg: TrainConfig) -> None:
    """Fail early when a tracker is asked for but its package is not installed.

    Raises:
        FinesiftError: naming the tracker and the pip command.
    """
    for tracker in cfg.trackers:
        modules, package = PACKAGES[tracker]
        if not any(importlib.util.find_spec(m) is not None for m in modules):
            raise FinesiftError(
                f"tracking={tracker} needs the {package} package: run `pip install {package}`, "
                "or set tracking=none"
            )
    remote = "://" in cfg.scaling.storage_path
    if "tensorboard" in cfg.trackers and cfg.tracking_dir is None and remote:
        raise FinesiftError(
            f"tracking=tensorboard writes event files to a directory, and "
            f"scaling.storage_path is {cfg.scaling.storage_path}: set tracking_dir=DIR "
            "(a local or shared directory) for them"
        )


def tensorboard_dir(cfg: TrainConfig, storage_path: str) -> str:
    """Where TensorBoard event files go: tracking_dir, else beside the checkpoints."""
    if cfg.tracking_dir:
        return str(Path(cfg.tracking_dir).expanduser().resolve())
    return f"{storage_path.rstrip('/')}/{cfg.name}/tensorboard"


def worker_env(cfg: TrainConfig, storage_path: str) -> dict[str, str]:
    """Environment the workers' tracker integrations read."""
    env: dict[str, str] = {}
    if "mlflow" in cfg.trackers:
        uri = cfg.tracking_uri
        uri = uri if "://" in uri else f"file://{Path(uri).resolve()}"
        env |= {"MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": "finesift"}
    if "tensorboard" in cfg.trackers:
        env["TENSORBOARD_LOGGING_DIR"] = tensorboard_dir(cfg, storage_path)
    return env


def report_to(cfg: TrainConfig, rank: int) -> str | list[str]:
    """transformers' ``report_to`` for a worker: the trackers on rank 0, none elsewhere."""
    if rank != 0 or not cfg.trackers:
        return "none"
    return list(cfg.trackers)
