"""file: writing and reading a file through aiofiles (aiofiles01).

A plain open() and write() block the loop while the disk works; aiofiles runs each
call in a worker thread and awaits it, so other tasks go on meanwhile. Each `await`
is one trip to a thread and back, which is why the lines are written in batches.
"""

from __future__ import annotations

import os
import stat

import aiofiles
import aiofiles.os

from ..errors import CommandError, shown
from ._spec import Arg, builtin

MARK = "# written by taskd's file kind\n"  # the only files it will overwrite
MOST_LINES = 1_000_000
BATCHES = 4
# Characters read at most for one line: the mark, or one of ours ("line 1000000\n").
# A readline runs in a thread that no cancel stops: unbounded, a file whose line never
# ends (a device like /dev/zero) filled memory, and went on after `cancel`.
LINE_READ = len(MARK) + 1


class FileTaskError(Exception):
    """The path cannot be used; the message is the one-line reason."""


def _lines(label: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MOST_LINES:
        raise CommandError(f"{label}: expected a whole number from 1 to {MOST_LINES:,}, "
                           f"got {shown(text)}")
    return value


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


async def _check_overwrite(path: str) -> None:
    """Refuse to replace a file this kind did not write: PATH is a user's word."""
    try:
        mode = (await aiofiles.os.stat(path)).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # a directory is said below
            raise FileTaskError(f"{path!r} is not a regular file")
        async with aiofiles.open(path, encoding="utf-8", errors="replace") as f:
            first = await f.readline(LINE_READ)
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise FileTaskError(f"{path!r} is a directory") from None
    except OSError as exc:
        raise FileTaskError(f"cannot read {path!r}: {_reason(exc)}") from None
    if first and first != MARK:
        raise FileTaskError(f"{path!r} exists and was not written by `file`; not overwritten")


@builtin(
    "file",
    "writes LINES lines to PATH through aiofiles, then reads them back, printing progress",
    Arg("PATH"),
    Arg("LINES", _lines, 100),
)
async def file(path: str, lines: int) -> int:
    await _check_overwrite(path)
    step = -(-lines // BATCHES)  # lines per batch, rounded up
    try:
        async with aiofiles.open(path, "w", encoding="utf-8") as f:
            await f.write(MARK)
            for start in range(0, lines, step):
                end = min(start + step, lines)
                await f.write("".join(f"line {n}\n" for n in range(start + 1, end + 1)))
                print(f"wrote {end}/{lines} lines")
        print(f"closed {path}: {os.path.getsize(path):,} bytes")
        seen = 0
        async with aiofiles.open(path, encoding="utf-8", errors="replace") as f:
            await f.readline(LINE_READ)  # the mark
            while line := await f.readline(LINE_READ):
                seen += 1
                if line != f"line {seen}\n":
                    raise FileTaskError(f"{path!r} changed while it was read (line {seen + 1})")
                if seen % step == 0 or seen == lines:
                    print(f"read {seen}/{lines} lines")
    except IsADirectoryError:
        raise FileTaskError(f"{path!r} is a directory") from None
    except OSError as exc:
        raise FileTaskError(f"cannot use {path!r}: {_reason(exc)}") from None
    if seen != lines:
        raise FileTaskError(f"{path!r} has {seen} lines, not {lines}: it changed meanwhile")
    print(f"read back all {lines} lines: the same as written")
    return seen
