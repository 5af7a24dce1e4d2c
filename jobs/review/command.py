"""``finesift review RUN_DIR``: serve the review page, or export, or run the demo review."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console

from infra.errors import FinesiftError

console = Console()


def review_command(
    run_dir: Annotated[str, typer.Argument(help="The --out directory of `finesift curate`.")],
    host: Annotated[
        str, typer.Option(help="Bind address; 127.0.0.1 keeps the page on this machine.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the page (0 picks a free one).")] = 8300,
    export: Annotated[
        bool,
        typer.Option(
            "--export",
            help="Write verified.jsonl, the ledger's review column and report.html from the "
            "verdicts so far, then exit (no server).",
        ),
    ] = False,
    auto: Annotated[
        int,
        typer.Option(
            help="Demo: review N rows through the HTTP API (the least confident is rejected "
            "to show a refill, the rest accepted), export, and exit.",
            min=0,
        ),
    ] = 0,
    reviewer: Annotated[str, typer.Option(help="The reviewer name --auto records.")] = "auto",
) -> None:
    """Verify the curated pick in a local web page before training.

    Verdicts (accept, reject with a reason, edit) are saved at once in RUN_DIR/review.sqlite;
    a rejected pick is replaced by the next row of its cluster by the selection's own rule.
    Export writes RUN_DIR/verified.jsonl, ready for `finesift train --data`. With
    FINESIFT_API_KEY set, the page and its API require the key (open /?key=KEY once).
    """
    from jobs.review.app import API_KEY_ENV, LOOPBACK_HOSTS, create_app
    from jobs.review.server import bind, is_loopback, serve_forever, serving_in_thread
    from jobs.review.session import ReviewSession

    key = os.environ.get(API_KEY_ENV) or None
    if not is_loopback(host) and key is None:
        raise FinesiftError(
            f"--host {host} opens the review beyond this machine; set {API_KEY_ENV} so the "
            "page and its API require a key, or keep the default --host 127.0.0.1"
        )
    session = ReviewSession(run_dir)
    if export:
        _print_export(_export(session))
        return
    hosts = list(LOOPBACK_HOSTS) if is_loopback(host) else ["*"]  # the key guards the rest
    app = create_app(session=session, api_key=key, allowed_hosts=hosts)
    sock = bind(host, port)
    if auto:
        from jobs.review.auto import ApiClient, auto_review

        with serving_in_thread(app, sock) as url:
            console.print(f"review page: {url}/ (automatic review of {auto} rows through its API)")
            result = auto_review(ApiClient(url, key), auto, reviewer)
        for row_id, state, refill in result["verdicts"]:
            console.print(f"  {row_id}: {state}" + (f", refilled by {refill}" if refill else ""))
        _print_export(result["export"])
        return
    from jobs.review.server import url_of

    url = url_of(sock)
    session.warm_up_in_background()  # a person reviews at leisure: embed the picks meanwhile
    console.print(
        f"[bold green]review[/] {url}/"
        + (f"?key=${API_KEY_ENV}" if key else "")
        + f"  ({session.budget} picks; verdicts saved in {session.store.path}; Ctrl-C stops)"
    )
    serve_forever(app, sock)


def _export(session) -> dict:
    from jobs.review.export import export_review

    return export_review(session)


def _print_export(summary: dict) -> None:
    counts = summary["counts"]
    console.print(
        f"exported {summary['rows']} verified rows ({counts['accepted']} accepted, "
        f"{counts['edited']} edited; {counts['rejected']} rejected, {counts['unreviewed']} "
        f"unreviewed) to {summary['paths']['verified']}"
    )
    console.print(f"ledger review column: {summary['paths']['ledger']}")
    if summary["paths"].get("report"):
        console.print(f"report: {summary['paths']['report']}")
