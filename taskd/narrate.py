"""`explain on`: after each command and task event, what just happened in asyncio's
own terms, one or two lines, so that a class sees the library under the shell.

The narrator listens to the engine's bus (a task started, ended, refused a cancel,
held the loop) and is told by the daemon around each command line: a `cancel` must
be narrated with what the task was awaiting when it was cancelled, which only the
stack walk made *before* the cancel can say. Narration is itself an event
(`explain`, field `text`), so every front-end shows it and the log keeps it.

Event narration is sent a loop turn later (call_soon): a command's own reply line
(`started tick-1`) is written in the same turn as its event, and must come first.
Off, the narrator is not subscribed at all and costs nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import events as ev
from .commands import split
from .errors import CommandError
from .i18n import _
from .instruments import Instrument
from .registry import State, TaskRecord

if TYPE_CHECKING:
    from .engine import Engine

# Commands that can free a group's slots: a task they admit is narrated after them.
_FREEING = frozenset({"cancel", "restart", "group"})
# Functions whose await hands work to a thread, which a cancel cannot stop.
_THREADED = frozenset({"run_in_executor", "to_thread"})


@dataclass
class Note:
    """What before() saw of a command line, for after()."""

    new: bool = False
    cancels: list[tuple[TaskRecord, str, bool]] = field(default_factory=list)
    dequeued: list[TaskRecord] = field(default_factory=list)  # queued: no task yet
    freeing: bool = False  # a command that can free group slots


class Narrator(Instrument):
    """The `explain` switch and the lines it adds. An instrument while on: a task
    queued in a full group gets its asyncio task only when a slot frees
    (task_admitted), which no event marks."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.on = False
        self._in_new = 0  # `new` lines running: their start is narrated after the reply
        self._pending: list[tuple[str, str]] = []
        self._in_command = 0  # _FREEING commands running: an admission waits for them
        self._admitted: list[tuple[str, str]] = []

    def switch(self, on: bool) -> None:
        if on and not self.on:
            self.engine.bus.subscribe(self._sink)
            self.engine.instruments.add(self)
        elif not on and self.on:
            self.engine.bus.unsubscribe(self._sink)
            self.engine.instruments.remove(self)
        self.on = on

    def say(self, task: str, text: str) -> None:
        self.engine.bus.emit(task, ev.EXPLAIN, {"text": text})

    # -- around a command line -----------------------------------------------------

    def before(self, line: str) -> Note:
        """What the command line is about to do, looked at before it does it: for a
        `cancel`, what each task it names is awaiting."""
        note = Note()
        try:
            words = split(line.strip())
        except CommandError:
            return note
        if words and words[0] in _FREEING:
            note.freeing = True
            self._in_command += 1
        if words and words[0] in ("new", "restart"):  # each starts tasks
            note.new = True
            self._in_new += 1
        # `restart` cancels its live tasks first, as `cancel` does.
        if len(words) < 2 or words[0] not in ("cancel", "restart"):
            return note
        try:
            records = self.engine.registry.select(words[1:], include_finished=False)
        except CommandError:
            return note
        from .stacks import awaiting, own_frames  # when narrating, not at every start

        for record in records:
            if record.task is None and record.state is State.QUEUED:
                note.dequeued.append(record)
            if record.task is None or record.task.done():
                continue
            frames, _waiting = own_frames(record.task.get_coro())
            threaded = record.kind == "blocking" or any(f.function in _THREADED for f in frames)
            note.cancels.append((record, awaiting(record.task), threaded))
        return note

    def after(self, note: Note) -> None:
        """Narrate the command that NOTE was taken for, now that it has run: what it
        cancelled (a `restart` too), then what it started."""
        for record in note.dequeued:
            if record.state is State.CANCELLED:
                self.say(record.name, _(
                    "{name} had no task yet: it left the queue of group {group}, and "
                    "there was nothing to cancel"
                ).format(name=record.name, group=_group(record)))
        for record, where, threaded in note.cancels:
            if record.state is State.RUNNING:
                continue  # the command failed before it cancelled anything
            place = where or _("its first step")
            self.say(record.name, _(
                "called task.cancel(): a CancelledError is raised at the task's next "
                "await ({where})"
            ).format(where=place))
            if threaded:
                self.say(record.name, _("only the await was cancelled; the thread cannot "
                                        "be, and runs on"))
        if note.new:  # its task's start, now that the reply line is out
            self._in_new -= 1
            pending, self._pending = self._pending, []
            for task, text in pending:
                self.say(task, text)
        if note.freeing:
            self._in_command -= 1
        if not self._in_command:  # a slot the command freed, after what freed it
            admitted, self._admitted = self._admitted, []
            for task, text in admitted:
                self.say(task, text)

    # -- task events ---------------------------------------------------------------

    def _sink(self, event: ev.Event) -> None:
        text = self._narration(event)
        if text is None:
            return
        if self._in_new and event.event == ev.STARTED and "parent" not in event.fields:
            self._pending.append((event.task, text))
            return
        try:
            asyncio.get_running_loop().call_soon(self.say, event.task, text)
        except RuntimeError:  # no loop running (embedding): now, then
            self.say(event.task, text)

    def _narration(self, event: ev.Event) -> str | None:
        kind, fields = event.event, event.fields
        if kind == ev.STARTED:
            parent = fields.get("parent")
            if parent is not None:
                return _(
                    "{parent} called asyncio.create_task({call}): task {name}, its child; "
                    "it runs at the loop's next turn"
                ).format(parent=parent, call=f"{fields['kind']}()", name=event.task)
            call = self._call(fields["kind"], fields.get("args", []))
            record = self.engine.registry.live.get(event.task)
            if record is not None and record.task is None and record.state is State.QUEUED:
                return _(
                    "{name} waits for a slot of group {group}: no task exists yet; "
                    "asyncio.create_task({call}) is called when one frees"
                ).format(name=event.task, group=_group(record), call=call)
            return _("scheduled asyncio.create_task({call}); it runs at the loop's next turn"
                     ).format(call=call)
        if kind == ev.DONE:
            return _("{name} returned; its task is done").format(name=event.task)
        if kind == ev.FAILED:
            return _("{name} raised {error}; its task failed").format(
                name=event.task, error=fields.get("error", "")
            )
        if kind == ev.CANCEL_REFUSED:
            return _(
                "{name} caught CancelledError and went on: cancellation is a request, "
                "not a command"
            ).format(name=event.task)
        if kind == ev.STALL:
            return _("a step of {name} held the loop {seconds:.1f} s: every other task "
                     "waited").format(name=event.task, seconds=fields.get("blocked_s", 0.0))
        return None

    # -- the instrument's hook --------------------------------------------------------

    def task_admitted(self, record: TaskRecord) -> None:
        text = _(
            "a slot of group {group} freed for {name}: scheduled asyncio.create_task({call}); "
            "it runs at the loop's next turn"
        ).format(
            name=record.name, group=_group(record),
            call=self._call(record.kind, list(record.args)),
        )
        if self._in_command:
            self._admitted.append((record.name, text))
        else:
            asyncio.get_running_loop().call_soon(self.say, record.name, text)

    def _call(self, kind_name: str, args: list[str]) -> str:
        """How the kind's coroutine function was called: `tick(1.0, None)`."""
        kind = self.engine.kinds.get(kind_name)
        if kind is None:
            return f"{kind_name}()"
        try:
            values: list[Any] = kind.bind(list(args))
        except CommandError:
            values = list(args)
        name = getattr(kind.func, "__name__", kind_name)
        return f"{name}({', '.join(repr(v) for v in values)})"


def _group(record: TaskRecord) -> str:
    options = record.options
    return (options.group if options is not None else None) or "?"
