"""Which LoRA adapters may be served: the directory listing, name checks, file checks.

A request's ``model`` is only ever compared with names this module lists; it is
never joined onto a path. So ``../x``, ``a/b`` or an absolute path cannot reach a file
outside the adapters directory. Adapters load only as safetensors: a directory with
just ``adapter_model.bin`` (a pickle, which can run code when loaded) is refused.

Links are never followed out of the adapters directory, for an adapter's directory and
for its files alike (an ``adapter_model.safetensors`` that links to another place on the
machine is refused). An adapter is listed as servable only once its weights file has been
opened as safetensors (header, offsets and LoRA tensor names checked, no tensor read), so
``GET /v1/models`` never offers an adapter that cannot load. That check is cached by the
file's identity (inode, size, mtime), so listing stays cheap.

``adapters_dir`` may also be a store URI (``s3://bucket/adapters``): the adapters are then
mirrored into a local cache (:mod:`serving.adapter_mirror`, safetensors only) and every
check above runs on the local copy.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from infra.adapters import CONFIG_FILE, PICKLE_FILES, WEIGHTS_FILE, valid_name
from infra.storage import is_uri
from serving.errors import ApiError

log = logging.getLogger("ray.serve")


@dataclass(frozen=True)
class AdapterEntry:
    """One subdirectory of the adapters directory and whether it can be served.

    Attributes:
        name: the subdirectory's name, which is the ``model`` that selects it.
        path: the resolved directory.
        problem: None when servable, else why not (shown to a client that asks for it).
    """

    name: str
    path: Path
    problem: str | None = None


def scan_adapters(adapters_dir: str | Path) -> dict[str, AdapterEntry]:
    """List the adapters directory: every subdirectory that looks like a peft adapter.

    A missing directory holds no adapters. Entries whose names could not be requested
    safely (separators, a leading dot) or that resolve outside the directory (symlinks)
    are skipped.

    Args:
        adapters_dir: the configured adapters directory, or a store URI (mirrored first).

    Returns:
        Entries by name, servable or not (``problem`` says why not).

    Raises:
        ApiError: 503 when a store cannot be read and was never read before.
    """
    root = _local_dir(adapters_dir)
    if not root.is_dir():
        return {}
    entries = (_entry(root, child.name) for child in sorted(root.iterdir()))
    return {e.name: e for e in entries if e is not None}


def _entry(root: Path, name: str) -> AdapterEntry | None:
    """The adapter ``root/name`` (a name taken from the listing), or None if it is none."""
    if not valid_name(name):
        return None
    path = (root / name).resolve()
    if not path.is_dir() or not path.is_relative_to(root.resolve()):
        return None
    problem = adapter_problem(path, root.resolve())
    return None if problem == "not an adapter" else AdapterEntry(name, path, problem)


def adapter_problem(path: Path, root: Path | None = None) -> str | None:
    """Why the directory ``path`` cannot be served as a LoRA adapter, or None if it can.

    Args:
        path: the adapter's resolved directory.
        root: the resolved adapters directory no file may link out of (``path`` if None).
    """
    if not (path / CONFIG_FILE).is_file():
        return "not an adapter"
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if (path / name).exists() and not links_inside(path / name, root or path):
            return (
                f"its {name} is a link out of the adapters directory, which finesift never "
                "follows; copy the file into the adapter's directory"
            )
    if not (path / WEIGHTS_FILE).is_file():
        if any((path / name).is_file() for name in PICKLE_FILES):
            return (
                "it has pickle weights only (adapter_model.bin), which finesift never loads; "
                "re-save it with save_pretrained(..., safe_serialization=True) to get "
                f"{WEIGHTS_FILE}"
            )
        return f"it has no {WEIGHTS_FILE}"
    try:
        config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except OSError as exc:  # its text names the absolute path: keep only the reason
        return f"its {CONFIG_FILE} cannot be read ({exc.strerror or type(exc).__name__})"
    except ValueError as exc:
        return f"its {CONFIG_FILE} is not readable JSON ({exc})"
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        return f"its {CONFIG_FILE} is not a LoRA config (peft_type must be LORA)"
    return weights_problem(path / WEIGHTS_FILE)


def links_inside(path: Path, root: Path) -> bool:
    """Whether ``path``, every link followed, stays inside the resolved directory ``root``."""
    return path.resolve().is_relative_to(root)


def weights_problem(path: Path) -> str | None:
    """Why the file ``path`` is not LoRA weights in safetensors, or None if it is.

    Only the header is read (safetensors checks its JSON, dtypes, shapes and that the
    offsets cover the file exactly); the result is cached by the file's identity.
    """
    try:
        info = path.stat()
    except OSError as exc:
        return f"its {WEIGHTS_FILE} cannot be read ({exc.strerror or type(exc).__name__})"
    return _weights_problem(str(path), info.st_ino, info.st_size, info.st_mtime_ns)


@functools.lru_cache(maxsize=1024)
def _weights_problem(path: str, inode: int, size: int, mtime_ns: int) -> str | None:
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as weights:
            keys = list(weights.keys())
    except Exception as exc:  # SafetensorError, OSError: the message names no path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return f"its {WEIGHTS_FILE} is not a valid safetensors file ({reason[:200]})"
    if not any(".lora_A." in key or ".lora_B." in key for key in keys):
        return f"its {WEIGHTS_FILE} holds no LoRA weights (no lora_A/lora_B tensors)"
    return None


def check_model_name(name: str) -> None:
    """Reject names that could only be an attempt at a path.

    Raises:
        ApiError: 400 for separators, ``..``, a leading dot or other characters.
    """
    if not valid_name(name):
        raise ApiError(
            400,
            f"model {name[:80]!r} is not a valid model name: use the base model's name or an "
            "adapter name from GET /v1/models (letters, digits, '.', '_', '-'; no path)",
            param="model",
            code="invalid_model_name",
        )


def resolve_adapter(name: str, adapters_dir: str | Path) -> AdapterEntry:
    """The servable adapter called ``name``, found by listing the directory now.

    Listing on every lookup means an adapter copied into the directory is served without
    a restart.

    Raises:
        ApiError: 400 for an invalid name or an adapter that cannot be served (pickle
            weights, bad config), 404 when no adapter has that name, 503 when the adapter
            store of a URI ``adapters_dir`` cannot be read.
    """
    check_model_name(name)
    root = _local_dir(adapters_dir, name)
    listed = root.is_dir() and name in {child.name for child in root.iterdir()}
    entry = _entry(root, name) if listed else None
    if entry is None:
        raise ApiError(
            404,
            f"model {name!r} does not exist; GET /v1/models lists the base model and the "
            "adapters this server has",
            type="not_found_error",
            param="model",
            code="model_not_found",
        )
    if entry.problem:
        raise ApiError(
            400,
            f"adapter {name!r} cannot be served: {entry.problem}",
            param="model",
            code="unsafe_adapter" if "pickle" in entry.problem else "invalid_adapter",
        )
    return entry


def _local_dir(adapters_dir: str | Path, name: str | None = None) -> Path:
    """The local directory to list: ``adapters_dir`` itself, or for a store URI its
    mirror, brought up to date (every adapter, or only ``name``).

    Raises:
        ApiError: 503 when the store cannot be read (the cause is logged, not shown).
    """
    if not is_uri(str(adapters_dir)):
        return Path(adapters_dir).expanduser()
    from serving.adapter_mirror import mirror_for

    try:
        mirror = mirror_for(str(adapters_dir))
        if name is None:
            mirror.sync_all()
        else:
            mirror.sync(name)
    except Exception as exc:
        log.exception("the adapter store cannot be read")
        raise ApiError(
            503,
            "the adapter store cannot be read right now; try again shortly (the server's "
            "log has the cause)",
            type="server_error",
            code="adapters_unavailable",
        ) from exc
    return mirror.cache_dir
