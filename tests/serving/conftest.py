"""Tiny LoRA adapters for the serving tests, built from the tiny Llama, never downloaded."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest


def make_adapter(base_dir: Path, out: Path, seed: int, scale: float = 30.0) -> Path:
    """Save a rank-4 LoRA adapter for ``base_dir`` whose weights visibly change answers.

    peft starts LoRA B at zero (a no-op adapter); random, scaled-up weights make the
    adapter's greedy answers differ from the base model's.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base_dir))
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False
    )
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.mul_(scale)
    peft_model.save_pretrained(str(out), safe_serialization=True)
    (out / "finesift.json").write_text(json.dumps({"base_model": str(base_dir)}))
    return out


@pytest.fixture(scope="session")
def adapters_template(tmp_path_factory, tiny_model_dir: Path) -> Path:
    """An adapters directory: three good adapters and two that must never load.

    * ``tiny-a``, ``tiny-b``, ``tiny-c``: safetensors LoRA adapters of the tiny model.
    * ``pickled``: only ``adapter_model.bin`` (a pickle) - refused.
    * ``broken``: a valid config but garbage safetensors - refused, never listed.
    * ``escaped``: its safetensors file links to a file outside the directory - refused.
    * ``misfit``: valid safetensors whose LoRA shapes do not fit the model - listed (only
      loading shows it), and loading fails with a 500.
    """
    root = tmp_path_factory.mktemp("adapters-template")
    for i, name in enumerate(("tiny-a", "tiny-b", "tiny-c")):
        make_adapter(tiny_model_dir, root / name, seed=i + 1)
    pickled = root / "pickled"
    pickled.mkdir()
    shutil.copy(root / "tiny-a" / "adapter_config.json", pickled / "adapter_config.json")
    # Bytes of a pickle that would run code if unpickled: it must never be opened.
    (pickled / "adapter_model.bin").write_bytes(b"cos\nsystem\n(S'touch /tmp/pwned'\ntR.")
    broken = root / "broken"
    broken.mkdir()
    shutil.copy(root / "tiny-a" / "adapter_config.json", broken / "adapter_config.json")
    (broken / "adapter_model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    outside = tmp_path_factory.mktemp("outside-adapters")
    shutil.copy(root / "tiny-a" / "adapter_model.safetensors", outside / "weights.safetensors")
    escaped = root / "escaped"
    escaped.mkdir()
    shutil.copy(root / "tiny-a" / "adapter_config.json", escaped / "adapter_config.json")
    (escaped / "adapter_model.safetensors").symlink_to(outside / "weights.safetensors")
    make_misfit(root / "tiny-a", root / "misfit")
    return root


def make_misfit(good: Path, out: Path) -> Path:
    """A copy of the adapter ``good`` whose LoRA matrices have the wrong shapes."""
    import torch
    from safetensors.torch import load_file, save_file

    out.mkdir()
    shutil.copy(good / "adapter_config.json", out / "adapter_config.json")
    weights = load_file(str(good / "adapter_model.safetensors"))
    save_file(
        {k: torch.zeros(v.shape[0] + 3, v.shape[1]) for k, v in weights.items()},
        str(out / "adapter_model.safetensors"),
    )
    return out


@pytest.fixture
def adapters_dir(tmp_path: Path, adapters_template: Path) -> Path:
    """A private, writable copy of the adapters template for one test (links kept as links)."""
    out = tmp_path / "adapters"
    shutil.copytree(adapters_template, out, symlinks=True)
    return out


@contextlib.contextmanager
def tiny_server(
    tiny_model_dir: Path,
    adapters_template: Path,
    workdir: Path,
    settings: list[str],
    api_key: str,
) -> Iterator[tuple[str, Path, object]]:
    """The Serve app on the tiny model and a copy of the test adapters, with ``settings``
    (``key=value``) on top; yields (url, adapters dir, config) and stops it after."""
    import socket

    from infra.config import load_config
    from serving.config import ServeConfig
    from serving.launch import start_server, stop_server

    adapters = workdir / "adapters"
    shutil.copytree(adapters_template, adapters, symlinks=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = load_config(
        ServeConfig,
        None,
        settings,
        base_model=str(tiny_model_dir),
        adapters_dir=str(adapters),
        port=port,
    )
    url = start_server(cfg, api_key=api_key)
    try:
        yield url, adapters, cfg
    finally:
        stop_server()
