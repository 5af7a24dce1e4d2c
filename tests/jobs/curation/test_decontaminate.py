"""filters.decontaminate: rows that duplicate an evaluation row are dropped as
contaminated, naming the evaluation row, before they can be kept or selected."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from infra.config import load_config
from infra.errors import InputError
from jobs.curation.config import CurateConfig

LONG = (
    "Photosynthesis turns light, water and carbon dioxide into glucose and oxygen. It "
    "happens in the chloroplasts of plant cells, where chlorophyll absorbs mostly red and "
    "blue light and reflects green light back to our eyes."
)
TOPICS = [
    ("Describe the water cycle.", "Water evaporates, condenses into clouds and falls as rain."),
    ("Give advice for a first marathon.", "Build mileage slowly and start the race slowly."),
    ("What does a compiler do?", "It translates source code into machine code or bytecode."),
    ("How do vaccines work?", "They show the immune system a harmless copy of a pathogen."),
    ("Why is the sky blue?", "Air scatters short blue wavelengths of sunlight the most."),
    ("Name three primary colors.", "Red, yellow and blue are the traditional primaries."),
]


def chat(question: str, answer: str) -> dict:
    return {
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    }


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_comma_separated_list_of_files_is_parsed():
    cfg = load_config(CurateConfig, None, ["filters.decontaminate=a.jsonl, b.jsonl"])
    assert cfg.filters.decontaminate == ("a.jsonl", "b.jsonl")
    assert load_config(CurateConfig, None, []).filters.decontaminate == ()


def test_a_missing_evaluation_file_is_refused_before_ray_starts(tmp_path):
    from jobs.curation.pipeline import build_stages

    write(tmp_path / "in.jsonl", [chat(*TOPICS[0])])
    cfg = load_config(
        CurateConfig,
        None,
        [f"filters.decontaminate={tmp_path}/absent.jsonl"],
        inputs=(str(tmp_path / "in.jsonl"),),
    )
    with pytest.raises(InputError, match="filters.decontaminate.*absent.jsonl"):
        build_stages(cfg)


@pytest.mark.ray
def test_rows_duplicating_evaluation_rows_are_dropped_and_name_them(tmp_path, ray_session):
    from jobs.curation.curate import run

    rows = [chat(q, a) for q, a in TOPICS]
    rows.append(chat("Explain photosynthesis.", LONG))  # line 7: = held-out line 1
    rows.append(chat("What is the capital of France?", "Paris."))  # line 8: held-out line 2's
    rows.append(chat("How does photosynthesis work?", LONG.replace("mostly", "chiefly")))  # 9
    data = write(tmp_path / "in.jsonl", rows)
    heldout = write(
        tmp_path / "heldout.jsonl",
        [
            chat("Explain photosynthesis.", LONG),
            chat("What is the capital of France?", "The capital of France is Paris."),
            chat("Who painted the Mona Lisa?", "Leonardo da Vinci painted it."),
        ],
    )
    cfg = load_config(
        CurateConfig,
        None,
        [
            "embed.model=hashing",
            "selection.budget=20",
            "clusters.rows_per_cluster=4",
            f"filters.decontaminate={heldout}",
        ],
        inputs=(str(data),),
        out=str(tmp_path / "out"),
        report=False,
    )
    result = run(cfg)

    ledger = {
        r["source"]: r for r in pq.read_table(tmp_path / "out" / "ledger.parquet").to_pylist()
    }
    assert len(ledger) == len(rows) == result.input_rows  # every row accounted for
    fate = {int(s.rsplit(":", 1)[1]): r for s, r in ledger.items()}
    contaminated = {line: r for line, r in fate.items() if r["reason"] == "contaminated"}
    assert set(contaminated) == {7, 8, 9}
    assert contaminated[7]["duplicate_of"] == "heldout.jsonl:1"
    assert "same text as evaluation row heldout.jsonl:1" in contaminated[7]["detail"]
    assert contaminated[8]["duplicate_of"] == "heldout.jsonl:2"
    assert "same instruction" in contaminated[8]["detail"]
    assert contaminated[9]["duplicate_of"] == "heldout.jsonl:1"
    assert "MinHash Jaccard" in contaminated[9]["detail"]
    assert all(r["status"] == "dropped" for r in contaminated.values())
    selected = (tmp_path / "out" / "selected.jsonl").read_text().splitlines()
    assert len(selected) == result.selected == 6  # the clean rows reach training, and only they
    assert not any("photosynthesis" in line or "France" in line for line in selected)
    counted = {(c.status, c.reason): c.rows for c in result.by_reason}
    assert counted[("dropped", "contaminated")] == 3
    assert result.rows_in["decontaminate"] == len(rows)  # right after embed: nothing decided yet


def test_rows_curate_found_contaminated_are_left_out_of_uncurated_arms(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jobs.curation.outputs import without_contaminated

    ledger = pa.table(
        {
            "id": ["a", "b", "c", "d", "e"],
            "reason": ["contaminated", None, "exact_duplicate", "conflict", "exact_duplicate"],
            "duplicate_of": [None, None, "a", None, "b"],  # c: a copy of the contaminated a
            "kept_instead": [None, None, None, "a", None],  # d: another answer to a's question
        }
    )
    pq.write_table(ledger, tmp_path / "ledger.parquet")
    rows = [{"id": i} for i in ("a", "b", "c", "d", "e", "f")]
    assert [r["id"] for r in without_contaminated(rows, tmp_path)] == ["b", "e", "f"]
