"""Events: what the engine says happened, for any number of sinks to consume.

The engine never prints; it emits events. A front-end presents some of them, the
event log records all of them. Sinks are called synchronously on the loop and must
not block: they queue or buffer, and do their I/O elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from . import clocks

# The event names, as they appear in the log.
STARTED = "started"
OUTPUT = "output"
DONE = "done"
CANCELLED = "cancelled"
FAILED = "failed"
CANCEL_REFUSED = "cancel-refused"
DAEMON_START = "daemon-start"
DAEMON_END = "daemon-end"
DAEMON_ERROR = "error"
STALL = "stall"
NOTICE = "notice"  # a message of taskd's own on stderr (also in the log)
RENAMED = "renamed"  # a child task took the name its creator gave it
EXPLAIN = "explain"  # a narration line (`explain on`), field `text`
WAITING = "waiting"  # for --after tasks, or a restart's backoff
QUEUED = "queued"  # for a slot of the task's group
RESTARTED = "restarted"  # a restart is decided (a policy's or the `restart` command's)

DAEMON = "taskd"  # the task name of the daemon's own events

# Who asked for the command running in this context: a socket client sets itself
# (aiomonitor's idea), so that a task it cancelled is told to the other clients as
# somebody else's doing, and to the asker only as its command's reply.
ASKER: ContextVar[object | None] = ContextVar("taskd_asker", default=None)


class Event:
    """One thing that happened: when, to which task, what, and its details."""

    # `by` (the ASKER whose command caused it) is set only on the few events that
    # have one; read it with getattr(event, "by", None).
    __slots__ = ("ts", "task", "event", "fields", "by")
    by: object

    def __init__(self, task: str, event: str, fields: dict[str, Any] | None = None) -> None:
        self.ts = clocks.wall()  # time.time(), or virtual (taskd.clocks)
        self.task = task
        self.event = event
        self.fields = fields if fields is not None else {}

    def __repr__(self) -> str:
        return f"Event({self.task!r}, {self.event!r}, {self.fields!r})"


Sink = Callable[[Event], None]
# A sink's way to take a task's output line as it is: (task, ts, text), no Event.
LineSink = Callable[[str, float, str], None]


class EventBus:
    """Hands every event to every subscribed sink, in subscription order.

    The sinks are kept as a tuple, replaced whole on (un)subscribe: a sink that
    unsubscribes itself (or another) while an event is handed round does not make
    the others miss it.

    A sink may say which events it wants (the screen shows six kinds); an event
    that no sink wants is not made at all. With the screen alone subscribed, a
    script's `started` and `queued` events cost nothing (tests/bench, scenario
    grouped). A sink that wants everything (a log, a socket client) gets every event.

    A task's output line, by far the most frequent event, comes through output():
    a sink that gave a LineSink takes it as it is, and no Event is made for it (the
    socket server: tests/bench, scenario attached)."""

    def __init__(self) -> None:
        self._sinks: tuple[Sink, ...] = ()
        self._interests: dict[Sink, frozenset[str] | None] = {}
        self._line_sinks: dict[Sink, LineSink] = {}
        # The sinks that want output lines, in order, each with its LineSink or None.
        self._output: tuple[tuple[Sink, LineSink | None], ...] = ()
        self._only_lines: LineSink | None = None  # the sole sink of lines, if it is one
        self.wanted: frozenset[str] | None = frozenset()  # None: every event

    def subscribe(
        self, sink: Sink, events: frozenset[str] | None = None, lines: LineSink | None = None
    ) -> None:
        """SINK gets EVENTS from now on (None: all of them); others may reach it too.
        With LINES, the output lines it wants go there instead."""
        self._sinks = (*self._sinks, sink)
        self._interests[sink] = events
        if lines is not None:
            self._line_sinks[sink] = lines
        self._gather()

    def unsubscribe(self, sink: Sink) -> None:
        if sink in self._sinks:
            sinks = list(self._sinks)
            sinks.remove(sink)
            self._sinks = tuple(sinks)
            if sink not in self._sinks:
                del self._interests[sink]
                self._line_sinks.pop(sink, None)
            self._gather()

    def _gather(self) -> None:
        interests = [self._interests[sink] for sink in self._sinks]
        if None in interests:
            self.wanted = None
        else:
            self.wanted = frozenset().union(*interests)  # type: ignore[arg-type]
        self._output = tuple(
            (sink, self._line_sinks.get(sink))
            for sink, wants in zip(self._sinks, interests, strict=True)
            if wants is None or OUTPUT in wants
        )
        only = self._output[0][1] if len(self._output) == 1 else None
        self._only_lines = only

    def wants(self, event: str) -> bool:
        """Whether a sink wants EVENT: if not, its fields need not be made either."""
        wanted = self.wanted
        return wanted is None or event in wanted

    def emit(
        self, task: str, event: str, fields: dict[str, Any] | None = None, by: object = None
    ) -> None:
        wanted = self.wanted
        if wanted is not None and event not in wanted:
            return
        if event == OUTPUT and by is None and fields is not None and fields.keys() == {"text"}:
            self.output(task, fields["text"])  # the same line, however it was told
            return
        ev = Event(task, event, fields)
        if by is not None:
            ev.by = by
        for sink in self._sinks:
            sink(ev)

    def output(self, task: str, text: str) -> None:
        """TASK printed the line TEXT."""
        route = self._output
        if not route:
            return
        only = self._only_lines
        if only is not None:  # a served daemon's usual route: the socket server alone
            only(task, clocks.wall(), text)
            return
        ts = clocks.wall()
        event = None
        for sink, lines in route:
            if lines is not None:
                lines(task, ts, text)
            else:
                if event is None:
                    event = Event(task, OUTPUT, {"text": text})
                    event.ts = ts
                sink(event)
