"""finesift experiment: arm data, the longest arm, seeds, the verdict and experiment.json
(no training here, except the one ray-marked end-to-end run on a tiny model)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console
from typer.testing import CliRunner

from infra.config import ConfigError, load_config, to_dict
from infra.errors import InputError
from jobs.evaluation.arms import (
    TrainingRun,
    longest_rows,
    overlap,
    random_sample,
    readable_rows,
    write_arm,
)
from jobs.evaluation.compare import arm_result, assemble
from jobs.evaluation.config import ExperimentConfig
from jobs.evaluation.experiment import plan_runs
from jobs.evaluation.result import EvalResult, ExperimentResult, SeedRun
from jobs.evaluation.table import COLUMNS, print_table


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


# --- the longest arm --------------------------------------------------------------------


def messages(question: str, answer: str) -> str:
    turns = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return json.dumps(turns)


def write_ledger(path: Path, rows: list[tuple[str, str, str | None, str]]) -> Path:
    """(id, status, reason, response) rows as a ledger with the columns the arm reads."""
    table = pa.table(
        {
            "id": [r[0] for r in rows],
            "status": [r[1] for r in rows],
            "reason": [r[2] for r in rows],
            "response": [r[3] for r in rows],
            "messages": [messages(f"Question {r[0]}?", r[3]) for r in rows],
        }
    )
    pq.write_table(table, path)
    return path


LEDGER = [
    ("sel-short", "selected", None, "Short."),
    ("sel-mid", "selected", None, "A middle-sized answer here."),
    ("left-long", "dropped", "not_selected", "A long answer that selection left out " * 3),
    ("left-tie-b", "dropped", "not_selected", "x" * 40),
    ("left-tie-a", "dropped", "not_selected", "y" * 40),
    # Longer than every survivor, but filtered out: never in the longest arm.
    ("dup", "dropped", "near_duplicate", "A duplicate that is the longest of all " * 9),
    ("rule", "dropped", "placeholder_text", "TODO " * 80),
    ("conflict", "dropped", "conflict", "The losing side of a conflict, long " * 7),
    ("bad", "quarantined", "invalid_json", ""),
]


def test_longest_takes_the_longest_survivors_of_every_filter(tmp_path):
    ledger = write_ledger(tmp_path / "ledger.parquet", LEDGER)
    picked = longest_rows(ledger, 4)
    # Survivors only (selected or not_selected), longest first, ties by id.
    assert [r["id"] for r in picked] == ["left-long", "left-tie-a", "left-tie-b", "sel-mid"]
    assert [r["id"] for r in longest_rows(ledger, 100)][-1] == "sel-short"
    assert len(longest_rows(ledger, 100)) == 5
    # The arm file is trainable: the ledger's messages, as finesift train reads them.
    path = write_arm(picked, tmp_path / "longest.jsonl")
    first = json.loads(path.read_text().splitlines()[0])
    assert first["id"] == "left-long" and first["messages"][-1]["role"] == "assistant"


def test_longest_needs_a_ledger_with_survivors(tmp_path):
    with pytest.raises(InputError, match="ledger"):
        longest_rows(tmp_path / "ledger.parquet", 3)
    gone = write_ledger(tmp_path / "ledger.parquet", [("dup", "dropped", "exact_duplicate", "x")])
    with pytest.raises(InputError, match="survived"):
        longest_rows(gone, 3)


def write_curate_outputs(out: Path, n_selected: int = 2) -> None:
    """selected.jsonl and ledger.parquet as curate leaves them (LEDGER's selected rows)."""
    out.mkdir(parents=True, exist_ok=True)
    write_ledger(out / "ledger.parquet", LEDGER)
    with open(out / "selected.jsonl", "w", encoding="utf-8") as handle:
        for row_id, _, _, answer in LEDGER[:n_selected]:
            record = {"id": row_id, "messages": json.loads(messages(f"Q {row_id}?", answer))}
            handle.write(json.dumps(record) + "\n")


def test_plan_gives_each_arm_its_rows_and_seeds(tmp_path):
    pool = readable_rows(str(write_noisy(tmp_path / "noisy.jsonl")))
    out = tmp_path / "out"
    write_curate_outputs(out)
    cfg = load_config(ExperimentConfig, None, ["seeds=[0, 1]", "full_seeds=1"], data="n")
    runs = plan_runs(cfg, pool, out)
    assert [(r.arm, r.seed) for r in runs] == [
        ("curated", 0),
        ("curated", 1),
        ("random", 0),
        ("random", 1),
        ("longest", 0),
        ("longest", 1),
        ("full", 0),  # full_seeds=1: the full arm runs the first seed only
    ]
    by = {r.model: r for r in runs}
    assert by["curated-seed0"].data == out / "selected.jsonl"
    # random and longest take as many rows as curate selected; full takes every readable row
    assert {r.rows for r in runs if r.arm in ("curated", "random", "longest")} == {2}
    assert by["full-seed0"].rows == 3
    assert by["random-seed0"].data != by["random-seed1"].data  # one draw per seed
    assert by["longest-seed0"].data == by["longest-seed1"].data
    longest = [json.loads(line)["id"] for line in by["longest-seed0"].data.read_text().splitlines()]
    assert longest == ["left-long", "left-tie-a"]


# --- seeds, the verdict, experiment.json ------------------------------------------------


def test_an_arm_reports_the_mean_and_range_over_its_seeds():
    runs = [
        SeedRun(0, "curated-seed0", 1.2, 3.3, 0.30, 34.0, 10, 3, 1.0, 900, 20.0, 1.1),
        SeedRun(1, "curated-seed1", 1.4, 4.1, 0.34, 37.0, 10, 3, 1.0, 1100, 30.0, 1.3),
    ]
    arm = arm_result("curated", runs)
    assert arm.seeds == [0, 1]
    assert arm.chrf == pytest.approx(35.5) and (arm.chrf_min, arm.chrf_max) == (34.0, 37.0)
    assert arm.rouge_l == pytest.approx(0.32) and arm.rouge_l_max == 0.34
    assert arm.nll == pytest.approx(1.3) and arm.perplexity == pytest.approx(math.exp(1.3), 1e-3)
    assert arm.tokens_seen == 1000 and arm.steps == 3
    assert arm.train_seconds == pytest.approx(25.0) and arm.train_seconds_total == 50.0
    alone = arm_result("full", runs[:1])
    assert alone.chrf_min == alone.chrf_max == alone.chrf == 34.0


GOOD = ["The capital of France is Paris.", "Red, blue and yellow.", "The answer is 5."] * 4
REFS = ["The capital of France is Paris.", "Red, blue and yellow are primary.", "It is 5."] * 4
BAD = ["I do not know.", "Bananas.", "Seven."] * 4


def fake_experiment(arms=("curated", "random"), seeds=(0, 1), answers=None, overrides=()):
    """assemble() on planted figures: every run's eval scores and answers."""
    cfg = load_config(
        ExperimentConfig, None, list(overrides), data="n", eval_data="h", arms=arms, seeds=seeds
    )
    answers = answers or {"curated": GOOD, "random": BAD, "longest": BAD, "full": GOOD}
    runs = [TrainingRun(arm, seed, Path(f"{arm}.jsonl"), 12) for arm in arms for seed in seeds]
    generations = {"base": [(f"h{i}", BAD[i], REFS[i]) for i in range(len(REFS))]}
    for r in runs:
        generations[r.model] = [(f"h{i}", a, REFS[i]) for i, a in enumerate(answers[r.arm])]
    from jobs.evaluation.evaluate import answer_figures

    models = [
        {
            "name": name,
            "nll": 2.0 - 0.1 * len(name),
            "perplexity": 1.0,
            **answer_figures([t[1] for t in triples], [t[2] for t in triples]),
            "base_model": "b",
            "adapter": None,
            "seconds": 1.0,
            "tokens": 9,
            "rows": 12,
            "generated": 12,
        }
        for name, triples in generations.items()
    ]
    evaluated = EvalResult.from_dict(
        {"format": 2, "eval_data": "h", "models": models, "rows": 12, "generated_rows": 12}
    )
    cost = {"rows": 12, "steps": 3, "tokens_seen": 100, "train_seconds": 3.0}
    trained = {r.model: cost for r in runs}
    return cfg, assemble(cfg, runs, trained, evaluated, generations, None)


def test_verdict_compares_mean_chrf_with_a_paired_bootstrap():
    _, result = fake_experiment(arms=("curated", "random", "longest"))
    assert [a.arm for a in result.arms] == ["base", "curated", "random", "longest"]
    assert [len(a.runs) for a in result.arms] == [0, 2, 2, 2]
    (vs_random, vs_longest) = result.comparisons
    assert (vs_random.arm, vs_random.versus, vs_longest.versus) == ("curated", "random", "longest")
    assert vs_random.difference > 0 and vs_random.ahead_share == 1.0  # better on every prompt
    assert vs_random.resamples == 1000 and vs_random.prompts == 12
    assert result.verdict.startswith("curated beats random on chrF")
    assert "ahead in 100% of 1,000 resamples of 12 prompts" in result.verdict
    assert vs_random.corpus_difference > 0 and vs_random.corpus_ahead_share == 1.0
    assert ", and is ahead of random on corpus chrF: " in result.verdict
    assert "curated beats longest" in result.verdict
    # Swapped answers: curated now behind on every prompt.
    _, result = fake_experiment(answers={"curated": BAD, "random": GOOD})
    assert result.comparisons[0].ahead_share == 0.0
    assert result.verdict.startswith("curated does not beat random")


def test_the_headline_counts_every_prompt_once_where_corpus_chrf_follows_length():
    """Short exact answers to eleven prompts against one long exact answer: per answer,
    curated is far ahead; pooled, the long answer's n-grams outweigh the rest."""
    long_ref = " ".join(f"Step {i}: stir the pot and add {i} cups of flour." for i in range(60))
    refs = [f"City number {i} is Paris." for i in range(11)] + [long_ref]
    exact, other = refs[:11] + ["No."], ["Unknown."] * 11 + [long_ref]
    cfg = load_config(
        ExperimentConfig, None, [], data="n", eval_data="h", arms=("curated", "random")
    )
    generations = {
        name: [(f"h{i}", a, r) for i, (a, r) in enumerate(zip(answers, refs, strict=True))]
        for name, answers in (("curated-seed0", exact), ("random-seed0", other), ("base", other))
    }
    from jobs.evaluation.compare import compare
    from jobs.evaluation.evaluate import answer_figures

    def arm(name):
        figures = answer_figures([t[1] for t in generations[f"{name}-seed0"]], refs)
        return arm_result(name, [SeedRun(0, f"{name}-seed0", 1.0, 2.7, **figures)])

    curated, random_arm = arm("curated"), arm("random")
    assert curated.chrf > 80 > 20 > random_arm.chrf
    assert curated.corpus_chrf < random_arm.corpus_chrf
    assert curated.length_ratio < 0.2 < 0.8 < random_arm.length_ratio
    (c,) = compare(cfg, [curated, random_arm], generations)
    assert c.difference > 0 and c.ahead_share > 0.9
    assert c.corpus_difference < 0 and c.corpus_ahead_share < 0.5
    assert c.sentence().startswith("curated beats random on chrF")
    assert ", and is not ahead of random on corpus chrF: " in c.sentence()
    assert f"({c.corpus_difference:+.2f}" in c.sentence()


def test_files_from_before_corpus_chrf_keep_their_figure_under_its_name():
    """eval.json and experiment.json written when ``chrf`` meant corpus chrF."""
    from jobs.evaluation.result import Comparison

    old = {"name": "a", "base_model": "b", "adapter": None, "nll": 1.0, "perplexity": 2.7}
    old |= {"rouge_l": 0.2, "chrf": 22.9, "tokens": 9, "rows": 3, "generated": 3, "seconds": 1}
    score = EvalResult.from_dict(
        {"eval_data": "h", "rows": 3, "generated_rows": 3, "models": [old]}
    )
    assert (score.models[0].chrf, score.models[0].corpus_chrf) == (None, 22.9)
    current = EvalResult.from_dict({**score.to_dict(), "format": 2})
    assert current == score and current.models[0].corpus_chrf == 22.9  # read as written
    fresh = {**old, "corpus_chrf": None}  # format 2: chrf is the mean, whatever else is null
    fresh_score = EvalResult.from_dict(
        {"format": 2, "eval_data": "h", "rows": 3, "generated_rows": 0, "models": [fresh]}
    )
    assert fresh_score.models[0].chrf == 22.9 and fresh_score.models[0].corpus_chrf is None
    arm = {"arm": "curated", "nll": 1.0, "perplexity": 2.7, "rouge_l": 0.2, "chrf": 22.9}
    arm |= {"chrf_min": 22.5, "chrf_max": 23.4, "runs": [{**old, "seed": 0, "model": "a"}]}
    experiment = {"data": "n", "eval_data": "h", "budget": 5, "schedule": "s", "note": "n"}
    experiment |= {"verdict": "v", "arms": [arm]}
    experiment["comparisons"] = [
        {"arm": "curated", "versus": "longest", "chrf": 22.9, "versus_chrf": 25.1,
         "difference": -2.2, "ahead_share": 0.03, "resamples": 1000, "prompts": 100}
    ]  # fmt: skip
    result = ExperimentResult.from_dict(experiment)
    curated = result.arm("curated")
    assert curated.chrf is None and curated.chrf_min is None
    assert (curated.corpus_chrf, curated.corpus_chrf_min, curated.corpus_chrf_max) == (
        22.9,
        22.5,
        23.4,
    )
    assert curated.runs[0].corpus_chrf == 22.9 and curated.runs[0].chrf is None
    (c,) = result.comparisons
    assert c == Comparison(
        arm="curated",
        versus="longest",
        resamples=1000,
        prompts=100,
        corpus_chrf=22.9,
        versus_corpus_chrf=25.1,
        corpus_difference=-2.2,
        corpus_ahead_share=0.03,
    )
    sentence = (
        "curated is not ahead of longest on corpus chrF: 22.90 vs 25.10 (-2.20, ahead in 3% "
        "of 1,000 resamples of 100 prompts)"
    )
    assert c.sentence() == sentence and result.verdict == sentence  # restated, not "v"
    assert result.format == 2 and ExperimentResult.from_dict(result.to_dict()) == result


def test_a_kept_evaluation_from_before_corpus_chrf_gets_its_figures_from_its_answers(tmp_path):
    """--resume keeps an older eval.json's models: their answer figures are recomputed."""
    from jobs.evaluation import resume as resume_state
    from quality import metrics

    answers, refs = ["Paris is the capital.", "Seven."], ["The capital is Paris.", "It is 5."]
    old = {"name": "a", "base_model": "b", "adapter": None, "nll": 1.0, "perplexity": 2.7}
    old |= {"rouge_l": 0.2, "chrf": 99.0, "tokens": 9, "rows": 3, "generated": 2, "seconds": 1}
    (tmp_path / "eval.json").write_text(json.dumps({"models": [old]}))  # format 1
    records = [
        {"model": "a", "id": f"h{i}", "generation": a, "reference": r, "chrf": 0.0}
        for i, (a, r) in enumerate(zip(answers, refs, strict=True))
    ]
    records.append({"model": "a", "id": "h2", "nll": 1.0, "reference": "no answer asked"})
    (tmp_path / "eval_samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    summary, kept = resume_state.figures_by_model(tmp_path, {"a"})["a"]
    assert kept == records
    per_answer = [metrics.chrf(a, r) for a, r in zip(answers, refs, strict=True)]
    assert summary["chrf"] == pytest.approx(sum(per_answer) / 2, abs=1e-4)
    assert summary["corpus_chrf"] == pytest.approx(metrics.corpus_chrf(answers, refs), abs=1e-4)
    assert summary["length_ratio"] == pytest.approx(27 / 29, abs=1e-4)
    assert summary["nll"] == 1.0  # the rest as it was
    new = {**old, "corpus_chrf": 5.0}
    (tmp_path / "eval.json").write_text(json.dumps({"format": 2, "models": [new]}))
    assert resume_state.figures_by_model(tmp_path, {"a"})["a"][0] == new  # current: as is
    (tmp_path / "eval.json").write_text(json.dumps({"format": "2", "models": [new]}))
    with pytest.raises(InputError, match="eval.json: format must be a whole number .*remove"):
        resume_state.figures_by_model(tmp_path, {"a"})
    with pytest.raises(ValueError, match="not True"):
        EvalResult.from_dict({"format": True, "models": []})


def test_experiment_json_round_trips(tmp_path):
    _, result = fake_experiment(arms=("curated", "random", "longest"), seeds=(3, 4))
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(result.to_dict()))
    again = ExperimentResult.from_dict(json.loads(path.read_text()))
    assert again == result
    assert again.arm("random").runs[1].seed == 4 and again.seeds == [3, 4]
    assert again.comparisons[0].ahead_share == 1.0
    with pytest.raises(KeyError, match="no arm full"):
        again.arm("full")


def test_schedule_and_the_verdict_without_answers():
    from dataclasses import replace

    from jobs.evaluation.compare import compare, nll_verdict

    cfg, result = fake_experiment()
    assert result.schedule == "equal epochs (1 per arm)"
    _, result = fake_experiment(overrides=["train.optim.max_steps=7", "bootstrap_resamples=0"])
    assert result.schedule == "equal steps (train.optim.max_steps=7)"
    assert result.comparisons[0].ahead_share is None  # bootstrap skipped
    assert "bootstrap" not in result.verdict
    # eval.generation.enabled=false: no chrF, the verdict falls back to held-out NLL.
    no_answers = [replace(a, chrf=None) for a in result.arms]
    assert compare(cfg, no_answers, {}) == []
    assert nll_verdict(no_answers).startswith("curated beats random on held-out NLL")


def test_the_table_shows_every_column_and_the_seed_range():
    _, result = fake_experiment(answers={"curated": GOOD, "random": BAD})
    console = Console(record=True, width=250)
    print_table(result, console)
    text = console.export_text()
    for column in COLUMNS:
        assert column.header in text
    curated = result.arm("curated")
    assert f"{curated.chrf:.2f}" in text and "verdict: curated beats random" in text


def test_the_table_shows_a_range_when_seeds_differ():
    runs = [
        SeedRun(0, "a-seed0", 1.2, 3.3, 0.30, 34.0),
        SeedRun(1, "a-seed1", 1.4, 4.1, 0.34, 37.0),
    ]
    chrf = next(c for c in COLUMNS if c.header == "chrF")
    assert chrf.cell(arm_result("a", runs)) == "35.50 (34.00-37.00)"
    assert chrf.cell(arm_result("a", runs[:1])) == "34.00"


# --- config and CLI ---------------------------------------------------------------------


def test_config_knows_the_arms_and_seeds():
    cfg = ExperimentConfig()
    assert cfg.arms == ("curated", "random", "longest", "full") and cfg.seeds == (0, 1)
    assert cfg.arm_seeds("full") == (0, 1)
    assert load_config(ExperimentConfig, None, ["full_seeds=1"]).arm_seeds("full") == (0,)
    with pytest.raises(ConfigError, match="seed twice"):
        load_config(ExperimentConfig, None, ["seeds=[1, 1]"])
    with pytest.raises(ConfigError, match="at least one seed"):
        load_config(ExperimentConfig, None, ["seeds=[]"])
    with pytest.raises(ConfigError, match="seeds must be int"):
        load_config(ExperimentConfig, None, ["seeds=[0, many]"])


def test_cli_takes_longest_and_seeds(monkeypatch):
    from jobs.cli import app

    seen = []
    monkeypatch.setattr(
        "jobs.evaluation.experiment.run",
        lambda cfg: seen.append(cfg) or SimpleNamespace(report="r"),
    )
    monkeypatch.setattr("jobs.evaluation.table.print_table", lambda *a, **k: None)
    args = ["experiment", "--data", "n.jsonl", "--eval-data", "h.jsonl", "--arms"]
    args += ["curated,longest", "--seeds", "3,5", "full_seeds=1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (cfg,) = seen
    assert cfg.arms == ("curated", "longest") and cfg.seeds == (3, 5) and cfg.full_seeds == 1
    result = CliRunner().invoke(app, ["experiment", "--seeds", "0,x"])
    assert isinstance(result.exception, ConfigError)  # main() prints it on one line
    assert "seeds must be int" in str(result.exception)


# --- end to end -------------------------------------------------------------------------


@pytest.mark.ray
def test_experiment_end_to_end_on_a_tiny_model(ray_session, tiny_model_dir, tmp_path):
    """Curate, 2 arms x 2 seeds of 2 steps each, eval of 5 models: every file and figure.

    (random and full differ from these only in their rows: test_plan_... covers them.)"""
    from jobs.evaluation.experiment import run

    rows = [
        {
            "instruction": f"What is {a} plus {b}?",
            "input": "",
            "output": f"{a} plus {b} is {a + b}.",
        }
        for a in range(1, 7)
        for b in range(1, 4)
    ]
    rows += [{"instruction": "What is 1 plus 1?", "input": "", "output": "TODO"}]  # conflict
    rows += [{"instruction": "What is 2 plus 9?", "input": "", "output": "It is 11."}]  # held out
    data = tmp_path / "noisy.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text(
        "".join(
            json.dumps({"instruction": f"What is {a} plus 9?", "output": f"It is {a + 9}."}) + "\n"
            for a in range(4)
        )
    )
    overrides = [
        "curate.embed.model=hashing",
        f"train.base_model={tiny_model_dir}",
        "train.optim.max_steps=2",
        "train.eval.every_steps=2",
        f"eval.base_model={tiny_model_dir}",
        "eval.generation.max_new_tokens=4",
        "eval.inference.batch_size=4",
        "bootstrap_resamples=50",
    ]
    cfg = load_config(
        ExperimentConfig,
        None,
        overrides,
        data=str(data),
        eval_data=str(heldout),
        out=str(tmp_path / "out"),
        budget=5,
        arms=("curated", "longest"),
    )
    result = run(cfg)
    out = tmp_path / "out"
    assert ExperimentResult.from_dict(json.loads((out / "experiment.json").read_text())) == (
        ExperimentResult.from_dict({**result.to_dict(), "report": None})
    )
    assert [a.arm for a in result.arms] == ["base", "curated", "longest"]
    for arm in result.arms[1:]:
        assert arm.seeds == [0, 1] and arm.steps == 2 and arm.tokens_seen > 0
        assert 0 <= arm.chrf_min <= arm.chrf <= arm.chrf_max <= 100
        assert all(
            (out / "adapters" / r.model / "adapter_model.safetensors").is_file() for r in arm.runs
        )
    assert [c.versus for c in result.comparisons] == ["longest"]
    assert all(0.0 <= c.ahead_share <= 1.0 and c.prompts == 4 for c in result.comparisons)
    assert result.verdict and "chrF" in result.verdict
    assert (out / "arms" / "longest.jsonl").is_file() and (out / "experiment.png").is_file()
    # The held-out row in the input is contaminated: no arm trains on it.
    ledger = pq.read_table(out / "ledger.parquet").to_pylist()
    assert [r["reason"] for r in ledger if "2 plus 9" in r["prompt"]] == ["contaminated"]
    trained = [out / "selected.jsonl", *(out / "arms").glob("*.jsonl")]
    assert len(trained) == 2 and not any("plus 9" in f.read_text() for f in trained)
    assert "time, all runs" in Path(result.report).read_text()


def test_resume_keeps_a_finished_run_of_the_same_data_and_settings(tmp_path, monkeypatch):
    """--resume keeps a run whose record matches; other data, settings or no --resume train."""
    import jobs.training.train as train_module
    from jobs.evaluation.experiment import train_arm

    calls = []

    def fake_train(train_cfg):
        calls.append(train_cfg.name)
        adapter = Path(train_cfg.adapters_dir) / train_cfg.name
        adapter.mkdir(parents=True, exist_ok=True)
        (adapter / "finesift.json").write_text(json.dumps({"train_rows": 2, "epochs": 1.0}))
        return SimpleNamespace(adapter_dir=adapter, steps=len(calls), eval_loss=1.5)

    monkeypatch.setattr(train_module, "train", fake_train)
    out = tmp_path / "out"
    data = out / "arms" / "curated.jsonl"
    data.parent.mkdir(parents=True)
    data.write_text('{"id": "a", "messages": []}\n' * 2)
    run = TrainingRun("curated", 0, data, 2)
    cfg = ExperimentConfig(data="x", eval_data="y", resume=True)

    first = train_arm(cfg, run, out)
    assert (out / "arms" / "curated-seed0.run.json").is_file()
    assert train_arm(cfg, run, out) == first and len(calls) == 1  # kept
    other = load_config(ExperimentConfig, None, ["resume=true", "train.optim.learning_rate=0.01"])
    assert train_arm(other, run, out)["steps"] == 2  # other settings: trained again
    data.write_text('{"id": "b", "messages": []}\n' * 2)
    assert train_arm(other, run, out)["steps"] == 3  # other data: trained again
    again = load_config(ExperimentConfig, None, ["train.optim.learning_rate=0.01"])
    assert train_arm(again, run, out)["steps"] == 4  # no --resume: trained again
    assert len(calls) == 4


def test_resume_evaluates_only_models_whose_fingerprint_changed(tmp_path, monkeypatch):
    """--resume keeps each model of an earlier eval.json whose adapter files, eval settings
    and held-out rows are unchanged; the merged eval.json lists every model in order."""
    from jobs.evaluation import evaluate
    from jobs.evaluation.config import EvalConfig
    from jobs.evaluation.experiment import evaluate_models

    held = tmp_path / "held.jsonl"
    held.write_text(
        "".join(
            json.dumps({"instruction": f"Question {i}?", "output": f"Answer {i}."}) + "\n"
            for i in range(3)
        )
    )
    adapters = tmp_path / "adapters"
    for name in ("a", "b", "c"):
        (adapters / name).mkdir(parents=True)
        (adapters / name / "adapter_model.safetensors").write_text(f"weights of {name}")
    evaluated = []

    def fake_run(cfg):
        evaluated.append(cfg.models)
        rows = evaluate.load_eval_rows(cfg.eval_data, cfg.max_rows, 0)
        chrf = {m: 10.0 * len(evaluated) for m in cfg.models}
        figures = {"base_model": "default", "adapter": None, "nll": 1.0, "perplexity": 2.7}
        figures |= {"rouge_l": 0.1, "tokens": 9, "rows": 3, "generated": 3, "seconds": 1.0}
        summaries = [{"name": m, "chrf": chrf[m], **figures} for m in cfg.models]
        samples = [{"model": m, "id": r["id"], "chrf": chrf[m]} for m in cfg.models for r in rows]
        return evaluate.finish(cfg, rows, summaries, samples)

    monkeypatch.setattr(evaluate, "run", fake_run)

    def config(models, *more):
        return load_config(
            EvalConfig,
            None,
            list(more),
            models=models,
            eval_data=str(held),
            adapters_dir=str(adapters),
            out=str(tmp_path / "out"),
        )

    evaluate_models(config(("base", "a", "b")))  # the first run: every model
    (adapters / "b" / "adapter_model.safetensors").write_text("b trained again")
    result = evaluate_models(config(("base", "a", "b", "c")), resume=True)
    assert evaluated == [("base", "a", "b"), ("b", "c")]  # b retrained, c new
    assert [m.name for m in result.models] == ["base", "a", "b", "c"]
    assert [m.chrf for m in result.models] == [10.0, 10.0, 20.0, 20.0]
    samples = (tmp_path / "out" / "eval_samples.jsonl").read_text().splitlines()
    chrfs = {"base": 10, "a": 10, "b": 20, "c": 20}
    expected = [(m, c) for m, c in chrfs.items() for _ in range(3)]
    assert [(json.loads(s)["model"], json.loads(s)["chrf"]) for s in samples] == expected
    assert not (tmp_path / "out" / "eval-new").exists()  # the partial run, merged
    evaluate_models(config(("base", "a")), resume=True)  # nothing changed: nothing to run
    assert len(evaluated) == 2
    evaluate_models(config(("base", "a"), "max_rows=2"), resume=True)  # other settings
    assert evaluated[-1] == ("base", "a")
    held.write_text(held.read_text().replace("Answer 2.", "Answer two."))  # edited in place
    evaluate_models(config(("base", "a"), "max_rows=2"), resume=True)
    assert evaluated[-1] == ("base", "a") and len(evaluated) == 4
    evaluate_models(config(("base", "a"), "max_rows=2"))  # no --resume: every model
    assert len(evaluated) == 5


def test_resume_keeps_a_curation_of_the_same_inputs_and_settings(tmp_path):
    from jobs.curation.config import CurateConfig
    from jobs.evaluation import resume

    data, held = tmp_path / "noisy.jsonl", tmp_path / "held.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n')
    held.write_text('{"instruction": "c", "output": "d"}\n')
    out = tmp_path / "out"
    out.mkdir()
    cfg = load_config(CurateConfig, None, [], inputs=(str(data),), out=str(out))
    inputs = resume.input_digests(str(data), str(held))
    assert resume.curation_matches(out, cfg, inputs) is None  # nothing curated yet
    (out / "summary.json").write_text(json.dumps({"config": to_dict(cfg), "input_rows": 1}))
    (out / "ledger.parquet").write_bytes(b"")
    assert resume.curation_matches(out, cfg, inputs) is None  # inputs never recorded
    resume.record_inputs(out, inputs)
    assert resume.curation_matches(out, cfg, inputs)["input_rows"] == 1
    other = load_config(
        CurateConfig, None, ["selection.budget=7"], inputs=(str(data),), out=str(out)
    )
    assert resume.curation_matches(out, other, inputs) is None  # other settings
    data.write_text('{"instruction": "a", "output": "changed"}\n')
    changed = resume.input_digests(str(data), str(held))
    assert resume.curation_matches(out, cfg, changed) is None  # the input edited in place
    folder = tmp_path / "inputs"  # curate also reads a directory of files
    (folder / "part").mkdir(parents=True)
    (folder / "part" / "a.jsonl").write_text('{"instruction": "a", "output": "b"}\n')
    before = resume.input_digests(str(folder), str(held))["data_sha256"]
    (folder / "part" / "a.jsonl").write_text('{"instruction": "a", "output": "B"}\n')
    assert resume.input_digests(str(folder), str(held))["data_sha256"] != before
