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

    print(f"sleeping {delay:g}s in a worker thread; the loop stays free")
    future = loop.run_in_executor(None, work)
    try:
        await future
    except asyncio.CancelledError:
        cancelled = True
        print("await cancelled; the thread cannot be, and sleeps on")
        raise
    print("thread finished")
