"""finesift's backend with a store URI as adapters_dir: the local mirror and the same checks.

The store is a local directory named as a file:// URI (what a Serve replica in another
process can also read); the tiny adapters come from tests/serving/conftest.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra import adapter_store
from serving import adapter_mirror
from serving.adapter_mirror import MISS_REFRESH_S, REFRESH_S, AdapterMirror
from serving.adapters import resolve_adapter, scan_adapters
from serving.errors import ApiError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path, adapters_template: Path) -> Path:
    """A store holding the serving tests' adapters (good, pickled, broken, escaped...)."""
    root = tmp_path / "bucket" / "adapters"
    shutil.copytree(adapters_template, root, symlinks=True)
    return root


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FINESIFT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(adapter_mirror, "_MIRRORS", {})
    return tmp_path / "home"


def test_a_store_is_served_like_a_directory_with_the_same_refusals(store, home):
    uri = f"file://{store}"
    entries = scan_adapters(uri)
    servable = {name for name, e in entries.items() if e.problem is None}
    assert {"tiny-a", "tiny-b", "tiny-c", "misfit"} <= servable
    assert "escaped" not in servable  # its weights link out of the store: never fetched
    assert "broken" in entries and "not a valid safetensors" in entries["broken"].problem
    assert "pickled" not in servable  # pickle weights are never fetched, nor loaded
    entry = resolve_adapter("tiny-a", uri)
    assert entry.path.is_relative_to(home / "adapter-cache")
    fetched = sorted(p.name for p in entry.path.iterdir())
    assert fetched == [
        ".finesift-mirror.json",
        "adapter_config.json",
        "adapter_model.safetensors",
        "finesift.json",
    ]
    assert not any(home.rglob("adapter_model.bin"))
    with pytest.raises(ApiError) as caught:
        resolve_adapter("pickled", uri)
    assert caught.value.status == 400
    with pytest.raises(ApiError) as caught:
        resolve_adapter("../tiny-a", uri)
    assert caught.value.status == 400 and caught.value.code == "invalid_model_name"
    with pytest.raises(ApiError) as caught:
        resolve_adapter("absent", uri)
    assert caught.value.status == 404


def test_listings_are_reused_then_refreshed_and_changes_are_fetched(tmp_path, store):
    clock = Clock()
    cache = tmp_path / "cache"
    mirror = AdapterMirror(f"file://{store}", cache, clock=clock)
    mirror.sync_all()
    assert (cache / "tiny-a" / "adapter_model.safetensors").is_file()
    assert (cache / "tiny-c" / "adapter_model.safetensors").is_file()

    # A push of a new adapter: found at once when asked for by name (after the miss
    # interval), and by a full listing once the refresh interval has passed.
    shutil.copytree(store / "tiny-b", store / "fresh")
    clock.now = MISS_REFRESH_S / 2
    mirror.sync("fresh")
    assert not (tmp_path / "cache" / "fresh").exists()  # too soon: no new listing
    clock.now = MISS_REFRESH_S
    mirror.sync("fresh")
    assert (tmp_path / "cache" / "fresh" / "adapter_config.json").is_file()

    # A changed adapter is fetched again; a deleted one leaves the cache; both only once
    # the store is listed again.
    weights = (store / "tiny-b" / "adapter_model.safetensors").read_bytes()
    old_weights = (cache / "tiny-a" / "adapter_model.safetensors").read_bytes()
    assert weights != old_weights
    (store / "tiny-a" / "adapter_model.safetensors").write_bytes(weights)
    shutil.rmtree(store / "tiny-c")
    mirror.sync_all()  # within the refresh interval: the last listing stands
    assert (cache / "tiny-a" / "adapter_model.safetensors").read_bytes() == old_weights
    assert (cache / "tiny-c").is_dir()
    clock.now += REFRESH_S
    mirror.sync_all()
    assert (cache / "tiny-a" / "adapter_model.safetensors").read_bytes() == weights
    assert not (cache / "tiny-c").exists()


def test_an_adapter_deleted_after_the_listing_is_listed_again(tmp_path, store):
    clock = Clock()
    mirror = AdapterMirror(f"file://{store}", tmp_path / "cache", clock=clock)
    mirror.listing()
    shutil.rmtree(store / "tiny-c")
    mirror.sync("tiny-c")  # the stale listing has it; fetching fails; a new listing does not
    assert not (tmp_path / "cache" / "tiny-c").exists()
    mirror.sync_all()  # the others are still mirrored
    assert (tmp_path / "cache" / "tiny-a" / "adapter_config.json").is_file()


def test_a_store_that_cannot_be_read_is_a_503_without_the_cause(home, monkeypatch):
    def unreachable(root):
        raise adapter_store.InputError(f"cannot list adapters in {root}: no route to host")

    monkeypatch.setattr(adapter_mirror, "stored_adapters", unreachable)
    with pytest.raises(ApiError) as caught:
        resolve_adapter("tiny-a", "s3://bucket/adapters")
    assert caught.value.status == 503 and caught.value.code == "adapters_unavailable"
    assert "bucket" not in caught.value.message


def test_a_failed_refresh_keeps_the_last_listing(tmp_path, store, monkeypatch):
    clock = Clock()
    mirror = AdapterMirror(f"file://{store}", tmp_path / "cache", clock=clock)
    first = mirror.listing()
    monkeypatch.setattr(
        adapter_mirror,
        "stored_adapters",
        lambda root: (_ for _ in ()).throw(adapter_store.InputError("down")),
    )
    clock.now = REFRESH_S * 2
    assert mirror.listing() == first
