"""Commands generated from config dataclasses: options, help, one override path."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.config import ConfigError, describe_field
from jobs.cli import app, cluster, curation, evaluation, serving, training
from jobs.cli.options import split_overrides

SPECS = {
    "curate": curation.CURATE,
    "train": training.TRAIN,
    "eval": evaluation.EVAL,
    "experiment": evaluation.EXPERIMENT,
    "pipeline": cluster.PIPELINE,
    "serve": serving.SERVE,
}


def test_uris_with_equals_signs_are_inputs_not_overrides(tmp_path: Path) -> None:
    odd = tmp_path / "day=1.jsonl"
    odd.write_text("{}\n")
    paths, overrides = split_overrides(
        [
            "s3://bucket/date=2024-01-01/",
            "data.jsonl",
            str(odd),
            "dedup.semantic_threshold=0.9",
            "filters.reference=s3://bucket/ref.jsonl",
        ]
    )
    assert paths == ["s3://bucket/date=2024-01-01/", "data.jsonl", str(odd)]
    assert overrides == ["dedup.semantic_threshold=0.9", "filters.reference=s3://bucket/ref.jsonl"]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_option_is_a_documented_config_field(name: str) -> None:
    spec = SPECS[name]
    for opt in spec.options:
        _, doc = describe_field(spec.cls, opt.key)  # raises for a key the config lacks
        assert opt.help or doc, f"{name} --{opt.name}: no help and no field docstring"


def test_an_options_help_is_the_fields_docstring() -> None:
    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    _, doc = describe_field(training.TRAIN.cls, "optim.max_steps")
    assert result.exit_code == 0
    assert doc and doc in " ".join(result.output.split())


def test_options_overrides_and_yaml_meet_in_one_config(tmp_path: Path, monkeypatch) -> None:
    seen = []
    monkeypatch.setattr("jobs.curation.curate.run", seen.append)
    monkeypatch.setattr("jobs.curation.outputs.print_summary", lambda *a, **k: None)
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("selection:\n  budget: 3\ndedup:\n  fuzzy: false\n")
    args = ["curate", "a.jsonl", "b.jsonl", "--out", "o", "--budget", "7", "--format", "alpaca"]
    args += ["dedup.semantic_threshold=0.9", "--config", str(yaml_file)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (cfg,) = seen
    assert cfg.inputs == ("a.jsonl", "b.jsonl") and cfg.out == "o"
    assert cfg.selection.budget == 7  # the option beats the YAML file
    assert cfg.read.format == "alpaca" and cfg.dedup.semantic_threshold == 0.9
    assert cfg.dedup.fuzzy is False  # from the YAML file


def test_python_callers_name_options_like_the_cli() -> None:
    cfg = evaluation.EVAL.config(models="base, smol", max_rows=5, args=["inference.num_actors=2"])
    assert cfg.models == ("base", "smol") and cfg.max_rows == 5 and cfg.inference.num_actors == 2
    with pytest.raises(ConfigError, match="unknown option.*budgt"):
        curation.CURATE.config(budgt=5)


def test_a_command_without_positional_fields_refuses_stray_arguments() -> None:
    with pytest.raises(ConfigError, match="unexpected argument.*stray"):
        training.TRAIN.config(args=["stray"])


def test_bool_options_have_both_spellings() -> None:
    cfg = training.TRAIN.config(args=[], use_gpu=True)
    assert cfg.scaling.use_gpu is True
    seen = []
    import jobs.pipeline

    runner = CliRunner()
    original = jobs.pipeline.run
    try:
        jobs.pipeline.run = lambda cfg: seen.append(cfg) or {"seconds": 0.0}
        result = runner.invoke(app, ["pipeline", "--data", "x", "--name", "n", "--no-deploy"])
    finally:
        jobs.pipeline.run = original
    assert result.exit_code == 0, result.output
    assert seen[0].deploy is False and seen[0].data == ("x",)
