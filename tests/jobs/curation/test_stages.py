"""Per-group stage functions give the same verdicts whatever order their rows arrive in;
id-keyed samples do not depend on how rows fall into batches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from jobs.curation.batches import embedding_column, sample_by_id
from jobs.curation.runner import to_row_schema
from jobs.curation.stages.cover import rank_cluster
from jobs.curation.stages.select import mark_picks


def cluster_table(n: int, order: np.ndarray) -> pa.Table:
    """``n`` rows of one cluster, all of the same quality (ties everywhere), in ``order``."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = [
        {
            "id": f"r{i:03d}",
            "prompt": f"task {i}",
            "response": f"answer {i}",
            "status": "active",
            "quality": 0.9,
            "cluster": 0,
        }
        for i in order
    ]
    table = to_row_schema(pa.Table.from_pylist(rows))
    return table.append_column("embedding", embedding_column(vectors[order]))


def verdicts(table: pa.Table) -> dict[str, tuple[str, str | None]]:
    return {row["id"]: (row["status"], row["reason"]) for row in table.to_pylist()}


def select(table: pa.Table, quota: int, method: str) -> pa.Table:
    ranked = rank_cluster(
        table, depth={0: quota}, method=method, min_distance=0.0, quality_power=1.5
    )
    return mark_picks(ranked, quotas={0: quota})


def test_selection_among_tied_rows_does_not_depend_on_row_order():
    n = 40
    for method in ("facility", "diverse"):
        forward = select(cluster_table(n, np.arange(n)), 7, method)
        shuffled = cluster_table(n, np.random.default_rng(1).permutation(n))
        again = select(shuffled, 7, method)
        assert sum(s == "selected" for s, _ in verdicts(forward).values()) == 7
        assert verdicts(again) == verdicts(forward)


def test_the_quota_cuts_each_clusters_ranking():
    ranked = rank_cluster(
        cluster_table(10, np.arange(10)),
        depth={0: 6},
        method="facility",
        min_distance=0.0,
        quality_power=1.5,
    )
    ranks = ranked["pick_rank"].to_pylist()
    assert sorted(r for r in ranks if r >= 0) == list(range(6))  # ranked 6 deep
    marked = mark_picks(ranked, quotas={0: 2})
    picked = [
        r for r, s in zip(ranks, marked["status"].to_pylist(), strict=True) if s == "selected"
    ]
    assert sorted(picked) == [0, 1]
    reasons = {r for r in marked["reason"].to_pylist() if r}
    assert reasons == {"not_selected"}


def test_sample_by_id_is_the_same_however_rows_fall_into_batches():
    table = pa.table({"id": [f"row-{i}" for i in range(2000)], "x": list(range(2000))})
    whole = sample_by_id(table, seed=3, fraction=0.25)
    pieces = [sample_by_id(table.slice(s, 300), seed=3, fraction=0.25) for s in range(0, 2000, 300)]
    assert sorted(whole["id"].to_pylist()) == sorted(pa.concat_tables(pieces)["id"].to_pylist())
    assert 400 < whole.num_rows < 600  # about a quarter
    other_seed = sample_by_id(table, seed=4, fraction=0.25)
    assert set(other_seed["id"].to_pylist()) != set(whole["id"].to_pylist())


def group_table(rows: list[dict]) -> pa.Table:
    defaults = {"status": "active", "cluster": 0}
    return to_row_schema(pa.Table.from_pylist([{**defaults, **r} for r in rows]))


def test_a_conflict_keeps_the_fitting_answer_over_another_tasks_fluent_one():
    from jobs.curation.stages.compose import compose_quality
    from jobs.curation.stages.instructions import resolve_instructions
    from quality.ranking import DEFAULT_WEIGHTS

    question = "How do I boil an egg?"
    fitting = "Put the egg in boiling water for about nine minutes, then cool it in cold water."
    # A fluent, well-formed answer to another task: the rules like it better (higher
    # heuristic score), only relevance knows it does not answer the question.
    other = "The French Revolution began in 1789 and ended the absolute monarchy in France."
    table = group_table(
        [
            {"id": "a-fits", "prompt": question, "response": fitting, "heuristic": 0.90},
            {"id": "b-other", "prompt": question, "response": other, "heuristic": 1.00},
        ]
    )
    table = table.set_column(
        table.schema.get_field_index("relevance"), "relevance", pa.array([0.25, -0.15])
    )
    scored = compose_quality(table, weights=DEFAULT_WEIGHTS)
    keys = pa.array(["k1", "k2"])
    group = scored.append_column("exact_key", keys).append_column(
        "instruction_key", pa.array(["q", "q"])
    )
    out = resolve_instructions(
        group, exact=True, conflicts=True, agree_threshold=0.6, shingle_size=3
    )
    fate = {r["id"]: (r["status"], r["reason"], r["kept_instead"]) for r in out.to_pylist()}
    assert fate["a-fits"] == ("active", None, None)
    assert fate["b-other"] == ("dropped", "conflict", "a-fits")


def test_a_mismatched_row_with_a_fitting_sibling_goes_as_its_conflict():
    """Rows the relevance stage found mismatched are decided beside their instruction's
    other answers: a fitting answer is kept even at a lower score, the mismatched one is
    its conflict; a mismatched row with no fitting sibling is dropped as mismatched."""
    from jobs.curation.stages.instructions import resolve_instructions
    from quality.conflicts import lost_as_mismatched

    why = "paired relevance margin -1.20 < signals.relevance_threshold -0.8: ..."
    rows = [
        ("a-fits", "egg", "Boil it for nine minutes, then cool it in cold water.", 0.7, None),
        ("b-other", "egg", "The French Revolution began in 1789 in Paris.", 0.9, why),
        ("c-alone", "tea", "Photosynthesis turns light into sugar in green leaves.", 0.9, why),
        ("d-wrong", "sky", "Mount Everest is the highest mountain above sea level.", 0.9, why),
        ("e-wrong", "sky", "The Nile flows north through eleven countries of Africa.", 0.8, why),
        ("f-fits", "sun", "The sun is a star at the centre of the solar system.", 0.8, None),
        # Exact copies, neither fitting: both mismatched, not a duplicate of a dropped row.
        ("g-copy", "moon", "Rice grows best in flooded paddy fields.", 0.9, why),
        ("h-copy", "moon", "Rice grows best in flooded paddy fields.", 0.8, why),
        # A fitting answer without a score still ranks before a mismatched one.
        ("i-fits", "rain", "Rain forms when water vapour condenses into drops.", None, None),
        ("j-other", "rain", "Chess is played on a board of 64 squares.", 0.9, why),
    ]
    table = group_table(
        [{"id": i, "prompt": k, "response": r, "quality": q} for i, k, r, q, _ in rows]
    )
    exact = {"h-copy": "g-copy"}
    table = (
        table.append_column("exact_key", pa.array([exact.get(i, i) for i, *_ in rows]))
        .append_column("instruction_key", pa.array([k for _, k, *_ in rows]))
        .append_column("mismatch", pa.array([m for *_, m in rows], pa.string()))
    )
    out = resolve_instructions(
        table, exact=True, conflicts=True, agree_threshold=0.6, shingle_size=3
    )
    assert "mismatch" not in out.column_names
    fate = {r["id"]: (r["status"], r["reason"], r["kept_instead"]) for r in out.to_pylist()}
    assert fate == {
        "a-fits": ("active", None, None),
        "b-other": ("dropped", "conflict", "a-fits"),
        "c-alone": ("dropped", "mismatched", None),
        "d-wrong": ("dropped", "mismatched", None),
        "e-wrong": ("dropped", "mismatched", None),
        "f-fits": ("active", None, None),
        "g-copy": ("dropped", "mismatched", None),
        "h-copy": ("dropped", "mismatched", None),
        "i-fits": ("active", None, None),
        "j-other": ("dropped", "conflict", "i-fits"),
    }
    assert {r["duplicate_of"] for r in out.to_pylist()} == {None}
    details = {r["id"]: r["detail"] for r in out.to_pylist()}
    assert details["c-alone"] == why and why in details["b-other"]
    assert lost_as_mismatched(details["b-other"]) and not lost_as_mismatched(details["c-alone"])


def test_the_relevance_stage_defers_mismatched_rows_to_the_instructions_stage():
    from infra.config import load_config
    from jobs.curation.config import CurateConfig
    from jobs.curation.stages import instructions, relevance

    for conflicts, deferred in ((True, True), (False, False)):
        cfg = load_config(CurateConfig, None, [f"conflicts.enabled={str(conflicts).lower()}"])
        scores, decides = relevance.build(cfg), instructions.build(cfg)
        assert scores.kwargs["defer"] is deferred
        assert ("mismatch" in scores.adds) is deferred
        assert ("mismatch" in decides.needs) is deferred
        assert scores.decides is not deferred


def test_a_duplicate_group_keeps_the_row_with_the_best_composed_score():
    from jobs.curation.stages.dedup import dedup_cluster

    text = "List three primary colors. Red, yellow and blue are the traditional primaries."
    rows = [
        # the heuristic score prefers r1, the composed score (quality) prefers r2
        {
            "id": "r1",
            "prompt": "List three primary colors.",
            "response": text,
            "heuristic": 1.0,
            "quality": 0.70,
        },
        {
            "id": "r2",
            "prompt": "List three primary colors.",
            "response": text + " ",
            "heuristic": 0.9,
            "quality": 0.95,
        },
        {
            "id": "r3",
            "prompt": "List three primary colors.",
            "response": text + "  ",
            "heuristic": 0.8,
            "quality": 0.80,
        },
    ]
    table = group_table(rows)
    vectors = np.tile(np.eye(8, dtype=np.float32)[0], (3, 1))
    table = table.append_column("embedding", embedding_column(vectors))
    out = dedup_cluster(
        table,
        fuzzy=True,
        fuzzy_threshold=0.7,
        num_perm=64,
        shingle_size=3,
        semantic=True,
        semantic_threshold=0.95,
    )
    fate = {r["id"]: (r["status"], r["duplicate_of"]) for r in out.to_pylist()}
    assert fate == {"r1": ("dropped", "r2"), "r2": ("active", None), "r3": ("dropped", "r2")}
