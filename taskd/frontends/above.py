"""The shell's Output: text printed above the prompt, the half-typed line kept.

Everything the engine says (task output, events, command results, errors) is queued
here and written by one flusher task on the daemon's loop. While the prompt is up
the flusher writes inside prompt_toolkit's `in_terminal()`, which erases the prompt,
lets the text scroll up, and redraws the prompt with the person's line and cursor
where they were. prompt_toolkit's own StdoutProxy does the same from a thread; a
task on the loop needs no thread and no lock, and knows when everything is out.

Redrawing the prompt for every line would cost more than the lines themselves when
a task prints fast, so writes are gathered: at most one flush per FLUSH_INTERVAL,
which is still well under what a person notices as delay. Text after the last
newline waits for the rest of its line (a prompt redrawn over half a line would
hide it), except when the daemon drains everything at the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prompt_toolkit.application import Application, in_terminal
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.output import ColorDepth
from prompt_toolkit.output import Output as TerminalOutput
from prompt_toolkit.renderer import print_formatted_text
from prompt_toolkit.styles import BaseStyle

from .colors import fragments

FLUSH_INTERVAL = 0.05  # seconds: at most 20 prompt redraws a second for output


class AboveThePrompt:
    """An Output (taskd.output) for a terminal that has a prompt on it."""

    def __init__(
        self,
        terminal: TerminalOutput,
        style: BaseStyle,
        depth: ColorDepth,
        app: Callable[[], Application[str] | None],
    ) -> None:
        self._terminal = terminal
        self._style = style
        self._depth = depth
        self._app = app
        self._queued: list[tuple[str, bool]] = []  # (text, is_error), in order
        self._force = False  # write even an unfinished last line
        self._broken = False
        self._last = 0.0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._loop = asyncio.get_running_loop()
        self._flusher = self._loop.create_task(self._flush_forever(), name="taskd:shell-output")

    # -- the Output protocol -------------------------------------------------------

    def write(self, text: str) -> None:
        self._queue(text, False)

    def error(self, text: str) -> None:
        self._queue(text, True)

    async def drain(self) -> None:
        if self._queued:
            self._force = True
            self._kick()
        await self._idle.wait()

    async def aclose(self) -> None:
        await self.drain()
        self._flusher.cancel()
        await asyncio.wait({self._flusher})

    def hung_up(self) -> None:
        """The terminal is gone: drop what is queued and all that comes."""
        self._broken = True
        self._queued.clear()

    # -- the flusher ---------------------------------------------------------------

    def _queue(self, text: str, is_error: bool) -> None:
        if text and not self._broken:
            self._queued.append((text, is_error))
            self._kick()

    def _kick(self) -> None:
        self._idle.clear()
        self._wake.set()

    def _take(self) -> list[tuple[str, bool]]:
        """The queued text up to its last newline (all of it when forced)."""
        queued, self._queued = self._queued, []
        if self._force:
            self._force = False
            return queued
        for i in range(len(queued) - 1, -1, -1):
            text, is_error = queued[i]
            cut = text.rfind("\n")
            if cut >= 0:
                head, rest = text[: cut + 1], text[cut + 1 :]
                self._queued = ([(rest, is_error)] if rest else []) + queued[i + 1 :]
                return [*queued[:i], (head, is_error)]
        self._queued = queued
        return []

    async def _flush_forever(self) -> None:
        while True:
            await self._wake.wait()
            wait = self._last + FLUSH_INTERVAL - self._loop.time()
            if wait > 0 and not self._force:
                await asyncio.sleep(wait)
            self._wake.clear()
            batch = self._take()
            if batch:
                await self._show(batch)
                self._last = self._loop.time()
            if not self._wake.is_set():
                self._idle.set()

    async def _show(self, batch: list[tuple[str, bool]]) -> None:
        styled: StyleAndTextTuples = []
        for text, is_error in batch:
            styled += fragments(text, is_error)
        try:
            app = self._app()
            if app is not None and app.is_running:
                async with in_terminal():
                    self._print(styled)
            else:
                self._print(styled)
        except OSError:
            self.hung_up()  # EIO: nobody can read anything any more

    def _print(self, styled: StyleAndTextTuples) -> None:
        print_formatted_text(self._terminal, styled, self._style, color_depth=self._depth)
