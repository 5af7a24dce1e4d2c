"""``finesift eval``: compare models on held-out rows with Ray Data batch inference.

For each model (the base model, or the base model with a LoRA adapter merged in), the
rows flow through a Ray Data ``map_batches`` whose actor pool holds the model
(:class:`jobs.evaluation.model.ModelRunner`; on GPUs when ``inference.num_gpus > 0``). Each
row gets the NLL of its reference answer (answer tokens only) and, for the first
``generation.max_rows`` rows, a greedy answer. The driver then computes:

- NLL: total answer NLL / total answer tokens (nats per token), and perplexity exp(NLL);
- ROUGE-L: mean F1 of the generated answers against the references (rouge-score);
- chrF: corpus chrF of the generated answers (sacrebleu).

Writes ``eval.json`` (one summary per model) and ``eval_samples.jsonl`` (per row).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from infra.config import to_dict
from infra.errors import FinesiftError, ModelNotFoundError
from jobs.evaluation.config import EvalConfig, InferenceSettings
from jobs.evaluation.result import FORMAT, EvalResult
from quality import metrics

console = Console(stderr=True)
BASE = "base"
"""The model name meaning "the base model, no adapter"."""


@dataclass(frozen=True)
class ModelSpec:
    """One model to evaluate."""

    name: str
    """As the user named it (``base``, an adapter name or an adapter directory)."""
    base_model: str
    """The base model as ``resolve_base_model`` takes it ("default", a directory...)."""
    adapter: str | None
    """Absolute adapter directory, or None for the base model alone."""


def resolve_models(
    names: tuple[str, ...], *, base_model: str, adapters_dir: str
) -> list[ModelSpec]:
    """Turn ``--models`` names into base model + adapter pairs, failing fast on a bad name.

    Args:
        names: ``base``, adapter names under ``adapters_dir``, or adapter directories.
        base_model: what ``base`` means.
        adapters_dir: where adapter names are looked up.

    Raises:
        ModelNotFoundError: for a name that is neither; the message lists what exists.
    """
    specs = []
    for name in names:
        if name == BASE:
            specs.append(ModelSpec(BASE, base_model, None))
            continue
        adapter = _adapter_dir(name, Path(adapters_dir))
        specs.append(ModelSpec(name, _adapter_base_model(adapter), str(adapter.resolve())))
    return specs


def _adapter_dir(name: str, adapters_dir: Path) -> Path:
    for candidate in (adapters_dir / name, Path(name).expanduser()):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    known = (
        sorted(p.name for p in adapters_dir.glob("*") if (p / "adapter_config.json").is_file())
        if adapters_dir.is_dir()
        else []
    )
    raise ModelNotFoundError(
        f"model {name!r} is not 'base' nor an adapter in {adapters_dir} "
        f"({', '.join(known) if known else 'none there'}); train it with "
        f"`finesift train --data FILE --name {name}`, pass --adapters-dir, or give an "
        "adapter directory"
    )


def _adapter_base_model(adapter: Path) -> str:
    """The base model an adapter was trained on: finesift.json, else adapter_config.json."""
    meta = adapter / "finesift.json"
    if meta.is_file():
        base = json.loads(meta.read_text(encoding="utf-8")).get("base_model")
        if base:
            return str(base)
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    if not base:
        raise ModelNotFoundError(
            f"adapter {adapter} does not say which base model it was trained on; "
            "retrain it with `finesift train`"
        )
    return str(base)


def load_eval_rows(path: str, max_rows: int, generate_rows: int) -> list[dict[str, Any]]:
    """Held-out rows as Ray Data items: index, prompt (JSON turns), reference, generate.

    Args:
        path: a JSONL/JSON file in any format ``finesift train`` reads.
        max_rows: keep the first N usable rows; 0 keeps all.
        generate_rows: the first N rows are also answered; 0 = all.

    Raises:
        InputError: a missing or empty file, or one without a usable row.
    """
    from jobs.training.data import load_examples

    examples, report = load_examples(path)
    if report.warning():
        console.print(f"[yellow]warning:[/] {report.warning()}")
    if max_rows:
        examples = examples[:max_rows]
    limit = generate_rows or len(examples)
    return [
        {
            "index": i,
            "id": e["id"],
            "prompt": json.dumps(e["prompt"], ensure_ascii=False),
            "reference": e["completion"][0]["content"],
            "generate": i < limit,
        }
        for i, e in enumerate(examples)
    ]


def run(cfg: EvalConfig) -> EvalResult:
    """Evaluate every model of ``cfg.models`` on ``cfg.eval_data``; write eval.json.

    Raises:
        ConfigError: when eval_data is missing.
        InputError: when eval_data cannot be read.
        ModelNotFoundError: for a model name that is neither 'base' nor an adapter.
    """
    from infra.models import resolve_base_model
    from infra.ray_env import init_ray

    cfg.require_inputs()
    assert cfg.eval_data is not None
    if cfg.server.url:
        from jobs.evaluation.server import run_against_server

        return run_against_server(cfg)
    specs = resolve_models(cfg.models, base_model=cfg.base_model, adapters_dir=cfg.adapters_dir)
    for base in sorted({s.base_model for s in specs}):
        resolve_base_model(base)  # fail before Ray starts; converts the bundled model once
    gen_rows = cfg.generation.max_rows if cfg.generation.enabled else -1
    rows = load_eval_rows(cfg.eval_data, cfg.max_rows, max(gen_rows, 0))
    if gen_rows < 0:
        rows = [{**r, "generate": False} for r in rows]
    init_ray()
    summaries, samples = [], []
    for spec in specs:
        console.print(f"[bold cyan]finesift eval[/] {spec.name}: {len(rows)} rows...")
        start = time.perf_counter()
        outputs = infer(rows, spec, cfg)
        summary = summarize(rows, outputs)
        summaries.append(
            {
                "name": spec.name,
                "base_model": spec.base_model,
                "adapter": spec.adapter,
                **summary,
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
        samples.extend(sample_records(spec.name, rows, outputs))
    return finish(cfg, rows, summaries, samples)


def finish(
    cfg: EvalConfig,
    rows: list[dict[str, Any]],
    summaries: list[dict[str, Any]],
    samples: list[dict[str, Any]],
    **extra: Any,
) -> EvalResult:
    """Write eval.json (the models' figures on ``rows``) and eval_samples.jsonl."""
    result = {
        "format": FORMAT,
        "eval_data": cfg.eval_data,
        "rows": len(rows),
        "generated_rows": sum(bool(r["generate"]) for r in rows),
        "models": summaries,
        "config": to_dict(cfg),
        **extra,
    }
    return EvalResult.from_dict(write_results(result, samples, Path(cfg.out)))


def infer(rows: list[dict[str, Any]], spec: ModelSpec, cfg: EvalConfig) -> list[dict[str, Any]]:
    """Run one model over the rows as Ray Data batch inference; outputs in row order."""
    import ray
    from ray.data import ActorPoolStrategy

    from jobs.evaluation.model import ModelRunner

    inf = cfg.inference
    gpu = inf.num_gpus > 0
    threads = actor_threads(inf)
    # Rows of similar length share a batch: less padding in scoring and generation.
    ordered = sorted(rows, key=lambda r: len(r["prompt"]) + len(r["reference"]))
    items = [{k: r[k] for k in ("index", "prompt", "reference", "generate")} for r in ordered]
    blocks = max(1, min(200, math.ceil(len(items) / inf.batch_size)))
    ds = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
        ModelRunner,
        batch_size=inf.batch_size,
        batch_format="numpy",
        compute=ActorPoolStrategy(size=inf.num_actors),
        fn_constructor_kwargs=dict(
            base_model=spec.base_model,
            adapter=spec.adapter,
            device="cuda" if gpu else "cpu",
            threads=0 if gpu else threads,
            max_length=inf.max_length,
            max_new_tokens=cfg.generation.max_new_tokens,
        ),
        num_gpus=inf.num_gpus if gpu else None,
        num_cpus=1 if gpu else threads,
    )
    outputs = ds.take_all()
    return sorted(outputs, key=lambda o: int(o["index"]))


def actor_threads(inf: InferenceSettings) -> int:
    """Torch threads (and reserved CPUs) per CPU actor: ``inference.num_cpus``, or the
    biggest node's cores split among the actors.

    Per node, not cluster-wide: an actor asking for more CPUs than any one node has would
    never be scheduled. Ray needs to be initialized.
    """
    from infra.ray_env import largest_node_cpus

    return inf.num_cpus or max(1, largest_node_cpus() // inf.num_actors)


def summarize(rows: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """One model's figures from its per-row outputs (aligned with ``rows``).

    Returns:
        ``nll`` (nats per answer token), ``perplexity``, the answer figures of
        :func:`answer_figures` (None without generations), ``tokens`` scored, ``rows``
        scored (answer not cut off entirely) and ``generated``.
    """
    if len(rows) != len(outputs):
        raise FinesiftError(f"eval lost rows: {len(rows)} in, {len(outputs)} out")
    nll = metrics.mean_nll([o["nll_sum"] for o in outputs], [o["tokens"] for o in outputs])
    pairs = [
        (str(o["generation"]), r["reference"])
        for r, o in zip(rows, outputs, strict=True)
        if r["generate"]
    ]
    preds, refs = [p for p, _ in pairs], [r for _, r in pairs]
    return {
        "nll": _round(nll),
        "perplexity": _round(metrics.perplexity(nll)),
        **answer_figures(preds, refs),
        "tokens": int(sum(float(o["tokens"]) for o in outputs)),
        "rows": sum(1 for o in outputs if float(o["tokens"]) > 0),
        "generated": len(pairs),
    }


def answer_figures(preds: list[str], refs: list[str]) -> dict[str, float | None]:
    """How a model's greedy answers compare with the references (all None without answers).

    - ``chrf``: chrF of each answer, averaged over the answers (0-100), the headline. Every
      prompt counts once, as in ``rouge_l`` and in the experiment's bootstrap.
    - ``corpus_chrf``: chrF of the n-gram counts pooled over all answers. Long answers weigh
      more in the pool, and chrF weighs recall twice (beta=2), so this figure rises with
      how much a model writes: on the Dolly experiment it ranked the models by answer
      length, the untuned base model first (BENCHMARKS.md).
    - ``rouge_l``: mean ROUGE-L F1 (0-1).
    - ``length_ratio``: characters of the answers over characters of the references.
    """
    if not preds:
        return {"chrf": None, "corpus_chrf": None, "rouge_l": None, "length_ratio": None}
    answers = [metrics.chrf(p, r) for p, r in zip(preds, refs, strict=True)]
    reference_chars = sum(len(r) for r in refs)
    return {
        "chrf": _round(sum(answers) / len(answers)),
        "corpus_chrf": _round(metrics.corpus_chrf(preds, refs)),
        "rouge_l": _round(metrics.mean_rouge_l(preds, refs)),
        "length_ratio": _round(sum(len(p) for p in preds) / reference_chars)
        if reference_chars
        else None,
    }


def _round(value: float) -> float | None:
    """4 decimals; None for nan (JSON has no nan)."""
    return None if value is None or math.isnan(value) else round(value, 4)


def sample_records(
    name: str, rows: list[dict[str, Any]], outputs: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per-row records for eval_samples.jsonl: NLL per token, and the answer with its scores."""
    records = []
    for row, out in zip(rows, outputs, strict=True):
        tokens = float(out["tokens"])
        record: dict[str, Any] = {
            "model": name,
            "id": row["id"],
            "nll": round(float(out["nll_sum"]) / tokens, 4) if tokens else None,
            "tokens": int(tokens),
            "reference": row["reference"],
        }
        if row["generate"]:
            generation = str(out["generation"])
            record["generation"] = generation
            record["rouge_l"] = round(metrics.rouge_l(generation, row["reference"]), 4)
            record["chrf"] = round(metrics.chrf(generation, row["reference"]), 2)
        records.append(record)
    return records


def write_results(
    result: dict[str, Any], samples: list[dict[str, Any]], out: Path
) -> dict[str, Any]:
    """Write eval.json and eval_samples.jsonl in ``out`` (created); return eval.json's content."""
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2)
    (out / "eval.json").write_text(text, encoding="utf-8")
    with open(out / "eval_samples.jsonl", "w", encoding="utf-8") as handle:
        for record in samples:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return json.loads(text)


def print_table(result: EvalResult, out: Console | None = None) -> None:
    """The comparison table: one row per model, then each model's note (what could not
    be measured)."""
    table = Table(
        title=f"eval on {result.rows} rows of {result.eval_data} "
        f"(answers generated for {result.generated_rows})"
        + (f" by the server at {result.url}" if result.url else "")
    )
    from jobs.evaluation.table import EVAL_COLUMNS, EVAL_LEGEND, eval_cells

    table.caption = EVAL_LEGEND
    for column in EVAL_COLUMNS:
        table.add_column(column.header, justify="right" if column.numeric else "left")
    for row in eval_cells(result):
        table.add_row(*row)
    console_out = out or Console()
    console_out.print(table)
    for m in result.models:
        if m.note:
            console_out.print(f"[yellow]{m.name}:[/] {escape(m.note)}")
