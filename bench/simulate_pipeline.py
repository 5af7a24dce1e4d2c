"""The curation pipeline replayed offline on cached embeddings, in either stage order.

``order="current"`` mimics main today: rules -> exact duplicates and conflicts decided by
the heuristic score -> embed -> relevance -> fuzzy and semantic duplicates decided by the
heuristic score -> composed score (heuristics + relevance) -> DEITA-style selection.

``order="proposed"`` is issue 15's: rules -> embed -> relevance -> composed score
(quality.ranking) -> exact duplicates, conflicts (flagged when indistinguishable), fuzzy
and semantic duplicates, all decided by the composed score -> quality-weighted facility
location (quality.covering) per k-means cluster.

Both use the same quality/ functions the job runs, with the job's default thresholds, on
the rows the job's reader produces; only Ray is missing. The ledger rows returned have the
job's columns, so ``bench/real_noise.py --engine sim`` scores them like a real run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.embed_cache import cached_row_vectors

MIN_SCORE = 0.5
RELEVANCE_THRESHOLD = -0.2
RELEVANCE_SAMPLE = 2000
AGREE = 0.6
FUZZY = 0.7
SEMANTIC = 0.95
NUM_PERM = 128
ROWS_PER_CLUSTER = 400
RANDOM_SEEDS = 5


class Ledger:
    """status/reason/detail/pointers per row, like the job's Verdicts."""

    def __init__(self, rows: Sequence[dict]) -> None:
        self.rows = rows
        self.status = ["active"] * len(rows)
        self.reason: list[str | None] = [None] * len(rows)
        self.detail: list[str | None] = [None] * len(rows)
        self.duplicate_of: list[str | None] = [None] * len(rows)
        self.kept_instead: list[str | None] = [None] * len(rows)
        self.quality = [None] * len(rows)
        self.relevance = [None] * len(rows)

    def active(self) -> np.ndarray:
        return np.array([s == "active" for s in self.status])

    def drop(self, i: int, reason: str, detail: str = "", **pointer: str) -> None:
        self.status[i], self.reason[i], self.detail[i] = "dropped", reason, detail
        self.duplicate_of[i] = pointer.get("duplicate_of")
        self.kept_instead[i] = pointer.get("kept_instead")

    def table(self) -> list[dict[str, Any]]:
        return [
            {
                "id": r["id"],
                "source": r["source"],
                "status": self.status[i],
                "reason": self.reason[i],
                "detail": self.detail[i],
                "duplicate_of": self.duplicate_of[i],
                "kept_instead": self.kept_instead[i],
                "quality": self.quality[i],
                "relevance": self.relevance[i],
                "failed_rules": [],
            }
            for i, r in enumerate(self.rows)
        ]


def read_rows(path: Path) -> list[dict]:
    """The job's reader on one file: canonical rows with id, source, prompt, response."""
    from quality.readers import read_all

    return list(read_all([str(path)]))


def simulate(
    injected: Sequence[dict] | None,
    path: Path,
    *,
    budget: int = 500,
    seed: int = 0,
    order: str = "proposed",
    selection: str = "facility",
    weights: dict[str, float] | None = None,
    distinct_competitors: bool = True,
    model: str = "default",
    relevance: str | None = None,
    relevance_threshold: float | None = None,
) -> tuple[list[dict], dict[str, Any]]:
    """Run the pipeline offline on the file at ``path``; return (ledger rows, coverage).

    Args:
        injected: Unused (the rows are read from ``path`` as the job reads them).
        path: The JSONL file to curate.
        budget: selection.budget.
        seed: Seed of k-means and the random baseline.
        order: "current" or "proposed" (module docstring).
        selection: "diverse" (today's select_diverse, sqrt quotas), "facility" (facility
            location, sqrt quotas) or "facility_gain" (facility location, gain-allocated).
        weights: Composed-score weights (quality.ranking.DEFAULT_WEIGHTS when None).
        distinct_competitors: Relevance competitors are distinct instructions, never the
            row's own instruction text (proposed order only).
        model: embed.model whose cached vectors are used ("default" is MiniLM).
        relevance: signals.relevance_method, "cross" or "paired"; None: as the job
            chooses (paired for the static model).
        relevance_threshold: signals.relevance_threshold; None: the method's default.
    """
    del injected
    state = prepare(
        path,
        seed=seed,
        order=order,
        weights=weights,
        distinct_competitors=distinct_competitors,
        model=model,
        relevance=relevance,
        relevance_threshold=relevance_threshold,
    )
    coverage = select(state, budget, seed, selection)
    return state.ledger.table(), coverage


class State:
    """Everything the selection needs: the ledger so far, vectors, scores, clusters."""

    def __init__(self, ledger, row_vec, quality, clusters) -> None:
        self.ledger, self.row_vec, self.quality, self.clusters = ledger, row_vec, quality, clusters


def prepare(
    path: Path,
    *,
    seed: int = 0,
    order: str = "proposed",
    weights: dict[str, float] | None = None,
    distinct_competitors: bool = True,
    since: str | None = None,
    model: str = "default",
    relevance: str | None = None,
    relevance_threshold: float | None = None,
) -> State:
    """Every stage before selection (see :func:`simulate`; ``since`` is filters.since)."""
    from quality.filters import is_stale, parse_since
    from quality.heuristics import evaluate_batch

    rows = read_rows(path)
    led = Ledger(rows)
    for i, r in enumerate(rows):
        if r["status"] != "active":
            led.status[i], led.reason[i] = r["status"], r.get("reason")
    idx = np.flatnonzero(led.active())
    prompts = [r["prompt"] or "" for r in rows]
    responses = [r["response"] or "" for r in rows]
    heur = np.full(len(rows), np.nan)
    scores, _, reasons = evaluate_batch([prompts[i] for i in idx], [responses[i] for i in idx])
    heur[idx] = scores
    for j, i in enumerate(idx):
        if scores[j] < MIN_SCORE:
            led.drop(int(i), reasons[j] or "low_quality")
    if since is not None:
        still = np.flatnonzero(led.active())
        stale = is_stale([rows[i].get("timestamp") for i in still], parse_since(since))
        for i in still[stale]:
            led.drop(int(i), "stale")
    row_vec, ins_vec, res_vec = cached_row_vectors(prompts, responses, model=model)
    from quality.relevance import DEFAULT_THRESHOLD, PAIRED_THRESHOLD

    relevance = relevance or ("paired" if model == "static" else "cross")
    if relevance_threshold is None:
        relevance_threshold = PAIRED_THRESHOLD if relevance == "paired" else DEFAULT_THRESHOLD
    cut = (relevance, relevance_threshold)
    ids = [r["id"] for r in rows]
    if order == "current":
        _instructions(led, prompts, responses, ids, heur)
        margins = _relevance(led, prompts, ins_vec, res_vec, ids, seed, distinct=False, cut=cut)
        clusters = _clusters(led, row_vec, seed)
        _dedup(led, prompts, responses, ids, row_vec, heur, clusters)
        from quality import composite

        terms = {
            "heuristics": heur,
            "relevance": composite.relevance_term(margins, threshold=RELEVANCE_THRESHOLD),
        }
        quality = composite.combine(terms, {"heuristics": 1.0, "relevance": 1.0})
    else:
        from quality import ranking
        from quality.surface import bundled_lexicon

        margins = _relevance(
            led,
            prompts,
            ins_vec,
            res_vec,
            ids,
            seed,
            distinct=distinct_competitors,
            cut=cut,
        )
        terms = ranking.quality_terms(
            heuristics=heur, relevance=margins, responses=responses, lexicon=bundled_lexicon()
        )
        quality = ranking.compose(terms, weights)
        _instructions(led, prompts, responses, ids, quality)
        clusters = _clusters(led, row_vec, seed)
        _dedup(led, prompts, responses, ids, row_vec, quality, clusters)
    led.quality = [None if np.isnan(q) else float(q) for q in quality]
    led.relevance = [None if np.isnan(m) else float(m) for m in margins]
    return State(led, row_vec, quality, clusters)


def _instructions(led: Ledger, prompts, responses, ids, scores) -> None:
    """Exact duplicates, then conflicts, per normalized instruction."""
    from quality.conflicts import indistinguishable, resolve_instruction_group
    from quality.dedup import exact_dedup
    from quality.text import exact_key, instruction_key

    groups: dict[str, list[int]] = {}
    for i in np.flatnonzero(led.active()):
        groups.setdefault(instruction_key(prompts[i]), []).append(int(i))
    for members in groups.values():
        if len(members) < 2:
            continue
        members = sorted(members, key=lambda i: ids[i])
        keys = [exact_key(prompts[i], responses[i]) for i in members]
        dup = exact_dedup(keys, scores[members], [ids[i] for i in members])
        for j in np.flatnonzero(dup >= 0):
            led.drop(members[j], "exact_duplicate", duplicate_of=ids[members[dup[j]]])
        alive = [m for m, d in zip(members, dup, strict=True) if d < 0]
        if len(alive) < 2:
            continue
        dup_of, conflict_with = resolve_instruction_group(
            [responses[i] for i in alive],
            scores[alive],
            [ids[i] for i in alive],
            agree_threshold=AGREE,
        )
        flags = indistinguishable(scores[alive], conflict_with)
        for j, i in enumerate(alive):
            if dup_of[j] >= 0:
                led.drop(i, "near_duplicate", duplicate_of=ids[alive[dup_of[j]]])
            elif conflict_with[j] >= 0:
                detail = "indistinguishable" if flags[j] else ""
                led.drop(i, "conflict", detail, kept_instead=ids[alive[conflict_with[j]]])


def _relevance(
    led, prompts, ins_vec, res_vec, ids, seed, *, distinct: bool, cut: tuple[str, float]
) -> np.ndarray:
    """Cross margins for the active rows against a sample of their instructions; drops
    the rows whose margin (``cut``: method "cross" or "paired", threshold) is below the
    threshold as mismatched, as the job's relevance stage does."""
    from quality.relevance import paired_margin, relevance_margin
    from quality.text import instruction_key

    active = np.flatnonzero(led.active())
    margins = np.full(len(led.rows), np.nan)
    pool = active
    if distinct:  # instruction keys as ids: a row never competes with its own instruction
        row_ids = [instruction_key(prompts[i]) for i in active]
    else:
        row_ids = [ids[i] for i in active]
    pool_ids = row_ids
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(pool), min(RELEVANCE_SAMPLE, len(pool)), replace=False))
    sample_ids = [pool_ids[j] for j in take]
    margins[active] = relevance_margin(
        ins_vec[active],
        res_vec[active],
        ins_vec[pool[take]],
        top_k=10,
        row_ids=row_ids,
        sample_ids=sample_ids,
    )
    method, threshold = cut
    decided = margins[active]
    if method == "paired":
        decided = paired_margin(
            ins_vec[active],
            res_vec[active],
            ins_vec[pool[take]],
            res_vec[pool[take]],
            row_ids=row_ids,
            sample_ids=sample_ids,
        )
    for i in active[decided < threshold]:
        led.drop(int(i), "mismatched")
    return margins


def _clusters(led: Ledger, row_vec: np.ndarray, seed: int) -> np.ndarray:
    from quality.clustering import assign_clusters, choose_k, train_kmeans

    active = np.flatnonzero(led.active())
    k = choose_k(len(active), rows_per_cluster=ROWS_PER_CLUSTER, max_clusters=4096)
    centroids = train_kmeans(row_vec[active], k, iterations=20, seed=seed)
    return assign_clusters(row_vec, centroids)


def _dedup(led, prompts, responses, ids, row_vec, scores, clusters) -> None:
    """MinHash near-duplicates, then SemDeDup, per cluster."""
    from quality.dedup import fuzzy_dedup, minhash_signatures, semantic_dedup

    for c in np.unique(clusters[led.active()]):
        members = [int(i) for i in np.flatnonzero(led.active() & (clusters == c))]
        members.sort(key=lambda i: ids[i])
        if len(members) < 2:
            continue
        texts = [f"{prompts[i]}\n{responses[i]}" for i in members]
        sig = minhash_signatures(texts, num_perm=NUM_PERM, shingle_size=3)
        m_ids = [ids[i] for i in members]
        dup = fuzzy_dedup(sig, scores[members], m_ids, threshold=FUZZY, num_perm=NUM_PERM)
        for j in np.flatnonzero(dup >= 0):
            led.drop(members[j], "near_duplicate", duplicate_of=m_ids[dup[j]])
        alive = [m for m, d in zip(members, dup, strict=True) if d < 0]
        if len(alive) < 2:
            continue
        a_ids = [ids[i] for i in alive]
        dup = semantic_dedup(row_vec[alive], scores[alive], a_ids, threshold=SEMANTIC)
        for j in np.flatnonzero(dup >= 0):
            led.drop(alive[j], "semantic_duplicate", duplicate_of=a_ids[dup[j]])


def select(
    state: State, budget: int, seed: int, method: str, quality_power: float | None = None
) -> dict[str, Any]:
    """Pick the budget per cluster; mark the rest not_selected; coverage vs random picks.

    The state's ledger is changed in place (copy.deepcopy the state to compare methods).
    """
    led, row_vec, quality, clusters = state.ledger, state.row_vec, state.quality, state.clusters
    from collections import Counter

    from quality.covering import DEFAULT_QUALITY_POWER, allocate_by_gains, facility_location
    from quality.selection import cluster_quotas, coverage, random_pick, select_diverse

    power = DEFAULT_QUALITY_POWER if quality_power is None else quality_power
    survivors = np.flatnonzero(led.active())
    counts = Counter(int(clusters[i]) for i in survivors)
    members = {c: survivors[clusters[survivors] == c] for c in counts}
    picks: list[int] = []
    if method == "facility_gain":
        runs = {
            c: facility_location(row_vec[m], quality[m], min(len(m), budget), quality_power=power)
            for c, m in members.items()
        }
        quotas = allocate_by_gains({c: g for c, (_, g) in runs.items()}, budget)
        for c, (order, _) in runs.items():
            picks.extend(members[c][order[: quotas[c]]].tolist())
    else:
        quotas = cluster_quotas(counts, budget, strategy="sqrt")
        for c, m in members.items():
            if method == "diverse":
                chosen = select_diverse(row_vec[m], quality[m], quotas[c], min_distance=0.1)
            else:
                chosen, _ = facility_location(
                    row_vec[m], quality[m], quotas[c], quality_power=power
                )
            picks.extend(m[chosen].tolist())
    chosen_set = set(picks)
    for i in survivors:
        if int(i) in chosen_set:
            led.status[i] = "selected"
        else:
            led.drop(int(i), "not_selected")
    vectors = row_vec[survivors]
    randoms = [
        coverage(vectors, vectors[random_pick(len(survivors), len(picks), seed=seed + s)])
        for s in range(RANDOM_SEEDS)
    ]
    return {
        "selected": round(coverage(vectors, row_vec[picks]), 4),
        "pick_quality": round(float(np.nanmean(quality[picks])), 4),
        "survivor_quality": round(float(np.nanmean(quality[survivors])), 4),
        "random": round(float(np.mean(randoms)), 4),
        "random_min": round(float(np.min(randoms)), 4),
        "picks": len(picks),
        "survivors": int(len(survivors)),
        "method": method,
    }


def planted(rows_n: int = 5000, *, selection: str = "facility", order: str = "proposed") -> dict:
    """bench/curate_quality.py's planted-defect scores on a simulated ledger (demo data,
    seed 0, filters.since=2023-01-01, budget = all rows as that bench does)."""
    import tempfile

    from bench.curate_quality import planted_details, planted_scores
    from jobs.demo.generator import generate, write_jsonl

    rows = generate(rows_n, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo.jsonl"
        write_jsonl(rows, path)
        state = prepare(path, order=order, since="2023-01-01")
    select(state, rows_n, 0, selection)
    ledger = state.ledger.table()
    return {"scores": planted_scores(rows, ledger), "details": planted_details(rows, ledger)}


if __name__ == "__main__":
    import json
    import sys

    order = sys.argv[1] if len(sys.argv) > 1 else "proposed"
    result = planted(order=order)
    for name, s in result["scores"].items():
        print(f"{name:12s} precision {s['precision']} recall {s['recall']} ({s})")
    details = {k: v for k, v in result["details"].items() if k not in ("rules", "junk_by_kind")}
    print(json.dumps(details))
