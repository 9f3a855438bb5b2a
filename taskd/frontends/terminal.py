"""The real terminal as prompt_toolkit's output, made safe against a hang-up.

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
