"""The script front-end: commands from a file or a pipe, never a prompt.

Errors go to stderr as SOURCE:LINE: error: MESSAGE and reading goes on (with
--strict it stops at the first). The exit status is 1 when any command failed.
"""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator

from ..daemon import Daemon
from ..errors import CommandError
from ..output import Output
from ..reply import Reply
from .streams import (
    FdOutput,
    LineTooLong,
    StdStreams,
    StreamOutput,
    file_chunks,
    split_lines,
    stdin_chunks,
)

MAX_LINE = 64 * 1024


class ScriptFrontend:
    """Reads SOURCE (a path, or '-' for standard input) line by line."""

    def __init__(self, source: str = "-", strict: bool = False) -> None:
        self.source = source
        self.label = "<stdin>" if source == "-" else source
        self.strict = strict
        self.failures = 0
        self._streams = StdStreams()
        self._output: StreamOutput | FdOutput | None = None

    async def open(self, daemon: Daemon) -> Output:
        def broken(which: str) -> None:
            # Nobody reads us any more (`taskd s.tdc | head -1`), or the disk is full:
            # stop, with status 1 (output was lost), saying why unless it was a pipe
            # closed by its reader, which is how pipelines end.
            if which != "stdout":
                return
            daemon.exit_status = max(daemon.exit_status, 1)
            failure = self._output.failures.get(which) if self._output else None
            if failure is not None and failure.errno != errno.EPIPE:
                reason = failure.strerror or type(failure).__name__
                daemon.report(f"error: cannot write to standard output: {reason}; ending")
            daemon.request_end()

        self._output = await self._streams.open_output(broken, with_stdin=self.source == "-")
        return self._output

    def _chunks(self) -> AsyncIterator[bytes]:
        if self.source == "-":
            return stdin_chunks(self._streams)
        return file_chunks(self.source)

    async def run(self, daemon: Daemon) -> None:
        assert self._output is not None
        reply = Reply(self._output)
        lineno = 0
        async for raw in split_lines(self._chunks(), MAX_LINE):
            lineno += 1
            try:
                if isinstance(raw, LineTooLong):
                    raise CommandError(
                        f"line too long ({raw.length} bytes; the limit is {MAX_LINE})"
                    )
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise CommandError(
                        f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                    ) from None
                await daemon.execute(line, reply)
            except CommandError as exc:
                self.failures += 1
                daemon.exit_status = max(daemon.exit_status, 1)
                self._output.error(f"{self.label}:{lineno}: error: {exc}\n")
                if self.strict:
                    return
            if daemon.ending:
                return

    def interrupt(self, daemon: Daemon) -> None:
        from signal import SIGINT

        daemon.request_end(SIGINT)

    async def aclose(self) -> None:
        if self._output is not None:
            await self._output.aclose()  # ends its flusher task, which must not be left pending
        self._streams.restore()
