"""Writing what curation decided: the ledger, the selection, the quarantine and a summary.

Everything streams batch by batch from the Ray dataset into single files, so the
driver holds one batch at a time however large the input.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from jobs.config import to_dict
from quality import schema, storage

LEDGER_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("duplicate_of", pa.string()),
        ("kept_instead", pa.string()),
        ("quality", pa.float64()),
        ("failed_rules", pa.list_(pa.string())),
        ("cluster", pa.int64()),
        ("timestamp", pa.string()),
        ("prompt", pa.string()),
        ("response", pa.string()),
        ("extras", pa.string()),
        # model-based signals (jobs/curate_signals.py); null where a signal did not run
        ("relevance", pa.float64()),
        ("ifd", pa.float64()),
        ("perplexity", pa.float64()),
        ("judge_score", pa.float64()),
        ("judge_status", pa.string()),
        # the conversation as JSON, exactly as selected.jsonl writes it (review refills from it)
        ("messages", pa.string()),
    ]
)


def write_outputs(
    ledger,
    out: str,
    *,
    clock_seconds: dict[str, float],
    coverage: dict[str, Any],
    cfg,
    input_files: list[str],
    embedding_map: dict[str, list] | None = None,
    stage_rows: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Stream the ledger dataset into ledger.parquet, selected.jsonl and quarantine.jsonl.

    Also writes map.parquet (id, x, y, cluster, status) for the rows of ``embedding_map``,
    the report's 2-D picture of the embedding space.

    Args:
        ledger: the Ray dataset of every row in the row schema.
        out: the output directory, a local path or a URI (``s3://bucket/run``); it must
            exist (object stores need no directory).
        clock_seconds: wall time per stage.
        coverage: the coverage figures of the selection.
        cfg: the curate config, recorded in summary.json.
        input_files: the discovered input files.
        embedding_map: {"id", "x", "y", "cluster"} lists for map.parquet, or None.
        stage_rows: rows each stage took in (the rows still active after the stages
            before it), recorded as ``rows_in``.

    Returns:
        The summary, also written to summary.json and printed as a table.
    """
    map_status = dict.fromkeys((embedding_map or {}).get("id", []))
    by_status: Counter[str] = Counter()
    by_reason: Counter[tuple[str, str]] = Counter()
    judge: Counter[str] = Counter()  # ok / unparseable / failed, for rows the judge saw
    with (
        storage.open_output(storage.join(out, "ledger.parquet")) as ledger_sink,
        pq.ParquetWriter(ledger_sink, LEDGER_SCHEMA) as ledger_file,
        storage.open_text_output(storage.join(out, "selected.jsonl")) as selected_file,
        storage.open_text_output(storage.join(out, "quarantine.jsonl")) as quarantine_file,
    ):
        for batch in ledger.iter_batches(batch_size=10_000, batch_format="pyarrow"):
            if batch.num_rows == 0:
                continue
            ledger_file.write_table(_ledger_table(batch))
            for row in batch.to_pylist():
                by_status[row["status"]] += 1
                by_reason[(row["status"], row["reason"] or "")] += 1
                if row["judge_status"]:
                    judge[row["judge_status"].split(":", 1)[0]] += 1
                if row["id"] in map_status:
                    map_status[row["id"]] = row["status"]
                if row["status"] == schema.SELECTED:
                    selected_file.write(json.dumps(_training_record(row), ensure_ascii=False))
                    selected_file.write("\n")
                elif row["status"] == schema.QUARANTINED:
                    quarantine_file.write(json.dumps(_quarantine_record(row), ensure_ascii=False))
                    quarantine_file.write("\n")
    if embedding_map and embedding_map.get("id"):
        table = pa.table({**embedding_map, "status": [map_status[i] for i in embedding_map["id"]]})
        with storage.open_output(storage.join(out, "map.parquet")) as map_file:
            pq.write_table(table, map_file)
    summary = {
        "input_files": input_files,
        "input_rows": sum(by_status.values()),
        "by_status": {s: by_status.get(s, 0) for s in schema.FINAL_STATUSES},
        "by_reason": [
            {"status": s, "reason": r, "rows": n}
            for (s, r), n in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "coverage": coverage,
        "judge": dict(judge),
        "seconds": clock_seconds,
        "rows_in": stage_rows or {},
        "outputs": {
            name: storage.join(out, name)
            for name in ("selected.jsonl", "ledger.parquet", "quarantine.jsonl", "summary.json")
        },
        "config": to_dict(cfg),
    }
    storage.write_text(storage.join(out, "summary.json"), json.dumps(summary, indent=2))
    return summary


def _ledger_table(batch: pa.Table) -> pa.Table:
    rules = [r.split(",") if r else [] for r in batch["failed_rules"].to_pylist()]
    columns = {name: batch[name] for name in LEDGER_SCHEMA.names if name != "failed_rules"}
    columns["failed_rules"] = pa.array(rules, type=pa.list_(pa.string()))
    return pa.table({name: columns[name] for name in LEDGER_SCHEMA.names}, schema=LEDGER_SCHEMA)


def _training_record(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "messages": json.loads(row["messages"]),
        "source": row["source"],
        "quality": row["quality"],
        "cluster": row["cluster"],
    }


def _quarantine_record(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "source": row["source"],
        "reason": row["reason"],
        "detail": row["detail"],
        "raw": row["raw"],
    }


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    """The summary as rich tables: rows by status and reason, coverage, time per stage."""
    console = console or Console()
    table = Table(title=f"finesift curate: {summary['input_rows']} input rows")
    table.add_column("status")
    table.add_column("reason")
    table.add_column("rows", justify="right")
    for item in summary["by_reason"]:
        table.add_row(item["status"], item["reason"] or "-", str(item["rows"]))
    console.print(table)
    counts = summary["by_status"]
    console.print(
        " + ".join(f"{counts[s]} {s}" for s in schema.FINAL_STATUSES)
        + f" = {sum(counts.values())} rows"
    )
    cov = summary.get("coverage") or {}
    if cov:
        console.print(
            f"coverage (mean cosine distance from each of {cov['survivors']} survivors to its "
            f"nearest pick, lower is better): selected {cov['selected']:.4f}, "
            f"random pick of the same size {cov['random']:.4f}"
        )
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in summary["seconds"].items())
    console.print(f"time: {stages}")
    console.print(f"outputs: {storage.parent(summary['outputs']['selected.jsonl'])}")
    if summary.get("report"):
        console.print(f"report: {summary['report']}")
