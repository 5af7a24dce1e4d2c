"""``finesift pipeline``: curate, train, evaluate, then deploy the serving app, in one job.

Each step calls the step's own job function (``jobs.curation.curate.run``,
``jobs.training.train.train``, ``jobs.evaluation.evaluate.run``,
``serving.launch.start_server``) with its config built from one tree,
:class:`PipelineConfig`, whose ``curate``/``train``/``eval``/``serve`` sections take any
key of those commands (``train.optim.max_steps=50``). Outputs land under ``out``:

- ``curated/``: curate's outputs (selected.jsonl, ledger.parquet, summary.json...);
- ``split/``: without ``eval_data``, curate's selection split into train.jsonl and a
  seeded held-out heldout.jsonl (train never sees the held-out rows);
- ``adapters/NAME`` and ``checkpoints/`` (unless ``adapters_dir``/``storage_path`` say
  otherwise), ``eval/`` (eval.json: base model vs adapter), and ``pipeline.json``.

On a cluster (``finesift submit pipeline``, RAY_ADDRESS set) the Serve app outlives the
job; run locally, the command keeps serving until Ctrl-C.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from infra.adapters import NAME_RULE, valid_name
from infra.config import check, to_dict, with_values
from jobs.curation.config import CurateConfig
from jobs.evaluation.config import EvalConfig
from jobs.training.config import TrainConfig
from serving.config import ServeConfig

console = Console(stderr=True)


@dataclass(frozen=True)
class PipelineConfig:
    """Everything ``finesift pipeline`` does; the sections are the steps' own config trees."""

    data: tuple[str, ...] = ()
    """Noisy input files or directories (anything ``finesift curate`` reads)."""
    name: str | None = None
    """Adapter name (adapters_dir/NAME, the Ray Train run, the served model name)."""
    out: str = "runs/pipeline"
    """Output directory. On a cluster, an absolute path on storage every node sees."""
    budget: int = 500
    """Rows curate selects (curate.selection.budget)."""
    eval_data: str | None = None
    """Held-out rows (JSONL) for training's eval and for the eval step; None holds out
    eval_fraction of curate's selection instead."""
    eval_fraction: float = 0.1
    """Share of the selection held out when eval_data is None (at least one row)."""
    adapters_dir: str | None = None
    """Where the adapter is written and served from; None = OUT/adapters."""
    storage_path: str | None = None
    """Ray Train checkpoints (a shared directory, s3:// or gs://); None = OUT/checkpoints."""
    seed: int = 0
    """Seed of the held-out split."""
    deploy: bool = True
    """Deploy the Serve app (base model + the new adapter) at the end."""
    proxy_location: str = "HeadOnly"
    """Where Serve runs HTTP proxies when this job starts Serve: HeadOnly (one endpoint, on
    the head node) or EveryNode."""
    curate: CurateConfig = field(default_factory=CurateConfig)
    """Curation settings; inputs, out and selection.budget are set by the pipeline."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Training settings; data, name, eval_data, adapters_dir and scaling.storage_path are
    set by the pipeline."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Evaluation settings; models (base and the adapter), eval_data, base_model,
    adapters_dir and out are set by the pipeline."""
    serve: ServeConfig = field(default_factory=ServeConfig)
    """Serving settings; base_model and adapters_dir are set by the pipeline."""

    def __post_init__(self) -> None:
        check(self.budget >= 1, "--budget must be a positive number of rows, e.g. 500")
        check(0.0 < self.eval_fraction < 1.0, "eval_fraction must be in (0, 1), e.g. 0.1")
        check(
            self.name is None or valid_name(self.name),
            f"--name {self.name!r} must be {NAME_RULE} characters, e.g. smol-demo",
        )
        check(
            self.proxy_location in ("HeadOnly", "EveryNode"),
            "proxy_location must be HeadOnly or EveryNode",
        )
        check(
            self.serve.backend != "vllm" or self.train.push in (None, self.serve.adapters_dir),
            "serve.backend=vllm serves adapters from serve.adapters_dir: leave train.push "
            "unset (the pipeline pushes there) or set it to the same URI",
        )

    def require_inputs(self) -> None:
        """Check the fields a run needs but a config file may leave unset."""
        check(bool(self.data), "no input data: pass --data noisy.jsonl (a file or directory)")
        check(self.name is not None, "no adapter name: pass --name NAME, e.g. --name smol-demo")


def run(cfg: PipelineConfig) -> dict[str, Any]:
    """Run curate, train and eval, then deploy; write and return OUT/pipeline.json.

    Raises:
        FinesiftError: from any step (bad input, a model that cannot be found, too few
            rows to train on...), with the step's own message.
    """
    from jobs.curation import curate
    from jobs.evaluation import evaluate
    from jobs.training import train

    cfg.require_inputs()
    assert cfg.name is not None
    out = Path(cfg.out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    report: dict[str, Any] = {"name": cfg.name, "out": str(out), "steps": {}}

    step("curate")
    held_out = (cfg.eval_data,) if cfg.eval_data else ()  # kept out of the training rows
    curate_cfg = with_values(
        cfg.curate,
        {"inputs": cfg.data, "out": str(out / "curated"), "selection.budget": cfg.budget}
        | {"filters.decontaminate": (*cfg.curate.filters.decontaminate, *held_out)},
    )
    curated = curate.run(curate_cfg)
    report["steps"]["curate"] = {"input_rows": curated.input_rows, "by_status": curated.by_status}
    selected = out / "curated" / "selected.jsonl"

    train_data, eval_data = str(selected), cfg.eval_data
    if eval_data is None:
        train_data, eval_data, held = split_selection(selected, out / "split", cfg)
        report["steps"]["split"] = {"train": train_data, "heldout": eval_data, "held_out": held}

    step("train")
    adapters_dir = cfg.adapters_dir or str(out / "adapters")
    train_cfg = with_values(
        cfg.train,
        {
            "data": train_data,
            "name": cfg.name,
            "eval_data": eval_data,
            "adapters_dir": adapters_dir,
            "scaling.storage_path": cfg.storage_path or str(out / "checkpoints"),
            **pushed_for_serving(cfg),
        },
    )
    result = train.train(train_cfg)
    report["steps"]["train"] = {
        "adapter": str(result.adapter_dir),
        "steps": result.steps,
        "base_eval_loss": result.base_eval_loss,
        "eval_loss": result.eval_loss,
    }

    step("eval")
    eval_cfg = with_values(
        cfg.eval,
        {
            "models": ("base", cfg.name),
            "eval_data": eval_data,
            "base_model": cfg.train.base_model,
            "adapters_dir": adapters_dir,
            "out": str(out / "eval"),
        },
    )
    evaluation = evaluate.run(eval_cfg)
    evaluate.print_table(evaluation, Console(stderr=True))
    report["steps"]["eval"] = {"models": [asdict(m) for m in evaluation.models]}

    serve_values = {"base_model": cfg.train.base_model}
    if cfg.serve.backend != "vllm":  # vLLM serves the bucket the adapter was pushed to
        serve_values["adapters_dir"] = adapters_dir
    serve_cfg = with_values(cfg.serve, serve_values)
    if cfg.deploy:
        step("deploy")
        report["steps"]["deploy"] = deploy(serve_cfg, cfg.name, cfg.proxy_location)
    report["seconds"] = round(time.time() - started, 1)
    report["config"] = to_dict(cfg)
    (out / "pipeline.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


def pushed_for_serving(cfg: PipelineConfig) -> dict[str, Any]:
    """The train settings the deploy step needs: with ``serve.backend=vllm`` the adapter is
    pushed to ``serve.adapters_dir`` (the bucket Ray Serve LLM loads adapters from)."""
    if cfg.serve.backend == "vllm":
        return {"push": cfg.serve.adapters_dir}
    return {}


def step(name: str) -> None:
    console.print(f"[bold magenta]finesift pipeline[/] {name}")


def split_selection(selected: Path, out_dir: Path, cfg: PipelineConfig) -> tuple[str, str, int]:
    """Split curate's selection into train.jsonl and a seeded held-out heldout.jsonl.

    Uses training's own deterministic split (a seeded hash of each row's id), so the
    held-out rows are the same on every rerun.

    Returns:
        (train file, held-out file, held-out rows).

    Raises:
        FinesiftError: when the selection has fewer than two rows.
    """
    from infra.errors import InputError
    from jobs.training.data import load_examples, split_heldout

    examples, _ = load_examples(selected)
    if len(examples) < 2:
        raise InputError(
            f"curate selected {len(examples)} usable row(s) in {selected}; training and a "
            "held-out evaluation need at least 2: raise --budget or give more input data"
        )
    train_rows, held = split_heldout(
        examples, cfg.eval_fraction, max_rows=cfg.train.eval.max_rows, seed=cfg.seed
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for file_name, rows in (("train.jsonl", train_rows), ("heldout.jsonl", held)):
        path = out_dir / file_name
        with path.open("w", encoding="utf-8") as f:
            for row in rows:
                messages = [*row["prompt"], *row["completion"]]
                f.write(json.dumps({"id": row["id"], "messages": messages}) + "\n")
        paths.append(str(path))
    return paths[0], paths[1], len(held)


def deploy(serve_cfg: ServeConfig, name: str, proxy_location: str) -> dict[str, Any]:
    """Deploy the Serve app and check that it lists the new adapter.

    On a cluster (RAY_ADDRESS set) this returns and the app keeps running after the job;
    locally it serves until Ctrl-C, like ``finesift serve``.
    """
    from ray import serve

    from infra.ray_env import init_ray
    from serving.launch import serve_until_stopped, start_server

    if not os.environ.get("RAY_ADDRESS"):
        console.print("no cluster (RAY_ADDRESS unset): serving here until Ctrl-C")
        serve_until_stopped(serve_cfg, on_ready=lambda url: _announce(url, name))
        return {"url": None, "model": name, "stopped": True}
    init_ray()
    # The first app to start Serve fixes its proxies; start_server only sets host and port.
    serve.start(
        proxy_location=proxy_location,
        http_options={"host": serve_cfg.host, "port": serve_cfg.port},
    )
    url = start_server(serve_cfg)
    _announce(url, name)
    return {"url": url, "model": name, "app": serve_cfg.app_name}


def _announce(url: str, name: str) -> None:
    console.print(f"[bold green]serving[/] {url} (models: base, {name})")
    console.print(f'try: finesift query "Say hello." --model {name} --url {url}')
