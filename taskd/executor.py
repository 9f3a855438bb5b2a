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
import time
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
    def workers(self) -> int:
        return self._max_workers

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


def release(executor: ThreadPoolExecutor, deadline: float) -> tuple[list[str], list[str]]:
    """Shut EXECUTOR down without waiting on a thread past DEADLINE (monotonic); return
    the names of the threads still running then: (executor threads, other threads).

    A thread blocked in time.sleep cannot be stopped: it is named and abandoned (the
    caller then leaves with os._exit, since the interpreter would join it).
    """
    executor.shutdown(wait=False, cancel_futures=True)
    workers: list[str] = []
    others: list[str] = []
    for thread in threading.enumerate():
        if thread is threading.current_thread() or thread.daemon:
            continue
        name = thread.name
        if name.startswith("taskd-") and not name.startswith(WORKER_PREFIX):
            continue  # taskd's own pools: idle ones leave at exit; a stuck log says so
        # Any other thread the interpreter would join at exit: the executor's, a log
        # writer stuck in a write, a kind's own non-daemon thread.
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            is_worker = name.startswith(WORKER_PREFIX) or name.startswith("taskd:")
            (workers if is_worker else others).append(name)
    return workers, others
