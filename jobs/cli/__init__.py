"""The ``finesift`` command line: one typer app, every command registered here.

The commands themselves live beside this module, one per side of the product
(curation, training, serving, evaluation, cluster, review); job commands are generated
from their config dataclasses (:mod:`jobs.cli.options`). Ray, torch and transformers are
imported inside the commands, so ``finesift --help`` stays fast. On a cluster a job runs
as ``python -m jobs.cli JOB ARGS`` (what ``finesift submit`` sends).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer
from rich.console import Console
from rich.markup import escape

from infra.errors import FinesiftError
from jobs.cli import cluster, curation, evaluation, serving, training
from jobs.review.command import review_command

app = typer.Typer(
    name="finesift",
    help="Curate a small, clean, diverse instruction dataset on Ray, fine-tune a LoRA adapter "
    "on it, serve it, and evaluate it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)

COMMANDS = {
    "curate": curation.curate_command,
    "review": review_command,
    "demo-data": curation.demo_data_command,
    "rules": curation.rules_command,
    "models": curation.models_command,
    "train": training.train_command,
    "adapters": training.adapters_command,
    "serve": serving.serve_command,
    "query": serving.query_command,
    "spot-check": serving.spot_check_command,
    "eval": evaluation.eval_command,
    "experiment": evaluation.experiment_command,
    "report": evaluation.report_command,
    "pipeline": cluster.pipeline_command,
    "submit": cluster.submit_command,
}
for _name, _command in COMMANDS.items():
    app.command(_name)(_command)
app.add_typer(cluster.jobs_app, name="jobs")


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: user errors print as one line, exit code 2.

    One unwrapped line: ``finesift submit`` quotes a failed job's last log line as the
    reason, and a job log is no terminal (rich would wrap it at 80 columns).
    """
    try:
        app(args=list(argv) if argv is not None else None, standalone_mode=True)
    except FinesiftError as exc:
        # Escaped: a message may hold brackets (pip install 'finesift[vllm]') that rich
        # would otherwise take for markup and drop.
        err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
