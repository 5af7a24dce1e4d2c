"""The static embedder against MiniLM on real rows: speed and agreement. For BENCHMARKS.md.

    python bench/static_embed.py [--rows 2000] [--threads 1] [--distill]
        [--reference DIR] [--json results.json]

Rows are the first ``--rows`` of Dolly 3k (../shared/data), read as ``finesift curate``
reads them; each row is embedded the way the embed stage embeds it
(:func:`quality.embeddings.row_vectors`: prompt and response apart, in one encoder call).

- speed: rows/s of each encoder over the same rows in one process, the two taking turns
  batch by batch (so both meet the same load on a shared machine), with ``--threads``
  torch threads (MiniLM) and tokenizer threads (both), model load not counted; the load
  average before and after is recorded beside it;
- agreement with MiniLM: Spearman rank correlation of all pairwise cosine similarities
  between rows, and the mean overlap of each row's 10 nearest neighbours;
- distillation: the seconds the cached model's manifest records, or with ``--distill`` a
  fresh distillation into a temporary FINESIFT_HOME, timed here;
- ``--reference DIR``: a static model distilled by model2vec's own ``distill`` (made in an
  environment of its own, see BENCHMARKS.md) is compared with finesift's on the same rows
  (per-token vector cosine over the shared vocabulary, and row-vector agreement).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DOLLY = ROOT.parent / "shared" / "data" / "dolly" / "dolly_3k.json"


def dolly_rows(n: int) -> tuple[list[str], list[str]]:
    """Prompts and responses of the first ``n`` readable Dolly rows."""
    from quality import schema
    from quality.readers import read_all

    if not DOLLY.is_file():
        raise SystemExit(f"{DOLLY} is absent (it only sits beside the dev checkout)")
    rows = [r for r in read_all([str(DOLLY)]) if r["status"] == schema.ACTIVE][:n]
    return [r["prompt"] for r in rows], [r["response"] for r in rows]


def interleaved_vectors(
    encoders: dict[str, Any], prompts: list[str], responses: list[str]
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Row vectors from each encoder, in batches of 128 rows as the embed actors call them,
    the encoders taking turns batch by batch, and the seconds each spent.

    Taking turns puts both encoders under the same machine load, which on a shared machine
    changes by the minute; one run after the other would compare two loads.
    """
    from quality.embeddings import row_vectors

    parts: dict[str, list[np.ndarray]] = {name: [] for name in encoders}
    seconds = dict.fromkeys(encoders, 0.0)
    for i in range(0, len(prompts), 128):
        for name, encoder in encoders.items():
            start = time.perf_counter()
            parts[name].append(
                row_vectors(encoder, prompts[i : i + 128], responses[i : i + 128])[0]
            )
            seconds[name] += time.perf_counter() - start
    return {name: np.concatenate(p) for name, p in parts.items()}, seconds


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two equal-length 1-D arrays (no ties expected)."""
    ra = np.empty(len(a))
    rb = np.empty(len(b))
    ra[np.argsort(a)] = np.arange(len(a))
    rb[np.argsort(b)] = np.arange(len(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def agreement(x: np.ndarray, y: np.ndarray, k: int = 10) -> dict[str, float]:
    """How alike two embeddings of the same rows are: pairwise-cosine rank correlation and
    the mean share of each row's k nearest neighbours they have in common."""
    sx, sy = x @ x.T, y @ y.T
    upper = np.triu_indices(len(x), k=1)
    np.fill_diagonal(sx, -np.inf)
    np.fill_diagonal(sy, -np.inf)
    nx = np.argpartition(-sx, k, axis=1)[:, :k]
    ny = np.argpartition(-sy, k, axis=1)[:, :k]
    overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(nx, ny, strict=True)])
    return {
        "spearman_pairwise_cosine": round(spearman(sx[upper], sy[upper]), 3),
        f"knn{k}_overlap": round(float(overlap), 3),
    }


def compare_reference(ours: Path, reference: Path, texts: list[str]) -> dict[str, Any]:
    """finesift's distillation against model2vec's own, token by token and on ``texts``."""
    from model2vec import StaticModel

    a = StaticModel.from_pretrained(str(ours), quantize_to="float32")
    b = StaticModel.from_pretrained(str(reference), quantize_to="float32")
    va, vb = a.tokenizer.get_vocab(), b.tokenizer.get_vocab()
    shared = sorted(set(va) & set(vb))
    ea = a.embedding[[va[t] for t in shared]]
    eb = b.embedding[[vb[t] for t in shared]]
    cos = np.sum(ea * eb, axis=1) / (
        np.linalg.norm(ea, axis=1) * np.linalg.norm(eb, axis=1) + 1e-12
    )
    xa = a.encode(texts, use_multiprocessing=False)
    xb = b.encode(texts, use_multiprocessing=False)
    return {
        "vocabulary": {"ours": len(va), "reference": len(vb), "shared": len(shared)},
        "only_ours": sorted(set(va) - set(vb))[:10],
        "only_reference": sorted(set(vb) - set(va))[:10],
        "token_vector_cosine": {
            "min": round(float(cos.min()), 4),
            "median": round(float(np.median(cos)), 4),
        },
        "text_vector_cosine_min": round(float(np.min(np.sum(xa * xb, axis=1))), 4),
        "agreement": agreement(xa, xb),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1, help="torch / tokenizer threads")
    parser.add_argument("--distill", action="store_true", help="distil afresh, timed")
    parser.add_argument("--reference", type=Path, help="a model2vec-distilled directory")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)  # the tokenizers' thread pool
    import torch

    torch.set_num_threads(args.threads)
    from infra.static_model import ensure_static_model, read_manifest
    from quality.embeddings import load_encoder

    results: dict[str, Any] = {"rows": args.rows, "threads": args.threads}
    if args.distill:
        home = tempfile.mkdtemp(prefix="finesift-static-")
        os.environ["FINESIFT_HOME"] = home
        start = time.perf_counter()
        ensure_static_model(progress=print)
        results["distill_seconds"] = round(time.perf_counter() - start, 1)
        results["distill_load"] = os.getloadavg()
    path = ensure_static_model(progress=print)
    manifest = read_manifest(path) or {}
    results["manifest_seconds"] = manifest.get("result", {}).get("seconds")
    prompts, responses = dolly_rows(args.rows)
    encoders = {"static": load_encoder("static"), "default": load_encoder("default")}
    interleaved_vectors(encoders, prompts[:64], responses[:64])  # warm-up
    load_before = os.getloadavg()
    vectors, seconds = interleaved_vectors(encoders, prompts, responses)
    results["load_avg_before_after"] = [load_before, os.getloadavg()]
    for name, s in seconds.items():
        results[name] = {"seconds": round(s, 2), "rows_per_s": round(len(prompts) / s, 1)}
        print(f"{name}: {len(prompts)} rows in {s:.1f} s = {len(prompts) / s:.1f} rows/s")
    speedup = results["static"]["rows_per_s"] / results["default"]["rows_per_s"]
    results["speedup"] = round(speedup, 1)
    results["agreement"] = agreement(vectors["static"], vectors["default"])
    print(f"static / MiniLM speed: {results['speedup']}x; agreement {results['agreement']}")
    if args.reference:
        results["reference"] = compare_reference(path, args.reference, prompts + responses)
        print(f"against model2vec's own distillation: {results['reference']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
