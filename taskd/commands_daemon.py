"""Commands about the daemon itself: `status`.

Registered in the one command table (taskd.commands imports this module at its end).
"""

from __future__ import annotations

import json
import os
import time

from . import __version__
from .commands import Args, Context, command
from .errors import CommandError
from .registry import FINAL, State


def status_fields(ctx: Context) -> dict[str, object]:
    engine = ctx.engine
    live = list(engine.registry.live.values())
    counts = {state.value: 0 for state in State if state not in FINAL}
    for record in live:
        counts[record.state.value] = counts.get(record.state.value, 0) + 1
    log = engine.log
    return {
        "pid": os.getpid(),
        "version": __version__,
        "uptime_s": round(time.monotonic() - ctx.control.started, 3),
        "tasks": {"live": len(live), **counts, "finished": engine.registry.finished_count},
        "log": {"path": log.path, "format": log.format, "written": log.written}
        if log is not None
        else None,
        "lag_s": ctx.control.lag.lag,
    }


@command("status", "the daemon: pid, uptime, task counts, log", flags=("--json",))
async def _status(ctx: Context, args: Args) -> None:
    fields = status_fields(ctx)
    if "--json" in args.flags:
        ctx.reply.out(json.dumps(fields, ensure_ascii=False))
        return
    tasks = fields["tasks"]
    assert isinstance(tasks, dict)
    log = fields["log"]
    ctx.reply.lines(
        [
            f"pid {fields['pid']}, taskd {fields['version']}, up {fields['uptime_s']}s",
            "tasks: " + ", ".join(f"{n} {k}" for k, n in tasks.items()),
            "log: " + (f"{log['path']} ({log['format']})" if isinstance(log, dict) else "none"),
        ]
    )


@command("detach", "leave an attached shell (`taskd attach`); the daemon goes on")
async def _detach(ctx: Context, args: Args) -> None:
    # An attached shell handles `detach` itself; anywhere else there is nothing to leave.
    raise CommandError("not attached to a daemon: `detach` is for `taskd attach`")
