"""Adapters in object storage (``s3://``, ``gs://``, ``file://``...): upload, list, download.

A store holds adapters the way an adapters directory does, one folder per adapter under
a root URI (``ROOT/NAME/adapter_config.json``, ``adapter_model.safetensors``,
``finesift.json``, the tokenizer...). That is also the layout Ray Serve LLM reads from its
``dynamic_lora_loading_path``, so one push serves both backends.

Only the top level of an adapter folder counts: a ``merged/`` full model beside the
adapter is never uploaded, and files below an adapter folder are never listed. Names
follow the one adapter-name rule (:mod:`infra.adapters`); folders named otherwise are
skipped. For ``file://`` roots (a local directory named as a URI) a file whose link leads
out of the root is skipped, as the adapters directory skips it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra import storage
from infra.adapters import CONFIG_FILE, MANIFEST_FILE, PICKLE_FILES, WEIGHTS_FILE, valid_name
from infra.errors import FinesiftError, InputError


@dataclass(frozen=True)
class StoredFile:
    """One file of a stored adapter, as a listing describes it."""

    size: int
    """Bytes."""
    mtime_ns: int | None
    """Last modification (None where the store does not say); with the size, the version."""


StoredAdapters = dict[str, dict[str, StoredFile]]
"""Adapter name -> its files (name -> StoredFile)."""


def stored_adapters(root: str) -> StoredAdapters:
    """Every adapter under ``root`` with its files, from one recursive listing.

    An adapter is a folder whose name follows the adapter-name rule and that holds an
    ``adapter_config.json``. A missing root holds none.

    Raises:
        InputError: the store cannot be listed (no network or credentials, bad URI).
    """
    import pyarrow.fs as pafs

    fs, base = _root(root)
    try:
        infos = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    except OSError as err:
        raise InputError(f"cannot list adapters in {root}: {err}") from None
    real_root = _real_local_root(fs, base)
    found: StoredAdapters = {}
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        parts = info.path[len(base) :].strip("/").split("/")
        if len(parts) != 2 or not valid_name(parts[0]) or parts[1].startswith("."):
            continue
        if real_root is not None and not _inside(info.path, real_root):
            continue
        mtime = info.mtime_ns if info.mtime is not None else None
        found.setdefault(parts[0], {})[parts[1]] = StoredFile(int(info.size or 0), mtime)
    return {name: files for name, files in sorted(found.items()) if CONFIG_FILE in files}


def push_adapter(adapter_dir: Path, root: str) -> str:
    """Upload the adapter folder ``adapter_dir`` to ``ROOT/NAME/`` (NAME = its name).

    Every regular file at the folder's top level goes up (weights, configs, tokenizer,
    finesift.json) except pickle weights, hidden files and links; the manifest goes last,
    so a reader that finds it finds the rest. Files an earlier push left that this
    adapter no longer has are deleted.

    Returns:
        The adapter's URI, ``ROOT/NAME``.

    Raises:
        FinesiftError: the folder is not an adapter (no safetensors weights or config),
            or the store cannot be written.
    """
    name = adapter_dir.name
    if not valid_name(name):
        raise FinesiftError(f"cannot push {adapter_dir}: its name is not a valid adapter name")
    files = sorted(
        (p for p in adapter_dir.iterdir() if _shipped(p)),
        key=lambda p: (p.name == MANIFEST_FILE, p.name),
    )
    missing = {WEIGHTS_FILE, CONFIG_FILE} - {p.name for p in files}
    if missing:
        raise FinesiftError(
            f"cannot push {adapter_dir}: it has no {', '.join(sorted(missing))}; push the "
            "adapter folder `finesift train` wrote (adapters/NAME)"
        )
    destination = storage.join(root, name)
    storage.make_dirs(destination)
    for path in files:
        storage.copy_file(str(path), storage.join(destination, path.name))
    stale = set(stored_adapters(root).get(name, {})) - {p.name for p in files}
    if stale:
        fs, base = _root(root)
        for file_name in sorted(stale):
            fs.delete_file(f"{base}/{name}/{file_name}")
    return destination


def _shipped(path: Path) -> bool:
    """Whether a file of an adapter folder belongs in the store."""
    return (
        path.is_file()
        and not path.is_symlink()
        and not path.name.startswith(".")
        and path.name not in PICKLE_FILES
    )


def read_stored_json(root: str, name: str, file_name: str) -> dict[str, Any] | None:
    """A JSON file of a stored adapter (its config or manifest), or None when absent.

    Raises:
        InputError: the file exists but is not a JSON object, or cannot be read.
    """
    uri = storage.join(root, name, file_name)
    if storage.kind_of(uri) != "file":
        return None
    try:
        data = json.loads(storage.read_text(uri))
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read {uri}: {err}") from None
    if not isinstance(data, dict):
        raise InputError(f"{uri} is not a JSON object")
    return data


def download_files(root: str, name: str, file_names: list[str], destination: Path) -> None:
    """Copy files of the stored adapter ``name`` into the local folder ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    for file_name in file_names:
        storage.copy_file(storage.join(root, name, file_name), str(destination / file_name))


def _root(root: str) -> tuple[Any, str]:
    """(filesystem, path of the root inside it, without a trailing slash)."""
    if not storage.is_uri(root):
        raise InputError(f"{root} is not a storage URI; use s3://, gs:// or file://")
    fs, inner = storage.resolve(root)
    return fs, inner.rstrip("/")


def _real_local_root(fs: Any, base: str) -> str | None:
    """The resolved root of a local (file://) store, whose links must stay inside it."""
    import pyarrow.fs as pafs

    return os.path.realpath(base) if isinstance(fs, pafs.LocalFileSystem) else None


def _inside(path: str, real_root: str) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(real_root)
