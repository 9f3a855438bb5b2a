"""Support for the reliability tests: a live taskd process, and the process table.

`Live` runs the real program with a pipe on stdin and reads its output on threads,
so a test can wait for a line to appear (an event, not a sleep), then send a signal
or close stdin, and wait for the exit. `processes` reads the process table, so a
test can prove that nothing a `shell` task started outlived taskd.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

DEADLINE = 60.0  # a safety timeout for waiting on a line: never what makes a test pass


def write_config(tmp_path: Path, text: str = "", grace: float = 0.5) -> Path:
    """A config file with a short grace period (keeps the suite quick) and TEXT."""
    path = tmp_path / "taskd.toml"
    path.write_text(f"cancel_grace = {grace}\n{text}", encoding="utf-8")
    return path


class Live:
    """A running `python -m taskd ARGS`, fed through a pipe, its output collected."""

    def __init__(self, env: dict[str, str], *args: str, cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "taskd", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._collect, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._collect, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _collect(self, stream: object, into: list[str]) -> None:
        assert stream is not None
        for raw in stream:  # type: ignore[attr-defined]
            with self._changed:
                into.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()
        stream.close()  # type: ignore[attr-defined]
        with self._changed:
            self._changed.notify_all()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def expect(self, wanted: str | Callable[[str], bool], *, stream: str = "out") -> str:
        """Wait until a line of STREAM contains WANTED (or satisfies it); return it."""
        lines = self.out if stream == "out" else self.err
        test = wanted if callable(wanted) else (lambda line: wanted in line)
        start = 0
        deadline = time.monotonic() + DEADLINE
        with self._changed:
            while True:
                for line in lines[start:]:
                    if test(line):
                        return line
                start = len(lines)
                if self.proc.poll() is not None and not any(r.is_alive() for r in self._readers):
                    raise AssertionError(f"taskd exited before {wanted!r}: {self.err[-5:]}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no line {wanted!r} within {DEADLINE}s; got {lines[-5:]}")
                self._changed.wait(min(left, 0.5))

    def signal(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)

    def wait(self, timeout: float = DEADLINE) -> int:
        """Wait for the exit, and for the readers to have seen all output."""
        status = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(DEADLINE)
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        return status

    def kill(self) -> None:
        """Clean up after a failed test: the process must not outlive it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait()


def processes(marker: str) -> list[str]:
    """Live (not zombie) processes whose full command line contains MARKER."""
    table = subprocess.run(
        ["ps", "-eo", "pid,pgid,stat,args", "-ww"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[1:]
    found = []
    for row in table:
        pid, _pgid, stat, args = row.split(None, 3)
        if marker in args and not stat.startswith("Z") and int(pid) != os.getpid():
            found.append(row)
    return found


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll CONDITION until true; DEADLINE is only a safety timeout."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {DEADLINE}s")
        time.sleep(0.02)


def sleepers(marker: str) -> int:
    """How many `sleep MARKER` processes run (exec'd, not their parent shells)."""
    return sum(1 for row in processes(marker) if row.split(None, 3)[3].startswith("sleep "))


def end_with(live: Live, how: str) -> None:
    """End LIVE the way HOW names: a command, end of input, or a signal."""
    if how == "end":
        live.send("end\n")
    elif how == "eof":
        live.close_stdin()
    else:
        live.signal(getattr(signal, how))


ENDINGS = ["end", "eof", "SIGTERM", "SIGINT", "SIGHUP"]


def expected_status(how: str) -> int:
    """The exit status the README documents for each way of ending."""
    return 128 + int(getattr(signal, how)) if how.startswith("SIG") else 0


def wait_with_usage(proc: subprocess.Popen[bytes]) -> tuple[int, os.struct_rusage | None]:
    """Wait for PROC (DEADLINE is a safety timeout) and return its exit status and
    its own resource usage (CPU time, peak RSS), which only wait4 can tell."""
    deadline = time.monotonic() + DEADLINE
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.stdin is not None:
                proc.stdin.close()
            return proc.returncode, usage
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"taskd did not end within {DEADLINE}s")
        time.sleep(0.05)
