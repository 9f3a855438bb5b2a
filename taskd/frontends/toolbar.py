"""The shell's bottom toolbar: how busy the daemon is, at a glance.

Running and finished counts come from the registry, the log from the engine, and
the event loop's lag from LagMeter: a task that asks to wake up every INTERVAL and
notes how late it actually woke. Lateness is exactly what a person feels as a
sluggish prompt and what a blocking task causes, and measuring it costs one timer
every quarter second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prompt_toolkit.formatted_text import StyleAndTextTuples

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
