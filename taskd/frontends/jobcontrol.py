"""The shell under the job control of the shell that started it.

Ctrl-Z suspends taskd and `fg` brings it back (prompt_toolkit's suspend_to_background
does both). A stop from outside does not go through the prompt: `kill -STOP`, then
`kill -CONT` (or `bg`) continues taskd in the *background*, while the job shell has
the terminal. A prompt drawing there would draw over whatever runs in the
foreground, and its questions to the terminal (where is the cursor?) would be
answered into that program's input, as stray characters. So on SIGCONT: in the
background, taskd stops again with SIGTTOU, as the terminal stops any background
program that writes to it (`Stopped (tty output)`, like `vim &`); in the
foreground, it draws its whole screen again, which someone else had meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from prompt_toolkit.application import Application


def in_foreground(fd: int) -> bool:
    """Is this process's group the one the terminal at FD belongs to? (True when FD
    is no terminal: nothing to draw over.)"""
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return True


@contextmanager
def stopped_in_background(
    fd: int | None, app: Callable[[], Application[str] | None]
) -> Iterator[None]:
    """While the prompt runs: SIGCONT is handled as the module says. A handler of
    the signal module's, not the loop's: it runs as soon as the process continues,
    before the loop runs anything that could draw (the loop's would run after
    whatever was due meanwhile, a toolbar refresh among them)."""
    if fd is None:
        yield
        return
    loop = asyncio.get_running_loop()

    def redraw() -> None:
        running = app()
        if running is not None and running.is_running:
            # The job shell had the terminal meanwhile and handed it back in its
            # own modes (echo, whole lines): the prompt's raw mode again. The
            # prompt's end restores what was before the prompt, as ever.
            running.input.raw_mode().__enter__()
            running.renderer.reset()  # the screen is not what it last drew
            running.invalidate()

    def continued(signum: int, frame: object) -> None:
        if not in_foreground(fd):
            os.kill(os.getpid(), signal.SIGTTOU)
        else:
            loop.call_soon_threadsafe(redraw)

    try:
        before = signal.signal(signal.SIGCONT, continued)
    except ValueError:  # not the main thread: nothing to watch
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGCONT, before)
