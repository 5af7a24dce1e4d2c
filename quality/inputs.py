"""Finding input files and cutting them into work units that Ray tasks read in parallel.

``discover`` expands the user's paths (local or URIs) into supported files, and
``plan_chunks`` cuts those into work units: plain dicts, so Ray Data can carry them as
rows. :func:`quality.readers.read_chunk` turns one unit into Rows. Problems with a whole
path (missing, unsupported, not readable Parquet) raise :class:`~infra.errors.InputError`.

Chunk dicts: ``{"path", "kind", "start", "end", "first_line"}``. For plain JSONL, start
and end are byte offsets and a chunk owns the lines that *start* in ``[start, end)``;
``first_line`` is the 1-based number of its first line. For Parquet, start and end are
row-group indices and ``first_line`` is the 0-based index of the chunk's first row. Other
files are one chunk: start 0, end -1 (to the end), first_line 1 (CSV, JSON lines) or 0
(JSON arrays count from 0).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra import storage
from infra.errors import InputError

SUPPORTED_SUFFIXES = (
    ".jsonl",
    ".jsonl.gz",
    ".ndjson",
    ".ndjson.gz",
    ".json",
    ".json.gz",
    ".parquet",
    ".csv",
    ".csv.gz",
    ".tsv",
    ".tsv.gz",
)
_KINDS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet"}
_KINDS |= {".csv": "csv", ".tsv": "csv"}
_FORMATS_HINT = "supported formats: " + ", ".join(SUPPORTED_SUFFIXES)
_SCAN_BLOCK = 1 << 20  # bytes read at a time when counting newlines


def file_kind(path: str) -> str | None:
    """The reader kind of a file from its name: jsonl, json, parquet, csv, or None."""
    name = storage.name_of(path).lower()
    gz = name.endswith(".gz")
    base = name[:-3] if gz else name
    for suffix, kind in _KINDS.items():
        if base.endswith(suffix):
            return None if gz and kind == "parquet" else kind
    return None


def is_gzip(path: str) -> bool:
    """True when the file's name ends in .gz: it is read through gzip, and never split."""
    return storage.name_of(path).lower().endswith(".gz")


def discover(paths: Sequence[str]) -> list[str]:
    """Expand files and directories into the list of supported input files.

    Directories are searched recursively in sorted order; their unsupported and hidden
    files (``.foo``, ``_SUCCESS``) are skipped. A file named twice is read once.

    Args:
        paths: files or directories: local paths or URIs (``s3://bucket/dir``,
            ``gs://...``, ``file:///...``; see :mod:`infra.storage`).

    Returns:
        Supported files, in the order given (directory contents sorted).

    Raises:
        InputError: a path does not exist, a named file has an unsupported extension,
            or a directory holds no supported file.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [str(paths)]
    if not paths:
        raise InputError(f"no input paths given: pass files or directories ({_FORMATS_HINT})")
    files: list[str] = []
    seen: set[str] = set()
    for given in paths:
        given = str(given)
        expanded = _expand_uri(given) if storage.is_uri(given) else _expand(Path(given))
        for path in expanded:
            key = path if storage.is_uri(path) else os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                files.append(path)
    return files


def _expand(path: Path) -> list[str]:
    if path.is_dir():
        found = sorted(
            str(f)
            for f in path.rglob("*")
            if f.is_file()
            and file_kind(f.name)
            and not any(part.startswith((".", "_")) for part in f.relative_to(path).parts)
        )
        if not found:
            raise InputError(f"directory {path} holds no supported input files ({_FORMATS_HINT})")
        return found
    if path.is_file():
        if file_kind(path.name) is None:
            raise InputError(
                f"input file {path} has an unsupported extension; {_FORMATS_HINT} "
                "(rename the file or convert it)"
            )
        return [str(path)]
    raise InputError(f"input path {path} does not exist: check the path ({_FORMATS_HINT})")


def _expand_uri(uri: str) -> list[str]:
    """:func:`_expand` for a URI: the same rules, through the URI's filesystem."""
    kind = storage.kind_of(uri)
    if kind == "dir":
        found = [
            child
            for relative, child in storage.list_files(uri)
            if file_kind(relative)
            and not any(part.startswith((".", "_")) for part in relative.split("/"))
        ]
        if not found:
            raise InputError(f"directory {uri} holds no supported input files ({_FORMATS_HINT})")
        return found
    if kind == "file":
        if file_kind(uri) is None:
            raise InputError(
                f"input file {uri} has an unsupported extension; {_FORMATS_HINT} "
                "(rename the file or convert it)"
            )
        return [uri]
    raise InputError(
        f"input path {uri} does not exist: check the URI and your access to it ({_FORMATS_HINT})"
    )


def plan_chunks(files: Sequence[str], chunk_bytes: int) -> list[dict[str, Any]]:
    """Cut input files into work units for parallel reading.

    Plain JSONL files larger than ``chunk_bytes`` are split into byte ranges; Parquet
    files into runs of row groups of about ``chunk_bytes``; anything else is one chunk.

    Args:
        files: supported files, e.g. from :func:`discover`.
        chunk_bytes: target bytes per chunk.

    Returns:
        Chunk dicts ``{"path", "kind", "start", "end", "first_line"}`` (see module doc).

    Raises:
        InputError: a file has an unsupported extension or is not readable Parquet.
    """
    if chunk_bytes <= 0:
        raise InputError(f"chunk_bytes must be positive, got {chunk_bytes}: set read.chunk_bytes")
    chunks: list[dict[str, Any]] = []
    for path in files:
        kind = file_kind(path)
        if kind is None:
            raise InputError(f"input file {path} has an unsupported extension; {_FORMATS_HINT}")
        if kind == "jsonl" and not is_gzip(path):
            chunks += _jsonl_chunks(path, chunk_bytes)
        elif kind == "parquet":
            chunks += _parquet_chunks(path, chunk_bytes)
        else:
            first = 0 if kind == "json" else 1
            chunks.append(_chunk(path, kind, 0, -1, first))
    return chunks


def _chunk(path: str, kind: str, start: int, end: int, first_line: int) -> dict[str, Any]:
    return {"path": path, "kind": kind, "start": start, "end": end, "first_line": first_line}


def _jsonl_chunks(path: str, chunk_bytes: int) -> list[dict[str, Any]]:
    size = storage.file_size(path)
    starts = list(range(0, max(size, 1), chunk_bytes))
    first_lines = [1] + _first_lines(path, starts[1:])
    ends = starts[1:] + [size]
    return [
        _chunk(path, "jsonl", s, e, n) for s, e, n in zip(starts, ends, first_lines, strict=True)
    ]


def _first_lines(path: str, starts: list[int]) -> list[int]:
    """Line number of the first line starting at or after each offset, by one byte scan.

    The first line a chunk owns begins after the first newline at or after ``start - 1``,
    so its number is 2 + the newlines in ``[0, start - 1)``.
    """
    result: list[int] = []
    targets = iter(s - 1 for s in starts)
    target = next(targets, None)
    newlines = pos = 0
    with storage.open_input(path) as f:
        while target is not None:
            block = f.read(_SCAN_BLOCK)
            if not block:
                break
            while target is not None and target <= pos + len(block):
                result.append(newlines + block.count(b"\n", 0, target - pos) + 2)
                target = next(targets, None)
            newlines += block.count(b"\n")
            pos += len(block)
    return result


def _parquet_chunks(path: str, chunk_bytes: int) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, inner = storage.split(path)
    try:
        meta = pq.ParquetFile(inner, filesystem=fs).metadata
    except (pa.ArrowException, OSError) as err:
        raise InputError(
            f"{path} is not a readable Parquet file ({err}): re-export it or remove it"
        ) from None
    chunks: list[dict[str, Any]] = []
    start = first_row = rows = size = 0
    for group in range(meta.num_row_groups):
        size += meta.row_group(group).total_byte_size
        rows += meta.row_group(group).num_rows
        if size >= chunk_bytes or group == meta.num_row_groups - 1:
            chunks.append(_chunk(path, "parquet", start, group + 1, first_row))
            start, first_row, size = group + 1, rows, 0
    return chunks or [_chunk(path, "parquet", 0, 0, 0)]
