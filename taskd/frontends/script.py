"""The script front-end: commands from a file or a pipe, never a prompt.

Errors go to stderr as SOURCE:LINE: error: MESSAGE and reading goes on (with
--strict it stops at the first). The exit status is 1 when any command failed,
when any task ended failed (the last line on stderr names them), or when output was
lost. End of input means end: the front-end asks the daemon to end.
"""

from __future__ import annotations

import errno
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing

from ..daemon import Daemon
from ..errors import CommandError
from ..linesplit import LineTooLong
from ..output import Output
from ..protocol import BadLine, text_of, too_long
from ..reply import Reply
from .sinks import StdOutput
from .streams import fill_closed, line_batches, path_chunks, stdin_chunks

MAX_LINE = 64 * 1024
BOM = "\ufeff"
_NAMES = {"stdout": "standard output", "stderr": "standard error"}


class ScriptFrontend:
    """Reads SOURCE (a path, or '-' for standard input) line by line."""

    owns_terminal = True
    fails_with_tasks = True  # a task that failed fails the script, waited on or not

    def __init__(self, source: str = "-", strict: bool = False) -> None:
        self.source = source
        self.label = "<stdin>" if source == "-" else source
        self.strict = strict
        self.failures = 0
        self._daemon: Daemon | None = None
        self._output: StdOutput | None = None
        fill_closed()  # before the loop exists: its own fds must not take 0, 1 or 2

    async def open(self, daemon: Daemon) -> Output:
        self._daemon = daemon
        self._output = StdOutput(self._broken, self._stalled)
        return self._output

    def _broken(self, which: str, failure: OSError | None) -> None:
        # Nobody reads us any more (`taskd s.tdc | head -1`), or the disk is full:
        # stop, with status 1 (output was lost), saying why unless it was a pipe
        # closed by its reader, which is how pipelines end.
        daemon = self._daemon
        if which != "stdout" or daemon is None:
            return
        daemon.exit_status = max(daemon.exit_status, 1)
        if failure is not None and failure.errno != errno.EPIPE:
            reason = failure.strerror or type(failure).__name__
            daemon.report(f"error: cannot write to standard output: {reason}; ending")
        daemon.request_end()

    def _stalled(self, which: str) -> None:
        if self._daemon is not None:
            self._daemon.report(
                f"warning: {_NAMES[which]} is not being read; what does not fit is "
                "dropped and counted from now on"
            )

    def _chunks(self) -> AsyncGenerator[bytes, None]:
        if self.source == "-":
            return stdin_chunks()
        return path_chunks(self.source)

    async def run(self, daemon: Daemon) -> None:
        assert self._output is not None
        reply = Reply(self._output)
        # Closed here, whether the input ends or `end` comes first: a reader left
        # suspended would be closed by the garbage collector later, its file's close
        # a thread hop that the stopped loop never finishes ("Task was destroyed
        # but it is pending!" after a script's `end`, about once in 60 runs).
        chunks = self._chunks()
        async with aclosing(chunks), aclosing(line_batches(chunks, MAX_LINE)) as batches:
            await self._run_lines(daemon, reply, batches)

    async def _run_lines(
        self,
        daemon: Daemon,
        reply: Reply,
        batches: AsyncIterator[list[bytes | LineTooLong]],
    ) -> None:
        output = self._output
        assert output is not None
        lineno = 0
        async for batch in batches:
            for raw in batch:
                lineno += 1
                try:
                    await daemon.execute(self._text(raw, lineno), reply)
                except CommandError as exc:
                    self.failures += 1
                    daemon.exit_status = max(daemon.exit_status, 1)
                    output.error(f"{self.label}:{lineno}: error: {exc}\n")
                    if self.strict:
                        daemon.request_end()
                        return
                if daemon.ending:
                    return
            # The input paused: what was said in reply goes out now, not after the
            # rest of this loop iteration (under 10,000 ticking tasks, thousands of
            # steps: tests/bench, scenario responsive).
            output.flush()
        daemon.request_end()  # end of input means end

    @staticmethod
    def _text(raw: bytes | LineTooLong, lineno: int) -> str:
        """Line LINENO as text; CommandError if it is too long or not UTF-8."""
        try:
            if isinstance(raw, LineTooLong):
                raise too_long(raw.length, MAX_LINE)
            line = text_of(raw, MAX_LINE)
        except BadLine as exc:
            raise CommandError(str(exc)) from None
        if lineno == 1 and line.startswith(BOM):
            line = line[1:]  # a byte-order mark some editors write
        return line

    def interrupt(self, daemon: Daemon) -> None:
        from signal import SIGINT

        daemon.request_end(SIGINT)

    async def aclose(self) -> None:
        output = self._output
        if output is None:
            return
        await output.drain()
        daemon = self._daemon
        if daemon is not None and (failed := daemon.engine.failures_line()):
            output.error(f"taskd: {failed}\n")  # the exit status says so (Daemon.shutdown)
        for which, count in output.dropped.items():
            if self._daemon is not None:
                self._daemon.exit_status = max(self._daemon.exit_status, 1)
            output.error(
                f"taskd: {count} line{'s' if count != 1 else ''} of {_NAMES[which]} "
                "dropped: it was not being read\n"
            )
        await output.aclose()
