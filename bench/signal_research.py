"""Which signals rank fluent real rows? ROC AUCs and conflict-pick accuracy, offline.

Issue 15's research step. On the noisy real data of ``bench/real_noise.py`` (rows that pass
the heuristic rules only: the rows the score must still order) and on Self-Instruct
(text-davinci-003 vs davinci answers to the same 252 tasks), per signal:

- AUC clean vs noisy (all kinds, and per kind);
- pair accuracy: for a noisy row made beside its clean row (same instruction, or a sloppy
  copy), how often the signal scores the clean row higher (ties count one half);
- the same for the composed score of ``quality.ranking`` at its calibrated weights.

Embeddings come from ``bench/embed_cache.py`` (MiniLM, computed once per dataset).

    python bench/signal_research.py [--datasets dolly,codegen] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"

from bench.embed_cache import cached_row_vectors  # noqa: E402
from bench.noise_inject import NOISE_MIX, inject, load_source  # noqa: E402
from bench.real_noise import roc_auc  # noqa: E402

RELEVANCE_SAMPLE = 2000


def prompt_of(r: dict) -> str:
    """The prompt the alpaca reader builds: instruction, blank line, input."""
    return f"{r['instruction']}\n\n{r['input']}" if r.get("input") else r["instruction"]


def signals(prompts: Sequence[str], responses: Sequence[str], seed: int = 0) -> dict[str, Any]:
    """Every candidate signal per row (higher = better where that has a direction)."""
    from quality import ranking
    from quality.heuristics import _completeness, evaluate_batch
    from quality.relevance import relevance_margin
    from quality.surface import bundled_lexicon, lost_casing, misspelled_share, surface_term

    heur, failed, _ = evaluate_batch(prompts, responses)
    _, instruction, response = cached_row_vectors(prompts, responses)
    ids = [str(i) for i in range(len(prompts))]
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(ids), min(RELEVANCE_SAMPLE, len(ids)), replace=False))
    margin = relevance_margin(
        instruction,
        response,
        instruction[sample],
        top_k=10,
        row_ids=ids,
        sample_ids=[ids[j] for j in sample],
    )
    lexicon = bundled_lexicon()
    words = np.array([len(r.split()) for r in responses], float)
    out = {
        "heuristics": np.asarray(heur, float),
        "relevance": margin,
        "own_cosine": np.einsum("ij,ij->i", instruction, response),
        "log_words": np.log1p(words),
        "completeness": np.array([_completeness(r) for r in responses]),
        "cased": -np.array([lost_casing(r) for r in responses]),
        "spelled": -np.array([misspelled_share(r, lexicon) for r in responses]),
        "surface": surface_term(responses, lexicon),
        "prompt_log_words": np.log1p([len(p.split()) for p in prompts]),
    }
    # DEITA-like complexity x quality: instruction complexity (length) times answer quality.
    out["deita_like"] = out["prompt_log_words"] * out["heuristics"] * out["log_words"]
    terms = ranking.quality_terms(
        heuristics=out["heuristics"],
        relevance=margin,
        responses=responses,
        lexicon=lexicon,
    )
    out.update({f"term_{k}": v for k, v in terms.items()})
    out["composed"] = ranking.compose(terms)
    out["passes_rules"] = np.array([not f for f in failed])
    return out


def noisy_figures(name: str, clean: int, seed: int) -> dict[str, Any]:
    """AUCs and pair accuracies on one injected dataset, rule-passing rows only."""
    import tempfile

    from bench.simulate_pipeline import read_rows

    data = inject(load_source(DATA, name), name, n_clean=clean, seed=seed)
    rows = data.rows
    with tempfile.TemporaryDirectory() as tmp:
        read = read_rows(data.write(Path(tmp))[0])  # the texts exactly as the job reads them
    s = signals([r["prompt"] or "" for r in read], [r["response"] or "" for r in read], seed)
    truth = np.array([r["truth"] for r in rows])
    fluent = s["passes_rules"]
    names = [k for k in s if k != "passes_rules"]
    result: dict[str, Any] = {
        "rows": len(rows),
        "fluent": int(fluent.sum()),
        "auc": {},
        "pairs": {},
    }
    is_clean = truth == "clean"
    for k in names:
        v = s[k]
        per = {"all": roc_auc(v[fluent & is_clean], v[fluent & ~is_clean])}
        for kind in NOISE_MIX:
            sel = fluent & (truth == kind)
            if sel.sum() >= 5:
                per[kind] = roc_auc(v[fluent & is_clean], v[sel])
        result["auc"][k] = {kk: round(x, 3) for kk, x in per.items()}
    pairs = [
        (r["truth_of"], i)
        for i, r in enumerate(rows)
        if r["truth"] not in ("clean", "repeat") and r["truth_of"] is not None
    ]
    for k in names:
        v = s[k]
        per_kind: dict[str, list[float]] = {}
        for c, n in pairs:
            if not (fluent[c] and fluent[n]):
                continue
            win = 1.0 if v[c] > v[n] else 0.5 if v[c] == v[n] else 0.0
            per_kind.setdefault(rows[n]["truth"], []).append(win)
        result["pairs"][k] = {kk: round(float(np.mean(x)), 3) for kk, x in per_kind.items()}
        result["pairs"][k]["n"] = sum(len(x) for x in per_kind.values())
    result["composed_histogram"] = _histogram(s["composed"][fluent], truth[fluent])
    return result


def _histogram(values: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    from quality.ranking import score_histogram

    return score_histogram(values, truth == "clean", bins=10)


def self_instruct_figures(seed: int) -> dict[str, float]:
    """AUC of each signal: text-davinci-003 answers above davinci answers."""
    per_model = {}
    for model in ("text-davinci-003", "davinci"):
        path = DATA / "self_instruct" / f"{model}_predictions.jsonl"
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        prompts = [prompt_of(r) for r in rows]
        per_model[model] = signals(prompts, [r["response"].strip() for r in rows], seed)
    strong, weak = per_model["text-davinci-003"], per_model["davinci"]
    return {
        k: round(roc_auc(strong[k], weak[k]), 3)
        for k in strong
        if k != "passes_rules" and np.ndim(strong[k]) == 1
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Print the AUC and pair tables; write --json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="dolly,codegen")
    parser.add_argument("--clean", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    for name in [d for d in args.datasets.split(",") if d]:
        r = noisy_figures(name, args.clean, args.seed)
        results[name] = r
        print(f"\n== {name}: {r['fluent']} of {r['rows']} rows pass the rules")
        kinds = ["all", *NOISE_MIX]
        print(f"{'signal':22s} " + " ".join(f"{k[:8]:>8s}" for k in kinds) + "   pair accuracy")
        for k, per in r["auc"].items():
            cells = " ".join(f"{per.get(kind, float('nan')):8.3f}" for kind in kinds)
            pairs = ", ".join(f"{kk} {v}" for kk, v in r["pairs"][k].items())
            print(f"{k:22s} {cells}   {pairs}")
    si = self_instruct_figures(args.seed)
    results["self_instruct"] = si
    print("\n== Self-Instruct AUC (text-davinci-003 > davinci):")
    print("  " + ", ".join(f"{k} {v}" for k, v in si.items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
