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


def test_an_output_line_reaches_a_line_sink_as_it_is_and_others_as_one_event() -> None:
    bus = EventBus()
    seen: list[tuple[str, object]] = []
    bus.subscribe(lambda e: seen.append(("screen", e)), frozenset({ev.OUTPUT}))
    bus.subscribe(lambda e: seen.append(("server", e)),
                  lines=lambda task, ts, text: seen.append(("server", (task, ts, text))))
    bus.subscribe(lambda e: seen.append(("log", e)))
    bus.output("a", "one")
    bus.emit("a", ev.OUTPUT, {"text": "two"})  # the same way, however it is told
    assert [who for who, _ in seen] == ["screen", "server", "log"] * 2  # in order
    for i, text in ((0, "one"), (3, "two")):
        shown, taken, logged = (got for _, got in seen[i:i + 3])
        assert isinstance(shown, Event) and logged is shown  # one Event, shared
        assert (shown.task, shown.event, shown.fields) == ("a", ev.OUTPUT, {"text": text})
        assert taken == ("a", shown.ts, text)  # no Event for the line sink
    bus.emit("a", ev.DONE, {"runtime_s": 1.0})
    assert isinstance(seen[-1][1], Event) and seen[-1][0] == "log"  # others: as before


def test_output_reaches_no_sink_that_does_not_want_it() -> None:
    bus = EventBus()
    lines: list[object] = []
    bus.subscribe(lambda e: lines.append(e), frozenset({ev.DONE}),
                  lines=lambda *line: lines.append(line))
    bus.output("a", "one")
    assert lines == []
    bus.unsubscribe(bus._sinks[0])
    bus.subscribe(lines.append, lines=lambda *line: lines.append(line))
    bus.unsubscribe(lines.append)
    bus.output("a", "two")
    assert lines == []  # its line sink went with it


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
