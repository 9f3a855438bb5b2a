"""The commands on tasks: new, show, cancel, wait, sleep, log, kinds, help, end.

They register themselves in the command table (commands.py), the language's
machinery; the rooms of supervision, teaching, time and the daemon add their own
beside them (commands_*.py).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import TYPE_CHECKING

from . import clocks, formatting, table
from .commands import COMMANDS, Args, Context, Param, command, lookup
from .errors import CommandError, shown
from .fragments import Fragments
from .i18n import _
from .kinds._spec import seconds
from .supervise import POLICIES, TaskOptions, parse_options

if TYPE_CHECKING:
    from .engine import Engine


def _timeout(args: Args, name: str) -> float | None:
    text = args.values.get(name)
    return None if text is None else seconds(name, text)


def _names_line(verb: str, name: str) -> Fragments:
    return [("", verb + " "), ("task", name)]


def _stamped(ctx: Context, line: Fragments) -> Fragments:
    """LINE with the time since the start in front, when timestamps are on."""
    if getattr(ctx.control, "timestamps", False):
        return [("time", clocks.stamp(clocks.since_start())), *line]
    return line


@command(
    "new",
    "spawn a task of KIND (default idle)",
    params=(Param("KIND", "kind", optional=True), Param("ARG", "text", optional=True, repeat=True)),
    options={
        "--name": Param("NAME"),
        "--restart": Param("POLICY", "choice", choices=POLICIES),
        "--max-restarts": Param("N", "number"),
        "--backoff": Param("S", "seconds"),
        "--after": Param("NAME[,NAME...]", "task"),
        "--timeout": Param("S", "seconds"),
        "--group": Param("G"),
        "--cwd": Param("DIR", "file"),
        "--env": Param("KEY=VALUE", repeat=True),
    },
    usage_text="new [KIND] [ARG...] [--name NAME] [OPTION...]",
    details="`kinds` lists the kinds and their arguments. Without --name the task is "
    "called KIND-N. Options: --restart no|on-failure|always, --max-restarts N, "
    "--backoff S, --after NAME[,NAME...], --timeout S, --group G, and for shell tasks "
    "--cwd DIR and --env KEY=VALUE (repeatable). --restart (default no) starts a task again "
    "after --backoff S seconds (default 1, doubling up to 60), at most --max-restarts "
    "times (default 5). --after waits until the named tasks are done (it is cancelled "
    "if one is not). --timeout fails it after S seconds of running. --group puts it in "
    "a group (`group G --parallel N`). --cwd and --env (repeatable) are for shell tasks.",
)
async def _new(ctx: Context, args: Args) -> None:
    kind, *words = args.words or ["idle"]
    options = task_options(ctx.engine, args)
    record = ctx.engine.spawn(kind, words, args.values.get("--name"), options)
    ctx.reply.out(_names_line("started", record.name))


def task_options(engine: Engine, args: Args) -> TaskOptions | None:
    """The supervision options of a `new` line (None when it has none)."""
    values = args.values
    if not args.lists and (not values or (len(values) == 1 and "--name" in values)):
        return None  # the usual line: a name at most
    # 10,000 lines with the same `--group g` parse it once: options are immutable.
    # Not --after (the names must exist now) nor --cwd (the folder must), nor --env.
    key: frozenset[tuple[str, str]] | None = None
    if not args.lists and "--after" not in values and "--cwd" not in values:
        others = dict(values)
        others.pop("--name", None)
        key = frozenset(others.items())
        if (found := _PARSED.get(key)) is not None:
            return found
    given: dict[str, str | list[str]] = {
        option[2:]: value for option, value in values.items() if option != "--name"
    }
    if "--env" in args.lists:
        given["env"] = args.lists["--env"]
    if not given:
        return None
    registry = engine.registry
    options = parse_options(
        given, known_names=lambda name: name in registry.live or name in registry.history
    )
    if options.cwd is not None and not os.path.isdir(options.cwd):
        raise CommandError(f"--cwd: no folder {shown(options.cwd)}")
    if key is not None:
        if len(_PARSED) >= 256:
            _PARSED.clear()
        _PARSED[key] = options
    return options


_PARSED: dict[frozenset[tuple[str, str]], TaskOptions] = {}  # of recent `new` lines, by text


@command(
    "show",
    "list live tasks (--all: finished ones too), as a table or one line of JSON",
    params=(Param("PATTERN", "pattern", optional=True, repeat=True),),
    flags=("--all", "--json", "--tree", "--system"),
    usage_text="show [--all] [--json] [--tree] [--system] [PATTERN...]",
    details="--tree puts the tasks a task created (its children, named PARENT/N) "
    "under it; --system adds taskd's own tasks, the rest of asyncio.all_tasks().",
)
async def _show(ctx: Context, args: Args) -> None:
    engine = ctx.engine
    include = "--all" in args.flags
    engine.settle(list(engine.registry.live.values()))
    if args.words:
        records = engine.registry.select(args.words, include_finished=include)
        if not include:  # a task asked for by name is shown however it ended
            records = [r for r in records if not r.finished or r.name in args.words]
    else:
        records = engine.registry.records(include)
    if "--system" in args.flags:
        records += table.system_records(list(engine.registry.live.values()))
    depths = None
    if "--tree" in args.flags:
        records, depths = table.tree(records)
    if "--json" in args.flags:
        ctx.reply.out(formatting.records_json(records, clocks.monotonic()))
    elif not records:
        ctx.reply.out(_("no tasks") if not include else _("no tasks, live or finished"))
    elif getattr(ctx.reply, "plain", False):  # a socket's reply has no `plain`
        ctx.reply.text(table.table_text(records, depths, engine.detail))
    else:
        lines = table.table(records, ctx.reply.width, depths, engine.detail)
        ctx.reply.lines(lines)  # type: ignore[arg-type]


@command(
    "cancel",
    "cancel tasks and wait up to the grace period for each to stop",
    params=(Param("NAME|PATTERN", "pattern", repeat=True),),
)
async def _cancel(ctx: Context, args: Args) -> None:
    records = ctx.engine.registry.select(args.words, include_finished=True)
    for record in records:
        if record.finished and record.name in args.words:
            raise CommandError(
                _("task {name} has already ended ({state})").format(
                    name=shown(record.name), state=record.state
                )
            )
    live = [r for r in records if not r.finished]
    if not live:
        raise CommandError(
            _("no live task matches {patterns}").format(
                patterns=" ".join(shown(w) for w in args.words)
            )
        )
    refused = []
    for ending in await ctx.engine.cancel(live):
        record = ending.record
        if ending.outcome == "cancelled":
            ctx.reply.out(_stamped(ctx, _names_line("cancelled", record.name)))
        elif ending.outcome == "ended":
            ctx.reply.out(_stamped(ctx, [
                ("task", record.name), ("", f" ended first: {formatting.ending(record)}")
            ]))
        else:
            refused.append(record)
    if refused:
        names = ", ".join(r.name for r in refused)
        raise CommandError(
            _("{names} did not stop within {grace:g}s (still cancelling)").format(
                names=names, grace=ctx.engine.config.cancel_grace
            )
        )


@command(
    "wait",
    "wait until tasks (default: all live ones) end; an error if one failed",
    params=(Param("NAME|PATTERN", "pattern", optional=True, repeat=True),),
    options={"--timeout": Param("S", "seconds")},
)
async def _wait(ctx: Context, args: Args) -> None:
    timeout = _timeout(args, "--timeout")
    registry = ctx.engine.registry
    if args.words:
        records = registry.select(args.words, include_finished=True)
    else:  # the tasks started by `new`: a child is waited for by its parent, or by name
        records = [r for r in registry.live.values() if r.parent is None]
    await ctx.engine.wait_for(records, timeout)


@command(
    "sleep",
    "pause reading commands while tasks run",
    params=(Param("SECONDS", "seconds"),),
)
async def _sleep(ctx: Context, args: Args) -> None:
    await asyncio.sleep(seconds("SECONDS", args.words[0]))


@command(
    "log",
    "append task events to FILE (--json: JSON lines); 'off' stops; bare: where it logs",
    params=(Param("FILE", "file", optional=True, choices=("off",)),),
    flags=("--json", "--steps"),
    usage_text="log [FILE [--json] [--steps] | off]",
    details="--steps: each step a task runs on the loop is logged too (a `step` event with "
    "start_s and dur_s), for `taskd trace` and `taskd timeline`; they are many.",
)
async def _log(ctx: Context, args: Args) -> None:
    from . import commands_time  # here: it registers its commands after the others

    engine = ctx.engine
    if not args.words:
        if "--json" in args.flags:
            raise COMMANDS["log"].fail(_("log: --json needs a FILE"))
        if "--steps" in args.flags:
            raise COMMANDS["log"].fail("log: --steps needs a FILE")
        await engine.flush_log()  # so that the count is exact
        ctx.reply.out(engine.log_status())
    elif args.words[0] == "off":
        if "--json" in args.flags:
            raise COMMANDS["log"].fail(_("log: --json goes with a FILE"))
        if "--steps" in args.flags:
            raise COMMANDS["log"].fail("log: --steps goes with a FILE")
        commands_time.log_steps(ctx, False)
        ctx.reply.out(await engine.stop_log())
    else:
        fmt = "json" if "--json" in args.flags else engine.config.log_format
        steps = "--steps" in args.flags
        if steps:
            commands_time.need_recorder(ctx)  # before anything changes
        await engine.start_log(args.words[0], fmt)
        commands_time.log_steps(ctx, steps)
        ctx.reply.out(f"logging to {args.words[0]} ({fmt}{', steps' if steps else ''})")


@command("kinds", "list the task kinds and their arguments", flags=("--json",))
async def _kinds(ctx: Context, args: Args) -> None:
    kinds = ctx.engine.kinds.values()
    if "--json" in args.flags:
        items = [{"name": k.name, "usage": k.usage, "summary": _(k.summary)} for k in kinds]
        ctx.reply.out(json.dumps(items, ensure_ascii=False))
        return
    rows = [(kind.usage, _(kind.summary)) for kind in kinds]
    ctx.reply.lines(formatting.two_columns(rows, ctx.reply.width))  # type: ignore[arg-type]


@command(
    "help", "list the commands, or explain one", params=(Param("COMMAND", "command", True),)
)
async def _help(ctx: Context, args: Args) -> None:
    text = help_text(args.words[0] if args.words else None, ctx.reply.width)
    ctx.reply.lines(text.split("\n"))  # type: ignore[arg-type]


@command("end", "cancel every task, wait for them, and leave")
async def _end(ctx: Context, args: Args) -> None:
    ctx.control.request_end()


def help_text(name: str | None = None, width: int | None = None) -> str:
    """The command list, or one command's usage and details; wrapped at word
    boundaries to WIDTH columns (None: not wrapped)."""
    if name is not None:
        cmd = lookup(name)
        lines = formatting.wrap_indented(_("usage: {usage}").format(usage=cmd.usage), width)
        lines += formatting.wrap_indented(_(cmd.summary), width, "  ")
        if cmd.details:
            lines += formatting.wrap_indented(_(cmd.details), width, "  ")
        return "\n".join(lines)
    rows = [(c.usage, _(c.summary)) for c in COMMANDS.values()]
    footer = _(
        "Tasks' output appears as [NAME] text. End of input means end. "
        "'help COMMAND' for more."
    )
    return "\n".join(
        [
            _("commands:"),
            *formatting.two_columns(rows, width, "  "),
            "",
            *formatting.wrap_indented(footer, width),
        ]
    )
