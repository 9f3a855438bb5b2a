"""Driving a taskd (or baseline) child process over pipes, and reading its memory.

The benchmark talks to a child the way a script or a person would: lines on its
stdin, replies read from its stdout. Big inputs are written from a thread so that
the child's replies, read here meanwhile, never fill the pipe and stall both sides.
"""

from __future__ import annotations

import os
import select
import subprocess
import threading
import time
from collections.abc import Sequence


class Child:
    """A process with stdin and stdout as pipes; stderr is kept for error messages."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: str) -> None:
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        self._in = self.proc.stdin.fileno()
        self._out = self.proc.stdout.fileno()
        self._buf = bytearray()
        self._err = bytearray()
        self._err_reader = threading.Thread(target=self._read_err, daemon=True)
        self._err_reader.start()
        self._writer: threading.Thread | None = None

    def _read_err(self) -> None:
        assert self.proc.stderr
        while data := os.read(self.proc.stderr.fileno(), 1 << 16):
            self._err += data

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stderr(self) -> str:
        return self._err.decode("utf-8", "replace")

    def send(self, data: bytes) -> None:
        """Write DATA from a thread; replies can be read while it is written."""
        self.wait_sent()

        def write() -> None:
            view = memoryview(data)
            while view:
                view = view[os.write(self._in, view) :]

        self._writer = threading.Thread(target=write, daemon=True)
        self._writer.start()

    def wait_sent(self) -> None:
        if self._writer is not None:
            self._writer.join()
            self._writer = None

    def _fill(self, timeout: float | None = None) -> bool:
        """Read what is there (waiting up to TIMEOUT); False at end of output."""
        if timeout is not None and not select.select([self._out], [], [], timeout)[0]:
            return True
        data = os.read(self._out, 1 << 18)
        if not data:
            return False
        self._buf += data
        return True

    def read_until(self, marker: bytes, deadline_s: float = 600) -> None:
        """Consume output up to and including MARKER."""
        deadline = time.monotonic() + deadline_s
        start = 0
        while (at := self._buf.find(marker, start)) < 0:
            start = max(0, len(self._buf) - len(marker))
            if time.monotonic() > deadline or not self._fill(1.0):
                raise RuntimeError(f"no {marker!r} from the child; stderr: {self.stderr[-500:]}")
        del self._buf[: at + len(marker)]

    def read_lines_after(self, marker: bytes, count: int, deadline_s: float = 600) -> None:
        """Consume output up to MARKER and then COUNT more complete lines."""
        self.read_until(marker, deadline_s)
        deadline = time.monotonic() + deadline_s
        while (have := self._buf.count(b"\n")) < count:
            count -= have
            del self._buf[: self._buf.rfind(b"\n") + 1]
            if time.monotonic() > deadline or not self._fill(1.0):
                raise RuntimeError(f"output ended early; stderr: {self.stderr[-500:]}")
        at = -1
        for _ in range(count):
            at = self._buf.find(b"\n", at + 1)
        del self._buf[: at + 1]

    def pump(self, seconds: float) -> None:
        """Keep reading (and dropping) output for SECONDS, so the child never blocks."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if not self._fill(left):
                return
            self._buf.clear()

    def close_and_wait(self, timeout: float = 600) -> int:
        """Close stdin, read output to the end, return the exit status."""
        self.wait_sent()
        assert self.proc.stdin
        self.proc.stdin.close()
        while self._fill():
            self._buf.clear()
        status = self.proc.wait(timeout)
        self._err_reader.join(5)
        return status

    def write_now(self, data: bytes) -> None:
        """Write a short command at once, from this thread."""
        self.wait_sent()
        view = memoryview(data)
        while view:
            view = view[os.write(self._in, view) :]


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of PID, in kB, from /proc."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
    return found
