"""The daemon's clock: every time taskd shows is read here.

Why one place: under the virtual clock (taskd.clock) the loop's time is virtual, and
a run is only repeatable if every time taskd prints (timestamps, `show`'s AGE, "done
after 1.50s", the log's stamps) follows it. These are read by records, formatting
and events, which have no daemon at hand; one process runs one daemon loop, so the
clock is a module-level switch, installed by the daemon on its loop.

`wall()` and `monotonic()` are plain module attributes holding the functions in use
(time.time and time.monotonic on a real loop), so reading them costs what calling
time.time() always did. On a virtual loop both follow the loop's time, and the wall
clock is EPOCH (2000-01-01T00:00:00Z) plus the virtual seconds since the start, so a
virtual run's log has the same stamps every time. A virtual run is meant to repeat
itself, so it also seeds Python's `random` with 0 (the `search` kind draws from it).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from .clock import is_virtual

EPOCH = 946_684_800.0  # 2000-01-01T00:00:00Z: the wall time a virtual run starts at

wall: Callable[[], float] = time.time
monotonic: Callable[[], float] = time.monotonic
perf_origin = time.perf_counter()  # perf_counter() at the start (step times on a real loop)
virtual = False
_start_wall = time.time()
_start_mono = time.monotonic()


def install(loop: asyncio.AbstractEventLoop) -> None:
    """Count from now, on LOOP's clock: the daemon's start."""
    global wall, monotonic, virtual, _start_wall, _start_mono, perf_origin
    if is_virtual(loop):
        origin = loop.time()
        loop_time = loop.time

        def virtual_wall() -> float:
            return EPOCH + (loop_time() - origin)

        wall, monotonic, virtual = virtual_wall, loop_time, True
        random.seed(0)
    else:
        wall, monotonic, virtual = time.time, time.monotonic, False
    _start_wall, _start_mono, perf_origin = wall(), monotonic(), time.perf_counter()


def reset() -> None:
    """Back to the real clock (after a virtual loop is closed)."""
    global wall, monotonic, virtual
    if virtual:
        wall, monotonic, virtual = time.time, time.monotonic, False


def since_start() -> float:
    """Seconds since the daemon started, now."""
    return monotonic() - _start_mono


def since_start_of(mono: float) -> float:
    """Seconds since the daemon started, of a monotonic() reading."""
    return mono - _start_mono


def since_start_wall(ts: float) -> float:
    """Seconds since the daemon started, of a wall() reading (an event's ts)."""
    return ts - _start_wall


def stamp(seconds: float) -> str:
    """The on-screen timestamp: `+1.002 `."""
    return f"+{seconds:.3f} "
