"""Do the encoder-dependent defaults fit the static embedder? Figures for BENCHMARKS.md.

    python bench/static_thresholds.py [--datasets toolformer,codegen,dolly] [--rows 5000]
        [--json results.json]

Three defaults are cosine cuts, and a static model spreads cosines differently from
MiniLM, so each is compared on the same rows embedded by both (row vectors as the embed
stage makes them, no Ray):

- ``dedup.semantic_threshold`` (0.95): on each real dataset of ../shared/data, the pairs
  of rows above each MiniLM cut of the ladder, the static cut that gives the same number
  of pairs, and how many of MiniLM's pairs the static model finds at that cut (pairs over
  the whole dataset; curate compares rows within a k-means cluster only);
- ``selection.min_distance`` (0.1): the share of rows whose nearest other row is closer
  than the cut, per encoder, and the static cut with MiniLM's share;
- ``signals.relevance_threshold`` (-0.2): on ``--rows`` generated demo rows (seed 0), the
  relevance margin of the 91-odd planted mislabeled rows against the clean ones: flagged,
  precision and recall per threshold for each encoder (every row competes with 2,000
  sampled instructions, as in curate; curate runs it only on rows that survived the
  rules, so the figures are close to, not equal to, the planted-defect bench); and on
  each real dataset, the rows whose margin falls below each cut, per encoder.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
DATASETS = {
    "toolformer": ("gpteacher/toolformer-dedupe-only-dataset.json", {"response": "output"}),
    "codegen": ("gpteacher/codegen-instruct.json", {"response": "output"}),
    "dolly": ("dolly/dolly_3k.json", {}),
}
SEMANTIC = (0.95, 0.9, 0.85, 0.8)
DISTANCE = (0.05, 0.1, 0.2)
RELEVANCE = (-0.3, -0.25, -0.2, -0.15, -0.1, -0.05)
REAL_RELEVANCE = (-0.2, -0.25, -0.3, -0.35, -0.4, -0.5)


def rows_of(path: Path, field_map: dict[str, str]) -> tuple[list[str], list[str]]:
    """Prompts and responses of a file's readable rows, as curate reads them."""
    from quality import schema
    from quality.readers import read_all

    rows = [r for r in read_all([str(path)], field_map=field_map) if r["status"] == schema.ACTIVE]
    return [r["prompt"] for r in rows], [r["response"] for r in rows]


def embed(encoder: Any, prompts: list[str], responses: list[str]) -> tuple[np.ndarray, ...]:
    """(row, instruction, response) vectors in the embed stage's batches of 128 rows."""
    from quality.embeddings import row_vectors

    parts = [
        row_vectors(encoder, prompts[i : i + 128], responses[i : i + 128])
        for i in range(0, len(prompts), 128)
    ]
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))


def upper_cosines(vectors: np.ndarray) -> np.ndarray:
    """Cosine of every pair of rows (i < j), float32."""
    sims = vectors @ vectors.T
    return sims[np.triu_indices(len(vectors), k=1)]


def semantic_figures(minilm: np.ndarray, static: np.ndarray) -> dict[str, Any]:
    """Per MiniLM cut: its pairs, the static cut with as many pairs, and their overlap."""
    a, b = upper_cosines(minilm), upper_cosines(static)
    order = np.sort(b)[::-1]
    out = {}
    for t in SEMANTIC:
        mine = a > t
        n = int(mine.sum())
        matched = float(order[n - 1]) if n else float("nan")
        theirs = b >= matched if n else np.zeros_like(mine)
        out[t] = {
            "minilm_pairs": n,
            "static_pairs_at_same_cut": int((b > t).sum()),
            "static_cut_same_pairs": round(matched, 3),
            "minilm_pairs_found_there": round(float((mine & theirs).sum() / n), 3) if n else None,
        }
    return out


def distance_figures(minilm: np.ndarray, static: np.ndarray) -> dict[str, Any]:
    """Share of rows whose nearest other row is closer than each cut, per encoder."""
    near = {}
    for name, v in (("minilm", minilm), ("static", static)):
        sims = v @ v.T
        np.fill_diagonal(sims, -np.inf)
        near[name] = 1.0 - sims.max(axis=1)
    out = {}
    for d in DISTANCE:
        share = float(np.mean(near["minilm"] < d))
        out[d] = {
            "minilm_share": round(share, 4),
            "static_share": round(float(np.mean(near["static"] < d)), 4),
            "static_cut_same_share": round(float(np.quantile(near["static"], share)), 3),
        }
    return out


def relevance_figures(encoders: dict[str, Any], n_rows: int) -> dict[str, Any]:
    """Mislabeled vs clean by relevance margin on generated rows, per encoder and cut."""
    from jobs.demo.generator import generate, write_jsonl
    from quality.readers import read_all
    from quality.relevance import relevance_margin

    rows = generate(n_rows, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        write_jsonl(rows, Path(tmp) / "demo.jsonl")
        read = list(read_all([str(Path(tmp) / "demo.jsonl")]))  # one per row, in order
    keep = [r for r, t in zip(read, rows, strict=True) if t["truth"] in ("clean", "mislabeled")]
    prompts = [r["prompt"] for r in keep]
    responses = [r["response"] for r in keep]
    truth = np.array(
        [t["truth"] == "mislabeled" for t in rows if t["truth"] in ("clean", "mislabeled")]
    )
    rng = np.random.default_rng(0)
    sample = rng.choice(len(keep), size=min(2000, len(keep)), replace=False)
    ids = [str(i) for i in range(len(keep))]
    out: dict[str, Any] = {"rows": len(keep), "mislabeled": int(truth.sum())}
    for name, encoder in encoders.items():
        _, inst, resp = embed(encoder, prompts, responses)
        margins = relevance_margin(
            inst, resp, inst[sample], row_ids=ids, sample_ids=[ids[i] for i in sample]
        )
        out[name] = {}
        for t in RELEVANCE:
            flagged = margins < t
            hit = int((flagged & truth).sum())
            out[name][t] = {
                "flagged": int(flagged.sum()),
                "precision": round(float(hit / flagged.sum()), 3) if flagged.any() else None,
                "recall": round(float(hit / truth.sum()), 3),
            }
    return out


def real_relevance_figures(instructions: np.ndarray, responses: np.ndarray) -> dict[float, int]:
    """Rows of a real dataset whose relevance margin falls below each cut (2,000 sampled
    competitors, seed 0, k = 10): what ``mismatched`` would drop from human-written data."""
    from quality.relevance import relevance_margin

    n = len(instructions)
    sample = np.random.default_rng(0).choice(n, size=min(2000, n), replace=False)
    ids = [str(i) for i in range(n)]
    margins = relevance_margin(
        instructions,
        responses,
        instructions[sample],
        row_ids=ids,
        sample_ids=[ids[i] for i in sample],
    )
    return {t: int((margins < t).sum()) for t in REAL_RELEVANCE}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="toolformer,codegen,dolly")
    parser.add_argument("--rows", type=int, default=5000, help="generated rows (relevance)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from quality.embeddings import load_encoder

    encoders = {"minilm": load_encoder("default"), "static": load_encoder("static")}
    results: dict[str, Any] = {"relevance": relevance_figures(encoders, args.rows)}
    print(json.dumps(results["relevance"], indent=1), flush=True)
    for name in [d for d in args.datasets.split(",") if d]:
        file, field_map = DATASETS[name]
        prompts, responses = rows_of(DATA / file, field_map)
        minilm = embed(encoders["minilm"], prompts, responses)
        static = embed(encoders["static"], prompts, responses)
        results[name] = {
            "rows": len(prompts),
            "semantic": semantic_figures(minilm[0], static[0]),
            "min_distance": distance_figures(minilm[0], static[0]),
            "mismatched_at": {
                "minilm": real_relevance_figures(*minilm[1:]),
                "static": real_relevance_figures(*static[1:]),
            },
        }
        print(name, json.dumps(results[name], indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
