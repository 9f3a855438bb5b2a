"""What a running task can know about itself, through context variables.

The daemon runs each task in its own copy of the context with CURRENT set to the
task's record, so anything the task prints (print(), sys.stdout, sys.stderr) can be
routed to that task's output, and kinds can read the daemon's cancel grace without
holding a reference to the daemon.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from types import CodeType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .registry import TaskRecord

CURRENT: ContextVar[TaskRecord | None] = ContextVar("taskd_current", default=None)
CANCEL_GRACE: ContextVar[float] = ContextVar("taskd_cancel_grace", default=2.0)
# A shell task's --cwd and --env (folder or None, extra variables): set in the task's
# context by the engine, so the kind's signature stays its arguments only.
SHELL_SETTINGS: ContextVar[tuple[str | None, tuple[tuple[str, str], ...]]] = ContextVar(
    "taskd_shell_settings", default=(None, ())
)
# Set in a console connection's task: the tasks its code starts are cancelled at `end`.
IN_CONSOLE: ContextVar[bool] = ContextVar("taskd_in_console", default=False)


def current_name() -> str | None:
    """The name of the taskd task this code runs in, if any."""
    record = CURRENT.get()
    return record.name if record is not None else None


# Async helpers of taskd's own kinds whose tasks are plumbing (asyncio.wait_for runs
# its coroutine in a task): not children to show, cancel or wait for.
MACHINERY: set[CodeType] = set()
F = TypeVar("F", bound=Callable[..., Any])


def machinery(func: F) -> F:
    """Mark FUNC (an async function of taskd's) as plumbing: see MACHINERY."""
    MACHINERY.add(func.__code__)
    return func
