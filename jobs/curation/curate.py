"""``finesift curate``: the curation job, its stages declared in :mod:`jobs.curation.pipeline`
and run on Ray Data by :mod:`jobs.curation.runner`.

Rows decided at a stage leave the active stream and are unioned back for the ledger, so
every input row ends selected, dropped or quarantined with a reason. Outputs stream into
``cfg.out``: selected.jsonl, ledger.parquet, quarantine.jsonl, summary.json, map.parquet
and report.html.
"""

from __future__ import annotations

import dataclasses
import time

from rich.console import Console

from jobs.curation.config import CurateConfig
from jobs.curation.result import OUTPUT_FILES, Coverage, CurateResult
from quality import schema

console = Console(stderr=True)


def run(cfg: CurateConfig) -> CurateResult:
    """Curate ``cfg.inputs`` into ``cfg.out``.

    Returns:
        The counts, timings and paths, also written to summary.json.

    Raises:
        InputError: a missing input path, an unsupported file format, a remote judge
            without its API key (all before Ray starts).
        ModelNotFoundError: an embedder or IFD model that cannot be found offline.
    """
    from infra import storage
    from infra.config import to_dict
    from infra.ray_env import init_ray
    from jobs.curation.outputs import reason_counts, write_outputs, write_summary
    from jobs.curation.pipeline import build_stages
    from jobs.curation.runner import run_stages
    from jobs.curation.stages.read import input_files

    stages = build_stages(cfg)  # fails fast, before Ray starts, on a bad input or setting
    storage.make_dirs(cfg.out)  # a local directory or a URI (s3://, gs://)
    init_ray()
    outcome = run_stages(stages, console)
    figures = outcome.figures()

    console.print("[bold cyan]finesift curate[/] write...")
    start = time.perf_counter()
    counts = write_outputs(outcome.ledger, cfg.out, embedding_map=figures.get("embedding_map"))
    seconds = {run.name: run.seconds for run in outcome.stages}
    seconds["write"] = round(time.perf_counter() - start, 3)
    coverage = figures.get("coverage")
    result = CurateResult(
        input_files=input_files(stages[0]),
        input_rows=sum(counts.by_status.values()),
        by_status={s: counts.by_status.get(s, 0) for s in schema.FINAL_STATUSES},
        by_reason=reason_counts(counts),
        coverage=Coverage(**coverage) if coverage else None,
        judge=dict(counts.judge),
        seconds=seconds,
        rows_in={run.name: run.rows_in for run in outcome.stages if run.rows_in is not None},
        outputs={name: storage.join(cfg.out, name) for name in OUTPUT_FILES},
        renamed_ids=counts.renamed_ids,
        config=to_dict(cfg),
    )
    write_summary(result, cfg.out)
    if result.input_rows == 0:
        console.print(
            "[yellow]warning:[/] the inputs hold no records (blank files, a CSV header "
            f"alone, empty arrays): the outputs in {cfg.out} are complete and empty"
        )
    if cfg.report:
        report = _write_report(cfg.out)
        if report:
            result = dataclasses.replace(result, report=report)
            write_summary(result, cfg.out)
    return result


def _write_report(out: str) -> str | None:
    """report.html beside the outputs; a failed report never fails the curation run."""
    try:
        from jobs.report.data import write_report

        return str(write_report(out))
    except Exception as exc:  # noqa: BLE001 - the data outputs are already written
        console.print(f"[yellow]warning:[/] report.html not written: {exc}")
        return None
