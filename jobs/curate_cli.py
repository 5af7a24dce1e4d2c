"""CLI commands of the curation side: ``curate``, ``demo-data``, ``rules`` and ``models``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def curate_command(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Input files or directories (JSONL, .jsonl.gz, JSON array, Parquet, CSV), "
            "local or s3:// / gs:// URIs, then optional key=value config overrides such as "
            "dedup.semantic_threshold=0.9.",
            metavar="INPUT... [KEY=VALUE...]",
        ),
    ],
    out: Annotated[
        str,
        typer.Option("--out", "-o", help="Output directory (created), or an s3:// / gs:// URI."),
    ],
    budget: Annotated[
        int | None,
        typer.Option(help="Rows to select [default: 500, or selection.budget from --config]."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML config file (see configs/curate.yaml)."),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="Force a schema: alpaca, messages, sharegpt or prompt_completion."
        ),
    ] = None,
) -> None:
    """Curate noisy instruction data into a small, clean, diverse selection.

    Writes selected.jsonl (messages format, ready for training), ledger.parquet (one row per
    input row with its fate and reason), quarantine.jsonl and summary.json to --out.
    """
    from jobs.config import load_config
    from jobs.curate import run
    from jobs.curate_config import CurateConfig
    from jobs.curate_outputs import print_summary

    paths, assignments = _split_overrides(inputs)
    if budget is not None:
        assignments.append(f"selection.budget={budget}")
    if fmt is not None:
        assignments.append(f"read.format={fmt}")
    cfg = load_config(CurateConfig, config, assignments, inputs=tuple(paths), out=out)
    summary = run(cfg)
    print_summary(summary, console)


def _split_overrides(args: list[str]) -> tuple[list[str], list[str]]:
    """Typer sees one variadic list: key=value items are overrides, the rest are inputs.

    A URI is an input even with a ``=`` in it (``s3://bucket/date=2024-01-01/``).
    """
    from quality.storage import is_uri

    paths = [a for a in args if "=" not in a or is_uri(a) or Path(a).exists()]
    assignments = [a for a in args if a not in paths]
    return paths, assignments


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

    from quality.demo_data import iter_generate, write_jsonl

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
    from jobs.models import describe_models, resolve_base_model
    from jobs.static_model import ensure_static_model, static_model_dir
    from quality.static_distill import MANIFEST

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
