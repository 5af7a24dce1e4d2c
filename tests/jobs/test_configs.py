"""Every shipped YAML under configs/ loads into its job's config tree (Ray Serve config
files: each application's args load into ServeConfig)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

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
    if name.startswith("serve"):
        from serving.config import ServeConfig

        return ServeConfig
    raise AssertionError(f"no config class known for {path.name}; add it to config_class()")


def serve_apps(path: Path) -> list[dict] | None:
    """The applications of a Ray Serve config file (``serve deploy`` format), else None."""
    data = yaml.safe_load(path.read_text())
    return data.get("applications") if isinstance(data, dict) else None


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_yaml_loads(path: Path):
    cls = config_class(path)
    apps = serve_apps(path)
    if apps is None:
        cfg = load_config(cls, path)
        assert isinstance(cfg, cls)
        return
    # Ray Serve's own format: valid for Serve, and serving.app:build_app's args are keys of
    # the config class, as build_app turns them into overrides.
    from ray.serve.schema import ServeDeploySchema

    ServeDeploySchema.model_validate(yaml.safe_load(path.read_text()))
    for app in apps:
        assert app["import_path"] == "serving.app:build_app"
        overrides = [
            f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in app["args"].items()
        ]
        assert isinstance(load_config(cls, None, overrides), cls)


def test_serve_vllm_yaml_builds_rays_llm_config():
    from ray.llm._internal.serve.core.configs.llm_config import LLMConfig

    from serving.config import ServeConfig
    from serving.llm_app import serving_args

    (app,) = serve_apps(CONFIGS / "serve_vllm.yaml")
    overrides = [
        f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in app["args"].items()
    ]
    cfg = load_config(ServeConfig, None, overrides)
    assert cfg.backend == "vllm" and cfg.adapters_dir.startswith("s3://")
    (config,) = serving_args(cfg, "/models/base", 16, None)["llm_configs"]
    llm = LLMConfig.model_validate(config)
    assert llm.accelerator_type == cfg.vllm.accelerator_type
    assert llm.lora_config.dynamic_lora_loading_path == cfg.adapters_dir
    assert llm.deployment_config["autoscaling_config"]["max_replicas"] == cfg.scaling.max_replicas


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
