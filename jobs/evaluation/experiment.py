"""``finesift experiment``: does curation beat more, random or longer data on the user's data?

Steps, all in ``--out``:

1. curate the noisy input (curate's outputs land in OUT: selected.jsonl, ledger.parquet...);
2. build the arms (:mod:`jobs.evaluation.arms`): ``curated``, ``random`` (one draw per
   seed), ``longest`` and ``full`` (OUT/arms/);
3. train one LoRA adapter per arm and seed (OUT/adapters/ARM-seedN) with the same training
   settings, ``train.seed`` set to the seed;
4. evaluate the base model and every adapter on the held-out rows (eval.json): chrF of
   each greedy answer averaged over the answers (the headline), corpus chrF, ROUGE-L, the
   answers' length against the references', and NLL of the reference answers;
5. compare curated with every other arm on chrF and on corpus chrF, mean over seeds, each
   with a paired bootstrap over the held-out prompts; write experiment.json,
   experiment.png and report.html.

Why generation first: on a 135M model, held-out NLL barely moves with data quality (the
same 500-row budget drawn from clean rows and from a 36%-noisy pool gave NLL within 0.3%
of each other, issue 15), while chrF of the answers separated them by several points.

Why chrF per answer over corpus chrF: corpus chrF pools the character n-grams of all
answers, so long answers weigh most, and its beta of 2 favours recall, which grows with
length. On the Dolly experiment it ranked the models by how much they wrote, the untuned
base model first (BENCHMARKS.md). The mean over answers counts every prompt once, as
ROUGE-L and the bootstrap do.

Equal epochs, not equal steps: each arm is trained the way a user would train on that
dataset, so the cost columns show what training on everything costs, while curated,
random and longest (same row count) get the same number of steps and compare at equal
compute. Setting ``train.optim.max_steps`` switches to equal steps.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console

from infra.config import to_dict, with_values
from jobs.curation.outputs import without_contaminated
from jobs.curation.result import CurateResult
from jobs.evaluation import resume as resume_state
from jobs.evaluation.arms import (
    TrainingRun,
    count_rows,
    longest_rows,
    overlap,
    random_sample,
    readable_rows,
    write_arm,
)
from jobs.evaluation.compare import assemble, read_generations
from jobs.evaluation.config import EvalConfig, ExperimentConfig
from jobs.evaluation.result import EvalResult, ExperimentResult

console = Console(stderr=True)


def run(cfg: ExperimentConfig) -> ExperimentResult:
    """Curate, train every arm once per seed, evaluate; write experiment.json.

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
            "row: the held-out figures then partly measure memorization; use held-out rows "
            "the input does not contain"
        )

    init_ray()  # once, up front: no arm's training time includes starting Ray
    curate_summary = None
    if {"curated", "longest"} & set(cfg.arms):  # longest ranks curate's survivors
        curate_summary = _curate(cfg, out)
        pool = without_contaminated(pool, out)  # the baselines leave the held-out rows out too
    runs = plan_runs(cfg, pool, out)
    print_plan(cfg, runs)
    trained = train_runs(cfg, runs, out)
    eval_cfg = with_values(
        cfg.eval,
        {
            "models": ("base", *(r.model for r in runs)),
            "eval_data": cfg.eval_data,
            "adapters_dir": str(out / "adapters"),
            "out": str(out),
        },
    )
    eval_result = evaluate_models(eval_cfg, resume=cfg.resume)
    generations = read_generations(out / "eval_samples.jsonl")
    result = assemble(cfg, runs, trained, eval_result, generations, curate_summary)
    (out / "experiment.json").write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    from jobs.report.data import write_report
    from jobs.report.plots import experiment_bars

    _write_png(experiment_bars([asdict(a) for a in result.arms]), out / "experiment.png")
    return ExperimentResult.from_dict({**result.to_dict(), "report": str(write_report(out))})


def evaluate_models(eval_cfg: EvalConfig, *, resume: bool = False) -> EvalResult:
    """Evaluate the base model and every adapter: eval.json, eval_samples.jsonl and each
    model's fingerprint (:mod:`jobs.evaluation.resume`).

    Args:
        eval_cfg: the experiment's eval settings, every model listed.
        resume: keep the figures and answers of each model whose fingerprint (its adapter's
            files, the eval settings, the held-out rows) matches the earlier run's; only
            the others are evaluated.

    Returns:
        Every model's figures, in ``eval_cfg.models`` order.
    """
    from jobs.evaluation import evaluate

    fingerprints = resume_state.model_fingerprints(eval_cfg)
    kept = resume_state.kept_evaluations(eval_cfg, fingerprints) if resume else {}
    todo = tuple(m for m in eval_cfg.models if m not in kept)
    if not kept:
        result = evaluate.run(eval_cfg)
        resume_state.record_evaluations(eval_cfg, fingerprints)
        return result
    console.print(
        f"[bold cyan]finesift experiment[/] --resume: kept the evaluation of {len(kept)} "
        f"models ({', '.join(kept)}); evaluating {len(todo)}"
    )
    fresh: dict[str, resume_state.ModelFigures] = {}
    if todo:
        partial = resume_state.partial_config(eval_cfg, todo)
        done = evaluate.run(partial)
        fresh = resume_state.figures_by_model(Path(partial.out), {m.name for m in done.models})
    merged = {**kept, **fresh}
    generate_rows = eval_cfg.generation.max_rows if eval_cfg.generation.enabled else 0
    rows = evaluate.load_eval_rows(eval_cfg.eval_data, eval_cfg.max_rows, max(generate_rows, 0))
    if not eval_cfg.generation.enabled:
        rows = [{**r, "generate": False} for r in rows]
    result = evaluate.finish(
        eval_cfg,
        rows,
        [merged[m][0] for m in eval_cfg.models],
        [s for m in eval_cfg.models for s in merged[m][1]],
    )
    resume_state.record_evaluations(eval_cfg, fingerprints)
    if todo:  # merged into OUT now
        shutil.rmtree(resume_state.partial_config(eval_cfg, todo).out, ignore_errors=True)
    return result


def plan_runs(cfg: ExperimentConfig, pool: list[dict[str, Any]], out: Path) -> list[TrainingRun]:
    """Write every arm's data (OUT/arms/) and list the training runs, arm by arm.

    The random and longest arms take as many rows as curate selected (the budget when
    curate did not run), so the three compare at equal rows and steps. Only the random
    arm's rows depend on the seed.
    """
    selected, arms = out / "selected.jsonl", out / "arms"
    n_pick = count_rows(selected) if {"curated", "longest"} & set(cfg.arms) else cfg.budget
    runs = []
    for arm in cfg.arms:
        if arm == "curated":
            path = selected
        elif arm == "longest":
            path = write_arm(longest_rows(out / "ledger.parquet", n_pick), arms / "longest.jsonl")
        elif arm == "full":
            path = write_arm(pool, arms / "full.jsonl")
        for seed in cfg.arm_seeds(arm):
            if arm == "random":
                drawn = random_sample(pool, n_pick, seed)
                path = write_arm(drawn, arms / f"random-seed{seed}.jsonl")
            runs.append(TrainingRun(arm, seed, path, count_rows(path)))
    return runs


def planned_steps(cfg: ExperimentConfig, rows: int) -> int:
    """Optimizer steps of one run on ``rows`` rows (one worker; for the plan only)."""
    o = cfg.train.optim
    if o.max_steps > 0:
        return o.max_steps
    workers = max(1, cfg.train.scaling.num_workers)
    per_epoch = max(1, math.ceil(rows / (o.batch_size * workers)) // o.gradient_accumulation)
    return math.ceil(o.epochs * per_epoch)


def print_plan(cfg: ExperimentConfig, runs: list[TrainingRun]) -> None:
    """What training will cost, arm by arm, before it starts."""
    parts = []
    for arm in cfg.arms:
        mine = [r for r in runs if r.arm == arm]
        steps = planned_steps(cfg, mine[0].rows)
        parts.append(f"{arm} {len(mine)} x {steps:,} steps ({mine[0].rows:,} rows)")
    total = sum(planned_steps(cfg, r.rows) for r in runs)
    console.print(
        f"[bold cyan]finesift experiment[/] {len(runs)} training runs, {total:,} steps in all: "
        + "; ".join(parts)
    )


def train_runs(
    cfg: ExperimentConfig, runs: list[TrainingRun], out: Path
) -> dict[str, dict[str, Any]]:
    """Train every run in order, printing the pace and the time left after each."""
    trained: dict[str, dict[str, Any]] = {}
    seconds = steps = 0.0
    for i, training in enumerate(runs):
        cost = train_arm(cfg, training, out)
        trained[training.model] = cost
        seconds += cost["train_seconds"]
        steps += cost["steps"] or 0
        left = sum(planned_steps(cfg, r.rows) for r in runs[i + 1 :])
        pace = seconds / steps if steps else 0.0
        console.print(
            f"[bold cyan]finesift experiment[/] trained {training.model}: {cost['steps']:,} "
            f"steps, {cost['tokens_seen'] or 0:,} tokens in {cost['train_seconds']:,.0f} s "
            f"({pace:.1f} s/step so far); {len(runs) - i - 1} runs left, {left:,} steps, "
            f"about {left * pace / 60:,.0f} min at this pace"
        )
    return trained


def _curate(cfg: ExperimentConfig, out: Path) -> CurateResult:
    from jobs.curation.curate import run as curate

    curate_cfg = with_values(
        cfg.curate,
        {"inputs": (cfg.data,), "out": str(out), "report": False, "selection.budget": cfg.budget}
        | {"filters.decontaminate": (*cfg.curate.filters.decontaminate, cfg.eval_data)},
    )
    assert cfg.data is not None and cfg.eval_data is not None
    inputs = resume_state.input_digests(cfg.data, cfg.eval_data)
    earlier = resume_state.curation_matches(out, curate_cfg, inputs) if cfg.resume else None
    if earlier is not None:
        console.print(f"[bold cyan]finesift experiment[/] --resume: kept the curation in {out}")
        return CurateResult.from_dict(earlier)
    console.print(f"[bold cyan]finesift experiment[/] curating {cfg.data} to {cfg.budget} rows")
    result = curate(curate_cfg)
    resume_state.record_inputs(out, inputs)
    return result


def train_arm(cfg: ExperimentConfig, training: TrainingRun, out: Path) -> dict[str, Any]:
    """Train one run from scratch (a previous run's adapter and checkpoints are replaced).

    Its cost is recorded in OUT/arms/NAME.run.json beside what it was trained from (the
    data's digest, the training settings); with ``resume`` a matching record and its
    adapter are kept instead of training again.
    """
    from jobs.training.train import train

    adapters, storage = out / "adapters", out / "checkpoints"
    name = training.model
    train_cfg = with_values(
        cfg.train,
        {
            "data": str(training.data),
            "name": name,
            "seed": training.seed,
            "eval_data": cfg.eval_data,
            "adapters_dir": str(adapters),
            "scaling.storage_path": str(storage),
        },
    )
    record = out / "arms" / f"{name}.run.json"
    source = {
        "data_sha256": resume_state.file_digest(training.data),
        "train": to_dict(train_cfg),
    }
    if cfg.resume and record.is_file() and (adapters / name / "finesift.json").is_file():
        earlier = json.loads(record.read_text(encoding="utf-8"))
        if resume_state.same(earlier.get("source"), source):
            console.print(f"[bold cyan]finesift experiment[/] --resume: kept {name}")
            return earlier["cost"]
    # These directories belong to this experiment; without removing them train() would
    # resume the earlier run and report its time as ~0.
    record.unlink(missing_ok=True)
    shutil.rmtree(adapters / name, ignore_errors=True)
    shutil.rmtree(storage / name, ignore_errors=True)
    console.print(f"[bold cyan]finesift experiment[/] training {name} on {training.data}")
    start = time.perf_counter()
    result = train(train_cfg)
    seconds = time.perf_counter() - start
    meta = json.loads((result.adapter_dir / "finesift.json").read_text(encoding="utf-8"))
    cost = {
        "rows": meta.get("train_rows"),
        "steps": result.steps,
        "epochs": meta.get("epochs"),
        "tokens_seen": meta.get("tokens_seen"),
        "train_seconds": round(seconds, 1),
        "final_eval_loss": result.eval_loss,
    }
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"source": source, "cost": cost}, indent=2), encoding="utf-8")
    return cost


def _write_png(uri: str, path: Path) -> None:
    import base64

    path.write_bytes(base64.b64decode(uri.split(",", 1)[1]))
