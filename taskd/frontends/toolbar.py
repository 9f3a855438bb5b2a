"""The shell's bottom toolbar: how busy the daemon is, at a glance.

Running and finished counts come from the registry, the log from the engine, and
the event loop's lag from LagMeter: a task that asks to wake up every INTERVAL and
notes how late it actually woke. Lateness is exactly what a person feels as a
sluggish prompt and what a blocking task causes, and measuring it costs one timer
every quarter second.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from prompt_toolkit.formatted_text import StyleAndTextTuples

if TYPE_CHECKING:
    from ..engine import Engine

LAG_WARN = 0.1  # seconds late: a person notices the prompt stutter


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


def lag_text(lag: float | None) -> str:
    if lag is None:
        return "lag -"
    if lag < 1:
        return f"lag {lag * 1000:.1f} ms"
    return f"lag {lag:.1f} s"


def toolbar(daemon: Engine, lag: float | None) -> StyleAndTextTuples:
    """' 2 running · 5 finished · log: events.log · lag 0.3 ms '."""
    log = f"log: {daemon.log.path}" if daemon.log is not None else "no log"
    parts: StyleAndTextTuples = [
        ("class:bottom-toolbar.text", f" {len(daemon.registry.live)} running · "),
        ("class:bottom-toolbar.text", f"{daemon.registry.finished_count} finished · "),
        ("class:bottom-toolbar.text", f"{log} · "),
    ]
    warn = lag is not None and lag >= LAG_WARN
    parts.append(("class:bottom-toolbar.warn" if warn else "", lag_text(lag) + " "))
    return parts
