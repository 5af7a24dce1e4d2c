"""Which adapters may be served: listing, name checks, pickle refusal (no Ray, no model)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from serving.adapters import check_model_name, resolve_adapter, scan_adapters
from serving.protocol import ApiError


def fake_adapter(path: Path, weights: str = "adapter_model.safetensors") -> Path:
    """A directory with the files of a LoRA adapter (contents irrelevant to listing)."""
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    (path / weights).write_bytes(b"weights")
    return path


def test_scan_lists_adapters_and_says_why_some_cannot_be_served(tmp_path):
    fake_adapter(tmp_path / "good")
    fake_adapter(tmp_path / "pickled", weights="adapter_model.bin")
    (tmp_path / "not-an-adapter").mkdir()
    (tmp_path / "README.md").write_text("hi")
    entries = scan_adapters(tmp_path)
    assert sorted(entries) == ["good", "pickled"]
    assert entries["good"].problem is None
    assert "pickle" in entries["pickled"].problem


def test_missing_directory_has_no_adapters(tmp_path):
    assert scan_adapters(tmp_path / "nope") == {}


def test_non_lora_config_is_not_servable(tmp_path):
    path = fake_adapter(tmp_path / "ia3")
    (path / "adapter_config.json").write_text(json.dumps({"peft_type": "IA3"}))
    assert "LoRA" in scan_adapters(tmp_path)["ia3"].problem


@pytest.mark.parametrize(
    "name",
    [
        "../good",
        "good/../good",
        "/etc/passwd",
        "..",
        ".hidden",
        "a/b",
        "a\\b",
        "x" * 200,
        "good\x00",
        "good\n",
    ],
)
def test_path_like_names_are_400(tmp_path, name):
    fake_adapter(tmp_path / "good")
    with pytest.raises(ApiError) as info:
        resolve_adapter(name, tmp_path)
    assert (info.value.status, info.value.code, info.value.param) == (
        400,
        "invalid_model_name",
        "model",
    )


def test_unknown_adapter_is_404_and_pickle_is_400(tmp_path):
    fake_adapter(tmp_path / "good")
    fake_adapter(tmp_path / "pickled", weights="adapter_model.bin")
    assert resolve_adapter("good", tmp_path).path == (tmp_path / "good").resolve()
    with pytest.raises(ApiError) as info:
        resolve_adapter("absent", tmp_path)
    assert (info.value.status, info.value.code) == (404, "model_not_found")
    with pytest.raises(ApiError) as info:
        resolve_adapter("pickled", tmp_path)
    assert (info.value.status, info.value.code) == (400, "unsafe_adapter")
    assert "safe_serialization=True" in info.value.message


def test_symlinks_may_not_leave_the_directory(tmp_path):
    outside = fake_adapter(tmp_path / "outside" / "secret")
    root = tmp_path / "adapters"
    fake_adapter(root / "real")
    os.symlink(outside, root / "escape")
    os.symlink(root / "real", root / "alias")
    assert sorted(scan_adapters(root)) == ["alias", "real"]


def test_new_adapter_is_found_without_restart(tmp_path):
    fake_adapter(tmp_path / "first")
    assert list(scan_adapters(tmp_path)) == ["first"]
    fake_adapter(tmp_path / "second")
    assert resolve_adapter("second", tmp_path).name == "second"


def test_check_model_name_accepts_ordinary_names():
    for name in ("base", "run-3", "my_adapter.v2", "A1"):
        check_model_name(name)
