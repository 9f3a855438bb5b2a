"""Supervision: restart policies, dependencies, timeouts and groups around one kind.

`supervise()` wraps "run the kind once" so that the engine only passes options: it
waits for `--after` tasks, takes a slot of the task's group (queued in order when
the group is full), runs under `--timeout`, and starts the kind again after a
doubling backoff as `--restart` says. All of it happens inside the task itself, so a
cancel reaches it wherever it is (waiting, queued, running, in a backoff) and the
group slot is always given back. A task with a group and no other option is the
engine's to queue instead (slots.py): no task at all until its turn.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, cast

from .errors import CommandError, shown
from .kinds._spec import MAX_SECONDS
from .registry import name_start_ok

POLICIES = ("no", "on-failure", "always")
MAX_BACKOFF = 60.0
MAX_RESTARTS = 1_000_000  # --max-restarts at most: a million is as good as for ever
OPTION_NAMES = ("restart", "max-restarts", "backoff", "after", "timeout", "group", "cwd", "env")


class DependencyFailed(Exception):
    """A task named in --after ended failed or cancelled: this one ends cancelled,
    with this message ("after: build failed") as its reason."""


class TimedOut(Exception):
    """A run outlived --timeout: the task ends failed with "timed out after S s"."""


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """How a task is supervised; the defaults mean "run it once, as it is"."""

    restart: str = "no"
    max_restarts: int = 5
    backoff: float = 1.0
    after: tuple[str, ...] = ()
    timeout: float | None = None
    group: str | None = None
    cwd: str | None = None  # for the shell kind; supervise() does not use them
    env: tuple[tuple[str, str], ...] = field(default=())

    @property
    def group_only(self) -> bool:
        """True when a group is all there is: the engine runs it with in_group()."""
        return (
            self.group is not None and self.restart == "no" and not self.after
            and self.timeout is None
        )

    @property
    def plain(self) -> bool:
        """True when supervise() would add nothing: the engine may skip it."""
        return (
            self.restart == "no" and not self.after and self.timeout is None
            and self.group is None
        )

    def backoff_for(self, restart: int) -> float:
        """Seconds before restart number RESTART (1, 2, ...): doubling, capped."""
        cap = max(MAX_BACKOFF, self.backoff)
        return min(cap, self.backoff * 2.0 ** min(restart - 1, 64))

    def to_json(self) -> dict[str, Any]:
        """Only what differs from the defaults (the state file stays small)."""
        out: dict[str, Any] = {}
        for spec in fields(self):
            name = spec.name
            value = getattr(self, name)
            if value != getattr(DEFAULT, name):
                out[name] = [list(pair) for pair in value] if name == "env" else (
                    list(value) if name == "after" else value
                )
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskOptions:
        """Options from the state file; CommandError (one line) if they are not valid."""
        values: dict[str, str | list[str]] = {}
        for name, value in data.items():
            key = name.replace("_", "-")
            if key not in OPTION_NAMES:
                raise CommandError(f"unknown option {shown(name)}")
            try:
                if key == "after":
                    values[key] = ",".join(_strings(value))
                elif key == "env":
                    values[key] = [f"{k}={v}" for k, v in (_strings(p) for p in value)]
                elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
                    values[key] = str(value)
                else:
                    raise ValueError
            except (TypeError, ValueError):
                raise CommandError(f"option {shown(name)} has a bad value") from None
        return parse_options(values, known_names=lambda name: True)


DEFAULT = TaskOptions()


def _strings(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError
    return value


# -- parsing ------------------------------------------------------------------------


def parse_options(
    values: Mapping[str, str | Sequence[str]], known_names: Callable[[str], bool]
) -> TaskOptions:
    """TaskOptions from command-line values keyed by option name without dashes
    ("max-restarts"; "env" may be a list); CommandError, one line, for a bad one."""
    options: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in OPTION_NAMES:
            raise CommandError(f"unknown option --{key}")
        if key == "env":
            options["env"] = tuple(_env(text) for text in ([raw] if isinstance(raw, str) else raw))
            continue
        if not isinstance(raw, str):
            raise CommandError(f"--{key} is given more than once")
        if key == "restart":
            if raw not in POLICIES:
                raise CommandError(
                    f"--restart: unknown policy {shown(raw)} (use no, on-failure or always)"
                )
            options["restart"] = raw
        elif key == "max-restarts":
            if not raw.isdigit() or not raw.isascii():
                raise CommandError(
                    f"--max-restarts: expected a whole number >= 0, got {shown(raw)}"
                )
            restarts = _whole_at_most(raw, MAX_RESTARTS)
            if restarts is None:
                raise CommandError(
                    f"--max-restarts: expected at most {MAX_RESTARTS:,}, got {shown(raw)}"
                )
            options["max_restarts"] = restarts
        elif key == "backoff":
            options["backoff"] = _seconds(key, raw, zero_ok=True)
        elif key == "timeout":
            options["timeout"] = _seconds(key, raw, zero_ok=False)
        elif key == "after":
            options["after"] = _after(raw, known_names)
        elif key == "group":
            options["group"] = check_group(raw)
        elif key == "cwd":
            if not raw:
                raise CommandError("--cwd: expected a folder")
            options["cwd"] = raw
    return TaskOptions(**options)


def _seconds(key: str, raw: str, zero_ok: bool) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        bound = ">= 0" if zero_ok else "> 0"
        raise CommandError(f"--{key}: expected seconds {bound}, got {shown(raw)}")
    if value > MAX_SECONDS:  # as a kind's SECONDS: `show` would print 300 digits
        raise CommandError(f"--{key}: expected seconds <= 1e9, got {shown(raw)}")
    return value


def _after(raw: str, known_names: Callable[[str], bool]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in raw.split(",")))
    if not raw.strip() or "" in names:
        raise CommandError(f"--after: expected NAME[,NAME...], got {shown(raw)}")
    for name in names:
        if not known_names(name):
            raise CommandError(f"--after: no task named {shown(name)}")
    return names


def _env(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or "\0" in text:
        raise CommandError(f"--env: expected KEY=VALUE, got {shown(text)}")
    return key, value


def check_group(name: str) -> str:
    """NAME if it can name a group (as a task name can), else CommandError."""
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
        raise CommandError(
            f"invalid group name {shown(name)}: use up to 64 letters, digits, '-', '_' and '.'"
        )
    if not name_start_ok(name):
        raise CommandError(
            f"invalid group name {shown(name)}: start it with a letter, a digit or '_'"
        )
    return name


MAX_PARALLEL = 1_000_000  # past it, a limit is no limit: say `unlimited`


def parse_parallel(raw: str) -> int | None:
    """`group G --parallel N`: 1 <= N <= MAX_PARALLEL, or "unlimited" (None)."""
    if raw == "unlimited":
        return None
    value = _whole_at_most(raw, MAX_PARALLEL) if raw.isascii() and raw.isdigit() else None
    if value is None or value < 1:
        raise CommandError(
            f"--parallel: expected a whole number from 1 to {MAX_PARALLEL:,} or "
            f"'unlimited', got {shown(raw)}"
        )
    return value


def _whole_at_most(digits: str, most: int) -> int | None:
    """DIGITS (ASCII digits) as a number if it is at most MOST, else None. Its length
    is looked at first: int() refuses a string of over 4,300 digits (ValueError),
    which a command line of 1 MiB can hold."""
    if len(digits.lstrip("0")) > len(str(most)):
        return None
    value = int(digits)
    return value if value <= most else None


# -- groups -------------------------------------------------------------------------


class Group:
    """At most `parallel` running; the others wait in `queue`, first come first served."""

    __slots__ = ("name", "parallel", "running", "queue")

    def __init__(self, name: str) -> None:
        self.name = name
        self.parallel: int | None = None  # None: unlimited
        self.running = 0
        # A waiting task's future, or what starts a task queued without one (its
        # slot taken for it): see Groups.enqueue.
        self.queue: OrderedDict[Hashable, asyncio.Future[None] | Callable[[], None]] = (
            OrderedDict()
        )

    def has_room(self) -> bool:
        return self.parallel is None or self.running < self.parallel


class Groups:
    """Every group by name. A slot is taken by `try_acquire` or `await wait`, and given
    back by `release`, which hands it straight to the first in the queue."""

    def __init__(self) -> None:
        self._groups: dict[str, Group] = {}
        self._positions: dict[Hashable, int] | None = None  # cached until the queues change

    def group(self, name: str) -> Group:
        found = self._groups.get(name)
        if found is None:
            found = self._groups[name] = Group(name)
        return found

    def set_parallel(self, name: str, parallel: int | None) -> None:
        group = self.group(name)
        group.parallel = parallel
        self._grant(group)

    def try_acquire(self, name: str) -> bool:
        group = self.group(name)
        if group.queue or not group.has_room():
            return False
        group.running += 1
        return True

    async def wait(self, name: str, key: Hashable) -> None:
        """Queue KEY for a slot of NAME and wait; a cancel leaves the queue (or gives
        back a slot granted in the meantime)."""
        group = self.group(name)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        group.queue[key] = future
        self._positions = None
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(name)  # granted just before the cancel arrived
            elif group.queue.get(key) is future:
                del group.queue[key]
                self._positions = None
            raise

    def enqueue(self, group: Group, key: Hashable, start: Callable[[], None]) -> int:
        """Queue KEY, which has no task yet, for a slot of GROUP: START is called when
        one is free, and takes it. Its place in the queue (1 = next)."""
        group.queue[key] = start
        self._positions = None
        return len(group.queue)

    def drop(self, group: Group, key: Hashable) -> bool:
        """Take KEY, queued by enqueue(), out of the queue; False if it is not there."""
        if group.queue.pop(key, None) is None:
            return False
        self._positions = None
        return True

    def release(self, name: str) -> None:
        group = self._groups[name]
        group.running -= 1
        if group.queue:
            self._grant(group)

    def _grant(self, group: Group) -> None:
        queue = group.queue
        while queue and group.has_room():
            _, waiter = queue.popitem(last=False)
            self._positions = None
            if not isinstance(waiter, asyncio.Future):
                group.running += 1
                waiter()
            elif not waiter.done():  # a cancelled waiter gives its turn away
                group.running += 1
                waiter.set_result(None)

    def position(self, key: Hashable) -> int:
        """KEY's place in its group's queue (1 = next), 0 if it is not queued."""
        if self._positions is None:
            self._positions = {
                k: n for g in self._groups.values() for n, k in enumerate(g.queue, 1)
            }
        return self._positions.get(key, 0)

    def listing(self) -> list[tuple[str, int | None, int, int]]:
        """(group, parallel, running, queued) for every group, by name."""
        return [
            (g.name, g.parallel, g.running, len(g.queue))
            for g in sorted(self._groups.values(), key=lambda g: g.name)
        ]


# -- supervise ----------------------------------------------------------------------


class Hooks(Protocol):
    """What supervise() tells the engine, and asks of it."""

    def set_state(self, state: str) -> None:
        """'waiting' (for --after tasks, or a backoff), 'queued' or 'running'."""

    def wait_ended(self, name: str) -> asyncio.Future[str]:
        """A future of the final state ('done', 'failed', 'cancelled') of the task NAME,
        done once it has ended (already done if it has). Shared by all who wait:
        supervise() never cancels it."""

    def restarted(self, n: int, reason: str, delay: float) -> None:
        """Restart number N is decided: the last run ended with REASON, the next one
        starts after DELAY seconds."""

    def gave_up(self, n: int) -> None:
        """The last run ended and N restarts were all that was allowed."""


def describe(exc: BaseException | None) -> str:
    """One line for how a run ended: "done", or the exception."""
    if exc is None:
        return "done"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def supervise(
    run_once: Callable[[], Awaitable[object]],
    options: TaskOptions,
    hooks: Hooks,
    *,
    groups: Groups | None = None,
    key: Hashable | None = None,
    reason: Callable[[BaseException | None], str] = describe,
) -> object:
    """Run RUN_ONCE as OPTIONS say; return its last result or raise its last failure.

    KEY stands for the task in its group's queue (default: HOOKS). Raises
    DependencyFailed, TimedOut, or whatever the last run raised; a cancel propagates.
    """
    if options.after:
        await _wait_for(options.after, hooks)
    slot_key: Hashable = cast(Hashable, hooks) if key is None else key
    restarts = 0
    while True:
        failure: Exception | None = None
        result: object = None
        group = options.group if groups is not None else None
        if group is not None:
            assert groups is not None
            if not groups.try_acquire(group):
                hooks.set_state("queued")
                await groups.wait(group, slot_key)
        try:
            hooks.set_state("running")
            result = await _timed(run_once, options.timeout)
        except Exception as exc:
            failure = exc
        finally:
            if group is not None:
                assert groups is not None
                groups.release(group)
        again = options.restart == "always" or (
            options.restart == "on-failure" and failure is not None
        )
        if again and restarts >= options.max_restarts:
            hooks.gave_up(restarts)
            again = False
        if not again:
            if failure is not None:
                raise failure
            return result
        restarts += 1
        delay = options.backoff_for(restarts)
        hooks.restarted(restarts, reason(failure), delay)
        del failure  # the next run must not keep this one's traceback alive
        hooks.set_state("waiting")
        await asyncio.sleep(delay)


async def in_group(
    run_once: Callable[[], Awaitable[object]],
    group: Group,
    hooks: Hooks,
    groups: Groups,
    key: Hashable,
) -> object:
    """supervise() for options that only name a GROUP of GROUPS (`new --group G`) when
    the engine cannot hold the slot itself (slots.py: supervised tasks of the group are
    still to take their first step, and come first): the same states, queue and slot,
    with nothing of restarts, --after or --timeout to keep."""
    if group.queue or not group.has_room():
        hooks.set_state("queued")
        await groups.wait(group.name, key)
    else:
        group.running += 1
    try:
        hooks.set_state("running")
        return await run_once()
    finally:
        groups.release(group.name)


async def _timed(run_once: Callable[[], Awaitable[object]], timeout: float | None) -> object:
    if timeout is None:
        return await run_once()
    limit = asyncio.timeout(timeout)
    try:
        async with limit:
            return await run_once()
    except TimeoutError:
        if not limit.expired():
            raise  # the kind's own TimeoutError, not ours
        raise TimedOut(f"timed out after {timeout:g} s") from None


async def _wait_for(names: tuple[str, ...], hooks: Hooks) -> None:
    """Until every task in NAMES has ended done; DependencyFailed as soon as one has not."""
    hooks.set_state("waiting")
    waits = {hooks.wait_ended(name): name for name in names}
    pending = {future for future in waits if not future.done()}
    finished = set(waits) - pending
    while True:
        for future in sorted(finished, key=lambda f: names.index(waits[f])):
            state = "cancelled" if future.cancelled() else future.result()
            if state != "done":
                raise DependencyFailed(f"after: {waits[future]} {state}")
        if not pending:
            return
        # asyncio.wait never cancels what it waits on: the futures stay shared.
        finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
