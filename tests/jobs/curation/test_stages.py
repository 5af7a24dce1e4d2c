"""Per-group stage functions give the same verdicts whatever order their rows arrive in;
id-keyed samples do not depend on how rows fall into batches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from ray.data.extensions import ArrowTensorArray

from jobs.curation.batches import sample_by_id
from jobs.curation.runner import to_row_schema
from jobs.curation.stages.select import select_cluster


def cluster_table(n: int, order: np.ndarray) -> pa.Table:
    """``n`` rows of one cluster, all of the same quality (ties everywhere), in ``order``."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = [
        {
            "id": f"r{i:03d}",
            "prompt": f"task {i}",
            "response": f"answer {i}",
            "status": "active",
            "quality": 0.9,
            "cluster": 0,
        }
        for i in order
    ]
    table = to_row_schema(pa.Table.from_pylist(rows))
    return table.append_column("embedding", ArrowTensorArray.from_numpy(vectors[order]))


def verdicts(table: pa.Table) -> dict[str, tuple[str, str | None]]:
    return {row["id"]: (row["status"], row["reason"]) for row in table.to_pylist()}


def test_selection_among_tied_rows_does_not_depend_on_row_order():
    n = 40
    forward = select_cluster(cluster_table(n, np.arange(n)), quotas={0: 7}, min_distance=0.0)
    shuffled = cluster_table(n, np.random.default_rng(1).permutation(n))
    again = select_cluster(shuffled, quotas={0: 7}, min_distance=0.0)
    assert sum(s == "selected" for s, _ in verdicts(forward).values()) == 7
    assert verdicts(again) == verdicts(forward)


def test_sample_by_id_is_the_same_however_rows_fall_into_batches():
    table = pa.table({"id": [f"row-{i}" for i in range(2000)], "x": list(range(2000))})
    whole = sample_by_id(table, seed=3, fraction=0.25)
    pieces = [sample_by_id(table.slice(s, 300), seed=3, fraction=0.25) for s in range(0, 2000, 300)]
    assert sorted(whole["id"].to_pylist()) == sorted(pa.concat_tables(pieces)["id"].to_pylist())
    assert 400 < whole.num_rows < 600  # about a quarter
    other_seed = sample_by_id(table, seed=4, fraction=0.25)
    assert set(other_seed["id"].to_pylist()) != set(whole["id"].to_pylist())
