"""read: planned file chunks read in parallel into canonical rows; bad rows quarantined."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from jobs.curation.stage import Resources, Stage
from quality import schema

if TYPE_CHECKING:
    from jobs.curation.config import CurateConfig

ROWS_PER_BLOCK = 5_000


def build(cfg: CurateConfig) -> Stage:
    """Find the input files and cut them into chunks now, before Ray starts.

    Raises:
        InputError: a missing, unreadable or unsupported input, a file name that is not
            UTF-8, every input empty, or ``cfg.out`` inside an input directory.
    """
    from infra.errors import InputError
    from quality.inputs import all_empty, check_out_apart, discover, plan_chunks

    files = discover(cfg.inputs)
    check_out_apart(cfg.out, cfg.inputs)
    chunks = plan_chunks(files, cfg.read.chunk_bytes)
    if all_empty(files):
        # Known for free before Ray starts: nothing can come out of the run but an empty
        # ledger, and the likelier story is a wrong path or a failed export.
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        raise InputError(
            f"every input file is empty (0 bytes): {shown}. Nothing to curate: check the "
            "paths, or the export that wrote these files"
        )
    return Stage(
        name="read",
        process=read_chunk_blocks,
        source=tuple(chunks),
        batch_size=1,
        resources=Resources(cpus=1),
        kwargs=dict(
            fmt=cfg.read.format,
            field_map=cfg.read.field_map or None,
            id_field=cfg.read.id_field,
            timestamp_field=cfg.read.timestamp_field,
            max_record_bytes=cfg.read.max_record_bytes,
        ),
    )


def input_files(stage: Stage) -> list[str]:
    """The files a read stage reads, in order."""
    return list(dict.fromkeys(chunk["path"] for chunk in stage.source or ()))


def read_chunk_blocks(chunk: dict[str, np.ndarray], **read_kwargs: Any) -> Iterator[pa.Table]:
    """Read one planned chunk (a batch of size 1) and yield blocks of canonical rows."""
    from quality.readers import read_chunk

    spec = {key: _scalar(values[0]) for key, values in chunk.items()}
    rows: list[dict[str, Any]] = []
    for row in read_chunk(spec, **read_kwargs):
        rows.append(row)
        if len(rows) >= ROWS_PER_BLOCK:
            yield pa.Table.from_pylist(rows, schema=schema.ROW_SCHEMA)
            rows = []
    if rows:
        yield pa.Table.from_pylist(rows, schema=schema.ROW_SCHEMA)


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
