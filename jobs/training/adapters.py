"""Trained adapters on disk: ``adapters/NAME/`` with the adapter, tokenizer and finesift.json.

Also the identity of a run (base model + data sha256), which guards a ``--name`` against
being reused for different inputs, the listing behind ``finesift adapters`` and merging.
No Ray here; torch/peft are imported only by :func:`merge_adapter`.
"""

from __future__ import annotations

import json
import shutil
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from infra.adapters import MANIFEST_FILE
from infra.errors import FinesiftError
from infra.storage import published_dir

META_FILE = MANIFEST_FILE
"""Written beside the adapter: base model, data, config, loss history, runtime, versions."""
STATE_FILE = "finesift-state.json"
"""Written into every checkpoint by rank 0: steps resumed from, peak memory."""
RUN_MANIFEST = "finesift-run.json"
"""Written into the Ray Train run directory when a run starts: its identity."""
MEMORY_FILE = "finesift-memory.json"
"""Written into the Ray Train run directory after an out-of-memory retry: the batch shape
that fits, so a rerun of the same name starts with it."""
# Trainer checkpoint files that are resume state, not part of the shipped adapter.
RESUME_ONLY = (
    "optimizer.pt",
    "scheduler.pt",
    "scaler.pt",
    "trainer_state.json",
    "training_args.bin",
    "finesift-state.json",
    "README.md",
)
LIBRARIES = ("torch", "transformers", "peft", "trl", "accelerate", "datasets", "ray")


def run_identity(
    base_model: str, data_path: str, data_sha256: str, rows: int, lora: dict[str, Any]
) -> dict[str, Any]:
    """What makes two runs "the same run": base model, training data and adapter shape
    (a checkpoint cannot resume into LoRA matrices of another rank or other modules)."""
    return {
        "base_model": base_model,
        "data": {"path": str(data_path), "sha256": data_sha256, "rows": rows},
        "lora": lora,
    }


def check_identity(
    identity: dict[str, Any], existing: dict[str, Any] | None, where: str, name: str
) -> None:
    """Refuse to reuse ``name`` for a different base model or different data.

    Args:
        identity: this run's :func:`run_identity`.
        existing: the identity recorded at ``where``, or None when there is none.
        where: a path, for the message.
        name: the adapter name, for the message.

    Raises:
        FinesiftError: when the recorded identity differs; nothing is overwritten.
    """
    if existing is None:
        return
    problems = []
    if existing.get("base_model") != identity["base_model"]:
        problems.append(
            f"base model {existing.get('base_model')!r}, not {identity['base_model']!r}"
        )
    old_sha = (existing.get("data") or {}).get("sha256")
    if old_sha != identity["data"]["sha256"]:
        problems.append(
            f"data {existing.get('data', {}).get('path')} (sha256 "
            f"{str(old_sha)[:12]}...), not {identity['data']['path']} "
            f"(sha256 {identity['data']['sha256'][:12]}...)"
        )
    old_lora = existing.get("lora")
    if old_lora is not None and old_lora != identity["lora"]:
        problems.append(f"LoRA settings {old_lora}, not {identity['lora']}")
    if problems:
        raise FinesiftError(
            f"--name {name} is taken: {where} was trained on {' and '.join(problems)}. "
            f"Pick another --name, or delete {where} to start over"
        )


def read_meta(adapter_dir: Path) -> dict[str, Any] | None:
    """The finesift.json of an adapter directory, or None when it has none."""
    path = adapter_dir / META_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def check_adapter_dir(adapter_dir: Path, identity: dict[str, Any], name: str) -> None:
    """Refuse an existing adapters/NAME that is not this run's (different inputs or foreign)."""
    if not adapter_dir.exists():
        return
    meta = read_meta(adapter_dir)
    if meta is None:
        raise FinesiftError(
            f"{adapter_dir} exists but is not a finesift adapter (no {META_FILE}); pick "
            "another --name or another --adapters-dir"
        )
    check_identity(identity, meta, str(adapter_dir), name)


def _run_store(storage_path: str, name: str) -> tuple[Any, str]:
    """(pyarrow filesystem, run directory) for a local path or an s3:// / gs:// URI."""
    import pyarrow.fs

    if "://" in storage_path:
        fs, root = pyarrow.fs.FileSystem.from_uri(storage_path)
    else:
        fs, root = pyarrow.fs.LocalFileSystem(), str(Path(storage_path).resolve())
    return fs, f"{root.rstrip('/')}/{name}"


def _read_run_json(storage_path: str, name: str, file_name: str) -> dict[str, Any] | None:
    import pyarrow.fs

    fs, run_dir = _run_store(storage_path, name)
    path = f"{run_dir}/{file_name}"
    if fs.get_file_info(path).type == pyarrow.fs.FileType.NotFound:
        return None
    with fs.open_input_stream(path) as handle:
        return json.loads(handle.read().decode("utf-8"))


def _write_run_json(storage_path: str, name: str, file_name: str, data: dict[str, Any]) -> None:
    fs, run_dir = _run_store(storage_path, name)
    fs.create_dir(run_dir, recursive=True)
    with fs.open_output_stream(f"{run_dir}/{file_name}") as handle:
        handle.write(json.dumps(data, indent=2).encode("utf-8"))


def read_run_manifest(storage_path: str, name: str) -> dict[str, Any] | None:
    """The identity recorded in the Ray Train run directory ``storage_path/name``."""
    return _read_run_json(storage_path, name, RUN_MANIFEST)


def write_run_manifest(storage_path: str, name: str, identity: dict[str, Any]) -> None:
    """Record the run's identity beside its Ray Train checkpoints."""
    _write_run_json(storage_path, name, RUN_MANIFEST, identity)


def read_memory(storage_path: str, name: str, optim: Any) -> dict[str, Any]:
    """The batch shape to start with: one an earlier out-of-memory retry of this run found,
    while the configured shape is the one it started from; else the configured shape.

    Returns:
        ``{"batch_size", "gradient_accumulation", "recoveries"}``.
    """
    configured = _batch_shape(optim)
    saved = _read_run_json(storage_path, name, MEMORY_FILE)
    if saved is None or saved.get("configured") != configured:
        return {**configured, "recoveries": []}
    return {**saved["fits"], "recoveries": saved.get("recoveries", [])}


def write_memory(
    storage_path: str, name: str, configured: Any, fits: Any, recoveries: list[dict[str, Any]]
) -> None:
    """Record the batch shape an out-of-memory retry moved to (see :func:`read_memory`)."""
    data = {
        "configured": _batch_shape(configured),
        "fits": _batch_shape(fits),
        "recoveries": recoveries,
    }
    _write_run_json(storage_path, name, MEMORY_FILE, data)


def _batch_shape(optim: Any) -> dict[str, int]:
    return {"batch_size": optim.batch_size, "gradient_accumulation": optim.gradient_accumulation}


def summarize_history(log_history: list[dict[str, Any]]) -> dict[str, Any]:
    """Loss curves, the base model's eval loss (step 0), the last one, and tokens/s."""
    train = [
        {
            "step": e["step"],
            "loss": e["loss"],
            "learning_rate": e.get("learning_rate"),
            "tokens": e.get("num_input_tokens_seen"),
        }
        for e in log_history
        if "loss" in e
    ]
    evals = [
        {"step": e["step"], "eval_loss": e["eval_loss"]} for e in log_history if "eval_loss" in e
    ]
    speeds = [e["train_tokens_per_second"] for e in log_history if "train_tokens_per_second" in e]
    base = next((e["eval_loss"] for e in evals if e["step"] == 0), None)
    trained = [e for e in evals if e["step"] > 0]
    return {
        "train_loss_history": train,
        "eval_loss_history": evals,
        "base_eval_loss": base,
        "last_eval_loss": trained[-1]["eval_loss"] if trained else None,
        # Training-loop tokens/s of the last session (model loading excluded).
        "tokens_per_second": speeds[-1] if speeds else None,
    }


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape the result."""
    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = "not installed"
    return versions


def build_meta(
    checkpoint_dir: Path,
    identity: dict[str, Any],
    *,
    name: str,
    eval_data: str | None,
    train_rows: int,
    eval_rows: int,
    runtime_s: float,
    config: dict[str, Any],
    latest: dict[str, Any] | None = None,
    run: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The content of finesift.json, from the published checkpoint and the run's latest.

    Args:
        checkpoint_dir: the Trainer checkpoint the adapter comes from (the best one).
        identity: :func:`run_identity` (base model and data).
        name: the adapter name.
        eval_data: the --eval-data file, or None when rows were held out of the data.
        train_rows: rows trained on.
        eval_rows: rows evaluated on.
        runtime_s: wall time of this ``finesift train`` invocation.
        config: the full config as a dict.
        latest: ``{"trainer_state", "run_state"}`` of the run's latest checkpoint, whose log
            history is the whole loss curve; None when it is ``checkpoint_dir`` itself.
        run: how the run went (early stop, out-of-memory retries, batch, notes).
    """
    own = json.loads((checkpoint_dir / "trainer_state.json").read_text())
    if latest is None:
        run_state_file = checkpoint_dir / STATE_FILE
        run_state = json.loads(run_state_file.read_text()) if run_state_file.is_file() else {}
        latest = {"trainer_state": own, "run_state": run_state}
    state, run_state = latest["trainer_state"], latest["run_state"]
    eval_source: dict[str, Any] = {"held_out_from_data": eval_rows}
    if eval_data:
        from jobs.training.data import file_sha256

        eval_source = {"path": eval_data, "sha256": file_sha256(eval_data)}
    from jobs.review.sidecar import review_of

    data = identity["data"]
    history = summarize_history(state["log_history"])
    # The published adapter's held-out loss: the evaluation at its own step.
    own_evals = [
        e["eval_loss"]
        for e in own["log_history"]
        if "eval_loss" in e and e["step"] == own["global_step"]
    ]
    return {
        **identity,
        # A person verified the data (`finesift review`): the export's record, else None.
        "review": review_of(data["path"], data["sha256"]),
        "name": name,
        "eval_data": eval_source,
        "train_rows": train_rows,
        "eval_rows": eval_rows,
        "steps": state["global_step"],
        "adapter_step": own["global_step"],
        "max_steps": state["max_steps"],
        "epochs": state.get("epoch"),
        "tokens_seen": state.get("num_input_tokens_seen"),
        "runtime_s": round(runtime_s, 1),
        "resumed_from": run_state.get("resumed_from", []),
        "peak_rss_mb": run_state.get("peak_rss_mb"),
        **history,
        # finesift.json's eval loss is the adapter's: the best checkpoint's, not the last's.
        "final_eval_loss": own_evals[-1] if own_evals else history["last_eval_loss"],
        "early_stop": None,
        "oom_recoveries": [],
        "batch": run_state.get("batch"),
        "notes": [],
        **(run or {}),
        "config": config,
        "versions": library_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_adapter(checkpoint_dir: Path, adapter_dir: Path, meta: dict[str, Any]) -> None:
    """Publish a checkpoint's adapter and tokenizer, plus finesift.json, as ``adapter_dir``.

    The new directory is assembled beside the old one and swapped in by rename, so a
    reader never sees half an adapter.

    Args:
        checkpoint_dir: a Trainer checkpoint (adapter_model.safetensors, tokenizer...).
        adapter_dir: ``adapters_dir/NAME``.
        meta: the content of finesift.json.
    """
    if not (checkpoint_dir / "adapter_model.safetensors").is_file():
        raise FinesiftError(f"checkpoint {checkpoint_dir} holds no adapter_model.safetensors")
    with published_dir(adapter_dir) as tmp:
        for item in checkpoint_dir.iterdir():
            if (
                item.is_file()
                and item.name not in RESUME_ONLY
                and not item.name.startswith("rng_state")
            ):
                shutil.copy2(item, tmp / item.name)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")


def merge_adapter(adapter_dir: Path, base_model_path: str, out_dir: Path) -> Path:
    """Write the base model with the adapter folded in: a plain model, no peft needed.

    Args:
        adapter_dir: a directory written by :func:`write_adapter`.
        base_model_path: the resolved base model.
        out_dir: where to save the merged model and tokenizer.

    Returns:
        ``out_dir``.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(base_model_path, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    shutil.rmtree(out_dir, ignore_errors=True)
    merged.save_pretrained(str(out_dir), safe_serialization=True)
    AutoTokenizer.from_pretrained(str(adapter_dir)).save_pretrained(str(out_dir))
    return out_dir


def list_adapters(adapters_dir: str | Path) -> list[dict[str, Any]]:
    """One summary per adapter under ``adapters_dir`` (name, base model, data, eval losses).

    Args:
        adapters_dir: the directory ``finesift train --adapters-dir`` wrote to.

    Returns:
        Dicts sorted by name; an absent directory gives an empty list.
    """
    root = Path(adapters_dir)
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        meta = read_meta(child) if child.is_dir() and not child.name.startswith(".") else None
        if meta is None:
            continue
        found.append(
            {
                "name": child.name,
                "path": str(child),
                "base_model": meta.get("base_model"),
                "data": (meta.get("data") or {}).get("path"),
                "rows": (meta.get("data") or {}).get("rows"),
                "steps": meta.get("steps"),
                "base_eval_loss": meta.get("base_eval_loss"),
                "final_eval_loss": meta.get("final_eval_loss"),
                "merged": (child / "merged").is_dir(),
            }
        )
    return found
