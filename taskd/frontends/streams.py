"""Standard streams for a non-interactive taskd, each opened the fast, lossless way.

Measured on this machine: aioconsole's standard streams are fast (330k lines/s)
only when stdin, stdout and stderr are all pipes, terminals or sockets; when one is
a regular file it starts a thread per readline (2.6k lines/s). In its fast mode it
sets O_NONBLOCK on fds 0-2, so a plain write can silently drop bytes: everything is
written through its stream writers and drained. So:

- all three pipe-like: aioconsole's reader and writers;
- otherwise stdout/stderr are written with blocking os.write calls, batched once per
  loop iteration (a regular file never blocks for long), and stdin is read with a
  plain asyncio pipe reader, or through aiofiles in large chunks when it is a
  regular file or something epoll refuses (/dev/null), which asyncio cannot watch.

The fds' flags are restored on close, so a shell sharing our terminal is not left
non-blocking.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import stat
import sys
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiofiles
from aioconsole.stream import create_standard_streams, is_pipe_transport_compatible

from ..fragments import Line, plain

CHUNK = 1 << 16
ENCODING_ERRORS = "backslashreplace"  # printing never fails on odd text


def pipe_like(stream: Any) -> bool:
    return bool(is_pipe_transport_compatible(stream))


def is_regular(fd: int) -> bool:
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False


class _Buffered:
    """Text queued per stream, handed on once per loop iteration."""

    def __init__(self, on_broken: Callable[[str], None]) -> None:
        self._out: list[str] = []
        self._err: list[str] = []
        self._on_broken = on_broken
        self.broken: set[str] = set()
        self.failures: dict[str, OSError] = {}  # why a stream was lost

    def write(self, text: str) -> None:
        if "stdout" not in self.broken:
            self._out.append(text)
            self._kick()

    def line(self, line: Line) -> None:
        if "stdout" not in self.broken:
            self._out.append((line if isinstance(line, str) else plain(line)) + "\n")
            self._kick()

    def error(self, text: str) -> None:
        if "stderr" not in self.broken:
            self._err.append(text)
            self._kick()

    def _kick(self) -> None:
        raise NotImplementedError

    def _take(self) -> tuple[bytes, bytes]:
        out = "".join(self._out).encode("utf-8", ENCODING_ERRORS)
        err = "".join(self._err).encode("utf-8", ENCODING_ERRORS)
        self._out.clear()
        self._err.clear()
        return out, err

    def _lost(self, which: str, exc: OSError | None = None) -> None:
        if which not in self.broken:
            self.broken.add(which)
            if exc is not None:
                self.failures[which] = exc
            self._on_broken(which)


class FdOutput(_Buffered):
    """Blocking writes to fds 1 and 2, once per loop iteration."""

    def __init__(self, on_broken: Callable[[str], None], out_fd: int = 1, err_fd: int = 2) -> None:
        super().__init__(on_broken)
        self._fds = {"stdout": out_fd, "stderr": err_fd}
        self._scheduled = False

    def _kick(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        out, err = self._take()
        for which, data in (("stdout", out), ("stderr", err)):
            view = memoryview(data)
            while view and which not in self.broken:
                try:
                    view = view[os.write(self._fds[which], view) :]
                except InterruptedError:
                    continue
                except BlockingIOError:  # someone made it non-blocking: wait for room
                    _wait_writable(self._fds[which])
                except OSError as exc:
                    self._lost(which, exc)

    async def drain(self) -> None:
        self.flush()

    async def aclose(self) -> None:
        self.flush()


def _wait_writable(fd: int) -> None:
    import select

    select.select([], [fd], [], 1.0)


class StreamOutput(_Buffered):
    """aioconsole's stream writers, fed by one flusher task that drains them."""

    def __init__(self, out: Any, err: Any, on_broken: Callable[[str], None]) -> None:
        super().__init__(on_broken)
        self._writers = {"stdout": out, "stderr": err}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._flusher = asyncio.get_running_loop().create_task(
            self._flush_forever(), name="taskd:output"
        )

    def _kick(self) -> None:
        if not self._wake.is_set():  # once per batch, not once per line
            self._idle.clear()
            self._wake.set()

    async def _flush_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            out, err = self._take()
            for which, data in (("stdout", out), ("stderr", err)):
                writer = self._writers[which]
                if not data or which in self.broken:
                    continue
                if writer.transport.is_closing():
                    self._lost(which)
                    continue
                try:
                    writer.write(data)
                    await writer.drain()
                except OSError as exc:
                    self._lost(which, exc)
            if not self._wake.is_set():
                self._idle.set()

    async def drain(self) -> None:
        await self._idle.wait()

    async def aclose(self) -> None:
        await self.drain()
        self._flusher.cancel()
        await asyncio.wait({self._flusher})
        for writer in self._writers.values():
            writer.close()  # closes the transport; aioconsole keeps the fd itself open


def _fill_closed(fd: int) -> None:
    """Put /dev/null on a standard fd that was closed (`taskd >&-`): otherwise the
    next file opened (the script, the log) would get that number, and what taskd
    writes to stdout would go into it. Writes to it are then simply discarded."""
    null = os.open(os.devnull, os.O_RDWR)
    if null != fd:
        os.dup2(null, fd)
        os.close(null)


PIPE_SIZE = 1 << 20


def _widen_pipe(fd: int) -> None:
    """Let a pipe hold 1 MiB (Linux; 64 KiB by default) when FD is one.

    Non-blocking output is written one pipe-full per loop iteration: a 10,000-row
    `show` took 6 iterations, 70 ms while 10,000 tasks ticked (tests/bench,
    scenario responsive). Where the system refuses, the pipe stays as it was."""
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    try:
        if setsize is not None and stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, setsize, PIPE_SIZE)
    except OSError:
        pass


class StdStreams:
    """Opens taskd's standard streams and restores the fds' flags afterwards."""

    def __init__(self) -> None:
        self._flags = {}
        for fd in (0, 1, 2):
            try:
                self._flags[fd] = fcntl.fcntl(fd, fcntl.F_GETFL)
            except OSError:
                _fill_closed(fd)
        self.reader: asyncio.StreamReader | None = None

    async def open_output(
        self, on_broken: Callable[[str], None], with_stdin: bool
    ) -> StreamOutput | FdOutput:
        """The fastest lossless output; also prepares stdin's reader when it can."""
        streams = (sys.__stdin__, sys.__stdout__, sys.__stderr__)
        if all(s is not None and pipe_like(s) for s in streams):
            _widen_pipe(1)
            reader, out, err = await create_standard_streams(*streams)
            if with_stdin:
                self.reader = reader
            return StreamOutput(out, err, on_broken)
        return FdOutput(on_broken)

    def restore(self) -> None:
        for fd, flags in self._flags.items():
            try:
                fcntl.fcntl(fd, fcntl.F_SETFL, flags)
            except OSError:
                pass


async def stdin_chunks(streams: StdStreams) -> AsyncIterator[bytes]:
    """Standard input in chunks, from whichever reader fits what fd 0 is."""
    if streams.reader is not None:
        async for chunk in _reader_chunks(streams.reader):
            yield chunk
        return
    stdin = sys.__stdin__
    if stdin is not None and pipe_like(stdin) and not is_regular(0):
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=CHUNK)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", closefd=False)
        )
        async for chunk in _reader_chunks(reader):
            yield chunk
        return
    async for chunk in file_chunks(0):
        yield chunk


async def _reader_chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while chunk := await reader.read(CHUNK):
        yield chunk


async def file_chunks(path: str | int) -> AsyncIterator[bytes]:
    """A file read through aiofiles in 64 KiB chunks: one thread hop per chunk, not
    per line (a hop costs 50-95 us here, which per line would cap us at ~15k lines/s).

    On a thread of its own, not the loop's default pool: 32 `blocking` tasks fill
    that pool, and the next read (even the one that finds the end) would wait for
    one of their sleeps to end (measured: 33 `blocking 8` lines kept taskd 8.6 s)."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="taskd-reader")
    try:
        # Not `async with`: aiofiles' context manager closes the file on the default
        # pool whatever executor it was opened with; close() honours the executor.
        f = await aiofiles.open(path, "rb", closefd=not isinstance(path, int), executor=executor)
        try:
            while chunk := await f.read(CHUNK):
                yield chunk
        finally:
            await f.close()
    finally:
        executor.shutdown(wait=False)


class LineTooLong:
    """Stands for a line over the limit; only its length is kept."""

    def __init__(self, length: int) -> None:
        self.length = length


async def split_lines(
    chunks: AsyncIterator[bytes], limit: int
) -> AsyncIterator[bytes | LineTooLong]:
    """Lines without their newline; a last line without one still counts. A line
    over LIMIT bytes is not kept in memory: it comes out as a LineTooLong."""
    partial = bytearray()
    skipped = 0  # bytes of an over-long line seen so far
    async for chunk in chunks:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                piece = chunk[start:]
                if skipped:
                    skipped += len(piece)
                elif len(partial) + len(piece) > limit:
                    skipped = len(partial) + len(piece)
                    partial.clear()
                else:
                    partial += piece
                break
            piece = chunk[start:end]
            if skipped or len(partial) + len(piece) > limit:
                yield LineTooLong(skipped + len(partial) + len(piece))
                skipped = 0
            else:
                partial += piece
                yield bytes(partial)
            partial.clear()
            start = end + 1
    if skipped:
        yield LineTooLong(skipped)
    elif partial:
        yield bytes(partial)
