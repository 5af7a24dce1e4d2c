"""The ``finesift`` command line: one typer app, one subcommand per job.

Job modules import Ray, torch and transformers lazily, inside their commands, so
``finesift --help`` stays fast.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from quality.errors import FinesiftError

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
from jobs import curate_cli  # noqa: E402

app.command("curate")(curate_cli.curate_command)
app.command("demo-data")(curate_cli.demo_data_command)
app.command("rules")(curate_cli.rules_command)
app.command("models")(curate_cli.models_command)

# --- training (issue 3) ---

# --- serving (issue 4) ---


def main() -> None:
    """Console-script entry point: user errors print as one clear message, exit code 2."""
    try:
        app()
    except FinesiftError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
