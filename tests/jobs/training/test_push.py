"""finesift train publishing to a store (a URI adapters_dir or --push URI), and
`finesift adapters --adapters-dir URI`.

The driver runs for real on the tiny model; only the Ray Train fit is replaced by a
finished checkpoint (tests/jobs/training/test_train.py runs the real one). Stores are
local directories named as file:// URIs, never a bucket.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import adapter_store
from infra.config import ConfigError, load_config
from infra.errors import FinesiftError
from jobs.training.config import TrainConfig
from tests.jobs.training.test_train import arithmetic_rows, tiny_cfg, write_jsonl
from tests.serving.conftest import make_adapter


class FinishedCheckpoint:
    """What Ray Train's fit returns: a checkpoint directory with the adapter and state."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def as_directory(self) -> Iterator[str]:
        yield str(self.path)


@pytest.fixture
def fake_fit(monkeypatch, tmp_path, tiny_model_dir):
    """Replace the Ray Train fit with a finished checkpoint; record every call."""
    from jobs.training import train as train_job

    checkpoint = make_adapter(tiny_model_dir, tmp_path / "checkpoint", seed=1)
    (checkpoint / "finesift.json").unlink()  # train writes its own manifest
    state = {
        "global_step": 3,
        "max_steps": 3,
        "log_history": [
            {"step": 0, "eval_loss": 2.0},
            {"step": 3, "loss": 1.5},
            {"step": 3, "eval_loss": 1.0},
        ],
    }
    (checkpoint / "trainer_state.json").write_text(json.dumps(state))
    calls = []

    def fit(cfg, storage_path, rows, fail_at_step, oom_at_step=None):
        from jobs.training.fit import FitOutcome

        calls.append(cfg.name)
        latest = {"trainer_state": state, "run_state": {}}
        return FitOutcome(best=FinishedCheckpoint(checkpoint), latest=latest)

    monkeypatch.setattr(train_job, "fit", fit)
    monkeypatch.setenv("FINESIFT_HOME", str(tmp_path / "home"))
    return calls


def test_a_uri_adapters_dir_uploads_the_adapter_with_its_manifest(
    tmp_path, tiny_model_dir, fake_fit, capsys
):
    from jobs.cli.training import adapters_command
    from jobs.training.train import train

    store = f"file://{tmp_path}/bucket/adapters"
    data = write_jsonl(tmp_path / "d.jsonl", arithmetic_rows(8))
    result = train(tiny_cfg(tmp_path, tiny_model_dir, data, "smol", adapters_dir=store))

    assert fake_fit == ["smol"]
    assert result.adapter_dir.is_relative_to(tmp_path / "home" / "staging")  # not ./s3:
    files = adapter_store.stored_adapters(store)["smol"]
    assert {"adapter_model.safetensors", "adapter_config.json", "finesift.json"} <= set(files)
    manifest = adapter_store.read_stored_json(store, "smol", "finesift.json")
    assert manifest["base_model"] == str(tiny_model_dir) and manifest["final_eval_loss"] == 1.0
    assert not (Path.cwd() / "file:").exists()

    adapters_command(adapters_dir=store)
    shown = capsys.readouterr().out
    assert "smol" in shown and "1.0000" in shown and "2.0000" in shown


def test_push_keeps_the_local_adapter_and_uploads_a_copy(tmp_path, tiny_model_dir, fake_fit):
    from jobs.training.push import list_stored
    from jobs.training.train import train

    store = f"file://{tmp_path}/bucket/adapters"
    data = write_jsonl(tmp_path / "d.jsonl", arithmetic_rows(8))
    result = train(tiny_cfg(tmp_path, tiny_model_dir, data, "smol", push=store))
    assert result.adapter_dir == tmp_path / "adapters" / "smol"
    assert (result.adapter_dir / "finesift.json").is_file()
    (listed,) = list_stored(store)
    assert listed["name"] == "smol" and listed["path"] == f"{store}/smol"
    assert listed["steps"] == 3 and listed["final_eval_loss"] == 1.0


def test_a_name_the_store_holds_for_other_data_is_refused_before_training(
    tmp_path, tiny_model_dir, fake_fit
):
    from jobs.training.train import train

    store = f"file://{tmp_path}/bucket/adapters"
    first = write_jsonl(tmp_path / "d.jsonl", arithmetic_rows(8))
    train(tiny_cfg(tmp_path, tiny_model_dir, first, "smol", adapters_dir=store))
    other = write_jsonl(tmp_path / "other.jsonl", arithmetic_rows(9))
    # Another machine: no local staging copy, so only the store can say the name is taken.
    cfg = tiny_cfg(tmp_path / "elsewhere", tiny_model_dir, other, "smol", push=store)
    with pytest.raises(FinesiftError, match=r"--name smol is taken: .*bucket/adapters/smol"):
        train(cfg)
    assert fake_fit == ["smol"]  # the second run never trained

    foreign = tmp_path / "bucket" / "adapters" / "foreign"
    foreign.mkdir()
    (foreign / "adapter_config.json").write_text("{}")
    with pytest.raises(FinesiftError, match="not a finesift adapter"):
        train(tiny_cfg(tmp_path, tiny_model_dir, first, "foreign", push=store))


def test_push_must_be_a_uri_and_has_an_option():
    with pytest.raises(ConfigError, match="push 'adapters' must be a storage URI"):
        load_config(TrainConfig, None, ["push=adapters"])
    from typer.testing import CliRunner

    from jobs.cli import app

    result = CliRunner().invoke(app, ["train", "--help"])
    assert "--push" in result.output
