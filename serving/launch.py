"""Starting and stopping the finesift Serve application from Python and from the CLI."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from serving.config import ServeConfig


def base_url(cfg: ServeConfig) -> str:
    """The OpenAI base URL clients use, e.g. ``http://127.0.0.1:8000/v1``.

    A wildcard bind address (0.0.0.0, ::) is reached through loopback from this machine.
    """
    host = "127.0.0.1" if cfg.host in ("0.0.0.0", "::", "") else cfg.host
    if ":" in host:
        host = f"[{host}]"
    prefix = "" if cfg.route_prefix == "/" else cfg.route_prefix
    return f"http://{host}:{cfg.port}{prefix}/v1"


def start_server(cfg: ServeConfig, api_key: str | None = None) -> str:
    """Deploy the app on Ray Serve and return once every replica is up.

    Joins ``RAY_ADDRESS`` or starts a local Ray (``infra.ray_env.init_ray``). Serve's HTTP
    address is cluster-wide and fixed by the first app that starts Serve; a second app
    with another ``route_prefix`` shares it.

    Args:
        cfg: the serve config (host, port, app name, route prefix, model, resources...).
        api_key: bearer token required on /v1 routes; None reads ``FINESIFT_API_KEY``.

    Returns:
        The OpenAI base URL of the running app.
    """
    from ray import serve

    from infra.ray_env import init_ray
    from serving.app import build_application

    if cfg.backend == "vllm":  # before Ray starts: a missing extra is a one-line error
        from serving.llm_app import require_vllm

        require_vllm()
    init_ray()
    app = build_application(cfg, api_key=api_key)
    # App level, not on the deployments, so a deploy YAML's own logging_config still wins.
    # serve.start sets Serve's controller and proxy only when it starts Serve; a Serve
    # already running on the cluster keeps its own level for them.
    logging_config = {"log_level": cfg.log_level}
    serve.start(http_options={"host": cfg.host, "port": cfg.port}, logging_config=logging_config)
    serve.run(app, name=cfg.app_name, route_prefix=cfg.route_prefix, logging_config=logging_config)
    logging.getLogger("ray.serve").setLevel(cfg.log_level)  # Serve's client in this process
    return base_url(cfg)


def stop_server(app_name: str | None = None) -> None:
    """Delete one app (``app_name``), or shut Serve down entirely (None)."""
    from ray import serve

    if app_name is not None:
        serve.delete(app_name)
    else:
        serve.shutdown()


def serve_until_stopped(cfg: ServeConfig, on_ready: Callable[[str], None] | None = None) -> None:
    """Start the app, block until Ctrl-C or SIGTERM, then shut down cleanly.

    On a cluster (``RAY_ADDRESS`` set) only this app is deleted; a local Ray started
    here is shut down with Serve.

    Args:
        cfg: the serve config.
        on_ready: called with the base URL once the app answers.
    """
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[int, Any] = {}
    try:
        url = start_server(cfg)
        # After ray.init, which installs its own SIGTERM handler (sys.exit without cleanup).
        previous = {
            sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        if on_ready is not None:
            on_ready(url)
        while not stop.wait(0.5):
            pass
    finally:
        close(cfg)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def close(cfg: ServeConfig) -> None:
    """Tear down what :func:`start_server` set up: on a cluster (``RAY_ADDRESS`` set) only
    this app; locally Serve and the local Ray."""
    import ray

    if not ray.is_initialized():
        return
    on_cluster = bool(os.environ.get("RAY_ADDRESS"))
    stop_server(cfg.app_name if on_cluster else None)
    if not on_cluster:
        ray.shutdown()
