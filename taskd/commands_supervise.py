"""Commands of supervision: `restart` a task, and `group` limits.

`restart` is "cancel, then new again": the same kind, arguments, options and name,
its count of restarts one higher. `group` sets how many tasks of a group may run at
once (the others are queued in order) or lists the groups.
"""

from __future__ import annotations

from . import events as ev
from .commands import COMMANDS, Args, Context, Param, command
from .errors import CommandError, shown
from .supervise import check_group, parse_parallel


@command(
    "restart",
    "cancel tasks if they are live, then start each again: same kind, arguments, "
    "options and name",
    params=(Param("NAME|PATTERN", "pattern", repeat=True),),
    details="Finished tasks can be restarted too. `show` counts the restarts.",
)
async def _restart(ctx: Context, args: Args) -> None:
    engine = ctx.engine
    records = engine.registry.select(args.words, include_finished=True)
    live = [r for r in records if not r.finished]
    if live:
        refused = [e.record for e in await engine.cancel(live) if e.outcome == "refused"]
        if refused:
            names = ", ".join(r.name for r in refused)
            raise CommandError(
                f"{names} did not stop within {engine.config.cancel_grace:g}s "
                "(still cancelling); nothing was restarted"
            )
    for old in records:
        new = engine.spawn(old.kind, list(old.args), old.name, old.options)
        new.restarts = old.restarts + 1
        engine.bus.emit(new.name, ev.RESTARTED, {
            "restart": new.restarts, "reason": "restart", "delay_s": 0, "by": "command",
        }, ev.ASKER.get())
        ctx.reply.out([("", "restarted "), ("task", new.name)])


@command(
    "group",
    "list the groups, or show or set how many tasks of group G run at once",
    params=(Param("G", optional=True),),
    options={"--parallel": Param("N|unlimited")},
    usage_text="group [G [--parallel N|unlimited]]",
)
async def _group(ctx: Context, args: Args) -> None:
    engine = ctx.engine
    parallel = args.values.get("--parallel")
    if not args.words:
        if parallel is not None:
            raise COMMANDS["group"].fail("group: --parallel needs a group name")
        rows = engine.groups.listing()
        if not rows:
            ctx.reply.out("no groups")
            return
        cells = [("GROUP", "PARALLEL", "RUNNING", "QUEUED")] + [
            (name, "unlimited" if limit is None else str(limit), str(running), str(queued))
            for name, limit, running, queued in rows
        ]
        widths = [max(len(row[i]) for row in cells) for i in range(3)]
        lines: list[object] = [[("header", _row(cells[0], widths))]]
        lines += [_row(row, widths) for row in cells[1:]]
        ctx.reply.lines(lines)  # type: ignore[arg-type]
        return
    name = check_group(args.words[0])
    if parallel is not None:
        engine.set_parallel(name, parse_parallel(parallel))
    found = {row[0]: row for row in engine.groups.listing()}.get(name)
    if found is None:
        raise CommandError(f"no group named {shown(name)} (`new --group` or --parallel makes one)")
    _, limit, running, queued = found
    ctx.reply.out(
        f"group {name}: parallel {'unlimited' if limit is None else limit}, "
        f"{running} running, {queued} queued"
    )


def _row(cells: tuple[str, ...], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells[:-1], widths, strict=True)) + "  " + cells[-1]
