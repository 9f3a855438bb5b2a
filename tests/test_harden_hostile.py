"""Hostile kinds and shared descriptors (issue 14, items 7, 10, 12-15, 17, 24),
through the real program: real pipes, FIFOs, a pty, `nohup`, signals."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

from conftest import RunTaskd, Session, taskd_command

DEADLINE = 60  # a safety net only: every wait below ends on what it waits for

KINDS = '''\
import asyncio
import io
import sys
import threading
import time


async def stopper():
    asyncio.get_running_loop().stop()
    await asyncio.sleep(0)
    print("still here")


async def cancel_all():
    me = asyncio.current_task()
    for task in asyncio.all_tasks():
        if task is not me:
            task.cancel()
    print("cancelled them all")


async def sleeper():
    threading.Thread(target=time.sleep, args=(600,), name="sleeper-thread").start()
    print("thread started")


async def swap_stdout():
    sys.stdout = io.StringIO()
    print("into the void")
'''


def kinds_config(tmp_path: Path) -> Path:
    (tmp_path / "hostile.py").write_text(KINDS)
    config = tmp_path / "taskd.toml"
    config.write_text(
        "[kinds]\n"
        + "".join(f'{k} = "hostile:{k}"\n' for k in ("stopper", "cancel_all", "sleeper"))
        + 'swap_stdout = "hostile:swap_stdout"\n'
    )
    return config


def log_events(path: Path) -> list[tuple[str, str]]:
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split(" ", 3)
        rows.append((parts[1], parts[2]))
    return rows


def session_members(sid: int) -> list[int]:
    """Processes whose session id is SID."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == sid:
                    found.append(int(entry))
            except OSError:
                pass
    return found


# -- 12: loop.stop() in a kind ---------------------------------------------------------


def test_a_kind_that_stops_the_loop_changes_nothing(
    session: Callable[..., Session], tmp_path: Path
) -> None:
    config = kinds_config(tmp_path)
    log = tmp_path / "t.log"
    s = session("--config", str(config), "--log", str(log))
    s.send("new shell 'echo $$; sleep 600' --name sh")
    shell_pid = int(s.expect(lambda line: line.startswith("[sh] "))[5:])
    s.send("new stopper")
    s.expect("[stopper-1] still here")
    s.send("new msg after 1 0")
    s.expect("[msg-1] after")
    s.send("end")
    assert s.finish() == 0, s.err
    assert "Traceback" not in "\n".join(s.err)
    assert "taskd: error: a task stopped the event loop (loop.stop()); ignored" in s.err
    events = log_events(log)
    assert events[-1] == ("taskd", "daemon-end")
    assert ("sh", "cancelled") in events
    deadline = time.monotonic() + 10  # the killed ones may take a moment to be reaped
    while (left := session_members(shell_pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == []  # no orphaned shell child


# -- 13: a kind that cancels every task ---------------------------------------------------


def test_taskd_survives_a_kind_that_cancels_every_task(
    run_taskd: RunTaskd, tmp_path: Path
) -> None:
    config = kinds_config(tmp_path)
    log = tmp_path / "t.log"
    result = run_taskd(
        "new timer 600 --name long\nnew cancel_all\nwait cancel_all-1\n"
        "new msg rest 1 0\nwait msg-1\nshow\nend\n",
        "--config", str(config), "--log", str(log),
    )
    assert result.status == 0, result.err
    assert "[msg-1] rest" in result.lines  # the rest of the script ran
    events = log_events(log)
    assert ("long", "cancelled") in events
    assert events[-1] == ("taskd", "daemon-end")
    refused = [line for line in result.errors if "of taskd's own task" in line]
    assert len(refused) == 1 and "taskd:serve" in refused[0] and refused[0].endswith("refused")
    assert "Traceback" not in result.err


# -- 14: a non-daemon thread, a replaced sys.stdout ---------------------------------------


def test_a_kinds_thread_does_not_hold_the_end(run_taskd: RunTaskd, tmp_path: Path) -> None:
    config = kinds_config(tmp_path)
    result = run_taskd(
        "new sleeper\nwait\nend\n", "--config", str(config), timeout=DEADLINE
    )
    assert result.status == 0, result.err
    assert "[sleeper-1] thread started" in result.lines
    assert "taskd: abandoned 1 thread still running: sleeper-thread" in result.errors


def test_a_replaced_stdout_does_not_swallow_later_output(
    run_taskd: RunTaskd, tmp_path: Path
) -> None:
    config = kinds_config(tmp_path)
    log = tmp_path / "t.log"
    result = run_taskd(
        "new swap_stdout\nwait\nnew msg visible 1 0\nwait\nnew msg again 1 0\nwait\n",
        "--config", str(config), "--log", str(log),
    )
    assert result.status == 0, result.err
    assert "[msg-1] visible" in result.lines and "[msg-2] again" in result.lines
    assert ("msg-1", "output") in log_events(log)
    said = [line for line in result.errors if "replaced sys.stdout" in line]
    assert len(said) == 1, result.err  # once


# -- 15: SIGINT during start-up ----------------------------------------------------------


def test_sigint_during_start_up_is_quiet(tmp_path: Path, env: dict[str, str]) -> None:
    # The config file is a FIFO: taskd waits in its start-up, reading it, until we
    # write; a writer that opens without blocking says taskd is there.
    config = tmp_path / "c.toml"
    os.mkfifo(config)
    proc = subprocess.Popen(
        taskd_command("--config", str(config)), env=env, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        writer = -1
        deadline = time.monotonic() + DEADLINE
        while writer < 0:
            assert time.monotonic() < deadline and proc.poll() is None
            try:
                writer = os.open(config, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.01)  # polling for the reader, not waiting for a result
        # Signal it once it sleeps in that read: a signal landing just before a read
        # begins is lost to any Python program (the handler runs after the syscall).
        wchan = Path(f"/proc/{proc.pid}/wchan")
        while "pipe_read" not in wchan.read_text():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=DEADLINE)
        os.close(writer)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert (proc.returncode, out, err) == (130, b"", b"")


# -- 7: the flags of descriptors taskd did not open -----------------------------------


def test_a_sibling_on_the_same_pipe_gets_every_byte(env: dict[str, str]) -> None:
    # ( taskd 2>&1 & head -c 5000000 /dev/zero ) | wc -c, with events for the sleeps.
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        taskd_command(), env=env, stdin=subprocess.PIPE, stdout=write_end, stderr=write_end
    )
    assert proc.stdin is not None
    proc.stdin.write(b"new msg ready 1 0\n")
    proc.stdin.flush()
    seen = b""
    while b"[msg-1] ready" not in seen:  # taskd runs and has written to the pipe
        ready, _, _ = select.select([read_end], [], [], DEADLINE)
        assert ready, seen
        seen += os.read(read_end, 65536)
    assert os.get_blocking(write_end)  # the open file taskd shares with us: still blocking
    head = subprocess.Popen(["head", "-c", "5000000", "/dev/zero"], stdout=write_end)
    os.close(write_end)
    chunks: list[int] = []

    def count() -> None:
        while data := os.read(read_end, 1 << 16):
            chunks.append(len(data))

    counting = threading.Thread(target=count)
    counting.start()
    assert head.wait(DEADLINE) == 0
    proc.stdin.write(b"end\n")
    proc.stdin.close()
    assert proc.wait(DEADLINE) == 0
    counting.join(DEADLINE)
    os.close(read_end)
    total = sum(chunks)
    assert total >= 5_000_000  # head's bytes, and taskd's few lines


def test_the_shell_leaves_the_terminals_flags(env: dict[str, str]) -> None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        taskd_command("--prompt", "P> "), env=env, stdin=slave, stdout=slave, stderr=slave,
        start_new_session=True,
    )
    try:
        seen = b""
        while b"P>" not in seen:
            ready, _, _ = select.select([master], [], [], DEADLINE)
            assert ready, seen
            chunk = os.read(master, 65536)
            if b"\x1b[6n" in chunk:
                os.write(master, b"\x1b[1;1R")  # answer the cursor position request
            seen += chunk
        # Our slave descriptor shares the open file with taskd's fds 0, 1 and 2.
        assert os.get_blocking(slave)
        os.write(master, b"new timer 0\rwait\r")
        while b"done after" not in seen:
            ready, _, _ = select.select([master], [], [], DEADLINE)
            assert ready, seen
            seen += os.read(master, 65536)
        assert os.get_blocking(slave)
        os.write(master, b"end\r")
        assert proc.wait(DEADLINE) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(slave)


# -- 10: nohup --------------------------------------------------------------------------


def test_nohup_taskd_goes_on_after_sighup(env: dict[str, str], tmp_path: Path) -> None:
    s = Session(["nohup", *taskd_command()], env, cwd=tmp_path)
    try:
        s.send("new msg before 1 0")
        s.expect("[msg-1] before")
        s.proc.send_signal(signal.SIGHUP)  # nohup exec'd python: this is taskd
        s.send("new msg after 1 0")
        s.expect("[msg-2] after")
        s.send("end")
        assert s.finish() == 0, s.err
    finally:
        s.kill()


# -- 17: a BOM, a FIFO as the script ----------------------------------------------------


def test_a_script_with_a_byte_order_mark(run_taskd: RunTaskd) -> None:
    result = run_taskd("\ufeffnew msg hi 1 0\nwait\n".encode(), via="file")
    assert (result.status, result.err) == (0, "")
    assert "[msg-1] hi" in result.lines


def test_a_fifo_script_keeps_its_writers_data(tmp_path: Path, env: dict[str, str]) -> None:
    fifo = tmp_path / "s.fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        taskd_command(str(fifo)), env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    with fifo.open("w") as writer:  # blocks until taskd opens it
        writer.write("new msg first 1 0\nwait\n")
    out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err
    assert "[msg-1] first" in out.decode().splitlines()


def test_a_fifo_script_with_no_writer_ends_on_sigterm(
    tmp_path: Path, env: dict[str, str]
) -> None:
    fifo = tmp_path / "s.fifo"
    os.mkfifo(fifo)
    log = tmp_path / "t.log"
    proc = subprocess.Popen(
        taskd_command("--log", str(log), str(fifo)), env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + DEADLINE
        while not (log.exists() and "daemon-start" in log.read_text()):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)  # polling the log for the start, not waiting for a result
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM


# -- 24: what `end` cancelled -------------------------------------------------------------


def test_end_says_what_it_cancelled(run_taskd: RunTaskd) -> None:
    result = run_taskd(
        "".join(f"new timer 600 --name t{n}\n" for n in range(12)) + "new timer 0\nwait timer-1\n"
    )
    assert result.status == 0, result.err
    assert result.errors == [
        "taskd: end cancelled 12 tasks: t0, t1, t2, t3, t4, t5, t6, t7, t8, t9 (+2 more)"
    ]
    quiet = run_taskd("new timer 0\nwait\nend\n")
    assert (quiet.status, quiet.err) == (0, "")
