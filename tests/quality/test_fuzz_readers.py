"""Property-based tests of the input boundary at the readers (unit tier, no Ray).

Directories of planted files (tests/fuzz_inputs.py: every format, every schema, malformed
records of every kind, line ends, BOMs, blank lines, empty files, damaged gzip files) are
read in chunks of several sizes. Every planted record must come out exactly once, where
the ledger will name it: a valid row read with its response and id, a malformed one
quarantined with one of the reasons planted for it. Profiles are in tests/conftest.py (a
few dozen examples by default, many more with HYPOTHESIS_PROFILE=full, make test-all); a
failure prints the planted files and a @reproduce_failure blob.
"""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, note
from hypothesis import strategies as st

from quality.readers import read_all
from quality.schema import REASONS, ROW_SCHEMA
from tests.fuzz_inputs import MAX_RECORD_BYTES, planted_inputs


@given(data=st.data(), chunk_bytes=st.sampled_from([64, 300, 1 << 20]))
def test_every_planted_record_is_read_once_with_its_fate(
    tmp_path_factory, data: st.DataObject, chunk_bytes: int
) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    planted = data.draw(planted_inputs(root))
    note(planted.describe())
    rows = list(read_all([str(root)], chunk_bytes=chunk_bytes, max_record_bytes=MAX_RECORD_BYTES))

    pa.Table.from_pylist(rows, schema=ROW_SCHEMA)  # every row can be written to the ledger
    sources = [row["source"] for row in rows]
    assert len(sources) == len(set(sources)), "a record was read twice"
    for row in rows:
        assert row["status"] in ("active", "quarantined")
        if row["status"] == "quarantined":
            assert row["reason"] in REASONS and row["detail"], row

    damaged = [r for r in rows if r["source"].rsplit(":", 1)[0] in planted.damaged]
    assert {(r["status"], r["reason"]) for r in damaged} <= {("quarantined", "unreadable")}
    for name in planted.damaged:  # the whole file is accounted for, by position
        assert any(r["source"].startswith(name) for r in damaged), name

    by_source = {r["source"]: r for r in rows if r not in damaged}
    assert set(by_source) == {e.source for e in planted.expected}
    for expect in planted.expected:
        row = by_source[expect.source]
        if expect.reasons is None:
            assert row["status"] == "active", (expect, row["reason"], row["detail"])
            assert row["response"] == expect.response
            if expect.row_id is not None:
                assert row["id"] == expect.row_id
        else:
            assert row["status"] == "quarantined", (expect, row)
            assert row["reason"] in expect.reasons, (expect, row["reason"], row["detail"])
