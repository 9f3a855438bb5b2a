"""Bounded end and no orphans, tried for real: signals to a real taskd process.

Each test starts tasks that would keep taskd alive forever if the bound were not
kept (a task that swallows CancelledError, a thread in time.sleep, a shell child and
a grandchild that ignore SIGTERM), ends taskd one of the five ways, and then reads
the process table: nothing a `shell` task started may be left.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest
from reliability import (
    ENDINGS,
    Live,
    end_with,
    expected_status,
    processes,
    sleepers,
    wait_until,
    write_config,
)

GRACE = 0.5
# cancel_grace, then up to 0.5 s for executor threads, then the interpreter's exit.
# The slack covers a loaded 2-core CI machine; every task here would otherwise keep
# taskd alive for an hour, so the deadline separates "bounded" from "hangs".
BOUND = GRACE + 1.0
SLACK = 4.0


def marker() -> str:
    """A sleep duration no other process on the machine uses, to find ours by."""
    return f"3600.{random.randrange(10**8):08d}"


def start_hostile_tasks(live: Live, mark: str) -> None:
    """Every kind of task that makes ending hard, each confirmed running."""
    live.send(
        "new stubborn --name stub\n"
        "new blocking 3600 --name thread\n"
        # A child that ignores SIGTERM, with a grandchild that does too.
        f"new shell \"trap '' TERM; sleep {mark} & echo ready; wait\" --name deaf\n"
        # A grandchild (its parent obeys SIGTERM) that ignores it.
        f"new shell \"sh -c \\\"trap '' TERM; sleep {mark}\\\" & echo ready; wait\" --name grand\n"
    )
    live.expect("[thread] sleeping 3600s")
    live.expect("[deaf] ready")
    live.expect("[grand] ready")
    wait_until(lambda: sleepers(mark) == 2, "the two TERM-deaf sleeps did not start")


@pytest.mark.parametrize("how", ENDINGS)
def test_every_ending_is_bounded_and_leaves_no_orphans(
    env: dict[str, str], tmp_path: Path, how: str
) -> None:
    mark = marker()
    live = Live(env, "--config", str(write_config(tmp_path, grace=GRACE)))
    try:
        start_hostile_tasks(live, mark)
        began = time.monotonic()
        end_with(live, how)
        status = live.wait(BOUND + SLACK)
        took = time.monotonic() - began
    finally:
        live.kill()
    assert status == expected_status(how), live.err
    assert processes(mark) == []
    assert not any("Traceback" in line for line in live.err), live.err
    assert any("abandoned" in line and "stub" in line for line in live.err), live.err
    assert any("abandoned 1 executor thread" in line for line in live.err), live.err
    print(f"{how}: ended in {took:.2f}s")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_skips_the_grace_period(
    env: dict[str, str], tmp_path: Path, signum: int
) -> None:
    # A grace period of an hour: only the second signal can end this quickly.
    mark = marker()
    log = tmp_path / "events.log"
    live = Live(env, "--config", str(write_config(tmp_path, grace=3600)), "--log", str(log))
    try:
        start_hostile_tasks(live, mark)
        live.signal(signum)
        live.expect("[stub] cancel refused (1)")  # the grace period has begun
        live.signal(signum)
        status = live.wait(SLACK + 1.0)
    finally:
        live.kill()
    assert status == 128 + signum
    assert processes(mark) == []  # shell groups were killed even so
    assert not any("Traceback" in line for line in live.err), live.err
    assert any("abandoned" in line and "stub" in line for line in live.err), live.err
    # Even in a hurry the log is flushed and closed: its last event is the end.
    last = log.read_text().splitlines()[-1]
    assert f"taskd daemon-end status={128 + signum}" in last


def test_cancel_and_a_finished_command_leave_no_orphans(
    env: dict[str, str], tmp_path: Path
) -> None:
    mark = marker()
    live = Live(env, "--config", str(write_config(tmp_path, grace=GRACE)))
    try:
        # A command that exits at once, leaving a background job in its group.
        live.send(f"new shell \"sleep {mark} >/dev/null 2>&1 & echo left\" --name bg\n")
        live.expect("[bg] left")
        live.expect("bg done after")
        assert processes(mark) == []
        # `cancel` of a shell whose grandchild ignores SIGTERM.
        live.send(
            f"new shell \"sh -c \\\"trap '' TERM; sleep {mark}\\\" & echo ready; wait\""
            " --name grand\n"
        )
        live.expect("[grand] ready")
        wait_until(lambda: sleepers(mark) == 1, "the grandchild did not start")
        live.send("cancel grand\n")
        live.expect("cancelled grand")
        assert processes(mark) == []
        live.close_stdin()
        assert live.wait() == 0
    finally:
        live.kill()
    assert live.err == []
