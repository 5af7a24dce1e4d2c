"""How `finesift curate` scales, against the embedding floor and SemHash, in one run.

For each size (10k and 100k generated rows; 1M with --full) it measures, each in a
fresh process so Ray and model caches do not leak between them:

- curate: wall time of `jobs.curation.curate.run` (Ray start included), rows/s, and peak memory
  summed over the driver and every Ray process it started, sampled every 0.2 s, as RSS
  (shared object-store pages counted once per process mapping them) and as PSS (each
  shared page split between its processes: the memory really held);
- floor: the same input rows embedded by the same model in one plain process (model
  load excluded), the least work any semantic curation must do;
- SemHash (bench-only dependency `semhash`): self-deduplication of the same rows with
  the same encoder, its time and the rows it removes. Its encoder pass is the floor's
  pass over the same texts, so rather than run it a second time (50 minutes at 100k
  rows on 2 cores) SemHash is built from the floor's vectors (``from_embeddings``), and
  its time is its own (exact dedup, index, search) plus the floor's time pro rata for
  the distinct texts (``from_records`` drops exact duplicates before encoding). Its
  peak memory therefore holds no encoder.

The ratio total/floor is the figure of merit (target <= 1.5 at 100k rows). Curate embeds
fewer rows than the floor (the embed stage takes in only rows the rules, exact dedup and
conflicts left active; the table shows how many) on a pool of single-thread actors, so the
table also gives the embed stage's own time and the other stages' time over the floor.

    python bench/curate_scaling.py [--sizes 10000,100000] [--full] [--model default]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def peak_rss_sampler(stop: threading.Event, result: dict) -> None:
    """Sample the memory of this process and all its descendants until stopped.

    Two sums: RSS, which counts a shared page once per process that maps it (every Ray
    worker maps the object store, so the same rows count several times), and PSS, which
    splits each shared page between the processes that map it: the memory these processes
    really hold together.
    """
    import psutil

    me = psutil.Process()
    peak_rss = peak_pss = 0
    peak_at = 0.0
    start = time.perf_counter()
    while not stop.is_set():
        rss = pss = 0
        for proc in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):  # a process may exit between the two calls
                info = proc.memory_full_info()
                rss += info.rss
                pss += getattr(info, "pss", info.rss)  # PSS is Linux's; elsewhere RSS
        if pss > peak_pss:
            peak_at = time.perf_counter() - start
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        stop.wait(0.2)
    result["peak_rss_mb"] = round(peak_rss / 2**20, 1)
    result["peak_pss_mb"] = round(peak_pss / 2**20, 1)
    result["peak_pss_at_s"] = round(peak_at, 1)


def stage_at(stages: dict[str, float], seconds: float) -> str:
    """The stage running ``seconds`` into the run, from the stages' times in order (about:
    the driver's own work between stages is not in them)."""
    elapsed = 0.0
    for name, took in stages.items():
        elapsed += took
        if seconds <= elapsed:
            return name
    return "after the stages"


def measured(fn):
    """Run fn() while sampling memory; return (seconds, peak MB (RSS and PSS), fn's result)."""
    stop, mem = threading.Event(), {}
    sampler = threading.Thread(target=peak_rss_sampler, args=(stop, mem), daemon=True)
    sampler.start()
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    return seconds, mem, out


def child_curate(data: str, out: str, model: str) -> dict:
    from infra.config import load_config
    from jobs.curation.config import CurateConfig
    from jobs.curation.curate import run

    cfg = load_config(CurateConfig, None, [f"embed.model={model}"], inputs=(data,), out=out)
    seconds, peak, result = measured(lambda: run(cfg))
    removed = sum(
        r.rows
        for r in result.by_reason
        if r.reason in ("exact_duplicate", "near_duplicate", "semantic_duplicate")
    )
    return {
        "seconds": seconds,
        **peak,
        "peak_pss_stage": stage_at(result.seconds, peak["peak_pss_at_s"]),
        "stages": result.seconds,
        "embedded_rows": result.rows_in.get("embed", 0),
        "duplicates_removed": removed,
        "rows": result.input_rows,
    }


def child_floor(data: str, model: str, vectors_out: str, batch_size: int = 128) -> dict:
    import numpy as np

    texts = _texts(data)
    from quality.embeddings import load_encoder

    encoder = load_encoder(model, batch_size=batch_size)

    def embed():
        return [encoder.encode(texts[i : i + 4096]) for i in range(0, len(texts), 4096)]

    seconds, peak, chunks = measured(embed)
    np.save(vectors_out, np.concatenate(chunks) if chunks else np.zeros((0, 1), np.float32))
    return {"seconds": seconds, **peak, "rows": len(texts)}


def child_semhash(data: str, vectors: str, floor_seconds: str, threshold: str) -> dict:
    """SemHash's self-deduplication of the same texts, from the floor's vectors of them."""
    try:
        from semhash import SemHash
    except ImportError:
        return {"skipped": "semhash is not installed (pip install semhash==0.5.0)"}
    import numpy as np

    texts = _texts(data)
    table = np.load(vectors)

    class Unused:  # from_embeddings wants the encoder for later queries; dedup makes none
        def encode(self, inputs, **_):
            raise AssertionError("self-deduplication should not encode")

    def dedup():
        index = SemHash.from_embeddings(table, texts, model=Unused())
        return index.self_deduplicate(threshold=float(threshold))

    seconds, peak, result = measured(dedup)
    # from_records would encode each distinct text once: the floor's time for that share.
    encode = float(floor_seconds) * len(set(texts)) / max(len(texts), 1)
    return {
        "seconds": seconds + encode,
        "own_seconds": seconds,
        "encode_seconds": encode,
        **peak,
        "duplicates_removed": len(texts) - len(result.selected),
        "threshold": float(threshold),
    }


def _texts(data: str) -> list[str]:
    from quality.embeddings import embedding_text
    from quality.readers import read_all

    return [
        embedding_text(r["prompt"], r["response"])
        for r in read_all([data])
        if r["status"] == "active"
    ]


def in_child(kind: str, *args: str, timeout: float | None = None) -> dict:
    """Run one measurement in a fresh interpreter and parse its JSON line.

    With ``timeout`` (seconds), a measurement still running then is stopped and reported
    as ``{"timed_out": timeout}``: a lower bound on its time.
    """
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.pop("RAY_ADDRESS", None)  # a fresh local Ray per measurement
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", kind, *args],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"timed_out": timeout}
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--full", action="store_true", help="add 1,000,000 rows")
    parser.add_argument("--model", default="default", help="embedder (default: bundled MiniLM)")
    parser.add_argument("--semhash-threshold", type=float, default=0.95)
    parser.add_argument("--no-semhash", action="store_true")
    parser.add_argument(
        "--semhash-timeout", type=float, default=None, help="stop SemHash after this many s"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        fn = {"curate": child_curate, "floor": child_floor, "semhash": child_semhash}[kind]
        print(json.dumps(fn(*rest)))
        return

    from jobs.demo.generator import generate, write_jsonl

    sizes = [int(s) for s in args.sizes.split(",")] + ([1_000_000] if args.full else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            data = Path(tmp) / f"demo-{n}.jsonl"
            write_jsonl(generate(n, seed=0), data)
            print(f"== {n} rows", flush=True)
            curate = in_child("curate", str(data), str(Path(tmp) / f"out-{n}"), args.model)
            print(f"curate  {json.dumps(curate)}", flush=True)
            vectors = str(Path(tmp) / f"floor-{n}.npy")
            floor = in_child("floor", str(data), args.model, vectors)
            print(f"floor   {floor['seconds']:.1f}s  ({floor['rows']} rows embedded)", flush=True)
            sem = (
                {"skipped": "--no-semhash"}
                if args.no_semhash
                else in_child(
                    "semhash",
                    str(data),
                    vectors,
                    str(floor["seconds"]),
                    str(args.semhash_threshold),
                    timeout=args.semhash_timeout,
                )
            )
            print(f"semhash {sem}", flush=True)
            rows.append((n, curate, floor, sem))
    print()
    print(f"embedder: {args.model}; machine: {os.cpu_count()} cores")
    print(
        "| rows | curate s | rows/s | peak MB RSS / PSS | floor s | total/floor "
        "| embed stage s (rows) | other stages / floor | dups removed "
        "| SemHash s (own + encode) | SemHash removed |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, c, f, s in rows:
        embed = c["stages"].get("embed", 0.0)
        print(
            f"| {n:,} | {c['seconds']:.1f} | {n / c['seconds']:,.0f} "
            f"| {c['peak_rss_mb']:,.0f} / {c['peak_pss_mb']:,.0f} "
            f"| {f['seconds']:.1f} | {c['seconds'] / f['seconds']:.2f} "
            f"| {embed:.1f} ({c['embedded_rows']:,}) | {(c['seconds'] - embed) / f['seconds']:.2f} "
            f"| {c['duplicates_removed']:,} | {_semhash_seconds(s)} "
            f"| {s.get('duplicates_removed', '-')} |"
        )
    if len(rows) > 1:
        (n0, c0, *_), (n1, c1, *_) = rows[0], rows[-1]
        growth = (c1["seconds"] / c0["seconds"]) / (n1 / n0)
        print(
            f"time growth vs linear from {n0:,} to {n1:,} rows: {growth:.2f} (<= 1 is linear or "
            "better)"
        )


def _semhash_seconds(s: dict) -> str:
    if "timed_out" in s:
        return f"> {s['timed_out']:.0f} (stopped)"
    if "seconds" not in s:
        return "-"
    return f"{s['seconds']:.1f} ({s['own_seconds']:.1f} + {s['encode_seconds']:.1f})"


if __name__ == "__main__":
    main()
