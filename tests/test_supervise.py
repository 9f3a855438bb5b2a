"""Supervision on a real loop: restarts, --after, --timeout, groups, and cancels
arriving at every stage. Backoffs are tiny (any seconds >= 0 are allowed)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from taskd.errors import CommandError
from taskd.supervise import (
    DEFAULT,
    DependencyFailed,
    Groups,
    TaskOptions,
    TimedOut,
    in_group,
    parse_options,
    parse_parallel,
    supervise,
)

DEADLINE = 30.0


async def until(condition: Callable[[], object], what: str = "condition") -> None:
    """Wait for CONDITION, checking each millisecond; fail after a generous deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.001)


class Task:
    """A task as the engine would keep it, and the hooks supervise() calls."""

    def __init__(self, bench: Bench, name: str) -> None:
        self.bench = bench
        self.name = name
        self.states: list[str] = []
        self.restarts: list[tuple[int, str, float]] = []
        self.gave_up_after: int | None = None
        self.final = ""
        self.reason = ""
        self.error: BaseException | None = None
        self.task: asyncio.Task[object] | None = None

    @property
    def state(self) -> str:
        return self.final or (self.states[-1] if self.states else "")

    def set_state(self, state: str) -> None:
        self.states.append(state)

    def wait_ended(self, name: str) -> asyncio.Future[str]:
        return self.bench.ended(name)

    def restarted(self, n: int, reason: str, delay: float) -> None:
        self.restarts.append((n, reason, delay))

    def gave_up(self, n: int) -> None:
        self.gave_up_after = n

    def done(self, task: asyncio.Task[object]) -> None:
        # As the engine's done callback would: DependencyFailed ends a task cancelled.
        if task.cancelled():
            self.final = "cancelled"
        elif isinstance(exc := task.exception(), DependencyFailed):
            self.final, self.reason = "cancelled", str(exc)
        elif exc is not None:
            self.final, self.reason, self.error = "failed", str(exc), exc
        else:
            self.final = "done"
        self.bench.ended(self.name).set_result(self.final)


class Bench:
    def __init__(self, way: str = "in_group") -> None:
        self.way = way  # "in_group": options that only name a group run as the engine runs them
        self.groups = Groups()
        self.ends: dict[str, asyncio.Future[str]] = {}
        self.tasks: dict[str, Task] = {}

    def ended(self, name: str) -> asyncio.Future[str]:
        if name not in self.ends:
            self.ends[name] = asyncio.get_running_loop().create_future()
        return self.ends[name]

    def spawn(
        self, name: str, run_once: Callable[[], Awaitable[object]], **options: Any
    ) -> Task:
        record = self.tasks[name] = Task(self, name)
        given = TaskOptions(**options)
        if self.way == "in_group" and given.group_only:
            assert given.group is not None
            group = self.groups.group(given.group)
            coro = in_group(run_once, group, record, self.groups, record)
        else:
            coro = supervise(run_once, given, record, groups=self.groups)
        record.task = asyncio.get_running_loop().create_task(coro, name=name)
        record.task.add_done_callback(record.done)
        return record

    async def finished(self, *records: Task) -> None:
        await until(lambda: all(r.final for r in records), "tasks to end")


class Kind:
    """A kind whose runs fail until told otherwise, counting its runs."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.runs = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> object:
        self.runs += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.runs <= self.failures:
            raise RuntimeError(f"run {self.runs} failed")
        return self.runs


# -- options ------------------------------------------------------------------------


def test_parse_options_values() -> None:
    options = parse_options(
        {"restart": "on-failure", "max-restarts": "3", "backoff": "0.5", "after": "a,b,a",
         "timeout": "2", "group": "build", "cwd": "/", "env": ["K=V", "E="]},
        known_names=lambda name: name in ("a", "b"),
    )
    assert options == TaskOptions(
        "on-failure", 3, 0.5, ("a", "b"), 2.0, "build", "/", (("K", "V"), ("E", ""))
    )
    assert not options.plain and DEFAULT.plain
    assert TaskOptions.from_json(options.to_json()) == options
    assert DEFAULT.to_json() == {} and TaskOptions.from_json({}) == DEFAULT


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"restart": "sometimes"}, "--restart: unknown policy 'sometimes'"),
        ({"max-restarts": "-1"}, "--max-restarts: expected a whole number >= 0, got '-1'"),
        ({"max-restarts": "٣"}, "--max-restarts: expected a whole number >= 0"),
        ({"max-restarts": "1000001"}, "--max-restarts: expected at most 1,000,000, got '1000001'"),
        ({"max-restarts": "9" * 5000}, "--max-restarts: expected at most 1,000,000, got '999"),
        ({"backoff": "-0.1"}, "--backoff: expected seconds >= 0, got '-0.1'"),
        ({"backoff": "nan"}, "--backoff: expected seconds >= 0"),
        ({"timeout": "0"}, "--timeout: expected seconds > 0, got '0'"),
        ({"timeout": "inf"}, "--timeout: expected seconds > 0"),
        ({"timeout": "1e300"}, "--timeout: expected seconds <= 1e9, got '1e300'"),
        ({"backoff": "1e10"}, "--backoff: expected seconds <= 1e9, got '1e10'"),
        ({"timeout": "soon"}, "--timeout: expected seconds > 0, got 'soon'"),
        ({"after": "ghost"}, "--after: no task named 'ghost'"),
        ({"after": "a,,b"}, "--after: expected NAME[,NAME...]"),
        ({"group": "a b"}, "invalid group name 'a b'"),
        ({"env": "NOEQUALS"}, "--env: expected KEY=VALUE, got 'NOEQUALS'"),
        ({"colour": "red"}, "unknown option --colour"),
    ],
)
def test_parse_options_refuses_bad_values_in_one_line(
    values: dict[str, str], message: str
) -> None:
    with pytest.raises(CommandError) as caught:
        parse_options(values, known_names=lambda name: name in ("a", "b"))
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_from_json_refuses_bad_values() -> None:
    for data in ({"after": "a"}, {"env": [["K"]]}, {"timeout": [1]}, {"restart": True},
                 {"max_restarts": -2}, {"nope": 1}):
        with pytest.raises(CommandError):
            TaskOptions.from_json(data)


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [TaskOptions().backoff_for(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert TaskOptions(backoff=100).backoff_for(3) == 100  # a longer first backoff is kept
    assert TaskOptions(backoff=0).backoff_for(50) == 0
    assert TaskOptions().backoff_for(10**6) == 60


def test_parse_parallel() -> None:
    assert parse_parallel("4") == 4 and parse_parallel("unlimited") is None
    for bad in ("0", "-1", "x", ""):
        with pytest.raises(CommandError, match="--parallel"):
            parse_parallel(bad)


# -- restarts -----------------------------------------------------------------------


async def test_on_failure_restarts_until_a_run_succeeds() -> None:
    bench = Bench()
    kind = Kind(failures=2)
    t = bench.spawn("t", kind, restart="on-failure", backoff=0.001)
    await bench.finished(t)
    assert t.final == "done" and kind.runs == 3
    assert t.restarts == [
        (1, "RuntimeError: run 1 failed", 0.001), (2, "RuntimeError: run 2 failed", 0.002)
    ]
    assert t.states == ["running", "waiting", "running", "waiting", "running"]
    assert t.gave_up_after is None


async def test_on_failure_gives_up_after_max_restarts_with_the_last_failure() -> None:
    bench = Bench()
    kind = Kind(failures=100)
    t = bench.spawn("t", kind, restart="on-failure", max_restarts=3, backoff=0)
    await bench.finished(t)
    assert t.final == "failed" and t.reason == "run 4 failed" and kind.runs == 4
    assert t.gave_up_after == 3 and [n for n, _, _ in t.restarts] == [1, 2, 3]


async def test_always_restarts_a_task_that_ends_done_then_gives_up() -> None:
    bench = Bench()
    kind = Kind()
    t = bench.spawn("t", kind, restart="always", max_restarts=2, backoff=0)
    await bench.finished(t)
    assert t.final == "done" and kind.runs == 3 and t.gave_up_after == 2
    assert [reason for _, reason, _ in t.restarts] == ["done", "done"]


async def test_no_policy_runs_once() -> None:
    bench = Bench()
    kind = Kind(failures=1)
    t = bench.spawn("t", kind, restart="no", backoff=0)
    await bench.finished(t)
    assert t.final == "failed" and kind.runs == 1 and t.restarts == []


async def test_on_failure_does_not_restart_a_task_that_ends_done() -> None:
    bench = Bench()
    kind = Kind()
    t = bench.spawn("t", kind, restart="on-failure", backoff=0)
    await bench.finished(t)
    assert t.final == "done" and kind.runs == 1 and t.gave_up_after is None


async def test_cancel_during_the_backoff_ends_cancelled_without_another_run() -> None:
    bench = Bench()
    kind = Kind(failures=100)
    t = bench.spawn("t", kind, restart="always", backoff=DEADLINE * 10)
    await until(lambda: t.state == "waiting" and t.restarts, "the backoff")
    assert t.task is not None
    t.task.cancel()
    await bench.finished(t)
    assert t.final == "cancelled" and kind.runs == 1


async def test_cancel_while_running_is_not_a_failure_to_restart() -> None:
    bench = Bench()
    kind = Kind()
    kind.gate = asyncio.Event()
    t = bench.spawn("t", kind, restart="always", backoff=0)
    await until(lambda: kind.runs == 1)
    assert t.task is not None
    t.task.cancel()
    await bench.finished(t)
    assert t.final == "cancelled" and t.restarts == []


# -- --after ------------------------------------------------------------------------


async def test_after_a_task_that_fails_ends_cancelled_with_the_reason() -> None:
    bench = Bench()
    build = Kind(failures=1)
    build.gate = asyncio.Event()
    test = Kind()
    b = bench.spawn("build", build)
    t = bench.spawn("test", test, after=("build",))
    await until(lambda: t.state == "waiting" and build.runs == 1)
    build.gate.set()
    await bench.finished(b, t)
    assert b.final == "failed"
    assert (t.final, t.reason, test.runs) == ("cancelled", "after: build failed", 0)


async def test_after_a_cancelled_task() -> None:
    bench = Bench()
    build = Kind()
    build.gate = asyncio.Event()
    b = bench.spawn("build", build)
    t = bench.spawn("test", Kind(), after=("build",))
    await until(lambda: build.runs == 1 and t.state == "waiting")
    assert b.task is not None
    b.task.cancel()
    await bench.finished(b, t)
    assert (t.final, t.reason) == ("cancelled", "after: build cancelled")


async def test_after_waits_for_every_name_and_runs_once_all_are_done() -> None:
    bench = Bench()
    first, second, last = Kind(), Kind(), Kind()
    first.gate, second.gate = asyncio.Event(), asyncio.Event()
    a = bench.spawn("a", first)
    b = bench.spawn("b", second)
    c = bench.spawn("c", last, after=("a", "b"))
    await until(lambda: first.runs == second.runs == 1)
    first.gate.set()
    await bench.finished(a)
    await asyncio.sleep(0)  # not a wait for time: one more loop turn for c to act
    assert c.state == "waiting" and last.runs == 0
    second.gate.set()
    await bench.finished(b, c)
    assert c.final == "done" and last.runs == 1 and c.states == ["waiting", "running"]


async def test_after_fails_as_soon_as_one_fails_while_others_still_run() -> None:
    bench = Bench()
    slow = Kind()
    slow.gate = asyncio.Event()
    bench.spawn("slow", slow)
    bad = bench.spawn("bad", Kind(failures=1))
    t = bench.spawn("t", Kind(), after=("slow", "bad"))
    await bench.finished(bad, t)
    assert (t.final, t.reason) == ("cancelled", "after: bad failed") and slow.runs == 1
    slow.gate.set()
    await bench.finished(bench.tasks["slow"])


async def test_after_a_task_already_ended() -> None:
    bench = Bench()
    a = bench.spawn("a", Kind())
    await bench.finished(a)
    t = bench.spawn("t", Kind(), after=("a",))
    await bench.finished(t)
    assert t.final == "done"


async def test_cancel_while_waiting_for_after_leaves_the_shared_future_alone() -> None:
    bench = Bench()
    build = Kind()
    build.gate = asyncio.Event()
    b = bench.spawn("build", build)
    t1 = bench.spawn("t1", Kind(), after=("build",))
    t2 = bench.spawn("t2", Kind(), after=("build",))
    await until(lambda: t1.state == t2.state == "waiting")
    assert t1.task is not None
    t1.task.cancel()
    await bench.finished(t1)
    build.gate.set()
    await bench.finished(b, t2)
    assert (t1.final, t2.final) == ("cancelled", "done")


# -- --timeout ----------------------------------------------------------------------


async def test_timeout_on_a_thread_fails_the_task_and_the_thread_goes_on() -> None:
    bench = Bench()
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def work() -> None:
        started.set()
        release.wait(DEADLINE)
        finished.set()

    async def blocking() -> object:
        return await asyncio.get_running_loop().run_in_executor(None, work)

    t = bench.spawn("t", blocking, timeout=0.05)
    try:
        await bench.finished(t)
        assert (t.final, t.reason) == ("failed", "timed out after 0.05 s")
        assert isinstance(t.error, TimedOut)
        assert started.is_set() and not finished.is_set()  # the thread goes on
    finally:
        release.set()
    await until(finished.is_set, "the thread to finish")


async def test_a_timed_out_run_is_a_failure_to_restart() -> None:
    bench = Bench()
    runs = 0

    async def hangs_once() -> object:
        nonlocal runs
        runs += 1
        if runs == 1:
            await asyncio.Event().wait()
        return "ok"

    t = bench.spawn("t", hangs_once, timeout=0.02, restart="on-failure", backoff=0)
    await bench.finished(t)
    assert t.final == "done" and runs == 2
    assert t.restarts == [(1, "TimedOut: timed out after 0.02 s", 0)]


async def test_the_kinds_own_timeout_error_is_left_as_it_is() -> None:
    bench = Bench()

    async def raises() -> object:
        raise TimeoutError("upstream")

    t = bench.spawn("t", raises, timeout=DEADLINE)
    await bench.finished(t)
    assert t.final == "failed" and type(t.error) is TimeoutError


# -- groups -------------------------------------------------------------------------

# A task whose only option is its group runs through in_group(), the others through
# supervise(): the group tests run both ways.
BOTH_WAYS = pytest.mark.parametrize("way", ["in_group", "supervise"])



@BOTH_WAYS
async def test_group_queue_positions_and_a_cancelled_queued_task_leaves(way: str) -> None:
    bench = Bench(way)
    bench.groups.set_parallel("g", 1)
    kinds = [Kind() for _ in range(4)]
    for kind in kinds:
        kind.gate = asyncio.Event()
    a, b, c, d = (bench.spawn(n, k, group="g") for n, k in zip("abcd", kinds, strict=True))
    await until(lambda: kinds[0].runs == 1 and d.state == "queued")
    assert [bench.groups.position(r) for r in (a, b, c, d)] == [0, 1, 2, 3]
    assert bench.groups.listing() == [("g", 1, 1, 3)]
    assert b.task is not None
    b.task.cancel()
    await bench.finished(b)
    assert [bench.groups.position(r) for r in (c, d)] == [1, 2]
    assert bench.groups.listing() == [("g", 1, 1, 2)]
    kinds[0].gate.set()
    await until(lambda: kinds[2].runs == 1)
    assert (a.final, c.state, kinds[1].runs) == ("done", "running", 0)
    assert bench.groups.position(c) == 0 and bench.groups.position(d) == 1
    # `restart` of a queued task: cancelled, then spawned again at the end of the queue.
    assert d.task is not None
    d.task.cancel()
    await bench.finished(d)
    kinds[3] = Kind()
    d2 = bench.spawn("d", kinds[3], group="g")
    await until(lambda: d2.state == "queued")
    assert bench.groups.position(d2) == 1
    kinds[2].gate.set()
    await bench.finished(c, d2)
    assert bench.groups.listing() == [("g", 1, 0, 0)]


@BOTH_WAYS
async def test_cancel_of_a_running_task_gives_its_slot_to_the_next(way: str) -> None:
    bench = Bench(way)
    bench.groups.set_parallel("g", 1)
    first = Kind()
    first.gate = asyncio.Event()
    a = bench.spawn("a", first, group="g")
    b = bench.spawn("b", Kind(), group="g")
    await until(lambda: b.state == "queued" and first.runs == 1)
    assert a.task is not None
    a.task.cancel()
    await bench.finished(a, b)
    assert (a.final, b.final) == ("cancelled", "done")


async def test_a_restarting_task_gives_its_slot_back_during_the_backoff() -> None:
    bench = Bench()
    bench.groups.set_parallel("g", 1)
    flaky = Kind(failures=1)
    flaky.gate = asyncio.Event()
    other = Kind()
    a = bench.spawn("a", flaky, group="g", restart="on-failure", backoff=0.01)
    b = bench.spawn("b", other, group="g")
    await until(lambda: b.state == "queued")
    flaky.gate.set()  # a fails; during its backoff b takes the slot
    await bench.finished(a, b)
    assert a.final == "done" and a.states == ["running", "waiting", "running"]
    assert b.final == "done"


async def test_a_slot_granted_to_a_task_cancelled_in_the_same_turn_is_passed_on() -> None:
    groups = Groups()
    groups.set_parallel("g", 1)
    assert groups.try_acquire("g") and not groups.try_acquire("g")
    b = asyncio.create_task(groups.wait("g", "b"))
    c = asyncio.create_task(groups.wait("g", "c"))
    await until(lambda: groups.position("c") == 2)
    groups.release("g")  # granted to b ...
    b.cancel()  # ... which is cancelled before it could run
    await asyncio.wait_for(c, DEADLINE)  # c got the slot b gave back
    assert b.cancelled() and groups.listing() == [("g", 1, 1, 0)]


@BOTH_WAYS
async def test_raising_parallel_lets_queued_tasks_run(way: str) -> None:
    bench = Bench(way)
    bench.groups.set_parallel("g", 1)
    kinds = [Kind() for _ in range(3)]
    for kind in kinds:
        kind.gate = asyncio.Event()
    records = [bench.spawn(f"t{i}", k, group="g") for i, k in enumerate(kinds)]
    await until(lambda: records[2].state == "queued")
    bench.groups.set_parallel("g", None)
    await until(lambda: all(k.runs == 1 for k in kinds))
    assert bench.groups.listing() == [("g", None, 3, 0)]
    for kind in kinds:
        kind.gate.set()
    await bench.finished(*records)


@BOTH_WAYS
async def test_ten_thousand_tasks_through_a_group_of_100(way: str) -> None:
    bench = Bench(way)
    bench.groups.set_parallel("g", 100)
    running = most = 0

    async def sleep0() -> object:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0)
        finally:
            running -= 1
        return None

    records = [bench.spawn(f"t{i}", sleep0, group="g") for i in range(10_000)]
    await until(lambda: all(r.final for r in records[-100:]), "the last tasks")
    await bench.finished(*records)
    assert all(r.final == "done" for r in records)
    assert most == 100  # the limit was reached, never passed
    assert bench.groups.listing() == [("g", 100, 0, 0)]


@BOTH_WAYS
async def test_a_group_runs_its_tasks_in_the_order_they_came(way: str) -> None:
    bench = Bench(way)
    bench.groups.set_parallel("g", 3)
    order: list[int] = []
    running = most = 0

    def kind(i: int) -> Callable[[], Awaitable[object]]:
        async def run() -> object:
            nonlocal running, most
            order.append(i)
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.001 * (i % 4))  # they end out of order
            running -= 1
            return i

        return run

    records = [bench.spawn(f"t{i}", kind(i), group="g") for i in range(30)]
    await bench.finished(*records)
    assert order == list(range(30)) and most == 3
    assert all(r.final == "done" for r in records)
    assert [r.states for r in records[:3]] == [["running"]] * 3
    assert all(r.states == ["queued", "running"] for r in records[3:])
    assert bench.groups.listing() == [("g", 3, 0, 0)]
