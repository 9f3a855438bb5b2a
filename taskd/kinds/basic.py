"""Kinds that sleep: the plainest coroutines, and the ones that end badly on purpose.

idle, tick, msg and timer show tasks that spend their life in `await asyncio.sleep`,
letting every other task run meanwhile. fail shows a task that raises; stubborn shows
a task that swallows CancelledError, which is why `cancel` and `end` need a grace
period.
"""

from __future__ import annotations

import asyncio

from ._spec import Arg, builtin, count, seconds, text


@builtin("idle", "sleeps forever, one second at a time, until cancelled")
async def idle() -> None:
    while True:
        await asyncio.sleep(1)


@builtin(
    "tick",
    "prints 'tick N' every INTERVAL seconds; done after COUNT ticks (never, without COUNT)",
    Arg("INTERVAL", seconds, 1.0),
    Arg("COUNT", count, None),
)
async def tick(interval: float, limit: int | None) -> None:
    n = 0
    while limit is None or n < limit:
        await asyncio.sleep(interval)
        n += 1
        print(f"tick {n}")


@builtin(
    "msg",
    "prints TEXT COUNT times, sleeping INTERVAL seconds before each",
    Arg("TEXT", text),
    Arg("COUNT", count, 3),
    Arg("INTERVAL", seconds, 1.0),
)
async def msg(message: str, times: int, interval: float) -> None:
    for _ in range(times):
        await asyncio.sleep(interval)
        print(message)


@builtin("timer", "sleeps SECONDS, then is done", Arg("SECONDS", seconds))
async def timer(delay: float) -> None:
    await asyncio.sleep(delay)


class TaskFailure(Exception):
    """What the `fail` kind raises."""


@builtin(
    "fail",
    "raises an exception after SECONDS (the task ends 'failed', MESSAGE shown)",
    Arg("SECONDS", seconds, 0.0),
    Arg("MESSAGE", text, "failed on purpose"),
)
async def fail(delay: float, message: str) -> None:
    await asyncio.sleep(delay)
    raise TaskFailure(message)


@builtin("stubborn", "swallows every cancellation and goes on sleeping")
async def stubborn() -> None:
    refused = 0
    while True:
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            refused += 1
            print(f"cancel refused ({refused}): CancelledError caught and ignored")
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # undo the request too, as a well-behaved refuser must
