"""Instruments: what wants to know when tasks start, step and end.

The shape of trio's Instrument: an object with any of these methods, added to the
engine's list. The stall watch, the capture of printed output, the reaper of shell
process groups, and later a narrator or a tracer each subscribe; none of them needs
a slot of its own, and any number can watch at once.

Steps (the code of a task between two awaits) are timed only while some instrument
wants them: each taskd task's coroutine then runs inside a `Stepped` wrapper, which
calls every `before_step` and `after_step` around each send()/throw(). The wrapper
keeps the kind's own coroutine reachable (`Stepped.coro`), so the task's real stack
can always be walked (taskd.stacks).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .registry import TaskRecord

HOOKS = ("task_spawned", "before_step", "after_step", "task_exited", "task_abandoned")


class Instrument:
    """A base to inherit from; override only the hooks you need (the others are not
    called: the engine calls a hook only on the instruments that define it)."""

    def task_spawned(self, record: TaskRecord) -> None:
        """A task was created (it has not run yet)."""

    def before_step(self, record: TaskRecord, start: float) -> None:
        """RECORD's task is about to run a step; START is time.perf_counter()."""

    def after_step(self, record: TaskRecord, start: float, duration: float) -> None:
        """RECORD's task ran a step of DURATION seconds (perf_counter), from START."""

    def task_exited(self, record: TaskRecord) -> None:
        """The task ended (its state says how); called before the ending event."""

    def task_abandoned(self, record: TaskRecord) -> None:
        """The task did not stop within the grace period at the end."""


class Instruments:
    """The engine's list of instruments, with each hook's callers gathered once."""

    def __init__(self) -> None:
        self._all: list[Instrument] = []
        self.spawned: list[Callable[[TaskRecord], None]] = []
        self.before: list[Callable[[TaskRecord, float], None]] = []
        self.after: list[Callable[[TaskRecord, float, float], None]] = []
        self.exited: list[Callable[[TaskRecord], None]] = []
        self.abandoned: list[Callable[[TaskRecord], None]] = []

    def add(self, instrument: Instrument) -> None:
        self._all.append(instrument)
        self._gather()

    def remove(self, instrument: Instrument) -> None:
        if instrument in self._all:
            self._all.remove(instrument)
            self._gather()

    def __iter__(self) -> Any:
        return iter(list(self._all))

    @property
    def steps_wanted(self) -> bool:
        return bool(self.before or self.after)

    def _gather(self) -> None:
        def overridden(name: str) -> list[Any]:
            return [
                getattr(i, name)
                for i in self._all
                if getattr(type(i), name, None) is not getattr(Instrument, name)
            ]

        self.spawned = overridden("task_spawned")
        self.before = overridden("before_step")
        self.after = overridden("after_step")
        self.exited = overridden("task_exited")
        self.abandoned = overridden("task_abandoned")


class Stepped:
    """Drives a kind's coroutine step by step, calling the step hooks around each."""

    __slots__ = ("coro", "_record", "_before", "_after")

    def __init__(
        self, coro: Coroutine[Any, Any, object], record: TaskRecord, instruments: Instruments
    ) -> None:
        self.coro = coro
        self._record = record
        # The lists as they are now: an instrument added later times later tasks.
        self._before = instruments.before
        self._after = instruments.after

    def __await__(self) -> Generator[Any, Any, object]:
        return self  # the iterator protocol, by hand: send, throw and close

    def __iter__(self) -> Stepped:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def send(self, value: Any) -> Any:
        record = self._record
        start = time.perf_counter()
        for hook in self._before:
            hook(record, start)
        try:
            return self.coro.send(value)
        finally:
            duration = time.perf_counter() - start
            for after in self._after:
                after(record, start, duration)

    def throw(self, *exc: Any) -> Any:
        record = self._record
        start = time.perf_counter()
        for hook in self._before:
            hook(record, start)
        try:
            return self.coro.throw(*exc)
        finally:
            duration = time.perf_counter() - start
            for after in self._after:
                after(record, start, duration)

    def close(self) -> None:
        self.coro.close()
