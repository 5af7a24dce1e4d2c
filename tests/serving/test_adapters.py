"""Which adapters may be served: listing, name checks, pickle refusal (no Ray, no model)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from serving.adapters import check_model_name, resolve_adapter, scan_adapters
from serving.protocol import ApiError


def fake_adapter(path: Path, weights: str = "adapter_model.safetensors") -> Path:
    """A directory with the files of a LoRA adapter: a config and a small safetensors file
    with LoRA tensor names (listing checks the header, not whether shapes fit a model)."""
    import torch
    from safetensors.torch import save_file

    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    if weights.endswith(".safetensors"):
        lora = {f"base_model.model.q_proj.lora_{ab}.weight": torch.zeros(4, 4) for ab in "AB"}
        save_file(lora, str(path / weights))
    else:
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


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage", "not a valid safetensors file"),
        (b"", "not a valid safetensors file"),
        (None, "not a valid safetensors file"),  # a valid file cut short
        ("no-lora", "no LoRA weights"),
    ],
)
def test_weights_that_cannot_load_are_never_listed_as_servable(tmp_path, content, why):
    path = fake_adapter(tmp_path / "adapters" / "bad")
    weights = path / "adapter_model.safetensors"
    if content is None:
        weights.write_bytes(weights.read_bytes()[:-8])
    elif content == "no-lora":
        import torch
        from safetensors.torch import save_file

        save_file({"some.weight": torch.zeros(2)}, str(weights))
    else:
        weights.write_bytes(content)
    entry = scan_adapters(tmp_path / "adapters")["bad"]
    assert why in entry.problem
    assert str(tmp_path) not in entry.problem
    with pytest.raises(ApiError) as info:
        resolve_adapter("bad", tmp_path / "adapters")
    assert (info.value.status, info.value.code) == (400, "invalid_adapter")
    assert str(tmp_path) not in info.value.message


@pytest.mark.parametrize("linked", ["adapter_model.safetensors", "adapter_config.json"])
def test_adapter_files_that_link_out_of_the_directory_are_refused(tmp_path, linked):
    secret = fake_adapter(tmp_path / "elsewhere")  # a valid adapter outside the directory
    root = tmp_path / "adapters"
    path = fake_adapter(root / "sneaky")
    (path / linked).unlink()
    os.symlink(secret / linked, path / linked)
    fake_adapter(root / "real")
    os.symlink(root / "real" / "adapter_model.safetensors", root / "twin-weights")
    twin = fake_adapter(root / "twin")  # a link that stays inside the directory is fine
    (twin / "adapter_model.safetensors").unlink()
    os.symlink(root / "twin-weights", twin / "adapter_model.safetensors")
    entries = scan_adapters(root)
    assert "link out of the adapters directory" in entries["sneaky"].problem
    assert entries["twin"].problem is None and entries["real"].problem is None
    with pytest.raises(ApiError) as info:
        resolve_adapter("sneaky", root)
    assert info.value.status == 400 and str(tmp_path) not in info.value.message


def test_an_unreadable_config_is_refused_without_showing_its_path(tmp_path, monkeypatch):
    path = fake_adapter(tmp_path / "locked")
    config = path / "adapter_config.json"
    real_read = Path.read_text

    def denied(self: Path, *args, **kwargs) -> str:
        if self == config:  # root reads any file, so the refusal is simulated
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", denied)
    problem = scan_adapters(tmp_path)["locked"].problem
    assert "cannot be read (Permission denied)" in problem
    assert str(tmp_path) not in problem


def test_new_adapter_is_found_without_restart(tmp_path):
    fake_adapter(tmp_path / "first")
    assert list(scan_adapters(tmp_path)) == ["first"]
    fake_adapter(tmp_path / "second")
    assert resolve_adapter("second", tmp_path).name == "second"


def test_check_model_name_accepts_ordinary_names():
    for name in ("base", "run-3", "my_adapter.v2", "A1"):
        check_model_name(name)
