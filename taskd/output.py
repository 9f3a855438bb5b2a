"""What a consumer of taskd's words provides: an Output.

Every front-end (a script's standard streams, the terminal above a prompt, a socket
client) has its own Output with its own bounded buffer: a reader that stalls fills
its own bound and loses text with a count, and never holds up the loop, another
consumer or the end.
"""

from __future__ import annotations

from typing import Protocol

from .fragments import Line, plain


class Output(Protocol):
    def write(self, text: str) -> None:
        """Queue TEXT (whole lines) for standard output; never blocks."""

    def line(self, line: Line) -> None:
        """Queue one line (no newline), styled or plain; never blocks."""

    def error(self, text: str) -> None:
        """Queue one line for standard error; never blocks."""

    async def drain(self) -> None:
        """Return once everything queued so far has been handed on (or given up)."""

    async def aclose(self) -> None:
        """Drain, then release the streams."""


class MemoryOutput:
    """An Output that keeps what it is given, for tests and embedding."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.err: list[str] = []

    def write(self, text: str) -> None:
        self.out.append(text)

    def line(self, line: Line) -> None:
        self.out.append(plain(line) + "\n")

    def error(self, text: str) -> None:
        self.err.append(text)

    async def drain(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    @property
    def lines(self) -> list[str]:
        return "".join(self.out).splitlines()

    @property
    def errors(self) -> list[str]:
        return "".join(self.err).splitlines()
