"""CLI commands of the serving side: ``serve``, ``query`` and ``spot-check``.

Ray, torch and transformers are imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from jobs.cli.options import JobSpec, Opt, config_command
from serving.client import DEFAULT_URL
from serving.config import ServeConfig

console = Console()

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML config (see configs/serve.yaml).")
]


SERVE = JobSpec(
    ServeConfig,
    options=(Opt("backend"), Opt("adapters_dir"), Opt("base_model"), Opt("host"), Opt("port")),
)


def _serve(cfg: ServeConfig) -> None:
    from serving.launch import serve_until_stopped

    def ready(url: str) -> None:
        console.print(f"[bold green]serving[/] {url}  (models: {url}/models; Ctrl-C stops)")

    serve_until_stopped(cfg, on_ready=ready)
    console.print("stopped")


serve_command = config_command(
    SERVE,
    _serve,
    doc="""Serve the base model and its LoRA adapters with an OpenAI-compatible API.

    Blocks until Ctrl-C or SIGTERM, then shuts down cleanly. With FINESIFT_API_KEY set,
    /v1 requests need `Authorization: Bearer <key>`.
    """,
)


def query_command(
    prompt: Annotated[str, typer.Argument(help="The user message to send.")],
    model: Annotated[
        str, typer.Option(help="'base' or an adapter: NAME or base:NAME, on either backend.")
    ] = "base",
    url: Annotated[str, typer.Option(help="Server URL.")] = DEFAULT_URL,
    max_tokens: Annotated[int, typer.Option(help="Most tokens to generate.")] = 128,
    temperature: Annotated[float, typer.Option(help="0 is greedy.")] = 0.0,
) -> None:
    """Ask a running server one question and print the answer."""
    from serving.client import ask, make_client, served_names

    client = make_client(url)
    row = ask(client, prompt, served_names(client, [model])[model], max_tokens, temperature)
    typer.echo(row["answer"])


def spot_check_command(
    models: Annotated[
        str,
        typer.Option(help="Comma-separated: base,ADAPTER,... (NAME or base:NAME, either backend)"),
    ] = "base",
    prompts: Annotated[
        Path | None,
        typer.Option(
            help="Text file (one prompt a line) or JSONL with 'prompt'; "
            "a few built-in prompts when omitted."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the answers here as JSONL.")] = None,
    url: Annotated[str, typer.Option(help="Server URL.")] = DEFAULT_URL,
    max_tokens: Annotated[int, typer.Option(help="Most tokens per answer.")] = 128,
    temperature: Annotated[float, typer.Option(help="0 is greedy.")] = 0.0,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Start a server from the config (ignoring --url), ask, and shut it down.",
        ),
    ] = False,
    adapters_dir: Annotated[str | None, typer.Option(help="With --serve: adapters dir.")] = None,
    base_model: Annotated[str | None, typer.Option(help="With --serve: base model.")] = None,
    port: Annotated[
        int | None, typer.Option(help="With --serve: port (default: a free one).")
    ] = None,
    log_level: Annotated[
        str,
        typer.Option(help="With --serve: Serve's log level (INFO adds the access log)."),
    ] = "WARNING",
    config: ConfigOption = None,
) -> None:
    """Ask every model the same prompts and print the answers side by side."""
    from serving.client import (
        DEFAULT_PROMPTS,
        make_client,
        read_prompts,
        side_by_side,
        spot_check,
        write_jsonl,
    )

    names = [m.strip() for m in models.split(",") if m.strip()]
    questions = read_prompts(prompts) if prompts else list(DEFAULT_PROMPTS)
    if serve:
        from serving.launch import close, start_server

        # A private free port unless told: the demo must not collide with a running server.
        # Warnings only by default: the answers are the output, not the access log.
        cfg = SERVE.config(
            config=config,
            adapters_dir=adapters_dir,
            base_model=base_model,
            port=port or _free_port(),
            args=["app_name=finesift-spot-check", f"log_level={log_level.upper()}"],
        )
        try:
            url = start_server(cfg)
            rows = spot_check(make_client(url), questions, names, max_tokens, temperature)
        finally:
            close(cfg)
    else:
        rows = spot_check(make_client(url), questions, names, max_tokens, temperature)
    console.print(side_by_side(rows, names))
    if out is not None:
        write_jsonl(rows, out)
        console.print(f"wrote {len(rows)} answers to {out}")


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
