"""A task's real stack: the frames of the kind's own code, down to what it awaits.

asyncio's Task.get_stack() stops at the first object that is not a coroutine, which
for a taskd task is the step wrapper. This walks the chain of awaits itself
(`cr_await` of coroutines, `gi_yieldfrom` of generators, the wrapper's `coro`), so
`where` and the narrator see `tick` sleeping in `asyncio.sleep`, not taskd's frames.
"""

from __future__ import annotations

import asyncio
import linecache
import os
import sys
import traceback
from dataclasses import dataclass
from types import TracebackType
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


# -- what people are shown: the kind's frames, not taskd's ---------------------------

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_SHOWN = (_PACKAGE + "kinds" + os.sep, _PACKAGE + "examples" + os.sep)
MAX_FRAMES = 30  # frames of a stored traceback (the innermost ones)


def hidden(file: str) -> bool:
    """Whether FILE is taskd's own machinery (its wrappers), not a kind's code."""
    return file.startswith(_PACKAGE) and not file.startswith(_SHOWN)


def own_frames(awaitable: Any) -> tuple[list[Frame], Any]:
    """walk(), without taskd's wrapper frames."""
    frames, waiting = walk(awaitable)
    return [f for f in frames if not hidden(f.file)], waiting


def short_path(file: str) -> str:
    """FILE relative to the import path entry it lies under (asyncio/tasks.py,
    taskd/kinds/basic.py), or as it is."""
    best = ""
    for entry in sys.path:
        if entry and file.startswith(entry.rstrip(os.sep) + os.sep) and len(entry) > len(best):
            best = entry.rstrip(os.sep) + os.sep
    return file[len(best):] if best else file


def function_name(frame: Frame) -> str:
    """`asyncio.sleep` for asyncio's own functions, the bare name for the others."""
    if f"{os.sep}asyncio{os.sep}" in frame.file:
        return f"asyncio.{frame.function}"
    return frame.function


def awaiting(task: asyncio.Task[Any] | None) -> str:
    """What TASK's innermost coroutine is awaiting, by function name ('asyncio.sleep'),
    or '' when it is not suspended in an await of its own."""
    if task is None or task.done():
        return ""
    frames, _ = own_frames(task.get_coro())
    return function_name(frames[-1]) if frames else ""


def describe(waiting: Any) -> str:
    """A short description of the object at the bottom of an await chain."""
    if waiting is None:
        return "nothing (it has not started, or is being resumed)"
    if isinstance(waiting, asyncio.Task):
        return f"task {waiting.get_name()}"
    if isinstance(waiting, asyncio.Future):
        return "a Future (done)" if waiting.done() else "a Future (pending)"
    if type(waiting).__name__ == "FutureIter":  # a Future's own __await__, in C
        return "a Future"
    return type(waiting).__name__


def exception_text(exc: BaseException, most: int = MAX_FRAMES) -> str:
    """EXC's traceback as traceback.format_exception gives it, without taskd's frames
    (a traceback of nothing but taskd's frames is taskd's own fault: shown whole),
    each traceback its last MOST frames. Chained exceptions (`raise ...
    from`, an error while handling another) and exception groups are kept, each
    trimmed the same way."""
    summary = traceback.TracebackException(type(exc), exc, exc.__traceback__, compact=True)
    _trim(summary, most, set())
    return "".join(summary.format())


def _trim(exc: traceback.TracebackException, most: int, seen: set[int]) -> None:
    if id(exc) in seen:  # a cycle in the chain
        return
    seen.add(id(exc))
    kept = [f for f in exc.stack if not hidden(os.path.abspath(f.filename))] or list(exc.stack)
    exc.stack = traceback.StackSummary.from_list(kept[-most:])
    for linked in (exc.__cause__, exc.__context__, *(exc.exceptions or ())):
        if linked is not None:
            _trim(linked, most, seen)


def _source(file: str, line: int) -> str:
    return linecache.getline(file, line).strip()


def _tracebacks(tb: TracebackType | None) -> list[TracebackType]:
    found: list[TracebackType] = []
    while tb is not None and len(found) < 10_000:
        found.append(tb)
        tb = tb.tb_next
    return found
