"""Every shipped YAML under configs/ loads into its job's config tree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.config import ConfigError, load_config
from jobs.curation.config import CurateConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def config_class(path: Path):
    """The dataclass a config file belongs to, by its file name."""
    name = path.stem
    if name.startswith("curate"):
        return CurateConfig
    if name.startswith("train"):
        from jobs.training.config import TrainConfig

        return TrainConfig
    if name.startswith("eval"):
        from jobs.evaluation.config import EvalConfig

        return EvalConfig
    if name.startswith("experiment"):
        from jobs.evaluation.config import ExperimentConfig

        return ExperimentConfig
    if name == "serve_deploy":
        return None  # Ray Serve's own format, checked in tests/serving
    if name.startswith("serve"):
        from serving.config import ServeConfig

        return ServeConfig
    raise AssertionError(f"no config class known for {path.name}; add it to config_class()")


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_yaml_loads(path: Path):
    cls = config_class(path)
    if cls is None:
        pytest.skip(f"{path.name} is checked by its own tests")
    cfg = load_config(cls, path)
    assert isinstance(cfg, cls)


def test_curate_yaml_matches_defaults():
    assert load_config(CurateConfig, CONFIGS / "curate.yaml") == CurateConfig()


def test_overrides_are_typed_and_checked():
    cfg = load_config(CurateConfig, None, ["dedup.semantic_threshold=0.9", "selection.budget=7"])
    assert cfg.dedup.semantic_threshold == 0.9
    assert cfg.selection.budget == 7
    with pytest.raises(ConfigError, match="unknown config key"):
        load_config(CurateConfig, None, ["dedup.semantic_treshold=0.9"])
    with pytest.raises(ConfigError, match="semantic_threshold"):
        load_config(CurateConfig, None, ["dedup.semantic_threshold=1.5"])
    with pytest.raises(ConfigError, match="must be int"):
        load_config(CurateConfig, None, ["selection.budget=lots"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(CurateConfig, None, ["selection.budget"])


def test_missing_config_file_names_the_path(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(CurateConfig, tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("overrides", "hint"),
    [
        (["selection.informative_weight=0.5"], "set signals.ifd=true"),
        (["signals.max_ifd=1.0"], "set signals.ifd=true"),
        (["signals.max_perplexity=500"], "set signals.ifd=true"),
        (["judge.min_score=4.5"], "set judge.enabled=true"),
        (
            [
                "signals.weight_heuristics=0",
                "signals.weight_length=0",
                "signals.weight_completeness=0",
                "signals.weight_surface=0",
                "embed.model=hashing",
            ],
            "signals.weight_heuristics > 0",
        ),
        (
            [
                "signals.weight_heuristics=0",
                "signals.weight_length=0",
                "signals.weight_completeness=0",
                "signals.weight_surface=0",
                "signals.weight_judge=0",
                "judge.enabled=true",
                "signals.relevance=false",
            ],
            "signals.weight_heuristics > 0",
        ),
        (["selection.method=diverse"], "selection.quota=gain needs selection.method=facility"),
    ],
)
def test_settings_that_would_be_ignored_are_rejected(overrides, hint):
    with pytest.raises(ConfigError, match=re.escape(hint)):
        load_config(CurateConfig, None, overrides)


def test_settings_with_their_signal_on_load():
    load_config(
        CurateConfig,
        None,
        ["signals.ifd=true", "signals.max_ifd=1.0", "selection.informative_weight=0.5"],
    )
    load_config(CurateConfig, None, ["judge.enabled=true", "judge.min_score=4.5"])
    # the judge (or relevance) alone may carry the score
    load_config(CurateConfig, None, ["signals.weight_heuristics=0", "judge.enabled=true"])
    load_config(CurateConfig, None, ["signals.weight_heuristics=0"])  # relevance on by default
