"""The experiment and eval tables, each defined once: the CLI prints them (rich) and
report.html shows them.

Each column is a header and a function from an arm's :class:`ArmResult` (or a model's
:class:`ModelScore`) to the text of its cell. Generation figures (chrF first: the
headline) come before NLL and the training cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from jobs.evaluation.result import EvalResult, ExperimentResult, ModelScore


@dataclass(frozen=True)
class Column:
    """One column of the experiment table."""

    header: str
    cell: Callable[[Any], str]
    """From an :class:`ArmResult` (experiment) or a :class:`ModelScore` (eval)."""
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


def _model_cell(header: str, figure: Callable[[ModelScore], Any], pattern: str) -> Column:
    return Column(header, lambda m: _fmt(figure(m), pattern))


EVAL_COLUMNS: tuple[Column, ...] = (
    Column("model", lambda m: m.name, numeric=False),
    _model_cell("chrF", lambda m: m.chrf, "{:.2f}"),
    _model_cell("corpus chrF", lambda m: m.corpus_chrf, "{:.2f}"),
    _model_cell("ROUGE-L", lambda m: m.rouge_l, "{:.4f}"),
    _model_cell("answer length", lambda m: m.length_ratio, "{:.2f}x"),
    _model_cell("NLL", lambda m: m.nll, "{:.4f}"),
    _model_cell("perplexity", lambda m: m.perplexity, "{:.2f}"),
    _model_cell("tokens", lambda m: m.tokens, "{:,}"),
    _model_cell("time", lambda m: m.seconds, "{:,.0f} s"),
)
EVAL_LEGEND = (
    "chrF: of each answer against its reference, mean over the answers; corpus chrF: of "
    "the n-grams pooled over all answers, which rises with answer length; answer length: "
    "the answers' characters over the references'. NLL is nats per answer token."
)


def eval_cells(result: EvalResult) -> list[list[str]]:
    """Every model's row of cells, in the order of :data:`EVAL_COLUMNS` (plain text)."""
    return [[column.cell(m) for column in EVAL_COLUMNS] for m in result.models]


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
