"""One adapter-name rule: a name training accepts is one serving accepts, and back."""

from __future__ import annotations

import pytest

from infra.adapters import valid_name
from infra.config import ConfigError
from jobs.training.config import TrainConfig
from serving.adapters import check_model_name
from serving.config import ServeConfig
from serving.errors import ApiError

NAMES = ["smol-demo", "v1.2_b", "a" * 128, "a" * 129, "a..b", ".hidden", "a/b", "../x", "", "é"]


@pytest.mark.parametrize("name", NAMES)
def test_training_and_serving_agree_on_every_name(name: str) -> None:
    def train_accepts() -> bool:
        try:
            TrainConfig(name=name)
        except ConfigError:
            return False
        return True

    def serve_accepts() -> bool:
        try:
            check_model_name(name)
            ServeConfig(base_name=name)
        except (ApiError, ConfigError):
            return False
        return True

    assert train_accepts() == serve_accepts() == valid_name(name)


def test_the_rule_is_what_it_says() -> None:
    assert [n for n in NAMES if valid_name(n)] == ["smol-demo", "v1.2_b", "a" * 128]
