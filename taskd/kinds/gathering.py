"""gather: several coroutines awaited together with asyncio.gather (asyncio03).

gather wraps each coroutine in a task of its own, so they all sleep at the same time:
three sleeps of 0.1, 0.2 and 0.3 s take 0.3 s, not 0.6. The results come back as one
list in the order the coroutines were given, whatever order they finished in.
"""

from __future__ import annotations

import asyncio

from ..errors import CommandError, shown
from ._spec import Arg, builtin, count

SPREAD = 0.3  # seconds the slowest child sleeps; the others less
# Each child is a task, and a record of taskd's, made at once in one step of the
# loop: `gather 100000000` held the loop (and grew) for as long as it took.
MOST = 10_000


def _children(label: str, text: str) -> int:
    value = count(label, text)
    if value > MOST:
        raise CommandError(
            f"{label}: expected a whole number from 1 to {MOST:,}, got {shown(text)}"
        )
    return value


async def _child(number: int, delay: float) -> int:
    await asyncio.sleep(delay)
    print(f"child {number} done after {delay:.2f}s")
    return number * number


@builtin(
    "gather",
    "awaits N child coroutines with asyncio.gather; prints each as it finishes, then "
    "the result list",
    Arg("N", _children, 3),
)
async def gather(n: int) -> list[int]:
    # Child 1 sleeps longest, so the children finish in the reverse of the list's order.
    children = [_child(i, SPREAD * (n - i + 1) / n) for i in range(1, n + 1)]
    print(f"gathering {n} children")
    results = await asyncio.gather(*children)
    print(f"gather returned {results}")
    return results
