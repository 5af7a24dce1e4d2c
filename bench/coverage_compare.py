"""Does the selection cover the data at least as well as a random pick? Offline, per dataset.

For each dataset the proposed pipeline (``bench/simulate_pipeline.py``: rules, MiniLM
vectors from the cache, relevance, composed score, every duplicate stage, k-means) runs
once; then each selection method picks the budget from the same survivors:

- ``diverse``: today's DEITA-style ``select_diverse`` with sqrt quotas;
- ``facility``: quality-weighted facility location (``quality.covering``), sqrt quotas;
- ``facility_gain``: the same, the budget allocated across clusters by marginal gain.

Coverage is the job's figure: mean cosine distance from each survivor to its nearest pick
(lower is better), against the mean of 5 random picks of the same size. Also printed: the
mean composed quality of the picks (quality first: it should stay above the survivors').

    python bench/coverage_compare.py [--datasets dolly,codegen,toolformer,demo,dolly-noisy]
        [--budget 500] [--json out.json]

``dolly-noisy``/``codegen-noisy`` are the injected sets of ``bench/real_noise.py``; ``demo``
is ``finesift demo-data`` (5,000 rows, seed 0).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"

from bench.noise_inject import SOURCES, inject, load_source  # noqa: E402
from bench.simulate_pipeline import prepare, select  # noqa: E402

METHODS = ("diverse", "facility", "facility_gain")


def dataset_file(name: str, work: Path) -> Path:
    """A JSONL file of the named dataset in ``work``."""
    path = work / f"{name}.jsonl"
    if name == "demo":
        from jobs.demo.generator import generate, write_jsonl

        write_jsonl(generate(5000, seed=0), path)
    elif name.endswith("-noisy"):
        base = name.removesuffix("-noisy")
        return inject(load_source(DATA, base), base).write(work)[0]
    else:
        with open(path, "w", encoding="utf-8") as f:
            for r in load_source(DATA, name):
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def compare(name: str, budget: int, seed: int, work: Path) -> dict[str, Any]:
    """Coverage and pick quality of every method on one dataset's survivors."""
    state = prepare(dataset_file(name, work), seed=seed)
    out = {}
    for method in METHODS:
        figures = select(copy.deepcopy(state), budget, seed, method)
        figures["ratio"] = round(figures["selected"] / figures["random"], 3)
        out[method] = figures
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Print one line per dataset and method; write --json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=f"{','.join(SOURCES)},demo")
    parser.add_argument("--budget", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = {}
    print(
        f"{'dataset':16s} {'method':14s} {'survivors':>9s} {'coverage':>9s} {'random':>8s} "
        f"{'ratio':>6s} {'pick q':>7s} {'all q':>7s}"
    )
    with tempfile.TemporaryDirectory(prefix="finesift-coverage-") as tmp:
        for name in [d for d in args.datasets.split(",") if d]:
            results[name] = compare(name, args.budget, args.seed, Path(tmp))
            for method, f in results[name].items():
                print(
                    f"{name:16s} {method:14s} {f['survivors']:9d} {f['selected']:9.4f} "
                    f"{f['random']:8.4f} {f['ratio']:6.3f} {f['pick_quality']:7.4f} "
                    f"{f['survivor_quality']:7.4f}",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
