"""Exit statuses, and the promise that `end` is bounded whatever the tasks do."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import RunTaskd, Session

GRACE = 0.5


def alive(pid: int) -> bool:
    """True while PID exists and is not a zombie (a zombie is dead, just not reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_status_0_when_every_command_worked(run_taskd: RunTaskd) -> None:
    assert run_taskd("new timer 0\nwait\n").status == 0


def test_status_1_when_a_command_failed(run_taskd: RunTaskd) -> None:
    result = run_taskd("new timer 0\nbogus\nnew timer 0\n")
    assert result.status == 1
    assert result.lines.count("started timer-1") == 1
    assert "started timer-2" in result.lines  # processing went on


def test_status_2_for_usage_and_config(run_taskd: RunTaskd, tmp_path: Path) -> None:
    assert run_taskd("", "--no-such-option").status == 2
    assert run_taskd("", str(tmp_path / "missing.tdc")).status == 2
    assert run_taskd("", "--config", str(tmp_path / "missing.toml")).status == 2


def test_end_stops_reading(run_taskd: RunTaskd) -> None:
    result = run_taskd("new idle --name a\nend\nnew idle --name b\nbogus\n")
    assert result.status == 0
    assert "started a" in result.lines and "started b" not in result.out


def test_end_of_input_means_end(run_taskd: RunTaskd) -> None:
    result = run_taskd("new idle --name a\nnew tick 100 --name b")
    assert result.status == 0, result.err
    # both cancelled cleanly: nothing abandoned
    assert result.err == "taskd: end cancelled 2 tasks: a, b\n"


def loops() -> list[str]:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return ["asyncio"]
    return ["asyncio", "uvloop"]


@pytest.mark.parametrize("loop", loops())
def test_end_is_bounded_whatever_the_tasks_do(
    session: Callable[..., Session], tmp_path: Path, loop: str
) -> None:
    """A task that swallows cancellation, a thread sleeping 30 s and a child ignoring
    SIGTERM: the process still exits within cancel_grace + 1 s of `end`."""
    config = tmp_path / "grace.toml"
    config.write_text(f"cancel_grace = {GRACE}\n")
    s = session("--config", str(config), "--loop", loop)
    s.send("new stubborn --name st")
    s.send("new blocking 30 --name bl")
    s.send("new shell 'trap \"\" TERM; echo ready $$; exec sleep 60' --name sh")
    s.expect("[bl] sleeping 30s in a worker thread; the loop stays free")
    child = int(s.expect(lambda line: line.startswith("[sh] ready ")).split()[-1])
    assert alive(child)
    sent = time.monotonic()
    s.send("end")
    status = s.finish(timeout=30)
    elapsed = time.monotonic() - sent
    assert status == 0
    print(f"end took {elapsed:.3f}s")
    assert elapsed < GRACE + 1, f"end took {elapsed:.2f}s"
    deadline = time.monotonic() + 10  # SIGKILL completes asynchronously: a safety net
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not alive(child)
    err = "\n".join(s.err)
    assert "abandoned 1 task that did not stop within 0.5s: st" in err
    assert "abandoned 1 executor thread still running (bl)" in err
    assert "Traceback" not in err and "was destroyed but it is pending" not in err
    assert "[st] cancel refused (1): CancelledError caught and ignored" in s.out
    assert "[bl] await cancelled; the thread cannot be, and sleeps on" in s.out
