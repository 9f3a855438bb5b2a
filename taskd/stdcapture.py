"""sys.stdout and sys.stderr while the daemon runs: print() inside a task becomes
that task's output (capture.TaskStream routes each line by the CURRENT task).

A task may replace sys.stdout or sys.stderr (contextlib.redirect_stdout left
behind, a library that wraps the streams): every later task's output would go with
it. So the capture is put back, and said once, when such a task ends or, for one
that keeps running, at the next check (every GUARD_EVERY seconds).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

from .capture import TaskStream
from .instruments import Instrument
from .registry import TaskRecord

GUARD_EVERY = 0.5  # seconds between checks that sys.stdout is still the capture


class StdCapture(Instrument):
    """The daemon's capture of the standard streams, and its guard. An instrument:
    when a task ends, its last unfinished line comes out before its end (one
    instrument, not two: its hook runs for every task that ends)."""

    def __init__(
        self,
        task_line: Callable[[TaskRecord, str], None],
        report: Callable[[str], None],
    ) -> None:
        self._task_line = task_line
        self._report = report
        self.saved: tuple[Any, Any] | None = None  # the streams before start()
        self._capture: tuple[TaskStream, TaskStream] | None = None
        self._replaced = False  # said once
        self._timer: asyncio.TimerHandle | None = None

    def start(self, write: Callable[[str], None], error: Callable[[str], None]) -> None:
        """Capture: output of no task goes to WRITE (stdout's) and ERROR (stderr's)."""
        loop = asyncio.get_running_loop()
        out = TaskStream(loop, self._task_line, write)
        err = TaskStream(loop, self._task_line, error)
        self.saved = (sys.stdout, sys.stderr)
        self._capture = (out, err)
        sys.stdout, sys.stderr = out, err
        self._timer = loop.call_later(GUARD_EVERY, self._guard_often)

    def stop_guard(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def restore(self) -> None:
        """The streams as they were before start()."""
        self.stop_guard()
        if self.saved is not None:
            sys.stdout, sys.stderr = self.saved
            self.saved = None

    def task_exited(self, record: TaskRecord) -> None:
        if self._capture is None:
            return
        out, err = self._capture
        out.flush_record(record)
        if sys.stdout is not out or sys.stderr is not err:
            self.guard()

    def guard(self) -> None:
        """Put the capture back if a task replaced sys.stdout or sys.stderr."""
        if self._capture is None or self.saved is None:
            return
        out, err = self._capture
        if sys.stdout is out and sys.stderr is err:
            return
        which = " and ".join(
            n for n, s, c in (("sys.stdout", sys.stdout, out), ("sys.stderr", sys.stderr, err))
            if s is not c
        )
        sys.stdout, sys.stderr = out, err
        if not self._replaced:
            self._replaced = True
            self._report(
                f"error: a task replaced {which}; taskd's capture is back, so later "
                "output is not lost"
            )

    def _guard_often(self) -> None:
        self.guard()
        self._timer = asyncio.get_running_loop().call_later(GUARD_EVERY, self._guard_often)
