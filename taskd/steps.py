"""Each task's steps (the stretches it ran on the loop), kept for `timeline`.

Why an instrument: the Stepped wrapper already times every step for the stall watch,
so recording one is a few stores. Bounded in all, not per task: the last CAPACITY
steps of all tasks together are kept in one ring (three arrays written in turn: 24
bytes a step, 3 MB when full), however many tasks there are, and the ring only grows
as steps come. A step is kept with its task's serial number, not its record, so a
forgotten task's record (and its traceback) is never held here. A per-task buffer
cost each task an array and a dict entry (about 200 bytes a task at 100,000 idle
tasks) and, kept to 1,000 steps, up to 16 KB each: 100,000 tasks stepping once a
second would have held 1.6 GB after 17 minutes. Each task counts all its steps
(TaskRecord.steps_run); `steps` gives at most its last LIMIT from the ring. A task's
steps outlive it in the ring (for `timeline` of finished tasks) until newer steps
take their place.

Times: a step's start is in seconds since the daemon started. On a real loop that is
its perf_counter() start minus the daemon's; on the virtual clock it is the loop's
time (virtual), while the duration is always perf_counter's (real: a step that held
the loop for 0.8 s took 0.8 s of the computer's time, whatever the clock says).

With a log attached (`log FILE --steps`), every step is also written to it as a
`step` event with fields start_s and dur_s, which taskd.trace and taskd.timeline read.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from itertools import chain
from typing import TYPE_CHECKING

from . import clocks
from .events import Event, Sink
from .instruments import Instrument

if TYPE_CHECKING:
    from .registry import TaskRecord

LIMIT = 1000  # steps of one task that `steps` gives (its last ones)
CAPACITY = 1 << 17  # steps kept of all tasks together (the last ones)
STEP = "step"

Steps = list[tuple[float, float]]


class StepRecorder(Instrument):
    """The last steps of all tasks in one ring; see the module docstring."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._starts = array("d")
        self._durations = array("d")
        self._owners = array("q")  # each step's task, by TaskRecord.serial
        self._next = 0  # where the next step goes, once the ring is full
        self.sink: Sink | None = None  # the log that wants step events
        self._origin = clocks.perf_origin
        self._virtual = False

    def start(self) -> None:
        """Count from the daemon's start, on its clock (after clocks.install)."""
        self._origin = clocks.perf_origin
        self._virtual = clocks.virtual

    def after_step(self, record: TaskRecord, start: float, duration: float) -> None:
        begin = clocks.since_start() if self._virtual else start - self._origin
        record.steps_run += 1
        owners = self._owners
        if len(owners) < self.capacity:
            owners.append(record.serial)
            self._starts.append(begin)
            self._durations.append(duration)
        else:
            at = self._next
            owners[at] = record.serial
            self._starts[at] = begin
            self._durations[at] = duration
            self._next = at + 1 if at + 1 < self.capacity else 0
        if self.sink is not None:
            event = Event(record.name, STEP,
                          {"start_s": round(begin, 6), "dur_s": round(duration, 6)})
            self.sink(event)

    def steps_of(self, records: Iterable[TaskRecord]) -> dict[TaskRecord, Steps]:
        """The kept steps of each of RECORDS, oldest first, at most LIMIT each: (start
        since the daemon's start, seconds). One pass over the ring for them all."""
        chosen = list(records)
        by_serial: dict[int, Steps] = {record.serial: [] for record in chosen}
        owners, starts, durations = self._owners, self._starts, self._durations
        at = self._next  # the oldest step, once the ring has wrapped round
        for i in chain(range(at, len(owners)), range(at)):
            steps = by_serial.get(owners[i])
            if steps is not None:
                steps.append((starts[i], durations[i]))
        return {record: by_serial[record.serial][-LIMIT:] for record in chosen}

    def steps(self, record: TaskRecord) -> Steps:
        """RECORD's kept steps, oldest first: (start since the daemon's start, seconds)."""
        return self.steps_of([record])[record]

    def count(self, record: TaskRecord) -> int:
        """How many steps RECORD's task ran, kept or not."""
        return record.steps_run
