"""CLI commands of the training side: ``train`` and ``adapters``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from jobs.cli.options import JobSpec, Opt, config_command
from jobs.training.config import TrainConfig

console = Console()

TRAIN = JobSpec(
    TrainConfig,
    options=(
        Opt("data", help="Training rows: JSONL with a `messages` list per line (selected.jsonl)."),
        Opt("name", help="Adapter name: writes ADAPTERS_DIR/NAME; rerunning a name resumes it."),
        Opt("eval_data"),
        Opt("base_model"),
        Opt("adapters_dir"),
        Opt("push"),
        Opt("scaling.num_workers"),
        Opt("scaling.use_gpu", ("--use-gpu/--cpu",)),
        Opt("scaling.storage_path"),
        Opt("scaling.max_failures"),
        Opt("optim.max_steps"),
        Opt("merge", ("--merge",)),
        Opt("strict", ("--strict",)),
        Opt("tracking"),
    ),
)


def _train(cfg: TrainConfig) -> None:
    from jobs.training.train import train

    train(cfg)


train_command = config_command(
    TRAIN, _train, doc="Fine-tune a LoRA adapter on curated rows (Ray Train + TRL + peft)."
)


def adapters_command(
    adapters_dir: Annotated[
        str,
        typer.Option(
            "--adapters-dir",
            help="Directory holding the adapters, or the s3:// / gs:// URI they were pushed to.",
        ),
    ] = "adapters",
) -> None:
    """List trained adapters: base model, data and eval losses."""
    from infra.storage import is_uri

    if is_uri(adapters_dir):
        from jobs.training.push import list_stored

        found = list_stored(adapters_dir)
    else:
        from jobs.training.adapters import list_adapters

        found = list_adapters(adapters_dir)
    if not found:
        console.print(
            f"no adapters in {adapters_dir}; train one with "
            "`finesift train --data selected.jsonl --name NAME`"
        )
        return
    table = Table(title=f"adapters in {adapters_dir}")
    columns = ("name", "base model", "data", "rows", "steps", "base eval loss", "eval loss")
    for column in (*columns, "merged"):
        table.add_column(column)
    for a in found:
        table.add_row(
            a["name"],
            str(a["base_model"]),
            str(a["data"]),
            str(a["rows"]),
            str(a["steps"]),
            _loss(a["base_eval_loss"]),
            _loss(a["final_eval_loss"]),
            "yes" if a["merged"] else "",
        )
    console.print(table)


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
