"""The shell's parts on their own: completion, colours, toolbar, history, output."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.data_structures import Size
from prompt_toolkit.document import Document
from prompt_toolkit.output import ColorDepth
from prompt_toolkit.output.vt100 import Vt100_Output
from shellkit import COLOUR_SGR, plain

from taskd.commands import COMMANDS
from taskd.config import Config
from taskd.engine import Engine
from taskd.frontends import colors
from taskd.frontends.above import AboveThePrompt
from taskd.frontends.completion import TaskdCompleter
from taskd.frontends.history import history_path, make_history
from taskd.frontends.toolbar import LagMeter, lag_text, toolbar
from taskd.registry import State, TaskRecord


def engine_with(*live: str, finished: tuple[str, ...] = ()) -> Engine:
    engine = Engine(Config())
    for name in (*live, *finished):
        engine.registry.add(TaskRecord(name, "idle", ()))
    for name in finished:
        record = engine.registry.live[name]
        record.state = State.DONE
        engine.registry.finish(record)
    return engine


def complete(engine: Engine, text: str) -> list[str]:
    completer = TaskdCompleter(engine)
    return [c.text for c in completer.get_completions(Document(text), CompleteEvent(True))]


def test_command_names_and_their_options() -> None:
    engine = engine_with()
    assert complete(engine, "") == list(COMMANDS)
    assert complete(engine, "ca") == ["cancel"]
    assert complete(engine, "show -") == ["--all", "--json", "--tree", "--system"]
    assert complete(engine, "show --all -") == ["--json", "--tree", "--system"]
    assert complete(engine, "wait --t") == ["--timeout"]
    assert complete(engine, "help wa") == ["wait"]
    assert complete(engine, "bogus ") == []


def test_kinds_after_new_and_nothing_for_a_new_name() -> None:
    engine = engine_with()
    assert complete(engine, "new ti") == ["tick", "timer"]
    assert set(complete(engine, "new ")) == set(engine.kinds)
    assert complete(engine, "new tick 1 --name ") == []
    assert complete(engine, "new --name x ti") == ["tick", "timer"]  # x is --name's


def test_task_names_are_read_live() -> None:
    engine = engine_with("alpha", "beta", finished=("gamma",))
    assert complete(engine, "cancel ") == ["alpha", "beta"]
    assert complete(engine, "cancel alpha ") == ["beta"]  # not twice
    assert complete(engine, "wait b") == ["beta"]
    assert complete(engine, "show g") == []
    assert complete(engine, "show --all g") == ["gamma"]
    engine.registry.add(TaskRecord("alpine", "idle", ()))
    assert complete(engine, "cancel al") == ["alpha", "alpine"]
    record = engine.registry.live["alpha"]
    record.state = State.CANCELLED
    engine.registry.finish(record)
    assert complete(engine, "cancel al") == ["alpine"]


def test_log_takes_off_or_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "events.log").write_text("")
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path)
    engine = engine_with()
    assert complete(engine, "log o") == ["off", "other"]
    assert complete(engine, "log ev") == ["events.log"]
    assert complete(engine, "log events.log ") == []


def test_wants_color() -> None:
    xterm = {"TERM": "xterm-256color"}
    assert colors.wants_color("auto", xterm, 256)
    assert colors.wants_color("auto", xterm, None)
    assert not colors.wants_color("auto", {**xterm, "NO_COLOR": "1"}, 256)
    assert colors.wants_color("auto", {**xterm, "NO_COLOR": ""}, 256)  # empty: not set
    assert not colors.wants_color("auto", {"TERM": "dumb"}, None)
    assert not colors.wants_color("auto", {}, None)
    assert not colors.wants_color("auto", {"TERM": "vt100"}, -1)  # terminfo: no colours
    assert not colors.wants_color("never", xterm, 256)
    assert colors.wants_color("always", {"TERM": "dumb", "NO_COLOR": "1"}, -1)
    assert colors.color_depth(False, ColorDepth.DEPTH_8_BIT) is ColorDepth.DEPTH_1_BIT
    assert colors.color_depth(True, ColorDepth.DEPTH_1_BIT) is ColorDepth.DEPTH_4_BIT


def test_task_colours_are_stable_and_lines_keep_their_text() -> None:
    """Lines come as data (which piece is a task, a state, a header); painting keeps
    every character and styles the pieces by what they are, whatever the wording."""
    from taskd import formatting, table
    from taskd.events import Event

    assert colors.task_style("tick-1") == colors.task_style("tick-1")
    assert len({colors.task_style(f"t{i}") for i in range(50)}) > 1
    record = TaskRecord("tick-1", "tick", ())
    record.state, record.error = State.FAILED, "boom"
    lines = [
        formatting.present(Event("tick-1", "output", {"text": "tick 3"})),
        formatting.present(Event("f", "failed", {"runtime_s": 0.0, "error": "E: x"})),
        *table.table([record]),
    ]
    painted = [colors.paint_fragments(line, is_error=False) for line in lines if line]
    texts = ["".join(t for _, t, *_ in p) for p in painted]
    assert texts[:2] == ["[tick-1] tick 3\n", "f failed after 0.00s: E: x\n"]
    assert texts[2].startswith("NAME ") and texts[3].startswith("tick-1  tick  failed  ")
    styles = {t: s for p in painted for s, t, *_ in p}
    assert styles["tick-1"].startswith("class:task-")
    assert styles["failed"] == "class:state-failed"
    assert styles[texts[2].rstrip("\n")] == "class:header"
    assert styles[" failed after 0.00s: E: x"] == "class:failed"
    assert colors.paint_fragments("oops\n", is_error=True) == [("class:error", "oops\n")]


def test_control_characters_cannot_reach_the_terminal() -> None:
    styled = colors.paint_fragments("[t] \x1b[2Jbell\x07\x0eend\ttab\n", is_error=False)
    text = "".join(t for _, t, *_ in styled)
    assert text == "[t] \\x1b[2Jbell\\x07\\x0eend\ttab\n"
    styled = colors.paint_fragments([("task", "t\x1b"), ("", " x\x07")], is_error=False)
    assert "".join(t for _, t, *_ in styled) == "t\\x1b x\\x07\n"


def test_toolbar_says_counts_log_and_lag() -> None:
    engine = engine_with("a", "b", finished=("c",))
    text = "".join(t for _, t, *_ in toolbar(engine, 0.0123))
    assert text == " 2 running · 1 finished · no log · lag 12.3 ms "
    assert lag_text(None) == "lag -" and lag_text(2.5) == "lag 2.5 s"
    warn = toolbar(engine, 0.5)[-1]
    assert warn[0] == "class:bottom-toolbar.warn"


async def test_lag_meter_sees_a_blocked_loop() -> None:
    import time

    meter = LagMeter()
    task = asyncio.create_task(meter.run())
    while not meter.samples:
        await asyncio.sleep(0.01)
    time.sleep(meter.INTERVAL + 0.2)  # block the loop on purpose: the meter must notice
    count = len(meter.samples)
    while len(meter.samples) == count:
        await asyncio.sleep(0.01)
    task.cancel()
    assert meter.lag is not None and meter.lag >= 0.2


def test_history_path() -> None:
    assert history_path("off", {}) is None
    assert history_path("", {"XDG_STATE_HOME": "/s"}) == Path("/s/taskd/history")
    assert history_path("", {}) == Path.home() / ".local/state/taskd/history"
    assert history_path("~/h", {}) == Path.home() / "h"


def test_history_dir_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    said: list[str] = []
    history = make_history(str(tmp_path / "file" / "sub" / "history"), {}, said.append)
    assert [type(history).__name__, len(said)] == ["InMemoryHistory", 1]
    assert "history off" in said[0]


def terminal(screen: io.StringIO) -> Vt100_Output:
    return Vt100_Output(screen, lambda: Size(rows=24, columns=80), term="xterm")


async def test_output_waits_for_whole_lines_until_drained() -> None:
    screen = io.StringIO()
    out = AboveThePrompt(terminal(screen), colors.PLAIN_STYLE, ColorDepth.DEPTH_1_BIT, lambda: None)
    out.write("one\ntw")
    out.write("o")
    out.error("bad\n")
    out.write("three")
    while "bad" not in plain(screen.getvalue()):
        await asyncio.sleep(0.01)
    assert plain(screen.getvalue()) == "one\ntwobad\n"
    await out.drain()
    assert plain(screen.getvalue()) == "one\ntwobad\nthree"
    await out.aclose()


async def test_colour_is_written_only_with_colour_on() -> None:
    for on in (True, False):
        screen = io.StringIO()
        style = colors.COLOR_STYLE if on else colors.PLAIN_STYLE
        depth = colors.color_depth(on, ColorDepth.DEPTH_8_BIT)
        out = AboveThePrompt(terminal(screen), style, depth, lambda: None)
        out.error("error: x\n")
        out.write("[t] tick 1\n")
        await out.aclose()
        assert plain(screen.getvalue()) == "error: x\n[t] tick 1\n"
        assert bool(COLOUR_SGR.search(screen.getvalue())) is on


async def test_a_flood_is_shown_whole_and_in_order_in_slices() -> None:
    from taskd.frontends.above import BATCH_CHARS

    screen = io.StringIO()
    out = AboveThePrompt(terminal(screen), colors.COLOR_STYLE, ColorDepth.DEPTH_8_BIT, lambda: None)
    lines = [f"[t] line {i}" for i in range(BATCH_CHARS // 4)]  # several slices' worth
    for line in lines:
        out.write(line + "\n")
    while "line 0\n" not in plain(screen.getvalue()):  # the first slice is out...
        await asyncio.sleep(0.001)
    assert plain(screen.getvalue()).count("\n") < len(lines)  # ...not the whole flood
    await out.drain()
    assert plain(screen.getvalue()).splitlines() == lines
    await out.aclose()


async def test_a_colouring_bug_costs_no_output(monkeypatch: pytest.MonkeyPatch) -> None:
    from taskd.frontends import above

    def broken(text: object, is_error: bool) -> list[tuple[str, str]]:
        raise ValueError("bug")

    monkeypatch.setattr(above, "paint_fragments", broken)
    reported: list[str] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: reported.append(context["message"]))
    screen = io.StringIO()
    out = AboveThePrompt(terminal(screen), colors.COLOR_STYLE, ColorDepth.DEPTH_8_BIT, lambda: None)
    out.write("[t] one\n")
    await out.drain()
    out.error("error: two\n")
    await out.aclose()
    loop.set_exception_handler(None)
    assert plain(screen.getvalue()) == "[t] one\nerror: two\n"
    assert reported == ["colouring failed"]
