"""The event loop's lag: how late a timer that wakes every INTERVAL actually wakes.

Lateness is exactly what a person feels as a sluggish prompt and what a blocking
task causes, and measuring it costs one timer every quarter second.
"""

from __future__ import annotations

import asyncio
from collections import deque


class LagMeter:
    """The loop's recent wake-up lateness (the worst of the last couple of seconds,
    so that one stall stays on the toolbar long enough to be read)."""

    INTERVAL = 0.25

    def __init__(self, keep: int = 8) -> None:
        self.samples: deque[float] = deque(maxlen=keep)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + self.INTERVAL
            await asyncio.sleep(self.INTERVAL)
            self.samples.append(max(0.0, loop.time() - expected))

    @property
    def lag(self) -> float | None:
        return max(self.samples) if self.samples else None
