"""Named tasks and their states.

Live tasks are found by name in O(1); finished ones move to a bounded history so that
`show --all` can say how each ended. A finished record keeps text (its last line, its
error, its traceback as a string), never the task or exception objects, so no
coroutine frame outlives its task.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import unicodedata
from collections import OrderedDict
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from . import clocks
from .errors import CommandError, shown
from .i18n import _

if TYPE_CHECKING:
    from .supervise import TaskOptions

MAX_NAME = 64
DAEMON_NAME = "taskd"  # the daemon's own name in the log: no task may have it

# Cyrillic and Greek letters drawn like Latin ones (after NFKC), mapped to the Latin
# letter they pass for: two names that differ only in these name the same-looking task.
_LOOKALIKE = str.maketrans(
    "аеорсухіјѕԁԛԝһӏ" "АВЕКМНОРСТХІЈЅԌ" "οαικνρτυχ" "ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
    "aeopcyxijsdqwhl" "ABEKMHOPCTXIJSG" "oaikvptux" "ABEZHIKMNOPTYX",
)


class State(StrEnum):
    WAITING = "waiting"  # for --after tasks, or a restart's backoff
    QUEUED = "queued"  # for a slot of its group
    RUNNING = "running"
    CANCELLING = "cancelling"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


FINAL = frozenset({State.DONE, State.CANCELLED, State.FAILED})
_SERIALS = itertools.count(1)


class TaskRecord:
    """What taskd knows of one task, for as long as it is remembered."""

    __slots__ = (
        "name",
        "kind",
        "args",
        "state",
        "started_at",
        "started",
        "ended",
        "last_line",
        "error",
        "traceback",
        "result",
        "task",
        "pending",
        "options",
        "restarts",
        "restored",
        "pending_size",
        "parent",
        "children",
        "steps_run",
        "serial",
    )

    def __init__(self, name: str, kind: str, args: tuple[str, ...]) -> None:
        self.name = name
        self.kind = kind
        self.args = args
        self.state = State.RUNNING
        self.started_at = clocks.wall()  # wall clock, for people
        self.started = clocks.monotonic()  # for durations (both virtual under --clock)
        self.ended: float | None = None
        self.last_line = ""
        self.error = ""
        self.traceback = ""
        self.result = ""
        self.task: asyncio.Task[object] | None = None
        self.pending: list[str] = []  # printed text not yet ended by a newline, in parts
        self.pending_size = 0  # characters in pending
        self.options: TaskOptions | None = None  # None: the defaults
        self.restarts = 0
        self.restored = False  # started again from the state file
        self.parent: str | None = None  # the name of the taskd task that created it
        self.children = 0  # how many tasks it has created (its children's numbers)
        self.steps_run = 0  # steps it ran on the loop (taskd.steps)
        self.serial = next(_SERIALS)  # unique in the process, unlike a name or id()

    @property
    def finished(self) -> bool:
        return self.state in FINAL

    def runtime(self, now: float | None = None) -> float:
        end = self.ended if self.ended is not None else (now or clocks.monotonic())
        return max(0.0, end - self.started)


def is_pattern(text: str) -> bool:
    return any(c in text for c in "*?[")


# A plain ASCII name: NFKC leaves it as it is, and it has no look-alike letters.
_PLAIN_NAME = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9_.\-]{{0,{MAX_NAME - 1}}}")


def name_start_ok(name: str) -> bool:
    """Whether NAME (of a task, a group or a kind) starts as a name must: with a
    letter, a digit or '_'. Not '-' (`cancel --all` would read as an option, the task
    `--all` could not be named) nor '.' (`.` and `..` read as folders)."""
    return name[:1].isalnum() or name[:1] == "_"


def check_name(name: str) -> str:
    """NAME as a task is called: NFKC-normalised (so full-width `ａ` is `a`), or
    CommandError if it is not a valid task name."""
    if _PLAIN_NAME.fullmatch(name) is not None and name != DAEMON_NAME:
        return name  # the usual name, without the Unicode work below
    name = unicodedata.normalize("NFKC", name)
    if not name:
        raise CommandError(_("a task name cannot be empty"))
    if len(name) > MAX_NAME:
        raise CommandError(
            _("task name too long ({length} characters; at most {most})").format(
                length=len(name), most=MAX_NAME
            )
        )
    for char in name:
        if not (char.isalnum() or char in "-_."):
            raise CommandError(
                _("invalid task name {name}: use letters, digits, '-', '_' and '.'").format(
                    name=shown(name)
                )
            )
    if not name_start_ok(name):
        raise CommandError(
            _("invalid task name {name}: start it with a letter, a digit or '_'").format(
                name=shown(name)
            )
        )
    if lookalike(name) == DAEMON_NAME:
        raise CommandError(f"{shown(name)} is taskd's own name in the log; choose another")
    return name


def lookalike(name: str) -> str:
    """NAME with its Cyrillic and Greek look-alikes of Latin letters made Latin."""
    return name if name.isascii() else name.translate(_LOOKALIKE)


class Registry:
    """Live tasks by name, and the last `history_size` finished ones."""

    def __init__(self, history_size: int = 1000) -> None:
        self.history_size = history_size
        self.live: dict[str, TaskRecord] = {}
        # Insertion order = order of ending; an OrderedDict forgets its oldest in O(1),
        # where a dict's first key is found past every slot deleted before it.
        self.history: OrderedDict[str, TaskRecord] = OrderedDict()
        self.finished_count = 0
        self._serial: dict[str, int] = {}
        # Live names that hold look-alike letters, by their all-Latin form.
        self._lookalikes: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.live)

    def get(self, name: str) -> TaskRecord | None:
        return self.live.get(name) or self.history.get(name)

    def new_name(self, kind: str) -> str:
        """A short name not in use: KIND-N with N counting up per kind."""
        n = self._serial.get(kind, 0)
        while True:
            n += 1
            name = f"{kind}-{n}"
            if name not in self.live and name not in self.history:
                self._serial[kind] = n
                return name

    def claim(self, name: str) -> str:
        """The normalised NAME if it is free for a new task, else CommandError: in use,
        or looking like a running task's name (Cyrillic `а` beside Latin `a`)."""
        return self.free(check_name(name))

    def free(self, name: str) -> str:
        """NAME (already checked: check_name) if it is free for a new task, else
        CommandError."""
        if name in self.live:
            raise CommandError(_("a task named {name} is already running").format(name=shown(name)))
        latin = name if name.isascii() else lookalike(name)  # the usual name: no call
        other = self.live.get(latin) if latin != name else None
        other_name = other.name if other is not None else self._lookalikes.get(latin)
        if other_name is not None and other_name != name:
            raise CommandError(
                f"task name {shown(name)} looks like {shown(other_name)}, which is running"
            )
        return name

    def add(self, record: TaskRecord) -> None:
        self.history.pop(record.name, None)  # a finished name may be used again
        self.live[record.name] = record
        if not record.name.isascii() and (latin := lookalike(record.name)) != record.name:
            self._lookalikes[latin] = record.name

    def finish(self, record: TaskRecord) -> None:
        if self.live.get(record.name) is record:
            del self.live[record.name]
            if self._lookalikes:  # most names have no look-alike: nothing to forget
                latin = lookalike(record.name)
                if latin != record.name and self._lookalikes.get(latin) == record.name:
                    del self._lookalikes[latin]
        self.finished_count += 1
        if self.history_size <= 0:
            return
        self.history[record.name] = record
        while len(self.history) > self.history_size:
            self.history.popitem(last=False)

    def records(self, include_finished: bool = False) -> list[TaskRecord]:
        """The live records (after the finished ones, with INCLUDE_FINISHED), as a
        list made at C speed: a generator cost a `show` of 10,000 tasks 0.2 ms."""
        if include_finished:
            return [*self.history.values(), *self.live.values()]
        return list(self.live.values())

    def select(self, specs: list[str], include_finished: bool) -> list[TaskRecord]:
        """The records that NAMEs and glob PATTERNs pick, each once, in order.

        A plain name that names no task, or a pattern that matches none, is an error,
        so that a typo never silently selects nothing.
        """
        chosen: dict[str, TaskRecord] = {}
        for spec in specs:
            spec = unicodedata.normalize("NFKC", spec)  # as names are
            if is_pattern(spec):
                hits = [r for r in self.records(include_finished) if fnmatchcase(r.name, spec)]
                if not hits:
                    raise CommandError(_("no task matches {pattern}").format(pattern=shown(spec)))
                for record in hits:
                    chosen.setdefault(record.name, record)
            else:
                found = self.get(spec)
                if found is None:
                    raise CommandError(_("no task named {name}").format(name=shown(spec)))
                chosen.setdefault(found.name, found)
        return list(chosen.values())
