"""The engine: named tasks spawned, watched, cancelled and awaited, with events.

It knows nothing of terminals, files or commands: commands call it and format what
it returns, sinks subscribe to its events, instruments watch its tasks. It never
prints; a message no command caused goes to the `report` callable it was given.
Everything here runs on the daemon's loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import reprlib
import sys
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from . import clocks, formatting, slots
from . import events as ev
from .children import Children
from .config import Config
from .context import CANCEL_GRACE, CURRENT, SHELL_SETTINGS
from .errors import CommandError, shown
from .formatting import MAX_DETAIL, one_line
from .guard import guarded, safe
from .i18n import _
from .instruments import Instruments
from .kinds import Kind, KindFunc, load_kinds
from .registry import Registry, State, TaskRecord, check_name
from .supervise import DEFAULT as DEFAULT_OPTIONS
from .supervise import DependencyFailed, Group, Groups, TaskOptions, TimedOut, in_group, supervise
from .taskhooks import TaskHooks

if TYPE_CHECKING:
    from .eventlog import EventLog

MAX_FAILURES = 10  # failed tasks named in a script's last line
_RUNNING = State.RUNNING  # a module constant: State.RUNNING is a slow class lookup


# A returned value is shown bounded: a task may return a list of a million items.
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 200


def _names(records: list[TaskRecord], most: int = 5) -> str:
    names = ", ".join(r.name for r in records[:most])
    return names + (f" (+{len(records) - most} more)" if len(records) > most else "")


Report = Callable[[str], None]


def _nothing() -> None:
    pass


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
        self._logged = False  # whether a log was ever opened (start_log)
        self._report = report or _to_stderr
        self._settled: set[asyncio.Task[object]] = set()  # accounted for by settle()
        self.groups = Groups()
        self.hooks: dict[TaskRecord, TaskHooks] = {}  # of live supervised tasks
        self.starting: dict[str, int] = {}  # group tasks spawned, first step to come
        self._ends: dict[str, asyncio.Future[str]] = {}  # what --after tasks wait on
        self._askers: dict[str, object] = {}  # live task name -> who asked to cancel it
        self.failed_count = 0  # tasks that ended failed since the start
        self.failures: list[TaskRecord] = []  # the first MAX_FAILURES of them
        self.state_changed: Callable[[], None] = _nothing  # a setting the state file keeps
        # Every task's done callback, in one context of its own: add_done_callback
        # would otherwise copy the spawner's context and make a bound method per task
        # (128 bytes a live task). An empty context: no task's, no command's.
        self._done = self._on_task_done
        self._done_context = contextvars.Context()
        self.children = Children(
            self.registry, self.instruments, self.bus, self._done, self._done_context
        )

    def report(self, message: str) -> None:
        """A one-line message for people that no command line caused."""
        self._report(f"taskd: {one_line(message, 2000)}")

    # -- tasks -------------------------------------------------------------------

    def kind(self, name: str) -> Kind:
        found = self.kinds.get(name)
        if found is not None:
            return found
        import difflib  # here, not at start-up: only a mistyped kind needs it

        close = difflib.get_close_matches(name, self.kinds, n=1)
        if close:
            raise CommandError(
                _("unknown kind {name} (did you mean {close}?)").format(
                    name=shown(name), close=repr(close[0])
                )
            )
        raise CommandError(_("unknown kind {name}; 'kinds' lists them").format(name=shown(name)))

    def spawn(
        self,
        kind_name: str,
        words: list[str],
        name: str | None = None,
        options: TaskOptions | None = None,
    ) -> TaskRecord:
        """Start a task of KIND with WORDS, supervised as OPTIONS say; CommandError
        (and no change) if they are bad."""
        kind = self.kind(kind_name)
        values = tuple(kind.bind(words))  # no arguments: the shared empty tuple
        shell_settings = options is not None and (options.cwd is not None or bool(options.env))
        if shell_settings and kind.name != "shell":
            raise CommandError("--cwd and --env are for shell tasks only")
        if name is None:
            name = self.registry.new_name(kind.name)
        else:
            name = check_name(name)  # NFKC: full-width `ａ` is `a`
            holder = self.registry.live.get(name)
            if holder is not None:
                self.settle([holder])  # it may have ended this very loop turn
            self.registry.free(name)  # checked just above: not twice per `new`
        record = TaskRecord(name, kind.name, tuple(words))
        context = contextvars.copy_context()
        context.run(CURRENT.set, record)
        if shell_settings:
            assert options is not None
            context.run(SHELL_SETTINGS.set, (options.cwd, options.env))
        if CANCEL_GRACE.get() != self.config.cancel_grace:
            # Normally set once, in the context every command runs in (Daemon.serve):
            # a context change per task costs memory at 100,000 tasks.
            context.run(CANCEL_GRACE.set, self.config.cancel_grace)
        instruments = self.instruments if self.instruments.steps_wanted else None
        hooks: TaskHooks | None = None
        queue_in: Group | None = None
        coro: Coroutine[Any, Any, object] | None = None
        if options is None or options.plain:
            coro = guarded(kind.func, values, instruments)
        elif options.group_only and not self.starting.get(options.group or ""):
            # The engine holds its slot (slots.py); none free: no task until one is.
            record.options = options
            queue_in = slots.admit(self.groups, options.group or "", record)
            if queue_in is None:
                coro = guarded(kind.func, values, instruments)
        else:
            hooks = TaskHooks(self, record, options)
            group = None
            if options.after:
                record.state = State.WAITING
            elif options.group is not None:
                # Until its first step: queued if the tasks before it fill the group.
                group = self.groups.group(options.group)
                starting = self.starting.get(group.name, 0)
                limit = group.parallel
                if group.queue or (limit is not None and group.running + starting >= limit):
                    record.state = State.QUEUED
                self.starting[group.name] = starting + 1
                hooks.starting = True
            if group is not None and options.group_only:
                coro = in_group(
                    lambda: guarded(kind.func, values, instruments), group, hooks,
                    self.groups, record,
                )
            else:
                coro = supervise(
                    lambda: guarded(kind.func, values, instruments), options, hooks,
                    groups=self.groups, key=record,
                )
        if options is not None and record.options is None and (
            hooks is not None or options != DEFAULT_OPTIONS
        ):
            record.options = options
        if coro is not None:
            self._start(record, coro, context)
        self.registry.add(record)
        if hooks is not None:
            self.hooks[record] = hooks
        for spawned in self.instruments.spawned:
            spawned(record)
        wanted = self.bus.wanted  # bus.wants(), inline: an event no sink wants is not made
        if wanted is None or ev.STARTED in wanted:
            self.bus.emit(name, ev.STARTED, {"kind": kind.name, "args": list(words)})
        if queue_in is not None:
            start = partial(self._start_queued, record, kind.func, values, instruments, context)
            place = self.groups.enqueue(queue_in, record, start)
            if wanted is None or ev.QUEUED in wanted:
                self.bus.emit(name, ev.QUEUED, {"group": queue_in.name, "place": place})
        return record

    def _start(
        self, record: TaskRecord, coro: Coroutine[Any, Any, object], context: contextvars.Context
    ) -> None:
        # Made here, not through the loop's task factory (Daemon._task_factory): a
        # task spawned by name is never a child nor one of taskd's own.
        loop = asyncio.get_running_loop()
        task = asyncio.Task(coro, loop=loop, name=record.name, context=context)
        record.task = task
        task.add_done_callback(self._done, context=self._done_context)

    def _start_queued(
        self, record: TaskRecord, func: KindFunc, values: Sequence[Any],
        instruments: Instruments | None, context: contextvars.Context,
    ) -> None:
        """A slot of its group is free (and taken) for a task queued without a task."""
        record.state = State.RUNNING
        self._start(record, guarded(func, values, instruments), context)
        for admitted in self.instruments.admitted:
            admitted(record)

    def ended(self, name: str) -> asyncio.Future[str]:
        """A future of how the task NAME ends ('done', 'failed', 'cancelled'); done at
        once if it has ended ('forgotten' if taskd no longer knows it)."""
        record = self.registry.live.get(name)
        if record is not None:
            self.settle([record])
            record = self.registry.live.get(name)
        if record is None:
            future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            old = self.registry.history.get(name)
            future.set_result(old.state.value if old is not None else "forgotten")
            return future
        return self._end_of(name)

    def _end_of(self, name: str) -> asyncio.Future[str]:
        """The future _ended() sets when live task NAME ends, shared by all who wait."""
        found = self._ends.get(name)
        if found is None:
            found = self._ends[name] = asyncio.get_running_loop().create_future()
        return found

    def detail(self, record: TaskRecord) -> str:
        """`show`'s DETAIL for RECORD: a place in a queue, what it waits for, or the
        usual (its last line, how it ended)."""
        if (
            record.options is None and record.state is _RUNNING
            and not record.restored and not record.restarts
        ):
            return record.last_line  # the usual row, 10,000 of them in a `show`
        group = record.options.group if record.options is not None else None
        if record.state is State.QUEUED and group is not None:
            text = slots.queued_detail(self.groups, group, record)
        else:
            hooks = self.hooks.get(record) if self.hooks else None
            text = hooks.detail() if hooks is not None else ""  # "restart 2 in 1.0s"
            if not text:
                text = formatting.detail(record)
                if n := record.restarts:  # policy restarts and `restart` commands
                    counted = f"({n} restart{'' if n == 1 else 's'})"
                    text = f"{text} {counted}" if text else counted
        if record.restored:  # started again (or remembered) from the state file
            return f"{text} (restored)" if text else "(restored)"
        return text

    def set_parallel(self, group: str, parallel: int | None) -> None:
        """At most PARALLEL tasks of GROUP run at once (None: no limit)."""
        self.groups.set_parallel(group, parallel)
        self.state_changed()

    def task_line(self, record: TaskRecord, line: str) -> None:
        """One line a task printed."""
        record.last_line = line if len(line) <= MAX_DETAIL else line[:MAX_DETAIL] + "…"
        self.bus.output(record.name, line)

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
        record.task = None  # drop the task, and with it the coroutine and its frame
        fields = self._ending(record)
        by = self._askers.pop(record.name, None) if self._askers else None
        if task.cancelled():
            record.state = State.CANCELLED
            event = ev.CANCELLED
        elif isinstance(exc := task.exception(), DependencyFailed):
            record.state = State.CANCELLED  # it never ran: "after: build failed"
            record.error = fields["reason"] = one_line(str(exc))
            event = ev.CANCELLED
        elif exc is not None:
            record.state = State.FAILED
            if isinstance(exc, TimedOut):
                record.error = one_line(str(exc))  # "timed out after 60 s"
            else:
                record.error = one_line(f"{type(exc).__name__}: {safe(str, exc)}".rstrip(": "))
            from .stacks import exception_text  # a failure's, not every start's, import

            record.traceback = exception_text(exc)
            fields.update(error=record.error, traceback=record.traceback)
            event = ev.FAILED
            self.failed_count += 1
            if len(self.failures) < MAX_FAILURES:
                self.failures.append(record)
        else:
            record.state = State.DONE
            result = task.result()
            if result is not None:
                record.result = one_line(safe(_SHORT.repr, result), 200)
                fields["result"] = record.result
            event = ev.DONE
        self._ended(record, event, fields, by)

    def _ending(self, record: TaskRecord) -> dict[str, Any]:
        """The first half of ending RECORD: its end time, and its group's slot or
        count handed on. The fields of its last event, so far."""
        ended = record.ended = clocks.monotonic()
        hooks = self.hooks.pop(record, None) if self.hooks else None
        if hooks is not None:
            if hooks.starting:
                hooks.starting = False  # cancelled before its first step
                self.starting[hooks.options.group or ""] -= 1
        elif (options := record.options) is not None and options.group_only:
            slots.leave(self.groups, options.group or "", record)  # admitted by spawn()
        return {"runtime_s": round(max(0.0, ended - record.started), 6)}

    def _ended(
        self, record: TaskRecord, event: str, fields: dict[str, Any], by: object
    ) -> None:
        for exited in self.instruments.exited:
            exited(record)  # the capture's last unfinished line comes before the end
        self.registry.finish(record)
        if self._ends and (waiter := self._ends.pop(record.name, None)) is not None:
            waiter.set_result(record.state.value)
        self.bus.emit(record.name, event, fields, by)

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
        asker = ev.ASKER.get()
        tasks = []
        for record in records:
            if record.task is not None and not record.task.done():
                record.task.cancel()
                record.state = State.CANCELLING
                tasks.append(record.task)
                if asker is not None:
                    self._askers[record.name] = asker
            elif record.task is None and record.state is State.QUEUED:
                # Queued with no task yet: it leaves the queue, cancelled, at once.
                fields = self._ending(record)
                record.state = State.CANCELLED
                self._ended(record, ev.CANCELLED, fields, asker)
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
        tasks: list[asyncio.Future[Any]] = []
        for record in records:
            if record.task is not None:
                if not record.task.done():
                    tasks.append(record.task)
            elif record.state is State.QUEUED:  # no task yet
                tasks.append(self._end_of(record.name))
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                still = [r for r in records if not r.finished]
                raise CommandError(
                    _("timed out after {timeout:g}s; still running: {names}").format(
                        timeout=timeout, names=_names(still)
                    )
                )
        failed = [r for r in records if r.state is State.FAILED]
        if failed:
            raise CommandError(
                f"{len(failed)} task{'s' if len(failed) > 1 else ''} failed: "
                + "; ".join(f"{r.name}: {r.error}" for r in failed[:5])
            )

    def failures_line(self) -> str:
        """'2 tasks failed: build (exit status 2), test (timed out after 60 s)', or ''."""
        count = self.failed_count
        if not count:
            return ""
        named = ", ".join(
            f"{r.name} ({r.error.removeprefix('ShellFailure: ')})" for r in self.failures
        )
        more = f" (+{count - len(self.failures)} more)" if count > len(self.failures) else ""
        return f"{count} task{'s' if count != 1 else ''} failed: {named}{more}"

    # -- the event log -----------------------------------------------------------

    async def start_log(self, path: str, fmt: str) -> None:
        """Log to PATH; if it cannot be opened, the current log stays in use.

        The new log takes over in one step (no event falls between the two), then the
        old one is flushed and closed, and only then does the new one start writing:
        switching to the same file keeps every event in order.
        """
        from .eventlog import EventLog  # here: a daemon that never logs does not import it

        new = EventLog(path, fmt, self.report)
        self._logged = True
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
        if self._logged:
            from .eventlog import wait_closed

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
    elif log.stalled:
        text += f"; {log.stalled} events dropped while the file took nothing"
    return text
