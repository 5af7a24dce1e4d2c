"""CLI commands of the evaluation side: ``eval``, ``experiment`` and ``report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from jobs.cli.options import JobSpec, Opt, config_command
from jobs.evaluation.config import EvalConfig, ExperimentConfig

console = Console()


EVAL = JobSpec(
    EvalConfig,
    options=(
        Opt(
            "models",
            comma=True,
            help="Comma-separated: 'base' and adapter names (or adapter "
            "directories), e.g. base,smol-demo [default: base].",
        ),
        Opt("eval_data"),
        Opt("out", ("--out", "-o")),
        Opt("adapters_dir"),
        Opt("base_model"),
        Opt("max_rows"),
        Opt("server.url", ("--url",)),
    ),
)

EXPERIMENT = JobSpec(
    ExperimentConfig,
    options=(
        Opt("data"),
        Opt("eval_data"),
        Opt("budget"),
        Opt("arms", comma=True, help="Comma-separated subset of curated,random,longest,full."),
        Opt(
            "seeds",
            comma=True,
            help="Comma-separated seeds: each arm is trained once per seed (train.seed; "
            "the random arm's draw too) [default: 0,1].",
        ),
        Opt("out", ("--out", "-o")),
        Opt(
            "resume",
            ("--resume",),
            help="Keep the curation, training runs and evaluations an earlier run into "
            "--out finished from the same inputs and settings.",
        ),
    ),
)


def _evaluate(cfg: EvalConfig) -> None:
    from jobs.evaluation.evaluate import print_table, run

    print_table(run(cfg), console)
    console.print(f"wrote {Path(cfg.out) / 'eval.json'}")


def _experiment(cfg: ExperimentConfig) -> None:
    from jobs.evaluation.experiment import run
    from jobs.evaluation.table import print_table

    result = run(cfg)
    print_table(result, console)
    console.print(f"report: {result.report}")


eval_command = config_command(
    EVAL,
    _evaluate,
    doc="""Compare models on held-out rows (NLL, perplexity, ROUGE-L, chrF).

    NLL and perplexity are of the reference answers (answer tokens only); ROUGE-L and chrF
    compare greedy answers with them: chrF of each answer, averaged, and corpus chrF (the
    n-grams of all answers pooled, which rises with answer length), beside the answers'
    length relative to the references. Runs as Ray Data batch inference; writes eval.json.
    With --url the same evaluation asks a running server (either backend) instead.
    """,
)

experiment_command = config_command(
    EXPERIMENT,
    _experiment,
    doc="""Curated vs random vs longest vs full data: train adapters per arm, compare them.

    Curates, trains every arm once per seed with the same settings for the same epochs,
    evaluates all on the held-out rows and prints each arm's chrF (per answer, averaged:
    the headline), corpus chrF and ROUGE-L of greedy answers, NLL, and training cost
    (steps, tokens, time): mean over seeds with the min-max range. The verdict compares
    curated with the other arms on chrF and corpus chrF, with a paired bootstrap over the
    held-out prompts. Writes experiment.json, experiment.png and report.html to --out.
    """,
)


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
