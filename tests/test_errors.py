"""Every class of bad input: one error line, nothing changed, no traceback."""

from __future__ import annotations

import json
import re

import pytest
from conftest import InProcess, RunTaskd

from taskd.config import Config
from taskd.errors import CommandError

LONG = "x" * 65
BAD_LINES: list[tuple[str, bytes, str]] = [
    ("unknown command", b"shwo", r"unknown command 'shwo' \(did you mean 'show'\?\)"),
    ("another tool's word", b"quit", r"unknown command 'quit' \(did you mean 'end'\?\)"),
    ("unknown command, far", b"frobnicate", r"unknown command 'frobnicate'; 'help' lists"),
    ("missing argument", b"sleep", r"sleep: missing arguments \(usage: sleep SECONDS\)"),
    ("too many arguments", b"kinds all", r"kinds: too many arguments \(usage: kinds \[--json\]\)"),
    ("unknown option", b"show --bogus", r"show: unknown option '--bogus' \(usage: show "),
    ("flag with a value", b"show --all=yes", r"show: --all takes no value \(usage: show "),
    ("option without value", b"new idle --name", r"new: --name needs a value \(usage: new "),
    ("kind arguments", b"new idle extra", r"idle takes at most 0 arguments \(usage: idle\)"),
    ("kind missing argument", b"new timer", r"timer needs SECONDS \(usage: timer SECONDS\)"),
    ("unknown task", b"cancel ghost", r"no task named 'ghost'"),
    ("pattern matches none", b"cancel gh*", r"no task matches 'gh\*'"),
    ("unknown task in wait", b"wait ghost", r"no task named 'ghost'"),
    ("unknown kind", b"new tik", r"unknown kind 'tik' \(did you mean 'tick'\?\)"),
    ("unknown kind, far", b"new zzzzzz", r"unknown kind 'zzzzzz'; 'kinds' lists them"),
    ("name too long", f"new --name {LONG}".encode(), r"task name too long \(65 characters"),
    ("name bad chars", b"new --name 'a b'", r"invalid task name 'a b': use letters"),
    ("name glob chars", b"new --name 'a*'", r"invalid task name 'a\*'"),
    # `cancel --all` reads as an option: a task so named could not be named again.
    ("name like an option", b"new --name=--all",
     r"invalid task name '--all': start it with a letter, a digit or '_'"),
    ("name like a folder", b"new --name ..", r"invalid task name '\.\.': start it with a"),
    ("name empty", b"new --name ''", r"a task name cannot be empty"),
    ("name empty with =", b"new --name=", r"a task name cannot be empty"),
    ("negative", b"new tick -1", r"INTERVAL: expected seconds >= 0, got '-1'"),
    # Its children are made at once, in one step: a huge N held the loop and grew.
    ("too many children", b"new gather 10001",
     r"N: expected a whole number from 1 to 10,000, got '10001'"),
    ("NaN", b"new timer nan", r"SECONDS: expected a finite number, got 'nan'"),
    ("infinite", b"new timer inf", r"SECONDS: expected a finite number, got 'inf'"),
    ("-infinite", b"sleep -inf", r"SECONDS: expected a finite number, got '-inf'"),
    ("not a number", b"new timer soon", r"SECONDS: expected a number, got 'soon'"),
    ("zero count", b"new tick 1 0", r"COUNT: expected a whole number >= 1, got '0'"),
    ("fractional count", b"new msg hi 1.5", r"COUNT: expected a whole number >= 1, got '1.5'"),
    ("probability", b"new search 0", r"P: expected a probability in \(0, 1\], got '0'"),
    ("bad timeout", b"wait --timeout -2", r"--timeout: expected seconds >= 0, got '-2'"),
    ("undecodable bytes", b"new idle --name \xff\xfe", r"not valid UTF-8 \(byte 0xff at col"),
    ("unterminated quote", b"new msg 'oops", r"cannot split the line: No closing quotation"),
    ("200 KB line", b"new msg " + b"y" * 200_000, r"line too long \(200008 bytes; the limit is"),
    ("help of nothing", b"help bogus", r"unknown command 'bogus'"),
]


@pytest.mark.parametrize(
    ("line", "message"), [case[1:] for case in BAD_LINES], ids=[case[0] for case in BAD_LINES]
)
@pytest.mark.parametrize("via", ["pipe", "file"])
def test_bad_line_one_error_nothing_changed(
    run_taskd: RunTaskd, line: bytes, message: str, via: str
) -> None:
    result = run_taskd(b"# first line\n" + line + b"\nshow --all --json\n", via=via)
    source = "<stdin>" if via == "pipe" else re.escape(str(result.source))
    assert result.status == 1
    assert len(result.errors) == 1, result.err
    assert re.fullmatch(rf"{source}:2: error: {message}.*", result.errors[0]), result.errors[0]
    assert json.loads(result.lines[-1]) == []  # nothing was created
    assert "Traceback" not in result.err


def test_duplicate_name_changes_nothing(run_taskd: RunTaskd) -> None:
    result = run_taskd("new idle --name d\nnew tick 1 --name d\nshow --json\n")
    assert result.errors == [
        "<stdin>:2: error: a task named 'd' is already running", "taskd: end cancelled 1 task: d"
    ]
    assert [(t["name"], t["kind"]) for t in json.loads(result.lines[-1])] == [("d", "idle")]


def test_cancel_of_finished_task_is_an_error(run_taskd: RunTaskd) -> None:
    result = run_taskd("new timer 0 --name t\nwait t\ncancel t\n")
    assert result.errors == ["<stdin>:3: error: task 't' has already ended (done)"]


def test_wait_timeout_is_an_error(run_taskd: RunTaskd) -> None:
    result = run_taskd("new idle --name i\nwait --timeout 0\nshow --json\n")
    assert result.errors == [
        "<stdin>:2: error: timed out after 0s; still running: i", "taskd: end cancelled 1 task: i"
    ]
    assert json.loads(result.lines[-1])[0]["state"] == "running"


def test_hostile_tokens_stay_on_one_line(run_taskd: RunTaskd) -> None:
    result = run_taskd("cancel 'a\\nb\x1b[31m'\nnew $'x\\ny'\n")
    assert len(result.errors) == 2
    assert all("\x1b" not in e for e in result.errors)


# -- in-process: the same errors from Engine.execute ------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [(c[1].decode(), c[2]) for c in BAD_LINES if c[0] not in ("undecodable bytes", "200 KB line")],
    ids=[c[0] for c in BAD_LINES if c[0] not in ("undecodable bytes", "200 KB line")],
)
async def test_engine_raises_command_error(line: str, message: str) -> None:
    engine = InProcess(Config())
    with pytest.raises(CommandError) as caught:
        await engine.execute(line)
    assert re.fullmatch(message + ".*", str(caught.value))
    assert "\n" not in str(caught.value)
    assert list(engine.registry.records(True)) == []
    assert engine.output.lines == []
