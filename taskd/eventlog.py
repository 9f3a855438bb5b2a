"""The event log: task events appended to a file through aiofiles, fast and lossless.

How it is fast. aiofiles runs every awaited call in a worker thread (50-95 us a hop
here), so one `await write` per event would cap the log at 10-20k events/s. Instead
the log is a sink that formats each event into a queue of lines (a list the writer
swaps out whole), and one writer task per log hands everything queued to aiofiles in
one write. The writer does not wake for every line: the first line queued after a
write waits up to LINGER (10 ms) for others, or less once BATCH lines are queued. A
hop also costs the loop thread itself some 20-30 us (a future, a thread wake-up, the
self-pipe), so waking per line would slow the very tasks being logged; lingering
keeps the writes to at most about 100 a second at any rate of events. Closing and
flush() cut the wait short. The file is opened unbuffered in binary (the lines are
encoded once per batch): a write is one hop, with no flush hop after it, and what it
wrote is with the operating system when it returns.

How it stays available. The log has its own single-thread executor, passed to
aiofiles.open: 32 `blocking` tasks can fill the loop's default pool and logging still
goes on. One thread also means the file's writes happen in the order they were handed
over, whoever hands them over (see back-pressure below). The executor is shut down
when the log is closed.

How it stays bounded whatever the file does. A log file can block: a FIFO whose
reader stopped reading, a hung network mount. Nothing of the loop thread may wait on
it for long, so: opening runs on the log's thread and is waited for at most
OPEN_PATIENCE seconds; a FIFO is opened without blocking, and with no process reading
it (after FIFO_PATIENCE seconds of asking) `log FIFO` is one error and nothing
changes, rather than logging into nobody or waiting for somebody. Writes are made in
pieces of at most PIECE bytes, each one noted as progress: back-pressure (below) and
closing wait only while the thread makes progress. After STALLED seconds without any
(DISK_PATIENCE for a regular file, whose disk may pause under load; closing always
uses STALLED, for the end's bound), the log counts as stalled: queued events are
dropped and counted (reported once, and in `log`), the end does not wait for the
writer (what it holds is counted as not written, and its thread is abandoned, not
joined), and once the thread writes again the events go on being written.

How it is honest. A write that fails (disk full, I/O error) is reported once, through
the report callback (one line on stderr), and the log stops: the events after it are
counted as lost, `log` says so, and the daemon goes on. On Linux a file whose name was
removed (deleted, or its folder deleted) still accepts writes that nobody can ever
read; so after each batch the writer checks the open file's link count, and a count
of 0 is reported as a failure like a write error. A file that was only renamed or
moved keeps its data reachable, and the log goes on writing to it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import os
import signal
import stat
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO, cast

import aiofiles
import aiofiles.os
from aiofiles.threadpool.binary import AsyncFileIO

from .clock import exempt, freeze
from .errors import CommandError, shown
from .events import Event
from .logformat import formatter
from .stall import EXCUSED, excuse

LINGER = 0.01  # seconds a first queued line waits for company before it is written
BATCH = 10_000  # lines queued that are written at once, without lingering
HIGH_WATER = 100_000  # lines queued before the sink makes the loop wait for the disk
PIECE = 1 << 16  # bytes handed to one os.write: progress is noted between pieces
STALLED = 0.5  # seconds a pipe or FIFO may take nothing before the log counts as stalled
DISK_PATIENCE = 5.0  # the same for a regular file: a busy disk pauses, a hung mount stops
OPEN_PATIENCE = 5.0  # seconds opening the file may take (a hung mount)
FIFO_PATIENCE = 0.5  # seconds a FIFO is asked for a reader before `log FIFO` fails
THREAD_NAME = "taskd-log"
ENCODING_ERRORS = "backslashreplace"  # an odd string never costs the line

Report = Callable[[str], None]

# Logs whose closing runs on after the caller was cancelled; see wait_closed().
_CLOSING: set[asyncio.Task[None]] = set()


class _Progress:
    """What the log's thread is doing, read by the loop thread (single assignments)."""

    __slots__ = ("busy", "at", "patience")

    def __init__(self) -> None:
        self.busy = False  # a write is under way
        self.at = time.monotonic()  # when the thread last got a piece through
        self.patience = STALLED  # DISK_PATIENCE once the file is known to be a regular one

    def stuck(self, patience: float | None = None) -> bool:
        """No piece got through for PATIENCE seconds (the file's own, by default)."""
        limit = self.patience if patience is None else patience
        return self.busy and time.monotonic() - self.at > limit


def _write_all(fd: int, data: bytes, progress: _Progress) -> None:
    """Write all of DATA to FD in pieces, noting progress; run in the log's thread."""
    progress.at = time.monotonic()
    progress.busy = True
    try:
        view = memoryview(data)
        while view:
            done = os.write(fd, view[:PIECE])
            if done == 0:
                raise LogFailed("a write was cut short (is the disk full?)")
            view = view[done:]
            progress.at = time.monotonic()
    finally:
        progress.busy = False


def _open_log(path: str, flags: int) -> int:
    """The opener of a log file, run in the log's thread: a FIFO is opened without
    blocking (no reader: ENXIO, asked again for FIFO_PATIENCE), then made blocking,
    which is a flag of this open file only, taskd's own."""
    deadline = time.monotonic() + FIFO_PATIENCE
    while True:
        try:
            fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        os.set_blocking(fd, True)
        return fd


# Signals the log's thread never takes: the kernel may deliver a process-wide signal
# to any thread that does not block it, and one arriving in the middle of a write to
# a pipe would cut that write short. The loop's thread handles them all.
_ASYNC_SIGNALS = {
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGCHLD,
    signal.SIGWINCH,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGALRM,
}


def _block_signals() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, _ASYNC_SIGNALS)


class LogFailed(Exception):
    """Why the log stopped writing, in words for the user."""



class _Pieces:
    """The file object the log's aiofiles writer writes to (AsyncFileIO delegates each
    write to the log's thread): the batch goes out in 64 KiB pieces, each counted as
    progress, then a check that the file still has a name, all in one thread hop."""

    def __init__(self, fd: int, progress: _Progress) -> None:
        self._fd = fd
        self._progress = progress

    def write(self, data: bytes) -> int:
        _write_all(self._fd, data, self._progress)
        if os.fstat(self._fd).st_nlink == 0:
            raise LogFailed("the file was deleted (or its folder was); what it gets is lost")
        return len(data)


class EventLog:
    """One open log file, its queue of formatted lines and the task that writes them.

    Back-pressure. The sink is synchronous: it is called from print() inside a task,
    in the middle of that task's step, so it cannot await, and nothing can suspend
    the task that prints from inside it. Dropping lines is not allowed and an
    unbounded queue is not either. What remains is to make the loop itself wait: when
    HIGH_WATER lines are queued (the disk is slower than the tasks), the sink hands
    the queued lines to the log's thread and waits for them to be written, so every
    task on the loop runs at the disk's pace until it catches up. Memory stays below
    HIGH_WATER lines plus one batch in flight. The queued lines go through the same
    one-thread executor as the writer's aiofiles calls, so they land after the batch
    in flight, in order. A task that awaits between prints (every built-in kind) never
    gets near HIGH_WATER unless the disk really is slower.
    """

    def __init__(self, path: str, fmt: str, report: Report) -> None:
        self.path = path
        self.format = fmt
        self.written = 0  # events on disk (handed to the OS)
        self.failure = ""  # why writing stopped, if it did
        self.waits = 0  # times the loop waited for the disk (back-pressure)
        self._report = report
        self._format = formatter(fmt)
        self._lines: list[str] = []
        self._taken = 0  # events the writer (or back-pressure) took from the queue
        self._dropped = 0  # events not even queued, after writing failed
        self._off = False  # closing or failed: the sink takes nothing more
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._closing = False
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=THREAD_NAME, initializer=_block_signals
        )
        # On the virtual clock the log's file calls take no virtual time (they freeze
        # it rather than hold it), so a logged run prints the same times as one not.
        exempt(self._loop, self._executor)
        self._file: AsyncFileIO | None = None
        self._fd = -1
        self._pieces: AsyncFileIO | None = None  # writes go through aiofiles, to _Pieces
        self._sync_pieces: _Pieces | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closed: asyncio.Task[None] | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._in_flight: concurrent.futures.Future[int] | None = None  # see _write_now
        self._progress = _Progress()
        self.stalled = 0  # events dropped because the file took nothing for STALLED s
        self._said_stalled = False
        self.abandoned = False  # closed without the writer: its thread still hangs

    # -- opening -----------------------------------------------------------------

    async def open(self, *, start: bool = True) -> None:
        """Open FILE for appending (never truncating); CommandError if it cannot be.

        With start=False events are queued but not written until start(): a log that
        replaces another waits until the other is closed.
        """
        opening = asyncio.ensure_future(
            aiofiles.open(
                self.path, "ab", buffering=0, opener=_open_log, executor=self._executor
            )
        )
        try:
            with freeze(self._loop):  # on the virtual clock a log's I/O takes no time
                done, _ = await asyncio.wait({opening}, timeout=OPEN_PATIENCE)
            if not done:
                opening.add_done_callback(_close_late)
                self._executor.shutdown(wait=False)
                raise CommandError(
                    f"cannot log to {shown(self.path, 200)}: opening it did not finish "
                    f"within {OPEN_PATIENCE:g}s"
                )
            self._file = opening.result()
            self._fd = self._file.fileno()
            if stat.S_ISREG(os.fstat(self._fd).st_mode):
                # A loaded machine's disk can take nothing for a second (writeback
                # throttling); a FIFO whose reader stopped gets the short patience.
                self._progress.patience = DISK_PATIENCE
            self._sync_pieces = _Pieces(self._fd, self._progress)
            # aiofiles takes any file object: the writes go through it to _Pieces.
            pieces = cast("BinaryIO", self._sync_pieces)
            self._pieces = AsyncFileIO(pieces, self._loop, self._executor)
        except OSError as exc:
            self._executor.shutdown(wait=False)
            raise CommandError(f"cannot log to {shown(self.path, 200)}: {_reason(exc)}") from None
        except BaseException:
            self._executor.shutdown(wait=False)
            raise
        if start:
            self.start()

    def start(self) -> None:
        """Let the writer write (after the log this one replaces is closed)."""
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(
                self._write_batches(), name="taskd:log-writer"
            )

    # -- the sink ----------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        if self._off:
            self._dropped += 1  # only after a failure: a closing log is unsubscribed
            return
        lines = self._lines
        lines.append(self._format(event))
        queued = len(lines)
        if queued == 1:
            self._loop.call_later(LINGER, self._wake.set)
        elif queued >= BATCH:
            if queued >= HIGH_WATER and self._writer is not None:
                self._write_now()
            else:
                self._wake.set()

    def _take(self) -> list[str]:
        batch, self._lines = self._lines, []
        self._taken += len(batch)
        return batch

    def _write_now(self) -> None:
        """Back-pressure: hand the queue to the log's thread, and wait only while the
        batch handed over before is still being written (and the thread makes
        progress): formatting the next batch overlaps the writing of the last, and
        memory stays below HIGH_WATER lines plus one batch in flight. A stalled file
        gets nothing: the queue is dropped and counted (the loop must never hang on
        a log)."""
        if self._progress.stuck():
            self._drop_stalled()
            return
        before = self._in_flight
        if before is not None and not before.done():
            self.waits += 1
            started = time.perf_counter()
            EXCUSED.waiting = True  # the disk's doing, not the printing task's
            try:
                while not before.done():
                    concurrent.futures.wait([before], timeout=0.05)
                    if not before.done() and self._progress.stuck():
                        # That batch is handed over: written if the file ever takes
                        # it again. This one is not.
                        self._drop_stalled()
                        return
            finally:
                EXCUSED.waiting = False
                excuse(time.perf_counter() - started)
        batch = self._take()
        data = "".join(batch).encode("utf-8", ENCODING_ERRORS)
        # The same writer, on the same thread, after whatever it was given before.
        assert self._sync_pieces is not None
        self._in_flight = self._executor.submit(self._sync_pieces.write, data)
        self._in_flight.add_done_callback(self._late_write(len(batch)))

    def _late_write(self, count: int) -> Callable[[concurrent.futures.Future[int]], None]:
        """What to do, on the loop, once a batch handed over is written (or not)."""

        def done(future: concurrent.futures.Future[int]) -> None:
            if future.cancelled():
                return
            exc = future.exception()
            try:
                if exc is None:
                    self._loop.call_soon_threadsafe(self._count_late, count)
                elif isinstance(exc, OSError | LogFailed):
                    self._loop.call_soon_threadsafe(self._fail, exc)
                else:
                    failed = LogFailed(f"{type(exc).__name__}: {exc}")
                    self._loop.call_soon_threadsafe(self._fail, failed)
            except RuntimeError:  # the loop is closed: an abandoned write ended late
                pass

        return done

    def _count_late(self, count: int) -> None:
        self.written += count
        self._settle()

    def _drop_stalled(self) -> None:
        dropped = len(self._lines)
        self._lines = []
        self._taken += dropped
        self.stalled += dropped
        self._say_stalled()

    def _say_stalled(self) -> None:
        if not self._said_stalled:
            self._said_stalled = True
            self._report(
                f"log {self.path}: the file takes nothing (a reader or disk stalled for "
                f"{self._progress.patience:g}s); events that do not fit are dropped and counted"
            )

    # -- the writer --------------------------------------------------------------

    async def _write_batches(self) -> None:
        assert self._file is not None
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._lines and not self.failure:
                    await self._write(self._take())
                if self._closing:
                    if not self._lines or self.failure:
                        return
                    self._wake.set()
        except (OSError, LogFailed) as exc:
            self._fail(exc)
        except Exception as exc:  # never a loop error: say it once, stop logging
            self._fail(LogFailed(f"{type(exc).__name__}: {exc}"))
        finally:
            self._settle(everyone=True)

    async def _write(self, batch: list[str]) -> None:
        assert self._file is not None
        data = "".join(batch).encode("utf-8", ENCODING_ERRORS)
        # One hop for the write and the link check; the thread blocks signals, so a
        # write is never cut short by one: only a full disk (or a size limit) does.
        assert self._pieces is not None
        with freeze(self._loop):
            await self._pieces.write(data)
        self.written += len(batch)
        self._settle()



    def _fail(self, exc: BaseException) -> None:
        if self.failure:
            return
        self.failure = _reason(exc) if isinstance(exc, OSError) else str(exc)
        self._off = True
        self._dropped += len(self._lines)
        self._lines = []
        self._settle(everyone=True)
        self._report(f"log {self.path}: writing failed: {self.failure}; logging stopped")

    # -- closing -----------------------------------------------------------------

    async def flush(self) -> None:
        """Return once every event taken so far is written (or writing failed)."""
        if self.failure or self.written >= self.accepted or self._writer is None:
            return
        if self._writer.done():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((self.accepted, waiter))
        self._wake.set()
        while not waiter.done():  # while the file takes data: a stalled one is not waited on
            await asyncio.wait({waiter}, timeout=STALLED / 2)
            if not waiter.done() and self._progress.stuck():
                self._say_stalled()
                self._waiters = [(t, w) for t, w in self._waiters if w is not waiter]
                return

    def _settle(self, everyone: bool = False) -> None:
        """Wake the flush() callers whose events are now written."""
        if not self._waiters:
            return
        keep = []
        for target, waiter in self._waiters:
            if everyone or target <= self.written:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                keep.append((target, waiter))
        self._waiters = keep

    async def aclose(self) -> None:
        """Write everything queued, then close the file and the executor.

        The work runs in a task of its own, shielded: if the caller is cancelled (a
        signal while `log FILE` switches), the old log is still flushed and closed,
        and a later aclose() waits for the same task.
        """
        if self._closed is None:
            self._closed = asyncio.get_running_loop().create_task(
                self._close(), name="taskd:log-close"
            )
            _CLOSING.add(self._closed)
            self._closed.add_done_callback(_CLOSING.discard)
        await asyncio.shield(self._closed)

    async def _close(self) -> None:
        self.start()
        self._closing = self._off = True
        self._wake.set()
        writer = self._writer
        assert writer is not None
        while not writer.done():
            await asyncio.wait({writer}, timeout=STALLED / 2)
            # Closing is bounded by the end's promise (cancel_grace + 1 s), disk or not.
            if not writer.done() and self._progress.stuck(STALLED):
                self._abandon(writer)
                return
        try:
            if self._file is not None:
                with freeze(self._loop):
                    await self._file.close()
        except OSError as exc:
            self._fail(exc)
        finally:
            self._executor.shutdown(wait=False)

    def _abandon(self, writer: asyncio.Task[None]) -> None:
        """The file took nothing for STALLED seconds at the end: count what is not
        written, and leave the thread stuck in its write (it is not joined)."""
        self.abandoned = True
        writer.cancel()  # the coroutine stops waiting; the thread's write goes on
        unwritten = self.accepted - self.written
        self.failure = self.failure or "the file took nothing at the end (stalled)"
        self._settle(everyone=True)
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._report(
            f"log {self.path}: {unwritten} event{'' if unwritten == 1 else 's'} not written: "
            f"the file took nothing for {STALLED:g}s at the end; its writer is abandoned"
        )

    @property
    def queued(self) -> int:
        """Lines formatted and waiting for the writer."""
        return len(self._lines)

    @property
    def accepted(self) -> int:
        """Events the log was given since it opened."""
        return self._taken + len(self._lines) + self._dropped

    @property
    def lost(self) -> int:
        """Events not written since writing failed (0 while it works), or dropped
        while the file stalled."""
        return self.accepted - self.written if self.failure else self.stalled


def _close_late(opening: asyncio.Future[AsyncFileIO]) -> None:
    """An open that finished after its caller gave up: close what it opened."""
    if not opening.cancelled() and opening.exception() is None:
        raw = getattr(opening.result(), "_file", None)
        if raw is not None:
            raw.close()


async def wait_closed() -> None:
    """Wait until every log being closed on this loop is closed: a switch interrupted
    by a signal leaves the old log closing in the background, and the daemon must not
    stop its loop before that log is on disk."""
    loop = asyncio.get_running_loop()
    while pending := {t for t in _CLOSING if t.get_loop() is loop and not t.done()}:
        await asyncio.wait(pending)


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "no such file or folder (its folder must exist)"
    if exc.errno == errno.ENXIO:
        return "a FIFO that no process reads (start its reader first)"
    if exc.errno == errno.EISDIR:
        return "it is a directory"
    return exc.strerror or str(exc)
