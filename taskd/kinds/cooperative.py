"""search: CPU work that stays polite by yielding with `await asyncio.sleep(0)`.

Each draw is followed by sleep(0), which hands the loop to every other ready task
before the next draw; without it the search would freeze the shell and every task.
"""

from __future__ import annotations

import asyncio
import random

from ._spec import Arg, builtin, count, probability


@builtin(
    "search",
    "draws random numbers until one is below P, yielding with sleep(0) at each draw; "
    "done after ROUNDS hits",
    Arg("P", probability, 2.0**-20, shown_default="2**-20"),
    Arg("ROUNDS", count, 1),
)
async def search(p: float, rounds: int) -> None:
    draws = 0
    for hit in range(1, rounds + 1):
        while True:
            draws += 1
            value = random.random()
            if value < p:
                break
            await asyncio.sleep(0)
        print(f"hit {hit}: {value:.3g} after {draws} draws")
        draws = 0
