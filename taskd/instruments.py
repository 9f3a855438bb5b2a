"""Instruments: what wants to know when tasks start, step and end.

The shape of trio's Instrument: an object with any of these methods, added to the
engine's list. The stall watch, the capture of printed output, the reaper of shell
process groups, and later a narrator or a tracer each subscribe; none of them needs
a slot of its own, and any number can watch at once.

Steps (the code of a task between two awaits) are timed only while some instrument
wants them: each taskd task's coroutine then runs inside a `Stepped` wrapper, which
calls every `before_step` and `after_step` around each send()/throw() (an instrument
with a `step_threshold` hears only of the steps longer than that), and keeps the step
running now in `STEP` for threads to see. The wrapper keeps the kind's own coroutine
reachable (`Stepped.coro`), so the task's real stack can always be walked
(taskd.stacks).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Generator
from time import perf_counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .registry import TaskRecord

HOOKS = (
    "task_spawned", "task_admitted", "before_step", "after_step", "task_exited",
    "task_abandoned",
)


class Instrument:
    """A base to inherit from; override only the hooks you need (the others are not
    called: the engine calls a hook only on the instruments that define it)."""

    # after_step is called only for steps longer than this many seconds (0: every
    # step). The stall watch wants the long ones only: then a step costs it nothing.
    step_threshold = 0.0

    def task_spawned(self, record: TaskRecord) -> None:
        """A task was created (it has not run yet; queued in a full group, it has no
        asyncio task yet either)."""

    def task_admitted(self, record: TaskRecord) -> None:
        """A task queued in a full group got its slot: its asyncio task was created."""

    def before_step(self, record: TaskRecord, start: float) -> None:
        """RECORD's task is about to run a step; START is time.perf_counter()."""

    def after_step(self, record: TaskRecord, start: float, duration: float) -> None:
        """RECORD's task ran a step of DURATION seconds (perf_counter), from START."""

    def task_exited(self, record: TaskRecord) -> None:
        """The task ended (its state says how); called before the ending event."""

    def task_abandoned(self, record: TaskRecord) -> None:
        """The task did not stop within the grace period at the end."""


class RunningStep:
    """The step running now, kept by the step wrapper: read by threads that watch for
    a frozen loop (`now`, one tuple replaced whole), and by instruments that judge a
    step's length (`excused`: seconds of it that were not the task's doing, such as
    garbage collection or waiting on a slow reader; reset as each step starts)."""

    __slots__ = ("now", "excused")

    def __init__(self) -> None:
        self.now: tuple[float, TaskRecord] | None = None
        self.excused = 0.0


STEP = RunningStep()


class StepHooks:
    """The step hooks of the instruments at one moment: a step wrapper keeps the set
    it was made with (an instrument added later times later tasks)."""

    __slots__ = ("before", "after", "long", "threshold")

    def __init__(self, instruments: list[Instrument]) -> None:
        self.before = tuple(_overridden(instruments, "before_step"))
        timed = [i for i in instruments if _defines(i, "after_step")]
        self.after = tuple(i.after_step for i in timed if i.step_threshold <= 0)
        self.long = tuple((i.step_threshold, i.after_step) for i in timed if i.step_threshold > 0)
        # Steps longer than this go to long_step (infinity: none does).
        self.threshold = min((t for t, _ in self.long), default=float("inf"))

    def long_step(self, record: TaskRecord, start: float, duration: float) -> None:
        for threshold, after in self.long:
            if duration > threshold:
                after(record, start, duration)

    @property
    def wanted(self) -> bool:
        return bool(self.before or self.after or self.long)


def _defines(instrument: Instrument, name: str) -> bool:
    return getattr(type(instrument), name, None) is not getattr(Instrument, name)


def _overridden(instruments: list[Instrument], name: str) -> list[Any]:
    return [getattr(i, name) for i in instruments if _defines(i, name)]


class Instruments:
    """The engine's list of instruments, with each hook's callers gathered once."""

    def __init__(self) -> None:
        self._all: list[Instrument] = []
        self.spawned: list[Callable[[TaskRecord], None]] = []
        self.admitted: list[Callable[[TaskRecord], None]] = []
        self.exited: list[Callable[[TaskRecord], None]] = []
        self.abandoned: list[Callable[[TaskRecord], None]] = []
        self.steps = StepHooks([])
        self.steps_wanted = False  # whether tasks spawned now get a step wrapper

    def add(self, instrument: Instrument) -> None:
        self._all.append(instrument)
        self._gather()

    def remove(self, instrument: Instrument) -> None:
        if instrument in self._all:
            self._all.remove(instrument)
            self._gather()

    def __iter__(self) -> Any:
        return iter(list(self._all))

    def _gather(self) -> None:
        self.spawned = _overridden(self._all, "task_spawned")
        self.admitted = _overridden(self._all, "task_admitted")
        self.exited = _overridden(self._all, "task_exited")
        self.abandoned = _overridden(self._all, "task_abandoned")
        self.steps = StepHooks(self._all)
        self.steps_wanted = self.steps.wanted


class Stepped:
    """Drives a kind's coroutine step by step, calling the step hooks around each.

    Hot: every step of every task runs through send() (which is also __next__), so
    it is written out in full, with no call it can do without."""

    __slots__ = ("coro", "_record", "_hooks")

    def __init__(
        self, coro: Coroutine[Any, Any, object], record: TaskRecord, instruments: Instruments
    ) -> None:
        self.coro = coro
        self._record = record
        self._hooks = instruments.steps

    def __await__(self) -> Generator[Any, Any, object]:
        return self  # the iterator protocol, by hand: send, throw and close

    def __iter__(self) -> Stepped:
        return self

    def send(self, value: Any = None) -> Any:
        record = self._record
        hooks = self._hooks
        step = STEP
        start = perf_counter()
        step.now = (start, record)
        step.excused = 0.0
        if hooks.before:
            for hook in hooks.before:
                hook(record, start)
        try:
            return self.coro.send(value)
        finally:
            duration = perf_counter() - start
            step.now = None
            for after in hooks.after:
                after(record, start, duration)
            if duration > hooks.threshold:
                hooks.long_step(record, start, duration)

    __next__ = send  # a task's steps mostly come this way: one call, not two

    def throw(self, *exc: Any) -> Any:
        record = self._record
        hooks = self._hooks
        step = STEP
        start = perf_counter()
        step.now = (start, record)
        step.excused = 0.0
        if hooks.before:
            for hook in hooks.before:
                hook(record, start)
        try:
            return self.coro.throw(*exc)
        finally:
            duration = perf_counter() - start
            step.now = None
            for after in hooks.after:
                after(record, start, duration)
            if duration > hooks.threshold:
                hooks.long_step(record, start, duration)

    def close(self) -> None:
        self.coro.close()
