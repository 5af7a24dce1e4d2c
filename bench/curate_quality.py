"""Does `finesift curate` find what is wrong with a dataset? Figures for BENCHMARKS.md.

1. Planted defects: rows from `finesift demo-data` (seed 0; 5,000 by default) curated with
   filters.since=2023-01-01. Precision and recall per defect group against the generator's
   ground truth (`truth`, `truth_of`), matching ledger rows to generated rows by line
   number. Targets: >= 0.9 each. Mislabeled rows (a fluent answer to another task) are a
   group of their own, found by the relevance signal (reason ``mismatched``); the clean
   rows it drops are counted too.
2. Real data from ../shared/data (skipped with a message when absent):
   - rows surviving dedup at each fuzzy / semantic threshold, per dataset, beside the
     GPTeacher author's own similarity ladder;
   - dolly's repeated instructions: how many finesift removes;
   - Self-Instruct: ROC AUC with which each quality term (heuristics, relevance, IFD,
     perplexity; quality.composite) and the combined score rank text-davinci-003 answers
     above davinci answers to the same tasks (target for the combined score >= 0.8).
     IFD and perplexity use the bundled base model through the score cache (--skip-ifd
     leaves them out).

    python bench/curate_quality.py [--rows 5000] [--fast | --model static] [--skip-real]
        [--datasets toolformer,codegen,dolly] [--semantic 0.95,0.9,0.85,0.8]
        [--fuzzy 0.9,0.8,0.7,0.6] [--skip-ifd] [--set KEY=VALUE ...] [--json results.json]

Figures use the bundled MiniLM (embed.model=default); --fast uses embed.model=hashing (no
model, much quicker, weaker semantic dedup). Every curate run selects with a budget as large
as its input, so counts of survivors are never cut by the budget.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"

DUPLICATE_REASONS = frozenset({"exact_duplicate", "near_duplicate", "semantic_duplicate"})
COPY_KINDS = ("exact_duplicate", "near_duplicate", "conflict")
QUARANTINE_REASONS = (
    "invalid_json",
    "invalid_utf8",
    "unknown_schema",
    "missing_field",
    "empty_field",
    "wrong_type",
    "bad_roles",
    "no_assistant_turn",
    "too_large",
)
# The GPTeacher author's cuts of toolformer-dedupe-only-dataset.json (7,673 rows).
AUTHOR_LADDER = {0.9: 5959, 0.8: 4709, 0.7: 3487, 0.6: 2396}
DATASETS = {
    "toolformer": "gpteacher/toolformer-dedupe-only-dataset.json",
    "codegen": "gpteacher/codegen-instruct.json",
    "dolly": "dolly/dolly_3k.json",
}
# GPTeacher names the answer "response"; the alpaca reader wants "output".
READ_OVERRIDES = {
    "toolformer": ["read.field_map={response: output}"],
    "codegen": ["read.field_map={response: output}"],
    "dolly": [],
}


# --- running curate ------------------------------------------------------------------------

EXTRA_OVERRIDES: list[str] = []
"""``--set key=value`` overrides, appended to every curate run of this process."""


def curate(path: Path, out: Path, model: str, overrides: Sequence[str] = ()) -> list[dict]:
    """Run `finesift curate` on one file and return its ledger rows (in-process Ray).

    Args:
        path: Input file.
        out: Output directory.
        model: embed.model.
        overrides: Extra ``key=value`` config overrides.

    Returns:
        One dict per input row with the ledger's columns.
    """
    import pyarrow.parquet as pq

    from infra.config import load_config
    from jobs.curation.config import CurateConfig
    from jobs.curation.curate import run

    rows = _count_rows(path)
    cfg = load_config(
        CurateConfig,
        overrides=[
            f"embed.model={model}",
            "report=false",
            f"selection.budget={rows}",
            *overrides,
            *EXTRA_OVERRIDES,
        ],
        inputs=(str(path),),
        out=str(out),
    )
    run(cfg)
    columns = [
        "id",
        "source",
        "status",
        "reason",
        "duplicate_of",
        "kept_instead",
        "failed_rules",
        "quality",
    ]
    return pq.read_table(out / "ledger.parquet", columns=columns).to_pylist()


def _count_rows(path: Path) -> int:
    if path.suffix == ".jsonl":
        with open(path, encoding="utf-8") as f:
            return sum(1 for line in f if line.strip())
    return len(json.loads(path.read_text(encoding="utf-8")))


def row_index(source: str) -> int:
    """0-based row of a ledger ``source``: "path:LINE" (1-based line of a JSONL file) or
    "path#INDEX" (0-based index into a JSON array)."""
    path, sep, where = source.rpartition("#")
    if sep and where.isdigit():
        return int(where)
    return int(source.rpartition(":")[2]) - 1


def survived(row: dict) -> bool:
    """Made it through every filter and dedup stage (selection is not a verdict on quality)."""
    return row["status"] == "selected" or row["reason"] == "not_selected"


# --- part 1: planted defects ---------------------------------------------------------------


def planted_scores(rows: Sequence[dict], ledger: Sequence[dict]) -> dict[str, dict[str, Any]]:
    """Precision and recall of each defect group against the generator's ground truth.

    Duplicates and conflicts are pairs: an injected copy ``d`` of a clean original ``o``.
    curate keeps the better row of a pair, which may be the copy. So:

    - recall counts an injected copy as found when either ``d`` or ``o`` is flagged with the
      group's reason AND its pointer (duplicate_of / kept_instead) names the other member of
      the same planted pair; a pair whose original went for another reason is a miss;
    - precision counts a flagged row as right when its pointer stays inside a planted pair of
      that kind; a clean row flagged as a duplicate of another clean row, or junk flagged as
      a duplicate, is a false positive.

    Junk and stale rows are single rows: a flag is right when the truth says so. Junk counts
    as flagged when its reason is a heuristic rule or a quarantine reason (an empty answer
    never reaches the rules: the reader quarantines it as empty_field). A mislabeled row (an
    answer to another task) that a rule drops counts against junk precision, although
    dropping it is right. Mislabeled rows are found when dropped as ``mismatched`` (the
    relevance signal); any other row dropped as mismatched is a false positive. A
    mislabeled row whose instruction also has a fitting answer goes as that answer's
    ``conflict`` instead, and counts as missed here.

    Args:
        rows: The generated rows, in file order.
        ledger: The ledger rows of a curate run on them.

    Returns:
        Per group: flagged, correct flags, planted, found, precision, recall.
    """
    from quality.heuristics import RULES

    by_index = {row_index(r["source"]): r for r in ledger}
    if sorted(by_index) != list(range(len(rows))):
        raise SystemExit("the ledger does not hold exactly one row per generated row")
    index_of = {r["id"]: i for i, r in by_index.items()}
    truth = [r["truth"] for r in rows]
    group = [r["truth_of"] if r["truth"] in COPY_KINDS else i for i, r in enumerate(rows)]
    junk_reasons = set(RULES) | set(QUARANTINE_REASONS)

    def linked(i: int, partner: str | None, kinds: tuple[str, ...]) -> bool:
        """``i`` and the row ``partner`` names form a planted pair of one of ``kinds``."""
        j = index_of.get(partner) if partner else None
        if j is None or group[j] != group[i] or i == j:
            return False
        copy = i if truth[i] in kinds else j
        return truth[copy] in kinds

    def pair_scores(kinds: tuple[str, ...], reasons: frozenset[str], pointer: str) -> dict:
        flagged = [i for i, r in by_index.items() if r["reason"] in reasons]
        correct = sum(linked(i, by_index[i][pointer], kinds) for i in flagged)
        planted = [i for i, t in enumerate(truth) if t in kinds]
        found = 0
        for i in planted:
            o = rows[i]["truth_of"]
            found += any(
                by_index[k]["reason"] in reasons and linked(k, by_index[k][pointer], kinds)
                for k in (i, o)
            )
        return _scores(len(flagged), correct, len(planted), found)

    def single_scores(is_planted, reasons: set[str]) -> dict:
        flagged = [i for i, r in by_index.items() if r["reason"] in reasons]
        planted = [i for i, t in enumerate(truth) if is_planted(t)]
        correct = sum(is_planted(truth[i]) for i in flagged)
        found = sum(by_index[i]["reason"] in reasons for i in planted)
        return _scores(len(flagged), correct, len(planted), found)

    return {
        "duplicates": pair_scores(
            ("exact_duplicate", "near_duplicate"), DUPLICATE_REASONS, "duplicate_of"
        ),
        "conflicts": pair_scores(("conflict",), frozenset({"conflict"}), "kept_instead"),
        "junk": single_scores(lambda t: t.startswith("junk:"), junk_reasons),
        "stale": single_scores(lambda t: t == "stale", {"stale"}),
        "mislabeled": single_scores(lambda t: t == "mislabeled", {"mismatched"}),
    }


def _scores(flagged: int, correct: int, planted: int, found: int) -> dict[str, Any]:
    return {
        "flagged": flagged,
        "correct": correct,
        "planted": planted,
        "found": found,
        "precision": round(correct / flagged, 3) if flagged else None,
        "recall": round(found / planted, 3) if planted else None,
    }


def planted_details(rows: Sequence[dict], ledger: Sequence[dict]) -> dict[str, Any]:
    """Where the errors are: per junk kind, what removed clean rows, conflict resolution."""
    from quality.heuristics import RULES

    by_index = {row_index(r["source"]): r for r in ledger}
    junk = {}
    for kind in sorted({r["truth"] for r in rows if r["truth"].startswith("junk:")}):
        members = [i for i, r in enumerate(rows) if r["truth"] == kind]
        rule = kind.split(":", 1)[1]
        dropped = sum(not survived(by_index[i]) for i in members)
        own = sum(rule in (by_index[i]["failed_rules"] or []) for i in members)
        junk[kind] = {"rows": len(members), "removed": dropped, "failed_own_rule": own}
    index_of = {r["id"]: i for i, r in by_index.items()}
    copied_by = {r["truth_of"]: i for i, r in enumerate(rows) if r["truth"] in COPY_KINDS}
    clean = [i for i, r in enumerate(rows) if r["truth"] == "clean"]
    lost: Counter[str] = Counter()
    for i in clean:
        r = by_index[i]
        if survived(r):
            continue
        partner = index_of.get(r["duplicate_of"] or r["kept_instead"] or "")
        # An original dropped in favour of its own planted copy is a right call, not a loss.
        if partner is None or partner != copied_by.get(i):
            lost[r["reason"]] += 1
    conflicts = [i for i, r in enumerate(rows) if r["truth"] == "conflict"]
    wrong_dropped = sum(
        not survived(by_index[i]) and survived(by_index[rows[i]["truth_of"]]) for i in conflicts
    )
    mislabeled = [i for i, r in enumerate(rows) if r["truth"] == "mislabeled"]
    return {
        "junk_by_kind": junk,
        "clean_rows": len(clean),
        "clean_removed": dict(lost.most_common()),
        "conflicts_wrong_answer_dropped": wrong_dropped,
        "conflicts": len(conflicts),
        "mislabeled_surviving": sum(survived(by_index[i]) for i in mislabeled),
        "mislabeled": len(mislabeled),
        "rules": list(RULES),
    }


def stable_input(rows: list[dict], name: str, write: Any) -> Path:
    """The generated rows at the same path in every run.

    A row's id hashes its source (path and line), and the relevance stage draws its
    competitors by id: from a fresh temporary directory each run drew another sample, and
    the mislabeled figures moved by a few rows of 91 from run to run. The file is written
    beside and renamed into place, so two runs at once read whole files.
    """
    directory = Path(tempfile.gettempdir()) / "finesift-quality"
    directory.mkdir(exist_ok=True)
    part = directory / f".{name}.{os.getpid()}"
    write(rows, part)
    os.replace(part, directory / name)
    return directory / name


def part_planted(n_rows: int, model: str, work: Path) -> dict[str, Any]:
    """Generate, curate and score the planted defects."""
    from jobs.demo.generator import generate, write_jsonl

    rows = generate(n_rows, seed=0)
    path = stable_input(rows, f"demo-{n_rows}.jsonl", write_jsonl)
    start = time.perf_counter()
    ledger = curate(path, work / "demo-out", model, ["filters.since=2023-01-01"])
    seconds = time.perf_counter() - start
    scores = planted_scores(rows, ledger)
    details = planted_details(rows, ledger)
    print(
        f"\n== planted defects: {n_rows} generated rows (seed 0), embed.model={model}, "
        f"curate {seconds:.0f} s"
    )
    print(
        f"{'group':12s} {'flagged':>8s} {'correct':>8s} {'planted':>8s} {'found':>8s} "
        f"{'precision':>10s} {'recall':>8s}"
    )
    for name, s in scores.items():
        print(
            f"{name:12s} {s['flagged']:8d} {s['correct']:8d} {s['planted']:8d} {s['found']:8d} "
            f"{_fmt(s['precision']):>10s} {_fmt(s['recall']):>8s}"
        )
    print("junk by kind (rows / removed / failed its own rule):")
    for kind, d in details["junk_by_kind"].items():
        print(f"  {kind:28s} {d['rows']:4d} {d['removed']:4d} {d['failed_own_rule']:4d}")
    print(
        f"clean rows removed other than for their own planted copy: "
        f"{sum(details['clean_removed'].values())} of {details['clean_rows']} "
        f"{details['clean_removed']}"
    )
    print(
        f"conflicts where the wrong answer was the one dropped: "
        f"{details['conflicts_wrong_answer_dropped']} of {details['conflicts']}; "
        f"mislabeled rows surviving: {details['mislabeled_surviving']} of "
        f"{details['mislabeled']}; clean rows dropped as mismatched: "
        f"{details['clean_removed'].get('mismatched', 0)} of {details['clean_rows']}"
    )
    return {
        "rows": n_rows,
        "model": model,
        "seconds": round(seconds, 1),
        "scores": scores,
        **details,
    }


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


# --- part 2: real data ---------------------------------------------------------------------


def part_ladder(
    datasets: Sequence[str],
    semantic: Sequence[float],
    fuzzy: Sequence[float],
    model: str,
    work: Path,
) -> tuple[dict[str, Any], dict[str, list[dict]]]:
    """Survivors per dataset at each threshold; also the ledgers of the default-config runs.

    The semantic ladder keeps fuzzy dedup at its default; the fuzzy ladder turns semantic
    dedup off, so each ladder moves one knob.
    """
    results: dict[str, Any] = {}
    default_ledgers: dict[str, list[dict]] = {}
    for name in datasets:
        path = DATA / DATASETS[name]
        total = _count_rows(path)
        results[name] = {"rows": total, "semantic": {}, "fuzzy": {}}
        runs = [("semantic", t, [f"dedup.semantic_threshold={t}"]) for t in semantic]
        runs += [
            ("fuzzy", t, [f"dedup.fuzzy_threshold={t}", "dedup.semantic=false"]) for t in fuzzy
        ]
        for knob, t, overrides in runs:
            ledger = curate(
                path, work / f"{name}-{knob}-{t}", model, READ_OVERRIDES[name] + overrides
            )
            results[name][knob][t] = sum(survived(r) for r in ledger)
            if knob == "semantic" and t == 0.95:
                default_ledgers[name] = ledger
            print(
                f"  {name}: {knob}_threshold={t}: {results[name][knob][t]} of {total} rows survive",
                flush=True,
            )
    return results, default_ledgers


def part_dolly(ledger: list[dict] | None, model: str, work: Path) -> dict[str, Any]:
    """How many of dolly's repeated instructions curate removes.

    The file repeats an earlier row's exact instruction (and input) 15 times, in 11 groups
    (17 times in 13 groups after normalizing case and punctuation). A repeat counts as
    found when curate drops one row of its group per repeat, pointing inside the group.
    """
    from quality.text import normalize_text

    rows = json.loads((DATA / DATASETS["dolly"]).read_text(encoding="utf-8"))
    if ledger is None:
        ledger = curate(DATA / DATASETS["dolly"], work / "dolly-default", model)
    result = {}
    for label, key in (
        ("exact", lambda r: (r["instruction"], r["input"])),
        ("normalized", lambda r: normalize_text(r["instruction"])),
    ):
        groups: dict[Any, list[int]] = {}
        for i, r in enumerate(rows):
            groups.setdefault(key(r), []).append(i)
        repeated = {k: v for k, v in groups.items() if len(v) > 1}
        group_of = {i: k for k, v in repeated.items() for i in v}
        by_index = {row_index(r["source"]): r for r in ledger}
        index_of = {r["id"]: i for i, r in by_index.items()}
        removed = 0
        reasons: Counter[str] = Counter()
        for i in group_of:
            r = by_index[i]
            partner = index_of.get(r["duplicate_of"] or r["kept_instead"] or "")
            if not survived(r) and partner is not None and group_of.get(partner) == group_of[i]:
                removed += 1
                reasons[r["reason"]] += 1
        repeats = sum(len(v) - 1 for v in repeated.values())
        result[label] = {
            "groups": len(repeated),
            "repeats": repeats,
            "removed": removed,
            "reasons": dict(reasons),
        }
        print(
            f"  dolly {label} repeats: {removed} of {repeats} removed "
            f"({len(repeated)} groups) {dict(reasons)}"
        )
    return result


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties counting one half."""
    diff = positive[:, None] - negative[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def self_instruct_rows(model: str) -> tuple[list[str], list[str]]:
    """(prompts, responses) of one model's Self-Instruct predictions, in task order."""
    path = DATA / "self_instruct" / f"{model}_predictions.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    prompts = [
        f"{r['instruction']}\n\n{r['input']}" if r["input"] else r["instruction"] for r in rows
    ]
    # Responses are stored as generated, with leading whitespace; the reader strips it.
    return prompts, [r["response"].strip() for r in rows]


def self_instruct_terms(embed_model: str, ifd: bool) -> dict[str, dict[str, np.ndarray]]:
    """Per answer model, each quality term of quality.composite and the combined score.

    Relevance competes each answer against the other 251 tasks' instructions (never its
    own task's). IFD and perplexity use the bundled base model through the score cache, as
    ``finesift curate`` with signals.ifd=true does, so a second run is fast.
    """
    from jobs.curation.config import SignalsConfig
    from jobs.curation.stages.ifd import IFDScorer
    from quality import composite
    from quality.embeddings import load_encoder
    from quality.heuristics import evaluate_batch
    from quality.relevance import DEFAULT_THRESHOLD, relevance_margin

    cfg = SignalsConfig()
    encoder = load_encoder(embed_model)
    scorer = (
        IFDScorer("default", "cpu", cfg.ifd_max_length, cfg.ifd_batch_size, None, threads=0)
        if ifd
        else None
    )
    out = {}
    for model in ("text-davinci-003", "davinci"):
        prompts, responses = self_instruct_rows(model)
        heuristic, _, _ = evaluate_batch(prompts, responses)
        instructions = encoder.encode(prompts)
        task_ids = [str(i) for i in range(len(prompts))]
        margins = relevance_margin(
            instructions,
            encoder.encode(responses),
            instructions,
            top_k=cfg.relevance_top_k,
            row_ids=task_ids,
            sample_ids=task_ids,
        )
        terms = {
            "heuristics": np.asarray(heuristic, float),
            # The cross margin's threshold: the one the term is shaped around.
            "relevance": composite.relevance_term(margins, threshold=DEFAULT_THRESHOLD),
        }
        if scorer is not None:
            from quality.ifd import IFDScore

            scores = [
                IFDScore(r["conditioned"], r["unconditioned"], int(r["tokens"]))
                for r in scorer.scores(prompts, responses)
            ]
            terms["ifd"] = composite.ifd_term(np.array([x.ifd for x in scores]))
            terms["perplexity"] = composite.perplexity_term(
                np.array([x.perplexity for x in scores])
            )
        weights = {
            "heuristics": cfg.weight_heuristics,
            "relevance": cfg.weight_relevance,
            "ifd": cfg.weight_ifd,
            "perplexity": cfg.weight_perplexity,
        }
        terms["combined"] = composite.combine(terms, weights)
        out[model] = terms
    return out


def part_self_instruct(embed_model: str, ifd: bool = True) -> dict[str, Any]:
    """ROC AUC of each quality term and of the combined score: text-davinci-003 (strong)
    answers above davinci (weak) answers to the same 252 tasks."""
    terms = self_instruct_terms(embed_model, ifd)
    strong, weak = terms["text-davinci-003"], terms["davinci"]
    result: dict[str, Any] = {"tasks": len(strong["heuristics"]), "auc": {}}
    for name in strong:
        result["auc"][name] = round(roc_auc(strong[name], weak[name]), 3)
    a, b = strong["combined"], weak["combined"]
    result["paired_win_rate"] = round(float(np.mean(a > b) + 0.5 * np.mean(a == b)), 3)
    cells = ", ".join(f"{k} {v:.3f}" for k, v in result["auc"].items())
    print(f"  Self-Instruct ROC AUC per signal ({result['tasks']} tasks): {cells}")
    return result


# --- main ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments, run both parts and print the final table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5000, help="generated rows for part 1")
    parser.add_argument("--fast", action="store_true", help="embed.model=hashing")
    parser.add_argument(
        "--model", help="embed.model, e.g. static (default: the bundled MiniLM, or --fast)"
    )
    parser.add_argument("--skip-real", action="store_true", help="only part 1")
    parser.add_argument("--skip-planted", action="store_true", help="only part 2")
    parser.add_argument(
        "--skip-ifd", action="store_true", help="Self-Instruct without IFD and perplexity"
    )
    parser.add_argument(
        "--datasets",
        default="toolformer,codegen,dolly",
        help=f"ladder datasets, from {','.join(DATASETS)}; empty for none",
    )
    parser.add_argument("--semantic", default="0.95,0.9,0.85,0.8", help="semantic ladder")
    parser.add_argument("--fuzzy", default="0.9,0.8,0.7,0.6", help="fuzzy ladder")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for every curate run, e.g. signals.relevance_threshold=-0.15",
    )
    args = parser.parse_args(argv)
    EXTRA_OVERRIDES[:] = args.set
    model = args.model or ("hashing" if args.fast else "default")
    results: dict[str, Any] = {"model": model, "overrides": args.set}
    with tempfile.TemporaryDirectory(prefix="finesift-quality-") as tmp:
        work = Path(tmp)
        if not args.skip_planted:
            results["planted"] = part_planted(args.rows, model, work)
        if args.skip_real:
            pass
        elif not DATA.is_dir():
            print(
                f"\n== real data: skipped, {DATA} is absent (it only sits beside the dev checkout)"
            )
        else:
            print(f"\n== real data from {DATA}, embed.model={model}")
            datasets = [d for d in args.datasets.split(",") if d]
            unknown = sorted(set(datasets) - set(DATASETS))
            if unknown:
                raise SystemExit(f"unknown dataset(s) {unknown}; choose from {list(DATASETS)}")
            semantic = [float(x) for x in args.semantic.split(",") if x]
            fuzzy = [float(x) for x in args.fuzzy.split(",") if x]
            if datasets:  # --datasets "" leaves only the Self-Instruct figures
                ladder, ledgers = part_ladder(datasets, semantic, fuzzy, model, work)
                results["ladder"] = ladder
                results["dolly"] = part_dolly(ledgers.get("dolly"), model, work)
            results["self_instruct"] = part_self_instruct(
                "default" if model == "hashing" else model, ifd=not args.skip_ifd
            )
    _shutdown_ray()
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


def _shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def print_table(results: dict[str, Any]) -> None:
    """The compact table recorded in BENCHMARKS.md."""
    print(f"\n== curate quality (embed.model={results['model']})")
    if "planted" in results:
        p = results["planted"]
        print(f"planted defects, {p['rows']} rows: group precision recall (target >= 0.9)")
        for name, s in p["scores"].items():
            print(f"  {name:11s} {_fmt(s['precision']):>6s} {_fmt(s['recall']):>6s}")
    if "ladder" in results:
        ladder = results["ladder"]
        sem = sorted({t for d in ladder.values() for t in d["semantic"]}, reverse=True)
        fuz = sorted({t for d in ladder.values() for t in d["fuzzy"]}, reverse=True)
        head = " ".join(f"s{t:<5g}" for t in sem) + " | " + " ".join(f"f{t:<5g}" for t in fuz)
        print(
            f"survivors per threshold (s = semantic, f = fuzzy with semantic off):\n"
            f"  {'dataset':11s} {'rows':>6s} {head}"
        )
        for name, d in ladder.items():
            cells = (
                " ".join(f"{d['semantic'].get(t, '-'):>6}" for t in sem)
                + " | "
                + " ".join(f"{d['fuzzy'].get(t, '-'):>6}" for t in fuz)
            )
            print(f"  {name:11s} {d['rows']:6d} {cells}")
        author = " ".join(f"{t:g}:{n}" for t, n in AUTHOR_LADDER.items())
        print(f"  GPTeacher author's ladder on toolformer (7673 rows): {author}")
    if "dolly" in results:
        d = results["dolly"]
        print(
            f"dolly repeated instructions removed: {d['exact']['removed']} of "
            f"{d['exact']['repeats']} exact repeats, {d['normalized']['removed']} of "
            f"{d['normalized']['repeats']} after normalization"
        )
    if "self_instruct" in results:
        s = results["self_instruct"]
        cells = " ".join(f"{k} {v:.3f}" for k, v in s["auc"].items())
        print(
            f"Self-Instruct ROC AUC (text-davinci-003 > davinci): {cells} "
            "(target for combined >= 0.8)"
        )


if __name__ == "__main__":
    main()
