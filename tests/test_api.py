"""finesift's Python API: the commands as functions, configured like the commands."""

from __future__ import annotations

import pytest

import finesift
from infra.config import ConfigError


def test_api_functions_build_the_same_config_as_the_command(monkeypatch):
    seen = []
    monkeypatch.setattr("jobs.curation.curate.run", seen.append)
    monkeypatch.setattr("jobs.training.train.train", seen.append)
    monkeypatch.setattr("jobs.evaluation.evaluate.run", seen.append)

    finesift.curate("a.jsonl", "b.jsonl", out="o", budget=7, overrides=["dedup.fuzzy=false"])
    finesift.train(data="s.jsonl", name="n", max_steps=3, overrides={"lora.r": 4})
    finesift.evaluate(models="base,n", eval_data="h.jsonl")
    curate_cfg, train_cfg, eval_cfg = seen
    assert curate_cfg.inputs == ("a.jsonl", "b.jsonl") and curate_cfg.selection.budget == 7
    assert curate_cfg.dedup.fuzzy is False and curate_cfg.out == "o"
    assert (train_cfg.data, train_cfg.optim.max_steps, train_cfg.lora.r) == ("s.jsonl", 3, 4)
    assert eval_cfg.models == ("base", "n")


def test_api_refuses_an_option_the_command_does_not_have():
    with pytest.raises(ConfigError, match="unknown option"):
        finesift.train(learning_rate=0.1)  # a setting, not an option: overrides=...
