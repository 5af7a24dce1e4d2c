"""Writing what curation decided: the ledger, the selection, the quarantine and a summary.

Everything streams batch by batch from the Ray dataset into single files, so the
driver holds one batch at a time however large the input.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from infra import storage
from jobs.curation.result import CurateResult, ReasonCount
from quality import schema


@dataclass
class Written:
    """What writing the ledger counted on the way."""

    by_status: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[tuple[str, str]] = field(default_factory=Counter)
    judge: Counter[str] = field(default_factory=Counter)  # ok / unparseable / failed
    renamed_ids: int = 0  # rows whose input id other rows held too (id is now id@source)


def write_outputs(ledger, out: str, *, embedding_map: dict[str, list] | None = None) -> Written:
    """Stream the ledger dataset into ledger.parquet, selected.jsonl and quarantine.jsonl.

    Also writes map.parquet (id, x, y, cluster, status) for the rows of ``embedding_map``,
    the report's 2-D picture of the embedding space.

    Args:
        ledger: the Ray dataset of every row in the row schema.
        out: the output directory, a local path or a URI (``s3://bucket/run``); it must
            exist (object stores need no directory).
        embedding_map: {"id", "x", "y", "cluster"} lists for map.parquet, or None.

    Returns:
        Rows per status, per (status, reason) and per judge outcome.
    """
    map_status = dict.fromkeys((embedding_map or {}).get("id", []))
    map_ids = pa.array(list(map_status), pa.string())
    counts = Written()
    with (
        storage.open_output(storage.join(out, "ledger.parquet")) as ledger_sink,
        pq.ParquetWriter(ledger_sink, schema.LEDGER_SCHEMA) as ledger_file,
        storage.open_text_output(storage.join(out, "selected.jsonl")) as selected_file,
        storage.open_text_output(storage.join(out, "quarantine.jsonl")) as quarantine_file,
    ):
        for batch in ledger.iter_batches(batch_size=10_000, batch_format="pyarrow"):
            if batch.num_rows == 0:
                continue
            ledger_file.write_table(batch.select(schema.LEDGER_SCHEMA.names))
            count_batch(batch, counts)
            if map_status:
                shown = batch.filter(pc.is_in(batch["id"], map_ids))
                ids, statuses = shown["id"].to_pylist(), shown["status"].to_pylist()
                map_status.update(zip(ids, statuses, strict=True))
            # Only the few selected and quarantined rows become Python objects.
            status = batch["status"]
            for row in batch.filter(pc.equal(status, schema.SELECTED)).to_pylist():
                selected_file.write(json.dumps(_training_record(row), ensure_ascii=False))
                selected_file.write("\n")
            for row in batch.filter(pc.equal(status, schema.QUARANTINED)).to_pylist():
                quarantine_file.write(json.dumps(_quarantine_record(row), ensure_ascii=False))
                quarantine_file.write("\n")
    if embedding_map and embedding_map.get("id"):
        table = pa.table({**embedding_map, "status": [map_status[i] for i in embedding_map["id"]]})
        with storage.open_output(storage.join(out, "map.parquet")) as map_file:
            pq.write_table(table, map_file)
    return counts


def count_batch(batch: pa.Table, counts: Written) -> None:
    """Add one ledger batch to the counts per status, reason and judge outcome."""
    grouped = (
        batch.select(["status", "reason"])
        .group_by(["status", "reason"])
        .aggregate([([], "count_all")])
    )
    for status, reason, n in zip(
        grouped["status"].to_pylist(),
        grouped["reason"].to_pylist(),
        grouped["count_all"].to_pylist(),
        strict=True,
    ):
        counts.by_status[status] += n
        counts.by_reason[(status, reason or "")] += n
    judged = batch["judge_status"].drop_null().to_pylist()
    counts.judge.update(s.split(":", 1)[0] for s in judged if s)
    counts.renamed_ids += batch.num_rows - batch["input_id"].null_count


def write_summary(result: CurateResult, out: str) -> None:
    """summary.json: the result as JSON."""
    storage.write_text(storage.join(out, "summary.json"), json.dumps(result.to_dict(), indent=2))


def reason_counts(counts: Written) -> list[ReasonCount]:
    """Rows per (status, reason), most first."""
    ordered = sorted(counts.by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
    return [ReasonCount(status=s, reason=r, rows=n) for (s, r), n in ordered]


def without_contaminated(rows: list[dict[str, Any]], out: str | Any) -> list[dict[str, Any]]:
    """``rows`` minus those the curate run in ``out`` found contaminated (by id).

    For rows that reach training without curation (an experiment's baseline arms), so
    they leave an evaluation set's rows out too. Besides the rows dropped as
    ``contaminated``, that is the rows an earlier stage dropped as their exact duplicates,
    agreeing answers or conflicts: those share the contaminated row's instruction, but
    were decided (and named it in ``duplicate_of`` / ``kept_instead``) before
    decontamination ran.
    """
    with storage.open_input(storage.join(str(out), "ledger.parquet")) as handle:
        ledger = pq.read_table(handle, columns=["id", "reason", "duplicate_of", "kept_instead"])
    entries = ledger.to_pylist()
    dropped = {e["id"] for e in entries if e["reason"] == "contaminated"}
    dropped |= {
        e["id"] for e in entries if e["duplicate_of"] in dropped or e["kept_instead"] in dropped
    }
    return [row for row in rows if row["id"] not in dropped]


def _training_record(row: dict[str, Any]) -> dict[str, Any]:
    record = {
        "id": row["id"],
        "messages": json.loads(row["messages"]),
        "source": row["source"],
        "quality": row["quality"],
        "cluster": row["cluster"],
    }
    if row["input_id"] is not None:
        record["input_id"] = row["input_id"]
    return record


def _quarantine_record(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "source": row["source"],
        "reason": row["reason"],
        "detail": row["detail"],
        "raw": row["raw"],
    }


def print_summary(result: CurateResult, console: Console | None = None) -> None:
    """The result as rich tables: rows by status and reason, coverage, time per stage."""
    console = console or Console()
    table = Table(title=f"finesift curate: {result.input_rows} input rows")
    table.add_column("status")
    table.add_column("reason")
    table.add_column("rows", justify="right")
    for item in result.by_reason:
        table.add_row(item.status, item.reason or "-", str(item.rows))
    console.print(table)
    counts = result.by_status
    console.print(
        " + ".join(f"{counts.get(s, 0)} {s}" for s in schema.FINAL_STATUSES)
        + f" = {sum(counts.values())} rows"
    )
    if result.renamed_ids:
        console.print(
            f"{result.renamed_ids} rows shared their id with other rows: each got id@source "
            "as its id (input_id in the ledger keeps the original)"
        )
    cov = result.coverage
    if cov:
        console.print(
            f"coverage (mean cosine distance from each of {cov.survivors} survivors to its "
            f"nearest pick, lower is better): selected {cov.selected:.4f}, "
            f"random pick of the same size {cov.random:.4f}"
        )
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
    console.print(f"time: {stages}")
    console.print(f"outputs: {storage.parent(result.path('selected.jsonl'))}")
    if result.report:
        console.print(f"report: {result.report}")
