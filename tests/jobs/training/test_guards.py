"""The driver's guards before Ray starts: trackers, the data audit, held-out overlap."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.config import load_config
from infra.errors import FinesiftError
from jobs.training.config import TrainConfig


def chat(question: str, answer: str, **extra) -> dict:
    return {
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ],
        **extra,
    }


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def cfg_for(tmp_path: Path, model_dir: Path, data: Path, *overrides: str, **fields) -> TrainConfig:
    return load_config(
        TrainConfig,
        None,
        [f"scaling.storage_path={tmp_path}/runs", "eval.fraction=0.25", *overrides],
        **{
            "data": str(data),
            "name": "g",
            "base_model": str(model_dir),
            "adapters_dir": str(tmp_path / "adapters"),
            **fields,
        },
    )


@pytest.fixture
def no_ray(monkeypatch):
    """Fail the test if training would start (the guard must stop it first)."""
    from jobs.training import train as train_job

    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(train_job, "fit", refuse)


UNCURATED = [
    chat("What is the boiling point of water?", "100 degrees Celsius at sea level.", id="a"),
    chat("what is the boiling point of water", "100 degrees celsius at sea level", id="b"),
    chat("Describe a cat.", "N/A", id="c"),
    chat("Who wrote Hamlet?", "William Shakespeare wrote Hamlet.", id="d"),
    chat("Who wrote Hamlet?", "Christopher Marlowe wrote it in 1620.", id="e"),
    chat("Name a color.", "Blue.", id="f"),
    chat("Describe a dog.", "", id="g"),  # skipped by the loader: counts as an empty answer
]


def test_wandb_without_its_package_is_a_one_line_error(tmp_path, tiny_model_dir, no_ray):
    from jobs.training.train import train

    assert importlib.util.find_spec("wandb") is None  # the premise: wandb is not installed
    data = tmp_path / "absent.jsonl"  # the tracker is checked before anything is read
    with pytest.raises(FinesiftError, match=r"pip install wandb") as info:
        train(cfg_for(tmp_path, tiny_model_dir, data, "tracking=wandb"))
    assert "\n" not in str(info.value)
    # From the command line: one line on stderr, exit code 2, no traceback.
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "train", "--data", str(data), "--name", "g"]
        + ["--tracking", "wandb"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root)},
        check=False,
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0] == (
        "error: tracking=wandb needs the wandb package: run `pip install wandb`, or set "
        "tracking=none"
    )


def test_tracking_values_follow_report_to():
    from jobs.training.tracking import report_to, worker_env

    cfg = load_config(TrainConfig, None, ["tracking=tensorboard,mlflow"], name="n")
    assert cfg.trackers == ("tensorboard", "mlflow")
    assert report_to(cfg, 0) == ["tensorboard", "mlflow"] and report_to(cfg, 1) == "none"
    env = worker_env(cfg, "/runs/train")
    assert env["TENSORBOARD_LOGGING_DIR"] == "/runs/train/n/tensorboard"  # beside checkpoints
    assert env["MLFLOW_TRACKING_URI"].startswith("file://")
    assert report_to(load_config(TrainConfig, None, []), 0) == "none"


def test_tensorboard_with_remote_storage_needs_a_directory(tmp_path):
    from jobs.training.tracking import check_installed

    cfg = load_config(
        TrainConfig, None, ["tracking=tensorboard", "scaling.storage_path=s3://bucket/runs"]
    )
    with pytest.raises(FinesiftError, match="set tracking_dir=DIR"):
        check_installed(cfg)
    check_installed(load_config(TrainConfig, None, ["tracking=tensorboard"]))  # installed


def test_strict_refuses_uncurated_data_with_problems(tmp_path, tiny_model_dir, no_ray, capsys):
    from jobs.training.train import train

    data = write(tmp_path / "raw.jsonl", UNCURATED)
    with pytest.raises(FinesiftError, match=r"--strict: the data audit found problems") as info:
        train(cfg_for(tmp_path, tiny_model_dir, data, strict=True))
    assert "1 exact duplicates, 2 empty or placeholder answers, 1 conflicting" in str(info.value)
    assert "finesift curate" in str(info.value)
    out = capsys.readouterr().out
    assert "did not come from finesift curate" in " ".join(out.split())


def test_the_audit_runs_on_uncurated_data_only(tmp_path, tiny_model_dir):
    from jobs.training.rows import prepare_rows

    raw = write(tmp_path / "raw.jsonl", UNCURATED)
    audit = prepare_rows(cfg_for(tmp_path, tiny_model_dir, raw), str(tiny_model_dir)).audit
    assert audit is not None and audit.rows == 7
    assert (audit.exact_duplicates, audit.empty_answers, audit.conflicts) == (1, 2, 1)
    curated = write(
        tmp_path / "selected.jsonl",
        [
            {
                **chat(f"Add {i} and {i}.", f"It is {2 * i}."),
                "id": f"r{i}",
                "source": "x",
                "quality": 0.9,
                "cluster": 0,
            }
            for i in range(6)
        ],
    )
    prepared = prepare_rows(cfg_for(tmp_path, tiny_model_dir, curated), str(tiny_model_dir))
    assert prepared.audit is None


def test_eval_rows_that_also_appear_in_the_data_are_warned_about(tmp_path, tiny_model_dir):
    from jobs.training.rows import prepare_rows

    rows = [chat(f"Add {i} and {i}.", f"The answer is {2 * i}.", id=f"r{i}") for i in range(8)]
    data = write(tmp_path / "d.jsonl", rows)
    held = write(
        tmp_path / "held.jsonl",
        [rows[0], chat("Add 1 and 1.", "Two."), chat("Add 9 and 9.", "The answer is 18.")],
    )
    notes = prepare_rows(
        cfg_for(tmp_path, tiny_model_dir, data, eval_data=str(held)), str(tiny_model_dir)
    ).notes
    warning = next(n for n in notes if "--eval-data rows also appear in --data" in n)
    assert warning.startswith("2 of 3 --eval-data rows")
    assert "(1 identical, 1 with the same instruction)" in warning
    assert f"filters.decontaminate={held}" in warning


def test_strict_and_tracking_are_options_of_the_train_command(monkeypatch):
    from typer.testing import CliRunner

    from jobs.cli import app
    from jobs.training import train as train_job

    seen = {}
    monkeypatch.setattr(train_job, "train", lambda cfg: seen.setdefault("cfg", cfg))
    args = ["train", "--data", "d.jsonl", "--name", "n", "--strict", "--tracking", "tensorboard"]
    result = CliRunner().invoke(app, [*args, "early_stop.patience=5", "text.train_on=last"])
    assert result.exit_code == 0, result.output
    cfg = seen["cfg"]
    assert cfg.strict and cfg.trackers == ("tensorboard",)
    assert (cfg.early_stop.patience, cfg.text.train_on) == (5, "last")
