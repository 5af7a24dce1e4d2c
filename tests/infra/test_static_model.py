"""The static embedder's cache: built once under a lock, checked on every load, rebuilt when bad."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from infra import static_model
from infra.static_distill import MANIFEST


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    from tests.tiny_encoders import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture
def home(tmp_path, monkeypatch, tiny_bert) -> SimpleNamespace:
    """An empty FINESIFT_HOME whose static model comes from the tiny BERT; builds counted."""
    monkeypatch.setenv("FINESIFT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(static_model, "_source_dir", lambda: tiny_bert)
    builds: list[Path] = []
    real_build = static_model._build

    def counted(source_dir, out_dir, progress):
        builds.append(out_dir)
        real_build(source_dir, out_dir, progress)

    monkeypatch.setattr(static_model, "_build", counted)
    return SimpleNamespace(path=tmp_path / "home", builds=builds)


def test_first_use_distils_once_and_then_loads_the_cache(home):
    from quality.embeddings import StaticEncoder, load_encoder

    assert static_model.describe_static_model()["state"].startswith("distilled on first use")
    encoder = load_encoder("static")
    assert isinstance(encoder, StaticEncoder) and encoder.dim == 32
    path = static_model.static_model_dir()
    assert path.parent == home.path / "models" and (path / "model.safetensors").is_file()
    manifest = json.loads((path / MANIFEST).read_text())
    assert manifest["source"]["name"] == static_model.SOURCE_NAME
    assert manifest["source"]["version"]  # the bundled package's version
    again = load_encoder("static")
    np.testing.assert_array_equal(encoder.encode(["a list"]), again.encode(["a list"]))
    assert len(home.builds) == 1  # the second load trusted the cache
    row = static_model.describe_static_model()
    assert row["cached"] is True and row["state"].startswith("ready: 32 dims")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda d: (d / "model.safetensors").write_bytes(b"\0" * 64), "does not match"),
        (lambda d: (d / "tokenizer.json").unlink(), "tokenizer.json is missing"),
        (lambda d: (d / MANIFEST).write_text("{half a manif"), "no readable manifest"),
        (lambda d: _edit_manifest(d, settings={"pca_dims": 64}), "other settings"),
        (lambda d: _edit_manifest(d, source={"version": "0.0.1"}), "another version"),
    ],
    ids=["corrupt-weights", "partial", "bad-manifest", "other-settings", "other-source"],
)
def test_a_corrupt_partial_or_stale_cache_is_rebuilt_not_trusted(home, damage, reason):
    path = static_model.ensure_static_model()
    good = (path / "model.safetensors").read_bytes()
    damage(path)
    assert reason in static_model.cache_problem(path)
    assert reason in static_model.describe_static_model()["state"]
    assert static_model.ensure_static_model() == path
    assert static_model.cache_problem(path) is None and len(home.builds) == 2
    assert (path / "model.safetensors").read_bytes() == good  # deterministic rebuild
    leftovers = [p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")]
    assert leftovers == [path.name]  # the bad copy and the temp dir are gone


def _edit_manifest(out_dir: Path, **changes) -> None:
    manifest = json.loads((out_dir / MANIFEST).read_text())
    for key, value in changes.items():
        manifest[key] = {**manifest[key], **value}
    (out_dir / MANIFEST).write_text(json.dumps(manifest))


def test_concurrent_first_uses_distil_once(home):
    threads = [threading.Thread(target=static_model.ensure_static_model) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(home.builds) == 1
    assert static_model.cache_problem(static_model.static_model_dir()) is None


def test_a_failed_distillation_leaves_nothing_behind(home, monkeypatch):
    def broken(source_dir, out_dir, **kwargs):
        (Path(out_dir) / "model.safetensors").write_text("half")
        raise RuntimeError("disk full")

    monkeypatch.setattr("infra.static_distill.distill", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        static_model.ensure_static_model()
    models = home.path / "models"
    assert [p.name for p in models.iterdir() if not p.name.endswith(".lock")] == []


def test_finesift_models_lists_the_static_embedder_with_its_state(home):
    from typer.testing import CliRunner

    from jobs.cli import app

    out = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"}).output
    assert "static" in out and "distilled on first use" in out
    static_model.ensure_static_model()
    out = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"}).output
    assert "ready: 32 dims" in out and "finesift_static.json" in out


@pytest.mark.slow
def test_the_bundled_minilm_distils_into_a_static_model_that_agrees_with_it(tmp_path, monkeypatch):
    from quality.embeddings import load_encoder

    monkeypatch.setenv("FINESIFT_HOME", str(tmp_path))
    static = load_encoder("static")
    manifest = static_model.read_manifest()
    assert manifest["result"]["dims"] == 256 and manifest["result"]["vocabulary_size"] > 29_000
    assert manifest["source"]["version"] == "0.1.0"
    texts = [
        "How do I reverse a list in Python?",
        "What is the best way to reverse a Python list?",
        "Name three rivers in Africa.",
        "Give me a recipe for banana bread.",
        "List some large rivers of the African continent.",
        "How do you bake a loaf of banana bread?",
    ]
    s = static.encode(texts)
    m = load_encoder("default").encode(texts)
    # Paraphrases (0-1, 2-4, 3-5) are each other's nearest neighbours for both encoders.
    for vectors in (s, m):
        sims = vectors @ vectors.T - 2 * np.eye(len(texts))
        assert list(sims.argmax(axis=1)) == [1, 0, 4, 5, 2, 3]
    assert static_model.cache_problem(static_model.static_model_dir()) is None
