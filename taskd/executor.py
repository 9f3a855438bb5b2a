"""The daemon's default executor: run_in_executor work stays its task's.

A plain ThreadPoolExecutor runs each function in the worker thread's own context,
where CURRENT is unset, so what the function prints belongs to no task. This one
runs each function in a copy of the submitting thread's context (asyncio submits
from the task itself, so CURRENT names the task, as asyncio.to_thread does it), and
delivers the function's unterminated output when it returns.

It also counts its busy workers, so that a kind can tell running from queued behind
a full pool.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from .capture import end_thread_lines

P = ParamSpec("P")
T = TypeVar("T")

WORKER_PREFIX = "taskd-worker"


class TaskExecutor(ThreadPoolExecutor):
    """A thread pool whose jobs keep their submitter's context."""

    def __init__(self, max_workers: int = 32, thread_name_prefix: str = WORKER_PREFIX) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._busy = 0
        self._busy_lock = threading.Lock()

    @property
    def max_workers(self) -> int:
        return self._max_workers

    @property
    def busy(self) -> int:
        """Workers running a job right now."""
        return self._busy

    @property
    def waiting(self) -> int:
        """Jobs submitted and not yet started (approximate, as any queue size)."""
        return self._work_queue.qsize()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        context = contextvars.copy_context()
        return super().submit(self._run, context, fn, args, kwargs)

    def _run(
        self,
        context: contextvars.Context,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        with self._busy_lock:
            self._busy += 1
        try:
            return context.run(fn, *args, **kwargs)
        finally:
            end_thread_lines()
            with self._busy_lock:
                self._busy -= 1
