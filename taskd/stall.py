"""Stall detection: say which task blocked the event loop, and for how long.

A task that computes without awaiting, or calls time.sleep, freezes every other task
and the shell itself. Every step of a task (the code between two awaits) runs
inside one call of its coroutine's send() or throw(), so timing those calls says
exactly which task blocked the loop and for how long: each taskd task's coroutine
is wrapped in a `_Timed`, which reads the clock before and after each step and
reports a step longer than `stall_threshold` as soon as it ends: one line on
stderr and a `stall` event. Time spent in garbage collection meanwhile (gc.callbacks
measure it) is not counted: it is the interpreter's pause, not the task's.

Why not a watchdog thread that samples asyncio.current_task(loop) while the loop's
heartbeat is late (tried first): it is safe (that only reads a dict the loop writes),
but it cannot tell when the running step began, so a burst of ten thousand short
steps in one loop iteration (cancelling 100,000 tasks) was blamed on whichever task
happened to be running when the heartbeat was found late. Timing the steps has no
false positives, costs two clock reads and a Python call per step (measured in
tests/test_reliability_faults.py), and needs no thread. What it cannot see: code
outside taskd tasks (a task's own create_task children, taskd itself).

A step that has not ended yet (time.sleep(60), or a `while True` with no await that
never ends) cannot be reported by the loop, which is frozen. So each step also
leaves its start and task in `_step`, and a watchdog thread, waking every half
threshold, writes one line straight to fd 2 when a step has run past the threshold:
the person at a frozen prompt learns at once which task froze it.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Awaitable, Coroutine, Generator
from typing import TYPE_CHECKING, Any

from . import events as ev
from .context import CURRENT

if TYPE_CHECKING:
    from .engine import Engine
    from .registry import TaskRecord


class StallWatch:
    """Wraps each task's coroutine so that its steps are timed."""

    def __init__(self, engine: Engine, threshold: float) -> None:
        self.engine = engine
        self.threshold = threshold
        self.stalls = 0
        # Time spent in garbage collection, which is not the running task's doing:
        # with 100,000 tasks alive one full collection takes about 0.5 s here, and
        # would be blamed on whichever task happened to allocate.
        self.gc_seconds = 0.0
        self._gc_started = 0.0
        # The step running now: (its start, its task's record), or None between steps.
        self._step: tuple[float, TaskRecord | None] | None = None
        self._stopped = threading.Event()
        self._watchdog: threading.Thread | None = None

    def start(self) -> None:
        """Time the steps of tasks spawned from now on (a threshold of 0: do not)."""
        if self.threshold > 0:
            self.engine.step_timer = self.timed
            gc.callbacks.append(self._on_gc)
            self._watchdog = threading.Thread(
                target=self._watch_steps, name="taskd-stall-watchdog", daemon=True
            )
            self._watchdog.start()

    def stop(self) -> None:
        if self.engine.step_timer == self.timed:
            self.engine.step_timer = None
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        self._stopped.set()
        if self._watchdog is not None:
            self._watchdog.join()

    def _watch_steps(self) -> None:
        """From a thread: say so while a step is still blocking the loop."""
        announced: tuple[float, TaskRecord | None] | None = None
        while not self._stopped.wait(self.threshold / 2):
            step = self._step  # one read of a tuple the loop replaces whole
            if step is None or step is announced:
                continue
            started, record = step
            if time.perf_counter() - started > self.threshold:
                announced = step
                name = record.name if record is not None else "a task"
                end = "\r\n" if os.isatty(2) else "\n"
                line = (
                    f"taskd: task {name} is blocking the event loop "
                    f"(over {self.threshold:g}s so far){end}"
                )
                try:
                    os.write(2, line.encode("utf-8", "backslashreplace"))
                except OSError:  # stderr closed, full or non-blocking and full: say nothing
                    pass

    def timed(self, awaitable: Awaitable[object]) -> Awaitable[object]:
        """A coroutine, its steps timed; called inside the task, whose record is CURRENT."""
        if not isinstance(awaitable, Coroutine):
            return awaitable  # a kind returning some other awaitable: no steps to time
        return _Timed(awaitable, self, CURRENT.get())

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_seconds += time.perf_counter() - self._gc_started

    def check(self, record: TaskRecord | None, blocked: float) -> None:
        """A step of RECORD's task held the loop for BLOCKED seconds (garbage
        collection excluded); report it if that is over the threshold."""
        if blocked <= self.threshold:
            return
        self.stalls += 1
        name = record.name if record is not None else "a task"
        self.engine.report(
            f"task {name} blocked the event loop for {blocked:.2f}s "
            f"(stall_threshold {self.threshold:g}s): it must await, or use a thread"
        )
        self.engine.bus.emit(
            record.name if record is not None else ev.DAEMON,
            ev.STALL,
            {"blocked_s": round(blocked, 3), "threshold_s": self.threshold},
        )


class _Timed:
    """An awaitable that drives a coroutine step by step, timing each step."""

    __slots__ = ("_coro", "_watch", "_record")

    def __init__(
        self, coro: Coroutine[Any, Any, object], watch: StallWatch, record: TaskRecord | None
    ) -> None:
        self._coro = coro
        self._watch = watch
        self._record = record

    def __await__(self) -> Generator[Any, Any, object]:
        return self  # the iterator protocol, by hand: send, throw and close

    def __iter__(self) -> _Timed:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def send(self, value: Any) -> Any:
        watch = self._watch
        start, collected = time.perf_counter(), watch.gc_seconds
        watch._step = (start, self._record)
        try:
            return self._coro.send(value)
        finally:
            watch._step = None
            if (blocked := time.perf_counter() - start) > watch.threshold:
                watch.check(self._record, blocked - (watch.gc_seconds - collected))

    def throw(self, *exc: Any) -> Any:
        watch = self._watch
        start, collected = time.perf_counter(), watch.gc_seconds
        watch._step = (start, self._record)
        try:
            return self._coro.throw(*exc)
        finally:
            watch._step = None
            if (blocked := time.perf_counter() - start) > watch.threshold:
                watch.check(self._record, blocked - (watch.gc_seconds - collected))

    def close(self) -> None:
        self._coro.close()
