"""The experiment table, defined once: the CLI prints it (rich) and report.html shows it.

Each column is a header and a function from an arm's :class:`ArmResult` to the text of its
cell. Generation figures (chrF first: the headline) come before NLL and the training cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from jobs.evaluation.result import ArmResult, ExperimentResult


@dataclass(frozen=True)
class Column:
    """One column of the experiment table."""

    header: str
    cell: Callable[[ArmResult], str]
    numeric: bool = True
    """Right-aligned in the CLI."""


def _fmt(value: Any, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def _ranged(mean: float | None, low: float | None, high: float | None, pattern: str) -> str:
    """The mean, then the min-max range over seeds when the runs differ."""
    text = _fmt(mean, pattern)
    if mean is None or low is None or high is None or low == high:
        return text
    return f"{text} ({pattern.format(low)}-{pattern.format(high)})"


COLUMNS: tuple[Column, ...] = (
    Column("arm", lambda a: a.arm, numeric=False),
    Column("seeds", lambda a: ",".join(str(s) for s in a.seeds) or "-"),
    Column("chrF", lambda a: _ranged(a.chrf, a.chrf_min, a.chrf_max, "{:.2f}")),
    Column(
        "corpus chrF",
        lambda a: _ranged(a.corpus_chrf, a.corpus_chrf_min, a.corpus_chrf_max, "{:.2f}"),
    ),
    Column("ROUGE-L", lambda a: _ranged(a.rouge_l, a.rouge_l_min, a.rouge_l_max, "{:.4f}")),
    Column("answer length", lambda a: _fmt(a.length_ratio, "{:.2f}x")),
    Column("NLL", lambda a: _ranged(a.nll, a.nll_min, a.nll_max, "{:.4f}")),
    Column("perplexity", lambda a: _fmt(a.perplexity, "{:.2f}")),
    Column("rows", lambda a: _fmt(a.rows, "{:,}")),
    Column("steps", lambda a: _fmt(a.steps, "{:,}")),
    Column("tokens", lambda a: _fmt(a.tokens_seen, "{:,}")),
    Column("time per run", lambda a: _fmt(a.train_seconds, "{:,.0f} s")),
    Column("time, all runs", lambda a: _fmt(a.train_seconds_total, "{:,.0f} s")),
)
LEGEND = (
    "chrF: of each answer against its reference, mean over the answers (the headline); "
    "corpus chrF: of the n-grams pooled over all answers, which rises with how much a "
    "model writes; answer length: the answers' characters over the references'. "
    "chrF, corpus chrF, ROUGE-L and NLL: mean over seeds (min-max over seeds in "
    "parentheses); "
    "perplexity: exp of the mean NLL; rows, steps, tokens and time per run: mean per "
    "training run; time, all runs: the arm's training compute in wall time."
)


def cells(result: ExperimentResult) -> list[list[str]]:
    """Every arm's row of cells, in the order of :data:`COLUMNS` (plain text)."""
    return [[column.cell(arm) for column in COLUMNS] for arm in result.arms]


def print_table(result: ExperimentResult, out: Console | None = None) -> None:
    """The experiment table, the legend and the verdict."""
    table = Table(title=f"finesift experiment: {result.schedule}", caption=LEGEND)
    for column in COLUMNS:
        table.add_column(column.header, justify="right" if column.numeric else "left")
    for row in cells(result):
        table.add_row(*row)
    console = out or Console()
    console.print(table)
    if result.verdict:
        console.print(f"[bold]verdict:[/] {result.verdict}")
