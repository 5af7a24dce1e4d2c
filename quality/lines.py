"""Lines of a byte stream as Python's universal newlines see them: ended by LF, CRLF or a
lone CR, read in bounded pieces so that a 1 GB line never sits in memory.

JSON Lines and CSV readers share this reader, and chunk planning counts line ends with
:func:`count_line_ends` by the same rule, so a file written with bare-CR (old Mac) or
mixed line endings splits into the same rows whichever chunk reads them.

A stream that fails while being read (a truncated or corrupt gzip member) does not raise:
the reader stops there and keeps the error in :attr:`LineReader.error`, and the text of the
line it was in the middle of in :attr:`LineReader.partial`, so a reader can keep the rows
before the damage and account for the rest.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

BLOCK = 1 << 20  # bytes read at a time
_LINE_END = re.compile(rb"\r\n|\r|\n")
# What a damaged stream raises while it is read: gzip's BadGzipFile is an OSError, a
# truncated member an EOFError, a corrupt deflate block a zlib.error.
STREAM_ERRORS = (OSError, EOFError, zlib.error)


@dataclass(frozen=True)
class Line:
    """One line, without its line end."""

    head: bytes
    """The first ``limit`` bytes of the line's text (all of it without a limit)."""
    size: int
    """Bytes of the line's text, line end excluded."""
    length: int
    """Bytes the line took in the stream, line end included."""
    end: bytes
    """The line end: ``b"\\n"``, ``b"\\r\\n"``, ``b"\\r"``, or ``b""`` for a last line
    without one."""


class LineReader:
    """Reads lines of a binary stream one at a time (see the module doc).

    Attributes:
        error: the exception that stopped the stream early, or None.
        partial: the first bytes (up to the last ``limit``) of the line the stream broke
            in, ``b""`` when it broke between lines.
    """

    def __init__(self, f: IO[bytes], *, block: int | None = None) -> None:
        self._f = f
        self._block = block or BLOCK
        # read1: one read of the underlying stream at a time, so a gzip stream that fails
        # part way has handed over everything it decoded before (read(n) would drop it).
        self._read_block = getattr(f, "read1", f.read)
        self._buf = b""
        self._pos = 0
        self._eof = False
        self.error: BaseException | None = None
        self.partial = b""

    def read_line(self, limit: int | None = None) -> Line | None:
        """The next line, or None at the end of the stream (or where it broke).

        Args:
            limit: keep at most this many bytes of the line's text in ``head``; the rest
                is read and counted, not kept. None keeps the whole line.
        """
        pieces: list[bytes] = []
        kept = size = length = 0
        while True:
            if self._pos >= len(self._buf) and not self._refill():
                if self.error is not None:
                    self.partial = b"".join(pieces)
                    return None
                if length == 0:
                    return None
                return Line(b"".join(pieces), size, length, b"")
            match = _LINE_END.search(self._buf, self._pos)
            if (
                match is not None
                and match.end() == len(self._buf)
                and match.group() == b"\r"
                and not self._eof
            ):
                # A CR that ends the buffer may be the first half of a CRLF: read on first.
                self._extend()
                continue
            stop = match.start() if match else len(self._buf)
            text = self._buf[self._pos : stop]
            size += len(text)
            if limit is None or kept < limit:
                take = text if limit is None else text[: limit - kept]
                pieces.append(take)
                kept += len(take)
            if match is None:
                length += len(text)
                self._pos = len(self._buf)
                continue
            length += match.end() - self._pos
            self._pos = match.end()
            return Line(b"".join(pieces), size, length, match.group())

    def _read(self) -> bytes:
        if self._eof:
            return b""
        try:
            data = self._read_block(self._block)
        except STREAM_ERRORS as err:
            self.error, self._eof = err, True
            return b""
        if not data:
            self._eof = True
        return data

    def _refill(self) -> bool:
        """Replace the consumed buffer with the next block; False at the end."""
        self._buf, self._pos = self._read(), 0
        return bool(self._buf)

    def _extend(self) -> None:
        """Append the next block to what is left of the buffer."""
        self._buf, self._pos = self._buf[self._pos :] + self._read(), 0


def count_line_ends(data: bytes) -> int:
    """Line ends in ``data`` (LF, CRLF and lone CR each count once)."""
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def first_line_numbers(
    f: IO[bytes], starts: Sequence[int], *, block: int | None = None
) -> list[int]:
    """The 1-based number of the first line that starts at or after each offset.

    A chunk starting at byte ``s > 0`` owns the lines that begin after the first line end
    at or after ``s - 1`` (see :func:`quality.inputs.plan_chunks`), so its first line's
    number is 2 plus the line ends lying wholly before ``s - 1``. One pass over the file.

    Args:
        f: the file, at offset 0.
        starts: ascending offsets, each at least 1.

    Returns:
        One line number per offset.
    """
    block = block or BLOCK
    result: list[int] = []
    targets = iter(s - 1 for s in starts)
    target = next(targets, None)
    ends_before = pos = 0
    while target is not None:
        data = f.read(block)
        if not data:
            break
        while data.endswith(b"\r"):  # never split a CRLF between two blocks
            more = f.read(1)
            if not more:
                break
            data += more
        while target is not None and target <= pos + len(data):
            head = data[: target - pos]
            ends = count_line_ends(head)
            if head.endswith(b"\r") and data[target - pos : target - pos + 1] == b"\n":
                ends -= 1  # the CR of a CRLF that ends after the target
            result.append(ends_before + ends + 2)
            target = next(targets, None)
        ends_before += count_line_ends(data)
        pos += len(data)
    return result


def read_salvaged(f: IO[bytes]) -> tuple[bytes, BaseException | None]:
    """The whole stream, and the error that cut it short (a damaged gzip stream), if any.

    Everything decoded before the error is returned, as :class:`LineReader` does.
    """
    read = getattr(f, "read1", f.read)
    parts: list[bytes] = []
    try:
        while block := read(BLOCK):
            parts.append(block)
    except STREAM_ERRORS as err:
        return b"".join(parts), err
    return b"".join(parts), None
