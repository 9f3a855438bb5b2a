"""Slots the engine holds for `new --group G` tasks (taskd/slots.py): a task queued
for its turn has no asyncio task until then, and every way out of the queue (its
turn, a cancel, the end, a wider group) still accounts for it."""

from __future__ import annotations

import json

from conftest import InProcess, RunTaskd

from taskd import events as ev
from taskd.registry import State


async def test_a_queued_task_is_a_record_without_a_task_until_its_turn() -> None:
    engine = InProcess()
    for line in ("group g --parallel 1", "new idle --name a --group g",
                 "new timer 0 --name b --group g", "new timer 0 --name c --group g"):
        await engine.execute(line)
    a, b, c = (engine.registry.live[n] for n in "abc")
    assert a.task is not None and a.state is State.RUNNING
    assert (b.task, b.state, c.task, c.state) == (None, State.QUEUED, None, State.QUEUED)
    assert engine.groups.listing() == [("g", 1, 1, 2)]
    assert engine.detail(c) == "queued (2nd in group g)"
    await engine.execute("cancel a")  # its slot goes to b, then c
    await engine.execute("wait b c")
    assert (a.state, b.state, c.state) == (State.CANCELLED, State.DONE, State.DONE)
    assert engine.groups.listing() == [("g", 1, 0, 0)]


async def test_a_queued_task_cancelled_leaves_the_queue_at_once() -> None:
    engine = InProcess()
    seen: list[tuple[str, str]] = []
    engine.bus.subscribe(lambda e: seen.append((e.task, e.event)))
    for line in ("group g --parallel 1", "new idle --name a --group g",
                 "new idle --name b --group g", "new idle --name c --group g"):
        await engine.execute(line)
    b, c = engine.registry.live["b"], engine.registry.live["c"]
    await engine.execute("cancel b")
    assert b.state is State.CANCELLED and "b" not in engine.registry.live
    assert ("b", ev.QUEUED) in seen and seen[-1] == ("b", ev.CANCELLED)
    assert engine.detail(c) == "queued (1st in group g)"
    assert engine.groups.listing() == [("g", 1, 1, 1)]
    await engine.execute("group g --parallel 2")  # room: c starts
    assert c.state is State.RUNNING and c.task is not None
    await engine.execute("cancel a c")
    assert engine.groups.listing() == [("g", 2, 0, 0)]


async def test_a_task_cancelled_before_its_first_step_gives_its_slot_back() -> None:
    engine = InProcess()
    for line in ("group g --parallel 1", "new idle --name a --group g",
                 "new timer 0 --name b --group g", "cancel a", "wait b"):
        await engine.execute(line)
    assert engine.registry.get("b").state is State.DONE  # type: ignore[union-attr]
    assert engine.groups.listing() == [("g", 1, 0, 0)]


def test_queued_tasks_through_where_wait_and_end(run_taskd: RunTaskd) -> None:
    result = run_taskd(
        "group g --parallel 1\nnew idle --name a --group g\nnew timer 0 --name b --group g\n"
        "new idle --name c --group g\nnew idle --name d --group g\n"
        "where b\ncancel a\nwait b\nshow --all --json\nend\n"
    )
    assert "b (timer) queued, not started yet" in result.lines
    states = {t["name"]: t["state"] for t in json.loads(result.lines[-1])}
    assert states == {"a": "cancelled", "b": "done", "c": "running", "d": "queued"}
    assert result.errors == ["taskd: end cancelled 2 tasks: c, d"]  # d with no task


async def test_a_supervised_task_spawned_first_still_runs_first() -> None:
    # s has yet to take its first step (and its slot) when a is spawned: a is queued
    # the way supervised tasks are, behind s, not given s's slot by the engine.
    engine = InProcess()
    for line in ("group g --parallel 1", "new idle --name s --group g --timeout 60",
                 "new idle --name a --group g"):
        await engine.execute(line)
    s, a = engine.registry.live["s"], engine.registry.live["a"]
    assert (s.state, a.state) == (State.RUNNING, State.QUEUED) and a.task is not None
    await engine.execute("cancel s")  # its slot goes to a
    assert a.state is State.RUNNING
    await engine.execute("cancel a")
    assert engine.groups.listing() == [("g", 1, 0, 0)]
