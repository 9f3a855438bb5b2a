"""The event log: its formats, switching, failures, back-pressure, and that nothing is lost.

In-process tests drive EventLog and Engine with real files on a real loop; the rest run
the real program (`python -m taskd`) and end it with `end`, end of input and real
signals, then read the log it left behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO

import pytest
from conftest import InProcess, taskd_command
from hypothesis import example, given
from hypothesis import strategies as st

from taskd import eventlog
from taskd.config import Config
from taskd.engine import Engine
from taskd.eventlog import EventLog
from taskd.events import Event
from taskd.logformat import JsonFormat, TextFormat, _Clock

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00"
TEXT_LINE = re.compile(rf"^({STAMP}) (\S+) (\S+)(?: (.*))?$")


def event(task: str, name: str, **fields: object) -> Event:
    return Event(task, name, dict(fields))


def parse_text(path: Path) -> list[tuple[str, str, str]]:
    """(task, event, detail) per line; fails on any line that is not whole and well formed."""
    data = path.read_text(encoding="utf-8")
    assert data.endswith("\n"), "the log ends with a partial line"
    rows = []
    for line in data.split("\n")[:-1]:
        match = TEXT_LINE.match(line)
        assert match, f"malformed line {line!r}"
        rows.append((match[2], match[3], match[4] or ""))
    return rows


def parse_json(path: Path) -> list[dict[str, object]]:
    data = path.read_text(encoding="utf-8")
    assert data.endswith("\n"), "the log ends with a partial line"
    return [json.loads(line) for line in data.split("\n")[:-1]]


# -- formats -----------------------------------------------------------------------


def test_text_line_starts_with_time_and_task_even_for_traceback_lines() -> None:
    fmt = TextFormat()
    failed = event(
        "job-1",
        "failed",
        error="ValueError: bad",
        traceback="Traceback:\n  line 1\nValueError: bad\n",
        runtime_s=0.5,
    )
    lines = fmt(failed).splitlines()
    assert len(lines) == 4
    for line in lines:
        match = TEXT_LINE.match(line)
        assert match and match[2] == "job-1", line
    assert lines[0].endswith(" job-1 failed ValueError: bad runtime_s=0.5")
    assert [line.split(" ", 3)[2] for line in lines[1:]] == ["traceback"] * 3
    assert lines[3].endswith("traceback ValueError: bad")


def test_text_detail_of_each_event() -> None:
    fmt = TextFormat()
    cases = {
        event("t", "output", text="hello  world"): "t output hello  world",
        event(
            "t", "started", kind="msg", args=["a b", "2"]
        ): 't started kind=msg args=["a b", "2"]',
        event("t", "done", runtime_s=1.25, result="42"): "t done runtime_s=1.25 result=42",
        event("t", "cancel-refused", grace_s=2.0): "t cancel-refused grace_s=2.0",
        event("taskd", "daemon-end", status=0): "taskd daemon-end status=0",
        event("t", "output", text="two\nlines"): "t output two\\nlines",
    }
    for ev, tail in cases.items():
        line = fmt(ev)
        assert line.endswith(tail + "\n") and line.count("\n") == 1, line


def test_timestamps_are_iso_milliseconds_of_the_event_time() -> None:
    fmt, jfmt = TextFormat(), JsonFormat()
    for ts in (0.0, 1.9995, 1_700_000_000.0, 1_700_000_000.999, 1_800_000_123.4567):
        ev = event("t", "output", text="x")
        ev.ts = ts
        stamp = fmt(ev).split(" ", 1)[0]
        assert json.loads(jfmt(ev))["ts"] == stamp
        assert re.fullmatch(STAMP, stamp)
        assert 0 <= ts - datetime.fromisoformat(stamp).timestamp() < 0.001


def test_json_lines_carry_the_events_fields() -> None:
    fmt = JsonFormat()
    out = json.loads(fmt(event("t", "output", text='a "quoted"\nline é')))
    assert out == {"ts": out["ts"], "task": "t", "event": "output", "text": 'a "quoted"\nline é'}
    ev = event("t", "failed", error="E: x", traceback="T\nE: x\n", runtime_s=0.25)
    record = json.loads(fmt(ev))
    assert list(record)[:3] == ["ts", "task", "event"]
    assert record["traceback"] == "T\nE: x\n" and record["runtime_s"] == 0.25


# -- the writer, in process --------------------------------------------------------


def reports() -> tuple[list[str], Callable[[str], None]]:
    said: list[str] = []
    return said, said.append


async def open_log(path: Path, fmt: str = "text") -> tuple[EventLog, list[str]]:
    said, report = reports()
    log = EventLog(str(path), fmt, report)
    await log.open()
    return log, said


async def test_appends_never_truncates(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_text("earlier line\n")
    log, said = await open_log(path)
    log(event("t", "output", text="new"))
    await log.aclose()
    assert path.read_text().splitlines()[0] == "earlier line"
    assert path.read_text().splitlines()[1].endswith(" t output new")
    assert log.written == 1 and not said


async def test_flush_waits_for_the_disk_and_counts_exactly(tmp_path: Path) -> None:
    log, _ = await open_log(tmp_path / "x.log")
    for n in range(1000):
        log(event("t", "output", text=str(n)))
    await log.flush()
    assert log.written == 1000
    assert len((tmp_path / "x.log").read_text().splitlines()) == 1000
    await log.aclose()


async def test_back_pressure_bounds_the_queue_and_keeps_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(eventlog, "BATCH", 50)
    monkeypatch.setattr(eventlog, "HIGH_WATER", 100)
    log, said = await open_log(tmp_path / "x.log")
    most = 0
    for n in range(5000):  # never yielding: the writer task cannot run meanwhile
        log(event("t", "output", text=str(n)))
        most = max(most, log.queued)
    await log.aclose()
    assert most < 100
    rows = parse_text(tmp_path / "x.log")
    assert [int(detail) for _, _, detail in rows] == list(range(5000))
    assert not said


async def test_a_disk_that_pauses_longer_than_a_reader_may_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loaded machine's disk can take nothing for a second (it did, in CI): a
    regular file is given DISK_PATIENCE, not the STALLED of a FIFO's reader."""
    monkeypatch.setattr(eventlog, "BATCH", 50)
    monkeypatch.setattr(eventlog, "HIGH_WATER", 100)
    real_write = os.write
    paused = threading.Event()

    def pausing_write(fd: int, data: bytes | memoryview) -> int:
        if threading.current_thread().name.startswith(eventlog.THREAD_NAME) and not paused.is_set():
            paused.set()
            time.sleep(eventlog.STALLED * 3)  # the disk's pause, inside a write
        return real_write(fd, data)

    log, said = await open_log(tmp_path / "x.log")
    monkeypatch.setattr(eventlog.os, "write", pausing_write)
    for n in range(5000):  # never yielding: back-pressure waits through the pause
        log(event("t", "output", text=str(n)))
    await log.aclose()
    monkeypatch.undo()
    assert paused.is_set()
    assert not said and log.stalled == 0 and log.written == 5000
    rows = parse_text(tmp_path / "x.log")
    assert [int(detail) for _, _, detail in rows] == list(range(5000))


async def test_a_full_disk_is_reported_once_and_logging_stops() -> None:
    log, said = await open_log(Path("/dev/full"))
    for n in range(3):
        log(event("t", "output", text=str(n)))
        await log.flush()
    log(event("t", "output", text="more"))
    await log.aclose()
    assert len(said) == 1 and "/dev/full" in said[0] and "No space left" in said[0]
    assert log.failure and log.written == 0 and log.lost == 4


async def test_a_full_disk_under_back_pressure_is_reported_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batches handed to the log's thread without waiting (back-pressure overlaps
    the writing of one batch with the formatting of the next) still fail loudly."""
    monkeypatch.setattr(eventlog, "BATCH", 50)
    monkeypatch.setattr(eventlog, "HIGH_WATER", 100)
    log, said = await open_log(Path("/dev/full"))
    for n in range(500):  # never yielding: every batch goes through back-pressure
        log(event("t", "output", text=str(n)))
    await log.aclose()
    assert len(said) == 1 and "No space left" in said[0]
    assert log.failure and log.written == 0 and log.lost == 500


def test_a_text_line_with_odd_characters_stays_one_line() -> None:
    fmt = TextFormat()
    line = fmt(event("t", "output", text="a\rb\nc\td\x07"))
    assert line.endswith(" t output a\\rb\\nc\td\x07\n") and line.count("\n") == 1
    stamp = line.split(" ")[0]
    again = fmt(Event("u", "output", {"text": "x"}))  # the same millisecond, or the next
    assert TEXT_LINE.match(again.rstrip("\n")) and again.split(" ")[0] >= stamp


@given(st.lists(st.floats(min_value=-5.0, max_value=4e9, allow_nan=False), max_size=30))
@example([-1.0])  # the second before 1970 was once mistaken for "no second yet"
def test_the_text_stamp_is_the_clocks_stamp(times: list[float]) -> None:
    """The text format keeps the last millisecond's stamp: never a wrong one."""
    fmt, clock = TextFormat(), _Clock()
    for ts in sorted(times) + times + [t + 0.0004 for t in times]:
        fmt(Event("t", "output", {"text": "x"}))  # now: the cached stamp moves away
        probe = Event("t", "output", {"text": "x"})
        probe.ts = ts
        line = fmt(probe)
        assert line == f"{clock.stamp(ts)} t output x\n"


async def test_a_deleted_folder_is_detected(tmp_path: Path) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    log, said = await open_log(folder / "x.log")
    log(event("t", "output", text="kept"))
    await log.flush()
    assert log.written == 1 and not said
    shutil.rmtree(folder)
    log(event("t", "output", text="into the void"))
    await log.flush()
    log(event("t", "output", text="and more"))
    await log.aclose()
    assert len(said) == 1 and "deleted" in said[0], said
    assert log.failure and log.lost == 2


async def test_a_renamed_file_keeps_being_written(tmp_path: Path) -> None:
    log, said = await open_log(tmp_path / "x.log")
    log(event("t", "output", text="one"))
    await log.flush()
    (tmp_path / "x.log").rename(tmp_path / "x.log.1")
    log(event("t", "output", text="two"))
    await log.aclose()
    assert not said and log.written == 2
    assert [d for _, _, d in parse_text(tmp_path / "x.log.1")] == ["one", "two"]


async def test_logging_goes_on_while_the_default_executor_is_full(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    release = threading.Event()
    busy = [loop.run_in_executor(None, release.wait) for _ in range(64)]
    try:
        log, said = await open_log(tmp_path / "x.log")
        log(event("t", "output", text="through"))
        await log.aclose()
        assert log.written == 1 and not said
        assert not any(f.done() for f in busy)  # the pool really was full all along
    finally:
        release.set()
        await asyncio.gather(*busy)


async def test_the_log_thread_is_gone_after_close(tmp_path: Path) -> None:
    log, _ = await open_log(tmp_path / "x.log")
    log(event("t", "output", text="x"))
    await log.aclose()
    for thread in threading.enumerate():
        if thread.name.startswith(eventlog.THREAD_NAME):
            thread.join(10)  # shut down without waiting; it leaves once idle
            assert not thread.is_alive()


# -- switching, through the engine ---------------------------------------------------


@pytest.mark.parametrize(
    "target", ["missing/x.log", "a-file/x.log", "."], ids=["no-folder", "not-a-folder", "dir"]
)
async def test_a_failed_switch_is_an_error_and_the_old_log_stays(
    tmp_path: Path, target: str
) -> None:
    (tmp_path / "a-file").write_text("")
    engine = Engine(Config())
    await engine.start_log(str(tmp_path / "a.log"), "text")
    with pytest.raises(Exception) as caught:
        await engine.start_log(str(tmp_path / target), "text")
    assert type(caught.value).__name__ == "CommandError"
    assert "cannot log to" in str(caught.value)
    engine.bus.emit("t", "output", {"text": "still here"})
    assert engine.log is not None and engine.log.path == str(tmp_path / "a.log")
    assert await engine.stop_log() == f"stopped logging to {tmp_path / 'a.log'} (1 event written)"
    assert parse_text(tmp_path / "a.log") == [("t", "output", "still here")]


async def test_switching_closes_the_old_log_first_and_loses_nothing(tmp_path: Path) -> None:
    engine = InProcess(Config())
    await engine.start_log(str(tmp_path / "a.log"), "text")
    for n in range(100):
        engine.bus.emit("t", "output", {"text": str(n)})
    old = engine.log
    await engine.start_log(str(tmp_path / "a.log"), "json")  # the same file, another format
    assert old is not None and old.written == 100
    for n in range(100, 200):
        engine.bus.emit("t", "output", {"text": str(n)})
    await engine.stop_log()
    lines = (tmp_path / "a.log").read_text().splitlines()
    texts = [line.rsplit(" ", 1)[1] for line in lines[:100]]
    texts += [json.loads(line)["text"] for line in lines[100:]]
    assert texts == [str(n) for n in range(200)]


# -- the real program --------------------------------------------------------------


WATCHDOG = 60.0  # seconds: a safety bound for a hung child, never what makes a test pass
_watchdogs: dict[int, threading.Timer] = {}


def spawn(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        taskd_command(*args),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    watchdog = threading.Timer(WATCHDOG, proc.kill)  # a kill ends read_until with EOF
    watchdog.daemon = True
    watchdog.start()
    _watchdogs[proc.pid] = watchdog
    return proc


def send(proc: subprocess.Popen[bytes], text: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(text.encode())
    proc.stdin.flush()


def read_until(stream: IO[bytes] | None, wanted: Callable[[str], bool]) -> list[str]:
    """Lines of STREAM up to and with the first one WANTED accepts (EOF fails)."""
    assert stream is not None
    seen = []
    for raw in stream:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        seen.append(line)
        if wanted(line):
            return seen
    raise AssertionError(f"stream ended before the line; the last: {seen[-5:]}")


def finish(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    """Read stdout to its end, wait for the exit; stdin stays open until then."""
    assert proc.stdout is not None and proc.stderr is not None
    err: list[bytes] = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    proc.stdout.read()
    status = proc.wait(timeout=WATCHDOG * 2)
    reader.join(WATCHDOG)
    _watchdogs.pop(proc.pid).cancel()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    return status, b"".join(err).decode("utf-8", "replace")


FAST = 4  # tasks printing as fast as they can


def check_nothing_lost(rows: list[tuple[str, str, str]]) -> None:
    """Each tick task: started, then tick 1..k without a gap, then its end; daemon last."""
    assert rows[0][:2] == ("taskd", "daemon-start")
    assert rows[-1][:2] == ("taskd", "daemon-end")
    for n in range(1, FAST + 1):
        mine = [(ev, detail) for task, ev, detail in rows if task == f"t{n}"]
        assert mine[0][0] == "started"
        assert mine[-1][0] == "cancelled", mine[-3:]
        ticks = mine[1:-1]
        assert all(ev == "output" for ev, _ in ticks)
        assert [detail for _, detail in ticks] == [f"tick {k}" for k in range(1, len(ticks) + 1)]
        assert len(ticks) >= 2000


ENDINGS: dict[str, tuple[Callable[[subprocess.Popen[bytes]], None], int]] = {
    "end": (lambda p: send(p, "end\n"), 0),
    "eof": (lambda p: p.stdin.close() if p.stdin else None, 0),
    "SIGTERM": (lambda p: os.kill(p.pid, signal.SIGTERM), 128 + signal.SIGTERM),
    "SIGINT": (lambda p: os.kill(p.pid, signal.SIGINT), 128 + signal.SIGINT),
    "SIGHUP": (lambda p: os.kill(p.pid, signal.SIGHUP), 128 + signal.SIGHUP),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_every_event_is_on_disk_however_taskd_ends(
    env: dict[str, str], tmp_path: Path, ending: str
) -> None:
    path = tmp_path / "run.log"
    proc = spawn(env, "--log", str(path))
    send(proc, "".join(f"new tick 0 --name t{n}\n" for n in range(1, FAST + 1)))
    read_until(proc.stdout, lambda line: line == f"[t{FAST}] tick 2000")
    stop, expected = ENDINGS[ending]
    stop(proc)
    status, err = finish(proc)
    assert status == expected, err
    check_nothing_lost(parse_text(path))


def test_every_json_event_is_on_disk_after_sigterm(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    proc = spawn(env, "--log", str(path), "--log-json")
    send(proc, "".join(f"new tick 0 --name t{n}\n" for n in range(1, FAST + 1)))
    read_until(proc.stdout, lambda line: line == f"[t{FAST}] tick 2000")
    os.kill(proc.pid, signal.SIGTERM)
    status, err = finish(proc)
    assert status == 128 + signal.SIGTERM, err
    rows = [(r["task"], r["event"], str(r.get("text", ""))) for r in parse_json(path)]
    check_nothing_lost(rows)  # type: ignore[arg-type]


def test_every_kind_of_event_arrives(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("cancel_grace = 0.2\n")
    path = tmp_path / "x.jsonl"
    proc = spawn(env, "--config", str(config))
    send(
        proc,
        f"log {path} --json\n"
        "new msg hi 2 0 --name m\nnew fail 0 boom --name f\nnew idle --name i\n"
        "new stubborn --name s\nwait m\ncancel i\nlog\n",
    )
    read_until(proc.stdout, lambda line: line.startswith("logging to ") and "written" in line)
    send(proc, "end\n")
    status, err = finish(proc)
    assert status == 1, err  # f failed: a script with a failed task exits 1 (issue 11)
    assert "taskd: 1 task failed: f (TaskFailure: boom)" in err
    records = parse_json(path)
    seen = {(r["task"], r["event"]) for r in records}
    for wanted in [
        ("m", "started"),
        ("m", "output"),
        ("m", "done"),
        ("f", "failed"),
        ("i", "cancelled"),
        ("s", "cancel-refused"),
        ("taskd", "daemon-end"),
    ]:
        assert wanted in seen, wanted
    failed = next(r for r in records if r["event"] == "failed")
    assert failed["error"] == "TaskFailure: boom" and "Traceback" in str(failed["traceback"])
    started = next(r for r in records if r["task"] == "m" and r["event"] == "started")
    assert started["kind"] == "msg" and started["args"] == ["hi", "2", "0"]
    assert records[-1]["event"] == "daemon-end"


def test_log_commands_in_a_real_session(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_text("from before\n")
    proc = spawn(env, "--log", str(path))
    send(proc, "new msg hi 3 0 --name m\nwait\nlog\n")
    said = read_until(proc.stdout, lambda line: line.startswith("logging to"))
    # daemon-start, started, 3 output, done: all on disk when `log` answers
    assert said[-1] == f"logging to {path} (text), 6 events written"
    send(proc, f"log {tmp_path}\nlog off\nlog\nend\n")
    status, err = finish(proc)
    assert status == 1  # the failed switch is a failed command
    assert err.splitlines() == [f"<stdin>:4: error: cannot log to '{tmp_path}': it is a directory"]
    lines = path.read_text().splitlines()
    assert lines[0] == "from before" and len(lines) == 7
    assert [TEXT_LINE.match(line)[3] for line in lines[1:]] == [  # type: ignore[index]
        "daemon-start",
        "started",
        "output",
        "output",
        "output",
        "done",
    ]


def test_a_full_disk_in_a_real_session_is_one_line_and_taskd_goes_on(env: dict[str, str]) -> None:
    proc = spawn(env, "--log", "/dev/full")
    send(proc, "new msg hi 50 0 --name m\nwait\nlog\nnew msg again 1 0\nwait\nend\n")
    status, err = finish(proc)
    assert status == 0
    assert len(err.splitlines()) == 1, err
    assert err.startswith("taskd: log /dev/full: writing failed: No space left on device")


def test_a_deleted_folder_in_a_real_session(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    proc = spawn(env, "--log", str(folder / "x.log"))
    send(proc, "new msg one 1 0 --name a\nwait\nlog\n")
    read_until(proc.stdout, lambda line: line.startswith("logging to"))
    shutil.rmtree(folder)
    send(proc, "new msg two 1 0 --name b\nwait\nlog\n")
    said = read_until(proc.stdout, lambda line: line.startswith("logging to"))
    assert "writing failed (the file was deleted" in said[-1]
    send(proc, "new msg three 1 0 --name c\nwait\nend\n")
    status, err = finish(proc)
    assert status == 0
    assert len(err.splitlines()) == 1 and "deleted" in err, err


async def test_a_switch_cancelled_midway_still_closes_the_old_log(tmp_path: Path) -> None:
    engine = Engine(Config())
    await engine.start_log(str(tmp_path / "a.log"), "text")
    old = engine.log
    assert old is not None
    release = threading.Event()
    old._executor.submit(release.wait)  # the old log's disk is stuck for now
    try:
        for n in range(1000):
            engine.bus.emit("t", "output", {"text": str(n)})
        switching = asyncio.create_task(engine.start_log(str(tmp_path / "b.log"), "text"))
        for _ in range(100_000):  # until the new log has taken over (a safety bound only)
            if engine.log is not old:
                break
            await asyncio.sleep(0)
        switching.cancel()  # a signal, as `log FILE` runs
        await asyncio.wait({switching})
        engine.bus.emit("t", "output", {"text": "after"})
        new = engine.log
        assert new is not None
        stopping = asyncio.create_task(engine.stop_log())
        await new.aclose()  # the same closing as stop_log's, awaited here too
        for _ in range(20):  # more loop turns than stop_log needs to return after it
            await asyncio.sleep(0)
        assert not stopping.done()  # stop_log waits for the old log, still closing
        release.set()
        await stopping
        assert [int(d) for _, _, d in parse_text(tmp_path / "a.log")] == list(range(1000))
        assert parse_text(tmp_path / "b.log") == [("t", "output", "after")]
    finally:
        release.set()


def test_logging_goes_on_while_blocking_tasks_fill_the_default_pool(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "x.log"
    proc = spawn(env, "--log", str(path))
    send(proc, "".join(f"new blocking 3600 --name b{n}\n" for n in range(32)))
    send(proc, "new msg hi 3 0 --name m\nwait m\nlog\n")
    said = read_until(proc.stdout, lambda line: line.startswith("logging to"))
    # daemon-start, 32 started + 32 outputs, m: started, 3 outputs, done
    assert said[-1] == f"logging to {path} (text), 70 events written"
    send(proc, "end\n")
    status, err = finish(proc)
    assert status == 0
    assert "abandoned 32 executor threads" in err
    rows = parse_text(path)
    assert rows[-1][:2] == ("taskd", "daemon-end")
    assert sum(1 for _, ev, _ in rows if ev == "cancelled") == 32


async def test_a_slow_reader_slows_the_loop_instead_of_filling_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(eventlog, "BATCH", 50)
    monkeypatch.setattr(eventlog, "HIGH_WATER", 100)
    fifo = tmp_path / "slow-disk"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def slow_reader() -> None:  # a disk far slower than the tasks: 4 KiB a millisecond
        with fifo.open("rb") as f:
            while chunk := f.read(4096):
                received.append(chunk)
                time.sleep(0.001)

    reader = threading.Thread(target=slow_reader)
    reader.start()
    try:
        log, said = await open_log(fifo)
        most = 0
        padding = "x" * 200
        for n in range(5000):  # 1.2 MB, far more than the pipe holds
            log(event("t", "output", text=f"{n} {padding}"))
            most = max(most, log.queued)
            await asyncio.sleep(0)  # the task yields, as tasks do
        await log.aclose()
    finally:
        reader.join(WATCHDOG)
    assert not said and log.written == 5000
    assert most < 100 and log.waits > 0
    lines = b"".join(received).decode().splitlines()
    assert [int(line.split(" ")[3]) for line in lines] == list(range(5000))


def test_the_config_keys_open_the_log_at_start(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "from-config.jsonl"
    path.write_text('{"earlier": true}\n')
    config = tmp_path / "c.toml"
    config.write_text(f'log_file = {json.dumps(str(path))}\nlog_format = "json"\n')
    proc = spawn(env, "--config", str(config))
    send(proc, "new msg hi 1 0 --name m\nwait\nlog\nend\n")
    said = read_until(proc.stdout, lambda line: line.startswith("logging to"))
    assert said[-1] == f"logging to {path} (json), 4 events written"
    status, err = finish(proc)
    assert status == 0, err
    records = parse_json(path)
    assert records[0] == {"earlier": True}  # appended, not truncated
    assert [r["event"] for r in records[1:]] == [
        "daemon-start",
        "started",
        "output",
        "done",
        "daemon-end",
    ]
