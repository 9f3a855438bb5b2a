"""`taskd serve --detach`: run the daemon in the background, like any service.

The parent forks; the child makes a session of its own (no terminal can stop or
hang it up), points its standard streams at /dev/null, keeps the working folder,
and runs the daemon. The parent returns only once the child says its socket
accepts connections (printing the socket and the pid), or with the child's own
one-line reason it could not start (exit 2). They talk through a pipe, so the
parent never guesses from timing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

Ready = Callable[[str | None], None]


def detach(serve: Callable[[Ready], int], path: str) -> int:
    """Fork; the child runs SERVE(ready) and exits with its status."""
    sys.stdout.flush()
    sys.stderr.flush()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the daemon
        os.close(reader)
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        if null > 2:
            os.close(null)
        told = False

        def ready(failure: str | None) -> None:
            nonlocal told
            if told:
                return
            told = True
            message = "ok\n" if failure is None else f"error: {failure}\n"
            try:
                os.write(writer, message.encode("utf-8", "replace"))
                os.close(writer)
            except OSError:
                pass

        status = 1
        try:
            status = serve(ready)
        finally:
            ready("the daemon ended before it listened")  # only if it never said
            os._exit(status)
    os.close(writer)
    with os.fdopen(reader, "rb") as said:
        answer = said.read().decode("utf-8", "replace").strip()
    if answer == "ok":
        print(f"taskd: serving on {path} (pid {pid})")
        return 0
    reason = answer.removeprefix("error: ") or "the daemon ended before it listened"
    print(f"taskd: error: {reason}", file=sys.stderr)
    os.waitpid(pid, 0)  # it has ended (or is ending): no zombie left behind
    return 2
