"""A log target that blocks (issue 14, item 3), through the real program: a FIFO
nobody reads, and one whose reader stops reading."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import RunTaskd

DEADLINE = 60  # a safety net: before the fix each of these hung for ever


def test_log_to_a_fifo_nobody_reads_is_one_error(run_taskd: RunTaskd, tmp_path: Path) -> None:
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    result = run_taskd(f"log {fifo}\nlog\nnew msg hi 1 0\nwait\n", timeout=DEADLINE)
    assert result.status == 1
    assert result.errors == [
        f"<stdin>:1: error: cannot log to '{fifo}': a FIFO that no process reads "
        "(start its reader first)"
    ]
    assert result.lines[0] == "not logging"  # nothing changed
    assert "[msg-1] hi" in result.lines


def test_log_option_to_a_fifo_nobody_reads_exits_2(run_taskd: RunTaskd, tmp_path: Path) -> None:
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    result = run_taskd("new msg hi 1 0\nwait\n", "--log", str(fifo), timeout=DEADLINE)
    assert (result.status, result.out) == (2, "")
    assert result.errors == [
        f"taskd: error: cannot log to '{fifo}': a FIFO that no process reads "
        "(start its reader first)"
    ]


def test_a_log_reader_that_stops_costs_events_not_the_loop_or_the_end(
    run_taskd: RunTaskd, tmp_path: Path
) -> None:
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader that never reads
    try:
        result = run_taskd(
            # 300,000 events: far past the pipe (64 KiB) and HIGH_WATER (100,000 lines).
            "new msg x 300000 0\nnew timer 600 --name long\nwait msg-1\nlog\nend\n",
            "--log", str(fifo), timeout=DEADLINE,
        )
    finally:
        os.close(reader)
    assert result.status == 0, result.err
    assert "msg-1 done" in result.out
    assert "event loop" not in result.err  # the wait is not blamed on the task
    status = next(line for line in result.lines if line.startswith("logging to"))
    assert "events dropped while the file took nothing" in status
    errors = result.errors
    assert errors[0].startswith(f"taskd: log {fifo}: the file takes nothing")
    assert errors[1] == "taskd: end cancelled 1 task: long"
    assert errors[2].startswith(f"taskd: log {fifo}: ") and errors[2].endswith(
        "events not written: the file took nothing for 0.5s at the end; its writer is abandoned"
    )
    assert len(errors) == 3
