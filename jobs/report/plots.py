"""The report's figures: matplotlib (Agg) rendered to base64 PNG, so the HTML needs no network.

Each function takes plain data (lists, numpy arrays, dicts from the run's JSON files) and
returns a ``data:image/png;base64,...`` URI for an ``<img src=...>``.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

STATUS_COLORS = {"selected": "#2a9d8f", "dropped": "#e76f51", "quarantined": "#8d99ae"}
DPI = 90


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede the pyplot import
    import matplotlib.pyplot as plt

    return plt


def _to_uri(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    _pyplot().close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def reason_bars(by_reason: Sequence[dict[str, Any]]) -> str:
    """Horizontal bars: rows per (status, reason), coloured by status, largest on top.

    Args:
        by_reason: ``[{"status", "reason", "rows"}]`` as in summary.json.
    """
    plt = _pyplot()
    items = sorted(by_reason, key=lambda r: r["rows"])
    labels = [f"{r['status']}: {r['reason'] or '-'}" for r in items]
    fig, ax = plt.subplots(layout="constrained", figsize=(8, 0.5 + 0.28 * max(len(items), 1)))
    bars = ax.barh(
        labels,
        [r["rows"] for r in items],
        color=[STATUS_COLORS.get(r["status"], "#999999") for r in items],
    )
    ax.bar_label(bars, fmt="{:,.0f}", padding=3, fontsize=8)
    ax.set_xlabel("rows")
    ax.tick_params(axis="y", labelsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    ax.margins(x=0.12)
    return _to_uri(fig)


def quality_histograms(selected: np.ndarray, dropped: np.ndarray) -> str:
    """Overlaid quality-score histograms of selected and dropped rows (each as a density).

    Densities let a few hundred selected rows be compared with thousands of dropped ones;
    the legend gives the counts.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(layout="constrained", figsize=(8, 3.2))
    bins = np.linspace(0.0, 1.0, 41)
    for name, values in (("dropped", dropped), ("selected", selected)):
        if len(values):
            ax.hist(
                values,
                bins=bins,
                density=True,
                alpha=0.55,
                color=STATUS_COLORS[name],
                label=f"{name} ({len(values):,} rows)",
            )
    ax.set_xlabel("quality score")
    ax.set_ylabel("density")
    ax.legend(loc="upper left", fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _to_uri(fig)


def embedding_map(x: np.ndarray, y: np.ndarray, cluster: np.ndarray, selected: np.ndarray) -> str:
    """2-D map of the embedding space: points coloured by cluster, selected rows ringed."""
    plt = _pyplot()
    fig, ax = plt.subplots(layout="constrained", figsize=(8, 6))
    palette = plt.get_cmap("tab20")
    colors = palette(np.mod(cluster, 20))
    ax.scatter(x[~selected], y[~selected], s=6, c=colors[~selected], alpha=0.45, linewidths=0)
    ax.scatter(
        x[selected],
        y[selected],
        s=26,
        facecolors=colors[selected],
        edgecolors="black",
        linewidths=0.7,
        label=f"selected ({int(selected.sum()):,})",
    )
    ax.scatter([], [], s=6, c="#999999", label=f"not selected ({int((~selected).sum()):,})")
    ax.legend(loc="best", fontsize=8)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(f"{len(np.unique(cluster))} clusters (colour), PCA of the embeddings", fontsize=9)
    return _to_uri(fig)


def training_curves(runs: Sequence[dict[str, Any]]) -> str:
    """Train loss (lines) and held-out loss (dashed, dots) against step, one colour per run.

    Args:
        runs: ``[{"name", "train_loss_history": [{"step", "loss"}],
            "eval_loss_history": [{"step", "eval_loss"}]}]`` (finesift.json of each adapter).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(layout="constrained", figsize=(8, 3.6))
    for i, run in enumerate(runs):
        color = f"C{i % 10}"
        train = run.get("train_loss_history") or []
        evals = run.get("eval_loss_history") or []
        if train:
            ax.plot(
                [p["step"] for p in train],
                [p["loss"] for p in train],
                color=color,
                label=f"{run['name']} train",
            )
        if evals:
            ax.plot(
                [p["step"] for p in evals],
                [p["eval_loss"] for p in evals],
                "o--",
                color=color,
                markersize=4,
                label=f"{run['name']} held-out",
            )
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.legend(fontsize=8, ncol=2)
    ax.spines[["top", "right"]].set_visible(False)
    return _to_uri(fig)


def experiment_bars(arms: Sequence[dict[str, Any]]) -> str:
    """chrF per arm (mean over seeds, the min-max range as an error bar; the base model as
    reference) beside each arm's training time over all its runs.

    Args:
        arms: experiment.json's ``arms``: ``[{"arm", "chrf", "chrf_min", "chrf_max",
            "corpus_chrf", "train_seconds_total"}]`` (older files: ``train_seconds`` only,
            and corpus chrF alone, which the chart then shows).
    """
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, layout="constrained", figsize=(9, 3.4))
    names = [a["arm"] for a in arms]
    colors = [f"C{i % 10}" for i in range(len(arms))]
    key, label = bar_figure(arms)
    chrf = np.asarray([a.get(key) or 0.0 for a in arms], dtype=np.float64)
    # Error bars from the mean down to the worst seed and up to the best (none for one run).
    low = np.asarray([_or(a.get(f"{key}_min"), c) for a, c in zip(arms, chrf, strict=True)])
    high = np.asarray([_or(a.get(f"{key}_max"), c) for a, c in zip(arms, chrf, strict=True)])
    errors = np.vstack([chrf - low, high - chrf])
    bars = left.bar(names, chrf, color=colors, yerr=errors, capsize=4)
    left.bar_label(bars, fmt="{:.1f}", fontsize=8, label_type="center", color="white")
    left.set_ylabel(f"{label} (higher is better)")
    seconds = [a.get("train_seconds_total") or a.get("train_seconds") or 0.0 for a in arms]
    bars = right.bar(names, seconds, color=colors)
    right.bar_label(bars, fmt="{:,.0f} s", fontsize=8)
    right.set_ylabel("training time, all runs (s)")
    for ax in (left, right):
        ax.spines[["top", "right"]].set_visible(False)
    return _to_uri(fig)


def bar_figure(arms: Sequence[dict[str, Any]]) -> tuple[str, str]:
    """The key and axis label of the experiment's bars: chrF per answer, or corpus chrF
    for a file from before chrF per answer was recorded (every ``chrf`` None)."""
    if all(a.get("chrf") is None for a in arms):
        return "corpus_chrf", "corpus chrF"
    return "chrf", "chrF per answer, mean"


def _or(value: float | None, default: float) -> float:
    return default if value is None else float(value)
