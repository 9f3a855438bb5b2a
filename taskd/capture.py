"""Route what tasks print to their own output.

While the daemon runs, sys.stdout and sys.stderr are replaced by a TaskStream. Text
written from inside a taskd task (its context has CURRENT set) is cut into lines and
handed to the daemon as that task's output, so kinds, built-in or a user's, just
call print(). Any other text goes to the front-end unchanged. Writes from other
threads are passed to the loop thread first.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from .context import CURRENT

if TYPE_CHECKING:
    from .registry import TaskRecord

TaskLine = Callable[["TaskRecord", str], None]
OtherText = Callable[[str], None]


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

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, s: str) -> int:
        if threading.get_ident() != self._thread:
            try:
                self._loop.call_soon_threadsafe(self._route, s, CURRENT.get())
            except RuntimeError:  # the loop is closed: nobody is left to show it
                pass
        else:
            self._route(s, CURRENT.get())
        return len(s)

    def _route(self, s: str, record: TaskRecord | None) -> None:
        if record is None:
            self._other(s)
            return
        # print() writes the text, then "\n": keep this path short, a task printing
        # in a loop goes through it twice a line (tests/bench, scenario responsive).
        if "\n" not in s:
            record.pending += s
            return
        text = record.pending + s if record.pending else s
        *lines, record.pending = text.split("\n")
        for line in lines:
            self._task_line(record, line)

    def flush_record(self, record: TaskRecord) -> None:
        """Emit a task's last, unterminated line (when it ends)."""
        if record.pending:
            line, record.pending = record.pending, ""
            self._task_line(record, line)
