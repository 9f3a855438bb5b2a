"""Resource limits, tried at full size: 100,000 live tasks, 100 MB of output from
one task, a script of 1,000,000 lines.

Durations are printed (pytest -s shows them) but never asserted: the deadlines here
are safety timeouts. What is asserted is what must hold whatever the machine's
speed: every byte arrives, memory stays bounded, the end is clean, nothing is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from reliability import (
    DEADLINE,
    Live,
    processes,
    sleepers,
    wait_until,
    write_config,
)

TASKS = 100_000


def test_100k_live_tasks_show_cancel_and_a_bounded_end(
    env: dict[str, str], tmp_path: Path
) -> None:
    mark = f"3600.{os.getpid()}{int(time.time()) % 10**6:06d}"
    # The default grace: cancelling 100,000 tasks keeps the loop busy for a second or
    # so, which a 0.5 s grace would not cover for the TERM-deaf grandchild's task.
    live = Live(env, "--config", str(write_config(tmp_path, grace=2.0)))
    try:
        began = time.monotonic()
        live.send("new timer 3600\n" * TASKS + "show\n")
        live.expect(lambda line: line.startswith(f"timer-{TASKS} "))  # the table's last row
        spawned = time.monotonic()
        live.send("cancel '*'\nshow\n")
        live.expect(f"cancelled timer-{TASKS}")
        live.expect("no tasks")
        cancelled = time.monotonic()
        # Again, with a grandchild that ignores SIGTERM among them, and end by signal.
        live.send(
            "new timer 3600\n" * TASKS
            + f"new shell \"sh -c \\\"trap '' TERM; sleep {mark}\\\" & echo ready; wait\""
            " --name grand\n"
        )
        live.expect("[grand] ready")
        wait_until(lambda: sleepers(mark) == 1, "the grandchild did not start")
        signalled = time.monotonic()
        live.signal(signal.SIGTERM)
        status = live.wait(2.0 + 1.0 + 4.0)  # grace + 1 s, and slack for a loaded CI
        ended = time.monotonic()
    finally:
        live.kill()
    assert status == 128 + signal.SIGTERM
    assert processes(mark) == []
    # Normally silent. On a loaded machine, cancelling 100,000 tasks can delay the
    # shell task's own cancellation past the grace period (it is then named as
    # abandoned, and its group killed all the same), or the OS can pause the process
    # long enough to look like a stall: one-line reports, never a traceback.
    assert all(line.startswith("taskd: ") for line in live.err), live.err
    print(
        f"{TASKS} tasks: spawn+show {spawned - began:.1f}s, cancel '*'+show "
        f"{cancelled - spawned:.1f}s, SIGTERM to exit {ended - signalled:.2f}s; stderr {live.err}"
    )


def test_a_task_printing_100_mb_loses_nothing(env: dict[str, str], tmp_path: Path) -> None:
    line = "x" * 99
    script = tmp_path / "hundred.tdc"
    script.write_text(f'new shell "yes {line} | head -c 100000000" --name big\nwait\n')
    out = tmp_path / "out.txt"
    with out.open("wb") as stdout:
        proc = subprocess.run(
            [sys.executable, "-m", "taskd", str(script)],
            stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE, env=env,
            timeout=DEADLINE * 2,
        )
    assert proc.returncode == 0 and proc.stderr == b""
    expected = f"[big] {line}\n".encode()
    count = 0
    with out.open("rb") as produced:
        assert produced.readline() == b"started big\n"
        for got in produced:
            if got != expected:
                assert got.startswith(b"big done after "), got[:80]
                assert produced.read() == b""
                break
            count += 1
    assert count == 100_000_000 // 100  # every byte: a million lines of 100


def test_a_million_line_script_is_streamed_in_bounded_memory(
    env: dict[str, str], tmp_path: Path
) -> None:
    # ~93 MB of script: comments, a task every 10,000 lines, a `show` every 100,000.
    script = tmp_path / "million.tdc"
    filler = "#" + " filler" * 13 + "\n"
    with script.open("w") as f:
        for n in range(1, 1_000_001):
            if n % 100_000 == 0:
                f.write("show --all --json\n")
            elif n % 10_000 == 0:
                f.write("new timer 0\n")
            else:
                f.write(filler)
        f.write("new timer 0 --name last\nwait last\nsleep 3600\n")
    size = script.stat().st_size
    began = time.monotonic()
    live = Live(env, str(script))
    try:
        live.expect("last done after")
        took = time.monotonic() - began
        # The high-water mark of taskd's own memory (wait4's figure would include
        # what pytest held when it forked the child), read while taskd still runs.
        peak = _vm_hwm(live.pid)
        live.signal(signal.SIGTERM)
        status = live.wait()
    finally:
        live.kill()
    assert status == 128 + signal.SIGTERM and live.err == [], live.err
    assert sum(line.startswith("started timer-") for line in live.out) == 90
    # Reading the whole script first would hold all of it (plus a str per line);
    # a stream holds a chunk. The interpreter with taskd loaded is about 25 MB here.
    assert peak < size / 2, f"peak RSS {peak >> 20} MB for a {size >> 20} MB script"
    print(f"1,000,000 lines ({size >> 20} MB): {took:.1f}s, peak RSS {peak >> 20} MB")


def _vm_hwm(pid: int) -> int:
    """Peak resident memory of process PID so far, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")
