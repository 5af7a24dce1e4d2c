"""``finesift experiment``: does curation beat more (or random) data on the user's own data?

Steps, all in ``--out``:

1. curate the noisy input (curate's outputs land in OUT: selected.jsonl, ledger.parquet...);
2. build the arms: ``curated`` = curate's selection; ``random`` = as many rows as curate
   selected, drawn uniformly (seeded) from the readable input rows; ``full`` = every
   readable input row (arms/random.jsonl, arms/full.jsonl);
3. train one LoRA adapter per arm (OUT/adapters/ARM) with the same training settings
   for the same number of epochs;
4. evaluate the base model and every adapter on the held-out rows (eval.json);
5. write experiment.json, experiment.png and report.html, and print the table.

Equal epochs, not equal steps: each arm is trained the way a user would train on that
dataset, so the cost column shows what training on everything costs, while curated and
random (same row count) get the same number of steps and compare at equal compute.
Setting ``train.optim.max_steps`` switches to equal steps.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from infra.config import with_values
from infra.errors import InputError
from jobs.curation.outputs import without_contaminated
from jobs.curation.result import CurateResult
from jobs.evaluation.config import ExperimentConfig
from jobs.evaluation.result import EvalResult, ExperimentResult
from quality import schema

console = Console(stderr=True)


def run(cfg: ExperimentConfig) -> ExperimentResult:
    """Curate, train every arm, evaluate; write experiment.json.

    Raises:
        ConfigError: when data or eval_data is missing.
        InputError: when an input cannot be read or an arm would have no rows.
    """
    from infra.ray_env import init_ray
    from jobs.evaluation import evaluate

    cfg.require_inputs()
    assert cfg.data is not None and cfg.eval_data is not None
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    evaluate.load_eval_rows(cfg.eval_data, max_rows=1, generate_rows=0)  # fail fast on bad input
    pool = readable_rows(cfg.data)
    leaked = overlap(pool, cfg.eval_data)
    if leaked:
        console.print(
            f"[yellow]warning:[/] {leaked} held-out rows have the same instruction as an input "
            "row: the held-out NLL then partly measures memorization; use held-out rows the "
            "input does not contain"
        )

    init_ray()  # once, up front: no arm's training time includes starting Ray
    data_files: dict[str, Path] = {}
    curate_summary = None
    if "curated" in cfg.arms:
        curate_summary = _curate(cfg, out)
        pool = without_contaminated(pool, out)  # the baselines leave the held-out rows out too
        data_files["curated"] = out / "selected.jsonl"
    n_random = _count_lines(data_files["curated"]) if "curated" in data_files else cfg.budget
    if "random" in cfg.arms:
        data_files["random"] = write_arm(
            random_sample(pool, n_random, cfg.seed), out / "arms" / "random.jsonl"
        )
    if "full" in cfg.arms:
        data_files["full"] = write_arm(pool, out / "arms" / "full.jsonl")

    trained = {arm: train_arm(cfg, arm, data_files[arm], out) for arm in cfg.arms}
    eval_cfg = with_values(
        cfg.eval,
        {
            "models": ("base", *cfg.arms),
            "eval_data": cfg.eval_data,
            "adapters_dir": str(out / "adapters"),
            "out": str(out),
        },
    )
    eval_result = evaluate.run(eval_cfg)
    result = assemble(cfg, trained, eval_result, curate_summary)
    (out / "experiment.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    from jobs.report.data import write_report
    from jobs.report.plots import experiment_bars

    _write_png(experiment_bars(result["arms"]), out / "experiment.png")
    return ExperimentResult.from_dict({**result, "report": str(write_report(out))})


def readable_rows(path: str) -> list[dict[str, Any]]:
    """The input rows curate can read (not quarantined): id, messages, prompt, response."""
    from quality.readers import read_all

    rows = [
        {"id": r["id"], "messages": r["messages"], "prompt": r["prompt"], "response": r["response"]}
        for r in read_all([path])
        if r["status"] == schema.ACTIVE
    ]
    if not rows:
        raise InputError(f"no readable rows in {path}; check it with `finesift curate` first")
    return rows


def overlap(pool: list[dict[str, Any]], eval_path: str) -> int:
    """Held-out rows whose normalized instruction also occurs in the input (leakage)."""
    from quality.readers import read_all
    from quality.text import instruction_key

    seen = {instruction_key(r["prompt"]) for r in pool}
    return sum(
        1
        for r in read_all([eval_path])
        if r["status"] == schema.ACTIVE and instruction_key(r["prompt"]) in seen
    )


def random_sample(rows: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` rows drawn uniformly without replacement (all of them when n >= len), seeded."""
    if n >= len(rows):
        return list(rows)
    picked = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [rows[i] for i in picked]


def write_arm(rows: list[dict[str, Any]], path: Path) -> Path:
    """Training rows as JSONL ``{"id", "messages"}`` (what ``finesift train`` reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            record = {"id": row["id"], "messages": json.loads(row["messages"])}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def _count_lines(path: Path) -> int:
    with open(path, encoding="utf-8") as handle:
        n = sum(1 for line in handle if line.strip())
    if n == 0:
        raise InputError(f"curate selected no rows ({path} is empty); check summary.json")
    return n


def _curate(cfg: ExperimentConfig, out: Path) -> CurateResult:
    from jobs.curation.curate import run as curate

    console.print(f"[bold cyan]finesift experiment[/] curating {cfg.data} to {cfg.budget} rows")
    curate_cfg = with_values(
        cfg.curate,
        {"inputs": (cfg.data,), "out": str(out), "report": False, "selection.budget": cfg.budget}
        | {"filters.decontaminate": (*cfg.curate.filters.decontaminate, cfg.eval_data)},
    )
    return curate(curate_cfg)


def train_arm(cfg: ExperimentConfig, arm: str, data: Path, out: Path) -> dict[str, Any]:
    """Train one arm from scratch (a previous run's adapter and checkpoints are replaced)."""
    from jobs.training.train import train

    adapters, storage = out / "adapters", out / "checkpoints"
    # These directories belong to this experiment; without removing them train() would
    # resume the earlier run and report its time as ~0.
    shutil.rmtree(adapters / arm, ignore_errors=True)
    shutil.rmtree(storage / arm, ignore_errors=True)
    console.print(f"[bold cyan]finesift experiment[/] training arm {arm} on {data}")
    train_cfg = with_values(
        cfg.train,
        {
            "data": str(data),
            "name": arm,
            "eval_data": cfg.eval_data,
            "adapters_dir": str(adapters),
            "scaling.storage_path": str(storage),
        },
    )
    start = time.perf_counter()
    result = train(train_cfg)
    seconds = time.perf_counter() - start
    meta = json.loads((result.adapter_dir / "finesift.json").read_text(encoding="utf-8"))
    return {
        "rows": meta.get("train_rows"),
        "steps": result.steps,
        "epochs": meta.get("epochs"),
        "tokens_seen": meta.get("tokens_seen"),
        "train_seconds": round(seconds, 1),
        "final_eval_loss": result.eval_loss,
    }


def assemble(
    cfg: ExperimentConfig,
    trained: dict[str, dict[str, Any]],
    eval_result: EvalResult,
    curate_summary: CurateResult | None,
) -> dict[str, Any]:
    """experiment.json: one row per arm (base model first) with cost and held-out figures."""
    by_model = {m.name: asdict(m) for m in eval_result.models}
    keys = ("nll", "perplexity", "rouge_l", "chrf")
    arms = [{"arm": "base", **{k: by_model["base"][k] for k in keys}}]
    for arm, cost in trained.items():
        arms.append({"arm": arm, **cost, **{k: by_model[arm][k] for k in keys}})
    o = cfg.train.optim
    schedule = (
        f"equal steps (train.optim.max_steps={o.max_steps})"
        if o.max_steps > 0
        else f"equal epochs ({o.epochs:g} per arm)"
    )
    nll = {a["arm"]: a["nll"] for a in arms}
    verdict = None
    if "curated" in nll and "random" in nll and None not in (nll["curated"], nll["random"]):
        better = "beats" if nll["curated"] < nll["random"] else "does not beat"
        verdict = (
            f"curated {better} random on held-out NLL: {nll['curated']:.4f} vs {nll['random']:.4f}"
        )
    return {
        "data": cfg.data,
        "eval_data": cfg.eval_data,
        "budget": cfg.budget,
        "schedule": schedule,
        "note": f"Every arm trained with the same settings, {schedule}; NLL and perplexity "
        f"on {eval_result.rows} held-out rows (answer tokens only), ROUGE-L and chrF of "
        f"greedy answers to {eval_result.generated_rows} of them. Train time is the wall "
        "time of each arm's training run, Ray Train worker start included."
        + (f" {verdict}." if verdict else ""),
        "verdict": verdict,
        "arms": arms,
        "curation": curate_summary.by_status if curate_summary else None,
    }


def _write_png(uri: str, path: Path) -> None:
    import base64

    path.write_bytes(base64.b64decode(uri.split(",", 1)[1]))


def print_table(result: ExperimentResult, out: Console | None = None) -> None:
    """The experiment table: cost and held-out figures per arm."""
    table = Table(title=f"finesift experiment: {result.schedule}", caption=result.verdict)
    for column in (
        "arm",
        "rows",
        "steps",
        "tokens",
        "train time",
        "NLL",
        "perplexity",
        "ROUGE-L",
        "chrF",
    ):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for a in result.arms:
        table.add_row(
            a.arm,
            _fmt(a.rows, "{:,}"),
            _fmt(a.steps, "{:,}"),
            _fmt(a.tokens_seen, "{:,}"),
            _fmt(a.train_seconds, "{:,.0f} s"),
            _fmt(a.nll, "{:.4f}"),
            _fmt(a.perplexity, "{:.2f}"),
            _fmt(a.rouge_l, "{:.4f}"),
            _fmt(a.chrf, "{:.2f}"),
        )
    (out or Console()).print(table)


def _fmt(value: Any, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)
