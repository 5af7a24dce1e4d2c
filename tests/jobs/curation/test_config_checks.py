"""Bad curate settings fail when the config is built or the stages are declared, before Ray
starts, with one line naming the key and the fix (issue 20: before, some failed only
inside Ray workers, after the read)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.config import ConfigError, load_config
from infra.errors import FinesiftError, InputError, ModelNotFoundError
from jobs.curation.config import CurateConfig


def config(*overrides: str, inputs: tuple[str, ...] = (), out: str = "out") -> CurateConfig:
    return load_config(CurateConfig, None, list(overrides), inputs=inputs, out=out)


@pytest.mark.parametrize(
    "override, message",
    [
        ("heuristics.weights={no_such_rule: 0.5}", r"heuristics.weights names unknown rule"),
        (
            "heuristics.weights={short_response: 1.5}",
            r"heuristics.weights.short_response .*\[0, 1\]",
        ),
        ("heuristics.weights={short_response: -0.1}", r"heuristics.weights.short_response"),
        ("heuristics.thresholds={nope: 3}", r"heuristics.thresholds names unknown rule\(s\) nope"),
        ("heuristics.thresholds={short_response: -1}", r"thresholds.short_response .*>= 0"),
        ("heuristics.thresholds={short_response: .inf}", r"thresholds.short_response .*finite"),
        ("read.field_map={question: instrution}", r"read.field_map.question .*'instrution'"),
        ("read.field_map=[question]", r"read.field_map must be a mapping"),
        (
            "read.field_map={q: instruction, question: instruction}",
            r"several fields to instruction",
        ),
        ("read.id_field=''", r"read.id_field must be a name"),
    ],
)
def test_bad_values_inside_maps_are_refused_naming_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        config(override)
    assert "\n" not in str(err.value)


def test_good_maps_pass() -> None:
    cfg = config(
        "heuristics.weights={short_response: 0}",
        "heuristics.thresholds={short_response: 5}",
        "read.field_map={question: instruction, answer: output, uid: id}",
    )
    assert cfg.heuristics.weights == {"short_response": 0.0}
    assert cfg.read.field_map["uid"] == "id"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"instruction": "q", "output": "a"}) + "\n")
    return path


def test_a_missing_embed_model_fails_when_the_stages_are_declared(
    data: Path, tmp_path: Path
) -> None:
    from jobs.curation.pipeline import build_stages

    cfg = config("embed.model=/nonexistent/model", inputs=(str(data),), out=str(tmp_path / "o"))
    with pytest.raises(ModelNotFoundError, match="/nonexistent/model") as err:
        build_stages(cfg)  # runs on the driver: curate calls it before init_ray
    assert "embed.model" in str(err.value)


def test_out_inside_the_input_directory_fails_when_the_stages_are_declared(
    data: Path,
) -> None:
    from jobs.curation.pipeline import build_stages

    folder = str(data.parent)
    cfg = config("embed.model=hashing", inputs=(folder,), out=str(data.parent / "curated"))
    with pytest.raises(InputError, match="inside the input directory"):
        build_stages(cfg)


def test_every_input_empty_fails_before_ray(tmp_path: Path) -> None:
    from jobs.curation.pipeline import build_stages

    (tmp_path / "in").mkdir()
    for name in ("a.jsonl", "b.csv", "c.json"):
        (tmp_path / "in" / name).write_bytes(b"")
    cfg = config("embed.model=hashing", inputs=(str(tmp_path / "in"),), out=str(tmp_path / "o"))
    with pytest.raises(InputError, match=r"every input file is empty \(0 bytes\)"):
        build_stages(cfg)


def test_the_curate_command_prints_one_line(data: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from jobs.cli import app

    args = ["curate", str(data), "--out", str(tmp_path / "o"), "selection.budget=true"]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, FinesiftError)
    assert str(result.exception) == "selection.budget must be int, got True (a boolean)"


def test_the_relevance_method_and_its_threshold_follow_the_encoder():
    assert (config().relevance_method, config().relevance_threshold) == ("cross", -0.2)
    static = config("embed.model=static")
    assert (static.relevance_method, static.relevance_threshold) == ("paired", -0.8)
    chosen = config("embed.model=static", "signals.relevance_method=cross")
    assert (chosen.relevance_method, chosen.relevance_threshold) == ("cross", -0.2)
    assert config("signals.relevance_threshold=-0.5").relevance_threshold == -0.5
    with pytest.raises(ConfigError, match="signals.relevance_method must be cross or paired"):
        config("signals.relevance_method=pairs")


def test_the_semantic_threshold_follows_the_encoder_unless_set():
    assert config().semantic_threshold == 0.95
    assert config("embed.model=static").semantic_threshold == 0.97
    assert config("embed.model=static", "dedup.semantic_threshold=0.9").semantic_threshold == 0.9
    with pytest.raises(ConfigError, match="dedup.semantic_threshold must be in"):
        config("dedup.semantic_threshold=0")
