"""The event log: task events appended to a file through aiofiles.

aiofiles runs every awaited call in a worker thread (50-95 us a call here), so one
`await write` per event would manage only 10-20k events/s. Instead the log is a sink
that only appends formatted lines to a list, and one writer task hands the whole
list to aiofiles in a single write whenever it wakes: batches grow by themselves
when events come fast.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from typing import Any

import aiofiles
from aiofiles.threadpool.text import AsyncTextIOWrapper

from .errors import CommandError
from .events import Event
from .formatting import iso

Report = Callable[[str], None]


def text_line(event: Event) -> str:
    """One or more lines, each starting with the time and the task's name."""
    head = f"{iso(event.ts)} {event.task} {event.event}"
    fields = event.fields
    if "text" in fields:
        body = fields["text"]
    elif "error" in fields:
        body = fields["error"]
    else:
        body = " ".join(f"{k}={v}" for k, v in fields.items() if k != "traceback")
    line = f"{head} {body}\n" if body else f"{head}\n"
    trace = fields.get("traceback")
    if trace:
        prefix = f"{iso(event.ts)} {event.task} traceback "
        line += "".join(prefix + t + "\n" for t in trace.rstrip("\n").split("\n"))
    return line


def json_line(event: Event) -> str:
    record: dict[str, Any] = {"ts": iso(event.ts), "task": event.task, "event": event.event}
    record.update(event.fields)
    return json.dumps(record, ensure_ascii=False, default=str) + "\n"


class EventLog:
    """One open log file and the task that writes to it."""

    def __init__(self, path: str, fmt: str, report: Report) -> None:
        self.path = path
        self.format = fmt
        self.written = 0
        self.failure = ""
        self._report = report
        self._format = json_line if fmt == "json" else text_line
        self._lines: list[str] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._file: AsyncTextIOWrapper | None = None
        self._writer: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Open FILE for appending; CommandError when it cannot be."""
        if os.path.isdir(self.path):
            raise CommandError(f"cannot log to {self.path!r}: it is a directory")
        try:
            self._file = await aiofiles.open(self.path, "a", encoding="utf-8", errors="replace")
        except OSError as exc:
            raise CommandError(f"cannot log to {self.path!r}: {exc.strerror}") from None
        self._writer = asyncio.get_running_loop().create_task(
            self._write_batches(), name="taskd:log-writer"
        )

    def __call__(self, event: Event) -> None:
        if self._closing or self.failure:
            return
        self._lines.append(self._format(event))
        if not self._wake.is_set():
            self._wake.set()

    async def _write_batches(self) -> None:
        assert self._file is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._lines and not self.failure:
                batch, self._lines = self._lines, []
                try:
                    await self._file.write("".join(batch))
                    await self._file.flush()
                except OSError as exc:
                    self._fail(exc)
                    break
                self.written += len(batch)
            if self._closing:
                return

    def _fail(self, exc: OSError) -> None:
        self.failure = exc.strerror or str(exc)
        self._lines = []
        self._report(f"log {self.path}: write failed ({self.failure}); logging stopped")

    async def aclose(self) -> None:
        """Write everything queued, then close the file."""
        self._closing = True
        self._wake.set()
        if self._writer is not None:
            await asyncio.shield(self._writer)
        if self._file is not None:
            try:
                await self._file.close()
            except OSError as exc:
                if not self.failure:
                    self._fail(exc)
