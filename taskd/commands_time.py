"""Commands that make time visible: `timestamps on|off` and `timeline`.

Registered in the command table of taskd.commands (imported at its end). The times
they show come from taskd.clocks, so under the virtual clock they are virtual too.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from . import clocks
from .commands import COMMANDS, Args, Context, Param, command
from .errors import CommandError, shown
from .registry import TaskRecord, is_pattern
from .steps import StepRecorder

DEFAULT_WIDTH = 100  # when the asker's width is unknown (a pipe, a file)
MAX_WIDTH = 1000


@command(
    "timestamps",
    "start task lines and endings with the seconds since the start (+1.002), or not",
    params=(Param("on|off", "choice", choices=("on", "off")),),
)
async def _timestamps(ctx: Context, args: Args) -> None:
    word = args.words[0]
    if word not in ("on", "off"):
        raise COMMANDS["timestamps"].fail(f"timestamps: expected on or off, got {shown(word)}")
    if not hasattr(ctx.control, "timestamps"):
        raise CommandError("timestamps: this daemon cannot show them")
    ctx.control.timestamps = word == "on"
    ctx.reply.out(f"timestamps {word}")


def recorder(ctx: Context) -> StepRecorder | None:
    for instrument in ctx.engine.instruments:
        if isinstance(instrument, StepRecorder):
            return instrument
    return None


def log_steps(ctx: Context, on: bool) -> None:
    """`log FILE --steps`: every step goes to the engine's (new) log; else none."""
    steps = recorder(ctx)
    if steps is not None:
        steps.sink = ctx.engine.log if on else None


def need_recorder(ctx: Context) -> None:
    if recorder(ctx) is None:
        raise CommandError("log: --steps needs the step recorder (a running daemon)")


def _width(ctx: Context, args: Args) -> int:
    from .timeline import MIN_WIDTH  # timeline and trace: when first used, not at start

    text = args.values.get("--width")
    if text is None:
        return ctx.reply.width or DEFAULT_WIDTH
    try:
        width = int(text)
    except ValueError:
        width = -1
    if not MIN_WIDTH <= width <= MAX_WIDTH:
        raise COMMANDS["timeline"].fail(
            f"timeline: --width must be a whole number from {MIN_WIDTH} to {MAX_WIDTH}, "
            f"got {shown(text)}"
        )
    return width


def _chosen(ctx: Context, patterns: list[str]) -> list[TaskRecord]:
    """Live and finished tasks matching PATTERNS (all without), in order of start."""
    engine = ctx.engine
    engine.settle(list(engine.registry.live.values()))
    everything = engine.registry.records(include_finished=True)
    if not patterns:
        chosen = everything
    else:
        chosen = []
        for pattern in patterns:
            hits = [r for r in everything if fnmatchcase(r.name, pattern)] if is_pattern(
                pattern) else [r for r in everything if r.name == pattern]
            if not hits:
                word = "matches" if is_pattern(pattern) else "is named"
                raise CommandError(f"no task {word} {shown(pattern)}")
            chosen += [r for r in hits if r not in chosen]
    return sorted(chosen, key=lambda r: r.started)


@command(
    "timeline",
    "a chart of when tasks (live and finished) lived and ran on the loop; ! marks a "
    "step that held the loop",
    params=(Param("PATTERN", "pattern", optional=True, repeat=True),),
    options={"--width": Param("N", "number")},
    details="One row per task: ─ alive and waiting, █ running a step, ! a step over "
    "0.1 s (everyone else waited). Cut to the screen's width (100 columns in a pipe).",
)
async def _timeline(ctx: Context, args: Args) -> None:
    width = _width(ctx, args)
    records = _chosen(ctx, args.words)
    if not records:
        ctx.reply.out("no tasks")
        return
    from .timeline import TaskSpan, render_timeline

    steps = recorder(ctx)
    kept = steps.steps_of(records) if steps is not None else {}
    rows = []
    for record in records:
        end = None if record.ended is None else clocks.since_start_of(record.ended)
        rows.append(TaskSpan(
            record.name, clocks.since_start_of(record.started), end, kept.get(record, []),
        ))
    now = clocks.since_start()
    ctx.reply.lines(render_timeline(rows, width, now))  # type: ignore[arg-type]
