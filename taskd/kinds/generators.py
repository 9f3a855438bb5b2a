"""agen: an async generator, consumed with `async for` (asyncio11).

An async generator is an `async def` that yields: it may await between its values
(here asyncio.sleep), and while it waits the loop runs every other task. The `async for`
loop that consumes it awaits each value in turn, so producer and consumer take turns.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from ._spec import Arg, builtin, count, seconds


async def numbers(n: int, interval: float) -> AsyncIterator[int]:
    """Yield 1..N, sleeping INTERVAL seconds before each."""
    for value in range(1, n + 1):
        await asyncio.sleep(interval)
        print(f"yield {value}")
        yield value


@builtin(
    "agen",
    "an async generator yields 1..N, one every INTERVAL seconds; `async for` consumes them",
    Arg("N", count, 5),
    Arg("INTERVAL", seconds, 1.0),
)
async def agen(n: int, interval: float) -> int:
    total = 0
    async for value in numbers(n, interval):
        total += value
        print(f"got {value}, total {total}")
    print(f"async for ended: the generator is exhausted (total {total})")
    return total
