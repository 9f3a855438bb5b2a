"""aiter: an async iterator written as a class, with __aiter__ and __anext__ (asyncio12).

`async for` calls __aiter__ once, then awaits __anext__ for each value until it raises
StopAsyncIteration. Because __anext__ is a coroutine it can await (here a short sleep),
which a plain iterator's __next__ cannot: that is the whole point of the protocol.
"""

from __future__ import annotations

import asyncio

from ._spec import Arg, builtin, count

STEP = 0.1  # seconds each __anext__ sleeps


class Countdown:
    """Counts down from N to 1, sleeping STEP seconds in each __anext__."""

    def __init__(self, start: int) -> None:
        self.left = start

    def __aiter__(self) -> Countdown:
        return self

    async def __anext__(self) -> int:
        if self.left == 0:
            print("__anext__ raises StopAsyncIteration")
            raise StopAsyncIteration
        await asyncio.sleep(STEP)
        value, self.left = self.left, self.left - 1
        return value


@builtin(
    "aiter",
    "counts down from N with an async iterator class (__aiter__/__anext__) in `async for`",
    Arg("N", count, 5),
)
async def aiter(n: int) -> None:
    async for value in Countdown(n):
        print(f"__anext__ returned {value}")
    print("async for ended")
