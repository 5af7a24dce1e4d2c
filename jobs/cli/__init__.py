"""The ``finesift`` command line: one typer app, one subcommand per job.

Job modules import Ray, torch and transformers lazily, inside their commands, so
``finesift --help`` stays fast.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from infra.errors import FinesiftError

app = typer.Typer(
    name="finesift",
    help="Curate a small, clean, diverse instruction dataset on Ray, fine-tune a LoRA adapter "
    "on it, serve it, and evaluate it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)

# --- curation (issue 2) ---
from jobs.cli import curation as curate_cli  # noqa: E402

app.command("curate")(curate_cli.curate_command)
app.command("demo-data")(curate_cli.demo_data_command)
app.command("rules")(curate_cli.rules_command)
app.command("models")(curate_cli.models_command)

# --- training (issue 3) ---
from jobs.training import adapters as adapters_cli  # noqa: E402
from jobs.training import train as train_cli  # noqa: E402

app.command("train")(train_cli.train_command)
app.command("adapters")(adapters_cli.adapters_command)

# --- serving (issue 4) ---
from jobs.cli import serving as serve_cli  # noqa: E402

app.command("serve")(serve_cli.serve_command)
app.command("query")(serve_cli.query_command)
app.command("spot-check")(serve_cli.spot_check_command)


# --- cluster (issue 6) ---
from collections.abc import Callable  # noqa: E402

from jobs import pipeline as pipeline_cli  # noqa: E402
from jobs.cli import cluster as submit_cli  # noqa: E402

app.command("submit")(submit_cli.submit_command)
app.add_typer(submit_cli.jobs_app, name="jobs")
app.command("pipeline")(pipeline_cli.pipeline_command)


def run_main(command: Callable[..., object]) -> None:
    """Run one typer command as a program, as ``python -m jobs.curation.curate ARGS`` does
    on a cluster.

    User errors print as in :func:`main`: one clear message, exit code 2.
    """
    one = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    one.command()(command)
    try:
        one()
    except FinesiftError as exc:
        # One unwrapped line: `finesift submit` quotes a failed job's last log line as the
        # reason, and a job log is no terminal (rich would wrap it at 80 columns).
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        sys.exit(2)


# --- evaluation (issue 5) ---
from jobs.cli import evaluation as eval_cli  # noqa: E402

app.command("eval")(eval_cli.eval_command)
app.command("experiment")(eval_cli.experiment_command)
app.command("report")(eval_cli.report_command)

# --- review (issue 17) ---
from jobs.review.command import review_command  # noqa: E402

app.command("review")(review_command)


def main() -> None:
    """Console-script entry point: user errors print as one clear message, exit code 2."""
    try:
        app()
    except FinesiftError as exc:
        # One unwrapped line, as run_main prints it: a terminal wraps it, a log keeps it whole.
        err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
