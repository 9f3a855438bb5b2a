"""Shell tasks own their whole session (issue 14, item 11): tools that make a process
group of their own (GNU timeout) are killed too, and a `setsid` grandchild that keeps
the output pipe does not keep the task running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import RunTaskd, Session

from taskd.kinds import _sessions, processes

DEADLINE = 30.0


def session_members(sid: int) -> list[int]:
    """Live (not zombie) processes whose session id (field 6 of /proc/PID/stat) is SID."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if int(fields[3]) == sid and fields[0] != b"Z":
            found.append(int(entry))
    return found


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


@pytest.fixture
def reaper() -> Iterator[list[int]]:
    """Session ids to SIGKILL at teardown, whatever the test found."""
    sids: list[int] = []
    yield sids
    for sid in sids:
        for pid in session_members(sid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def start_timeout_task(session: Callable[..., Session], reaper: list[int]) -> tuple[Session, int]:
    """taskd with a shell task running `timeout 100 sleep 64`; the task's session id."""
    s = session()
    s.send("new shell 'echo $$; timeout 100 sleep 64' --name t")
    sid = int(s.expect(lambda line: line.startswith("[t] ")).removeprefix("[t] "))
    reaper.append(sid)
    # timeout has made a group of its own inside the session, and started sleep.
    wait_until(lambda: "sleep" in {comm(p) for p in session_members(sid)}, "sleep started")
    groups = {os.getpgid(p) for p in session_members(sid)}
    assert len(groups) == 2, "timeout should be in a process group of its own"
    return s, sid


def test_end_kills_the_whole_session(
    session: Callable[..., Session], reaper: list[int]
) -> None:
    s, sid = start_timeout_task(session, reaper)
    s.send("end")
    s.close_stdin()
    assert s.finish() == 0
    assert not any("abandoned" in line for line in s.err), s.err
    # No orphan: timeout and sleep are gone too (SIGKILLed; the kernel ends them).
    wait_until(lambda: session_members(sid) == [], "the session's processes died")


def test_cancel_kills_the_whole_session(
    session: Callable[..., Session], reaper: list[int]
) -> None:
    s, sid = start_timeout_task(session, reaper)
    s.send("cancel t")
    s.expect("cancelled t")
    # SIGKILL has been sent to every member; their exits are the kernel's to finish
    # (on a loaded machine one was still there when the reply came): none survives.
    wait_until(lambda: session_members(sid) == [], "the session's processes died")
    s.close_stdin()
    assert s.finish() == 0


def test_a_setsid_grandchild_holding_the_pipe_does_not_keep_the_task_running(
    run_taskd: RunTaskd, tmp_path: Path
) -> None:
    pidfile = tmp_path / "escaped.pid"
    escape = tmp_path / "escape.sh"
    escape.write_text(f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 60' &\necho leader done\n")
    try:
        result = run_taskd(f"new shell 'sh {escape}' --name s\nwait s --timeout 20\n"
                           "show --all --json\n")
        assert result.status == 0, result.err
        assert "[s] leader done" in result.lines
        shown = json.loads(result.lines[-1])
        assert [(t["name"], t["state"]) for t in shown] == [("s", "done")]
    finally:
        wait_until(lambda: pidfile.exists() and pidfile.read_text().strip() != "", "pid file")
        escaped = int(pidfile.read_text())
        if comm(escaped) == "sleep":
            os.kill(escaped, signal.SIGKILL)


def test_kill_groups_kills_whole_sessions(reaper: list[int]) -> None:
    child = subprocess.Popen(
        ["sh", "-c", "timeout 100 sleep 64 & echo $!; wait"],
        stdout=subprocess.PIPE, start_new_session=True,
    )
    reaper.append(child.pid)
    try:
        assert child.stdout is not None
        timeout_pid = int(child.stdout.readline())
        wait_until(lambda: os.getpgid(timeout_pid) == timeout_pid, "timeout's own group")
        _sessions.SESSIONS.add(child.pid)
        assert processes.kill_groups() == 1
        assert child.wait(DEADLINE) == -signal.SIGKILL
        wait_until(lambda: session_members(child.pid) == [], "the whole session killed")
        assert not _sessions.SESSIONS
    finally:
        if child.stdout is not None:
            child.stdout.close()
        if child.poll() is None:
            child.kill()
            child.wait()
