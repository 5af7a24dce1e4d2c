"""Relevance methods compared per encoder: planted mislabeled rows and real clean rows.

    python bench/static_relevance.py [--models static,default] [--json out.json]

For each encoder (row vectors as the embed stage makes them, cached by
bench/embed_cache.py, no Ray), each method scores:

- planted: the clean and mislabeled rows of 5,000 generated demo rows (seed 0; about 3,070
  rows, 91 mislabeled), 2,000 sampled competitors (seed 0), instruction keys as ids;
  precision and recall of the rows flagged;
- dolly, codegen, toolformer: every readable row of the shared file (human-written, taken
  as clean), 2,000 sampled competitors; rows flagged.

Methods: ``cross`` is quality.relevance.relevance_margin at -0.2 (what MiniLM runs);
``cross-centred`` centres each space on the sample's mean first (-0.3); ``paired-0.7``,
``paired-0.8`` (what the static encoder runs), ``paired-0.9`` are
quality.relevance.paired_margin at those thresholds; ``paired-calibrated`` (measured, not
adopted) counts the paired margin from the sample's median when that is below 0 and
widens the -0.8 cut to 4 robust standard deviations of the sample's margins.
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

from bench.embed_cache import cached_row_vectors  # noqa: E402
from bench.static_thresholds import DATA, DATASETS, rows_of  # noqa: E402


def planted_rows() -> tuple[list[str], list[str], np.ndarray]:
    """Prompts, responses and the mislabeled mask of the generated clean+mislabeled rows."""
    from jobs.demo.generator import generate, write_jsonl
    from quality.readers import read_all

    rows = generate(5000, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        write_jsonl(rows, Path(tmp) / "demo.jsonl")
        read = list(read_all([str(Path(tmp) / "demo.jsonl")]))
    # The cache holds all 5,000 rows' vectors; the clean and mislabeled are picked after.
    return (
        [r["prompt"] for r in read],
        [r["response"] for r in read],
        np.array([t["truth"] for t in rows]),
    )


def flags(method: str, ins: np.ndarray, res: np.ndarray, keys: list[str]) -> np.ndarray:
    """Rows one method flags as mismatched, against 2,000 rows sampled with seed 0."""
    from quality import relevance as rel

    take = np.random.default_rng(0).choice(len(ins), size=min(2000, len(ins)), replace=False)
    skeys = [keys[j] for j in take]
    if method == "cross":
        m = rel.relevance_margin(ins, res, ins[take], row_ids=keys, sample_ids=skeys)
        return m < -0.2
    if method == "cross-centred":
        ci, cr = ins - ins[take].mean(0), res - res[take].mean(0)
        ci /= np.linalg.norm(ci, axis=1, keepdims=True)
        cr /= np.linalg.norm(cr, axis=1, keepdims=True)
        m = rel.relevance_margin(ci, cr, ci[take], row_ids=keys, sample_ids=skeys)
        return m < -0.3
    m = rel.paired_margin(ins, res, ins[take], res[take], row_ids=keys, sample_ids=skeys)
    if method.startswith("paired-0"):
        return rel.mismatched(m, threshold=float(method.removeprefix("paired")))
    # the sampled rows against the sample, own key excluded: the dataset's own margins
    own = rel.paired_margin(
        ins[take], res[take], ins[take], res[take], row_ids=skeys, sample_ids=skeys
    )
    median = float(np.median(own))
    sd = 1.4826 * float(np.median(np.abs(own - median)))
    return m - min(median, 0.0) < min(rel.PAIRED_THRESHOLD, -4.0 * sd)


METHODS = ("cross", "cross-centred", "paired-0.7", "paired-0.8", "paired-0.9", "paired-calibrated")


def main(argv: list[str] | None = None) -> None:
    from quality.text import instruction_key

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="static,default")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    prompts, responses, truth = planted_rows()
    keep = np.flatnonzero(np.isin(truth, ["clean", "mislabeled"]))
    bad = truth[keep] == "mislabeled"
    real = {name: rows_of(DATA / f, fm) for name, (f, fm) in DATASETS.items()}
    results: dict[str, Any] = {}
    for model in [m for m in args.models.split(",") if m]:
        _, ins, res = cached_row_vectors(prompts, responses, model=model)
        keys = [instruction_key(prompts[i]) for i in keep]
        vectors = {name: cached_row_vectors(p, r, model=model)[1:] for name, (p, r) in real.items()}
        real_keys = {name: [instruction_key(x) for x in p] for name, (p, _) in real.items()}
        for method in METHODS:
            f = flags(method, ins[keep], res[keep], keys)
            hit = int((f & bad).sum())
            line: dict[str, Any] = {
                "planted_flagged": int(f.sum()),
                "precision": round(hit / max(int(f.sum()), 1), 3),
                "recall": round(hit / int(bad.sum()), 3),
            }
            for name, (a, b) in vectors.items():
                line[f"{name}_flagged"] = int(flags(method, a, b, real_keys[name]).sum())
            results[f"{model} {method}"] = line
            print(model, method, json.dumps(line), flush=True)
    print(
        f"planted: {len(keep)} rows, {int(bad.sum())} mislabeled; real rows: "
        + ", ".join(f"{n} {len(p)}" for n, (p, _) in real.items())
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
