"""Bytes in, command lines out, with a bound on a line: shared by script mode's reader
(frontends/streams.py) and `taskd send` (client.py), which imports nothing heavy.

A line over the limit is not kept: only its length, for the error it gets in its
place. `head -c 1G /dev/zero | taskd` must not fill memory, nor copy the line again
at every chunk.
"""

from __future__ import annotations


class LineTooLong:
    """Stands for a line over the limit; only its length is kept."""

    __slots__ = ("length",)

    def __init__(self, length: int) -> None:
        self.length = length


class LineSplitter:
    """Chunks in (feed), whole lines out without their newline; end() gives a last
    line that had none. A line over LIMIT bytes comes out as a LineTooLong."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._partial = bytearray()  # the start of a line, until its newline comes
        self._skipped = 0  # bytes of an over-long line seen so far

    def feed(self, chunk: bytes) -> list[bytes | LineTooLong]:
        *whole, tail = chunk.split(b"\n")
        if not whole:
            self._take(tail)
            return []
        self._take(whole[0])  # it ends a line begun in an earlier chunk, if any
        lines = [self._end()]
        limit = self.limit
        for piece in whole[1:]:  # whole lines of this chunk: nothing before them is kept
            lines.append(piece if len(piece) <= limit else LineTooLong(len(piece)))
        self._take(tail)
        return lines

    def end(self) -> list[bytes | LineTooLong]:
        return [self._end()] if self._partial or self._skipped else []

    def _take(self, piece: bytes) -> None:
        if self._skipped:
            self._skipped += len(piece)
        elif len(self._partial) + len(piece) > self.limit:
            self._skipped = len(self._partial) + len(piece)
            self._partial.clear()
        else:
            self._partial += piece

    def _end(self) -> bytes | LineTooLong:
        """The line gathered so far, now that it has ended."""
        if self._skipped:
            length, self._skipped = self._skipped, 0
            return LineTooLong(length)
        line = bytes(self._partial)
        self._partial.clear()
        return line
