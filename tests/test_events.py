"""The event bus: every sink gets every event it wants, and an event no sink wants
is not made at all (taskd/events.py)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import RunTaskd

from taskd import events as ev
from taskd.events import Event, EventBus


def test_an_event_no_sink_wants_is_not_handed_round() -> None:
    bus = EventBus()
    assert not bus.wants(ev.DONE)  # no sink at all
    screen: list[str] = []
    bus.subscribe(lambda e: screen.append(e.event), frozenset({ev.DONE}))
    assert bus.wants(ev.DONE) and not bus.wants(ev.STARTED)
    bus.emit("a", ev.STARTED)
    bus.emit("a", ev.DONE)
    assert screen == [ev.DONE]


def test_a_sink_that_wants_everything_gets_everything_and_others_may_see_it() -> None:
    bus = EventBus()
    screen: list[str] = []
    log: list[Event] = []
    bus.subscribe(lambda e: screen.append(e.event), frozenset({ev.DONE}))
    bus.subscribe(log.append)
    bus.emit("a", ev.STARTED, {"kind": "idle"})
    assert [(e.task, e.event, e.fields) for e in log] == [("a", ev.STARTED, {"kind": "idle"})]
    assert screen == [ev.STARTED]  # handed round: the screen's own filter skips it
    bus.unsubscribe(log.append)  # a bound method equal to the one subscribed
    assert not bus.wants(ev.STARTED)
    bus.emit("a", ev.STARTED)
    assert len(log) == 1 and screen == [ev.STARTED]


def test_a_script_log_holds_the_events_its_screen_does_not_show(
    run_taskd: RunTaskd, tmp_path: Path
) -> None:
    log = tmp_path / "events.jsonl"
    result = run_taskd(
        f"log {log} --json\ngroup g --parallel 1\nnew timer 0 --name a --group g\n"
        "new timer 0 --name b --group g\nwait\nend\n"
    )
    assert result.status == 0, result.err
    # The screen: `started a`, `a done after ...`; no line for b's place in the queue.
    lines = result.out.splitlines()[2:]
    assert lines[:2] == ["started a", "started b"]
    assert [line.split(" after ")[0] for line in lines[2:]] == ["a done", "b done"]
    seen = [(e["task"], e["event"]) for e in map(json.loads, log.read_text().splitlines())]
    for expected in [("a", "started"), ("b", "started"), ("b", "queued"), ("a", "done"),
                     ("b", "done")]:
        assert expected in seen
