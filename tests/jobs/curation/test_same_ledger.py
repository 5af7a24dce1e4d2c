"""The curation job's decisions on a fixed input, compared with a recorded ledger.

A refactor of the pipeline (stages moved between modules, a new runner) must give the
same ledger on the same input and seed: every row's status, reason, duplicate_of,
kept_instead, cluster and scores. The recorded ledger lives in golden/; when a change
is *meant* to alter decisions, rerun with FINESIFT_WRITE_GOLDEN=1 and say why in the
commit.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from infra.config import load_config
from jobs.curation.config import CurateConfig

pytestmark = pytest.mark.ray

GOLDEN = Path(__file__).parent / "golden" / "ledger_demo400.jsonl"
COMPARED = ("status", "reason", "duplicate_of", "kept_instead", "cluster", "failed_rules")
SCORES = ("quality", "relevance")
OVERRIDES = [
    "selection.budget=60",
    "embed.model=hashing",
    "signals.relevance=true",  # hashing turns it off by default; the golden covers it
    "signals.relevance_threshold=-0.05",
    "clusters.rows_per_cluster=60",  # several clusters: per-cluster dedup and quotas
    "dedup.semantic_threshold=0.9",
    "report=false",
]


def _ledger_rows(path: Path) -> dict[str, dict]:
    """Rows by id; a quarantined row by its line, since its id hashes the (temporary) path."""
    table = pq.read_table(path, columns=["id", "source", *COMPARED, *SCORES])
    rows = {}
    for row in table.to_pylist():
        source = row.pop("source")
        row_id = row.pop("id")
        if row["status"] == "quarantined":
            row_id = "line:" + source.rsplit(":", 1)[1]
        rows[row_id] = row
    return rows


def test_a_fixed_input_gives_the_recorded_ledger(ray_session, tmp_path):
    from jobs.curation.curate import run
    from jobs.demo.generator import iter_generate, write_jsonl

    data = tmp_path / "noisy.jsonl"
    # Explicit ids: a row without one is named by a hash of its path, which tmp_path varies.
    records = ({"id": f"demo-{i:03d}", **r} for i, r in enumerate(iter_generate(400, seed=0)))
    write_jsonl(records, data)
    cfg = load_config(CurateConfig, None, OVERRIDES, inputs=(str(data),), out=str(tmp_path / "out"))
    run(cfg)
    rows = _ledger_rows(tmp_path / "out" / "ledger.parquet")

    if os.environ.get("FINESIFT_WRITE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        with GOLDEN.open("w", encoding="utf-8") as f:
            for row_id in sorted(rows):
                f.write(json.dumps({"id": row_id, **rows[row_id]}, sort_keys=True) + "\n")
        pytest.skip(f"wrote {GOLDEN}")

    golden = {}
    for line in GOLDEN.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        golden[row.pop("id")] = row
    assert sorted(rows) == sorted(golden), "the ledger has other row ids than recorded"
    decided = {s: 0 for s in ("selected", "dropped", "quarantined")}
    for row_id, want in golden.items():
        got = rows[row_id]
        for key in COMPARED:
            assert got[key] == want[key], f"{row_id}: {key} {got[key]!r} != recorded {want[key]!r}"
        for key in SCORES:
            a, b = got[key], want[key]
            assert (a is None) == (b is None) and (a is None or math.isclose(a, b, abs_tol=1e-6)), (
                f"{row_id}: {key} {a!r} != recorded {b!r}"
            )
        decided[want["status"]] += 1
    # The recorded run exercises every kind of decision, or it would prove little.
    assert decided["selected"] == 60 and decided["dropped"] > 100 and decided["quarantined"] > 0
