"""Each task's steps (the stretches it ran on the loop), kept for `timeline`.

Why an instrument: the Stepped wrapper already times every step for the stall watch,
so recording one is two appends. Bounded per task: an array of (start, duration)
doubles, 16 bytes a step, trimmed back to the last LIMIT steps whenever it reaches a
quarter more (so at most 20 KB a task), with a count of every step. Finished tasks
keep their steps for as long as `show --all` remembers them (the same HISTORY).

Times: a step's start is in seconds since the daemon started. On a real loop that is
its perf_counter() start minus the daemon's; on the virtual clock it is the loop's
time (virtual), while the duration is always perf_counter's (real: a step that held
the loop for 0.8 s took 0.8 s of the computer's time, whatever the clock says).

With a log attached (`log FILE --steps`), every step is also written to it as a
`step` event with fields start_s and dur_s, which taskd.trace and taskd.timeline read.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
from typing import TYPE_CHECKING

from . import clocks
from .events import Event, Sink
from .instruments import Instrument

if TYPE_CHECKING:
    from .registry import TaskRecord

LIMIT = 1000  # steps kept per task (at least; up to a quarter more before a trim)
_TRIM_AT = 2 * (LIMIT + LIMIT // 4)  # numbers in a task's array when it is trimmed
STEP = "step"


class StepRecorder(Instrument):
    """Steps by task; see the module docstring."""

    def __init__(self, history: int = 1000) -> None:
        self.history = history
        self.live: dict[TaskRecord, array[float]] = {}
        self.finished: OrderedDict[TaskRecord, array[float]] = OrderedDict()
        self.counts: dict[TaskRecord, int] = {}  # steps dropped by trims, per task
        self.sink: Sink | None = None  # the log that wants step events
        self._origin = clocks.perf_origin
        self._virtual = False

    def start(self) -> None:
        """Count from the daemon's start, on its clock (after clocks.install)."""
        self._origin = clocks.perf_origin
        self._virtual = clocks.virtual

    def after_step(self, record: TaskRecord, start: float, duration: float) -> None:
        steps = self.live.get(record)
        if steps is None:
            steps = self.live[record] = array("d")
        begin = clocks.since_start() if self._virtual else start - self._origin
        steps.extend((begin, duration))
        if len(steps) > _TRIM_AT:
            cut = len(steps) - 2 * LIMIT
            del steps[:cut]
            self.counts[record] = self.counts.get(record, 0) + cut // 2
        if self.sink is not None:
            event = Event(record.name, STEP,
                          {"start_s": round(begin, 6), "dur_s": round(duration, 6)})
            self.sink(event)

    def task_exited(self, record: TaskRecord) -> None:
        steps = self.live.pop(record, None)
        if steps is None or self.history <= 0:
            self.counts.pop(record, None)
            return
        self.finished[record] = steps
        while len(self.finished) > self.history:
            old, _ = self.finished.popitem(last=False)
            if self.counts:
                self.counts.pop(old, None)

    def steps(self, record: TaskRecord) -> list[tuple[float, float]]:
        """RECORD's recorded steps, oldest first: (start since the daemon's start, seconds)."""
        steps = self.live.get(record)
        if steps is None:
            steps = self.finished.get(record)
        if steps is None:
            return []
        return [(steps[i], steps[i + 1]) for i in range(0, len(steps), 2)]

    def count(self, record: TaskRecord) -> int:
        """How many steps RECORD's task ran, recorded or trimmed."""
        steps = self.live.get(record)
        if steps is None:
            steps = self.finished.get(record)
        return (len(steps) // 2 if steps is not None else 0) + self.counts.get(record, 0)
