"""End to end on a local Ray: a fluent answer to another task is dropped as mismatched."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from infra.config import load_config
from jobs.curation.config import CurateConfig

pytestmark = pytest.mark.ray

# Answers that restate their question's words, as real answers do; the hashing encoder
# (character n-grams) then sees each answer near its own question.
TOPICS = [
    (
        "Explain how photosynthesis works in green plants.",
        "In photosynthesis, green plants use sunlight to turn carbon dioxide and water into "
        "glucose and oxygen; chlorophyll in the leaves captures the light.",
    ),
    (
        "Describe the water cycle of evaporation and rain.",
        "The water cycle: water evaporates from the sea, condenses into clouds, and falls "
        "again as rain or snow before flowing back through rivers.",
    ),
    (
        "Give training advice for running a first marathon.",
        "For a first marathon, build running mileage slowly, practise race nutrition on long "
        "training runs, and taper in the last two weeks.",
    ),
    (
        "What does a compiler do with source code?",
        "A compiler translates source code into machine code, checking syntax and types and "
        "optimizing the code along the way.",
    ),
    (
        "Summarize the causes of the French Revolution.",
        "The French Revolution had several causes: royal debt, food shortages, unfair taxes "
        "and Enlightenment ideas about rights.",
    ),
    (
        "How do vaccines train the immune system?",
        "Vaccines train the immune system by showing it a harmless piece of a pathogen, so it "
        "makes antibodies and memory cells.",
    ),
    (
        "Why is the sky blue during the day?",
        "The sky is blue during the day because sunlight scatters off air molecules and blue "
        "light scatters the most.",
    ),
    (
        "List the planets of the solar system in order.",
        "The planets of the solar system in order: Mercury, Venus, Earth, Mars, Jupiter, "
        "Saturn, Uranus and Neptune.",
    ),
]


def test_curate_drops_a_planted_mismatched_row(tmp_path, ray_session):
    from jobs.curation.curate import run

    rows = [{"instruction": q, "input": "", "output": a} for q, a in TOPICS]
    # line 9: asks about volcanoes, answered with the marathon advice of line 3
    rows.append(
        {"instruction": "Explain why volcanoes erupt.", "input": "", "output": TOPICS[2][1]}
    )
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = load_config(
        CurateConfig,
        None,
        [
            "embed.model=hashing",
            "signals.relevance=true",  # on by default only with a semantic encoder
            "signals.relevance_top_k=1",
            "dedup.semantic=false",
            "selection.budget=20",
            "clusters.rows_per_cluster=4",
            "report=false",
        ],
        inputs=(str(data),),
        out=str(tmp_path / "out"),
    )
    result = run(cfg)

    ledger = {
        r["source"].rsplit(":", 1)[1]: r
        for r in pq.read_table(tmp_path / "out" / "ledger.parquet").to_pylist()
    }
    assert len(ledger) == len(rows) == result.input_rows  # every row exactly once
    planted = ledger["9"]
    assert (planted["status"], planted["reason"]) == ("dropped", "mismatched")
    assert "signals.relevance_threshold" in planted["detail"]
    others = [r for line, r in ledger.items() if line != "9"]
    assert all(r["status"] == "selected" for r in others), [
        (r["source"], r["reason"]) for r in others
    ]
