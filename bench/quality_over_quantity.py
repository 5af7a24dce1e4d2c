"""Quality over quantity on the demo data: curated vs random vs full, held-out NLL.

Generates a noisy demo dataset (seed 0) and a clean held-out set from another seed whose
instructions the noisy set does not contain, then runs ``finesift experiment`` with
configs/experiment.yaml and prints the table (numbers for BENCHMARKS.md).

    .venv/bin/python bench/quality_over_quantity.py --rows 2000 --budget 200 --heldout 150
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console

from infra.config import load_config
from jobs.demo.generator import generate, write_jsonl
from jobs.evaluation.config import ExperimentConfig
from jobs.evaluation.experiment import print_table, run
from quality.text import normalize_text

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "experiment.yaml"


def instruction_of(record: dict) -> str:
    """A demo row's instruction and input, normalized: the key for leakage."""
    return normalize_text(f"{record['instruction']}\n{record.get('input') or ''}")


def make_heldout(noisy: list[dict], rows: int, seed: int) -> list[dict]:
    """Clean demo rows from another seed, none with an instruction of ``noisy``, no repeats."""
    seen = {instruction_of(r) for r in noisy}
    heldout = []
    for record in generate(rows * 20, seed=seed, mix={"clean": 1.0}):
        key = instruction_of(record)
        if key not in seen:
            seen.add(key)
            heldout.append(record)
        if len(heldout) == rows:
            return heldout
    raise SystemExit(f"could only find {len(heldout)} unseen clean rows; lower --heldout")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2000, help="noisy rows")
    parser.add_argument("--heldout", type=int, default=150, help="held-out clean rows")
    parser.add_argument("--budget", type=int, default=200, help="rows curate selects")
    parser.add_argument("--arms", default="curated,random,full")
    parser.add_argument("--out", default="runs/bench-experiment")
    parser.add_argument("overrides", nargs="*", help="experiment config overrides, key=value")
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    noisy = generate(args.rows, seed=0)
    write_jsonl(noisy, out / "noisy.jsonl")
    heldout = make_heldout(noisy, args.heldout, seed=1)
    write_jsonl(heldout, out / "heldout.jsonl")
    kinds: dict[str, int] = {}
    for r in noisy:
        kinds[r["truth"].split(":")[0]] = kinds.get(r["truth"].split(":")[0], 0) + 1
    print(f"noisy: {len(noisy)} rows {kinds}; held-out: {len(heldout)} clean unseen rows")

    cfg = load_config(
        ExperimentConfig,
        CONFIG,
        args.overrides,
        data=str(out / "noisy.jsonl"),
        eval_data=str(out / "heldout.jsonl"),
        budget=args.budget,
        arms=tuple(a.strip() for a in args.arms.split(",")),
        out=str(out / "experiment"),
    )
    start = time.perf_counter()
    result = run(cfg)
    print_table(result, Console())
    print(f"total {time.perf_counter() - start:.0f} s; {out / 'experiment' / 'experiment.json'}")
    print(json.dumps(result["arms"], indent=2))


if __name__ == "__main__":
    main()
