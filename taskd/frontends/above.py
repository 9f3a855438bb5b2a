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

While a command runs there is no prompt, and so no bottom toolbar; yet a `wait` is
exactly when a person wants to see what runs and whether the loop lags. So the
shell hands over a status (the toolbar's own fragments) for the time of a command,
and it is drawn as the last line, cut to the terminal's width so that it never
wraps: erased before output is written and drawn again after it, refreshed every
STATUS_INTERVAL, erased when the command ends and the prompt comes back.
"""

from __future__ import annotations

import asyncio
import io
from collections import deque
from collections.abc import Callable

from prompt_toolkit.application import Application, in_terminal
from prompt_toolkit.data_structures import Size
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.output import ColorDepth
from prompt_toolkit.output import Output as TerminalOutput
from prompt_toolkit.output.vt100 import Vt100_Output
from prompt_toolkit.styles import BaseStyle
from prompt_toolkit.utils import get_cwidth

from ..fragments import Fragments, Line
from .colors import paint_fragments, printable

FLUSH_INTERVAL = 0.05  # seconds: at most 20 prompt redraws a second for output
# Characters written per flush: a flood of output is shown in slices of this size,
# one after the other but with the loop free in between, so that no flush holds
# it for long (32 KiB of coloured task lines: 13 ms median here, 1.3 ms plain).
BATCH_CHARS = 32 * 1024
# Characters waiting for the screen at most: a task printing faster than the terminal
# shows (`new shell yes`) fills this, and then its lines are dropped and counted, as
# a terminal multiplexer drops what a slow client cannot take, instead of growing
# without bound and leaving the prompt minutes behind.
MAX_QUEUED = 1 << 20
# A command's status line: drawn once the command has run this long (a quick one
# would only flicker it), then refreshed as often as the prompt's toolbar.
STATUS_DELAY = 0.25
STATUS_INTERVAL = 0.5
ERASE_LINE = "\r\x1b[K"

Status = Callable[[], StyleAndTextTuples]

Item = tuple[str | Fragments, bool]  # (plain text or one styled line, is_error)


def _size(item: Item) -> int:
    payload = item[0]
    return len(payload) if isinstance(payload, str) else sum(len(t) for _, t in payload) + 1


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
        self._coloured = depth is not ColorDepth.DEPTH_1_BIT
        self._codes = StyleCodes(style, depth)
        self._app = app
        self._queued: deque[Item] = deque()  # in order
        self._chars = 0  # characters in _queued
        self.dropped = 0  # lines dropped because the screen could not keep up
        self._unreported = 0
        self._force = False  # write even an unfinished last line
        self._broken = False
        self._paint_failed = False
        self._last = 0.0
        self._wake = asyncio.Event()
        # Characters ever queued and ever shown: drain() waits for its mark, not for
        # an empty queue, which a task that floods the screen never leaves.
        self._queued_total = 0
        self._shown_total = 0
        self._shown = asyncio.Event()  # set after each slice shown
        self._loop = asyncio.get_running_loop()
        self._status: Status | None = None
        self._status_shown = False  # the status line is on screen, the cursor at its end
        self._at_line_start = True  # the last text written ended its line
        self._status_task: asyncio.Task[None] | None = None
        self._status_live = False  # the command has run for STATUS_DELAY
        self._flusher = self._loop.create_task(self._flush_forever(), name="taskd:shell-output")

    # -- the Output protocol -------------------------------------------------------

    styled = True  # the daemon presents events to it as styled lines

    def write(self, text: str) -> None:
        self._queue(text, False)

    def line(self, line: Line) -> None:
        """A line of a command's reply: never dropped (the command bounds it)."""
        self._queue(line + "\n" if isinstance(line, str) else line, False, bounded=False)

    def event_line(self, line: Line) -> None:
        """A line of task output or a task's end: dropped and counted past MAX_QUEUED."""
        self._queue(line + "\n" if isinstance(line, str) else line, False)

    def error(self, text: str) -> None:
        self._queue(text, True)

    async def drain(self) -> None:
        """Return once everything queued before the call is on the screen (even
        while a flood goes on queuing more), or the terminal is gone."""
        mark = self._queued_total
        while self._shown_total < mark and not self._broken:
            self._force = True
            self._kick()
            self._shown.clear()
            await self._shown.wait()
        self._force = False

    async def aclose(self) -> None:
        await self.drain()
        self.status(None)
        self._flusher.cancel()
        await asyncio.wait({self._flusher})

    def status(self, status: Status | None) -> None:
        """Show STATUS as the last line while no prompt is up; None takes it away."""
        self._status = status
        self._status_live = False
        if self._status_task is not None:
            self._status_task.cancel()
            self._status_task = None
        if status is not None:
            self._status_task = self._loop.create_task(
                self._refresh_status(), name="taskd:shell-status"
            )
        elif self._status_shown:
            self._status_shown = False
            self._write_safely(ERASE_LINE)

    async def _refresh_status(self) -> None:
        await asyncio.sleep(STATUS_DELAY)
        self._status_live = True
        while True:
            app = self._app()
            if not (app is not None and app.is_running) and self._at_line_start:
                self._write_safely(ERASE_LINE + self._status_text())
            await asyncio.sleep(STATUS_INTERVAL)

    def _status_text(self) -> str:
        """The status line painted, cut to one column less than the terminal (a
        line that reaches the last column would wrap on some terminals)."""
        status = self._status
        if status is None or self._broken:
            return ""
        try:
            room = self._terminal.get_size().columns - 1
        except OSError:
            return ""
        parts = []
        for style, text, *_ in status():
            text = printable(text)
            while text and get_cwidth(text) > room:
                text = text[:-1]
            room -= get_cwidth(text)
            full = f"class:bottom-toolbar {style}"
            parts.append(self._codes.sequence(full) + text + self._codes.reset)
            if room <= 0:
                break
        if room > 0 and parts:  # the bar reaches across, as the prompt's does
            parts.append(self._codes.sequence("class:bottom-toolbar") + " " * room)
            parts.append(self._codes.reset)
        self._status_shown = bool(parts)
        return "".join(parts)

    def _write_safely(self, text: str) -> None:
        if self._broken or not text:
            return
        try:
            self._write(text)
        except OSError:
            self.hung_up()

    def hung_up(self) -> None:
        """The terminal is gone: drop what is queued and all that comes."""
        self._broken = True
        self._queued.clear()
        self._chars = 0

    # -- the flusher ---------------------------------------------------------------

    def _queue(self, text: str | Fragments, is_error: bool, bounded: bool = True) -> None:
        if not text or self._broken:
            return
        if bounded and self._chars > MAX_QUEUED:
            lines = text.count("\n") if isinstance(text, str) else 1
            self.dropped += lines
            self._unreported += lines
            return
        if self._unreported:
            count, self._unreported = self._unreported, 0
            notice = f"taskd: {count} lines dropped: the terminal could not keep up\n"
            self._queued.append((notice, True))
            self._chars += len(notice)
            self._queued_total += len(notice)
        item = (text, is_error)
        self._queued.append(item)
        self._chars += _size(item)
        self._queued_total += _size(item)
        self._kick()

    def _kick(self) -> None:
        self._wake.set()

    def _take(self) -> list[Item]:
        """Up to BATCH_CHARS of the queue (whole segments), cut after its last newline;
        the rest stays queued. Forced, an unfinished last line goes too. Linear: each
        segment is taken off the deque once, at most one is split."""
        queued, taken, size = self._queued, [], 0
        while queued and size < BATCH_CHARS:
            item = queued.popleft()
            taken.append(item)
            size += _size(item)
        self._chars -= size
        if self._force and not queued:
            self._force = False
            return taken
        for i in range(len(taken) - 1, -1, -1):
            text, is_error = taken[i]
            if not isinstance(text, str):
                cut_at = i + 1  # a styled line is always whole
                head: list[Item] = []
            else:
                cut = text.rfind("\n")
                if cut < 0:
                    continue
                cut_at = i
                rest = text[cut + 1 :]
                head = [(text[: cut + 1], is_error)]
                if rest:
                    taken.insert(i + 1, (rest, is_error))
            back = taken[i + 1 :]
            for item in reversed(back):
                queued.appendleft(item)
                self._chars += _size(item)
            return [*taken[:cut_at], *head]
        if self._force:
            return taken  # a drain waits: a slice with no newline goes as it is
        for item in reversed(taken):
            queued.appendleft(item)
        self._chars += size
        return []

    def _backlog(self) -> bool:
        """Whether a whole line is waiting (the scan is short: a long queue has one)."""
        if self._chars >= BATCH_CHARS:
            return True
        return any(not isinstance(t, str) or "\n" in t for t, _ in self._queued)

    async def _flush_forever(self) -> None:
        backlog = False
        while True:
            await self._wake.wait()
            wait = self._last + FLUSH_INTERVAL - self._loop.time()
            if backlog:
                await asyncio.sleep(0)  # let everything else run between slices
            elif wait > 0 and not self._force:
                await asyncio.sleep(wait)  # gather what comes in the meantime
            self._wake.clear()
            batch = self._take()
            if batch:
                await self._show(batch)
                self._shown_total += sum(_size(item) for item in batch)
                self._last = self._loop.time()
            self._shown.set()
            backlog = bool(batch) and self._backlog()
            if backlog or (self._force and self._queued):
                self._wake.set()

    async def _show(self, batch: list[Item]) -> None:
        try:
            text = self._paint(batch)
        except Exception as exc:  # a bug in colouring must not cost a line of output
            text = "".join(printable(_plain(t)) for t, _ in batch)
            if not self._paint_failed:
                self._paint_failed = True
                self._loop.call_exception_handler({"message": "colouring failed", "exception": exc})
        text = text.replace("\n", "\r\n")  # \r: the terminal may be in raw mode
        try:
            app = self._app()
            if app is not None and app.is_running:
                async with in_terminal():
                    self._write(text)
            else:
                if self._status_shown:  # the output takes the status line's place
                    text = ERASE_LINE + text
                    self._status_shown = False
                if self._status_live and text.endswith("\n"):
                    text += self._status_text()  # the status follows, below it
                self._write(text)
            self._at_line_start = text.endswith("\n") or self._status_shown
        except OSError:
            self.hung_up()  # EIO: nobody can read anything any more

    def _write(self, text: str) -> None:
        self._terminal.write_raw(text)
        self._terminal.flush()

    def _paint(self, batch: list[Item]) -> str:
        """BATCH as the terminal's text: escape sequences only where a style says so.

        prompt_toolkit's print_formatted_text does the same a fragment at a time,
        at about 33k lines/s here; the sequences are computed once per style."""
        if not self._coloured:
            return "".join(printable(_plain(text)) for text, _ in batch)
        parts = []
        for text, is_error in batch:
            for style, piece, *_ in paint_fragments(text, is_error):
                parts.append(self._codes.sequence(style) + piece if style else piece)
                if style:
                    parts.append(self._codes.reset)
        return "".join(parts)


def _plain(payload: str | Fragments) -> str:
    if isinstance(payload, str):
        return payload
    return "".join(text for _, text in payload) + "\n"


class StyleCodes:
    """The escape sequence for each style string, rendered once by a scratch vt100
    output (so colour depth and attributes are handled exactly as in the prompt)."""

    def __init__(self, style: BaseStyle, depth: ColorDepth) -> None:
        self._style = style
        self._depth = depth
        self._cache: dict[str, str] = {}
        self.reset = self._render(None)

    def sequence(self, style: str) -> str:
        code = self._cache.get(style)
        if code is None:
            code = self._cache[style] = self._render(style)
        return code

    def _render(self, style: str | None) -> str:
        screen = io.StringIO()
        scratch = Vt100_Output(screen, lambda: Size(rows=1, columns=1), term="xterm")
        if style is None:
            scratch.reset_attributes()
        else:
            scratch.set_attributes(self._style.get_attrs_for_style_str(style), self._depth)
        scratch.flush()
        return screen.getvalue()
