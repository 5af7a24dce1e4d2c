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
from quality.lines import first_line_numbers

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
            a directory holds no supported file or cannot be listed, a file name is not
            UTF-8, or a directory holds the outputs of a finesift run.
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
            _check_utf8_name(path)
            key = path if storage.is_uri(path) else os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                files.append(path)
    return files


def _expand(path: Path) -> list[str]:
    if path.is_dir():
        found = sorted(_walk(path))
        if not found:
            raise InputError(f"directory {path} holds no supported input files ({_FORMATS_HINT})")
        _refuse_run_outputs(found)
        return found
    if path.is_file():
        if file_kind(path.name) is None:
            raise InputError(
                f"input file {path} has an unsupported extension; {_FORMATS_HINT} "
                "(rename the file or convert it)"
            )
        return [str(path)]
    raise InputError(f"input path {path} does not exist: check the path ({_FORMATS_HINT})")


def _walk(root: Path) -> list[str]:
    """Supported files under ``root``, hidden parts skipped; an unlistable directory raises
    (Path.rglob would skip it in silence, and its files with it)."""

    def refuse(err: OSError) -> None:
        raise InputError(
            f"cannot list input directory {err.filename}: {err.strerror}. Give the user "
            "running finesift read access to it, or move it out of the inputs"
        )

    found = []
    for folder, dirs, names in os.walk(root, onerror=refuse):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
        found += [
            os.path.join(folder, name)
            for name in names
            if not name.startswith((".", "_"))
            and file_kind(name)
            and os.path.isfile(os.path.join(folder, name))
        ]
    return found


def _check_utf8_name(path: str) -> None:
    """The ledger names every row's file in UTF-8 Parquet; a name that is not UTF-8 (it
    reaches Python as lone surrogates) cannot be written there."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")
        raise InputError(
            f"input file name {shown} is not valid UTF-8: rename the file to a UTF-8 name "
            "(e.g. convmv -f latin1 -t utf-8 --notest FILE) so the ledger can name it"
        ) from None


# The files every curate run writes; a directory holding both is a run's output directory.
_RUN_MARKERS = ("summary.json", "ledger.parquet")


def _refuse_run_outputs(found: list[str]) -> None:
    """Refuse an input directory holding a finesift run's outputs: reading them back would
    curate the previous run's ledger, selection and quarantine as if they were data."""
    names_by_dir: dict[str, set[str]] = {}
    for path in found:
        name = storage.name_of(path).replace(os.sep, "/").rsplit("/", 1)[-1]
        names_by_dir.setdefault(storage.parent(path), set()).add(name)
    for folder, names in names_by_dir.items():
        if all(marker in names for marker in _RUN_MARKERS):
            raise InputError(
                f"{folder} holds the outputs of a finesift run ({', '.join(_RUN_MARKERS)}): "
                "they would be read back as input rows. Move that directory out of the inputs, "
                "or name the input files one by one"
            )


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
        _refuse_run_outputs(found)
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
        InputError: a file has an unsupported extension, cannot be opened (no read
            permission) or is not readable Parquet.
    """
    if chunk_bytes <= 0:
        raise InputError(f"chunk_bytes must be positive, got {chunk_bytes}: set read.chunk_bytes")
    chunks: list[dict[str, Any]] = []
    for path in files:
        kind = file_kind(path)
        if kind is None:
            raise InputError(f"input file {path} has an unsupported extension; {_FORMATS_HINT}")
        if not storage.is_uri(path):
            _check_readable(path)
        if kind == "jsonl" and not is_gzip(path):
            chunks += _jsonl_chunks(path, chunk_bytes)
        elif kind == "parquet":
            chunks += _parquet_chunks(path, chunk_bytes)
        else:
            first = 0 if kind == "json" else 1
            chunks.append(_chunk(path, kind, 0, -1, first))
    return chunks


def _check_readable(path: str) -> None:
    """Open a local file now, on the driver, so that one without read permission stops the
    run before Ray starts (a reading task would fail with a worker traceback instead)."""
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as err:
        raise InputError(
            f"cannot read input file {path}: {err.strerror or err}. Give the user running "
            "finesift read access to it (e.g. chmod a+r), or remove it from the inputs"
        ) from None


def all_empty(files: Sequence[str]) -> bool:
    """True when every file is 0 bytes long (stops at the first that is not)."""
    return all(storage.file_size(path) == 0 for path in files)


def check_out_apart(out: str, paths: Sequence[str]) -> None:
    """Refuse an output directory that is an input directory or lies inside one.

    Curate writes JSONL, JSON and Parquet files; inside an input directory, the next run
    of that directory would read them back as input rows.

    Raises:
        InputError: ``out`` is or is inside one of the input directories ``paths``.
    """
    target = _location(out)
    for given in paths:
        if storage.kind_of(str(given)) != "dir":
            continue
        folder = _location(str(given))
        if target == folder or target.startswith(folder.rstrip("/") + "/"):
            raise InputError(
                f"--out {out} is inside the input directory {given}: the next run of that "
                "directory would read these outputs back as input rows. Write the outputs "
                "to a directory outside the inputs"
            )


def _location(path: str) -> str:
    """A comparable form of a path: real absolute local path, or a URI without its query."""
    if storage.is_uri(path):
        return path.split("?", 1)[0].rstrip("/")
    return os.path.realpath(path)


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
    """Line number of the first line starting at or after each offset, by one byte scan."""
    if not starts:
        return []
    with storage.open_input(path) as f:
        return first_line_numbers(f, starts)


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
