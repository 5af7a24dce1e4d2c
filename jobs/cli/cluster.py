"""CLI of the cluster side: ``finesift submit`` and ``finesift jobs list|status|logs|stop``.

The work is in :mod:`jobs.submit.client`; ``pipeline`` is here too, as a job that runs
mostly on clusters.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from jobs.cli.options import JobSpec, Opt, config_command
from jobs.pipeline import PipelineConfig
from jobs.submit.client import (
    PROJECT_ROOT,
    RUNTIME_ENV_FILE,
    JobName,
    SubmitError,
    build_runtime_env,
    cluster_errors,
    connect,
    failure_message,
    follow_logs,
    relative_output_warnings,
    submit,
    wait_for,
)

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

console = Console(stderr=True)

# ---------------------------------------------------------------------------
# CLI: finesift submit
# ---------------------------------------------------------------------------

AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        "-a",
        help="Job server URL of the cluster, http://HEAD:8265. Default: "
        "$RAY_API_SERVER_ADDRESS, or $RAY_ADDRESS when it is a URL.",
    ),
]
TokenFileOption = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help="File holding the cluster's auth token (RAY_AUTH_MODE=token clusters). Default: "
        "$RAY_AUTH_TOKEN, $RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token with RAY_AUTH_MODE=token.",
    ),
]


def submit_command(
    job: Annotated[JobName, typer.Argument(help="The finesift job to run on the cluster.")],
    args: Annotated[
        list[str] | None,
        typer.Argument(
            help="Arguments of the job, after `--`, exactly as for `finesift JOB` "
            "(e.g. -- /shared/noisy.jsonl --out /shared/curated --budget 500).",
            metavar="[-- ARGS...]",
        ),
    ] = None,
    address: AddressOption = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="Stream the job's logs until it ends; exit 1 unless it succeeds."
        ),
    ] = False,
    image: Annotated[
        str | None,
        typer.Option(
            help="Run the job in this container image (built from the Dockerfile); the code "
            "then comes from the image, not from the working dir."
        ),
    ] = None,
    pip: Annotated[
        bool,
        typer.Option(
            "--pip", help="Install the project's pinned dependencies on the cluster for this job."
        ),
    ] = False,
    working_dir: Annotated[
        Path,
        typer.Option(help="Project directory uploaded as the job's working dir."),
    ] = PROJECT_ROOT,
    runtime_env_file: Annotated[
        Path,
        typer.Option("--runtime-env", help="Base runtime_env YAML."),
    ] = RUNTIME_ENV_FILE,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", "-e", help="Extra environment variable for the job, KEY=VALUE."),
    ] = None,
    submission_id: Annotated[
        str | None, typer.Option(help="Job id to use instead of a generated one.")
    ] = None,
    entrypoint_num_gpus: Annotated[
        float,
        typer.Option(
            help="GPUs reserved for the job's driver process (the pipeline's serving "
            "does not need them; training workers reserve their own)."
        ),
    ] = 0.0,
    token_file: TokenFileOption = None,
) -> None:
    """Submit a finesift job to a Ray cluster and print its job id.

    The job runs `python -m jobs.cli JOB ARGS` with the project as its working dir.

    Give inputs and outputs as absolute paths on storage that every node sees.
    """
    job_args = list(args or [])
    extra = _parse_env(env or [])
    runtime_env = build_runtime_env(
        base_file=runtime_env_file, working_dir=working_dir, pip=pip, image=image, env_vars=extra
    )
    for warning in relative_output_warnings(job_args):
        console.print(f"[yellow]warning:[/] {warning}")
    client = connect(address, token_file)
    job_id = submit(
        client,
        job,
        job_args,
        runtime_env,
        submission_id=submission_id,
        entrypoint_num_gpus=entrypoint_num_gpus,
    )
    typer.echo(job_id)
    if not follow:
        console.print(
            f"submitted {job.value} as {job_id}; follow it with `finesift jobs logs {job_id} "
            "--follow`"
        )
        return
    _exit_with(client, job_id, follow_logs(client, job_id))


def _parse_env(items: Sequence[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SubmitError(f"--env {item!r} is not KEY=VALUE, e.g. --env HF_HUB_OFFLINE=1")
        pairs[key] = value
    return pairs


def _exit_with(client: JobSubmissionClient, job_id: str, status: str) -> None:
    """Exit 0 for SUCCEEDED, else print why and exit 1."""
    if status == "SUCCEEDED":
        console.print(f"[green]job {job_id} SUCCEEDED")
        return
    console.print(f"[bold red]{failure_message(client, job_id, status)}")
    raise typer.Exit(1)


# ---------------------------------------------------------------------------
# CLI: finesift jobs list|status|logs|stop
# ---------------------------------------------------------------------------

jobs_app = typer.Typer(
    help="List, inspect, follow and stop jobs on a Ray cluster.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@jobs_app.command("list")
def list_command(address: AddressOption = None, token_file: TokenFileOption = None) -> None:
    """List the cluster's jobs, newest first."""
    client = connect(address, token_file)
    with cluster_errors(client.get_address()):
        jobs = client.list_jobs()
    table = Table(title=f"jobs on {client.get_address()}")
    for col in ("job id", "status", "started"):
        table.add_column(col, no_wrap=True)  # ids are copied from here: never cut them
    table.add_column("entrypoint", overflow="fold")
    for info in sorted(jobs, key=lambda j: j.start_time or 0, reverse=True):
        started = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.start_time / 1000))
            if info.start_time
            else "-"
        )
        table.add_row(
            info.submission_id or info.job_id or "-",
            str(info.status.value),
            started,
            info.entrypoint,
        )
    Console().print(table)


@jobs_app.command("status")
def status_command(
    job_id: Annotated[str, typer.Argument(help="Job id printed by `finesift submit`.")],
    address: AddressOption = None,
    token_file: TokenFileOption = None,
) -> None:
    """Print a job's status (and why, when it failed)."""
    client = connect(address, token_file)
    with cluster_errors(client.get_address(), job_id):
        info = client.get_job_info(job_id)
    typer.echo(str(info.status.value))
    if info.message:
        console.print(info.message.strip())


@jobs_app.command("logs")
def logs_command(
    job_id: Annotated[str, typer.Argument(help="Job id printed by `finesift submit`.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep streaming until the job ends.")
    ] = False,
    address: AddressOption = None,
    token_file: TokenFileOption = None,
) -> None:
    """Print a job's logs; with --follow, stream them and exit 1 unless the job succeeds."""
    client = connect(address, token_file)
    if follow:
        _exit_with(client, job_id, follow_logs(client, job_id))
        return
    with cluster_errors(client.get_address(), job_id):
        sys.stdout.write(client.get_job_logs(job_id))


@jobs_app.command("stop")
def stop_command(
    job_id: Annotated[str, typer.Argument(help="Job id printed by `finesift submit`.")],
    wait: Annotated[bool, typer.Option(help="Wait until the job has stopped.")] = True,
    address: AddressOption = None,
    token_file: TokenFileOption = None,
) -> None:
    """Stop a running job."""
    client = connect(address, token_file)
    with cluster_errors(client.get_address(), job_id):
        stopping = client.stop_job(job_id)
    if not stopping:
        status = str(client.get_job_status(job_id).value)
        console.print(f"job {job_id} was not running ({status})")
        return
    final = wait_for(client, job_id, timeout_s=120) if wait else "stopping"
    console.print(f"job {job_id}: {final}")


PIPELINE = JobSpec(
    PipelineConfig,
    options=(
        Opt("data", help="Noisy input file or directory (repeat for several)."),
        Opt("name"),
        Opt("out", ("--out", "-o")),
        Opt("budget"),
        Opt("eval_data"),
        Opt("train.base_model"),
        Opt("deploy"),
    ),
)


def _pipeline(cfg: PipelineConfig) -> None:
    from jobs.pipeline import run

    report = run(cfg)
    console.print(f"[bold green]pipeline done[/] in {report['seconds']:.0f} s: {cfg.out}")


pipeline_command = config_command(
    PIPELINE,
    _pipeline,
    doc="""Curate, train, evaluate and deploy: the whole finesift flow as one (Ray) job.

    Run it on a cluster with `finesift submit pipeline --address URL --follow -- ARGS`.
    """,
)
