"""ServeConfig, the shipped serve YAMLs, and the spot-check helpers (no Ray)."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
from pathlib import Path

import pytest
import yaml

from infra.config import ConfigError, load_config
from infra.errors import FinesiftError
from serving.client import ask, make_client, openai_url, read_prompts, side_by_side, write_jsonl
from serving.config import ServeConfig
from serving.launch import base_url

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_serve_yaml_is_the_defaults():
    assert load_config(ServeConfig, CONFIGS / "serve.yaml") == ServeConfig()


def test_defaults_bind_loopback():
    assert ServeConfig().host == "127.0.0.1"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("port=0", "port"),
        ("route_prefix=/v2/", "route_prefix"),
        ("base_name=../x", "base_name"),
        ("dtype=int4", "dtype"),
        ("limits.default_max_tokens=0", "default_max_tokens"),
        ("scaling.max_replicas=0", "max_replicas"),
        ("batching.max_batch_size=64", "max_ongoing_requests"),
        ("scaling.num_gpus=-1", "num_gpus"),
        ("log_level=LOUD", "log_level"),
    ],
)
def test_bad_values_are_refused_with_the_key_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(ServeConfig, None, [override])


def test_cli_fields_override_the_file():
    cfg = load_config(
        ServeConfig,
        CONFIGS / "serve.yaml",
        ["limits.max_tokens=64"],
        port=9001,
        adapters_dir="runs/adapters",
    )
    assert (cfg.port, cfg.adapters_dir, cfg.limits.max_tokens) == (9001, "runs/adapters", 64)


def test_serve_deploy_yaml_is_a_valid_serve_config_matching_its_args(tiny_model_dir):
    from ray.serve import Application
    from ray.serve.schema import ServeDeploySchema

    from serving.app import build_app

    raw = yaml.safe_load((CONFIGS / "serve_deploy.yaml").read_text())
    schema = ServeDeploySchema.model_validate(raw)
    assert schema.http_options.host == "127.0.0.1"
    (app,) = raw["applications"]
    assert app["import_path"] == "serving.app:build_app"
    overrides = [
        f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in app["args"].items()
    ]
    cfg = load_config(ServeConfig, None, overrides)
    deployments = {d["name"]: d for d in app["deployments"]}
    gen, ingress = deployments["Generator"], deployments["OpenAIIngress"]
    options = gen["ray_actor_options"]
    assert (options["num_cpus"], options["num_gpus"]) == (
        cfg.scaling.num_cpus,
        cfg.scaling.num_gpus,
    )
    env = app["runtime_env"]["env_vars"]
    assert env["OMP_WAIT_POLICY"] == cfg.scaling.omp_wait_policy
    assert gen["max_ongoing_requests"] == cfg.scaling.max_ongoing_requests
    auto = gen["autoscaling_config"]
    assert (auto["min_replicas"], auto["max_replicas"], auto["target_ongoing_requests"]) == (
        cfg.scaling.min_replicas,
        cfg.scaling.max_replicas,
        cfg.scaling.target_ongoing_requests,
    )
    assert ingress["max_ongoing_requests"] == cfg.scaling.ingress_max_ongoing_requests
    built = build_app({**app["args"], "base_model": str(tiny_model_dir)})
    assert isinstance(built, Application)


def test_urls():
    assert openai_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000/v1"
    assert openai_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1"
    assert base_url(ServeConfig(host="0.0.0.0", port=9000)) == "http://127.0.0.1:9000/v1"
    assert base_url(ServeConfig(route_prefix="/fs")) == "http://127.0.0.1:8000/fs/v1"


def test_read_prompts_from_text_and_jsonl(tmp_path):
    text = tmp_path / "p.txt"
    text.write_text("first\n\nsecond\n")
    assert read_prompts(text) == ["first", "second"]
    rows = tmp_path / "p.jsonl"
    rows.write_text('{"prompt": "a"}\n{"instruction": "b"}\n')
    assert read_prompts(rows) == ["a", "b"]
    rows.write_text('{"output": "no prompt"}\n')
    with pytest.raises(FinesiftError, match="p.jsonl:1"):
        read_prompts(rows)
    rows.write_text('{"prompt": "a"}\n{"prompt": "b"\n')
    with pytest.raises(FinesiftError, match=r"p.jsonl:2 is not valid JSON"):
        read_prompts(rows)
    text.write_bytes(b"caf\xe9\n")
    with pytest.raises(FinesiftError, match="not UTF-8 text"):
        read_prompts(text)
    with pytest.raises(FinesiftError, match="does not exist"):
        read_prompts(tmp_path / "absent.txt")
    with pytest.raises(FinesiftError, match="not a regular file"):
        read_prompts(tmp_path)


def test_side_by_side_and_jsonl(tmp_path):
    from rich.console import Console

    rows = [{"prompt": "q1", "model": m, "answer": f"{m}-answer"} for m in ("base", "tuned")]
    console = Console(record=True, width=120)
    console.print(side_by_side(rows, ["base", "tuned"]))
    shown = console.export_text()
    assert "base-answer" in shown and "tuned-answer" in shown and "q1" in shown
    write_jsonl(rows, tmp_path / "out" / "answers.jsonl")
    lines = (tmp_path / "out" / "answers.jsonl").read_text().splitlines()
    assert [json.loads(line)["model"] for line in lines] == ["base", "tuned"]


def test_query_without_a_server_is_a_clear_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client(f"http://127.0.0.1:{port}", timeout=5)
    with pytest.raises(FinesiftError, match="finesift serve"):
        ask(client, "hi", "base", 4, 0.0)


def test_serve_until_stopped_returns_on_sigterm_and_cleans_up(monkeypatch):
    from serving import launch

    events = []
    monkeypatch.setattr(launch, "start_server", lambda cfg: events.append("start") or "http://x")
    monkeypatch.setattr(launch, "close", lambda cfg: events.append("close"))
    before = signal.getsignal(signal.SIGTERM)

    def ready(url: str) -> None:
        events.append(url)
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()

    launch.serve_until_stopped(ServeConfig(), on_ready=ready)
    assert events == ["start", "http://x", "close"]
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.fixture
def serve_logger():
    logger = logging.getLogger("ray.serve")
    level = logger.level
    yield logger
    logger.setLevel(level)


def test_start_server_hands_the_log_level_to_serve(monkeypatch, serve_logger):
    from ray import serve

    import infra.ray_env
    import serving.app
    from serving import launch

    seen = {}
    monkeypatch.setattr(infra.ray_env, "init_ray", lambda: None)
    monkeypatch.setattr(serving.app, "build_application", lambda cfg, api_key: "app")
    monkeypatch.setattr(serve, "start", lambda **kw: seen.update(start=kw["logging_config"]))
    monkeypatch.setattr(serve, "run", lambda app, **kw: seen.update(run=kw["logging_config"]))
    serve_logger.setLevel(logging.NOTSET)
    launch.start_server(ServeConfig(log_level="WARNING"))
    assert seen == {"start": {"log_level": "WARNING"}, "run": {"log_level": "WARNING"}}
    assert serve_logger.level == logging.WARNING


def test_deployments_leave_logging_to_the_app_so_a_deploy_yaml_can_set_it(tiny_model_dir):
    # Serve applies an app's (or a deploy YAML's) logging_config only to deployments
    # that set none of their own.
    from serving.app import build_application

    app = build_application(ServeConfig(base_model=str(tiny_model_dir), log_level="ERROR"))
    ingress = app._bound_deployment
    generator = ingress.init_args[0]._bound_deployment
    assert ingress.logging_config is None and generator.logging_config is None


def test_spot_check_with_its_own_server_logs_warnings_only(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import serving.client
    from jobs.cli import app
    from serving import launch

    started = []
    monkeypatch.setattr(launch, "start_server", lambda cfg: started.append(cfg) or "http://x/v1")
    monkeypatch.setattr(launch, "close", lambda cfg: None)
    answer = {"prompt": "q", "model": "base", "answer": "a"}
    monkeypatch.setattr(serving.client, "spot_check", lambda *a, **k: [answer])
    args = ["spot-check", "--serve", "--adapters-dir", str(tmp_path)]
    for extra in ([], ["--log-level", "INFO"]):
        result = CliRunner().invoke(app, args + extra)
        assert result.exit_code == 0, result.output
    assert [cfg.log_level for cfg in started] == ["WARNING", "INFO"]
