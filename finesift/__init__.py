"""finesift from Python: each command as a function that returns its result.

    import finesift

    curated = finesift.curate("noisy.jsonl", out="runs/curated", budget=500)
    print(curated.selected, curated.coverage, curated.path("selected.jsonl"))
    adapter = finesift.train(data=curated.path("selected.jsonl"), name="smol", max_steps=30)
    scores = finesift.evaluate(models="base,smol", eval_data="heldout.jsonl")
    print(scores.model("smol").chrf)

Keyword options are the command's own (``--budget`` is ``budget=``); any other setting
goes in ``overrides``: ``key=value`` strings or a mapping of dotted keys
(``{"dedup.semantic_threshold": 0.9}``), exactly as on the command line; ``config`` is
a YAML file. Ray starts (or is joined through RAY_ADDRESS) on the first call that needs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobs.curation.result import CurateResult
    from jobs.evaluation.result import EvalResult, ExperimentResult
    from jobs.training.train import TrainResult

__all__ = ["curate", "evaluate", "experiment", "pipeline", "train"]

Overrides = Sequence[str] | Mapping[str, Any]


def _config(
    spec: Any,
    config: str | Path | None,
    overrides: Overrides,
    fields: Mapping[str, Any] | None = None,
    **options: Any,
) -> Any:
    """The job's config, built the way its command builds it."""
    if isinstance(overrides, Mapping):
        values, args = {**overrides, **(fields or {})}, []
    else:
        values, args = dict(fields or {}), [str(o) for o in overrides]
    return spec.config(config=config, args=args, values=values, **options)


def curate(
    *inputs: str,
    config: str | Path | None = None,
    overrides: Overrides = (),
    **options: Any,
) -> CurateResult:
    """``finesift curate INPUT...``: select a clean, diverse subset (options: out, budget,
    format)."""
    from jobs.cli.curation import CURATE
    from jobs.curation.curate import run

    fields = {"inputs": tuple(str(i) for i in inputs)} if inputs else None
    return run(_config(CURATE, config, overrides, fields, **options))


def train(
    *, config: str | Path | None = None, overrides: Overrides = (), **options: Any
) -> TrainResult:
    """``finesift train``: fine-tune a LoRA adapter (options: data, name, eval_data,
    base_model, adapters_dir, num_workers, use_gpu, storage_path, max_failures, max_steps,
    merge, strict, tracking)."""
    from jobs.cli.training import TRAIN
    from jobs.training.train import train as run

    return run(_config(TRAIN, config, overrides, **options))


def evaluate(
    *, config: str | Path | None = None, overrides: Overrides = (), **options: Any
) -> EvalResult:
    """``finesift eval``: compare models on held-out rows (options: models, eval_data, out,
    adapters_dir, base_model, max_rows)."""
    from jobs.cli.evaluation import EVAL
    from jobs.evaluation.evaluate import run

    return run(_config(EVAL, config, overrides, **options))


def experiment(
    *, config: str | Path | None = None, overrides: Overrides = (), **options: Any
) -> ExperimentResult:
    """``finesift experiment``: curated vs random vs longest vs full, each trained once per
    seed and evaluated alike (options: data, eval_data, budget, arms, seeds, out)."""
    from jobs.cli.evaluation import EXPERIMENT
    from jobs.evaluation.experiment import run

    return run(_config(EXPERIMENT, config, overrides, **options))


def pipeline(
    *, config: str | Path | None = None, overrides: Overrides = (), **options: Any
) -> dict[str, Any]:
    """``finesift pipeline``: curate, train, evaluate and deploy (options: data, name, out,
    budget, eval_data, base_model, deploy); returns what pipeline.json holds."""
    from jobs.cli.cluster import PIPELINE
    from jobs.pipeline import run

    return run(_config(PIPELINE, config, overrides, **options))
