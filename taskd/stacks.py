"""A task's real stack: the frames of the kind's own code, down to what it awaits.

asyncio's Task.get_stack() stops at the first object that is not a coroutine, which
for a taskd task is the step wrapper. This walks the chain of awaits itself
(`cr_await` of coroutines, `gi_yieldfrom` of generators, the wrapper's `coro`), so
`where` and the narrator see `tick` sleeping in `asyncio.sleep`, not taskd's frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Frame:
    file: str
    line: int
    function: str


def walk(awaitable: Any, most: int = 100) -> tuple[list[Frame], Any]:
    """The frames of AWAITABLE's await chain, outermost first, and the innermost
    object it is waiting on (a Future, a sleep's handle...), or None."""
    frames: list[Frame] = []
    current = awaitable
    for _ in range(most):
        inner = getattr(current, "coro", None)  # the step wrapper, or the like
        if inner is not None and not hasattr(current, "cr_frame"):
            current = inner
            continue
        frame = getattr(current, "cr_frame", None) or getattr(current, "gi_frame", None)
        if frame is None and not hasattr(current, "cr_frame") and not hasattr(current, "gi_frame"):
            return frames, current  # not a coroutine: what the chain waits on
        if frame is not None:
            code = frame.f_code
            frames.append(Frame(code.co_filename, frame.f_lineno, code.co_name))
        nxt = getattr(current, "cr_await", None)
        if nxt is None:
            nxt = getattr(current, "gi_yieldfrom", None)
        if nxt is None:
            return frames, None
        current = nxt
    return frames, None
