"""End to end: curate a mixed-format input with planted defects on a local Ray."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from infra.config import load_config
from jobs.curation.config import CurateConfig

pytestmark = pytest.mark.ray

TOPICS = [
    (
        "Explain how photosynthesis works in plants.",
        "Plants capture sunlight with chlorophyll and use that energy to turn carbon dioxide and "
        "water into glucose, releasing oxygen as a by-product of the reaction.",
    ),
    (
        "Describe the water cycle in a few sentences.",
        "Water evaporates from oceans and lakes, condenses into clouds as it cools, falls back as "
        "rain or snow, and flows through rivers and groundwater back to the sea.",
    ),
    (
        "Give advice for a first marathon.",
        "Build your weekly mileage slowly, practise your race-day nutrition on long runs, taper in "
        "the final two weeks, and start the race slower than you think you should.",
    ),
    (
        "What does a compiler do?",
        "A compiler translates source code written in a high-level language into machine code or "
        "bytecode, checking types and syntax and optimizing the program along the way.",
    ),
    (
        "Summarize the causes of the French Revolution.",
        "Royal debt, food shortages, an unfair tax system and Enlightenment ideas about rights "
        "combined to turn widespread discontent into a revolution against the monarchy in 1789.",
    ),
    (
        "How do vaccines train the immune system?",
        "A vaccine shows the immune system a harmless piece or copy of a pathogen, so it learns to "
        "make antibodies and memory cells that respond quickly to a later real infection.",
    ),
]


def alpaca(instruction: str, output: str, **extra) -> dict:
    return {"instruction": instruction, "input": "", "output": output, **extra}


def write_inputs(root: Path) -> dict[str, int]:
    """Write one file per format; return planted row counts by expected fate."""
    rows = [alpaca(q, a, category="general") for q, a in TOPICS]
    rows.append(dict(rows[0]))  # line 7: exact duplicate of line 1
    rows.append(alpaca("Translate to French: Hello, how are you?", "Bonjour, comment allez-vous?"))
    rows.append(
        alpaca("Translate to French: hello how are you", "Bonjour comment ca va")
    )  # conflict
    rows.append(alpaca("Write a short poem about autumn.", "N/A"))  # placeholder answer
    lines = [json.dumps(r) for r in rows]
    lines.insert(3, "{not json")  # invalid JSON, quarantined
    (root / "a.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with gzip.open(root / "b.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": "Name three primary colors."},
                        {
                            "role": "assistant",
                            "content": "Red, yellow and blue are the three "
                            "traditional primary colors of paint.",
                        },
                    ]
                }
            )
        )
        f.write("\n")
        f.write(
            json.dumps(
                {
                    "messages": [
                        {"role": "assistant", "content": "Hi"},
                        {"role": "user", "content": "Hello"},
                    ]
                }
            )
            + "\n"
        )
    sharegpt = [
        {
            "conversations": [
                {"from": "human", "value": "What is the boiling point of water?"},
                {
                    "from": "gpt",
                    "value": "At sea level, pure water boils at "
                    "100 degrees Celsius, which is 212 degrees Fahrenheit.",
                },
            ]
        },
        {"conversations": [{"from": "human", "value": "Tell me a joke"}]},
    ]
    (root / "c.json").write_text(json.dumps(sharegpt), encoding="utf-8")
    table = pa.table(
        {
            "prompt": ["Why is the sky blue?"],
            "completion": [
                "Sunlight scatters off air molecules, and short blue "
                "wavelengths scatter the most, so the sky looks blue."
            ],
        }
    )
    pq.write_table(table, root / "d.parquet")
    (root / "e.csv").write_text(
        "instruction,input,output\n"
        'List two uses of copper.,,"Copper carries electricity in wiring, and it is used in '
        'plumbing pipes because it resists corrosion."\n'
        "Define entropy.,,\n",
        encoding="utf-8",
    )
    return {"rows": 11 + 2 + 2 + 1 + 2}


def test_curate_mixed_formats_accounts_for_every_row(tmp_path, ray_session):
    from jobs.curation.curate import run

    data = tmp_path / "data"
    data.mkdir()
    expected = write_inputs(data)
    cfg = load_config(
        CurateConfig,
        None,
        ["embed.model=hashing", "selection.budget=5", "clusters.rows_per_cluster=4"],
        inputs=(str(data),),
        out=str(tmp_path / "out"),
    )
    result = run(cfg)

    ledger = pq.read_table(tmp_path / "out" / "ledger.parquet").to_pylist()
    # Every input row exactly once: selected + dropped + quarantined = input rows.
    assert len(ledger) == expected["rows"] == result.input_rows
    assert len({r["source"] for r in ledger}) == len(ledger)
    assert sum(result.by_status.values()) == expected["rows"]
    by_source = {r["source"]: r for r in ledger}

    def fate(name: str, line: str) -> dict:
        return by_source[f"{data / name}{line}"]

    assert fate("a.jsonl", ":4")["status"] == "quarantined"
    assert fate("a.jsonl", ":4")["reason"] == "invalid_json"
    # Lines 1 and 8 are identical with equal quality: one survives (the smaller id), the
    # other is dropped naming it.
    pair = [fate("a.jsonl", ":1"), fate("a.jsonl", ":8")]
    dropped = [r for r in pair if r["reason"] == "exact_duplicate"]
    kept = [r for r in pair if r["reason"] != "exact_duplicate"]
    assert len(dropped) == 1 and dropped[0]["status"] == "dropped"
    assert dropped[0]["duplicate_of"] == kept[0]["id"] == min(r["id"] for r in pair)
    french = [fate("a.jsonl", ":9"), fate("a.jsonl", ":10")]
    reasons = [r["reason"] for r in french]
    assert reasons.count("conflict") == 1, reasons
    loser = next(r for r in french if r["reason"] == "conflict")
    winner = next(r for r in french if r["reason"] != "conflict")
    assert loser["kept_instead"] == winner["id"]
    assert fate("a.jsonl", ":11")["reason"] == "empty_response"
    assert fate("b.jsonl.gz", ":2")["status"] == "quarantined"
    assert fate("c.json", "#1")["reason"] == "no_assistant_turn"
    assert fate("e.csv", ":3")["status"] == "quarantined"

    selected = [
        json.loads(line) for line in (tmp_path / "out" / "selected.jsonl").read_text().splitlines()
    ]
    assert len(selected) == result.selected == 5
    assert all(m["messages"][-1]["role"] == "assistant" for m in selected)
    quarantine = (tmp_path / "out" / "quarantine.jsonl").read_text().splitlines()
    assert len(quarantine) == result.by_status["quarantined"]
    assert "{not json" in quarantine[0] or any("{not json" in q for q in quarantine)
    coverage = result.coverage
    assert coverage is not None and coverage.picks == 5
    assert 0.0 <= coverage.selected <= 2.0 and 0.0 <= coverage.random <= 2.0
    # Each stage took in exactly the rows no earlier stage decided: embed what passed the
    # rules (read, the rules, stale), instructions also what relevance kept (nothing with
    # the hashing encoder: relevance is off), cluster also what survived exact duplicates
    # and conflicts.
    from quality.heuristics import RULES

    scored_out = {*RULES, "low_quality", "stale"}
    read = [r for r in ledger if r["status"] != "quarantined"]
    past_scoring = [r for r in read if r["reason"] not in scored_out]
    past_relevance = [r for r in past_scoring if r["reason"] != "mismatched"]
    past_instructions = [
        r for r in past_relevance if r["reason"] not in ("exact_duplicate", "conflict")
    ]
    assert len(past_instructions) < len(past_scoring) < len(read)  # the fixture plants all three
    rows_in = result.rows_in
    assert rows_in["embed"] == len(past_scoring)
    assert rows_in["instructions"] == len(past_relevance)
    assert rows_in["cluster"] == len(past_instructions)


def test_curate_reads_and_writes_uris(tmp_path, ray_session):
    # file:// takes the same pyarrow.fs path as s3:// and gs://, without the network.
    from jobs.curation.curate import run

    data = tmp_path / "data"
    data.mkdir()
    expected = write_inputs(data)
    out = f"file://{tmp_path}/out"
    cfg = load_config(
        CurateConfig,
        None,
        ["embed.model=hashing", "selection.budget=5", "clusters.rows_per_cluster=4"],
        inputs=(f"file://{data}",),
        out=out,
    )
    result = run(cfg)

    assert result.path("ledger.parquet") == f"{out}/ledger.parquet"
    ledger = pq.read_table(tmp_path / "out" / "ledger.parquet").to_pylist()
    assert len(ledger) == expected["rows"] == result.input_rows
    sources = {r["source"]: r for r in ledger}
    assert sources[f"file://{data}/a.jsonl:4"]["reason"] == "invalid_json"
    assert sources[f"file://{data}/c.json#1"]["reason"] == "no_assistant_turn"
    selected = (tmp_path / "out" / "selected.jsonl").read_text().splitlines()
    assert len(selected) == result.selected == 5
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert saved["input_rows"] == expected["rows"]
    assert cfg.report and result.report == f"{out}/report.html"
    assert f"{out}" in (tmp_path / "out" / "report.html").read_text()
