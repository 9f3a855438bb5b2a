"""Every command, through the real program and in-process on an Engine."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import InProcess, RunTaskd, Session
from hypothesis import given, settings
from hypothesis import strategies as st

from taskd.commands import COMMANDS, help_text, split
from taskd.config import Config
from taskd.engine import Engine
from taskd.errors import CommandError
from taskd.kinds import BUILTINS
from taskd.registry import MAX_NAME, State


def json_lines(lines: list[str]) -> list[list[dict[str, Any]]]:
    return [json.loads(line) for line in lines if line == "[]" or line.startswith("[{")]


@pytest.fixture
def engine() -> Engine:
    engine = InProcess(Config(cancel_grace=0.5))
    return engine


# -- new ----------------------------------------------------------------------------


def test_new_default_kind_and_auto_names(run_taskd: RunTaskd) -> None:
    result = run_taskd("new\nnew\nnew tick 5\nnew idle --name idle-3\nnew\nshow --json\n")
    assert result.status == 0, result.err
    assert result.lines[:5] == [
        "started idle-1", "started idle-2", "started tick-1", "started idle-3", "started idle-4"
    ]
    (shown,) = json_lines(result.lines)
    assert [(t["name"], t["kind"]) for t in shown] == [
        ("idle-1", "idle"), ("idle-2", "idle"), ("tick-1", "tick"), ("idle-3", "idle"),
        ("idle-4", "idle"),
    ]


def test_new_name_forms(run_taskd: RunTaskd) -> None:
    longest = "n" * MAX_NAME
    result = run_taskd(f"new --name=a.b_c-1\nnew timer 9 --name é名2\nnew --name {longest}\n")
    assert result.status == 0, result.err
    assert result.lines == ["started a.b_c-1", "started é名2", f"started {longest}"]


def test_a_finished_name_can_be_used_again(run_taskd: RunTaskd) -> None:
    result = run_taskd("new timer 0 --name r\nwait r\nnew idle --name r\nshow --all --json\n")
    assert result.status == 0, result.err
    (shown,) = json_lines(result.lines)
    assert [(t["name"], t["kind"], t["state"]) for t in shown] == [("r", "idle", "running")]


async def test_new_in_process(engine: Engine) -> None:
    await engine.execute("new")
    await engine.execute("new tick 0.01 2 --name t")
    with pytest.raises(CommandError, match="already running"):
        await engine.execute("new --name t")
    assert engine.output.lines == ["started idle-1", "started t"]
    record = engine.registry.get("t")
    assert record is not None and record.task is not None
    assert record.task.get_name() == "t"  # the asyncio Task carries the same name
    await engine.execute("wait t")
    assert record.state is State.DONE and record.task is None  # the task is let go


# -- show ---------------------------------------------------------------------------


def test_show_table_and_all(run_taskd: RunTaskd) -> None:
    result = run_taskd(
        "show\nshow --all\nnew msg 'hello world' 1 0 --name m\nwait\nnew --name i\n"
        "new fail --name f\nwait f\nshow\nshow --all\n"
    )
    assert result.lines[0] == "no tasks"
    assert result.lines[1] == "no tasks, live or finished"
    tables = [i for i, line in enumerate(result.lines) if line.startswith("NAME ")]
    assert len(tables) == 2
    live = result.lines[tables[0] : tables[1]]
    assert re.fullmatch(r"NAME +KIND +STATE +AGE +DETAIL", live[0])
    assert [row.split()[:3] for row in live[1:]] == [["i", "idle", "running"]]
    full = result.lines[tables[1] :]
    rows = {row.split()[0]: row for row in full[1:]}
    assert set(rows) == {"m", "f", "i"}
    assert re.fullmatch(r"m +msg +done +\d+\.\d\ds +done", rows["m"])
    assert rows["f"].endswith("failed: TaskFailure: failed on purpose")


def test_show_detail_is_the_last_output_line(session: Callable[..., Session]) -> None:
    s = session()
    s.send("new tick 0.01 --name t")
    s.expect("[t] tick 2")
    s.send("show t")
    row = s.expect(lambda line: line.startswith("t "))
    assert re.fullmatch(r"t +tick +running +\S+ +tick \d+", row)
    s.close_stdin()
    assert s.finish() == 0


def test_show_json_is_one_line_with_the_fields(run_taskd: RunTaskd) -> None:
    result = run_taskd("new tick 0.01 1 --name t\nwait\nnew --name i\nshow --all --json\n")
    assert result.status == 0
    shown = json.loads(result.lines[-1])
    assert [t["name"] for t in shown] == ["t", "i"]
    for item in shown:
        assert {"name", "kind", "state", "started_at", "runtime_s"} <= set(item)
        started = datetime.fromisoformat(item["started_at"])
        assert started.utcoffset() is not None  # an ISO 8601 time with its zone
        assert isinstance(item["runtime_s"], float) and item["runtime_s"] >= 0
    assert shown[0]["state"] == "done" and shown[0]["last_output"] == "tick 1"
    assert shown[1]["state"] == "running"


def test_show_pattern(run_taskd: RunTaskd) -> None:
    result = run_taskd(
        "new --name web-1\nnew --name web-2\nnew --name db\nnew timer 0 --name web-old\n"
        "wait web-old\nshow --json web-*\nshow --all --json web-*\nshow --json db web-1\n"
    )
    assert result.status == 0, result.err
    names = [[t["name"] for t in shown] for shown in json_lines(result.lines)]
    assert names == [["web-1", "web-2"], ["web-old", "web-1", "web-2"], ["db", "web-1"]]


# -- cancel -------------------------------------------------------------------------


def test_cancel_names_and_globs(run_taskd: RunTaskd) -> None:
    result = run_taskd(
        "new --name a1\nnew --name a2\nnew --name b1\nnew --name c\n"
        "cancel a*\ncancel b1 c\nshow --all --json\n"
    )
    assert result.status == 0, result.err
    assert result.lines[4:8] == ["cancelled a1", "cancelled a2", "cancelled b1", "cancelled c"]
    assert {t["state"] for t in json_lines(result.lines)[-1]} == {"cancelled"}


def test_cancel_errors(run_taskd: RunTaskd) -> None:
    result = run_taskd(
        "new timer 0 --name t\nwait\ncancel t\ncancel nobody\ncancel t*\nnew --name x\n"
        "cancel x nobody\nshow --json\n"
    )
    *errors, end = result.errors
    assert end == "taskd: end cancelled 1 task: x"
    assert [e.split(": error: ", 1)[1] for e in errors] == [
        "task 't' has already ended (done)",
        "no task named 'nobody'",
        "no live task matches 't*'",
        "no task named 'nobody'",
    ]
    assert json_lines(result.lines)[-1][0]["state"] == "running"  # x was not cancelled


async def test_cancel_in_process(engine: Engine) -> None:
    await engine.execute("new --name a")
    await engine.execute("new --name b")
    await engine.execute("cancel *")
    assert engine.output.lines[-2:] == ["cancelled a", "cancelled b"]
    assert [r.state for r in engine.registry.records(True)] == [State.CANCELLED] * 2


async def test_cancel_stubborn_in_process_errs_and_stays_cancelling(engine: Engine) -> None:
    await engine.execute("new stubborn --name s")
    await engine.execute("sleep 0")
    with pytest.raises(CommandError, match=r"s did not stop within 0.5s \(still cancelling\)"):
        await engine.execute("cancel s")
    record = engine.registry.get("s")
    assert record is not None and record.state is State.CANCELLING
    # Stop it for good, so that the test's loop can close: a stubborn task only ends
    # when its coroutine is closed.
    assert record.task is not None
    record.task.get_coro().close()  # type: ignore[union-attr]


# -- wait, sleep ---------------------------------------------------------------------


def test_wait_all_and_names(run_taskd: RunTaskd) -> None:
    result = run_taskd(
        "new tick 0.01 2 --name a\nnew timer 0.01 --name b\nnew --name forever\n"
        "wait a b\nshow --all --json\n"
    )
    assert result.status == 0, result.err
    states = {t["name"]: t["state"] for t in json_lines(result.lines)[-1]}
    assert states == {"a": "done", "b": "done", "forever": "running"}
    result = run_taskd("new tick 0.01 2 --name a\nnew timer 0.02 --name b\nwait\nshow --json\n")
    assert result.status == 0 and json_lines(result.lines)[-1] == []


def test_wait_timeout_and_failure(run_taskd: RunTaskd) -> None:
    result = run_taskd(
        "new --name i\nwait i --timeout 0.01\nnew fail 0 bad --name f\nwait f\n"
    )
    *errors, end, last = result.errors
    assert end == "taskd: end cancelled 1 task: i"
    assert [e.split(": error: ", 1)[1] for e in errors] == [
        "timed out after 0.01s; still running: i",
        "1 task failed: f: TaskFailure: bad",
    ]
    assert last == "taskd: 1 task failed: f (TaskFailure: bad)"  # the script's last line


async def test_wait_in_process(engine: Engine) -> None:
    await engine.execute("new timer 0 --name t")
    await engine.execute("wait")
    assert engine.registry.get("t").state is State.DONE  # type: ignore[union-attr]
    await engine.execute("new --name i")
    with pytest.raises(CommandError, match="timed out after 0s; still running: i"):
        await engine.execute("wait --timeout 0")
    await engine.execute("new fail --name f")
    with pytest.raises(CommandError, match="1 task failed: f: TaskFailure"):
        await engine.execute("wait f")


def test_sleep_lets_tasks_run(run_taskd: RunTaskd) -> None:
    # The task is done or still running after the sleep; what matters is that `sleep`
    # pauses reading and the script carries on afterwards.
    result = run_taskd("new timer 0 --name t\nsleep 0.01\nshow --all --json\n")
    assert result.status == 0
    assert json_lines(result.lines)[-1][0]["name"] == "t"


async def test_sleep_in_process(engine: Engine) -> None:
    await engine.execute("new timer 0 --name t")
    await engine.execute("sleep 0")  # one turn of the loop: the task starts
    await engine.execute("sleep 0.001")
    record = engine.registry.get("t")
    assert record is not None
    await engine.execute("wait t")
    assert record.state is State.DONE


# -- log ----------------------------------------------------------------------------


def test_log_basic(run_taskd: RunTaskd, tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    result = run_taskd(
        f"log\nlog {path}\nlog\nnew tick 0.01 2 --name t\nwait\nlog off\nlog off\n"
        f"log {path} --json\nnew timer 0 --name j\nwait\n"
    )
    assert result.status == 0, result.err
    assert result.lines[0] == "not logging"
    assert result.lines[1] == f"logging to {path} (text)"
    assert result.lines[2].startswith(f"logging to {path} (text), ")
    assert any(line.startswith(f"stopped logging to {path}") for line in result.lines)
    text = path.read_text().splitlines()
    assert any(re.search(r" t started ", line) for line in text)
    assert any(line.endswith(" t output tick 2") for line in text)
    json_records = [json.loads(line) for line in text if line.startswith("{")]
    assert {"task": "j", "event": "done"} in [
        {"task": r["task"], "event": r["event"]} for r in json_records
    ]


# -- kinds, help, end ---------------------------------------------------------------


def test_kinds_lists_every_kind(run_taskd: RunTaskd) -> None:
    result = run_taskd("kinds\n")
    assert result.status == 0
    assert [line.split()[0] for line in result.lines] == list(BUILTINS)
    assert "tick [INTERVAL=1] [COUNT]" in result.out


def test_help_is_generated_from_the_table(run_taskd: RunTaskd) -> None:
    script = "help\n" + "".join(f"help {name}\n" for name in COMMANDS)
    result = run_taskd(script)
    assert result.status == 0, result.err
    assert result.lines[0] == "commands:"
    for command in COMMANDS.values():
        assert any(line.strip().startswith(command.usage) for line in result.lines[1:])
        assert f"usage: {command.usage}" in result.lines
    assert set(COMMANDS) >= {
        "new", "show", "cancel", "wait", "sleep", "log", "kinds", "help", "end"
    }
    usage = "usage: new [KIND] [ARG...] [--name NAME] [OPTION...]"
    assert help_text("new").splitlines()[0] == usage


async def test_end_in_process(engine: Engine) -> None:
    await engine.execute("end")
    assert engine.ending


# -- splitting ------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=" \t\r\n\x0b\x0c\x1c\x1f\x7f\x85\xa0\u3000'\"\\#a-é*", max_size=30))
def test_split_agrees_with_shlex(line: str) -> None:
    """The fast paths for lines without quotes must split exactly as shlex does
    (str.split() also splits on vertical tab, the separators, NEL, ideographic space)."""
    try:
        expected: list[str] | None = shlex.split(line, comments=False, posix=True)
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(CommandError, match="cannot split the line"):
            split(line)
    else:
        assert split(line) == expected


# -- a task that has just ended, before its done callback has run ----------------------
# `sleep 0` twice lets `timer 0`/`fail 0` finish in the same loop turn in which the next
# command runs, before asyncio has run the task's done callbacks: deterministic
# scheduling, not timing.


def test_cancel_of_a_task_that_just_ended_is_no_refusal(run_taskd: RunTaskd) -> None:
    result = run_taskd("new timer 0 --name t\nsleep 0\nsleep 0\ncancel t\n")
    assert "did not stop" not in result.err
    assert "t ended first: done" in result.lines or "task 't' has already ended" in result.err


def test_wait_for_a_task_that_just_failed_reports_it(run_taskd: RunTaskd) -> None:
    result = run_taskd("new fail 0 x --name f\nsleep 0\nsleep 0\nwait f\n")
    assert result.status == 1
    assert result.errors == [
        "<stdin>:4: error: 1 task failed: f: TaskFailure: x",
        "taskd: 1 task failed: f (TaskFailure: x)",  # a script's last line names them
    ]


async def test_just_ended_in_process(engine: Engine) -> None:
    await engine.execute("new fail 0 x --name f")
    await engine.execute("new timer 0 --name t")
    await engine.execute("sleep 0")
    await engine.execute("sleep 0")
    with pytest.raises(CommandError, match="1 task failed: f: TaskFailure: x"):
        await engine.execute("wait f")
    try:
        await engine.execute("cancel t")
    except CommandError as exc:
        assert "has already ended" in str(exc)
    assert engine.registry.get("t").state is State.DONE  # type: ignore[union-attr]


def test_name_of_a_task_that_just_ended_is_free(run_taskd: RunTaskd) -> None:
    result = run_taskd("new timer 0 --name t\nsleep 0\nsleep 0\nnew --name t\nshow --json\n")
    assert result.err == "taskd: end cancelled 1 task: t\n"
    assert [(t["name"], t["kind"]) for t in json_lines(result.lines)[-1]] == [("t", "idle")]


def test_show_of_a_task_that_just_ended_says_so(run_taskd: RunTaskd) -> None:
    result = run_taskd("new timer 0 --name t\nsleep 0\nsleep 0\nshow --all --json\n")
    assert [(t["name"], t["state"]) for t in json_lines(result.lines)[-1]] == [("t", "done")]


def test_show_by_name_includes_a_task_that_has_ended(run_taskd: RunTaskd) -> None:
    """A name asks for that task, however it ended; a pattern without --all matches
    live tasks only (and matching none is an error, as ever)."""
    result = run_taskd(
        "new timer 0 --name gone\nnew idle --name here\nwait gone\n"
        "show --json gone\nshow --json 'g*'\nshow --json --all 'g*'\n"
    )
    assert result.errors == [
        "<stdin>:5: error: no task matches 'g*'", "taskd: end cancelled 1 task: here"
    ]
    by_name, by_pattern = (json.loads(line) for line in result.lines if line.startswith("["))
    assert [(r["name"], r["state"]) for r in by_name] == [("gone", "done")]
    assert [(r["name"], r["state"]) for r in by_pattern] == [("gone", "done")]
