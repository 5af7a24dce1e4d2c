"""infra.config coercion: a value of the wrong kind is refused naming its key, for every
numeric field of every job's config tree (a boolean is not a number, NaN is no setting)."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator

import pytest

from infra.config import ConfigError, load_config
from jobs.curation.config import CurateConfig
from jobs.evaluation.config import EvalConfig, ExperimentConfig
from jobs.training.config import TrainConfig
from serving.config import ServeConfig

TREES = (CurateConfig, TrainConfig, EvalConfig, ExperimentConfig, ServeConfig)


def numeric_fields(cls: type, prefix: str = "") -> Iterator[tuple[str, type]]:
    """(dotted key, int or float) of every numeric field in a config tree."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            yield from numeric_fields(hint, f"{prefix}{f.name}.")
            continue
        inner = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        if len(inner) == 1 and inner[0] in (int, float):
            yield f"{prefix}{f.name}", inner[0]


CASES = [(cls, key, kind) for cls in TREES for key, kind in numeric_fields(cls)]


def test_the_trees_have_numeric_fields_to_check() -> None:
    keys = {key for _, key, _ in CASES}
    assert {"selection.budget", "embed.batch_size", "dedup.semantic_threshold"} <= keys
    assert len(CASES) > 60


@pytest.mark.parametrize(
    "cls, key, kind", CASES, ids=[f"{cls.__name__}:{key}" for cls, key, _ in CASES]
)
def test_a_boolean_or_nan_is_not_a_number(cls: type, key: str, kind: type) -> None:
    for value in ("true", "false"):
        with pytest.raises(ConfigError, match=rf"{key} must be {kind.__name__}.*boolean"):
            load_config(cls, None, [f"{key}={value}"])
    if kind is float:
        with pytest.raises(ConfigError, match=rf"{key} must be a number, got NaN"):
            load_config(cls, None, [f"{key}=.nan"])


def test_selection_budget_true_is_refused_with_a_one_line_message() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(CurateConfig, None, ["selection.budget=true"])
    assert str(err.value) == "selection.budget must be int, got True (a boolean)"


def test_values_inside_a_mapping_are_coerced_and_checked() -> None:
    cfg = load_config(CurateConfig, None, ["heuristics.weights={short_response: 1}"])
    assert cfg.heuristics.weights == {"short_response": 1.0}
    assert isinstance(cfg.heuristics.weights["short_response"], float)
    with pytest.raises(ConfigError, match=r"heuristics.weights.short_response must be float"):
        load_config(CurateConfig, None, ["heuristics.weights={short_response: abc}"])
    with pytest.raises(ConfigError, match=r"heuristics.thresholds.* boolean"):
        load_config(CurateConfig, None, ["heuristics.thresholds={short_response: yes}"])
    with pytest.raises(ConfigError, match=r"heuristics.weights must be a mapping"):
        load_config(CurateConfig, None, ["heuristics.weights=[short_response]"])
    with pytest.raises(ConfigError, match=r"read.field_map.question must be str, got 7"):
        load_config(CurateConfig, None, ["read.field_map={question: 7}"])
