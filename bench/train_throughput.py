"""Training throughput: `finesift train` (Ray Train, one worker) vs plain TRL in one process.

Both sides run the same SFTTrainer (``jobs.training.loop.build_sft_trainer``) on the same rows,
base model (the bundled SmolLM2-135M-Instruct by default), steps, batch and torch threads,
with one checkpoint midway and one at the end. Figures:

- tokens/s of the training loop (the Trainer's own ``train_tokens_per_second``: model
  loading and tokenization excluded, checkpointing included), and their ratio (target
  >= 0.9);
- wall time of the whole run (Ray startup, worker spawn and model load included);
- peak RSS of the process that trains (the Ray Train worker / the plain process).

The plain side runs in a subprocess so its peak memory is its own. Data: --data, else
demo/curated/selected.jsonl when present, else clean rows from ``jobs.demo.generator``.

    .venv/bin/python bench/train_throughput.py [--steps 12] [--batch-size 2] [--max-length 256]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


def bench_config(args: argparse.Namespace, data: str, out: Path):
    """The TrainConfig both sides use."""
    from infra.config import load_config
    from jobs.training.config import TrainConfig

    half = max(1, args.steps // 2)
    return load_config(
        TrainConfig,
        None,
        [
            f"optim.max_steps={args.steps}",
            f"optim.batch_size={args.batch_size}",
            f"text.max_length={args.max_length}",
            "eval.fraction=0",
            "eval.base_loss=false",
            f"checkpoint.every_steps={half}",
            f"checkpoint.logging_steps={half}",
            f"scaling.storage_path={out}/runs",
            "scaling.max_failures=0",
        ],
        data=data,
        name="bench",
        base_model=args.base_model,
        adapters_dir=str(out / "adapters"),
    )


def bench_data(args: argparse.Namespace, out: Path) -> str:
    """The rows to train on (see the module docstring)."""
    if args.data:
        return args.data
    curated = ROOT / "demo" / "curated" / "selected.jsonl"
    if curated.is_file():
        return str(curated)
    from jobs.demo.generator import generate, write_jsonl

    path = out / "rows.jsonl"
    write_jsonl(generate(400, seed=0, mix={"clean": 1.0}), path)
    return str(path)


def run_plain(args: argparse.Namespace) -> None:
    """Subprocess side: plain TRL SFTTrainer in this process; prints one JSON line."""
    import torch

    from infra.models import resolve_base_model
    from jobs.training.loop import build_sft_trainer, peak_rss_mb
    from jobs.training.train import prepare_rows

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    cfg = bench_config(args, args.data, out)
    started = time.time()
    model_path = resolve_base_model(cfg.base_model)
    rows = prepare_rows(cfg, model_path)
    trainer = build_sft_trainer(cfg, model_path, rows.train, [], out / "plain")
    trainer.train()
    speeds = [
        e["train_tokens_per_second"]
        for e in trainer.state.log_history
        if "train_tokens_per_second" in e
    ]
    print(
        json.dumps(
            {
                "tokens_per_s": speeds[-1],
                "wall_s": time.time() - started,
                "peak_rss_mb": peak_rss_mb(),
                "steps": trainer.state.global_step,
                "tokens": trainer.state.num_input_tokens_seen,
            }
        )
    )


def run_ray(args: argparse.Namespace, data: str, out: Path) -> dict:
    """`finesift train` through its Python entry point (Ray Train, one worker)."""
    from jobs.training.train import train

    started = time.time()
    result = train(bench_config(args, data, out))
    meta = json.loads((result.adapter_dir / "finesift.json").read_text())
    return {
        "tokens_per_s": meta["tokens_per_second"],
        "wall_s": time.time() - started,
        "peak_rss_mb": meta["peak_rss_mb"],
        "steps": meta["steps"],
        "tokens": meta["tokens_seen"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="training rows (JSONL)")
    parser.add_argument("--base-model", default="default")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        run_plain(args)
        return

    import ray

    from infra.models import resolve_base_model
    from infra.ray_env import init_ray

    resolve_base_model(args.base_model)  # convert once, outside both measurements
    out = Path(tempfile.mkdtemp(prefix="finesift-bench-"))
    data = bench_data(args, out)
    init_ray()
    threads = int(ray.cluster_resources().get("CPU", 1))
    print(
        f"data {data}, base model {args.base_model}, {args.steps} steps, batch "
        f"{args.batch_size}, max_length {args.max_length}, {threads} threads",
        flush=True,
    )

    plain_cmd = [
        sys.executable,
        __file__,
        "--plain",
        "--data",
        data,
        "--out",
        str(out),
        "--threads",
        str(threads),
        "--steps",
        str(args.steps),
        "--base-model",
        args.base_model,
        "--batch-size",
        str(args.batch_size),
        "--max-length",
        str(args.max_length),
    ]
    done = subprocess.run(plain_cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"plain TRL run failed:\n{done.stderr[-3000:]}")
    plain = json.loads(done.stdout.strip().splitlines()[-1])
    ray_side = run_ray(args, data, out)

    print("\n| run | tokens/s (train loop) | wall s | peak RSS MiB | steps | tokens |")
    print("|---|---|---|---|---|---|")
    for label, r in (
        ("plain TRL SFTTrainer, 1 process", plain),
        ("finesift train (Ray Train, 1 worker)", ray_side),
    ):
        print(
            f"| {label} | {r['tokens_per_s']:.1f} | {r['wall_s']:.0f} | "
            f"{r['peak_rss_mb']:.0f} | {r['steps']} | {r['tokens']} |"
        )
    ratio = ray_side["tokens_per_s"] / plain["tokens_per_s"]
    print(
        f"\nthroughput ratio finesift/plain: {ratio:.2f} (target >= 0.9: "
        f"{'met' if ratio >= 0.9 else 'NOT met'})"
    )
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
