"""Standard output and standard error for a non-interactive taskd: each stream has a
bounded queue and a writer thread of its own.

Why a thread per stream: a blocking write to a pipe nobody reads would freeze the
loop; a non-blocking one would need O_NONBLOCK on the descriptor, and that flag
belongs to the *open file*, which taskd shares with whoever started it (a sibling
writing to the same pipe then fails with EAGAIN; FIELD-NOTES). A thread can make
plain blocking writes to a descriptor whose flags taskd never touches, and the loop
only hands it whole batches (once per loop iteration).

Why bounded, and how: a stream's queue holds at most `limit` bytes. A reader that is
slow but alive gets back-pressure: the loop waits for the writer to make room, as
any program writing to a pipe would, and that wait is not blamed on the task that
printed (stall.excuse). A reader that takes nothing for STALLED seconds is declared
stalled: from then on what does not fit is dropped and counted (reported once, and
again at the end), so memory stays bounded, SIGTERM is heard, and one stalled
stream never holds up the other, the tasks or the end (which waits for a stream
only while it makes progress).

A stream that is a terminal gets control characters escaped (visible.py): a task's
output must not drive the terminal. A file or a pipe gets the bytes as they were.
"""

from __future__ import annotations

import asyncio
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable

from ..clock import hold
from ..fragments import Line, plain
from ..stall import EXCUSED, excuse
from .visible import visible

LIMIT = 4 << 20  # bytes queued per stream at most
STALLED = 1.0  # seconds without a byte taken before a reader counts as stalled
ENCODING_ERRORS = "backslashreplace"  # printing never fails on odd text
AT_ONCE = 1 << 16  # characters of one text handed to the writer without waiting
MERGE = 1 << 18  # bytes of queued chunks the writer joins into one write
# Seconds the writer waits after a small write before taking what came meanwhile: a
# task printing a line per loop iteration woke it for each line, and each wake-up
# cost the loop a GIL hand-off (README, Performance). A reply (hand_over(urgent=True))
# does not wait for it.
LINGER = 0.001
SMALL = 4096  # bytes: a write this small was a trickle of lines


def _is_devnull(fd: int) -> bool:
    try:
        st, null = os.fstat(fd), os.stat(os.devnull)
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == null.st_rdev


class StreamSink:
    """One descriptor, written by its own thread from a bounded queue."""

    def __init__(
        self,
        fd: int,
        name: str,
        on_broken: Callable[[str, OSError | None], None],
        on_stalled: Callable[[str], None],
        limit: int = LIMIT,
        escape: bool = False,
    ) -> None:
        self.fd = fd
        self.escape = escape  # a terminal: control characters shown escaped (visible.py)
        self.name = name
        self.limit = limit
        self.dropped = 0  # lines dropped because the reader stalled
        self.broken: OSError | None = None
        self.is_broken = False
        self._on_broken = on_broken
        self._on_stalled = on_stalled
        self._loop = asyncio.get_running_loop()
        self._pending: list[str] = []  # text of this loop iteration, not yet handed over
        self._scheduled = False
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._chunks: deque[bytes] = deque()
        self._queued = 0  # bytes handed over and not yet written (under the lock)
        self._progress = time.monotonic()  # when the thread last wrote something
        self._stalled = False
        self._closing = False
        self._drained: list[asyncio.Future[None]] = []
        self._lingering = False  # the writer is gathering after a write (LINGER)
        self._urgent = False  # a reply came: the writer is not to linger
        self._thread = threading.Thread(
            target=self._write_forever, name=f"taskd-{name}", daemon=True
        )
        self._thread.start()
        if _is_devnull(fd):
            # A served daemon's stdio: nothing to write, so no thread to wake for it
            # once a loop iteration (a GIL hand-off each, 100,000 a second).
            self.put = self._discard  # type: ignore[method-assign]

    @staticmethod
    def _discard(text: str) -> None:
        pass

    # -- the loop's side -------------------------------------------------------------

    def put(self, text: str) -> None:
        if self.is_broken or not text:
            return
        self._pending.append(text)
        if len(text) >= AT_ONCE:
            # A whole reply (`show` of 10,000 rows): to the writer now, not after
            # the rest of this loop iteration, which under load is thousands of steps.
            self.hand_over(urgent=True)
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.hand_over)

    def hand_over(self, urgent: bool = False) -> None:
        """Give the thread what this loop iteration queued (bounded, see the module);
        URGENT (a reply, a drain): even if it has just written, it writes now."""
        self._scheduled = False
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        if self.escape:
            text = visible(text)
        data = text.encode("utf-8", ENCODING_ERRORS)
        with self._lock:
            if self._queued == 0:
                # The writer was idle: a reader is judged from when it has work, not
                # from its last write (the loop may have been busy for seconds).
                self._progress = time.monotonic()
            elif self._queued + len(data) > self.limit and not self._make_room(len(data)):
                self.dropped += text.count("\n") or 1
                return
            # An empty queue takes any size: one reply (a `show --json` of 50,000
            # tasks is 12 MB on one line) is never dropped for being large.
            self._chunks.append(data)
            self._queued += len(data)
            if urgent:
                self._urgent = True
            if urgent or not self._lingering:
                self._wakeup.notify()

    def _make_room(self, size: int) -> bool:
        """With the lock held: wait while the reader takes data; False once stalled."""
        if self._stalled or self._closing:
            return False
        started = time.perf_counter()
        EXCUSED.waiting = True
        try:
            while self._queued > 0 and self._queued + size > self.limit and not self.is_broken:
                if time.monotonic() - self._progress > STALLED:
                    self._stalled = True
                    self._loop.call_soon(self._on_stalled, self.name)
                    return False
                self._wakeup.wait(0.05)
            return True
        finally:
            EXCUSED.waiting = False
            excuse(time.perf_counter() - started)

    async def drain(self, patience: float | None = None) -> None:
        """Return once everything queued is written, or the stream broke; with
        PATIENCE, give up once the reader has taken nothing for that long."""
        self.hand_over(urgent=True)
        began = time.monotonic()
        while True:
            with self._lock:
                if self._queued == 0 or self.is_broken:
                    return
                waiter = self._loop.create_future()
                self._drained.append(waiter)
                quiet = time.monotonic() - max(self._progress, began)
            if patience is not None and quiet > patience:
                with self._lock:
                    if waiter in self._drained:
                        self._drained.remove(waiter)
                return
            try:
                with hold(self._loop):  # real time: a virtual one would spin here
                    await asyncio.wait_for(asyncio.shield(waiter), 0.1)
            except TimeoutError:
                with self._lock:
                    if waiter in self._drained:
                        self._drained.remove(waiter)

    def close(self) -> int:
        """Stop taking text; the thread writes what it has and ends (or, stuck in a
        write, is abandoned: it is a daemon thread). Returns the bytes never written."""
        with self._lock:
            self._closing = True
            left = self._queued
            self._wakeup.notify()
        return left

    # -- the thread's side -----------------------------------------------------------

    def _write_forever(self) -> None:
        while True:
            with self._lock:
                while not self._chunks and not self._closing:
                    self._wakeup.wait()
                if not self._chunks:
                    return
                # What is queued, in one write of up to MERGE bytes: each write costs
                # this thread the GIL twice, which a busy loop gives up only every
                # 5 ms; and a write is progress only once it is all taken.
                chunks = [self._chunks.popleft()]
                size = len(chunks[0])
                while self._chunks and size + len(self._chunks[0]) <= MERGE:
                    size += len(self._chunks[0])
                    chunks.append(self._chunks.popleft())
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            error = self._write(data)
            with self._lock:
                self._queued -= len(data)
                self._progress = time.monotonic()
                if self._stalled and self._queued <= self.limit // 2:
                    self._stalled = False  # the reader is back: wait for it again
                if error is not None:
                    self.is_broken = True
                    self._chunks.clear()
                    self._queued = 0
                self._wakeup.notify_all()
                waiters, self._drained = (
                    (self._drained, []) if self._queued == 0 or error else ([], self._drained)
                )
            for waiter in waiters:
                self._loop.call_soon_threadsafe(_settle, waiter)
            if error is not None:
                self.broken = error
                self._loop.call_soon_threadsafe(self._on_broken, self.name, error)
                return
            with self._lock:
                if len(data) < SMALL and not self._closing and not self._urgent:
                    self._lingering = True  # hand_over() lets it be, but if urgent
                    self._wakeup.wait(LINGER)
                    self._lingering = False
                self._urgent = False

    def _write(self, data: bytes) -> OSError | None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view) :]
            except InterruptedError:
                continue
            except BlockingIOError:  # someone else made it non-blocking: wait for room
                import select

                select.select([], [self.fd], [], 1.0)
            except OSError as exc:
                return exc
        return None


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class StdOutput:
    """The Output of a script: stdout and stderr, each its own StreamSink."""

    styled = False

    def __init__(
        self,
        on_broken: Callable[[str, OSError | None], None],
        on_stalled: Callable[[str], None],
        out_fd: int = 1,
        err_fd: int = 2,
        limit: int = LIMIT,
    ) -> None:
        # A terminal gets control characters escaped; a file or a pipe, the bytes.
        self.stdout = StreamSink(
            out_fd, "stdout", on_broken, on_stalled, limit, escape=_isatty(out_fd)
        )
        self.stderr = StreamSink(
            err_fd, "stderr", on_broken, on_stalled, limit, escape=_isatty(err_fd)
        )
        # write(text): straight to stdout's queue, one call less for each line that
        # tasks print (up to 100,000 a second).
        self.write: Callable[[str], None] = self.stdout.put
        # Task events shown on a stdout that is /dev/null would be formatted for
        # nobody: the daemon does not show them here (replies still come).
        self.discards = _is_devnull(out_fd)

    def line(self, line: Line) -> None:
        self.stdout.put((line if isinstance(line, str) else plain(line)) + "\n")

    def error(self, text: str) -> None:
        self.stderr.put(text)

    def flush(self) -> None:
        """Hand what is queued to the writers now, not at the end of this iteration,
        to be written now."""
        self.stdout.hand_over(urgent=True)
        self.stderr.hand_over(urgent=True)

    async def drain(self) -> None:
        await asyncio.gather(self.stdout.drain(STALLED), self.stderr.drain(STALLED))

    async def aclose(self) -> None:
        await self.drain()
        self.stdout.close()
        self.stderr.close()

    @property
    def dropped(self) -> dict[str, int]:
        return {s.name: s.dropped for s in (self.stdout, self.stderr) if s.dropped}
