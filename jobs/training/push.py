"""Adapters in object storage: where ``finesift train`` uploads them, and their listing.

``finesift train`` publishes to a store when ``adapters_dir`` is a URI (``s3://bucket/
adapters``: the adapter is assembled in a local staging folder, then uploaded) or when
``--push URI`` is given (the adapter stays in the local ``adapters_dir`` too). Either way
it lands in ``URI/NAME/`` with its manifest, the layout both serving backends read. A name
already in the store for other inputs is refused before training starts, as it is locally.
The storage itself (listing, copying) is :mod:`infra.adapter_store`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from rich.console import Console

from infra import adapter_store, storage
from infra.adapters import MANIFEST_FILE
from infra.errors import FinesiftError
from jobs.training.adapters import check_identity
from jobs.training.config import TrainConfig

console = Console()


def destination(cfg: TrainConfig) -> str | None:
    """The store the adapter goes to: ``--push``, else a URI ``adapters_dir``, else None."""
    if cfg.push:
        return cfg.push
    return cfg.adapters_dir if storage.is_uri(cfg.adapters_dir) else None


def local_adapter_dir(cfg: TrainConfig) -> Path:
    """Where the adapter is written on this machine: ``adapters_dir/NAME``, or for a URI
    ``adapters_dir`` a staging folder under ``$FINESIFT_HOME/staging`` (one per URI)."""
    assert cfg.name is not None
    if not storage.is_uri(cfg.adapters_dir):
        return Path(cfg.adapters_dir) / cfg.name
    from infra.models import finesift_home

    key = hashlib.sha256(cfg.adapters_dir.encode("utf-8")).hexdigest()[:16]
    return finesift_home() / "staging" / "adapters" / key / cfg.name


def check_destination(cfg: TrainConfig, identity: dict[str, Any]) -> None:
    """Refuse, before training, a name the store already holds for other inputs.

    Raises:
        FinesiftError: the stored adapter was trained on another base model, other data or
            other LoRA settings, or is not a finesift adapter; nothing is overwritten.
    """
    root = destination(cfg)
    if root is None:
        return
    assert cfg.name is not None
    stored = adapter_store.stored_adapters(root).get(cfg.name)
    if stored is None:
        return
    where = storage.join(root, cfg.name)
    meta = adapter_store.read_stored_json(root, cfg.name, MANIFEST_FILE)
    if meta is None:
        raise FinesiftError(
            f"{where} exists but is not a finesift adapter (no {MANIFEST_FILE}); pick another "
            "--name or another store"
        )
    check_identity(identity, meta, where, cfg.name)


def publish(cfg: TrainConfig, adapter_dir: Path) -> str | None:
    """Upload the written adapter to the store of ``cfg``, if it has one.

    Returns:
        The adapter's URI, or None when there is no store to push to.
    """
    root = destination(cfg)
    if root is None:
        return None
    uri = adapter_store.push_adapter(adapter_dir, root)
    console.print(f"pushed adapter {adapter_dir.name} to {uri}")
    return uri


def list_stored(root: str) -> list[dict[str, Any]]:
    """One summary per adapter in the store ``root``, as ``finesift adapters`` shows them.

    The same fields as :func:`jobs.training.adapters.list_adapters` (``path`` is the URI;
    a store never holds merged models). Adapters without a manifest are left out.
    """
    found = []
    for name in adapter_store.stored_adapters(root):
        meta = adapter_store.read_stored_json(root, name, MANIFEST_FILE)
        if meta is None:
            continue
        data = meta.get("data") or {}
        found.append(
            {
                "name": name,
                "path": storage.join(root, name),
                "base_model": meta.get("base_model"),
                "data": data.get("path"),
                "rows": data.get("rows"),
                "steps": meta.get("steps"),
                "base_eval_loss": meta.get("base_eval_loss"),
                "final_eval_loss": meta.get("final_eval_loss"),
                "merged": False,
            }
        )
    return found
