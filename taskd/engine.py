"""The engine: named tasks spawned, watched, cancelled and awaited, with events.

It knows nothing of terminals, files or commands: commands call it and format what
it returns, sinks subscribe to its events, instruments watch its tasks. It never
prints; a message no command caused goes to the `report` callable it was given.
Everything here runs on the daemon's loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import difflib
import reprlib
import sys
import traceback
from collections.abc import Callable
from typing import Any

from . import clocks
from . import events as ev
from .config import Config
from .context import CANCEL_GRACE, CURRENT
from .errors import CommandError, shown
from .eventlog import EventLog, wait_closed
from .instruments import Instruments, Stepped
from .kinds import Kind, KindFunc, load_kinds
from .registry import Registry, State, TaskRecord

MAX_DETAIL = 500  # characters of an error or output line kept for `show`


def one_line(text: str, limit: int = MAX_DETAIL) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class TaskExit(Exception):
    """A task raised KeyboardInterrupt or SystemExit, which asyncio would let escape
    run_forever() and stop the whole daemon; the task fails with this instead."""


async def _guarded(
    func: KindFunc, values: list[Any], instruments: Instruments | None = None
) -> object:
    # The kind's coroutine is created here, inside the task, so a task cancelled
    # before it first runs leaves no never-awaited coroutine behind.
    try:
        coro = func(*values)
        if instruments is not None and asyncio.iscoroutine(coro):
            record = CURRENT.get()
            if record is not None:
                return await Stepped(coro, record, instruments)
        return await coro
    except (KeyboardInterrupt, SystemExit) as exc:
        raise TaskExit(f"the task raised {type(exc).__name__}({_safe(str, exc)})") from exc


# A returned value is shown bounded: a task may return a list of a million items.
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 200


def _safe(show: Callable[[object], str], value: object) -> str:
    """str() or repr() of a user's object, which may itself raise."""
    try:
        return show(value)
    except Exception as exc:
        return f"<{type(value).__name__}: its {show.__name__}() raised {type(exc).__name__}>"


def _names(records: list[TaskRecord], most: int = 5) -> str:
    names = ", ".join(r.name for r in records[:most])
    return names + (f" (+{len(records) - most} more)" if len(records) > most else "")


Report = Callable[[str], None]


def _to_stderr(message: str) -> None:
    print(message, file=sys.__stderr__, flush=True)


class Ending:
    """How one task met a cancel: cancelled, ended first (how), or refused."""

    __slots__ = ("record", "outcome")

    def __init__(self, record: TaskRecord, outcome: str) -> None:
        self.record = record
        self.outcome = outcome  # "cancelled", "ended", "refused"


class Engine:
    """Tasks by name, their lifecycle, and the event log switch."""

    def __init__(
        self, config: Config, kinds: dict[str, Kind] | None = None, report: Report | None = None
    ) -> None:
        self.config = config
        self.kinds = kinds if kinds is not None else load_kinds(config.kinds)
        self.registry = Registry(config.history)
        self.bus = ev.EventBus()
        self.instruments = Instruments()
        self.log: EventLog | None = None
        self._report = report or _to_stderr
        self._settled: set[asyncio.Task[object]] = set()  # accounted for by settle()

    def report(self, message: str) -> None:
        """A one-line message for people that no command line caused."""
        self._report(f"taskd: {one_line(message, 2000)}")

    # -- tasks -------------------------------------------------------------------

    def kind(self, name: str) -> Kind:
        found = self.kinds.get(name)
        if found is not None:
            return found
        close = difflib.get_close_matches(name, self.kinds, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else "; 'kinds' lists them"
        raise CommandError(f"unknown kind {shown(name)}{hint}")

    def spawn(self, kind_name: str, words: list[str], name: str | None = None) -> TaskRecord:
        """Start a task of KIND with WORDS; CommandError (and no change) if they are bad."""
        kind = self.kind(kind_name)
        values = kind.bind(words)
        if name is None:
            name = self.registry.new_name(kind.name)
        else:
            holder = self.registry.live.get(name)
            if holder is not None:
                self.settle([holder])  # it may have ended this very loop turn
            self.registry.claim(name)
        record = TaskRecord(name, kind.name, tuple(words))
        context = contextvars.copy_context()
        context.run(CURRENT.set, record)
        if CANCEL_GRACE.get() != self.config.cancel_grace:
            # Normally set once, in the context every command runs in (Daemon.serve):
            # a context change per task costs memory at 100,000 tasks.
            context.run(CANCEL_GRACE.set, self.config.cancel_grace)
        instruments = self.instruments if self.instruments.steps_wanted else None
        task = asyncio.get_running_loop().create_task(
            _guarded(kind.func, values, instruments), name=name, context=context
        )
        record.task = task
        self.registry.add(record)
        task.add_done_callback(self._on_task_done)
        for spawned in self.instruments.spawned:
            spawned(record)
        self.bus.emit(name, ev.STARTED, {"kind": kind.name, "args": list(words)})
        return record

    def task_line(self, record: TaskRecord, line: str) -> None:
        """One line a task printed."""
        record.last_line = line if len(line) <= MAX_DETAIL else line[:MAX_DETAIL] + "…"
        self.bus.emit(record.name, ev.OUTPUT, {"text": line})

    def settle(self, records: list[TaskRecord]) -> None:
        """Account now for tasks that have ended but whose done callback asyncio has
        not run yet (it runs a loop turn later): a command must not see them running."""
        for record in records:
            if record.task is not None and record.task.done():
                self._settled.add(record.task)  # its done callback is still to come
                self._on_done(record, record.task)

    def _on_task_done(self, task: asyncio.Task[object]) -> None:
        # The task's name finds its record: no per-task closure, which at 100,000
        # live tasks is memory worth saving.
        if self._settled and task in self._settled:
            self._settled.discard(task)
            return
        record = self.registry.live.get(task.get_name())
        if record is None or record.task is not task:
            # The task renamed itself (Task.set_name): find it the slow way, once.
            record = next((r for r in self.registry.live.values() if r.task is task), None)
        if record is not None:
            self._on_done(record, task)

    def _on_done(self, record: TaskRecord, task: asyncio.Task[object]) -> None:
        # A done callback, not a finally in the task: a task cancelled before it
        # first runs never executes its coroutine, yet must still be accounted for.
        if record.task is not task:
            return  # already accounted for by settle()
        record.ended = clocks.monotonic()
        record.task = None  # drop the task, and with it the coroutine and its frame
        fields: dict[str, Any] = {"runtime_s": round(record.runtime(), 6)}
        if task.cancelled():
            record.state = State.CANCELLED
            event = ev.CANCELLED
        elif (exc := task.exception()) is not None:
            record.state = State.FAILED
            record.error = one_line(f"{type(exc).__name__}: {_safe(str, exc)}".rstrip(": "))
            record.traceback = "".join(traceback.format_exception(exc))
            fields.update(error=record.error, traceback=record.traceback)
            event = ev.FAILED
        else:
            record.state = State.DONE
            result = task.result()
            if result is not None:
                record.result = one_line(_safe(_SHORT.repr, result), 200)
                fields["result"] = record.result
            event = ev.DONE
        for exited in self.instruments.exited:
            exited(record)  # the capture's last unfinished line comes before the end
        self.registry.finish(record)
        self.bus.emit(record.name, event, fields)

    async def cancel(self, records: list[TaskRecord]) -> list[Ending]:
        """Cancel RECORDS, wait up to the grace period; say how each ended.

        The ones that did not stop in time stay `cancelling` (outcome "refused").
        """
        live = self.cancel_now(records)
        if live:
            await asyncio.wait(live, timeout=self.config.cancel_grace)
        endings = []
        for record in records:
            if record.state is State.CANCELLED:
                endings.append(Ending(record, "cancelled"))
            elif record.finished:
                endings.append(Ending(record, "ended"))
            else:
                endings.append(Ending(record, "refused"))
                self.bus.emit(record.name, ev.CANCEL_REFUSED, {"grace_s": self.config.cancel_grace})
        return endings

    def cancel_now(self, records: list[TaskRecord]) -> list[asyncio.Task[object]]:
        """Ask RECORDS' tasks to stop (each becomes `cancelling`); their tasks, to wait on."""
        self.settle(records)
        tasks = []
        for record in records:
            if record.task is not None and not record.task.done():
                record.task.cancel()
                record.state = State.CANCELLING
                tasks.append(record.task)
        return tasks

    def abandon(self, records: list[TaskRecord]) -> None:
        """RECORDS did not stop at the end: tell the instruments (the reaper kills
        their processes), the log, and asyncio (which need not complain at exit)."""
        for record in records:
            if record.task is not None:
                record.task._log_destroy_pending = False  # type: ignore[attr-defined]
            for abandoned in self.instruments.abandoned:
                abandoned(record)
            self.bus.emit(record.name, ev.CANCEL_REFUSED, {"grace_s": self.config.cancel_grace})

    async def wait_for(self, records: list[TaskRecord], timeout: float | None) -> None:
        """Wait until RECORDS have ended; CommandError on timeout or if any failed."""
        self.settle(records)
        tasks = [r.task for r in records if r.task is not None and not r.task.done()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                still = [r for r in records if not r.finished]
                raise CommandError(f"timed out after {timeout:g}s; still running: {_names(still)}")
        failed = [r for r in records if r.state is State.FAILED]
        if failed:
            raise CommandError(
                f"{len(failed)} task{'s' if len(failed) > 1 else ''} failed: "
                + "; ".join(f"{r.name}: {r.error}" for r in failed[:5])
            )

    # -- the event log -----------------------------------------------------------

    async def start_log(self, path: str, fmt: str) -> None:
        """Log to PATH; if it cannot be opened, the current log stays in use.

        The new log takes over in one step (no event falls between the two), then the
        old one is flushed and closed, and only then does the new one start writing:
        switching to the same file keeps every event in order.
        """
        new = EventLog(path, fmt, self.report)
        await new.open(start=False)
        old, self.log = self.log, new
        if old is not None:
            self.bus.unsubscribe(old)
        self.bus.subscribe(new)
        try:
            if old is not None:
                await old.aclose()
        finally:
            new.start()

    async def stop_log(self) -> str:
        """Flush and close the log; say how many events it wrote."""
        old, self.log = self.log, None
        if old is not None:
            self.bus.unsubscribe(old)
            await old.aclose()
        await wait_closed()  # and any log a cancelled switch left closing
        if old is None:
            return "not logging"
        return f"stopped logging to {old.path} ({_written(old)})"

    async def flush_log(self) -> None:
        """Wait until every event so far is in the log file."""
        if self.log is not None:
            await self.log.flush()

    def log_status(self) -> str:
        if self.log is None:
            return "not logging"
        log = self.log
        return f"logging to {log.path} ({log.format}), {_written(log)}"


def _written(log: EventLog) -> str:
    text = f"{log.written} event{'' if log.written == 1 else 's'} written"
    if log.failure:
        text += f"; writing failed ({log.failure}), {log.lost} events lost"
    return text
