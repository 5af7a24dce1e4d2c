"""The ids stage (unit tier): an id several rows hold becomes id@source in each of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from jobs.curation.stages.ids import find_shared_ids, rename_shared_ids
from quality.schema import ROW_SCHEMA, new_row


class TableView:
    """A DataView over an in-memory table, cut into small batches as Ray would."""

    def __init__(self, table: pa.Table, batch: int = 2) -> None:
        self.table, self.batch = table, batch

    def count(self) -> int:
        return self.table.num_rows

    def collect(self, fn: Callable[..., pa.Table], **kwargs: Any) -> pa.Table:
        parts = [
            fn(self.table.slice(i, self.batch), **kwargs)
            for i in range(0, self.table.num_rows, self.batch)
        ]
        parts = [p for p in parts if p.num_rows]
        return pa.concat_tables(parts) if parts else pa.table({})


def rows(*pairs: tuple[str, str]) -> pa.Table:
    return pa.Table.from_pylist([new_row(id=i, source=s) for i, s in pairs], schema=ROW_SCHEMA)


def test_shared_ids_are_found_across_batches_and_renamed_in_every_row() -> None:
    table = rows(
        ("x1", "a.jsonl:1"),
        ("x2", "a.jsonl:2"),
        ("u", "a.jsonl:3"),
        ("x1", "b.jsonl:1"),  # planted: the id of a.jsonl:1, in another file and batch
        ("x2", "b.jsonl:2"),
        ("x1", "b.jsonl:3"),
    )
    plan = find_shared_ids(TableView(table))
    assert plan.kwargs == {"shared": ("x1", "x2")}
    out = rename_shared_ids(table, **plan.kwargs)
    assert out.schema == ROW_SCHEMA
    assert out["id"].to_pylist() == [
        "x1@a.jsonl:1",
        "x2@a.jsonl:2",
        "u",
        "x1@b.jsonl:1",
        "x2@b.jsonl:2",
        "x1@b.jsonl:3",
    ]
    assert out["input_id"].to_pylist() == ["x1", "x2", None, "x1", "x2", "x1"]
    assert len(set(out["id"].to_pylist())) == out.num_rows


def test_unique_ids_are_left_alone() -> None:
    table = rows(("a", "f:1"), ("b", "f:2"), ("c", "f:3"))
    plan = find_shared_ids(TableView(table))
    assert plan.kwargs == {"shared": ()}
    assert rename_shared_ids(table, **plan.kwargs) is table
    assert find_shared_ids(TableView(rows())).kwargs == {"shared": ()}
