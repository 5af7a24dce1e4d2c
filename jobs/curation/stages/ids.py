"""ids: every row id made unique before any stage names one.

An id the input gives to more than one row (the same id in two files, or twice in one)
would make ``duplicate_of``, ``kept_instead`` and selected.jsonl ambiguous, and id-ordered
tie-breaks depend on it. Such rows are read anyway (no data is refused for its id): every
row holding a shared id gets ``id@source`` as its id (``source`` is unique per row), and
``input_id`` keeps the id as the input wrote it. Rows with an id of their own keep it.

Finding shared ids needs every id once, which the driver never holds: ``prepare`` collects
an 8-byte hash per row, and only the rows whose hash repeats come back with their ids.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jobs.curation.stage import DataView, Plan, Stage

if TYPE_CHECKING:
    from jobs.curation.config import CurateConfig


def build(cfg: CurateConfig) -> Stage:
    return Stage(name="ids", process=rename_shared_ids, prepare=find_shared_ids, decides=False)


def find_shared_ids(view: DataView) -> Plan:
    """The ids more than one active row holds (usually none)."""
    hashes = view.collect(id_hashes)
    if hashes.num_rows == 0:
        return Plan(kwargs={"shared": ()})
    values, counts = np.unique(hashes["hash"].to_numpy(), return_counts=True)
    repeated = values[counts > 1]
    if len(repeated) == 0:
        return Plan(kwargs={"shared": ()})
    candidates = view.collect(ids_with_hashes, hashes=repeated.tolist())
    tally = Counter(candidates["id"].to_pylist())  # a hash collision is not a shared id
    shared = sorted(row_id for row_id, n in tally.items() if n > 1)
    return Plan(kwargs={"shared": tuple(shared)})


def id_hashes(batch: pa.Table) -> pa.Table:
    """An 8-byte hash of each row's id: what the driver needs to find repeats."""
    return pa.table({"hash": pa.array(_hashes(batch["id"].to_pylist()), pa.uint64())})


def ids_with_hashes(batch: pa.Table, *, hashes: list[int]) -> pa.Table:
    """The ids of the rows whose id hash is one of ``hashes``."""
    ids = batch["id"].to_pylist()
    wanted = set(hashes)
    return pa.table(
        {"id": pa.array([i for i, h in zip(ids, _hashes(ids), strict=True) if h in wanted])}
    )


def rename_shared_ids(batch: pa.Table, *, shared: tuple[str, ...]) -> pa.Table:
    """Rows holding a shared id get ``id@source``; ``input_id`` keeps the original."""
    if not shared or batch.num_rows == 0:
        return batch
    mask = pc.is_in(batch["id"], value_set=pa.array(shared, pa.string())).to_pylist()
    if not any(mask):
        return batch
    ids, sources = batch["id"].to_pylist(), batch["source"].to_pylist()
    originals = batch["input_id"].to_pylist()
    new_ids = [f"{i}@{s}" if m else i for i, s, m in zip(ids, sources, mask, strict=True)]
    kept = [i if m else o for i, o, m in zip(ids, originals, mask, strict=True)]
    batch = batch.set_column(batch.schema.get_field_index("id"), "id", pa.array(new_ids))
    index = batch.schema.get_field_index("input_id")
    return batch.set_column(index, "input_id", pa.array(kept, pa.string()))


def _hashes(ids: list[str]) -> np.ndarray:
    out = np.empty(len(ids), dtype=np.uint64)
    for n, row_id in enumerate(ids):
        digest = hashlib.blake2b(row_id.encode("utf-8", "surrogatepass"), digest_size=8)
        out[n] = int.from_bytes(digest.digest(), "little")
    return out
