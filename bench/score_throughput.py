"""IFD scoring throughput: the Ray Data actor pool vs the same forward passes in a plain loop.

Both sides score the same rows with the same model (the bundled SmolLM2-135M-Instruct by
default), length cap, batch size and torch threads, in the same run:

- plain: one process loads the model and calls ``quality.ifd.score_ifd`` batch by batch;
- ray: ``jobs.curation.stages.ifd.IFDScorer`` in a one-actor ``ActorPoolStrategy`` pool over a
  Ray dataset, as ``finesift curate`` runs it with signals.ifd=true (a fresh, empty score
  cache, so every row is computed).

Rows/s count the whole of each side after Ray is up: model load and scoring (for Ray, also
actor start and moving blocks). The target is ray/plain >= 0.8. Rows are clean demo rows
(``jobs.demo.generator``, seed 0).

    .venv/bin/python bench/score_throughput.py [--rows 256] [--batch-size 8] [--max-length 512]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


def demo_rows(n: int) -> list[dict]:
    """n clean demo rows as canonical curation rows (every ROW_SCHEMA column present)."""
    from jobs.demo.generator import generate
    from quality.schema import new_row

    rows = []
    for i, r in enumerate(r for r in generate(3 * n, seed=0) if r["truth"] == "clean"):
        if len(rows) == n:
            break
        prompt = f"{r['instruction']}\n\n{r['input']}" if r["input"] else r["instruction"]
        row = new_row(id=f"r{i}", prompt=prompt, response=r["output"])
        rows.append(row)
    return rows


def plain(rows: list[dict], path: str, args: argparse.Namespace) -> float:
    """Seconds to load the model and score every row in one loop."""
    from quality.ifd import load_causal_lm, score_ifd

    start = time.perf_counter()
    model, tokenizer = load_causal_lm(path, threads=args.threads)
    step = args.rows_per_batch
    for i in range(0, len(rows), step):
        chunk = rows[i : i + step]
        score_ifd(
            model,
            tokenizer,
            [r["prompt"] for r in chunk],
            [r["response"] for r in chunk],
            max_length=args.max_length,
            batch_size=args.batch_size,
        )
    return time.perf_counter() - start


def on_ray(rows: list[dict], args: argparse.Namespace, cache: Path) -> float:
    """Seconds for the IFDScorer actor pool to score every row (Ray already running)."""
    import pyarrow as pa
    import ray
    from ray.data import ActorPoolStrategy

    from jobs.curation.stages.ifd import IFDScorer
    from quality.schema import ROW_SCHEMA

    table = pa.Table.from_pylist(rows, schema=ROW_SCHEMA)
    ds = ray.data.from_arrow(table).materialize()
    start = time.perf_counter()
    scored = ds.map_batches(
        IFDScorer,
        batch_size=args.rows_per_batch,
        batch_format="pyarrow",
        compute=ActorPoolStrategy(size=1),
        fn_constructor_kwargs=dict(
            model=args.model,
            device="cpu",
            max_length=args.max_length,
            batch_size=args.batch_size,
            threads=args.threads,
            cache_path=str(cache),
        ),
        num_cpus=args.threads,
    ).materialize()
    seconds = time.perf_counter() - start
    if scored.count() != len(rows):
        raise SystemExit("the Ray side lost rows")
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--model", default="default", help="signals.ifd_model")
    parser.add_argument("--batch-size", type=int, default=8, help="sequences per forward")
    parser.add_argument("--rows-per-batch", type=int, default=64, help="rows per Ray batch")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import ray

    from infra.models import resolve_base_model

    path = resolve_base_model(args.model)  # converted once, before either side is timed
    rows = demo_rows(args.rows)
    ray.init(address="local", num_cpus=args.threads, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory(prefix="finesift-score-") as tmp:
            plain_s = plain(rows, path, args)
            ray_s = on_ray(rows, args, Path(tmp) / "scores.sqlite")
    finally:
        ray.shutdown()
    result = {
        "rows": len(rows),
        "model": args.model,
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "plain_rows_per_s": round(len(rows) / plain_s, 2),
        "ray_rows_per_s": round(len(rows) / ray_s, 2),
        "ratio": round(plain_s / ray_s, 3),
    }
    print(
        f"IFD scoring, {result['rows']} rows, model={args.model}, max_length={args.max_length}, "
        f"batch {args.batch_size}, {args.threads} threads:\n"
        f"  plain loop  {result['plain_rows_per_s']:7.2f} rows/s ({plain_s:.1f} s)\n"
        f"  Ray Data    {result['ray_rows_per_s']:7.2f} rows/s ({ray_s:.1f} s)\n"
        f"  ratio ray/plain {result['ratio']:.3f} (target >= 0.8)"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
