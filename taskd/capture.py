"""Route what tasks print to their own output.

While the daemon runs, sys.stdout and sys.stderr are replaced by a TaskStream. Text
written from inside a taskd task (its context has CURRENT set) is cut into lines and
handed to the daemon as that task's output, so kinds, built-in or a user's, just
call print(). Any other text goes to the front-end unchanged.

Lines are at most MAX_LINE characters: a longer one is delivered as consecutive
pieces, never dropped, so a task printing without a newline costs bounded memory.
The unfinished line is kept as a list of parts, joined once, so that printing one
character at a time (`print(".", end="")`) stays linear.

Other threads (run_in_executor, a kind's own threads) may print at the same time as
each other: each thread's text is kept apart until it ends a line, and only whole
lines are passed to the loop thread, so lines from two threads never mix. What a
thread leaves unterminated is delivered as a line of its own when its executor job
ends (see executor.py), when it writes for another task, or when the thread ends.
"""

from __future__ import annotations

import asyncio
import io
import sys
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from .context import CURRENT

if TYPE_CHECKING:
    from .registry import TaskRecord

MAX_LINE = 1 << 16  # characters of one line of task output (bytes, for a shell task's)

TaskLine = Callable[["TaskRecord", str], None]
OtherText = Callable[[str], None]
_get_ident = threading.get_ident


class _ThreadLine:
    """What one thread wrote for one task (or for none) since its last newline."""

    __slots__ = ("record", "parts", "size", "__weakref__")

    def __init__(self, record: TaskRecord | None) -> None:
        self.record = record
        self.parts: list[str] = []
        self.size = 0


class TaskStream(io.TextIOBase):
    """A write-only text stream that knows which task is writing."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, task_line: TaskLine, other: OtherText
    ) -> None:
        super().__init__()
        self._loop = loop
        self._thread = threading.get_ident()
        self._task_line = task_line
        self._other = other
        self._local = threading.local()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, s: str) -> int:
        record = CURRENT.get()
        if _get_ident() != self._thread:
            self._write_from_thread(s, record)
        elif record is None:
            self._other(s)
        elif s == "\n":
            # print()'s own newline, the usual end of a line: handled here, without
            # a call, since a task printing in a loop comes through this path twice
            # a line (tests/bench, scenario responsive).
            pending = record.pending
            line = "".join(pending)
            pending.clear()
            record.pending_size = 0
            if len(line) <= MAX_LINE:
                self._task_line(record, line)
            else:
                self._line(record, line)
        elif "\n" not in s:  # the text of a print(), before its newline
            record.pending.append(s)
            record.pending_size += len(s)
            if record.pending_size > MAX_LINE:
                self._cut_pending(record)
        else:
            self._route(s, record)
        return len(s)

    # -- on the loop thread --------------------------------------------------------

    def _route(self, s: str, record: TaskRecord) -> None:
        """Text with a newline in it (and more): whole lines out, the rest kept."""
        pending = record.pending
        first, *lines = s.split("\n")
        if pending:
            pending.append(first)
            first = "".join(pending)
            pending.clear()
        last = lines.pop()
        if last:
            pending.append(last)
        record.pending_size = len(last)
        self._line(record, first)
        for line in lines:
            self._line(record, line)
        if record.pending_size > MAX_LINE:
            self._cut_pending(record)

    def _line(self, record: TaskRecord, line: str) -> None:
        """One line of output, in pieces of at most MAX_LINE characters."""
        if len(line) <= MAX_LINE:
            self._task_line(record, line)
            return
        for start in range(0, len(line), MAX_LINE):
            self._task_line(record, line[start : start + MAX_LINE])

    def _cut_pending(self, record: TaskRecord) -> None:
        """Deliver the full MAX_LINE pieces of an unfinished line; keep the rest."""
        text = "".join(record.pending)
        full = len(text) - len(text) % MAX_LINE
        for start in range(0, full, MAX_LINE):
            self._task_line(record, text[start : start + MAX_LINE])
        rest = text[full:]
        record.pending[:] = [rest] if rest else []
        record.pending_size = len(rest)

    def _lines_from_thread(self, lines: list[str], record: TaskRecord | None) -> None:
        """Whole lines another thread wrote: never joined to anyone's unfinished line."""
        if record is None:
            self._other("".join(line + "\n" for line in lines))
            return
        for line in lines:
            self._line(record, line)

    def flush_record(self, record: TaskRecord) -> None:
        """Emit a task's last, unterminated line (when it ends)."""
        if record.pending:
            line = "".join(record.pending)
            record.pending.clear()
            record.pending_size = 0
            self._line(record, line)

    # -- on any other thread -------------------------------------------------------

    def _write_from_thread(self, s: str, record: TaskRecord | None) -> None:
        line: _ThreadLine | None = getattr(self._local, "line", None)
        if line is None or line.record is not record:
            if line is not None:
                self._send_rest(line.parts, line.record)  # it now writes for another task
            line = self._local.line = _ThreadLine(record)
            # Delivers what is left when the thread ends (its locals are dropped then).
            finalizer = weakref.finalize(line, self._send_rest, line.parts, record)
            finalizer.atexit = False
        if "\n" not in s:
            line.parts.append(s)
            line.size += len(s)
            if line.size > MAX_LINE:
                text = "".join(line.parts)
                full = len(text) - len(text) % MAX_LINE
                line.parts[:] = [text[full:]] if full < len(text) else []
                line.size = len(text) - full
                self._send(
                    [text[i : i + MAX_LINE] for i in range(0, full, MAX_LINE)], record
                )
            return
        head, _, rest = s.rpartition("\n")
        line.parts.append(head)
        text = "".join(line.parts)
        line.parts[:] = [rest] if rest else []
        line.size = len(rest)
        self._send(text.split("\n"), record)

    def _send(self, lines: list[str], record: TaskRecord | None) -> None:
        try:
            self._loop.call_soon_threadsafe(self._lines_from_thread, lines, record)
        except RuntimeError:  # the loop is closed: nobody is left to show it
            pass

    def _send_rest(self, parts: list[str], record: TaskRecord | None) -> None:
        if parts:
            text = "".join(parts)
            parts.clear()
            if record is None:
                try:
                    self._loop.call_soon_threadsafe(self._other, text)
                except RuntimeError:
                    pass
            else:
                self._send([text], record)

    def end_thread_line(self) -> None:
        """Deliver what this thread left unterminated, as a line of its own."""
        line: _ThreadLine | None = getattr(self._local, "line", None)
        if line is not None:
            self._send_rest(line.parts, line.record)
            line.size = 0


def end_thread_lines() -> None:
    """Deliver the unterminated text the calling thread wrote to a TaskStream (the
    executor calls this when a job ends, so a job's last words are not held back)."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, TaskStream):
            stream.end_thread_line()
