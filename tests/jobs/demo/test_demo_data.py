"""The demo data generator: determinism, the mix of kinds, and that each injected defect is
what its ``truth`` label says (duplicates duplicate, conflicts conflict, junk breaks its
rule, clean rows are distinct and pass the rules)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
from collections import Counter, defaultdict

import pytest

from infra.errors import FinesiftError
from jobs.demo.generator import (
    DEFAULT_MIX,
    JUNK_RULES,
    STALE_BEFORE,
    generate,
    iter_generate,
    shingle_jaccard,
    write_jsonl,
)
from quality.text import exact_key, instruction_key, jaccard, shingles

N = 2000
COPIES = ("exact_duplicate", "near_duplicate", "conflict")


def prompt_of(row: dict) -> str:
    """The prompt finesift's alpaca reader builds from a row."""
    return f"{row['instruction']}\n\n{row['input']}" if row["input"] else row["instruction"]


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return generate(N, seed=0)


def test_same_seed_same_rows_and_iter_matches_list():
    first = generate(300, seed=7)
    assert first == generate(300, seed=7)
    assert first == list(iter_generate(300, seed=7))
    assert first != generate(300, seed=8)


def test_iter_generate_is_lazy():
    # A billion rows would never fit in memory; taking ten must still be instant.
    head = list(itertools.islice(iter_generate(10**9, seed=1), 10))
    assert len(head) == 10


def test_columns_and_dates(rows):
    start, end = dt.date(2024, 1, 1), dt.date(2025, 12, 31)
    for row in rows:
        assert set(row) == {
            "instruction",
            "input",
            "output",
            "category",
            "timestamp",
            "truth",
            "truth_of",
        }
        day = dt.date.fromisoformat(row["timestamp"])
        if row["truth"] == "stale":
            assert day < dt.date.fromisoformat(STALE_BEFORE)
        else:
            assert start <= day <= end
        if row["truth"] not in COPIES:
            assert row["truth_of"] is None
    later = generate(50, seed=0, start_date="2030-06-01")
    assert all(r["timestamp"] >= "2030-06-01" or r["truth"] == "stale" for r in later)


def test_counts_follow_the_mix(rows):
    counts = Counter(r["truth"] for r in rows)
    junk = sum(n for kind, n in counts.items() if kind.startswith("junk:"))
    for kind, share in DEFAULT_MIX.items():
        got = junk if kind == "junk" else counts[kind]
        # Binomial noise at N=2000 is about 0.6 points; early copies fall back to clean.
        assert abs(got / N - share) < 0.02, (kind, got)
    assert {f"junk:{rule}" for rule in JUNK_RULES} <= set(counts)
    assert min(counts[f"junk:{rule}"] for rule in JUNK_RULES) > 0.4 * junk / len(JUNK_RULES)


def test_custom_mix_only_clean_and_stale():
    rows = generate(200, seed=2, mix={"clean": 3, "stale": 1})
    assert {r["truth"] for r in rows} == {"clean", "stale"}


def test_truth_of_points_to_an_earlier_clean_row_copied_once(rows):
    originals = Counter()
    for i, row in enumerate(rows):
        if row["truth"] in COPIES:
            j = row["truth_of"]
            assert 0 <= j < i
            assert rows[j]["truth"] == "clean"
            assert rows[j]["category"] == row["category"]
            originals[j] += 1
    assert originals and max(originals.values()) == 1


def test_exact_duplicates_equal_their_original_after_normalization(rows):
    dups = [r for r in rows if r["truth"] == "exact_duplicate"]
    assert dups
    changed = 0
    for row in dups:
        original = rows[row["truth_of"]]
        assert exact_key(prompt_of(row), row["output"]) == exact_key(
            prompt_of(original), original["output"]
        )
        changed += (row["instruction"], row["output"]) != (
            original["instruction"],
            original["output"],
        )
    assert 0 < changed < len(dups)  # some copies differ in case, spacing or punctuation


def test_near_duplicates_are_close_but_not_exact(rows):
    near = [r for r in rows if r["truth"] == "near_duplicate"]
    assert near
    similarities = []
    for row in near:
        original = rows[row["truth_of"]]
        assert exact_key(prompt_of(row), row["output"]) != exact_key(
            prompt_of(original), original["output"]
        )
        similarities.append(shingle_jaccard(row, original))
    assert min(similarities) >= 0.65
    assert max(similarities) < 0.95
    assert 0.72 <= sum(similarities) / len(similarities) <= 0.9


def test_conflicts_share_the_instruction_but_not_the_answer(rows):
    from quality.conflicts import answer_similarity

    conflicts = [r for r in rows if r["truth"] == "conflict"]
    assert conflicts
    for row in conflicts:
        original = rows[row["truth_of"]]
        assert instruction_key(prompt_of(row)) == instruction_key(prompt_of(original))
        # Below conflicts.agree_threshold (0.6): the answers disagree.
        assert answer_similarity(row["output"], original["output"]) < 0.5


def test_fresh_rows_have_unique_instructions(rows):
    # Only injected copies may share an instruction with another row (else they would be
    # conflicts or duplicates nobody planted).
    fresh = [r for r in rows if r["truth"] in ("clean", "stale", "mislabeled")]
    keys = Counter(instruction_key(prompt_of(r)) for r in fresh)
    assert keys.most_common(1)[0][1] == 1


def test_clean_rows_are_pairwise_distinct(rows):
    by_category = defaultdict(list)
    for row in rows:
        if row["truth"] in ("clean", "stale"):
            by_category[row["category"]].append(row)
    assert len(by_category) >= 8
    rng = random.Random(0)
    worst = 0.0
    for members in by_category.values():
        sample = rng.sample(members, min(120, len(members)))
        sets = [shingles(prompt_of(r) + "\n" + r["output"], 3) for r in sample]
        for a, b in itertools.combinations(sets, 2):
            worst = max(worst, jaccard(a, b))
    # Below dedup.fuzzy_threshold (0.7): no clean row is a near-duplicate of another.
    assert worst < 0.7


def test_clean_answers_are_fluent_sentences(rows):
    clean = [r for r in rows if r["truth"] == "clean"]
    lengths = [len(r["output"].split()) for r in clean]
    assert sum(20 <= n <= 120 for n in lengths) / len(lengths) > 0.9
    assert all(r["output"].rstrip()[-1] in '.!?"' for r in clean)


def test_clean_rows_pass_the_heuristics(rows):
    from quality.heuristics import evaluate

    clean = [r for r in rows if r["truth"] in ("clean", "stale")]
    failing = [r for r in clean if evaluate(prompt_of(r), r["output"]).failed]
    assert len(failing) / len(clean) < 0.01, failing[:3]


# Rules that catch (nearly) every row of their junk kind. truncated_response catches only
# part of it by design: a cut after an ordinary word ("...beat the Bristol") looks like an
# answer that omits its final stop, as many human-written answers do; it sees cuts after a
# dangling word, comma or operator and inside an open bracket or quotation.
_ALWAYS = (
    "empty_response",
    "short_response",
    "repeats_instruction",
    "unclear_instruction",
    "ngram_repetition",
    "markup_mojibake",
    "language_mismatch",
    "junk_characters",
    "unvisitable_url",
)


@pytest.mark.parametrize("rule", JUNK_RULES)
def test_junk_rows_fail_their_rule(rows, rule):
    from quality.heuristics import RULES

    junk = [r for r in rows if r["truth"] == f"junk:{rule}"]
    check = RULES[rule].check
    # An empty output is quarantined by the reader (empty_field) before any rule runs.
    caught = [
        r
        for r in junk
        if not r["output"].strip() or check(prompt_of(r), r["output"], RULES[rule].threshold)
    ]
    assert len(caught) / len(junk) >= (0.85 if rule in _ALWAYS else 0.25), rule


def test_mislabeled_answers_come_from_another_task(rows):
    mislabeled = [r for r in rows if r["truth"] == "mislabeled"]
    assert mislabeled
    answers = {r["output"]: r["category"] for r in rows if r["truth"] == "clean"}
    for row in mislabeled:
        assert answers.get(row["output"]) != row["category"]


def test_bad_arguments_name_the_problem():
    with pytest.raises(FinesiftError, match="rows"):
        iter_generate(-1)  # raised at once, not on the first row
    with pytest.raises(FinesiftError, match="start_date"):
        generate(5, start_date="yesterday")
    with pytest.raises(FinesiftError, match="unknown kind"):
        generate(5, mix={"clean": 1, "typo": 1})
    with pytest.raises(FinesiftError, match="mix"):
        generate(5, mix={"clean": 0})


def test_write_jsonl_round_trips_and_reader_accepts_every_row(tmp_path):
    from quality.readers import read_all

    rows = generate(400, seed=4)
    path = tmp_path / "demo.jsonl"
    assert write_jsonl(iter(rows), path) == 400
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == rows
    read = list(read_all([str(path)]))
    assert len(read) == 400
    quarantined = [r for r in read if r["status"] == "quarantined"]
    # Only junk with an empty output is unreadable as an instruction row.
    assert all(r["reason"] == "empty_field" for r in quarantined)
    assert len(quarantined) <= sum(r["truth"] == "junk:empty_response" for r in rows)


@pytest.mark.slow
def test_an_embedding_model_sees_distinct_rows_grouped_by_task(rows):
    import numpy as np

    from quality.clustering import assign_clusters, train_kmeans
    from quality.embeddings import load_encoder, row_vectors

    clean = [r for r in rows if r["truth"] == "clean"]
    by_category = defaultdict(list)
    for row in clean:
        by_category[row["category"]].append(row)
    rng = random.Random(1)
    sample = [r for m in by_category.values() for r in rng.sample(m, min(60, len(m)))]
    vectors, _, _ = row_vectors(
        load_encoder("default"), [prompt_of(r) for r in sample], [r["output"] for r in sample]
    )
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -1.0)
    # Semantic dedup (threshold 0.95) must find next to nothing among clean rows.
    assert (similarity.max(axis=1) > 0.95).mean() < 0.02
    labels = assign_clusters(vectors, train_kmeans(vectors, len(by_category), seed=0))
    purity = sum(
        Counter(r["category"] for r, c in zip(sample, labels, strict=True) if c == k).most_common(
            1
        )[0][1]
        for k in set(labels.tolist())
    )
    assert purity / len(sample) > 0.7
