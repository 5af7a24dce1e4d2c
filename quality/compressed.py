"""Opening an input's bytes, decompressed when its name ends in ``.gz``, and what to do
with a gzip file that is damaged.

A gzip stream checks itself only at its end (CRC-32 and length), and a damaged deflate
block often decodes into plausible garbage before anything fails, sometimes failing only
as "ended before the end-of-stream marker", exactly like a file cut short. So no text of a
failing stream can be trusted, and a ``.gz`` input is decompressed once, streaming, before
it is read (:func:`gzip_damage`): an intact file is read as usual; a damaged one (cut
short, a checksum that does not match, a deflate error, not gzip at all) has every line
quarantined as ``unreadable`` by position, its text kept as raw (:func:`damaged_rows`),
rather than some garbled line passing as a row.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from infra import storage
from quality.inputs import is_gzip
from quality.lines import BLOCK, STREAM_ERRORS, LineReader
from quality.record_text import PREVIEW_BYTES, unreadable_rest
from quality.records import quarantined_row
from quality.schema import Row


@contextmanager
def open_decompressed(path: str) -> Iterator[IO[bytes]]:
    """The file's bytes, decompressed when its name ends in .gz (local path or URI)."""
    with storage.open_input(path) as raw:
        if is_gzip(path):
            with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                yield f  # type: ignore[misc]
        else:
            yield raw


def gzip_damage(path: str) -> BaseException | None:
    """Decompress a .gz file to its end: the error that shows it damaged, or None."""
    try:
        with open_decompressed(path) as f:
            while f.read1(BLOCK):  # type: ignore[attr-defined]
                pass
    except STREAM_ERRORS as err:
        return err
    return None


def damaged_rows(path: str, damage: BaseException) -> Iterator[Row]:
    """Every line of a corrupt gzip file, quarantined by position, then the rest."""
    detail = (
        f"the file fails its gzip check ({type(damage).__name__}: {damage}): its text is "
        "damaged somewhere, so none of its lines is trusted. Re-export or re-download it"
    )
    with open_decompressed(path) as f:
        lines = LineReader(f)
        line_no = 1
        while (line := lines.read_line(PREVIEW_BYTES)) is not None:
            if line.head.strip():
                raw = line.head.decode("utf-8", "replace")
                yield quarantined_row(
                    source=f"{path}:{line_no}", raw=raw, reason="unreadable", detail=detail
                )
            line_no += 1
        if lines.error is not None:
            yield unreadable_rest(f"{path}:{line_no}", lines.partial, lines.error)
