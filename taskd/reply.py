"""A command's reply channel: its output goes to whoever asked, and only to them.

Each front-end makes a Reply for every command line it runs (aiomonitor gives each
connection its own output the same way): two people attached to one daemon each see
their own `show`, while task events still reach everyone through the event bus.
"""

from __future__ import annotations

from collections.abc import Callable

from .fragments import Line
from .output import Output


class Reply:
    """Where one command's lines go, and how wide the asker's screen is."""

    __slots__ = ("_output", "_width")

    def __init__(self, output: Output, width: Callable[[], int | None] | None = None) -> None:
        self._output = output
        self._width = width

    def out(self, line: Line) -> None:
        """One line of the command's result (no newline)."""
        self._output.line(line)

    def lines(self, lines: list[Line]) -> None:
        for line in lines:
            self._output.line(line)

    @property
    def plain(self) -> bool:
        """Whether the asker takes plain text of any width (a pipe, a file): a long
        reply may then be made as text and handed over in one piece (text())."""
        return self._width is None and not getattr(self._output, "styled", False)

    def text(self, lines: list[str]) -> None:
        """Plain LINES (no newlines), when `plain`: one piece for the output (the
        reply's channel, which never drops a reply)."""
        if lines:
            self._output.line("\n".join(lines))

    def notice(self, text: str) -> None:
        """A one-line message for the asker's error stream (not a failure)."""
        self._output.error(text + "\n")

    @property
    def width(self) -> int | None:
        """Columns the asker can show, None for no limit (a pipe, a file)."""
        return self._width() if self._width is not None else None
