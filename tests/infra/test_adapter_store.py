"""infra.adapter_store: adapters pushed to, listed in and fetched from a store, offline.

Stores are a local directory named as a file:// URI and an fsspec in-memory filesystem
(memory://), never a real bucket.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import adapter_store, storage
from infra.errors import FinesiftError, InputError

fsspec = pytest.importorskip("fsspec")


def fake_adapter(path: Path, rank: int = 8, **extra_files: str) -> Path:
    """An adapter folder as `finesift train` writes it (weights are opaque bytes here)."""
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": rank}))
    (path / "adapter_model.safetensors").write_bytes(b"weights-" + path.name.encode())
    (path / "finesift.json").write_text(json.dumps({"base_model": "default", "name": path.name}))
    (path / "tokenizer.json").write_text("{}")
    for name, text in extra_files.items():
        (path / name).write_text(text)
    return path


@pytest.fixture
def memory_root() -> Iterator[str]:
    root = f"/finesift-{uuid.uuid4().hex[:8]}"
    yield f"memory://{root}/adapters"
    memory = fsspec.filesystem("memory")
    if memory.exists(root):
        memory.rm(root, recursive=True)


@pytest.fixture(params=["file", "memory"])
def store(request, tmp_path) -> str:
    if request.param == "file":
        return f"file://{tmp_path}/store/adapters"
    return request.getfixturevalue("memory_root")


def test_push_uploads_the_adapter_with_its_manifest_and_lists_it(tmp_path, store):
    adapter = fake_adapter(tmp_path / "local" / "smol-demo")
    (adapter / "merged").mkdir()  # a full model copy never goes to the store
    (adapter / "merged" / "model.safetensors").write_bytes(b"big")
    (adapter / "adapter_model.bin").write_bytes(b"pickle")  # never shipped
    (adapter / ".hidden").write_text("x")

    uri = adapter_store.push_adapter(adapter, store)

    assert uri == storage.join(store, "smol-demo")
    listed = adapter_store.stored_adapters(store)
    assert list(listed) == ["smol-demo"]
    assert set(listed["smol-demo"]) == {
        "adapter_config.json",
        "adapter_model.safetensors",
        "finesift.json",
        "tokenizer.json",
    }
    assert listed["smol-demo"]["adapter_model.safetensors"].size == len(b"weights-smol-demo")
    manifest = adapter_store.read_stored_json(store, "smol-demo", "finesift.json")
    assert manifest == {"base_model": "default", "name": "smol-demo"}
    assert adapter_store.read_stored_json(store, "smol-demo", "absent.json") is None


def test_a_second_push_replaces_files_and_drops_stale_ones(tmp_path, store):
    first = fake_adapter(tmp_path / "v1" / "a", **{"old_extra.txt": "x"})
    adapter_store.push_adapter(first, store)
    second = fake_adapter(tmp_path / "v2" / "a", rank=16)
    adapter_store.push_adapter(second, store)
    files = adapter_store.stored_adapters(store)["a"]
    assert "old_extra.txt" not in files
    assert adapter_store.read_stored_json(store, "a", "adapter_config.json")["r"] == 16


def test_download_copies_the_named_files(tmp_path, store):
    adapter_store.push_adapter(fake_adapter(tmp_path / "local" / "a"), store)
    out = tmp_path / "cache" / "a"
    adapter_store.download_files(store, "a", ["adapter_config.json", "finesift.json"], out)
    assert sorted(p.name for p in out.iterdir()) == ["adapter_config.json", "finesift.json"]
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 8


def test_listing_skips_what_is_not_an_adapter(tmp_path):
    root = tmp_path / "store"
    fake_adapter(root / "good")
    (root / "no-config").mkdir()
    (root / "no-config" / "adapter_model.safetensors").write_bytes(b"w")
    fake_adapter(root / ".hidden-name")
    fake_adapter(root / "deep" / "nested")  # an adapter two levels down is not listed
    (root / "loose.json").write_text("{}")
    assert list(adapter_store.stored_adapters(f"file://{root}")) == ["good"]
    assert adapter_store.stored_adapters(f"file://{tmp_path}/absent") == {}


def test_a_file_store_never_follows_links_out_of_its_root(tmp_path):
    root = tmp_path / "store"
    adapter = fake_adapter(root / "a")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for clients")
    (adapter / "adapter_model.safetensors").unlink()
    (adapter / "adapter_model.safetensors").symlink_to(secret)
    assert "adapter_model.safetensors" not in adapter_store.stored_adapters(f"file://{root}")["a"]


def test_push_refuses_a_folder_that_is_not_an_adapter(tmp_path, memory_root):
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    with pytest.raises(FinesiftError, match="no adapter_model.safetensors"):
        adapter_store.push_adapter(folder, memory_root)
    with pytest.raises(InputError, match="not a storage URI"):
        adapter_store.stored_adapters(str(tmp_path))
