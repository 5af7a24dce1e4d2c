"""Grid search of the composed score's weights and relevance logistic on real noisy data.

Objective per dataset (rule-passing rows only): ROC AUC clean vs noisy, plus the mean
pair accuracy over noise kinds (a noisy row beside its clean row: how often the clean one
scores higher), averaged over the datasets; Self-Instruct's AUC (text-davinci-003 over
davinci) is printed beside each candidate as a check, never optimized.

    python bench/calibrate_weights.py [--datasets dolly,codegen] [--top 15]
    python bench/calibrate_weights.py --shapes   # relevance term shapes at the final weights
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"

from bench.noise_inject import inject, load_source  # noqa: E402
from bench.real_noise import roc_auc  # noqa: E402
from bench.signal_research import signals  # noqa: E402
from bench.simulate_pipeline import read_rows  # noqa: E402


def dataset_signals(name: str, seed: int = 0) -> dict:
    data = inject(load_source(DATA, name), name, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        read = read_rows(data.write(Path(tmp))[0])
    s = signals([r["prompt"] or "" for r in read], [r["response"] or "" for r in read], seed)
    s["truth"] = np.array([r["truth"] for r in data.rows])
    s["pairs"] = [
        (r["truth_of"], i, r["truth"])
        for i, r in enumerate(data.rows)
        if r["truth"] not in ("clean", "repeat") and r["truth_of"] is not None
    ]
    return s


def self_instruct_signals(seed: int = 0) -> tuple[dict, dict]:
    out = []
    for model in ("text-davinci-003", "davinci"):
        path = DATA / "self_instruct" / f"{model}_predictions.jsonl"
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        prompts = [
            f"{r['instruction']}\n\n{r['input']}" if r["input"] else r["instruction"] for r in rows
        ]
        out.append(signals(prompts, [r["response"].strip() for r in rows], seed))
    return out[0], out[1]


def _logistic(m: np.ndarray, center: float, scale: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(m - center) / scale))


SHAPES = {
    "logistic(-0.1, 0.05)": lambda m: _logistic(m, -0.1, 0.05),
    "half logistic, half ramp -0.2..0.4": lambda m: (
        0.5 * _logistic(m, -0.1, 0.05) + 0.5 * np.clip((m + 0.2) / 0.6, 0, 1)
    ),
    "ramp -0.2..0.4": lambda m: np.clip((m + 0.2) / 0.6, 0, 1),
    "logistic(0.05, 0.1)": lambda m: _logistic(m, 0.05, 0.1),
}


def composed(s: dict, w: dict, center: float, scale: float, sat: float, shape=None) -> np.ndarray:
    rel = _logistic(s["relevance"], center, scale) if shape is None else shape(s["relevance"])
    length = np.clip(s["log_words"] / np.log1p(sat), 0, 1)
    terms = {
        "heuristics": s["heuristics"],
        "relevance": rel,
        "length": length,
        "surface": s["surface"],
        "completeness": (s["completeness"] == 1.0).astype(float),
    }
    total = sum(w[k] for k in terms)
    return sum(w[k] * terms[k] for k in terms) / total


def objective(s: dict, q: np.ndarray) -> tuple[float, float, dict]:
    fluent = s["passes_rules"]
    clean = s["truth"] == "clean"
    auc = roc_auc(q[fluent & clean], q[fluent & ~clean])
    per: dict[str, list[float]] = {}
    for c, n, kind in s["pairs"]:
        if fluent[c] and fluent[n]:
            per.setdefault(kind, []).append(1.0 if q[c] > q[n] else 0.5 if q[c] == q[n] else 0.0)
    accs = {k: float(np.mean(v)) for k, v in per.items()}
    return auc, float(np.mean(list(accs.values()))), accs


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="dolly,codegen")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--shapes", action="store_true", help="compare relevance term shapes")
    args = parser.parse_args(argv)
    sets = {n: dataset_signals(n) for n in args.datasets.split(",") if n}
    strong, weak = self_instruct_signals()
    if args.shapes:
        compare_shapes(sets, strong, weak)
        return
    grid = itertools.product(
        [1.0],  # heuristics
        [2.0, 4.0, 6.0],  # relevance
        [0.25],  # length
        [0.0, 0.25],  # completeness
        [0.25, 0.5],  # surface
        [-0.1, 0.0, 0.05],  # center
        [0.05, 0.1, 0.15, 0.2],  # scale
        [250],  # length saturation
    )
    rows = []
    for h, r, ln, co, su, center, scale, sat in grid:
        w = {"heuristics": h, "relevance": r, "length": ln, "completeness": co, "surface": su}
        figures = {}
        for name, s in sets.items():
            figures[name] = objective(s, composed(s, w, center, scale, sat))
        score = float(np.mean([a + p for a, p, _ in figures.values()]))
        si = roc_auc(composed(strong, w, center, scale, sat), composed(weak, w, center, scale, sat))
        rows.append((score, w, center, scale, sat, figures, si))
    rows.sort(key=lambda x: -x[0])
    for score, w, center, scale, sat, figures, si in rows[: args.top]:
        cells = "; ".join(
            f"{n} auc {a:.3f} pairs {p:.3f} ("
            + ", ".join(f"{k[:5]} {v:.2f}" for k, v in acc.items())
            + ")"
            for n, (a, p, acc) in figures.items()
        )
        print(f"{score:.4f} {w} c={center} s={scale} sat={sat} | {cells} | SI {si:.3f}")


def compare_shapes(sets: dict, strong: dict, weak: dict) -> None:
    """The objective per relevance-term shape and relevance weight, other weights final."""
    for w_rel in (2.0, 4.0):
        w = {"heuristics": 1.0, "relevance": w_rel, "length": 0.25, "completeness": 0.25}
        w["surface"] = 0.5
        for name, shape in SHAPES.items():
            cells, total = [], 0.0
            for n, s in sets.items():
                auc, pairs, acc = objective(s, composed(s, w, 0, 1, 250, shape))
                total += auc + pairs
                cells.append(f"{n} auc {auc:.3f} pairs {pairs:.3f} conflict {acc['conflict']:.3f}")
            si = roc_auc(composed(strong, w, 0, 1, 250, shape), composed(weak, w, 0, 1, 250, shape))
            figures = " | ".join(cells)
            print(f"w_rel {w_rel} {name:36s} {total / len(sets):.4f} | {figures} | SI {si:.3f}")


if __name__ == "__main__":
    main()
