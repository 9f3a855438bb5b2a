"""Output faults, for real: stdout read by `head -1`, stdout on a full disk
(/dev/full), stdout or stderr closed. taskd must end cleanly (no traceback, not
spinning) and say what it could.

The scripts flood their output (a shell task running `yes`) and never end by
themselves (`sleep 3600`), so only the fault can end them: exiting at all is the
proof that it was noticed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from reliability import DEADLINE, processes, wait_with_usage

FLOOD = "new shell 'yes taskd-flood-{mark}'\nnew tick 0.001\nsleep 3600\n"
CPU_BOUND = 10.0  # seconds of CPU: generous; a spinning process would use DEADLINE's worth


def start_taskd(
    env: dict[str, str], tmp_path: Path, script: str, *, via: str, stdout: int,
    stderr: int | None,
) -> subprocess.Popen[bytes]:
    """Start taskd reading SCRIPT through a pipe (aioconsole's streams are used) or
    as a FILE argument (plain fd writes), with the given stdout and stderr fds
    (stderr None: the file err.txt)."""
    if stderr is None:
        with (tmp_path / "err.txt").open("wb") as err:
            return start_taskd(env, tmp_path, script, via=via, stdout=stdout, stderr=err.fileno())
    path = tmp_path / "flood.tdc"
    path.write_text(script)
    if via == "file":
        with open(os.devnull, "rb") as null:
            return subprocess.Popen(
                [sys.executable, "-m", "taskd", str(path)],
                stdin=null, stdout=stdout, stderr=stderr, env=env,
            )
    proc = subprocess.Popen(
        [sys.executable, "-m", "taskd"],
        stdin=subprocess.PIPE, stdout=stdout, stderr=stderr, env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write(script.encode())
    proc.stdin.flush()  # and keep it open: the script's end must not end taskd
    return proc


def wait_with_cpu(proc: subprocess.Popen[bytes]) -> tuple[int, float]:
    status, usage = wait_with_usage(proc)
    assert usage is not None
    return status, usage.ru_utime + usage.ru_stime


VIAS = ["pipe", "file"]
# With stdin, stdout and stderr all pipes (or terminals, /dev/full) taskd writes
# through aioconsole's pipe transports, whose failures asyncio would log: stderr is
# a pipe there, so that any such line would be seen. Otherwise plain fd writes.
STDERR: dict[str, int | None] = {"pipe": subprocess.PIPE, "file": None}  # None: err.txt


def stderr_of(proc: subprocess.Popen[bytes], tmp_path: Path) -> str:
    if proc.stderr is not None:
        with proc.stderr:
            return proc.stderr.read().decode()
    return (tmp_path / "err.txt").read_text()


@pytest.mark.parametrize("via", VIAS)
def test_stdout_closed_by_its_reader(env: dict[str, str], tmp_path: Path, via: str) -> None:
    mark = f"{os.getpid()}-{via}"
    read_end, write_end = os.pipe()
    proc = start_taskd(
        env, tmp_path, FLOOD.format(mark=mark), via=via, stdout=write_end, stderr=STDERR[via]
    )
    os.close(write_end)
    # `taskd flood.tdc | head -1`: read one line, then close the pipe.
    with os.fdopen(read_end, "rb") as reader:
        first = reader.readline()
    status, cpu = wait_with_cpu(proc)
    assert first == b"started shell-1\n"
    assert status == 1
    assert cpu < CPU_BOUND
    assert stderr_of(proc, tmp_path) == ""  # a pipeline ending is no error to shout about
    assert processes(f"taskd-flood-{mark}") == []


@pytest.mark.parametrize("via", VIAS)
def test_stdout_on_a_full_disk(env: dict[str, str], tmp_path: Path, via: str) -> None:
    mark = f"{os.getpid()}-full-{via}"
    with open("/dev/full", "wb") as full:
        proc = start_taskd(
            env, tmp_path, FLOOD.format(mark=mark), via=via,
            stdout=full.fileno(), stderr=STDERR[via],
        )
        status, cpu = wait_with_cpu(proc)
    assert status == 1
    assert cpu < CPU_BOUND
    assert stderr_of(proc, tmp_path).splitlines() == [
        "taskd: error: cannot write to standard output: No space left on device; ending"
    ]
    assert processes(f"taskd-flood-{mark}") == []


@pytest.mark.parametrize("stderr", ["closed", "full"])
def test_stderr_lost_does_not_stop_the_work(
    env: dict[str, str], tmp_path: Path, stderr: str
) -> None:
    script = "bogus\nnew timer 0 --name t\nwait t\nnew fail\nwait\nshow --all --json\n"
    redirect = "2>&-" if stderr == "closed" else "2>/dev/full"
    proc = subprocess.run(
        ["sh", "-c", f'exec "$@" {redirect}', "sh", sys.executable, "-m", "taskd"],
        input=script.encode(), stdout=subprocess.PIPE, env=env, timeout=DEADLINE,
    )
    assert proc.returncode == 1  # the errors happened, even if nobody could read them
    lines = proc.stdout.decode().splitlines()
    assert lines[0] == "started t" and lines[1].startswith("t done after")
    assert '"name": "fail-1"' in lines[-1]


def test_stdout_closed_from_the_start(env: dict[str, str], tmp_path: Path) -> None:
    # With fd 1 closed, the next file opened would get fd 1: the log must not
    # receive what taskd writes to stdout.
    log = tmp_path / "events.log"
    proc = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-m", "taskd", "--log", str(log)],
        input=b"new timer 0 --name t\nwait t\nshow --all\n",
        stderr=subprocess.PIPE, env=env, timeout=DEADLINE,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    text = log.read_text()
    assert "t done" in text and "started t\n" not in text and "NAME" not in text


def test_writer_threads_wait_at_most_a_millisecond_for_the_gil(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The switch interval a task sees inside taskd: the writer threads' share of a
    busy loop's GIL (cli._tune_threads; tests/bench responsive measures the effect)."""
    (tmp_path / "probe.py").write_text(
        "import sys\n\nasync def interval():\n    print(f'switch {sys.getswitchinterval()}')\n"
    )
    (tmp_path / "taskd.toml").write_text('[kinds]\ninterval = "probe:interval"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "taskd", "--config", str(tmp_path / "taskd.toml")],
        input="new interval --name p\nwait\n", capture_output=True, text=True, env=env,
        cwd=tmp_path, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "[p] switch 0.001\n" in proc.stdout
