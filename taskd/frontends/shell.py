"""The interactive shell: a prompt_toolkit prompt as one more task on the daemon's loop.

The prompt is `prompt_async()` awaited by the front-end's run task, so tasks keep
running while the person types, and their output is written above the prompt by
AboveThePrompt. A command line runs as its own task, so that Ctrl-C (SIGINT, which
the daemon hands to `interrupt()`) can cancel the command without touching the
daemon or the tasks it started.

Keys: Ctrl-C abandons the line being typed (a second one on an empty line says how
to leave); Ctrl-D on an empty line is `end`; Ctrl-R searches the history, Up and
Down walk it; Tab completes; Ctrl-Z suspends taskd as it would any program (the
terminal restored first, the prompt redrawn on `fg`).

A paste of several lines (bracketed paste: the terminal marks where it begins and
ends) runs each line as its own command, in order, each shown at its own prompt and
stored as its own history entry, exactly as if typed; what follows the last newline
stays at the prompt to be edited. Ctrl-C during a command drops the lines not yet run.

Text typed while a command runs waits for the next prompt and is shown there once:
the terminal's own echo is off while a command runs (only ECHO: the line discipline
still gathers the typing, and Ctrl-C and Ctrl-Z still signal).

The terminal is given back as it was found: when the daemon cancels the run task
(SIGTERM, SIGHUP), the cancellation reaches prompt_async, which leaves raw mode
before the task ends, and the daemon waits for the task before its loop stops.

Two prompt_toolkit defaults are turned off on purpose: its loop exception handler
(set_exception_handler) would stop at "Press ENTER to continue" and eat the next
line typed, and its SIGINT handler (handle_sigint) would replace the daemon's and
remove it when the prompt ends.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Mapping

from prompt_toolkit import PromptSession
from prompt_toolkit.application import Application
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.input import Input, create_input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.keys import Keys
from prompt_toolkit.output import Output as TerminalOutput

from ..clock import hold
from ..config import Config
from ..daemon import Daemon
from ..errors import CommandError
from ..output import Output
from ..reply import Reply
from . import colors
from .above import AboveThePrompt
from .completion import TaskdCompleter
from .history import make_history
from .jobcontrol import stopped_in_background
from .terminal import real_terminal, unechoed
from .toolbar import LagMeter, toolbar

LEAVE_HINT = "(type `end` or press Ctrl-D on an empty line to leave taskd)\n"


class ShellFrontend:
    """Reads command lines from a person at a terminal."""

    def __init__(
        self,
        config: Config,
        *,
        input: Input | None = None,
        output: TerminalOutput | None = None,
        environ: Mapping[str, str] | None = None,
        lag: Callable[[], float | None] | None = None,
    ) -> None:
        """INPUT and OUTPUT default to the real terminal (fds 0 and 1, whatever
        sys.stdin and sys.stdout have become); tests pass a pipe and a buffer."""
        self.config = config
        self.environ = os.environ if environ is None else environ
        self._input = input
        self._terminal = output
        self.session: PromptSession[str] | None = None
        self.output: AboveThePrompt | None = None
        self.reply: Reply | None = None
        self.failures = 0
        self.hung_up = False  # input ended because the terminal went away
        self.prompts = 0  # prompts shown so far
        self.colored = False
        self.lag = LagMeter()
        # The loop lag the toolbar shows: this loop's own, or (attached) the daemon's.
        self._lag = lag or (lambda: self.lag.lag)
        self._command: asyncio.Task[None] | None = None
        self.running_command: str | None = None  # the line being executed
        self._interrupted = False
        self._interrupt_pending = False
        self._abandoned_text = ""
        self._empty_interrupts = 0
        self._pasted: deque[str] = deque()  # lines of a paste not yet run
        self._paste_tail = ""  # after a paste's last newline: the next prompt's text

    # -- the Frontend protocol ------------------------------------------------------

    async def open(self, daemon: Daemon) -> Output:
        # The real streams, not sys.stdout: the daemon is about to replace that
        # with its task-output capture, which prompt_toolkit must never write to.
        terminal = self._terminal or real_terminal()
        keys = self._input or create_input(sys.__stdin__)
        self._terminal = terminal
        on = colors.wants_color(
            self.config.color, self.environ, self._terminal_colors(terminal)
        )
        self.colored = on
        depth = colors.color_depth(on, terminal.get_default_color_depth())
        style = colors.COLOR_STYLE if on else colors.PLAIN_STYLE
        loop = asyncio.get_running_loop()

        def report(message: str) -> None:  # also called from the history's thread
            loop.call_soon_threadsafe(daemon.report, message)

        self.session = PromptSession(
            message=self._message,
            input=keys,
            output=terminal,
            history=make_history(self.config.history_file, self.environ, report),
            completer=TaskdCompleter(daemon.engine),
            complete_while_typing=False,
            enable_history_search=False,  # Ctrl-R searches; Up walks the history
            bottom_toolbar=lambda: self._toolbar(daemon),
            refresh_interval=0.5,
            key_bindings=self._key_bindings(),
            style=style,
            color_depth=depth,
        )
        self.output = AboveThePrompt(terminal, style, depth, self._app)
        self.reply = Reply(self.output, lambda: terminal.get_size().columns)
        return self.output

    async def run(self, daemon: Daemon) -> None:
        meter = asyncio.get_running_loop().create_task(self.lag.run(), name="taskd:lag")
        try:
            with stopped_in_background(self._terminal_fd(), self._app):
                await self._run(daemon)
        finally:
            meter.cancel()

    async def _run(self, daemon: Daemon) -> None:
        while not daemon.ending:
            line = await self._read_line()
            if line is None:  # Ctrl-D on an empty line, or the terminal is gone
                daemon.request_end(signal.SIGHUP if self.hung_up else None)
                return
            if not line.strip():
                continue
            assert self.output is not None
            # While it runs, the toolbar is the output's last line (above.py).
            self.output.status(lambda: self._toolbar(daemon))
            try:
                with unechoed(sys.__stdin__ if self._input is None else None):
                    await self._execute(daemon, line)
                    # A command's output comes before the next prompt, even
                    # when the next line was typed ahead.
                    await self._drain()
            finally:
                self.output.status(None)

    def interrupt(self, daemon: Daemon) -> None:
        """SIGINT: cancel the running command; at the prompt, abandon the line."""
        command = self._command
        if command is not None and not command.done():
            self._interrupted = True
            self._pasted.clear()
            self._paste_tail = ""
            command.cancel()
            return
        app = self._app()
        if app is not None and app.is_running and not app.is_done:
            self._abandon(app)
        else:
            # Between Enter and the command's start (the prompt is winding down):
            # the Ctrl-C was meant for the command about to run.
            self._interrupt_pending = True

    async def aclose(self) -> None:
        if self.output is not None:
            await self.output.aclose()

    # -- reading ----------------------------------------------------------------------

    async def _read_line(self) -> str | None:
        """The next line typed; None for Ctrl-D on an empty line."""
        assert self.session is not None and self.output is not None
        while True:
            self.prompts += 1
            self._interrupt_pending = False
            # The next line of a paste is accepted as soon as it is drawn.
            pasted = self._pasted.popleft() if self._pasted else None
            default = pasted if pasted is not None else self._paste_tail
            if pasted is None:
                self._paste_tail = ""
            try:
                # On the virtual clock, time runs at real speed while a person types
                # (the prompt's own timers, and the tasks, go on as they would).
                with hold():
                    return await self.session.prompt_async(
                        default=default,
                        accept_default=pasted is not None,
                        set_exception_handler=False,
                        handle_sigint=False,
                    )
            except EOFError:
                # Ctrl-D, or the terminal hung up and its input ended: then the
                # kernel's SIGHUP may come after this, or never reach us in time.
                self.hung_up = self.session.input.closed
                return None
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                self.hung_up = True  # EIO: nothing can be read or shown any more
                self.output.hung_up()
                return None
            except KeyboardInterrupt:
                if self._abandoned_text.strip():
                    self._empty_interrupts = 0
                    continue
                self._empty_interrupts += 1
                if self._empty_interrupts >= 2:
                    self._empty_interrupts = 0
                    self.output.write(LEAVE_HINT)

    async def _drain(self) -> None:
        if self.output is not None:
            await self.output.drain()

    def _key_bindings(self) -> KeyBindings:
        bindings = KeyBindings()

        @bindings.add("c-c")
        def _(event: KeyPressEvent) -> None:
            self._abandon(event.app)

        @bindings.add("c-z")
        def _(event: KeyPressEvent) -> None:
            # SIGTSTP to taskd's process group, from outside the prompt's raw
            # mode; on SIGCONT prompt_toolkit takes the terminal again and redraws.
            # The daemon's handlers (INT, TERM, HUP) are not touched.
            event.app.suspend_to_background()

        @bindings.add(Keys.BracketedPaste)
        def _(event: KeyPressEvent) -> None:
            self._paste(event)

        return bindings

    def _paste(self, event: KeyPressEvent) -> None:
        """A paste: one line is typed text; several are several commands."""
        data = event.data.replace("\r\n", "\n").replace("\r", "\n")
        buffer = event.current_buffer
        if "\n" not in data:
            buffer.insert_text(data)
            return
        cursor = buffer.cursor_position
        *lines, tail = (buffer.text[:cursor] + data + buffer.text[cursor:]).split("\n")
        lines = [line for line in lines if line.strip()]
        if not lines:
            buffer.text, buffer.cursor_position = tail, len(tail)
            return
        self._pasted.extend(lines[1:])
        self._paste_tail = tail
        buffer.text = lines[0]
        buffer.validate_and_handle()  # as Enter: run it, store it in the history

    def _abandon(self, app: Application[str]) -> None:
        self._abandoned_text = app.current_buffer.text
        app.exit(exception=KeyboardInterrupt, style="class:aborting")

    def _toolbar(self, daemon: Daemon) -> StyleAndTextTuples:
        columns = self._terminal.get_size().columns if self._terminal is not None else None
        return toolbar(daemon.engine, self._lag(), columns)

    def _message(self) -> StyleAndTextTuples:
        return [("class:prompt", self.config.prompt)]

    def _app(self) -> Application[str] | None:
        return self.session.app if self.session is not None else None

    def _terminal_fd(self) -> int | None:
        try:
            return self._terminal.fileno() if self._terminal is not None else None
        except (OSError, NotImplementedError, ValueError):
            return None  # a test's buffer: no terminal, no job control

    # -- running a command ------------------------------------------------------------

    async def _execute(self, daemon: Daemon, line: str) -> None:
        """Run LINE as its own task, so that Ctrl-C can cancel just the command."""
        assert self.output is not None
        self._empty_interrupts = 0
        self._interrupted = False
        command = asyncio.get_running_loop().create_task(
            daemon.execute(line, self.reply), name="taskd:command"
        )
        self._command = command
        self.running_command = line
        if self._interrupt_pending:
            self._interrupted = True
            command.cancel()
        try:
            await asyncio.wait({command})
        except asyncio.CancelledError:  # the daemon is ending: the command goes too
            command.cancel()
            await asyncio.wait({command})
            raise
        finally:
            self._command = None
            self.running_command = None
        if command.cancelled():
            if self._interrupted:
                self.output.write(f"interrupted: {line.strip()}\n")
            return
        exc = command.exception()
        if isinstance(exc, CommandError):
            self.failures += 1
            self.output.error(f"error: {exc}\n")
        elif exc is not None:
            # A bug, not a mistake of the person's: the daemon's handler says it in
            # one line and logs the traceback; the shell goes on.
            self.failures += 1
            asyncio.get_running_loop().call_exception_handler(
                {"message": f"internal error in {line.split()[0]!r}", "exception": exc}
            )

    # -- the terminal -------------------------------------------------------------------

    def _terminal_colors(self, terminal: TerminalOutput) -> int | None:
        try:
            fd = terminal.fileno()
        except (OSError, NotImplementedError, ValueError):
            return None
        return colors.terminal_colors(self.environ.get("TERM"), fd)
