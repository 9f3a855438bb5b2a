"""The real terminal: prompt_toolkit's output made safe against a hang-up, and the
terminal's echo held back while a command runs (unechoed).

When the terminal goes away (its window closed, an ssh connection dropped) every
write to it fails with EIO, SIGHUP arrives, and the daemon ends. Until it does,
prompt_toolkit may still redraw the prompt from a loop callback; its output would
raise, and the loop would report an error nobody caused. Writes to a terminal that
has hung up are dropped instead: there is nobody left to read them.
"""

from __future__ import annotations

import errno
import os
import sys
import termios
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from prompt_toolkit.output import Output, create_output
from prompt_toolkit.output.vt100 import Vt100_Output


class HangupSafeOutput(Vt100_Output):
    hung_up = False

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            self.hung_up = True


def real_terminal() -> Output:
    """fd 1 as it was before the daemon captured sys.stdout."""
    stdout = sys.__stdout__
    if stdout is not None and stdout.isatty():
        return HangupSafeOutput.from_pty(stdout, term=os.environ.get("TERM"))
    return create_output(stdout=stdout)  # not a terminal: prompt_toolkit's plain text


@contextmanager
def unechoed(stdin: TextIO | None) -> Iterator[None]:
    """While a command runs: the terminal at STDIN (if it is one) does not echo what
    is typed (it would land raw among the command's output), and keeps it for the
    next prompt."""
    fd: int | None = None
    saved: list[Any] | None = None
    try:
        if stdin is not None and stdin.isatty():
            fd = stdin.fileno()
            saved = termios.tcgetattr(fd)
            quiet = list(saved)
            quiet[3] = int(quiet[3]) & ~(termios.ECHO | termios.ECHONL)  # lflag
            termios.tcsetattr(fd, termios.TCSANOW, quiet)
    except (OSError, termios.error, ValueError):
        saved = None  # a terminal that hung up, or none: nothing to keep quiet
    try:
        yield
    finally:
        if fd is not None and saved is not None:
            try:
                termios.tcsetattr(fd, termios.TCSANOW, saved)
            except (OSError, termios.error):
                pass
