"""Tasks that tasks create: each becomes a record of its own, a child named PARENT/N.

While the daemon serves, the loop's task factory sends here every task made with a
taskd task's context current (create_task, gather, TaskGroup, ensure_future from a
kind's code). Such a child is shown, timed, logged and cancelled like any task; its
creator may name it (create_task(..., name=X)), which it keeps if X is valid and free.
Tasks asyncio or a built-in kind makes for its own plumbing stay plain tasks.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
from collections.abc import Callable, Coroutine
from types import CodeType
from typing import Any

from . import events as ev
from .context import CURRENT, MACHINERY
from .errors import CommandError
from .guard import guarded_child
from .instruments import Instruments
from .registry import Registry, TaskRecord, check_name

_ASYNCIO = os.path.dirname(asyncio.__file__) + os.sep


def is_plumbing(coro: Any) -> bool:
    """A task asyncio or a built-in kind makes for itself (a subprocess's
    _connect_pipes, a wait_for of taskd's helper): not a child anyone created."""
    code: CodeType | None = getattr(coro, "cr_code", None)
    if code is None:
        return False
    if code in MACHINERY:
        return True
    return code.co_name.startswith("_") and code.co_filename.startswith(_ASYNCIO)


class Children:
    """The engine's task factory for tasks that tasks create."""

    def __init__(
        self,
        registry: Registry,
        instruments: Instruments,
        bus: ev.EventBus,
        on_done: Callable[[asyncio.Task[Any]], None],
        done_context: contextvars.Context,
    ) -> None:
        self.registry = registry
        self.instruments = instruments
        self.bus = bus
        self._on_done = on_done  # the engine's, as for every task it spawns
        self._done_context = done_context

    def task_factory(
        self, loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any
    ) -> asyncio.Task[Any]:
        """A task created by a taskd task's own code becomes its child, a record of
        its own; any other task is a plain one."""
        parent = CURRENT.get()
        if parent is None or not asyncio.iscoroutine(coro) or is_plumbing(coro):
            return asyncio.Task(coro, loop=loop, **kwargs)
        given = kwargs.get("context")
        if given is not None and given.get(CURRENT) is not parent:
            return asyncio.Task(coro, loop=loop, **kwargs)  # a context made for it: spawn()
        return self._child(loop, parent, coro, given)

    def _child(
        self,
        loop: asyncio.AbstractEventLoop,
        parent: TaskRecord,
        coro: Coroutine[Any, Any, object],
        given: contextvars.Context | None,
    ) -> asyncio.Task[Any]:
        parent.children += 1
        name = f"{parent.name}/{parent.children}"
        record = TaskRecord(name, getattr(coro, "__name__", type(coro).__name__), ())
        record.parent = parent.name
        context = given.copy() if given is not None else contextvars.copy_context()
        context.run(CURRENT.set, record)  # what it prints is its own output
        instruments = self.instruments if self.instruments.steps_wanted else None
        task = asyncio.Task(
            guarded_child(coro, record, instruments), loop=loop, name=name, context=context
        )
        record.task = task
        self.registry.add(record)
        task.add_done_callback(self._on_done, context=self._done_context)
        # create_task(..., name=X) names the task only after the factory returns.
        loop.call_soon(self._adopt_name, record, task)
        for spawned in self.instruments.spawned:
            spawned(record)
        self.bus.emit(name, ev.STARTED, {"kind": record.kind, "args": [], "parent": parent.name})
        return task

    def _adopt_name(self, record: TaskRecord, task: asyncio.Task[Any]) -> None:
        """A child its creator named keeps that name, if it is valid and free."""
        wanted = task.get_name()
        if wanted == record.name or record.task is not task:
            return
        try:
            check_name(wanted)
        except CommandError:
            task.set_name(record.name)  # the record's name finds it when it ends
            return
        if wanted in self.registry.live:
            task.set_name(record.name)
            return
        old = record.name
        del self.registry.live[old]
        record.name = wanted
        self.registry.add(record)
        self.bus.emit(wanted, ev.RENAMED, {"was": old})
