"""The coroutine every taskd task runs in, around its kind's (or its creator's) own.

Two jobs: a KeyboardInterrupt or SystemExit raised in a task would escape
run_forever() and stop the whole daemon, so it becomes TaskExit and the task fails;
and while an instrument wants steps, the coroutine runs inside the step wrapper
(instruments.Stepped), which keeps it reachable for a stack walk. stacks.py hides
these frames, as it hides every frame of taskd's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from .context import CURRENT
from .instruments import Instruments, Stepped

if TYPE_CHECKING:
    from .kinds import KindFunc
    from .registry import TaskRecord


class TaskExit(Exception):
    """A task raised KeyboardInterrupt or SystemExit, which asyncio would let escape
    run_forever() and stop the whole daemon; the task fails with this instead."""


async def guarded(
    func: KindFunc, values: Sequence[Any], instruments: Instruments | None = None
) -> object:
    # The kind's coroutine is created here, inside the task, so a task cancelled
    # before it first runs leaves no never-awaited coroutine behind.
    try:
        coro = func(*values)
        if instruments is not None and asyncio.iscoroutine(coro):
            record = CURRENT.get()
            if record is not None:
                return await Stepped(coro, record, instruments)
        return await coro
    except (KeyboardInterrupt, SystemExit) as exc:
        raise TaskExit(f"the task raised {type(exc).__name__}({safe(str, exc)})") from exc


async def guarded_child(
    coro: Coroutine[Any, Any, object], record: TaskRecord, instruments: Instruments | None
) -> object:
    # A child made by a task's own create_task: its steps are timed like any task's,
    # and SystemExit in it must not stop the daemon either.
    try:
        if instruments is not None:
            return await Stepped(coro, record, instruments)
        return await coro
    except (KeyboardInterrupt, SystemExit) as exc:
        raise TaskExit(f"the task raised {type(exc).__name__}({safe(str, exc)})") from exc


def safe(show: Callable[[object], str], value: object) -> str:
    """str() or repr() of a user's object, which may itself raise."""
    try:
        return show(value)
    except Exception as exc:
        return f"<{type(value).__name__}: its {show.__name__}() raised {type(exc).__name__}>"
