"""The line splitter script mode and `taskd send` share (taskd/linesplit.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from taskd.linesplit import LineSplitter, LineTooLong


def _split(data: bytes, cuts: list[int], limit: int) -> list[bytes | int]:
    """DATA fed in pieces cut at CUTS; an over-long line as its length."""
    splitter = LineSplitter(limit)
    lines: list[bytes | LineTooLong] = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        if cut > start:
            lines += splitter.feed(data[start:cut])
            start = cut
    lines += splitter.end()
    return [line.length if isinstance(line, LineTooLong) else line for line in lines]


@given(
    st.lists(st.sampled_from([b"a", b"b", b"\n"]), max_size=300).map(b"".join),
    st.lists(st.integers(0, 300), max_size=20),
    st.integers(0, 12),
)
def test_any_chunking_gives_the_lines_of_the_whole(
    data: bytes, cuts: list[int], limit: int
) -> None:
    expected: list[bytes | int] = []
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # a final newline ends the last line; it starts none
    for line in lines:
        expected.append(line if len(line) <= limit else len(line))
    assert _split(data, [c for c in cuts if c <= len(data)], limit) == expected
