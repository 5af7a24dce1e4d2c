"""What a review hands on: verified.jsonl, the ledger's ``review`` column and the sidecar.

- ``verified.jsonl``: the accepted and edited rows (an edit replaces the conversation),
  in selection order then refills, with the record shape of selected.jsonl, so
  ``finesift train --data RUN_DIR/verified.jsonl`` reads it unchanged.
- ``ledger.parquet`` gains a ``review`` struct column (verdict, reason, reviewer, time,
  replaces): ``accepted`` / ``rejected`` / ``edited`` / ``unreviewed`` for the rows that
  were up for review, null for the others. Every other column and row is kept as it was.
- ``verified.review.json`` (:mod:`jobs.review.sidecar`): counts, reviewers, reasons and
  the sha256 of verified.jsonl, which ``finesift train`` records in its manifest.

Each file is written beside its final name and renamed over it, so a reader (or a crash)
never sees half a file; the ledger is rewritten a batch at a time.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from jobs.review.sidecar import sidecar_path
from jobs.review.store import Item, now

VERIFIED_FILE = "verified.jsonl"
REVIEW_COLUMN = "review"
REVIEW_TYPE = pa.struct(
    [
        ("verdict", pa.string()),
        ("reason", pa.string()),
        ("reviewer", pa.string()),
        ("time", pa.string()),
        ("replaces", pa.string()),
    ]
)
LEDGER_BATCH_ROWS = 65_536


def export_review(session, *, report: bool = True) -> dict[str, Any]:
    """Write verified.jsonl, the ledger's review column and the sidecar for a review.

    Args:
        session: the :class:`jobs.review.session.ReviewSession`.
        report: also rewrite report.html so it shows the review.

    Returns:
        What was written: paths, counts, reviewers and rejection reasons.
    """
    run = session.run
    items = [i for i in session.store.items() if i.state != "withdrawn"]  # one snapshot
    verified = [i for i in items if i.state in ("accepted", "edited")]
    path = run.run_dir / VERIFIED_FILE
    texts = run.text([i.row_id for i in verified])
    with _replacing(path, "w") as handle:
        for item in verified:
            handle.write(json.dumps(_record(run, item, texts[item.row_id]), ensure_ascii=False))
            handle.write("\n")
    reviews = {run.rows[i.row_id]["source"]: _review(i) for i in items}
    add_review_column(run.ledger_path, reviews)
    counts = Counter(i.state for i in items)
    summary = {
        "reviewed": True,
        "data": VERIFIED_FILE,
        "sha256": _sha256(path),
        "rows": len(verified),
        "run_dir": str(run.run_dir.resolve()),
        "store": str((run.run_dir / "review.sqlite").resolve()),
        "exported": now(),
        "budget": session.budget,
        "counts": {s: counts[s] for s in ("accepted", "edited", "rejected", "unreviewed")},
        "refills": sum(1 for i in items if i.origin == "refill"),
        "reviewers": sorted({i.reviewer for i in items if i.reviewer and i.state != "unreviewed"}),
        "rejection_reasons": dict(
            Counter(i.reason or "" for i in items if i.state == "rejected").most_common()
        ),
    }
    sidecar = Path(sidecar_path(str(path)))
    with _replacing(sidecar, "w") as handle:
        handle.write(json.dumps(summary, indent=2, ensure_ascii=False))
    summary["paths"] = {
        "verified": str(path),
        "sidecar": str(sidecar),
        "ledger": str(run.ledger_path),
    }
    if report:
        summary["paths"]["report"] = _write_report(run.run_dir)
    return summary


def _record(run, item: Item, text: dict[str, Any]) -> dict[str, Any]:
    """A selected.jsonl record (id, messages, source, quality, cluster); an edit's text."""
    row = run.rows[item.row_id]
    return {
        "id": item.row_id,
        "messages": item.messages if item.state == "edited" else text["messages"],
        "source": row["source"],
        "quality": row["quality"],
        "cluster": row["cluster"],
    }


def _review(item: Item) -> dict[str, Any]:
    reviewed = item.state != "unreviewed"
    return {
        "verdict": item.state,
        "reason": item.reason if reviewed else None,
        "reviewer": item.reviewer if reviewed else None,
        "time": item.time if reviewed else None,
        "replaces": item.replaces,
    }


def add_review_column(ledger: Path, reviews: dict[str, dict[str, Any]]) -> None:
    """Rewrite ledger.parquet with a ``review`` column (replacing an earlier one).

    Args:
        ledger: the ledger file.
        reviews: review struct values by the row's ``source`` (unique per input row,
            unlike ids an input may repeat); rows not named get null.
    """
    import pyarrow.parquet as pq

    with pq.ParquetFile(ledger) as source:
        schema = source.schema_arrow
        if REVIEW_COLUMN in schema.names:
            schema = schema.remove(schema.get_field_index(REVIEW_COLUMN))
        schema = schema.append(pa.field(REVIEW_COLUMN, REVIEW_TYPE))
        with _replacing(ledger, "wb") as handle, pq.ParquetWriter(handle, schema) as writer:
            for batch in source.iter_batches(batch_size=LEDGER_BATCH_ROWS):
                table = pa.Table.from_batches([batch])
                if REVIEW_COLUMN in table.column_names:
                    table = table.drop_columns([REVIEW_COLUMN])
                values = [reviews.get(s) for s in table["source"].to_pylist()]
                table = table.append_column(REVIEW_COLUMN, pa.array(values, type=REVIEW_TYPE))
                writer.write_table(table.cast(schema))


@contextmanager
def _replacing(path: Path, mode: str) -> Iterator[Any]:
    """A file that replaces ``path`` (by rename) only once it is completely written."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private; keep the mode of the file it replaces.
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sha256(path: Path) -> str:
    from jobs.training.data import file_sha256

    return file_sha256(path)


def _write_report(run_dir: Path) -> str | None:
    """report.html with the review section; a failed report never fails the export."""
    try:
        from jobs.report.data import write_report

        return str(write_report(run_dir))
    except Exception:  # noqa: BLE001 - the review outputs are already written
        return None
