"""finesift experiment: arm data, leakage check and the result table (no training here)."""

from __future__ import annotations

import json

import pytest

from infra.config import with_values
from infra.errors import InputError
from jobs.evaluation.config import ExperimentConfig
from jobs.evaluation.experiment import assemble, overlap, random_sample, readable_rows, write_arm
from jobs.evaluation.result import EvalResult


def write_noisy(path):
    rows = [
        {"instruction": "Name a primary color.", "input": "", "output": "Red."},
        {"instruction": "Add 2 and 3.", "input": "", "output": "5"},
        "{not json",  # quarantined: never in any arm
        {"instruction": "Capital of France?", "input": "", "output": "Paris."},
    ]
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return path


def test_arms_use_readable_rows_only_and_random_is_seeded(tmp_path):
    pool = readable_rows(str(write_noisy(tmp_path / "noisy.jsonl")))
    assert len(pool) == 3
    first, again = random_sample(pool, 2, seed=1), random_sample(pool, 2, seed=1)
    assert first == again and len(first) == 2
    assert random_sample(pool, 10, seed=1) == pool
    path = write_arm(first, tmp_path / "arms" / "random.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [row["id"] for row in lines] == [row["id"] for row in first]
    assert lines[0]["messages"][-1]["role"] == "assistant"


def test_empty_input_is_an_input_error(tmp_path):
    (tmp_path / "bad.jsonl").write_text("{oops\n")
    with pytest.raises(InputError, match="no readable rows"):
        readable_rows(str(tmp_path / "bad.jsonl"))


def test_overlap_counts_heldout_instructions_seen_in_the_input(tmp_path):
    pool = readable_rows(str(write_noisy(tmp_path / "noisy.jsonl")))
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text(
        json.dumps({"instruction": "add 2 and 3", "input": "", "output": "Five."})
        + "\n"
        + json.dumps({"instruction": "Name a fruit.", "input": "", "output": "Apple."})
        + "\n"
    )
    assert overlap(pool, str(heldout)) == 1  # "add 2 and 3" normalizes to a seen instruction


def test_assemble_puts_base_first_and_states_the_verdict():
    cfg = with_values(ExperimentConfig(data="n", eval_data="h"), {"arms": ("curated", "random")})
    scores = dict(perplexity=1.0, rouge_l=0.1, chrf=10.0, tokens=9, rows=10, generated=4)
    models = [
        {"name": n, "nll": v, "base_model": "b", "adapter": None, "seconds": 1.0, **scores}
        for n, v in (("base", 2.0), ("curated", 1.2), ("random", 1.5))
    ]

    def evaluated(models):
        return EvalResult.from_dict(
            {"eval_data": "h", "models": models, "rows": 10, "generated_rows": 4}
        )

    cost = {"rows": 5, "steps": 2, "tokens_seen": 100, "train_seconds": 3.0}
    result = assemble(
        cfg,
        {"curated": cost, "random": cost},
        evaluated(models),
        None,
    )
    assert [a["arm"] for a in result["arms"]] == ["base", "curated", "random"]
    assert result["verdict"].startswith("curated beats random")
    assert result["schedule"].startswith("equal epochs")
    steps_cfg = with_values(cfg, {"train.optim.max_steps": 7})
    swapped = [dict(m, nll=3.0) if m["name"] == "curated" else m for m in models]
    result = assemble(
        steps_cfg,
        {"curated": cost, "random": cost},
        evaluated(swapped),
        None,
    )
    assert result["verdict"].startswith("curated does not beat random")
    assert result["schedule"] == "equal steps (train.optim.max_steps=7)"
