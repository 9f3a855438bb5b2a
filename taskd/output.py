"""What the engine needs from a front-end to speak: an Output.

The engine writes whole lines of text and one-line errors; how they reach a person
(a pipe, a file, above a prompt) is the front-end's business.
"""

from __future__ import annotations

from typing import Protocol


class Output(Protocol):
    def write(self, text: str) -> None:
        """Queue TEXT (normally whole lines) for standard output; never blocks."""

    def error(self, text: str) -> None:
        """Queue one line for standard error; never blocks."""

    async def drain(self) -> None:
        """Return once everything queued so far has been handed to the OS."""

    async def aclose(self) -> None:
        """Drain, then release the streams."""


class MemoryOutput:
    """An Output that keeps what it is given, for tests and embedding."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.err: list[str] = []

    def write(self, text: str) -> None:
        self.out.append(text)

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
