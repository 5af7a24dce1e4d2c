"""`finesift review`: the demo review through the HTTP API, export, and one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from infra.errors import FinesiftError
from jobs.cli import app
from jobs.review.auto import AUTO_REASON
from jobs.review.server import bind, is_loopback
from tests.jobs.review.runs import build_run

runner = CliRunner()


def test_auto_reviews_through_the_api_and_exports(tmp_path, monkeypatch):
    monkeypatch.setenv("FINESIFT_API_KEY", "k")  # the client must send the key
    run_dir = build_run(tmp_path / "run")
    result = runner.invoke(app, ["review", str(run_dir), "--auto", "3", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert "review page: http://127.0.0.1:" in result.output
    assert "refilled by" in result.output and "exported 2 verified rows" in result.output
    sidecar = json.loads((run_dir / "verified.review.json").read_text())
    assert sidecar["counts"] == {"accepted": 2, "edited": 0, "rejected": 1, "unreviewed": 6}
    assert sidecar["rejection_reasons"] == {AUTO_REASON: 1}
    assert sidecar["reviewers"] == ["auto"]


def test_export_without_a_server(tmp_path):
    run_dir = build_run(tmp_path / "run")
    result = runner.invoke(app, ["review", str(run_dir), "--export"])
    assert result.exit_code == 0, result.output
    assert "exported 0 verified rows" in result.output
    assert (run_dir / "verified.jsonl").read_text() == ""


def test_a_public_host_needs_a_key(tmp_path, monkeypatch):
    monkeypatch.delenv("FINESIFT_API_KEY", raising=False)
    run_dir = build_run(tmp_path / "run")
    result = runner.invoke(app, ["review", str(run_dir), "--host", "0.0.0.0", "--export"])
    assert isinstance(result.exception, FinesiftError)
    assert "set FINESIFT_API_KEY" in str(result.exception)


def test_a_missing_run_is_named(tmp_path):
    result = runner.invoke(app, ["review", str(tmp_path / "nowhere")])
    assert isinstance(result.exception, FinesiftError)
    assert "does not exist" in str(result.exception)


def test_a_taken_port_is_a_clear_error():
    taken = bind("127.0.0.1", 0)
    try:
        with pytest.raises(FinesiftError, match="pass another --port"):
            bind("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


def test_loopback_hosts():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")
