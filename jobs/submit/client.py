"""``finesift submit`` and ``finesift jobs``: finesift jobs on a Ray cluster, via the Jobs API.

A submitted job is ``python -m jobs.cli JOB ARGS`` (``finesift JOB ARGS``) run by the
cluster's job server with a runtime_env built from ``cluster/runtime_env.yaml``: the
project as working_dir (uploaded on submit), plus either the project's pip dependencies
(``--pip``) or a container image (``--image``); without either, the nodes must already
have the dependencies (the finesift image of the Dockerfile, which the cluster configs
under ``cluster/`` use).

Token authentication (``RAY_AUTH_MODE=token`` on the cluster) is used, never bypassed:
the token comes from ``--token-file``, ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or, with
``RAY_AUTH_MODE=token`` set locally, Ray's default ``~/.ray/auth_token``; it travels in the
``Authorization`` header only, never in the runtime_env.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shlex
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import yaml
from rich.console import Console

from infra.errors import FinesiftError

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""The directory holding pyproject.toml: the working_dir uploaded with every job."""
RUNTIME_ENV_FILE = PROJECT_ROOT / "cluster" / "runtime_env.yaml"
"""The base runtime_env of every job."""
TERMINAL_STATES = ("SUCCEEDED", "FAILED", "STOPPED")
"""Ray job states after which nothing changes."""

console = Console(stderr=True)


class JobName(StrEnum):
    """The finesift commands that run on a cluster as jobs."""

    curate = "curate"
    train = "train"
    eval = "eval"
    pipeline = "pipeline"


class SubmitError(FinesiftError):
    """A cluster that cannot be reached, refuses us, or does not know a job."""


AGENT_NOT_READY = "No available agent to submit job"
"""What Ray's job server answers (500) before a node's job agent has registered."""
AGENT_WAIT_S = 60.0
AGENT_RETRY_S = 2.0


# ---------------------------------------------------------------------------
# What a job is: entrypoint and runtime_env
# ---------------------------------------------------------------------------


def entrypoint(job: JobName, args: Sequence[str] = ()) -> str:
    """The shell command the cluster runs: ``python -m jobs.cli JOB ARGS``, quoted."""
    return shlex.join(["python", "-m", "jobs.cli", job.value, *args])


def build_runtime_env(
    *,
    base_file: Path | None = RUNTIME_ENV_FILE,
    working_dir: Path = PROJECT_ROOT,
    pip: bool = False,
    image: str | None = None,
    env_vars: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The runtime_env of a finesift job.

    Args:
        base_file: a runtime_env YAML (``cluster/runtime_env.yaml``); None starts empty.
        working_dir: the project directory uploaded as the job's working_dir.
        pip: add the project's pinned dependencies from pyproject.toml as ``pip``.
        image: run the job in this container image (``image_uri``); the image must hold
            the project (see the Dockerfile), since Ray allows no working_dir with an image.
        env_vars: extra environment variables for the job, over the file's.

    Raises:
        SubmitError: on an unreadable base file, a working_dir without the project, or
            ``pip`` together with ``image``.
    """
    if pip and image:
        raise SubmitError(
            "--pip and --image exclude each other: an image already holds the dependencies"
        )
    env: dict[str, Any] = _read_runtime_env(base_file) if base_file is not None else {}
    merged_vars = {str(k): str(v) for k, v in (env.get("env_vars") or {}).items()}
    merged_vars.update(env_vars or {})
    if image:
        # Ray runs an image_uri job with only env_vars and config beside it.
        env = {k: v for k, v in env.items() if k == "config"}
        env["image_uri"] = image
    else:
        root = Path(working_dir).expanduser().resolve()
        if not (root / "jobs").is_dir() or not (root / "quality").is_dir():
            raise SubmitError(
                f"working dir {root} does not hold the finesift project (no jobs/ and "
                "quality/ packages); pass --working-dir with the project root"
            )
        env["working_dir"] = str(root)
        if pip:
            # Ray itself is on the cluster already (the job server runs it); reinstalling it
            # into the job's virtualenv could only bring a mismatched version.
            deps = project_requirements(root / "pyproject.toml")
            env["pip"] = {"packages": [d for d in deps if _name(d) != "ray"]}
    if merged_vars:
        env["env_vars"] = merged_vars
    return env


def _read_runtime_env(path: Path) -> dict[str, Any]:
    """A runtime_env YAML mapping, with errors that name the file."""
    p = Path(path)
    if not p.is_file():
        raise SubmitError(f"runtime_env file {p} does not exist; pass --runtime-env FILE")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SubmitError(f"runtime_env file {p} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SubmitError(f"runtime_env file {p} must be a mapping (working_dir:, env_vars:...)")
    return data


def project_requirements(pyproject: Path) -> list[str]:
    """The pinned dependencies of ``[project].dependencies`` in a pyproject.toml."""
    try:
        data = tomllib.loads(Path(pyproject).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SubmitError(f"cannot read the dependencies from {pyproject}: {exc}") from exc
    deps = data.get("project", {}).get("dependencies", [])
    if not deps:
        raise SubmitError(f"{pyproject} lists no [project].dependencies to install with --pip")
    return [str(d) for d in deps]


def _name(requirement: str) -> str:
    """The distribution name of a requirement string: ``ray[data]==2.60.0`` -> ``ray``."""
    return re.split(r"[\[=<>!~; ]", requirement, maxsplit=1)[0].strip().lower()


def relative_output_warnings(args: Sequence[str]) -> list[str]:
    """Warnings for output options given relative paths, which would vanish on a cluster.

    A job runs in a temporary copy of the project, so ``--out runs/x`` writes into that
    copy. Absolute paths on shared storage (or s3:// / gs:// where the job supports it)
    survive the job.
    """
    options = ("--out", "-o", "--adapters-dir", "--storage-path")
    found = []
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if name in options and not eq and i + 1 < len(args):
            value = args[i + 1]
        elif name not in options or not eq:
            continue
        if "://" not in value and not Path(value).is_absolute():
            found.append(
                f"{name} {value} is relative: the job writes it inside its temporary working "
                "dir on the cluster; use an absolute path on shared storage"
            )
    return found


# ---------------------------------------------------------------------------
# Talking to the cluster
# ---------------------------------------------------------------------------


def resolve_address(address: str | None) -> str:
    """The job server URL: ``address``, else $RAY_API_SERVER_ADDRESS, else an http $RAY_ADDRESS.

    Raises:
        SubmitError: when there is none, or it is not an http(s):// URL.
    """
    candidates = [
        address,
        os.environ.get("RAY_API_SERVER_ADDRESS"),
        os.environ.get("RAY_ADDRESS") if "://" in os.environ.get("RAY_ADDRESS", "") else None,
    ]
    chosen = next((c.strip() for c in candidates if c and c.strip()), None)
    if chosen is None:
        raise SubmitError(
            "no cluster address: pass --address http://HEAD:8265 (the Ray dashboard of the "
            "head node) or set RAY_API_SERVER_ADDRESS"
        )
    if not chosen.startswith(("http://", "https://")):
        raise SubmitError(
            f"--address {chosen!r} is not a job server URL; write the dashboard URL, e.g. "
            "http://127.0.0.1:8265 (`ray dashboard cluster/aws.yaml` forwards a cloud head there)"
        )
    return chosen.rstrip("/")


def read_token(token_file: Path | None = None) -> str | None:
    """The cluster's auth token from ``token_file``, $RAY_AUTH_TOKEN or $RAY_AUTH_TOKEN_PATH.

    None means: let Ray find it (with ``RAY_AUTH_MODE=token``, in ``~/.ray/auth_token``).

    Raises:
        SubmitError: when a named token file is missing or empty.
    """
    if token_file is None and os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return os.environ["RAY_AUTH_TOKEN"].strip()
    path = token_file or (
        Path(os.environ["RAY_AUTH_TOKEN_PATH"]) if os.environ.get("RAY_AUTH_TOKEN_PATH") else None
    )
    if path is None:
        return None
    path = Path(path).expanduser()
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SubmitError(
            f"cannot read the auth token file {path}: {exc.strerror}; `ray get-auth-token` "
            "on the head node prints the token"
        ) from exc
    if not token:
        raise SubmitError(f"auth token file {path} is empty")
    return token


@contextlib.contextmanager
def _api_server_address(address: str) -> Iterator[None]:
    """Make the SDK use ``address``: it prefers $RAY_API_SERVER_ADDRESS / $RAY_ADDRESS."""
    old = os.environ.get("RAY_API_SERVER_ADDRESS")
    os.environ["RAY_API_SERVER_ADDRESS"] = address
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("RAY_API_SERVER_ADDRESS", None)
        else:
            os.environ["RAY_API_SERVER_ADDRESS"] = old


def connect(address: str | None = None, token_file: Path | None = None) -> JobSubmissionClient:
    """A JobSubmissionClient for the cluster's job server, authenticated when a token is known.

    Raises:
        SubmitError: when the server cannot be reached or refuses the token.
    """
    from ray.job_submission import JobSubmissionClient

    url = resolve_address(address)
    token = read_token(token_file)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    _quiet_sdk_logs()
    with _api_server_address(url), cluster_errors(url):
        return JobSubmissionClient(url, headers=headers)


def _quiet_sdk_logs() -> None:
    """Keep the SDK's per-request INFO lines (uploading package...) out of the CLI output."""
    for name in (
        "ray.dashboard.modules.dashboard_sdk",
        "ray.dashboard.modules.job.sdk",
        "ray._private.runtime_env.packaging",
        "ray._private.runtime_env.working_dir",  # ".git is now ignored by default", every time
    ):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def cluster_errors(url: str, job_id: str | None = None) -> Iterator[None]:
    """Turn the SDK's connection, auth and not-found errors into messages with a fix."""
    from ray.exceptions import AuthenticationError

    try:
        yield
    except AuthenticationError as exc:
        raise SubmitError(
            f"the cluster at {url} refused the request ({str(exc).splitlines()[0]}). It uses "
            "token authentication: export RAY_AUTH_TOKEN=<token> (print it with `ray "
            "get-auth-token` on the head node) or pass --token-file FILE"
        ) from exc
    except ConnectionError as exc:
        raise SubmitError(
            f"cannot reach the Ray job server at {url}: is the cluster up (`ray status` on the "
            "head) and its dashboard port reachable? For a cloud cluster, `ray dashboard "
            "cluster/aws.yaml` forwards it to http://127.0.0.1:8265"
        ) from exc
    except RuntimeError as exc:
        if job_id and "does not exist" in str(exc):
            raise SubmitError(
                f"no job {job_id} on the cluster at {url}; `finesift jobs list` shows its jobs"
            ) from exc
        if "Request failed with status code" in str(exc):
            # The server's answer ends its traceback with the one line that matters.
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            status = lines[0].split(":", 1)[0]
            raise SubmitError(
                f"the job server at {url} refused the request ({status}): {lines[-1]}"
            ) from exc
        raise


def submit(
    client: JobSubmissionClient,
    job: JobName,
    args: Sequence[str],
    runtime_env: Mapping[str, Any],
    *,
    submission_id: str | None = None,
    entrypoint_num_cpus: float | None = None,
    entrypoint_num_gpus: float | None = None,
) -> str:
    """Submit one finesift job; return its submission id (the job id the CLI prints).

    A cluster that has just started may have no job agent yet (the server answers 500
    "No available agent to submit job, please try again later"): that answer is retried
    for up to ``AGENT_WAIT_S`` seconds.
    """
    url = client.get_address()
    deadline = time.monotonic() + AGENT_WAIT_S
    told = False
    with cluster_errors(url):
        while True:
            try:
                return client.submit_job(
                    entrypoint=entrypoint(job, args),
                    runtime_env=dict(runtime_env),
                    submission_id=submission_id,
                    metadata={"finesift_job": job.value},
                    entrypoint_num_cpus=entrypoint_num_cpus or None,
                    entrypoint_num_gpus=entrypoint_num_gpus or None,
                )
            except RuntimeError as exc:
                if AGENT_NOT_READY not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise SubmitError(
                        f"the job server at {url} still had no job agent after "
                        f"{AGENT_WAIT_S:.0f} s (a node that has just started registers it "
                        "within seconds, longer on a loaded machine): check `ray status` "
                        "on the head and submit again"
                    ) from exc
                if not told:
                    console.print(f"waiting for the job agent of {url} to start...")
                    told = True
                time.sleep(AGENT_RETRY_S)


def follow_logs(client: JobSubmissionClient, job_id: str, out: TextIO | None = None) -> str:
    """Stream a job's logs to ``out`` until it ends; return its final status name.

    Uses the SDK's ``tail_job_logs`` websocket; if that drops, falls back to polling.
    """
    out = out or sys.stdout

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            out.write(chunk)
            out.flush()

    with cluster_errors(client.get_address(), job_id):
        try:
            asyncio.run(tail())
        except RuntimeError as exc:
            if "does not exist" in str(exc):
                raise
            console.print(f"[yellow]log stream closed ({exc}); waiting for the job to end")
        return wait_for(client, job_id)


def wait_for(
    client: JobSubmissionClient, job_id: str, timeout_s: float | None = None, poll_s: float = 1.0
) -> str:
    """Poll until the job reaches a terminal state; return it.

    Raises:
        SubmitError: when ``timeout_s`` passes first.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    with cluster_errors(client.get_address(), job_id):
        while True:
            status = str(client.get_job_status(job_id).value)
            if status in TERMINAL_STATES:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise SubmitError(
                    f"job {job_id} is still {status} after {timeout_s:.0f}s; "
                    f"`finesift jobs logs {job_id}` shows what it is doing"
                )
            time.sleep(poll_s)


def failure_message(client: JobSubmissionClient, job_id: str, status: str) -> str:
    """One line saying how a job ended badly and where to look."""
    info = client.get_job_info(job_id)
    why = (info.message or "").strip().splitlines()
    return f"job {job_id} {status}: {why[-1] if why else 'no message'}; " + (
        f"`finesift jobs logs {job_id}` prints its full log"
    )
