"""``finesift submit`` / ``finesift jobs``: unit tests, and a real two-node local cluster.

The ray-marked tests do not use the session ``ray_session``: they start their own cluster
with ``ray start --block`` (head with the dashboard's job server, plus one worker node) on
127.0.0.1, free ports, a private ``--temp-dir`` and token authentication, submit jobs to it
through the CLI and stop exactly the processes they started (never ``ray stop``, which
would also stop every other Ray on the machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jobs.submit.client import (
    PROJECT_ROOT,
    JobName,
    SubmitError,
    build_runtime_env,
    connect,
    entrypoint,
    project_requirements,
    read_token,
    relative_output_warnings,
    resolve_address,
)

runner = CliRunner()

# ---------------------------------------------------------------------------
# Unit: what gets submitted
# ---------------------------------------------------------------------------


def test_entrypoint_runs_the_finesift_command_with_quoted_args():
    assert entrypoint(JobName.curate, ["in.jsonl", "--out", "/x y"]) == (
        "python -m jobs.cli curate in.jsonl --out '/x y'"
    )
    assert entrypoint(JobName.eval) == "python -m jobs.cli eval"
    assert entrypoint(JobName.pipeline, ["--name", "a"]) == "python -m jobs.cli pipeline --name a"


def test_runtime_env_uploads_the_project_without_venv_or_data():
    from ray.runtime_env import RuntimeEnv

    env = build_runtime_env(env_vars={"EXTRA": "1"})
    assert env["working_dir"] == str(PROJECT_ROOT)
    assert (Path(env["working_dir"]) / "jobs" / "submit" / "client.py").is_file()
    assert {".venv", ".git", "data", "runs", "adapters"} <= set(env["excludes"])
    assert env["env_vars"]["HF_HUB_OFFLINE"] == "1" and env["env_vars"]["EXTRA"] == "1"
    assert "pip" not in env and "image_uri" not in env
    RuntimeEnv(**env)  # Ray accepts it


def test_runtime_env_with_pip_pins_the_project_dependencies():
    env = build_runtime_env(pip=True)
    packages = env["pip"]["packages"]
    pinned = project_requirements(PROJECT_ROOT / "pyproject.toml")
    assert "torch==2.13.0" in packages and "transformers==5.23.0" in packages
    # Everything but Ray, which the cluster runs already.
    assert [p for p in pinned if p not in packages] == ["ray[data,train,serve]==2.60.0"]


def test_runtime_env_with_an_image_keeps_only_what_ray_allows_beside_it():
    from ray.runtime_env import RuntimeEnv

    env = build_runtime_env(image="ghcr.io/me/finesift:1")
    assert env["image_uri"] == "ghcr.io/me/finesift:1"
    assert set(env) <= {"image_uri", "env_vars", "config"}
    RuntimeEnv(**env)
    with pytest.raises(SubmitError, match="--pip and --image"):
        build_runtime_env(pip=True, image="x")


def test_runtime_env_errors_name_the_problem(tmp_path):
    with pytest.raises(SubmitError, match="does not hold the finesift project"):
        build_runtime_env(working_dir=tmp_path)
    with pytest.raises(SubmitError, match="does not exist"):
        build_runtime_env(base_file=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(SubmitError, match="must be a mapping"):
        build_runtime_env(base_file=bad)


def test_relative_outputs_are_flagged():
    warnings = relative_output_warnings(
        ["in.jsonl", "--out", "runs/x", "--adapters-dir=/abs", "--storage-path=ckpt"]
    )
    assert len(warnings) == 2
    assert "--out runs/x" in warnings[0] and "--storage-path ckpt" in warnings[1]
    assert relative_output_warnings(["--out", "/shared/x", "--storage-path", "s3://b/k"]) == []


# ---------------------------------------------------------------------------
# Unit: address and token
# ---------------------------------------------------------------------------


def test_address_precedence_and_errors(monkeypatch):
    for var in ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(SubmitError, match="--address http://HEAD:8265"):
        resolve_address(None)
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")  # a GCS address is not a job server
    with pytest.raises(SubmitError, match="no cluster address"):
        resolve_address(None)
    monkeypatch.setenv("RAY_ADDRESS", "http://head:8265/")
    assert resolve_address(None) == "http://head:8265"
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "https://api:443")
    assert resolve_address(None) == "https://api:443"
    assert resolve_address("http://explicit:8265") == "http://explicit:8265"
    with pytest.raises(SubmitError, match="e.g. http://127.0.0.1:8265"):
        resolve_address("head:8265")


def test_token_sources(monkeypatch, tmp_path):
    for var in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(var, raising=False)
    assert read_token() is None
    token_file = tmp_path / "token"
    token_file.write_text("from-path\n")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token_file))
    assert read_token() == "from-path"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert read_token() == "from-env"
    other = tmp_path / "other"
    other.write_text("from-option")
    assert read_token(other) == "from-option"  # an explicit file wins
    with pytest.raises(SubmitError, match="cannot read the auth token file"):
        read_token(tmp_path / "absent")
    (tmp_path / "empty").write_text("  \n")
    with pytest.raises(SubmitError, match="is empty"):
        read_token(tmp_path / "empty")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_cluster_is_a_clear_error():
    with pytest.raises(SubmitError, match="cannot reach the Ray job server"):
        connect(f"http://127.0.0.1:{free_port()}")


class StartingServer:
    """A job server whose agent is not registered for the first ``not_ready`` calls."""

    def __init__(self, not_ready: int, then: Exception | None = None) -> None:
        self.not_ready, self.then, self.calls = not_ready, then, 0

    def get_address(self) -> str:
        return "http://head:8265"

    def submit_job(self, **_: object) -> str:
        self.calls += 1
        if self.calls <= self.not_ready:
            raise RuntimeError(
                "Request failed with status code 500: No available agent to submit job, "
                "please try again later.."
            )
        if self.then is not None:
            raise self.then
        return "raysubmit_ok"


def test_submit_waits_for_a_starting_job_agent(monkeypatch):
    import jobs.submit.client as submit_module

    monkeypatch.setattr(submit_module, "AGENT_RETRY_S", 0.0)
    server = StartingServer(not_ready=2)
    assert submit_module.submit(server, JobName.curate, ["in.jsonl"], {}) == "raysubmit_ok"
    assert server.calls == 3
    monkeypatch.setattr(submit_module, "AGENT_WAIT_S", 0.0)
    with pytest.raises(SubmitError, match="still had no job agent.*ray status"):
        submit_module.submit(StartingServer(not_ready=10**6), JobName.curate, [], {})
    refused = RuntimeError(
        "Request failed with status code 400: Traceback (most recent call last):\n"
        '  File "job_head.py", line 1, in submit\n'
        "ValueError: runtime_env field 'pip' is invalid\n"
    )
    with pytest.raises(SubmitError) as err:
        submit_module.submit(StartingServer(0, then=refused), JobName.curate, [], {})
    assert str(err.value) == (
        "the job server at http://head:8265 refused the request (Request failed with status "
        "code 400): ValueError: runtime_env field 'pip' is invalid"
    )


def test_cli_errors_print_without_traceback(monkeypatch):
    from jobs.cli import app

    for var in ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    result = runner.invoke(app, ["submit", "nonsense"])
    assert result.exit_code == 2 and "nonsense" in result.output  # typer's usage error
    result = runner.invoke(app, ["submit", "curate", "--", "in.jsonl"])
    assert isinstance(result.exception, SubmitError)  # main() prints it as one line
    assert "no cluster address" in str(result.exception)
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "jobs", "list", "--address", "head:8265"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("RAY_")},
        timeout=120,
    )
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr


def test_a_job_error_is_one_line_so_the_failure_reason_is_whole(capsys, monkeypatch):
    from infra.errors import FinesiftError
    from jobs import cli

    why = "scaling.use_gpu is set but the Ray cluster has no GPU; " * 3 + "drop --use-gpu"

    def train(cfg) -> None:
        raise FinesiftError(why)

    monkeypatch.setattr("jobs.training.train.train", train)
    with pytest.raises(SystemExit) as exit_info:
        # as `python -m jobs.cli train ...` runs on a cluster: stderr is no terminal
        cli.main(["train", "--data", "x.jsonl", "--name", "n"])
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == f"error: {why}"  # failure_message quotes the log's last line


# ---------------------------------------------------------------------------
# Ray: a real local cluster (head + one worker node), token authentication on
# ---------------------------------------------------------------------------

VENV_BIN = Path(sys.executable).parent
TRIES = 5
"""Attempts to start each node (see local_cluster)."""


@dataclass
class LocalCluster:
    """A two-node Ray cluster this test module started, and how to reach it."""

    address: str
    token: str
    temp_dir: Path
    processes: list[subprocess.Popen]


def _start_node(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """``ray start --block ARGS`` in its own session; returns once it says it started."""
    handle = log.open("w")
    proc = subprocess.Popen(
        [str(VENV_BIN / "ray"), "start", "--block", *args],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "Ray runtime started" in text:
            return proc
        if proc.poll() is not None:
            break
        time.sleep(1)
    _stop([proc], None)
    raise RuntimeError(f"ray start {' '.join(args[:2])} failed:\n{log.read_text()[-3000:]}")


def _stop(processes: list[subprocess.Popen], temp_dir: Path | None, token: str = "") -> None:
    """Stop the nodes we started and nothing else.

    SIGTERM each ``ray start --block`` (it shuts its node down), then SIGKILL what is left
    of their process groups, and of any process that runs out of our private temp dir or
    carries our cluster's token in its environment (Ray workers, drivers and the client
    server live in process groups of their own, some under a rewritten process title).
    """
    import psutil

    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    if temp_dir is None:
        return
    marker = str(temp_dir)
    for p in psutil.process_iter(["pid", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            ours = any(marker in part for part in p.info["cmdline"] or ())
            ours = ours or bool(token) and p.environ().get("RAY_AUTH_TOKEN") == token
            if ours and p.pid != os.getpid():
                p.kill()


@pytest.fixture(scope="module")
def local_cluster():
    """Head (dashboard + job server) and one worker node, 2 logical CPUs each."""
    temp_dir = Path(tempfile.mkdtemp(prefix="fsray-", dir="/tmp"))  # short: socket paths
    token = secrets.token_hex(32)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=token,
        RAY_USAGE_STATS_ENABLED="0",
        # A loaded 2-core machine starts the dashboard agent slowly; the default gives up.
        RAY_agent_register_timeout_ms="120000",
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",  # the job's `python`
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    common = [
        "--node-ip-address=127.0.0.1",
        "--num-cpus=2",
        "--object-store-memory=150000000",
        "--disable-usage-stats",
    ]

    def node_ports() -> list[str]:  # the defaults (52365...) collide with other Rays here
        return [
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            f"--metrics-export-port={free_port()}",
        ]

    processes: list[subprocess.Popen] = []
    address = ""
    try:
        # Ray's raylet gives its dashboard agent a fixed 15 s to come up; a loaded 2-core
        # machine can miss it, so each node gets several tries.
        for attempt in range(TRIES):
            gcs_port, dashboard_port = free_port(), free_port()
            head = [
                "--head",
                f"--port={gcs_port}",
                f"--dashboard-port={dashboard_port}",
                "--dashboard-host=127.0.0.1",
                "--include-dashboard=true",
                f"--ray-client-server-port={free_port()}",
                f"--temp-dir={temp_dir}",
            ]
            try:
                log = temp_dir / f"head-{attempt}.log"
                processes.append(_start_node(head + common + node_ports(), env, log))
                break
            except RuntimeError:
                if attempt == TRIES - 1:
                    raise
        address = f"http://127.0.0.1:{dashboard_port}"
        _wait_for_nodes(LocalCluster(address, token, temp_dir, processes), 1)
        for attempt in range(TRIES):
            # Its own temp dir, as on a real machine: nodes sharing one would share (and
            # garbage-collect) each other's runtime_env directories, a job's cwd included.
            worker = [f"--address=127.0.0.1:{gcs_port}", f"--temp-dir={temp_dir / 'worker'}"]
            try:
                log = temp_dir / f"worker-{attempt}.log"
                processes.append(_start_node(worker + common + node_ports(), env, log))
                break
            except RuntimeError:
                if attempt == TRIES - 1:
                    raise
        cluster = LocalCluster(address, token, temp_dir, processes)
        _wait_for_nodes(cluster, 2)
        yield cluster
    finally:
        if address:
            _stop_jobs(address, token)
        _stop(processes, temp_dir, token)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _wait_for_nodes(cluster: LocalCluster, n: int, timeout_s: float = 120) -> None:
    import requests

    deadline = time.monotonic() + timeout_s
    alive = 0
    while time.monotonic() < deadline:
        try:
            reply = requests.get(
                f"{cluster.address}/api/v0/nodes",
                headers={"Authorization": f"Bearer {cluster.token}"},
                timeout=10,
            ).json()
            nodes = reply["data"]["result"]["result"]
            alive = sum(node["state"] == "ALIVE" for node in nodes)
            if alive >= n:
                return
        except (requests.RequestException, KeyError, ValueError):
            pass
        time.sleep(2)
    raise RuntimeError(f"only {alive} of {n} nodes alive after {timeout_s:.0f}s")


def _stop_jobs(address: str, token: str) -> None:
    """Stop jobs still running (a failed test), so their drivers go with the cluster."""
    with contextlib.suppress(Exception):
        from ray.job_submission import JobSubmissionClient

        client = JobSubmissionClient(address, headers={"Authorization": f"Bearer {token}"})
        for job in client.list_jobs():
            if str(job.status.value) not in ("SUCCEEDED", "FAILED", "STOPPED"):
                client.stop_job(job.submission_id)


def finesift(
    cluster: LocalCluster, *args: str, token: str | None = None
) -> subprocess.CompletedProcess:
    """Run ``finesift ARGS`` as a user would (a fresh process), the token in the env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["RAY_AUTH_TOKEN"] = token if token is not None else cluster.token
    return subprocess.run(
        [sys.executable, "-m", "jobs.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def flat(text: str) -> str:
    """Text with rich's line wrapping undone."""
    return " ".join(text.split())


def write_noisy_rows(path: Path) -> int:
    """A small alpaca file: distinct rows, an exact duplicate, a junk row."""
    topics = [
        ("What is the capital of France?", "The capital of France is Paris."),
        ("Name three primary colors.", "Red, yellow and blue are the primary colors of paint."),
        ("How many legs does a spider have?", "A spider has eight legs."),
        ("What does a thermometer measure?", "A thermometer measures temperature."),
        ("Translate 'thank you' to Spanish.", "In Spanish, 'thank you' is 'gracias'."),
        ("What is 12 times 12?", "Twelve times twelve is one hundred forty-four."),
        ("Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet."),
        (
            "Why do leaves change color in autumn?",
            "Chlorophyll breaks down in autumn, revealing yellow and orange pigments.",
        ),
        (
            "What is the boiling point of water at sea level?",
            "Water boils at 100 degrees Celsius at sea level.",
        ),
        ("Give a synonym for 'happy'.", "A synonym for 'happy' is 'joyful'."),
        ("What gas do plants absorb?", "Plants absorb carbon dioxide from the air."),
        ("What is the largest planet?", "Jupiter is the largest planet in our solar system."),
    ]
    rows = [{"instruction": q, "input": "", "output": a} for q, a in topics]
    rows.append(dict(rows[0]))  # exact duplicate
    rows.append({"instruction": "Write a poem.", "input": "", "output": "N/A"})  # junk
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return len(rows)


@pytest.mark.ray
@pytest.mark.slow  # a real two-node cluster: minutes on 2 cores; run by `make test-all`
def test_token_auth_is_enforced(local_cluster):
    address = ["--address", local_cluster.address]
    refused = finesift(local_cluster, "jobs", "list", *address, token="not-the-token")
    assert refused.returncode == 2
    assert "uses token authentication" in flat(refused.stderr)
    assert "Traceback" not in refused.stderr
    assert finesift(local_cluster, "jobs", "list", *address).returncode == 0


@pytest.mark.ray
@pytest.mark.slow  # a real two-node cluster: minutes on 2 cores; run by `make test-all`
def test_submit_curate_then_train_on_a_local_cluster(local_cluster, tmp_path, tiny_model_dir):
    address = ["--address", local_cluster.address]
    data = tmp_path / "noisy.jsonl"
    n_rows = write_noisy_rows(data)
    curated = tmp_path / "curated"
    result = finesift(
        local_cluster, "submit", "curate", *address, "--follow",
        "--", str(data), "--out", str(curated), "--budget", "6",
        "embed.model=hashing", "embed.num_cpus=1", "clusters.rows_per_cluster=4",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    job_id = result.stdout.splitlines()[0].strip()
    assert job_id.startswith("raysubmit_")
    assert "Running entrypoint for job" in result.stdout  # the streamed job log
    assert f"job {job_id} SUCCEEDED" in flat(result.stderr)
    summary = json.loads((curated / "summary.json").read_text())
    assert summary["input_rows"] == n_rows
    selected = (curated / "selected.jsonl").read_text().splitlines()
    assert len(selected) == summary["by_status"]["selected"] == 6

    status = finesift(local_cluster, "jobs", "status", job_id, *address)
    assert status.returncode == 0 and status.stdout.startswith("SUCCEEDED")

    adapters = tmp_path / "adapters"
    result = finesift(
        local_cluster, "submit", "train", *address, "--follow",
        "--", "--data", str(curated / "selected.jsonl"), "--name", "tiny",
        "--base-model", str(tiny_model_dir), "--adapters-dir", str(adapters),
        "--storage-path", str(tmp_path / "checkpoints"), "--max-steps", "2",
        "--num-workers", "1", "optim.batch_size=2", "text.max_length=64",
        "eval.every_steps=2", "checkpoint.every_steps=2",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    meta = json.loads((adapters / "tiny" / "finesift.json").read_text())
    assert meta["steps"] == 2
    assert (adapters / "tiny" / "adapter_model.safetensors").is_file()

    listed = finesift(local_cluster, "jobs", "list", *address)
    assert job_id in listed.stdout


@pytest.mark.ray
@pytest.mark.slow  # a real two-node cluster: minutes on 2 cores; run by `make test-all`
def test_a_failing_job_exits_nonzero_with_its_reason(local_cluster, tmp_path):
    result = finesift(
        local_cluster, "submit", "curate", "--address", local_cluster.address, "--follow",
        "--", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.returncode == 1
    assert "does not exist" in flat(result.stdout)  # curate's own message, in the job log
    assert "FAILED" in flat(result.stderr)


@pytest.mark.ray
@pytest.mark.slow  # curate + train + eval + Serve: several minutes on 2 shared cores
def test_submit_pipeline_serves_the_new_adapter(local_cluster, tmp_path, tiny_model_dir):
    import requests

    data = tmp_path / "noisy.jsonl"
    write_noisy_rows(data)
    out = tmp_path / "pipeline"
    port = free_port()
    result = finesift(
        local_cluster, "submit", "pipeline", "--address", local_cluster.address, "--follow",
        "--", "--data", str(data), "--name", "tiny-pipe", "--out", str(out), "--budget", "6",
        "--base-model", str(tiny_model_dir),
        "curate.embed.model=hashing", "curate.embed.num_cpus=1",
        "curate.clusters.rows_per_cluster=4",
        "train.optim.max_steps=2", "train.optim.batch_size=2", "train.text.max_length=64",
        "train.scaling.num_workers=1",
        "eval.inference.num_cpus=1", "eval.generation.max_new_tokens=4",
        f"serve.port={port}", "serve.scaling.num_cpus=1",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    report = json.loads((out / "pipeline.json").read_text())
    steps = report["steps"]
    assert steps["curate"]["by_status"]["selected"] == 6
    assert steps["split"]["held_out"] >= 1  # eval rows the adapter never trained on
    assert steps["train"]["steps"] == 2
    assert (out / "adapters" / "tiny-pipe" / "adapter_model.safetensors").is_file()
    assert [m["name"] for m in steps["eval"]["models"]] == ["base", "tiny-pipe"]
    assert (out / "eval" / "eval.json").is_file()
    # The Serve app outlives the job that deployed it, and serves the new adapter.
    url = steps["deploy"]["url"]
    assert url == f"http://127.0.0.1:{port}/v1"
    models = requests.get(f"{url}/models", timeout=60).json()
    assert "tiny-pipe" in {m["id"] for m in models["data"]}
    reply = requests.post(
        f"{url}/chat/completions",
        json={
            "model": "tiny-pipe",
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "max_tokens": 4,
        },
        timeout=120,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["role"] == "assistant"
