"""What ``finesift experiment --resume`` may keep from an earlier run into the same --out.

Each kept piece is checked against what it was made from, by content:

- the curation: summary.json's settings, and the digests of the input and the held-out
  rows (OUT/arms/inputs.json);
- a training run: its record OUT/arms/NAME.run.json (the arm data's digest and the
  training settings), written by the experiment after the run;
- a model's evaluation: OUT/eval_models.json, one fingerprint per model of eval.json
  (the adapter's files, the eval settings and the held-out rows' digest).

What none of them covers is finesift itself: a run resumed after finesift changed keeps
what the older code made, except the answer figures (chrF per answer, corpus chrF, answer
length), which an older eval.json lacks and which are recomputed from its answers.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from infra.config import to_dict, with_values

INPUTS = Path("arms") / "inputs.json"
EVAL_FINGERPRINTS = "eval_models.json"

ModelFigures = tuple[dict[str, Any], list[dict[str, Any]]]
"""One model's summary in eval.json and its records in eval_samples.jsonl."""


def same(a: Any, b: Any) -> bool:
    """Equal once both are JSON (tuples and lists alike)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes, or of a directory's files (names and bytes, recursively:
    curate reads a directory of inputs as well as a file)."""
    from jobs.training.data import file_sha256

    if not Path(path).is_dir():
        return file_sha256(path)
    digest = hashlib.sha256()
    for child in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        name = child.relative_to(path).as_posix()
        digest.update(name.encode("utf-8") + b"\0" + file_sha256(child).encode("ascii"))
    return digest.hexdigest()


def input_digests(data: str, eval_data: str) -> dict[str, str]:
    """What the curation was made from, by content."""
    return {"data_sha256": file_digest(data), "eval_data_sha256": file_digest(eval_data)}


def curation_matches(out: Path, curate_cfg: Any, inputs: dict[str, str]) -> dict | None:
    """summary.json's data when OUT holds a curation of the same inputs and settings."""
    summary, recorded = out / "summary.json", out / INPUTS
    if not (summary.is_file() and recorded.is_file() and (out / "ledger.parquet").exists()):
        return None
    earlier = json.loads(summary.read_text(encoding="utf-8"))
    if not same(earlier.get("config"), to_dict(curate_cfg)):
        return None
    return earlier if same(json.loads(recorded.read_text(encoding="utf-8")), inputs) else None


def record_inputs(out: Path, inputs: dict[str, str]) -> None:
    """Write OUT/arms/inputs.json beside a finished curation."""
    (out / INPUTS).parent.mkdir(parents=True, exist_ok=True)
    (out / INPUTS).write_text(json.dumps(inputs, indent=2), encoding="utf-8")


def model_fingerprints(eval_cfg: Any) -> dict[str, str]:
    """One fingerprint per model of ``eval_cfg.models``: what its figures depend on."""
    settings = json.dumps({**to_dict(eval_cfg), "models": None}, sort_keys=True)
    held_out = file_digest(eval_cfg.eval_data)
    adapters = Path(eval_cfg.adapters_dir)
    out = {}
    for name in eval_cfg.models:
        model = f"base:{eval_cfg.base_model}" if name == "base" else _dir_digest(adapters / name)
        text = json.dumps([model, settings, held_out])
        out[name] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return out


def _dir_digest(directory: Path) -> str:
    """sha256 of an adapter directory's files; "" when absent."""
    return file_digest(directory) if directory.is_dir() else ""


def kept_evaluations(eval_cfg: Any, fingerprints: dict[str, str]) -> dict[str, ModelFigures]:
    """The models of OUT/eval.json whose fingerprint is still ``fingerprints``'."""
    out = Path(eval_cfg.out)
    recorded_path = out / EVAL_FINGERPRINTS
    if not all(p.is_file() for p in (out / "eval.json", out / "eval_samples.jsonl", recorded_path)):
        return {}
    recorded = json.loads(recorded_path.read_text(encoding="utf-8"))
    names = {m for m, f in fingerprints.items() if recorded.get(m) == f}
    return figures_by_model(out, names)


def figures_by_model(directory: Path, names: set[str]) -> dict[str, ModelFigures]:
    """Each named model's summary (eval.json) and records (eval_samples.jsonl)."""
    from infra.errors import InputError
    from jobs.evaluation.result import is_format_1

    evaluated = json.loads((directory / "eval.json").read_text(encoding="utf-8"))
    try:
        format_1 = is_format_1(evaluated)
    except ValueError as exc:
        raise InputError(
            f"{directory / 'eval.json'}: {exc}; remove the file to evaluate again"
        ) from exc
    samples: dict[str, list[dict[str, Any]]] = {}
    with open(directory / "eval_samples.jsonl", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            samples.setdefault(record["model"], []).append(record)
    out = {}
    for summary in (m for m in evaluated["models"] if m["name"] in names):
        records = samples.get(summary["name"], [])
        if format_1:
            summary = with_answer_figures(summary, records)
        out[summary["name"]] = (summary, records)
    return out


def with_answer_figures(summary: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """A format 1 summary (its ``chrf`` was corpus chrF) with the answer figures of the
    current format, recomputed from the model's answers."""
    from jobs.evaluation.evaluate import answer_figures

    answered = [r for r in records if "generation" in r]
    preds, refs = [r["generation"] for r in answered], [r["reference"] for r in answered]
    return {**summary, **answer_figures(preds, refs)}


def record_evaluations(eval_cfg: Any, fingerprints: dict[str, str]) -> None:
    """Write OUT/eval_models.json beside the eval.json just written."""
    path = Path(eval_cfg.out) / EVAL_FINGERPRINTS
    path.write_text(json.dumps(fingerprints, indent=2), encoding="utf-8")


def partial_config(eval_cfg: Any, models: tuple[str, ...]) -> Any:
    """The eval settings for only ``models``, written to OUT/eval-new/ (removed once
    merged)."""
    return with_values(eval_cfg, {"models": models, "out": str(Path(eval_cfg.out) / "eval-new")})
