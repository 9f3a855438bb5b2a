"""The hooks of one supervised task (supervise.Hooks): what supervise() tells the
task's record, and asks of the engine. A module apart, to keep engine.py small."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from . import events as ev
from .formatting import one_line
from .registry import FINAL, State, TaskRecord
from .supervise import TaskOptions

if TYPE_CHECKING:
    from .engine import Engine


class TaskHooks:
    """What supervise() tells one task's record (its state, its restarts) and asks of
    the engine (when other tasks end)."""

    __slots__ = ("engine", "record", "options", "last", "resume_at", "starting")

    def __init__(self, engine: Engine, record: TaskRecord, options: TaskOptions) -> None:
        self.engine = engine
        self.record = record
        self.options = options
        self.last = ""  # the last state supervise() set: events only for a change
        self.resume_at: float | None = None  # loop time a restart's backoff ends
        self.starting = False  # counted in engine.starting until its first step

    def set_state(self, state: str) -> None:
        if self.starting:
            self.starting = False
            self.engine.starting[self.options.group or ""] -= 1
        if state == self.last:
            return
        self.last = state
        record = self.record
        if record.state is State.CANCELLING or record.state in FINAL:
            return  # a cancel is on its way: its state stays what `cancel` made it
        record.state = _STATES[state]
        if state == "running":
            self.resume_at = None
            return
        engine = self.engine
        if state == "queued" and self.options.group is not None:
            # supervise() says so just before it joins the queue, at its end.
            queue = engine.groups.group(self.options.group).queue
            engine.bus.emit(record.name, ev.QUEUED, {
                "group": self.options.group, "place": len(queue) + 1,
            })
        elif state == "waiting":
            fields: dict[str, Any] = (
                {"restart_in_s": round(self.resume_at - asyncio.get_running_loop().time(), 3)}
                if self.resume_at is not None
                else {"after": list(self.options.after)}
            )
            engine.bus.emit(record.name, ev.WAITING, fields)
        else:
            self.resume_at = None

    def wait_ended(self, name: str) -> asyncio.Future[str]:
        return self.engine.ended(name)

    def restarted(self, n: int, reason: str, delay: float) -> None:
        record = self.record
        record.restarts += 1
        self.resume_at = asyncio.get_running_loop().time() + delay
        self.engine.bus.emit(record.name, ev.RESTARTED, {
            "restart": record.restarts, "reason": one_line(reason), "delay_s": delay,
        })

    def gave_up(self, n: int) -> None:
        self.engine.report(
            f"{self.record.name}: not restarted again after {n} restart{'s' if n != 1 else ''}"
            f" (--max-restarts {self.options.max_restarts}); it ends as its last run did"
        )

    def detail(self) -> str:
        """What `show` says of the task while it is waiting (Engine.detail: queued)."""
        record = self.record
        if record.state is State.WAITING:
            if self.resume_at is not None:
                left = max(0.0, self.resume_at - asyncio.get_running_loop().time())
                return f"restart {record.restarts} in {left:.1f}s"
            registry = self.engine.registry
            names = [n for n in self.options.after if n in registry.live]
            return "waiting for " + ", ".join(names or self.options.after)
        return ""


_STATES = {state.value: state for state in State}  # State(text) is a slow call
