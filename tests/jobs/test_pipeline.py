"""``finesift pipeline``: its config tree and the held-out split (unit tier).

The pipeline itself runs end to end on a real cluster in tests/jobs/test_submit.py.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from infra.config import ConfigError, load_config
from infra.errors import InputError
from jobs.pipeline import PipelineConfig, split_selection


def test_one_tree_holds_every_steps_config():
    cfg = load_config(
        PipelineConfig,
        None,
        [
            "curate.embed.model=hashing",
            "train.optim.max_steps=3",
            "eval.generation.max_new_tokens=8",
            "serve.port=8001",
        ],
        data=("a.jsonl",),
        name="smol",
    )
    assert cfg.curate.embed.model == "hashing"
    assert cfg.train.optim.max_steps == 3
    assert cfg.eval.generation.max_new_tokens == 8
    assert cfg.serve.port == 8001
    assert cfg.data == ("a.jsonl",) and cfg.deploy is True


def test_bad_values_name_the_key():
    with pytest.raises(ConfigError, match="train.optim.nope"):
        load_config(PipelineConfig, None, ["train.optim.nope=1"])
    with pytest.raises(ConfigError, match="--name"):
        load_config(PipelineConfig, None, [], name="a/b")
    with pytest.raises(ConfigError, match="eval_fraction"):
        load_config(PipelineConfig, None, ["eval_fraction=1.5"])
    with pytest.raises(ConfigError, match="no input data"):
        PipelineConfig(name="x").require_inputs()


def test_a_vllm_deploy_pushes_the_adapter_to_the_bucket_it_serves():
    from jobs.pipeline import pushed_for_serving

    store = "s3://bucket/adapters"
    cfg = load_config(PipelineConfig, None, ["serve.backend=vllm", f"serve.adapters_dir={store}"])
    assert pushed_for_serving(cfg) == {"push": store}
    assert pushed_for_serving(PipelineConfig()) == {}
    with pytest.raises(ConfigError, match="leave train.push unset"):
        load_config(
            PipelineConfig,
            None,
            ["serve.backend=vllm", f"serve.adapters_dir={store}", "train.push=s3://other/x"],
        )


def test_cli_reports_missing_inputs_without_running_anything():
    from jobs.cli import app

    result = CliRunner().invoke(app, ["pipeline", "--name", "x"])
    assert isinstance(result.exception, ConfigError)
    assert "--data" in str(result.exception)


def write_selected(path, n):
    with path.open("w") as f:
        for i in range(n):
            messages = [
                {"role": "user", "content": f"Question number {i}?"},
                {"role": "assistant", "content": f"Answer number {i}."},
            ]
            f.write(json.dumps({"id": f"row-{i}", "messages": messages}) + "\n")


def read_ids(path):
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_split_holds_out_rows_train_never_sees(tmp_path):
    selected = tmp_path / "selected.jsonl"
    write_selected(selected, 20)
    cfg = PipelineConfig(data=("x",), name="n", eval_fraction=0.2)
    train, heldout, n_held = split_selection(selected, tmp_path / "split", cfg)
    train_ids, held_ids = (
        read_ids(tmp_path / "split" / "train.jsonl"),
        read_ids(tmp_path / "split" / "heldout.jsonl"),
    )
    assert n_held == len(held_ids) == 4
    assert not set(train_ids) & set(held_ids)
    assert sorted(train_ids + held_ids) == sorted(f"row-{i}" for i in range(20))
    row = json.loads((tmp_path / "split" / "heldout.jsonl").read_text().splitlines()[0])
    assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
    # Same rows and seed, same split; another seed, another split.
    split_selection(selected, tmp_path / "again", cfg)
    assert read_ids(tmp_path / "again" / "heldout.jsonl") == held_ids
    other = PipelineConfig(data=("x",), name="n", eval_fraction=0.2, seed=1)
    split_selection(selected, tmp_path / "other", other)
    assert read_ids(tmp_path / "other" / "heldout.jsonl") != held_ids
    assert train.endswith("train.jsonl") and heldout.endswith("heldout.jsonl")


def test_split_needs_two_rows(tmp_path):
    selected = tmp_path / "selected.jsonl"
    write_selected(selected, 1)
    with pytest.raises(InputError, match="raise --budget"):
        split_selection(selected, tmp_path / "split", PipelineConfig(data=("x",), name="n"))
