"""quality.lines: universal line ends, bounded lines, line numbers for chunk starts, and a
stream that breaks part way."""

from __future__ import annotations

import gzip
import io
import re

from hypothesis import given
from hypothesis import strategies as st

from quality.lines import LineReader, count_line_ends, first_line_numbers, read_salvaged


def all_lines(data: bytes, limit: int | None = None, block: int = 4) -> list[tuple]:
    reader = LineReader(io.BytesIO(data), block=block)
    out = []
    while (line := reader.read_line(limit)) is not None:
        out.append((line.head, line.size, line.length, line.end))
    return out


def reference_lines(data: bytes) -> list[tuple[bytes, bytes]]:
    """(text, end) of every line, by a regex over the whole input: the rule being tested."""
    found = [(m.group(1), m.group(2)) for m in re.finditer(rb"([^\r\n]*)(\r\n|\r|\n|$)", data)]
    if found and found[-1] == (b"", b""):
        found.pop()  # the empty match at the very end is not a line
    return found


def test_lf_crlf_and_lone_cr_each_end_a_line() -> None:
    data = b"a\nbb\r\ncc\rd\r\r\ne"
    assert [(h, e) for h, _, _, e in all_lines(data)] == [
        (b"a", b"\n"),
        (b"bb", b"\r\n"),
        (b"cc", b"\r"),
        (b"d", b"\r"),
        (b"", b"\r\n"),
        (b"e", b""),
    ]


def test_a_crlf_split_across_blocks_is_one_line_end() -> None:
    # block=4 puts the CR of "abc\r\n" last in the first block
    assert all_lines(b"abc\r\ndef\n", block=4) == [(b"abc", 3, 5, b"\r\n"), (b"def", 3, 4, b"\n")]


def test_a_long_line_keeps_only_its_head_but_counts_every_byte() -> None:
    (line,) = all_lines(b"x" * 50 + b"\r\n", limit=7)
    assert line == (b"x" * 7, 50, 52, b"\r\n")


@given(
    st.lists(st.sampled_from([b"a", b"bc", b"{}", b"\r", b"\n", b"\r\n", b" "]), max_size=40),
    st.integers(min_value=1, max_value=9),
)
def test_lines_match_the_universal_newline_rule(pieces: list[bytes], block: int) -> None:
    data = b"".join(pieces)
    got = all_lines(data, block=block)
    assert [(h, e) for h, _, _, e in got] == reference_lines(data)
    assert sum(length for _, _, length, _ in got) == len(data)  # every byte once


@given(
    st.lists(st.sampled_from([b"ab", b"c", b"\r", b"\n", b"\r\n"]), min_size=1, max_size=40),
    st.data(),
)
def test_first_line_numbers_agree_with_reading_from_the_start(pieces: list[bytes], data) -> None:
    raw = b"".join(pieces)
    starts = sorted(
        set(data.draw(st.lists(st.integers(1, max(1, len(raw) - 1)), max_size=6), label="starts"))
    )
    numbers = first_line_numbers(io.BytesIO(raw), starts, block=data.draw(st.integers(1, 8)))
    # Reading from 0: line k starts at offset o_k; a chunk starting at s owns the first
    # line starting at or after s (after the line end at or after s - 1).
    offsets, pos = [], 0
    for _, _, length, _ in all_lines(raw):
        offsets.append(pos)
        pos += length
    for start, number in zip(starts, numbers, strict=True):
        owned = [k for k, o in enumerate(offsets, start=1) if o >= start]
        if owned:
            assert number == owned[0]


def test_count_line_ends() -> None:
    assert count_line_ends(b"a\r\nb\rc\n\n") == 4


def test_a_truncated_gzip_stream_stops_with_the_error_and_the_partial_line() -> None:
    text = b"".join(b'{"n": %d}\n' % i for i in range(5000))
    cut = gzip.compress(text)[:-40]
    reader = LineReader(gzip.GzipFile(fileobj=io.BytesIO(cut)))
    lines = []
    while (line := reader.read_line()) is not None:
        lines.append(line.head)
    assert isinstance(reader.error, EOFError)
    assert 4000 < len(lines) < 5000
    assert lines == [b'{"n": %d}' % i for i in range(len(lines))]
    # The line it broke in is not a line: it is the start of what was lost.
    assert text.startswith(b"\n".join(lines) + b"\n" + reader.partial)
    data, error = read_salvaged(gzip.GzipFile(fileobj=io.BytesIO(cut)))
    assert isinstance(error, EOFError) and text.startswith(data) and len(data) > len(text) // 2
