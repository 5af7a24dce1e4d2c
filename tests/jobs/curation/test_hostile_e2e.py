"""End to end on a local Ray: issue 20's hostile inputs in one curate run give a complete
ledger (every record once, unique ids, references that name one row), and inputs with no
records give complete, empty outputs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from infra.config import load_config
from jobs.curation.config import CurateConfig

pytestmark = pytest.mark.ray

ANSWERS = [
    "Plants turn sunlight, water and carbon dioxide into sugar and release oxygen.",
    "Water evaporates, condenses into clouds and falls back as rain or snow.",
    "A compiler translates source code into machine code before the program runs.",
    "Vaccines show the immune system a harmless copy of a germ so it learns to fight it.",
    "Royal debt, hunger and new ideas about rights led France to revolution in 1789.",
    "Build mileage slowly, practise race nutrition and start slower than you want to.",
]


def row(i: int, **extra: object) -> dict:
    return {
        "instruction": f"Question {i}: explain topic {i} briefly.",
        "output": ANSWERS[i],
        **extra,
    }


def lines(*objs: dict, end: str = "\n") -> str:
    return "".join(json.dumps(o) + end for o in objs)


def curate(inputs: Path, out: Path):
    from jobs.curation.curate import run

    overrides = ["embed.model=hashing", "selection.budget=4", "clusters.rows_per_cluster=4"]
    cfg = load_config(CurateConfig, None, overrides, inputs=(str(inputs),), out=str(out))
    return run(cfg)


def test_hostile_files_give_a_complete_ledger(tmp_path: Path, ray_session) -> None:
    data = tmp_path / "data"
    data.mkdir()
    # Shared ids: "x1" in two files (planted: one of them an exact duplicate of the other).
    (data / "a.jsonl").write_text(lines(row(0, id="x1"), row(1, id="x2")))
    (data / "b.jsonl").write_text(lines(row(0, id="x1"), row(2, id="x3")))
    (data / "c.jsonl").write_text(lines(row(3), row(4), end="\r"))  # bare CR: two rows
    broken = ",\n  ".join([json.dumps(row(5)), '{"instruction": "x" "output": "y"}'])
    (data / "d.json").write_text("[\n  " + broken + "\n]")
    deep = '{"instruction": "x", "output": "y", "n": ' + "[" * 5000 + "]" * 5000 + "}"
    surrogate = '{"id": "\\ud800", "instruction": "x", "output": "y"}'
    (data / "e.jsonl").write_text(deep + "\n" + surrogate + "\n")
    (data / "f.jsonl.gz").write_bytes(gzip.compress(lines(row(1), row(2)).encode())[:-12])
    (data / "g.jsonl").write_text("")
    result = curate(data, tmp_path / "out")

    ledger = pq.read_table(tmp_path / "out" / "ledger.parquet").to_pylist()
    by_source = {r["source"].rsplit("/", 1)[1]: r for r in ledger}
    gz = sorted(s for s in by_source if s.startswith("f.jsonl.gz"))
    assert sorted(set(by_source) - set(gz)) == [
        "a.jsonl:1", "a.jsonl:2", "b.jsonl:1", "b.jsonl:2", "c.jsonl:1", "c.jsonl:2",
        "d.json#0", "d.json#1", "e.jsonl:1", "e.jsonl:2",
    ]  # fmt: skip
    assert len(ledger) == result.input_rows == len(by_source)
    assert {by_source[s]["reason"] for s in gz} == {"unreadable"}
    assert by_source["d.json#0"]["status"] != "quarantined"
    assert by_source["d.json#1"]["reason"] == "invalid_json"
    assert by_source["e.jsonl:1"]["reason"] == "too_deep"
    assert by_source["e.jsonl:2"]["reason"] == "invalid_utf8"

    ids = [r["id"] for r in ledger]
    assert len(ids) == len(set(ids))
    first, second = by_source["a.jsonl:1"], by_source["b.jsonl:1"]
    assert first["id"].startswith("x1@") and first["id"].endswith("a.jsonl:1")
    assert first["input_id"] == second["input_id"] == "x1"
    assert (by_source["a.jsonl:2"]["id"], by_source["a.jsonl:2"]["input_id"]) == ("x2", None)
    pair = sorted([first, second], key=lambda r: r["reason"] or "")
    dropped = [r for r in pair if r["reason"] == "exact_duplicate"]
    assert len(dropped) == 1 and dropped[0]["duplicate_of"] in {first["id"], second["id"]}
    assert dropped[0]["duplicate_of"] != dropped[0]["id"]
    assert result.renamed_ids == 2

    selected = [
        json.loads(x) for x in (tmp_path / "out" / "selected.jsonl").read_text().splitlines()
    ]
    assert len({r["id"] for r in selected}) == len(selected) == result.selected


def test_inputs_with_no_records_give_complete_empty_outputs(tmp_path: Path, ray_session) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl").write_text(" \n\r\n")
    (data / "b.csv").write_text("instruction,output\n")
    (data / "c.json").write_text("[]")
    result = curate(data, tmp_path / "out")
    assert result.input_rows == 0 and result.by_status == dict.fromkeys(result.by_status, 0)
    ledger = pq.read_table(tmp_path / "out" / "ledger.parquet")
    assert ledger.num_rows == 0 and "input_id" in ledger.column_names
    assert (tmp_path / "out" / "selected.jsonl").read_text() == ""
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["input_rows"] == 0
