"""The shell's bottom toolbar: how busy the daemon is, at a glance.

Running and finished counts come from the registry, the log from the engine, and
the event loop's lag from LagMeter: a task that asks to wake up every INTERVAL and
notes how late it actually woke. Lateness is exactly what a person feels as a
sluggish prompt and what a blocking task causes, and measuring it costs one timer
every quarter second.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.utils import get_cwidth

from ..lag import LagMeter

if TYPE_CHECKING:
    from ..engine import Engine

__all__ = ["LagMeter", "lag_text", "toolbar"]

LAG_WARN = 0.1  # seconds late: a person notices the prompt stutter


def lag_text(lag: float | None) -> str:
    if lag is None:
        return "lag -"
    if lag < 1:
        return f"lag {lag * 1000:.1f} ms"
    return f"lag {lag:.1f} s"


def toolbar(daemon: Engine, lag: float | None, width: int | None = None) -> StyleAndTextTuples:
    """' 2 running · 5 finished · log: events.log · lag 0.3 ms '.

    In WIDTH columns: what does not fit is left out, least useful first (the log,
    then its full path first; the finished count; the running count), so the lag,
    the figure that says whether something blocks the loop, is the last to go."""
    log = daemon.log.path if daemon.log is not None else None
    warn = lag is not None and lag >= LAG_WARN
    lag_part = ("class:bottom-toolbar.warn" if warn else "", lag_text(lag))
    plain = "class:bottom-toolbar.text"
    running = (plain, f"{len(daemon.registry.live)} running")
    finished = (plain, f"{daemon.registry.finished_count} finished")
    logs = [f"log: {log}", f"log: {os.path.basename(log)}"] if log else ["no log"]
    # Candidates, fullest first: each keeps the display order, drops by priority.
    candidates = [[running, finished, (plain, text), lag_part] for text in logs]
    candidates += [[running, finished, lag_part], [running, lag_part], [lag_part]]
    for parts in candidates:
        laid = _laid_out(parts)
        if width is None or sum(get_cwidth(piece[1]) for piece in laid) <= width:
            return laid
    return _laid_out([lag_part])


def _laid_out(parts: list[tuple[str, str]]) -> StyleAndTextTuples:
    out: StyleAndTextTuples = []
    for i, (style, text) in enumerate(parts):
        last = i == len(parts) - 1
        out.append((style, (" " if i == 0 else "") + text + (" " if last else " · ")))
    return out
