"""Work units -> canonical Rows, with bad rows quarantined.

``read_chunk`` turns one work unit from :func:`quality.inputs.plan_chunks` into Rows (the
chunk dicts are described in :mod:`quality.inputs`); ``read_all`` discovers, plans and
reads inputs in this process. A bad row never raises: it becomes a quarantined Row with a
reason code, so every input row is accounted for. What a reader cannot decode is
quarantined as ``unreadable`` by position: every line of a damaged gzip file
(:mod:`quality.compressed`), every row of a Parquet row group that fails to decode, the
rest of a file whose reading fails part way. Only a file that cannot be opened at all
(deleted since planning, a corrupt Parquet footer) raises
:class:`~infra.errors.InputError`, as do a missing or unsupported path given to
``read_all``.

Lines end at LF, CRLF or a lone CR (:mod:`quality.lines`).
"""

from __future__ import annotations

import csv
import io
import json
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import IO, Any

from infra import storage
from infra.errors import InputError
from quality import json_documents
from quality.compressed import damaged_rows, gzip_damage, open_decompressed
from quality.inputs import discover, is_gzip, plan_chunks
from quality.lines import LineReader, read_salvaged
from quality.record_text import (
    TOO_DEEP,
    Normalizer,
    parse_json,
    row_from_bytes,
    too_deep_object,
    too_large,
    unreadable_rest,
)
from quality.records import RowError, check_format, normalize, quarantined_row
from quality.schema import Row

# CSV cells under these (schema) names hold JSON lists of turns.
_JSON_COLUMNS = ("messages", "conversations")
_BOM = b"\xef\xbb\xbf"


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
        One Row per input record (blank JSONL/CSV lines are not records), then, for a
        file damaged part way, the quarantined rows of what could not be read.

    Raises:
        InputError: a bad ``fmt`` or ``max_record_bytes``, or a file that cannot be opened
            (a corrupt Parquet footer, deleted since planning).
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
    if is_gzip(path):
        rows = _checked_gzip(path, rows)
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
    """Turn failures to open a file (gone, a corrupt Parquet footer) into InputError."""
    import pyarrow as pa

    try:
        yield from rows
    except (OSError, EOFError, zlib.error, pa.ArrowException) as err:
        raise InputError(
            f"cannot read {path}: {err}. The file is missing, corrupt or truncated: "
            "re-export it or remove it from the inputs"
        ) from None


def _checked_gzip(path: str, rows: Iterator[Row]) -> Iterator[Row]:
    """A gzip file is checked whole first: a damaged one is quarantined line by line."""
    damage = gzip_damage(path)
    yield from rows if damage is None else damaged_rows(path, damage)


def _normalize_or_quarantine(obj: Any, source: str, raw: Callable[[], str], **kwargs: Any) -> Row:
    try:
        return normalize(obj, source=source, **kwargs)
    except RowError as err:
        return quarantined_row(source=source, raw=raw(), reason=err.reason, detail=err.detail)


# --- JSON lines --------------------------------------------------------------------------


def _read_jsonl(
    path: str, start: int, end: int, first_line: int, norm: Normalizer, max_bytes: int
) -> Iterator[Row]:
    with open_decompressed(path) as f:
        yield from _jsonl_rows(f, path, start, end, first_line, norm, max_bytes)


def _jsonl_rows(
    f: IO[bytes],
    path: str,
    start: int,
    end: int,
    first_line: int,
    norm: Normalizer,
    max_bytes: int,
) -> Generator[Row, None, int]:
    """Rows of the lines starting in ``[start, end)`` (end -1: to EOF), streamed.

    Returns:
        (as the generator's value) the number the next line would have had.
    """
    lines = LineReader(f)
    pos = 0
    if start > 0:
        # Skip the tail of the line that started in the previous chunk.
        f.seek(start - 1)
        skipped = lines.read_line(0)
        pos = start - 1 + (skipped.length if skipped else 0)
    line_no = first_line
    while end < 0 or pos < end:
        # At most max_bytes + 1 bytes of a record are kept: a 1 GB line never sits in memory.
        line = lines.read_line(max_bytes + 1)
        if line is None:
            break
        source, line_no = f"{path}:{line_no}", line_no + 1
        pos += line.length
        data, size = line.head, line.size
        if line_no == 2 and data.startswith(_BOM):
            data, size = data[len(_BOM) :], size - len(_BOM)
        if size > max_bytes:
            yield too_large(source, data, size, max_bytes)
        elif data.strip():
            yield row_from_bytes(data, source, norm)
    if lines.error is not None:
        yield unreadable_rest(f"{path}:{line_no}", lines.partial, lines.error)
        line_no += 1
    return line_no


# --- JSON documents ----------------------------------------------------------------------


def _read_json(
    path: str, norm: Normalizer, max_bytes: int, field_map: Mapping[str, str]
) -> Iterator[Row]:
    with open_decompressed(path) as f:
        data, error = read_salvaged(f)
    data = data.removeprefix(_BOM)
    value = json_documents.parse_document(data)
    if value is json_documents.BROKEN and json_documents.is_json_lines(data):
        # Many ".json" files are really JSON lines; read them line by line.
        line = yield from _jsonl_rows(io.BytesIO(data), path, 0, -1, 1, norm, max_bytes)
        rest = f"{path}:{line}"
    else:
        index = yield from json_documents.document_rows(
            data, value, path, norm, max_bytes, field_map
        )
        rest = f"{path}#{index}"
    if error is not None:
        yield unreadable_rest(rest, b"", error)


# --- CSV ---------------------------------------------------------------------------------


def _read_csv(
    path: str, norm: Normalizer, max_bytes: int, field_map: Mapping[str, str]
) -> Iterator[Row]:
    # Fields up to max_bytes must parse; bigger ones fail and are quarantined as too_large.
    csv.field_size_limit(max(csv.field_size_limit(), max_bytes + 1))
    delimiter = "\t" if storage.name_of(path).lower().removesuffix(".gz").endswith(".tsv") else ","
    with open_decompressed(path) as f:
        lines = _CsvLines(LineReader(f))
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
                break
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
                yield too_large(source, raw.encode("utf-8"), len(raw.encode("utf-8")), max_bytes)
            else:
                yield _csv_row(header, cells, source, raw, norm, field_map)
        if lines.reader.error is not None:
            yield unreadable_rest(source, lines.reader.partial, lines.reader.error)


class _CsvLines:
    """Feeds csv.reader decoded physical lines and remembers those of the current record."""

    def __init__(self, reader: LineReader) -> None:
        self.reader = reader
        self._buffer: list[str] = []
        self._bad = False
        self._first = True

    def __iter__(self) -> _CsvLines:
        return self

    def __next__(self) -> str:
        line = self.reader.read_line()
        if line is None:
            raise StopIteration
        data = line.head + line.end
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
                obj[name] = parse_json(value)
            except RowError as err:
                what = " is not valid JSON" if err.reason == "invalid_json" else ""
                detail = f"column {name!r}{what}: {err.detail}"
                return quarantined_row(source=source, raw=raw, reason=err.reason, detail=detail)
    return norm(obj, source, raw=lambda: raw)


def _csv_error(source: str, raw: str, err: csv.Error, max_bytes: int) -> Row:
    if "field larger than field limit" in str(err):
        return too_large(source, raw.encode("utf-8"), len(raw.encode("utf-8")), max_bytes)
    return quarantined_row(source=source, raw=raw, reason="wrong_type", detail=f"bad CSV: {err}")


# --- Parquet -----------------------------------------------------------------------------


def _read_parquet(
    path: str, start: int, end: int, first_row: int, norm: Normalizer, max_bytes: int
) -> Iterator[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, inner = storage.split(path)
    pf = pq.ParquetFile(inner, filesystem=fs)
    index = first_row
    for group in range(start, pf.num_row_groups if end < 0 else end):
        rows = pf.metadata.row_group(group).num_rows
        done = 0
        try:
            for batch in pf.iter_batches(batch_size=1024, row_groups=[group]):
                yield from _parquet_batch(batch, path, index + done, norm, max_bytes)
                done += batch.num_rows
        except (OSError, pa.ArrowException) as err:
            # The footer counts the group's rows: each unread one is accounted for by index.
            detail = (
                f"row group {group} could not be decoded ({type(err).__name__}: {err}); "
                "re-export the file to recover its rows"
            )
            for i in range(index + done, index + rows):
                yield quarantined_row(
                    source=f"{path}#{i}", raw="", reason="unreadable", detail=detail
                )
        index += rows


def _parquet_batch(
    batch: Any, path: str, first: int, norm: Normalizer, max_bytes: int
) -> Iterator[Row]:
    """Rows of one decoded batch; a value Python cannot hold fails its own row only."""
    try:
        objs: list[Any] = batch.to_pylist()
    except (ValueError, OverflowError, ArithmeticError):
        objs = [_one_parquet_row(batch, i) for i in range(batch.num_rows)]
    for offset, obj in enumerate(objs):
        source = f"{path}#{first + offset}"
        if isinstance(obj, RowError):
            yield quarantined_row(source=source, raw="", reason=obj.reason, detail=obj.detail)
        else:
            yield _parquet_row(obj, source, norm, max_bytes)


def _one_parquet_row(batch: Any, i: int) -> Any:
    try:
        return batch.slice(i, 1).to_pylist()[0]
    except (ValueError, OverflowError, ArithmeticError) as err:
        reason = "invalid_utf8" if isinstance(err, UnicodeDecodeError) else "wrong_type"
        return RowError(reason, f"a value cannot be read into Python: {err}")


def _parquet_row(obj: Any, source: str, norm: Normalizer, max_bytes: int) -> Row:
    if too_deep_object(obj):
        return quarantined_row(source=source, raw="", reason="too_deep", detail=TOO_DEEP)
    raw = json.dumps(obj, ensure_ascii=False, default=str)
    size = len(raw.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        return too_large(source, raw.encode("utf-8", "surrogatepass"), size, max_bytes)
    return norm(obj, source, raw=lambda: raw)
