"""``finesift report RUN_DIR``: one self-contained report.html for a curate or experiment run.

Reads what the run left in RUN_DIR, each part optional: summary.json and ledger.parquet
(counts, quality histograms, dropped rows beside the rows they lost to), map.parquet
(the 2-D embedding map), adapters/*/finesift.json (training curves), eval.json and
experiment.json. The page itself is built by :mod:`jobs.report.html`. The ledger is read
column by column and only the shown rows' text is loaded, which keeps a 5k-row report
around a second.

RUN_DIR may be a URI (``s3://bucket/run``): the run's files are copied to a temporary
directory, the page is built there and report.html is uploaded beside them.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from infra import storage
from infra.errors import InputError
from quality import schema

ROWS_PER_REASON = 50
"""Dropped rows shown per reason in the browsable tables."""
LEDGER_KEYS = ["id", "status", "reason", "quality", "duplicate_of", "kept_instead"]
LEDGER_TEXT = ["id", "source", "status", "reason", "detail", "quality", "prompt", "response"]
RUN_FILES = ("summary.json", "ledger.parquet", "map.parquet", "eval.json", "experiment.json")
"""The files of a run directory on cloud storage that the report reads."""


@dataclass
class RunData:
    """Everything the report shows; None or empty where the run has no such output."""

    run_dir: Path
    location: str | None = None
    """Where the run lives when that is not ``run_dir`` (the URI of a cloud run)."""
    summary: dict[str, Any] | None = None
    by_reason: list[dict[str, Any]] = field(default_factory=list)
    quality_selected: np.ndarray | None = None
    quality_dropped: np.ndarray | None = None
    map_table: Any = None
    examples: list[dict[str, Any]] = field(default_factory=list)
    """Per reason: {"status", "reason", "rows", "shown": [(row, partner row or None,
    partner id or None)]}."""
    training: list[dict[str, Any]] = field(default_factory=list)
    eval: dict[str, Any] | None = None
    experiment: dict[str, Any] | None = None
    review: dict[str, Any] | None = None
    """From the ledger's ``review`` column (``finesift review``): {"counts", "reasons",
    "reviewers"}."""


def write_report(run_dir: str | Path) -> Path | str:
    """Write ``RUN_DIR/report.html`` from whatever outputs the run directory holds.

    Args:
        run_dir: a ``finesift curate --out`` or ``finesift experiment --out`` directory,
            or its URI (``s3://bucket/run``; adapters are not looked up there).

    Returns:
        The path of report.html (its URI for a run on cloud storage).

    Raises:
        InputError: when the directory is missing or holds no finesift output.
    """
    from jobs.report.html import render

    if storage.is_uri(str(run_dir)):
        return _write_remote_report(str(run_dir))
    data = load_run(Path(run_dir))
    path = data.run_dir / "report.html"
    path.write_text(render(data), encoding="utf-8")
    return path


def _write_remote_report(uri: str) -> str:
    """report.html for a run on cloud storage, built from local copies of its files."""
    from jobs.report.html import render

    if storage.kind_of(uri) != "dir":
        raise InputError(
            f"run directory {uri} does not exist; pass the --out URI of `finesift curate`"
        )
    with tempfile.TemporaryDirectory(prefix="finesift-report-") as tmp:
        # Named like the run, so the page's title is the run's name.
        local = Path(tmp) / (Path(storage.name_of(uri).rstrip("/")).name or "run")
        local.mkdir()
        for name in RUN_FILES:
            remote = storage.join(uri, name)
            if storage.kind_of(remote) == "file":
                storage.copy_file(remote, str(local / name))
        if not any(local.iterdir()):
            raise InputError(
                f"{uri} holds no finesift outputs ({', '.join(RUN_FILES)}); pass the --out "
                "URI of a curate run"
            )
        data = load_run(local)
        data.location = uri
        page = storage.join(uri, "report.html")
        storage.write_text(page, render(data))
    return page


def load_run(run_dir: Path) -> RunData:
    """Read the run's outputs (all optional, but at least one must be there)."""
    if not run_dir.is_dir():
        raise InputError(
            f"run directory {run_dir} does not exist; pass the --out directory of "
            "`finesift curate` or `finesift experiment`"
        )
    data = RunData(run_dir=run_dir)
    data.summary = _read_json(run_dir / "summary.json")
    if (run_dir / "ledger.parquet").is_file():
        _load_ledger(run_dir / "ledger.parquet", data)
        data.review = _load_review(run_dir / "ledger.parquet")
    if (run_dir / "map.parquet").is_file():
        import pyarrow.parquet as pq

        data.map_table = pq.read_table(run_dir / "map.parquet")
    data.eval = _read_json(run_dir / "eval.json")
    data.experiment = _read_json(run_dir / "experiment.json")
    data.training = _training_runs(run_dir, data.eval)
    if not (data.summary or data.by_reason or data.eval or data.training or data.experiment):
        raise InputError(
            f"{run_dir} holds no finesift outputs (summary.json, ledger.parquet, eval.json, "
            "adapters/*/finesift.json); pass the --out directory of a curate or experiment run"
        )
    return data


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON ({exc}); rerun the job that wrote it") from exc


def _load_ledger(path: Path, data: RunData) -> None:
    """Counts, quality scores and the shown dropped rows with their partners."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    keys = pq.read_table(path, columns=LEDGER_KEYS)
    status, reason = keys["status"], pc.fill_null(keys["reason"], "")
    if data.summary and data.summary.get("by_reason"):
        data.by_reason = list(data.summary["by_reason"])
    else:
        counts = keys.group_by(["status", "reason"]).aggregate([("id", "count")]).to_pylist()
        data.by_reason = sorted(
            (
                {"status": c["status"], "reason": c["reason"] or "", "rows": c["id_count"]}
                for c in counts
            ),
            key=lambda r: -r["rows"],
        )
    quality = keys["quality"]
    data.quality_selected = _floats(quality.filter(pc.equal(status, schema.SELECTED)))
    data.quality_dropped = _floats(quality.filter(pc.equal(status, schema.DROPPED)))

    groups = []
    for entry in data.by_reason:
        if entry["status"] == schema.SELECTED:
            continue
        hit = pc.and_(pc.equal(status, entry["status"]), pc.equal(reason, entry["reason"] or ""))
        rows = keys.filter(hit).slice(0, ROWS_PER_REASON).to_pylist()
        groups.append((entry, rows))
    wanted = {r["id"] for _, rows in groups for r in rows}
    wanted |= {r[k] for _, rows in groups for r in rows for k in ("duplicate_of", "kept_instead")}
    wanted.discard(None)
    by_id: dict[str, dict[str, Any]] = {}
    if wanted:  # an "in" filter on an empty list is an Arrow type error
        texts = pq.read_table(path, columns=LEDGER_TEXT, filters=[("id", "in", sorted(wanted))])
        for row in texts.to_pylist():
            by_id.setdefault(row["id"], row)
    for entry, rows in groups:
        shown = []
        for row in rows:
            partner_id = row["duplicate_of"] or row["kept_instead"]
            shown.append(
                (
                    by_id.get(row["id"], row),
                    by_id.get(partner_id) if partner_id else None,
                    partner_id,
                )
            )
        data.examples.append({**entry, "shown": shown})


def _load_review(path: Path) -> dict[str, Any] | None:
    """Verdict counts, rejection reasons and reviewers from the ledger's review column."""
    from collections import Counter

    import pyarrow.parquet as pq

    if "review" not in pq.read_schema(path).names:
        return None
    reviews = [r for r in pq.read_table(path, columns=["review"])["review"].to_pylist() if r]
    rejected = Counter(r["reason"] or "-" for r in reviews if r["verdict"] == "rejected")
    return {
        "counts": dict(Counter(r["verdict"] for r in reviews)),
        "reasons": rejected.most_common(),
        "reviewers": sorted({r["reviewer"] for r in reviews if r["reviewer"]}),
    }


def _floats(column: Any) -> np.ndarray:
    values = column.drop_null().to_numpy(zero_copy_only=False) if len(column) else []
    return np.asarray(values, dtype=np.float64)


def _training_runs(run_dir: Path, eval_result: dict[str, Any] | None) -> list[dict[str, Any]]:
    """finesift.json of adapters in RUN_DIR/adapters and of the adapters eval.json names."""
    dirs = sorted(p for p in (run_dir / "adapters").glob("*") if p.is_dir())
    for model in (eval_result or {}).get("models", []):
        if model.get("adapter"):
            dirs.append(Path(model["adapter"]))
    runs, seen = [], set()
    for adapter in dirs:
        key = adapter.resolve()
        meta = _read_json(adapter / "finesift.json") if key not in seen else None
        seen.add(key)
        if meta is not None:
            runs.append({"name": meta.get("name") or adapter.name, **meta})
    return runs
