"""Curation on real rows with realistic injected noise: what is dropped, what is picked.

For each dataset (Dolly and GPTeacher codegen by default) ``bench/noise_inject.py`` takes
1,500 clean real rows and adds about a third of noisy rows made from the same file (sloppy
near-copies, cut-off answers, contradicting answers, answers to another task,
placeholders, one example repeated many times), each labelled in a ``truth`` column. The
rows are curated with the default config and a budget of 500, and the ledger is scored
against the labels, per noise kind:

- removed: share of the kind's rows dropped before selection, and the reasons;
- in pick: rows of the kind among the selected (for ``repeat``: copies beyond the first of
  an example picked, since one copy of a good example is not noise);
- clean rows lost: clean rows dropped for anything but being a duplicate of a row that was
  kept (``not_selected`` is selection, not a loss);
- pairs: for a noisy row made beside its clean row, which of the two survived;
- coverage: the run's mean distance from each survivor to its nearest pick, and a random
  pick's (summary.json), lower is better.

Targets (issue 15): noise in the pick <= 3%, clean rows lost <= 2%, mislabeled and
conflict rows removed >= 95%, coverage <= random's.

    python bench/real_noise.py [--datasets dolly,codegen] [--clean 1500] [--budget 500]
        [--engine job|sim] [--json out.json] [--write-data DIR] [key=value ...]

``--engine job`` (default) runs ``jobs.curation.curate.run`` (Ray, bundled MiniLM; a few minutes per
dataset on 2 cores); ``--engine sim`` replays the pipeline offline on cached embeddings
(``bench/simulate_pipeline.py``) in today's stage order or the proposed one
(``--sim-order``), with today's or the covering selection (``--sim-selection``).
Extra ``key=value`` arguments are curate config overrides (job engine only).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"

from bench.noise_inject import NOISE_MIX, NoisyData, inject, load_source  # noqa: E402

DUPLICATE_REASONS = frozenset({"exact_duplicate", "near_duplicate", "semantic_duplicate"})
WRONG_ANSWER_KINDS = ("mislabeled", "conflict")
LEDGER_COLUMNS = [
    "id",
    "source",
    "status",
    "reason",
    "detail",
    "duplicate_of",
    "kept_instead",
    "quality",
    "relevance",
]


def build(name: str, n_clean: int, noise_share: float, seed: int) -> NoisyData:
    """The noisy rows of one shared dataset (see bench/noise_inject.py)."""
    return inject(
        load_source(DATA, name), name, n_clean=n_clean, noise_share=noise_share, seed=seed
    )


def row_index(source: str) -> int:
    """0-based row of a ledger ``source`` ("path:LINE", 1-based, for JSONL)."""
    return int(source.rpartition(":")[2]) - 1


def survived(row: dict) -> bool:
    """Through every filter and dedup stage (selection is not a verdict on quality)."""
    return row["status"] == "selected" or row["reason"] == "not_selected"


def curate_job(path: Path, out: Path, budget: int, overrides: Sequence[str]) -> tuple[list, dict]:
    """Run the curation job with the default config; return (ledger rows, coverage)."""
    import pyarrow.parquet as pq

    from infra.config import load_config
    from jobs.curation.config import CurateConfig
    from jobs.curation.curate import run

    cfg = load_config(
        CurateConfig,
        overrides=["report=false", f"selection.budget={budget}", *overrides],
        inputs=(str(path),),
        out=str(out),
    )
    result = run(cfg)
    ledger = pq.read_table(out / "ledger.parquet", columns=LEDGER_COLUMNS).to_pylist()
    return ledger, asdict(result.coverage) if result.coverage else {}


def evaluate(rows: Sequence[dict], ledger: Sequence[dict], coverage: dict) -> dict[str, Any]:
    """Every figure of the module docstring from the labelled rows and a run's ledger.

    Args:
        rows: The injected rows, in file order, with ``truth`` and ``truth_of``.
        ledger: One ledger row per input row (id, source, status, reason, duplicate_of,
            kept_instead, quality).
        coverage: The run's coverage figures ({"selected", "random", ...}).

    Returns:
        Per kind and overall figures (JSON-ready).
    """
    by_index = {row_index(r["source"]): r for r in ledger}
    if sorted(by_index) != list(range(len(rows))):
        raise SystemExit("the ledger does not hold exactly one row per injected row")
    index_of = {r["id"]: i for i, r in by_index.items()}
    picked = [i for i, r in by_index.items() if r["status"] == "selected"]
    kinds: dict[str, Any] = {}
    for kind in ("clean", *NOISE_MIX):
        members = [i for i, r in enumerate(rows) if r["truth"] == kind]
        removed = [i for i in members if not survived(by_index[i])]
        kinds[kind] = {
            "rows": len(members),
            "removed": len(removed),
            "removed_share": _share(len(removed), len(members)),
            "reasons": dict(Counter(by_index[i]["reason"] for i in removed).most_common()),
            "picked": sum(by_index[i]["status"] == "selected" for i in members),
        }
    kinds["repeat"]["picked_noise"] = _excess_repeats(rows, by_index)
    noise_picked = {
        k: (kinds[k]["picked_noise"] if k == "repeat" else kinds[k]["picked"]) for k in NOISE_MIX
    }
    lost = _clean_lost(rows, by_index, index_of)
    wrong = [i for i, r in enumerate(rows) if r["truth"] in WRONG_ANSWER_KINDS]
    wrong_removed = sum(not survived(by_index[i]) for i in wrong)
    n_clean = kinds["clean"]["rows"]
    return {
        "rows": len(rows),
        "noisy_rows": len(rows) - n_clean,
        "picked": len(picked),
        "kinds": kinds,
        "noise_in_pick": noise_picked,
        "noise_in_pick_share": _share(sum(noise_picked.values()), len(picked)),
        "clean_lost": dict(lost.most_common()),
        "clean_lost_share": _share(sum(lost.values()), n_clean),
        "wrong_answers_removed_share": _share(wrong_removed, len(wrong)),
        "pairs": _pairs(rows, by_index),
        "flagged_indistinguishable": sum(
            "indistinguishable" in (r.get("detail") or "") for r in ledger
        ),
        "coverage": coverage,
        "survivor_auc": _survivor_auc(rows, by_index),
    }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _excess_repeats(rows: Sequence[dict], by_index: dict[int, dict]) -> int:
    """Picked members of each repeated example's group (original + copies) beyond one."""
    groups: dict[int, list[int]] = {}
    for i, r in enumerate(rows):
        if r["truth"] == "repeat":
            groups.setdefault(r["truth_of"], [r["truth_of"]]).append(i)
    return sum(
        max(0, sum(by_index[i]["status"] == "selected" for i in g) - 1) for g in groups.values()
    )


def _clean_lost(rows, by_index, index_of) -> Counter[str]:
    """Clean rows dropped before selection, other than as a duplicate of a kept row.

    A duplicate's pointer is followed through further duplicate drops (A duplicates B,
    which a later stage found to duplicate C): A is represented when C survived.
    """
    lost: Counter[str] = Counter()
    for i, r in enumerate(rows):
        if r["truth"] != "clean" or survived(by_index[i]):
            continue
        if _representative_survived(i, by_index, index_of):
            continue
        lost[by_index[i]["reason"]] += 1
    return lost


def _representative_survived(i: int, by_index: dict, index_of: dict) -> bool:
    """Whether the chain of duplicate_of pointers from row ``i`` ends at a survivor."""
    seen = {i}
    while by_index[i]["reason"] in DUPLICATE_REASONS:
        partner = index_of.get(by_index[i]["duplicate_of"] or "")
        if partner is None or partner in seen:
            return False
        if survived(by_index[partner]):
            return True
        seen.add(partner)
        i = partner
    return False


def _pairs(rows: Sequence[dict], by_index: dict[int, dict]) -> dict[str, dict[str, int]]:
    """For each noisy row made beside its clean row: which of the two survived."""
    out: dict[str, Counter[str]] = {}
    for i, r in enumerate(rows):
        if r["truth"] in ("clean", "repeat") or r["truth_of"] is None:
            continue
        clean_ok, noise_ok = survived(by_index[r["truth_of"]]), survived(by_index[i])
        outcome = {
            (True, False): "clean_kept",
            (False, True): "noise_kept",
            (True, True): "both_kept",
            (False, False): "both_dropped",
        }[(clean_ok, noise_ok)]
        out.setdefault(r["truth"], Counter())[outcome] += 1
    return {k: dict(v) for k, v in out.items()}


def _survivor_auc(rows: Sequence[dict], by_index: dict[int, dict]) -> float | None:
    """ROC AUC of the final ``quality`` for clean vs noisy rows among the survivors."""
    clean, noisy = [], []
    for i, r in enumerate(rows):
        q = by_index[i]["quality"]
        if survived(by_index[i]) and q is not None:
            (clean if r["truth"] == "clean" else noisy).append(q)
    if not clean or not noisy:
        return None
    return round(roc_auc(np.asarray(clean), np.asarray(noisy)), 3)


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a random positive scores above a random negative), ties counting one half."""
    diff = np.asarray(positive, float)[:, None] - np.asarray(negative, float)[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def print_table(name: str, result: dict[str, Any]) -> None:
    """Per noise kind: rows, removed share, reasons, rows in the pick."""
    print(f"\n== {name}: {result['rows']} rows ({result['noisy_rows']} noisy), {result['engine']}")
    print(f"{'kind':12s} {'rows':>5s} {'removed':>8s} {'in pick':>8s}  reasons")
    for kind, k in result["kinds"].items():
        in_pick = result["noise_in_pick"].get(kind, k["picked"])
        reasons = ", ".join(f"{r} {n}" for r, n in k["reasons"].items())
        print(f"{kind:12s} {k['rows']:5d} {k['removed_share']:8.3f} {in_pick:8d}  {reasons}")
    cov = result["coverage"]
    print(
        f"noise in pick {result['noise_in_pick_share']:.3f} of {result['picked']} (<= 0.03); "
        f"clean lost {result['clean_lost_share']:.4f} {result['clean_lost']} (<= 0.02); "
        f"mislabeled+conflict removed {result['wrong_answers_removed_share']:.3f} (>= 0.95); "
        f"coverage {cov.get('selected')} vs random {cov.get('random')} (<=)"
    )
    print(f"pairs (noisy row beside its clean row): {result['pairs']}")
    print(
        f"survivor quality AUC clean vs noisy: {result['survivor_auc']}; conflicts flagged "
        f"indistinguishable: {result['flagged_indistinguishable']}"
    )


def run_dataset(
    name: str, args: argparse.Namespace, work: Path, overrides: Sequence[str]
) -> dict[str, Any]:
    """Inject, curate with the chosen engine, evaluate."""
    data = build(name, args.clean, args.noise_share, args.seed)
    path, heldout = data.write(args.write_data or work)
    start = time.perf_counter()
    if args.engine == "job":
        ledger, coverage = curate_job(path, work / f"{name}-out", args.budget, overrides)
    else:
        from bench.simulate_pipeline import simulate

        ledger, coverage = simulate(
            data.rows,
            path,
            budget=args.budget,
            seed=args.seed if args.pipeline_seed is None else args.pipeline_seed,
            order=args.sim_order,
            selection=args.sim_selection,
            model=args.sim_model,
            relevance=args.sim_relevance,
            relevance_threshold=args.sim_relevance_threshold,
        )
    seconds = time.perf_counter() - start
    result = evaluate(data.rows, ledger, coverage)
    engine = (
        args.engine
        if args.engine == "job"
        else f"sim {args.sim_order} {args.sim_selection} {args.sim_model} "
        f"{args.sim_relevance or 'default'} {args.sim_relevance_threshold or 'default'}"
    )
    result.update(engine=engine, seconds=round(seconds, 1), data=str(path))
    print_table(name, result)
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments, run every dataset, print the tables and write --json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="dolly,codegen", help="from dolly,codegen,toolformer")
    parser.add_argument("--clean", type=int, default=1500, help="clean rows per dataset")
    parser.add_argument("--noise-share", type=float, default=0.35, help="share of noisy rows")
    parser.add_argument("--budget", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0, help="seed of the injected noise")
    parser.add_argument(
        "--pipeline-seed",
        type=int,
        help="sim engine: seed of k-means, the relevance sample and the random pick (--seed)",
    )
    parser.add_argument("--engine", choices=("job", "sim"), default="job")
    parser.add_argument("--sim-order", choices=("proposed", "current"), default="proposed")
    parser.add_argument(
        "--sim-selection", choices=("facility", "facility_gain", "diverse"), default="facility"
    )
    parser.add_argument("--sim-model", default="default", help="sim engine: embed.model")
    parser.add_argument(
        "--sim-relevance",
        choices=("paired", "cross"),
        help="sim engine: signals.relevance_method (default: paired for static, else cross)",
    )
    parser.add_argument(
        "--sim-relevance-threshold",
        type=float,
        help="sim engine: signals.relevance_threshold (default: the method's)",
    )
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--write-data", type=Path, help="keep NAME.jsonl and NAME-heldout.jsonl")
    parser.add_argument("overrides", nargs="*", help="curate config key=value overrides")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is absent: the real datasets sit beside the dev checkout only")
    results: dict[str, Any] = {"budget": args.budget, "clean": args.clean, "datasets": {}}
    with tempfile.TemporaryDirectory(prefix="finesift-real-noise-") as tmp:
        for name in [d for d in args.datasets.split(",") if d]:
            results["datasets"][name] = run_dataset(name, args, Path(tmp), args.overrides)
    if args.engine == "job":
        import ray

        ray.shutdown()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
