"""Property-based test of the curate job's input boundary (ray tier; each example is one
curate run on the session's local Ray, with the hashing encoder and a tiny budget).

A planted directory (tests/fuzz_inputs.py, with file names that are sometimes not UTF-8)
must either stop before Ray starts with one line naming a file and the fix, or end with
every planted record in the ledger exactly once: valid rows selected or dropped, malformed
ones quarantined with a planted reason, every id unique (an id several rows held becomes
id@source, input_id keeping it), and every duplicate_of / kept_instead naming one row.
Few examples in the default profile, more with HYPOTHESIS_PROFILE=full (make test-all).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from infra.config import load_config
from infra.errors import FinesiftError
from jobs.curation.config import CurateConfig
from quality.schema import FINAL_STATUSES, QUARANTINED, SELECTED
from tests.fuzz_inputs import MAX_RECORD_BYTES, Planted, planted_inputs

pytestmark = pytest.mark.ray

BUDGET = 3
# Each example costs a curate run (tens of seconds on 2 cores): 3 in CI, 25 in test-all.
EXAMPLES = max(3, settings().max_examples // 60)


@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_a_curate_run_accounts_for_every_planted_record(
    ray_session, tmp_path_factory, data: st.DataObject
) -> None:
    from jobs.curation.curate import run
    from jobs.curation.pipeline import build_stages

    root = tmp_path_factory.mktemp("fuzz-in")
    planted = data.draw(planted_inputs(root, odd_names=True))
    note(planted.describe())
    out = tmp_path_factory.mktemp("fuzz-out")
    overrides = [
        "embed.model=hashing",
        f"selection.budget={BUDGET}",
        "clusters.rows_per_cluster=4",
        f"read.max_record_bytes={MAX_RECORD_BYTES}",
        "read.chunk_bytes=1024",  # several chunks per larger JSONL file
        "report=false",
    ]
    cfg = load_config(CurateConfig, None, overrides, inputs=(str(root),), out=str(out))
    try:
        build_stages(cfg)  # curate's first step, on the driver, before init_ray
    except FinesiftError as err:
        message = str(err)
        assert planted.refused(), f"refused input curate should read: {message}"
        assert "\n" not in message
        names = [planted.odd_name] if planted.odd_name else planted.files
        shown = [os.fsencode(Path(n).name).decode("utf-8", "backslashreplace") for n in names]
        assert any(name in message for name in shown), (message, shown)
        return
    assert not planted.refused(), "curate must refuse this input before Ray starts"

    result = run(cfg)
    ledger = pq.read_table(out / "ledger.parquet").to_pylist()
    check_ledger(ledger, planted)
    assert result.input_rows == len(ledger)
    selected = [json.loads(line) for line in (out / "selected.jsonl").read_text().splitlines()]
    assert len(selected) == result.selected <= BUDGET
    assert sorted(r["id"] for r in selected) == sorted(
        r["id"] for r in ledger if r["status"] == SELECTED
    )
    quarantine = (out / "quarantine.jsonl").read_text().splitlines()
    assert len(quarantine) == sum(r["status"] == QUARANTINED for r in ledger)
    assert json.loads((out / "summary.json").read_text())["input_rows"] == len(ledger)


def check_ledger(ledger: list[dict], planted: Planted) -> None:
    """Every planted record once, with its fate; ids unique; references unambiguous."""
    sources = [row["source"] for row in ledger]
    assert len(sources) == len(set(sources)), "a record is in the ledger twice"
    ids = [row["id"] for row in ledger]
    assert len(ids) == len(set(ids)), "two ledger rows share an id"
    for row in ledger:
        assert row["status"] in FINAL_STATUSES
        assert row["status"] == SELECTED or row["reason"], row
        for ref in (row["duplicate_of"], row["kept_instead"]):
            assert ref is None or ref in ids, f"{row['source']} names {ref}, no row of the ledger"

    damaged = [r for r in ledger if r["source"].rsplit(":", 1)[0] in planted.damaged]
    assert {(r["status"], r["reason"]) for r in damaged} <= {(QUARANTINED, "unreadable")}
    rows = {r["source"]: r for r in ledger if r not in damaged}
    assert set(rows) == {e.source for e in planted.expected}

    # An id planted on more than one valid row is shared: each of them is renamed.
    shared = Counter(e.row_id for e in planted.expected if e.reasons is None and e.row_id)
    for expect in planted.expected:
        row = rows[expect.source]
        if expect.reasons is not None:
            assert row["status"] == QUARANTINED and row["reason"] in expect.reasons, (expect, row)
            continue
        assert row["status"] != QUARANTINED, (expect, row["reason"], row["detail"])
        assert row["response"] == expect.response
        if expect.row_id and shared[expect.row_id] > 1:
            assert (row["id"], row["input_id"]) == (
                f"{expect.row_id}@{expect.source}",
                expect.row_id,
            )
        elif expect.row_id:
            assert (row["id"], row["input_id"]) == (expect.row_id, None)
