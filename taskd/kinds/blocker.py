"""hog: the classic mistake, made on purpose: time.sleep inside a coroutine.

time.sleep does not await, so the loop cannot run anything else until it returns:
every other task, the prompt and the toolbar freeze, and taskd's stall line names
the culprit. Compare `blocking`, which sleeps in a worker thread, and `search`, which
yields with sleep(0).
"""

from __future__ import annotations

import asyncio
import time

from ..errors import CommandError, shown
from ._spec import Arg, builtin, seconds

# Nothing can interrupt a blocked loop (not cancel, not end, not a signal handler):
# a cap keeps `hog` a lesson rather than a hang.
MOST = 10.0


def _hog_seconds(label: str, text: str) -> float:
    value = seconds(label, text)
    if value > MOST:
        raise CommandError(f"{label}: at most {MOST:g} seconds (the loop cannot be "
                           f"interrupted meanwhile), got {shown(text)}")
    return value


@builtin(
    "hog",
    "blocks the whole event loop with time.sleep(SECONDS): every task and the prompt "
    "stall (the mistake, on purpose)",
    Arg("SECONDS", _hog_seconds, 1.0),
)
async def hog(delay: float) -> None:
    await asyncio.sleep(0)  # one turn first, so the task's start is seen before the stall
    print(f"time.sleep({delay:g}) in a coroutine: nothing else runs until it returns")
    time.sleep(delay)
    print("time.sleep returned; the loop runs the others again")
