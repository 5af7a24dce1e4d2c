"""CLI commands of the curation side: ``curate``, ``demo-data``, ``rules`` and ``models``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from jobs.cli.options import JobSpec, Opt, Positional, config_command
from jobs.curation.config import CurateConfig

console = Console()


CURATE = JobSpec(
    CurateConfig,
    options=(
        Opt("out", ("--out", "-o"), help="Output directory (created), or an s3:// / gs:// URI."),
        Opt("selection.budget"),
        Opt("read.format", help="Force a schema: alpaca, messages, sharegpt or prompt_completion."),
    ),
    positional=Positional(
        "inputs",
        "INPUT...",
        "Input files or directories (JSONL, .jsonl.gz, JSON array, Parquet, CSV), local or "
        "s3:// / gs:// URIs.",
    ),
)


def _curate(cfg: CurateConfig) -> None:
    from jobs.curation.curate import run
    from jobs.curation.outputs import print_summary

    print_summary(run(cfg), console)


curate_command = config_command(
    CURATE,
    _curate,
    doc="""Curate noisy instruction data into a small, clean, diverse selection.

    Writes selected.jsonl (messages format, ready for training), ledger.parquet (one row per
    input row with its fate and reason), quarantine.jsonl and summary.json to --out.
    """,
)


def demo_data_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="JSONL file to write.")],
    rows: Annotated[int, typer.Option(help="Rows to generate.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 0,
) -> None:
    """Generate a noisy demo dataset with a ground-truth column (`truth`).

    Mixes clean rows from varied task templates with injected exact and near duplicates,
    conflicting answers, junk of every heuristic kind and stale rows.
    """
    from collections import Counter

    from jobs.demo.generator import iter_generate, write_jsonl

    kinds: Counter[str] = Counter()

    def counted(records):
        # Rows are written as they are made: a million rows never sit in memory.
        for record in records:
            kinds[record["truth"].split(":")[0]] += 1
            yield record

    out.parent.mkdir(parents=True, exist_ok=True)
    written = write_jsonl(counted(iter_generate(rows, seed=seed)), out)
    console.print(
        f"wrote {written} rows to {out}: " + ", ".join(f"{n} {k}" for k, n in kinds.most_common())
    )


def rules_command() -> None:
    """List the quality rules with their thresholds and weights (heuristics.* in the config)."""
    from quality.heuristics import describe_rules

    table = Table(title="quality rules (reason codes)")
    for col in ("name", "threshold", "weight", "what it catches"):
        table.add_column(col)
    for rule in describe_rules():
        table.add_row(
            rule["name"], f"{rule['threshold']:g}", f"{rule['weight']:g}", rule["description"]
        )
    console.print(table)


def models_command(
    prepare: Annotated[
        bool,
        typer.Option(
            "--prepare",
            help="Convert the bundled base model and distil the static embedder now "
            "instead of on first use.",
        ),
    ] = False,
) -> None:
    """Print the resolved default models (base model for training, embedders for curation)."""
    from infra.models import describe_models, resolve_base_model
    from infra.static_distill import MANIFEST
    from infra.static_model import ensure_static_model, static_model_dir

    if prepare:
        console.print(f"base model ready at {resolve_base_model('default')}")
        path = ensure_static_model(progress=console.print)
        console.print(f"static embedder ready at {path}")

    table = Table(title="finesift models")
    for col in ("role", "name", "resolved", "ready"):
        table.add_column(col)
    for m in describe_models():
        table.add_row(
            str(m["role"]),
            str(m["name"]),
            str(m["path"]),
            m.get("state") or ("yes" if m.get("cached") else "on first use"),
        )
    console.print(table)
    manifest = static_model_dir() / MANIFEST
    if manifest.is_file():  # source model, distillation settings, library versions, hashes
        console.print(f"static embedder manifest: {manifest}")
