"""blocking: a plain blocking call moved off the loop with run_in_executor.

time.sleep would freeze the loop; in a worker thread it does not. Cancelling the
task cancels only the await: a running thread cannot be stopped, so the kind says
so and reports when the thread really finishes.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

from ..context import current_name
from ._spec import Arg, builtin, seconds


@builtin(
    "blocking",
    "runs time.sleep(SECONDS) in a thread through run_in_executor; cancelling stops "
    "the await, not the thread",
    Arg("SECONDS", seconds, 3.0),
)
async def blocking(delay: float) -> None:
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    cancelled = False
    name = current_name() or "blocking"

    def work() -> None:
        thread = threading.current_thread()
        previous, thread.name = thread.name, f"taskd:{name}"
        try:
            time.sleep(delay)
        finally:
            thread.name = previous
        if cancelled:
            try:  # the loop may be gone by now; then there is nobody to tell
                loop.call_soon_threadsafe(
                    print,
                    f"thread woke after {delay:g}s; its await was cancelled, so "
                    "nobody takes the result",
                    context=context,
                )
            except RuntimeError:
                pass

    # The daemon's default executor counts its unfinished calls (`busy`) beside its
    # size (`workers`); another executor says nothing of the kind, and nothing is said.
    executor = getattr(loop, "_default_executor", None)
    workers = getattr(executor, "workers", 0)
    queued = bool(workers) and getattr(executor, "busy", 0) >= workers
    if queued:
        print(f"queued: every worker thread ({workers}) is busy; it starts when one is free")

    def started() -> None:
        print(f"a worker thread is free: sleeping {delay:g}s in it; the loop stays free")

    def work_after_queue() -> None:
        try:
            loop.call_soon_threadsafe(started, context=context)
        except RuntimeError:
            return
        work()

    if not queued:
        print(f"sleeping {delay:g}s in a worker thread; the loop stays free")
    future = loop.run_in_executor(None, work_after_queue if queued else work)
    try:
        await future
    except asyncio.CancelledError:
        cancelled = True
        print("await cancelled; the thread cannot be, and sleeps on")
        raise
    print("thread finished")
