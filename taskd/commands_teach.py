"""The teaching commands: `where` (a task's stack), `explain` (narration) and
`examples` (the shipped chapter). Registered in taskd.commands' table on import."""

from __future__ import annotations

from typing import Any

from . import formatting
from .commands import Args, Context, Param, command
from .errors import CommandError, shown
from .fragments import Line
from .i18n import _
from .registry import TaskRecord
from .width import cwidth, ljust


@command(
    "where",
    "show a task's stack: its own frames and what it awaits; for a finished task, "
    "how it ended",
    params=(Param("NAME", "task"),),
    details="taskd's own wrapper frames are left out. A failed task shows its traceback.",
)
async def _where(ctx: Context, args: Args) -> None:
    name = args.words[0]
    record = ctx.engine.registry.get(name)
    if record is None:
        raise CommandError(_("no task named {name}").format(name=shown(name)))
    ctx.engine.settle([record])
    ctx.reply.lines(where_lines(record))


def where_lines(record: TaskRecord) -> list[Line]:
    """`where`'s answer for RECORD."""
    head: list[tuple[str, str]] = [("task", record.name), ("", f" ({record.kind}) ")]
    if record.finished:
        head.append((f"state-{record.state.value}", formatting.ending(record)))
        lines: list[Line] = [head]
        if record.traceback:
            lines += ["  " + text for text in record.traceback.rstrip("\n").split("\n")]
        return lines
    task = record.task
    if task is None:
        head.append((f"state-{record.state.value}", f"{record.state.value}, not started yet"))
        return [head]
    # The teaching modules are imported when first used, not at every start.
    from .stacks import describe, function_name, own_frames, short_path

    frames, waiting = own_frames(task.get_coro())
    state = record.state.value
    if frames:
        head.append((f"state-{state}", f"{state}, awaiting {function_name(frames[-1])}"))
    else:
        head.append((f"state-{state}", state))
    lines = [head]
    lines += [f"  {short_path(f.file)}:{f.line} in {f.function}" for f in frames]
    lines.append(f"  waiting on {describe(waiting)}")
    return lines


@command(
    "explain",
    "narrate what each command and task event does in asyncio's terms (on/off); "
    "bare: say which",
    params=(Param("on|off", "choice", optional=True, choices=("on", "off")),),
)
async def _explain(ctx: Context, args: Args) -> None:
    narrator: Any = getattr(ctx.control, "narrator", None)
    if narrator is None:
        raise CommandError("explain: no narrator here")
    if args.words:
        word = args.words[0]
        if word not in ("on", "off"):
            raise CommandError(f"explain: expected on or off, got {shown(word)}")
        narrator.switch(word == "on")
    ctx.reply.out(f"explain {'on' if narrator.on else 'off'}")


@command("examples", "list the shipped examples of the asyncio chapter (taskd --example NAME)")
async def _examples(ctx: Context, args: Args) -> None:
    from .examples import list_examples

    found = list_examples()
    width = max((cwidth(name) for name, _title in found), default=0)
    ctx.reply.lines([f"{ljust(name, width)}  {title}" for name, title in found])
