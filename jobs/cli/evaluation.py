"""CLI commands of the evaluation side: ``eval``, ``experiment`` and ``report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()


def _names(value: str | None) -> tuple[str, ...] | None:
    """``"base, smol"`` -> ``("base", "smol")``; None stays None."""
    if value is None:
        return None
    return tuple(part.strip() for part in value.split(",") if part.strip())


def eval_command(
    models: Annotated[
        str | None,
        typer.Option(
            "--models",
            help="Comma-separated: 'base' and adapter names (or adapter directories), "
            "e.g. base,smol-demo [default: base].",
        ),
    ] = None,
    eval_data: Annotated[
        str | None,
        typer.Option(
            "--eval-data", help="Held-out rows (JSONL: messages, alpaca or prompt/response)."
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="Directory for eval.json and eval_samples.jsonl [default: runs/eval].",
        ),
    ] = None,
    adapters_dir: Annotated[
        str | None,
        typer.Option(
            "--adapters-dir", help="Where adapter names are looked up [default: adapters]."
        ),
    ] = None,
    base_model: Annotated[
        str | None,
        typer.Option(
            "--base-model",
            help="What 'base' means: 'default' (bundled SmolLM2-135M-Instruct), a "
            "model directory or a Hub id.",
        ),
    ] = None,
    max_rows: Annotated[
        int | None,
        typer.Option("--max-rows", help="Evaluate the first N rows; 0 = all [default: 200]."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML config (see configs/eval.yaml).")
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Argument(
            help="Config overrides as key=value, e.g. generation.max_new_tokens=64 "
            "inference.num_gpus=1.",
            metavar="[KEY=VALUE...]",
        ),
    ] = None,
) -> None:
    """Compare models on held-out rows (NLL, perplexity, ROUGE-L, chrF).

    NLL and perplexity are of the reference answers (answer tokens only); ROUGE-L and chrF
    compare greedy answers with them. Runs as Ray Data batch inference; writes eval.json.
    """
    from infra.config import load_config
    from jobs.evaluation.config import EvalConfig
    from jobs.evaluation.evaluate import print_table, run

    cfg = load_config(
        EvalConfig,
        config,
        list(overrides or []),
        models=_names(models),
        eval_data=eval_data,
        out=out,
        adapters_dir=adapters_dir,
        base_model=base_model,
        max_rows=max_rows,
    )
    result = run(cfg)
    print_table(result, console)
    console.print(f"wrote {Path(cfg.out) / 'eval.json'}")


def experiment_command(
    data: Annotated[
        str | None, typer.Option("--data", help="The noisy input (any format curate reads).")
    ] = None,
    eval_data: Annotated[
        str | None,
        typer.Option("--eval-data", help="Held-out clean rows no arm trains on (JSONL)."),
    ] = None,
    budget: Annotated[
        int | None,
        typer.Option(
            "--budget", help="Rows curate selects; the random arm gets as many [default: 500]."
        ),
    ] = None,
    arms: Annotated[
        str | None,
        typer.Option(
            "--arms", help="Comma-separated subset of curated,random,full [default: all three]."
        ),
    ] = None,
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="Output directory [default: runs/experiment].")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML config (see configs/experiment.yaml)."),
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Argument(
            help="Config overrides as key=value, e.g. train.optim.epochs=2 "
            "curate.dedup.semantic_threshold=0.9.",
            metavar="[KEY=VALUE...]",
        ),
    ] = None,
) -> None:
    """Curated vs random vs full data: train one adapter per arm and compare them.

    Curates, trains every arm with the same settings for the same epochs, evaluates all on
    the held-out rows and prints each arm's figures with its training cost (time, tokens).
    Writes experiment.json, experiment.png and report.html to --out.
    """
    from infra.config import load_config
    from jobs.evaluation.config import ExperimentConfig
    from jobs.evaluation.experiment import print_table, run

    cfg = load_config(
        ExperimentConfig,
        config,
        list(overrides or []),
        data=data,
        eval_data=eval_data,
        budget=budget,
        arms=_names(arms),
        out=out,
    )
    result = run(cfg)
    print_table(result, console)
    console.print(f"report: {result['report']}")


def report_command(
    run_dir: Annotated[
        str,
        typer.Argument(
            help="The --out directory of `finesift curate` or `finesift experiment` "
            "(or its s3:// / gs:// URI)."
        ),
    ],
) -> None:
    """Write RUN_DIR/report.html, a self-contained page that opens offline.

    Counts by reason, quality histograms, the embedding map, dropped rows beside the rows
    they lost to, and training curves and eval tables when the run has them.
    """
    from jobs.report.data import write_report

    console.print(f"report: {write_report(run_dir)}")
