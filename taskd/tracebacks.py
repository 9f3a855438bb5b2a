"""Tracebacks of a task's error, without taskd's own frames.

A kind's traceback is read by the person who wrote the kind: the frames of taskd's
machinery (engine._guarded, the stall watch, the capture) are noise to them, about
six lines in ten. Frames in the taskd package are left out, except those in
taskd/kinds/, which are the built-in kinds' own code. Chained exceptions (`raise
... from`, an error while handling another) and exception groups are kept, each
filtered the same way. A traceback made only of taskd's frames is taskd's own
fault and is shown whole.
"""

from __future__ import annotations

import os
import traceback

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_KINDS = os.path.join(_PACKAGE, "kinds") + os.sep


def _is_taskds(frame: traceback.FrameSummary) -> bool:
    path = os.path.abspath(frame.filename)
    return path.startswith(_PACKAGE) and not path.startswith(_KINDS)


def _filter(exc: traceback.TracebackException, seen: set[int]) -> None:
    if id(exc) in seen:  # a cycle in the chain
        return
    seen.add(id(exc))
    kept = [frame for frame in exc.stack if not _is_taskds(frame)]
    if kept:
        exc.stack = traceback.StackSummary.from_list(kept)
    for linked in (exc.__cause__, exc.__context__, *(exc.exceptions or ())):
        if linked is not None:
            _filter(linked, seen)


def format_task_exception(exc: BaseException) -> str:
    """The traceback of EXC as traceback.format_exception gives it, minus taskd's frames."""
    summary = traceback.TracebackException(type(exc), exc, exc.__traceback__, compact=True)
    _filter(summary, set())
    return "".join(summary.format())
