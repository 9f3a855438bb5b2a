"""Standard input and script files, read in chunks, without touching shared flags.

Measured here: a plain asyncio pipe reader takes about 1.3M lines/s; aiofiles costs a
thread hop per call, fine per 64 KiB chunk, ruinous per line. So:

- a pipe, FIFO or terminal on stdin is read by an asyncio pipe reader, but on a
  descriptor of taskd's own: /proc/self/fd/0 opened anew is a new open file, whose
  O_NONBLOCK (which the reader sets) is not shared with the process that gave us
  the pipe (FIELD-NOTES: the flag belongs to the open file);
- a regular file, /dev/null (which epoll refuses: asked first), a socket (which
  cannot be opened anew), or anything the loop refuses is read through aiofiles in
  64 KiB chunks on a thread of its own.
- a named FIFO given as the script is opened on a daemon thread (open() blocks until
  a writer comes, and must not hold the process at exit), then read like a pipe.

Under the virtual clock (taskd.clock) every wait for the next chunk freezes the
clock: a script's reading takes no virtual time, and no timer fires while taskd
waits for its next line, so two runs of a script print the same bytes.

Output is in sinks.py.
"""

from __future__ import annotations

import asyncio
import os
import select
import stat
import threading
from collections.abc import AsyncGenerator, AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing

import aiofiles

from ..clock import exempt, freeze
from ..linesplit import LineSplitter, LineTooLong

CHUNK = 1 << 16


def is_regular(fd: int) -> bool:
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False


def fill_closed() -> None:
    """Put /dev/null on a standard fd that was closed (`taskd >&-`): otherwise the
    next file opened (the script, the log) would get that number, and what taskd
    writes to stdout would go into it. Writes to it are then simply discarded."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def _reopen(fd: int) -> int | None:
    """A new open file for what FD is (a pipe, FIFO or terminal), or None."""
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISFIFO(mode) or (stat.S_ISCHR(mode) and _watchable(fd))):
            return None
        return os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def _watchable(fd: int) -> bool:
    """Whether the loop can wait for FD, a character device: epoll refuses /dev/null
    and its like (EPERM). asyncio's pipe reader learns that only in a callback, after
    it was made (an error printed, and a reader that never wakes: `taskd < /dev/null`
    hung), and uvloop's aborts the process; so ask epoll first."""
    try:
        with select.epoll() as poll:
            poll.register(fd, select.EPOLLIN)
    except OSError:
        return False
    return True


async def _pipe_chunks(fd: int) -> AsyncGenerator[bytes, None]:
    """FD (ours, closed at the end) through an asyncio pipe reader."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=CHUNK)
    pipe = os.fdopen(fd, "rb", buffering=0)
    try:
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe
        )
    except (OSError, ValueError):  # epoll refuses it (/dev/null and the like)
        pipe.close()
        raise
    try:
        async with aclosing(_reader_chunks(reader)) as chunks:
            async for chunk in chunks:
                yield chunk
    finally:
        transport.close()


async def stdin_chunks() -> AsyncGenerator[bytes, None]:
    """Standard input in chunks, from whichever reader fits what fd 0 is."""
    fd = _reopen(0)
    if fd is not None:
        try:
            chunks = _pipe_chunks(fd)
            first = await anext(chunks, None)
        except (OSError, ValueError):
            pass  # not something the loop can watch: read it on a thread instead
        else:
            async with aclosing(chunks):
                if first is not None:
                    yield first
                    async for chunk in chunks:
                        yield chunk
            return
    async with aclosing(file_chunks(0)) as chunks:
        async for chunk in chunks:
            yield chunk


async def path_chunks(path: str) -> AsyncGenerator[bytes, None]:
    """A script file in chunks; a named FIFO is opened without holding the exit."""
    try:
        fifo = stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        fifo = False
    if not fifo:
        async with aclosing(file_chunks(path)) as chunks:
            async for chunk in chunks:
                yield chunk
        return
    loop = asyncio.get_running_loop()
    opened: asyncio.Future[int] = loop.create_future()

    def open_fifo() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            loop.call_soon_threadsafe(_settle, opened, exc)
        else:
            loop.call_soon_threadsafe(_settle, opened, fd)

    threading.Thread(target=open_fifo, name="taskd-fifo-open", daemon=True).start()
    with freeze(loop):
        fd = await opened
    async with aclosing(_pipe_chunks(fd)) as chunks:
        async for chunk in chunks:
            yield chunk


def _settle(future: asyncio.Future[int], value: int | OSError) -> None:
    if future.done():
        if isinstance(value, int):
            os.close(value)  # nobody waits for it any more
        return
    if isinstance(value, OSError):
        future.set_exception(value)
    else:
        future.set_result(value)


async def _reader_chunks(reader: asyncio.StreamReader) -> AsyncGenerator[bytes, None]:
    while True:
        with freeze():
            chunk = await reader.read(CHUNK)
        if not chunk:
            return
        yield chunk


async def file_chunks(path: str | int) -> AsyncGenerator[bytes, None]:
    """A file read through aiofiles in 64 KiB chunks: one thread hop per chunk, not
    per line (a hop costs 50-95 us here, which per line would cap us at ~15k lines/s).

    On a thread of its own, not the loop's default pool: 32 `blocking` tasks fill
    that pool, and the next read (even the one that finds the end) would wait for
    one of their sleeps to end (measured: 33 `blocking 8` lines kept taskd 8.6 s)."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="taskd-reader")
    exempt(asyncio.get_running_loop(), executor)  # its reads freeze the clock, not hold it
    try:
        # Not `async with`: aiofiles' context manager closes the file on the default
        # pool whatever executor it was opened with; close() honours the executor.
        with freeze():
            f = await aiofiles.open(
                path, "rb", closefd=not isinstance(path, int), executor=executor
            )
        try:
            while True:
                with freeze():
                    chunk = await f.read(CHUNK)
                if not chunk:
                    break
                yield chunk
        finally:
            with freeze():
                await f.close()
    finally:
        executor.shutdown(wait=False)


async def line_batches(
    chunks: AsyncIterator[bytes], limit: int
) -> AsyncGenerator[list[bytes | LineTooLong], None]:
    """The lines of each chunk, together: where a batch ends, the input paused, and
    the replies to it can go out at once. Lines come without their newline; a last
    line without one still counts. A line over LIMIT bytes is not kept in memory: it
    comes out as a LineTooLong."""
    splitter = LineSplitter(limit)
    async for chunk in chunks:
        if batch := splitter.feed(chunk):
            yield batch
    if batch := splitter.end():
        yield batch
