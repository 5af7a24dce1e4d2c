"""Work units -> canonical Rows, with bad rows quarantined.

``read_chunk`` turns one work unit from :func:`quality.inputs.plan_chunks` into Rows (the
chunk dicts are described in :mod:`quality.inputs`); ``read_all`` discovers, plans and
reads inputs in this process. A bad row never raises: it becomes a quarantined Row with a
reason code, so every input row is accounted for. Only problems with a whole file
(corrupt container, deleted since planning) raise :class:`~infra.errors.InputError`,
as do a missing or unsupported path given to ``read_all``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from typing import IO, Any

from infra import storage
from infra.errors import InputError
from quality.inputs import discover, is_gzip, plan_chunks
from quality.records import RowError, check_format, normalize, quarantined_row
from quality.schema import Row

# A JSON file holding one object may keep its rows in a list under one of these keys.
_CONTAINER_KEYS = ("data", "rows", "examples", "records", "instances", "items", "train")
# A top-level JSON object with one of these keys is a row, not a container.
_SCHEMA_KEYS = frozenset(
    ("messages", "conversations", "instruction", "output", "prompt", "completion")
)
# CSV cells under these (schema) names hold JSON lists of turns.
_JSON_COLUMNS = ("messages", "conversations")
_BOM = b"\xef\xbb\xbf"
_PREVIEW_BYTES = 2_000  # raw text kept for a too-large record
_SCAN_BLOCK = 1 << 20  # bytes read at a time when skipping the rest of a line

Normalizer = Callable[..., Row]  # (obj, source, raw=lambda: text) -> Row


def read_chunk(
    chunk: Mapping[str, Any],
    *,
    fmt: str | None = None,
    field_map: Mapping[str, str] | None = None,
    id_field: str = "id",
    timestamp_field: str = "timestamp",
    max_record_bytes: int = 200_000,
) -> Iterator[Row]:
    """Read one work unit into Rows; bad rows come out quarantined, never raised.

    Args:
        chunk: a dict from :func:`quality.inputs.plan_chunks`.
        fmt: force one schema; None detects it per row.
        field_map: renames input fields to schema names, ``{input_name: schema_name}``.
        id_field: field holding a row id.
        timestamp_field: field holding the row's date.
        max_record_bytes: records with more raw bytes are quarantined as too_large.

    Yields:
        One Row per input row (blank JSONL/CSV lines are not rows).

    Raises:
        InputError: a bad ``fmt`` or ``max_record_bytes``, or a file that cannot be read
            at all (corrupt gzip or Parquet, deleted since planning).
    """
    check_format(fmt)
    if max_record_bytes <= 0:
        raise InputError(
            f"max_record_bytes must be positive, got {max_record_bytes}: set read.max_record_bytes"
        )
    field_map = dict(field_map or {})
    norm = partial(
        _normalize_or_quarantine,
        fmt=fmt,
        field_map=field_map,
        id_field=id_field,
        timestamp_field=timestamp_field,
    )
    path, kind = str(chunk["path"]), str(chunk["kind"])
    start, end, first = int(chunk["start"]), int(chunk["end"]), int(chunk["first_line"])
    if kind == "jsonl":
        rows = _read_jsonl(path, start, end, first, norm, max_record_bytes)
    elif kind == "json":
        rows = _read_json(path, norm, max_record_bytes, field_map)
    elif kind == "csv":
        rows = _read_csv(path, norm, max_record_bytes, field_map)
    elif kind == "parquet":
        rows = _read_parquet(path, start, end, first, norm, max_record_bytes)
    else:
        raise ValueError(f"unknown chunk kind {kind!r}; chunks come from plan_chunks")
    return _guard(path, rows)


def read_all(
    paths: Sequence[str], *, chunk_bytes: int = 16_000_000, **kwargs: Any
) -> Iterator[Row]:
    """Discover, plan and read inputs in this process (tests and small inputs).

    Args:
        paths: files or directories.
        chunk_bytes: target bytes per chunk.
        **kwargs: passed to :func:`read_chunk`.

    Yields:
        One Row per input row, in file and line order.
    """
    for chunk in plan_chunks(discover(paths), chunk_bytes):
        yield from read_chunk(chunk, **kwargs)


def _guard(path: str, rows: Iterable[Row]) -> Iterator[Row]:
    """Turn container-level failures (truncated gzip, corrupt Parquet) into InputError."""
    import pyarrow as pa

    try:
        yield from rows
    except (OSError, EOFError, zlib.error, pa.ArrowException) as err:
        raise InputError(
            f"cannot read {path}: {err}. The file is missing, corrupt or truncated: "
            "re-export it or remove it from the inputs"
        ) from None


def _normalize_or_quarantine(obj: Any, source: str, raw: Callable[[], str], **kwargs: Any) -> Row:
    try:
        return normalize(obj, source=source, **kwargs)
    except RowError as err:
        return quarantined_row(source=source, raw=raw(), reason=err.reason, detail=err.detail)


# --- JSON lines --------------------------------------------------------------------------


def _read_jsonl(
    path: str, start: int, end: int, first_line: int, norm: Normalizer, max_bytes: int
) -> Iterator[Row]:
    with _open(path) as f:
        yield from _jsonl_rows(f, path, start, end, first_line, norm, max_bytes)


def _jsonl_rows(
    f: IO[bytes],
    path: str,
    start: int,
    end: int,
    first_line: int,
    norm: Normalizer,
    max_bytes: int,
) -> Iterator[Row]:
    """Rows of the lines starting in ``[start, end)`` (end -1: to EOF), streamed."""
    pos = 0
    if start > 0:
        # Skip the tail of the line that started in the previous chunk.
        f.seek(start - 1)
        pos = start - 1 + _skip_line(f)[0]
    line_no = first_line
    while end < 0 or pos < end:
        # Read at most max_bytes + 1 bytes of a record: a 1 GB line never sits in memory.
        line = f.readline(max_bytes + 1)
        if not line:
            return
        rest = newline = 0
        if len(line) > max_bytes and not line.endswith(b"\n"):
            rest, newline = _skip_line(f)
        source, line_no = f"{path}:{line_no}", line_no + 1
        pos += len(line) + rest
        if line_no == 2:
            line = line.removeprefix(_BOM)
        data = line.rstrip(b"\r\n")
        size = len(data) + rest - newline
        if size > max_bytes:
            yield _too_large(source, data, size, max_bytes)
        elif data.strip():
            yield _row_from_bytes(data, source, norm)


def _skip_line(f: IO[bytes]) -> tuple[int, bool]:
    """Consume the rest of the current line in bounded pieces.

    Returns:
        The bytes consumed, and whether they ended with a newline (not EOF).
    """
    skipped = 0
    while True:
        piece = f.readline(_SCAN_BLOCK)
        skipped += len(piece)
        if not piece or piece.endswith(b"\n"):
            return skipped, bool(piece)


def _row_from_bytes(data: bytes, source: str, norm: Normalizer) -> Row:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        detail = f"invalid UTF-8 at byte {err.start}: {err.reason}"
        return quarantined_row(
            source=source, raw=data.decode("utf-8", "replace"), reason="invalid_utf8", detail=detail
        )
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        detail = f"{err.msg} at column {err.colno}"
        return quarantined_row(source=source, raw=text, reason="invalid_json", detail=detail)
    return norm(obj, source, raw=lambda: text)


def _too_large(source: str, data: bytes, size: int, max_bytes: int) -> Row:
    return quarantined_row(
        source=source,
        raw=data[:_PREVIEW_BYTES].decode("utf-8", "replace"),
        reason="too_large",
        detail=f"record is {size} bytes, over read.max_record_bytes={max_bytes} "
        f"(raw keeps the first {_PREVIEW_BYTES} bytes)",
    )


# --- JSON documents ----------------------------------------------------------------------


def _read_json(
    path: str, norm: Normalizer, max_bytes: int, field_map: Mapping[str, str]
) -> Iterator[Row]:
    with _open(path) as f:
        data = f.read().removeprefix(_BOM)
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        if _is_json_lines(data):
            # Many ".json" files are really JSON lines; read them line by line.
            yield from _jsonl_rows(io.BytesIO(data), path, 0, -1, 1, norm, max_bytes)
        else:
            yield _unreadable_json(path, data, err)
        return
    for index, obj in _json_records(value, field_map):
        source = f"{path}#{index}"
        raw = json.dumps(obj, ensure_ascii=False)
        size = len(raw.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            yield _too_large(source, raw.encode("utf-8", "surrogatepass"), size, max_bytes)
        else:
            yield norm(obj, source, raw=lambda raw=raw: raw)


def _json_records(value: Any, field_map: Mapping[str, str]) -> list[tuple[int, Any]]:
    """The rows of a JSON document: an array, a list under a container key, or one object."""
    if isinstance(value, dict) and not any(field_map.get(k, k) in _SCHEMA_KEYS for k in value):
        for key in _CONTAINER_KEYS:
            if isinstance(value.get(key), list):
                return list(enumerate(value[key]))
    if isinstance(value, list):
        return list(enumerate(value))
    return [(0, value)]


def _is_json_lines(data: bytes) -> bool:
    """True when the first non-blank line is on its own a JSON object."""
    for line in io.BytesIO(data):
        if line.strip():
            try:
                return isinstance(json.loads(line.decode("utf-8")), dict)
            except (UnicodeDecodeError, json.JSONDecodeError):
                return False
    return False


def _unreadable_json(path: str, data: bytes, err: ValueError) -> Row:
    if isinstance(err, UnicodeDecodeError):
        line = data.count(b"\n", 0, err.start) + 1
        reason, detail = "invalid_utf8", f"invalid UTF-8 at line {line}: {err.reason}"
    else:
        assert isinstance(err, json.JSONDecodeError)
        line = err.lineno
        reason = "invalid_json"
        detail = f"{err.msg} at line {err.lineno} column {err.colno}; the whole file was skipped"
    raw = data if len(data) <= _PREVIEW_BYTES else data[:_PREVIEW_BYTES]
    return quarantined_row(
        source=f"{path}:{line}", raw=raw.decode("utf-8", "replace"), reason=reason, detail=detail
    )


# --- CSV ---------------------------------------------------------------------------------


def _read_csv(
    path: str, norm: Normalizer, max_bytes: int, field_map: Mapping[str, str]
) -> Iterator[Row]:
    # Fields up to max_bytes must parse; bigger ones fail and are quarantined as too_large.
    csv.field_size_limit(max(csv.field_size_limit(), max_bytes + 1))
    delimiter = "\t" if storage.name_of(path).lower().removesuffix(".gz").endswith(".tsv") else ","
    with _open(path) as f:
        lines = _CsvLines(f)
        reader = csv.reader(lines, delimiter=delimiter)
        header: list[str] | None = None
        next_line = 1
        while True:
            try:
                cells, error = next(reader, None), None
            except csv.Error as err:
                cells, error = [], err
            raw, bad_utf8 = lines.take()
            source = f"{path}:{next_line}"
            next_line = reader.line_num + 1
            if cells is None:
                return
            if error is not None:
                yield _csv_error(source, raw, error, max_bytes)
            elif not any(cell.strip() for cell in cells):
                continue  # a blank line is not a row
            elif header is None:
                header = [cell.strip() for cell in cells]
            elif bad_utf8:
                detail = f"invalid UTF-8 bytes in the record at {source}"
                yield quarantined_row(source=source, raw=raw, reason="invalid_utf8", detail=detail)
            elif len(raw.encode("utf-8")) > max_bytes:
                yield _too_large(source, raw.encode("utf-8"), len(raw.encode("utf-8")), max_bytes)
            else:
                yield _csv_row(header, cells, source, raw, norm, field_map)


class _CsvLines:
    """Feeds csv.reader decoded physical lines and remembers those of the current record."""

    def __init__(self, f: IO[bytes]) -> None:
        self._lines = iter(f)
        self._buffer: list[str] = []
        self._bad = False
        self._first = True

    def __iter__(self) -> _CsvLines:
        return self

    def __next__(self) -> str:
        data = next(self._lines)
        if self._first:
            data, self._first = data.removeprefix(_BOM), False
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text, self._bad = data.decode("utf-8", "replace"), True
        self._buffer.append(text)
        return text

    def take(self) -> tuple[str, bool]:
        """The raw text of the record just parsed, and whether it had invalid UTF-8."""
        raw, bad = "".join(self._buffer).rstrip("\r\n"), self._bad
        self._buffer, self._bad = [], False
        return raw, bad


def _csv_row(
    header: list[str],
    cells: list[str],
    source: str,
    raw: str,
    norm: Normalizer,
    field_map: Mapping[str, str],
) -> Row:
    if len(cells) > len(header):
        detail = f"the record has {len(cells)} cells but the header names {len(header)} columns"
        return quarantined_row(source=source, raw=raw, reason="wrong_type", detail=detail)
    cells = cells + [""] * (len(header) - len(cells))
    obj: dict[str, Any] = {name: cell or None for name, cell in zip(header, cells, strict=True)}
    for name, value in obj.items():
        if field_map.get(name, name) in _JSON_COLUMNS and isinstance(value, str):
            try:
                obj[name] = json.loads(value)
            except json.JSONDecodeError as err:
                detail = f"column {name!r} is not valid JSON: {err.msg} at column {err.colno}"
                return quarantined_row(source=source, raw=raw, reason="invalid_json", detail=detail)
    return norm(obj, source, raw=lambda: raw)


def _csv_error(source: str, raw: str, err: csv.Error, max_bytes: int) -> Row:
    if "field larger than field limit" in str(err):
        return _too_large(source, raw.encode("utf-8"), len(raw.encode("utf-8")), max_bytes)
    return quarantined_row(source=source, raw=raw, reason="wrong_type", detail=f"bad CSV: {err}")


# --- Parquet -----------------------------------------------------------------------------


def _read_parquet(
    path: str, start: int, end: int, first_row: int, norm: Normalizer, max_bytes: int
) -> Iterator[Row]:
    import pyarrow.parquet as pq

    fs, inner = storage.split(path)
    pf = pq.ParquetFile(inner, filesystem=fs)
    groups = list(range(start, pf.num_row_groups if end < 0 else end))
    if not groups:
        return
    index = first_row
    for batch in pf.iter_batches(batch_size=1024, row_groups=groups):
        for obj in batch.to_pylist():
            source = f"{path}#{index}"
            index += 1
            raw = json.dumps(obj, ensure_ascii=False, default=str)
            size = len(raw.encode("utf-8", "surrogatepass"))
            if size > max_bytes:
                yield _too_large(source, raw.encode("utf-8", "surrogatepass"), size, max_bytes)
            else:
                yield norm(obj, source, raw=lambda raw=raw: raw)


@contextmanager
def _open(path: str) -> Iterator[IO[bytes]]:
    """The file's bytes, decompressed when its name ends in .gz (local path or URI)."""
    with storage.open_input(path) as raw:
        if is_gzip(path):
            with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                yield f  # type: ignore[misc]
        else:
            yield raw
