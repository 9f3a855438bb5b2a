"""Stall detection: say which task blocked the event loop, and for how long.

A task that computes without awaiting, or calls time.sleep, freezes every other task
and the shell itself. Every step of a task (the code between two awaits) runs
inside one call of its coroutine's send() or throw(), so timing those calls says
exactly which task blocked the loop and for how long: the watch is an instrument
(taskd.instruments) whose step hooks run before and after each step, and it
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
never ends) cannot be reported by the loop, which is frozen. So the step wrapper
leaves each step's start and task in `instruments.STEP`, and a watchdog thread,
waking every half threshold, writes one line straight to fd 2 when a step has run
past the threshold: the person at a frozen prompt learns at once which task froze it.

The watch's own hook is called only for steps over the threshold (its
`step_threshold`): an ordinary step costs it nothing.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from typing import TYPE_CHECKING

from . import events as ev
from .instruments import STEP, Instrument

if TYPE_CHECKING:
    from .engine import Engine
    from .registry import TaskRecord


class _Excused:
    """Time the loop spent waiting on a reader (back-pressure from a slow stdout):
    not the running task's doing, so not blamed on it."""

    seconds = 0.0
    waiting = False  # the loop is waiting for a reader right now


EXCUSED = _Excused()


def excuse(seconds: float) -> None:
    EXCUSED.seconds += seconds
    STEP.excused += seconds  # not blamed on the step running now


class StallWatch(Instrument):
    """Times each task's steps and names the task that held the loop."""

    def __init__(self, engine: Engine, threshold: float) -> None:
        self.engine = engine
        self.threshold = threshold
        self.step_threshold = threshold  # after_step hears of longer steps only
        self.stalls = 0
        # Time spent in garbage collection, which is not the running task's doing:
        # with 100,000 tasks alive one full collection takes about 0.5 s here, and
        # would be blamed on whichever task happened to allocate.
        self.gc_seconds = 0.0
        self._gc_started = 0.0
        self._stopped = threading.Event()
        self._watchdog: threading.Thread | None = None

    def start(self) -> None:
        """Time the steps of tasks spawned from now on (a threshold of 0: do not)."""
        if self.threshold > 0:
            self.engine.instruments.add(self)
            gc.callbacks.append(self._on_gc)
            self._watchdog = threading.Thread(
                target=self._watch_steps, name="taskd-stall-watchdog", daemon=True
            )
            self._watchdog.start()

    def stop(self) -> None:
        self.engine.instruments.remove(self)
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        self._stopped.set()
        if self._watchdog is not None:
            self._watchdog.join()

    def _watch_steps(self) -> None:
        """From a thread: say so while a step is still blocking the loop."""
        announced: tuple[float, TaskRecord | None] | None = None
        while not self._stopped.wait(self.threshold / 2):
            step = STEP.now  # one read of a tuple the loop replaces whole
            if step is None or step is announced or EXCUSED.waiting:
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

    # -- the step hook: steps over the threshold only ---------------------------------

    def after_step(self, record: TaskRecord, start: float, duration: float) -> None:
        self.check(record, duration - STEP.excused)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            collected = time.perf_counter() - self._gc_started
            self.gc_seconds += collected
            STEP.excused += collected  # the interpreter's pause, not the step's

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
