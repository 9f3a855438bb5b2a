"""The command language: one table of commands, their usage, help and handlers.

Each command says what its arguments are (a task name, a kind, a file, a number, a
choice...): its usage line, `help` and the shell's tab completion are all generated
from that. Parsing is strict: a line is split shell-style, options are checked
against the command's own, and any mistake raises CommandError before anything is
changed. A handler gets a Context: the engine, the daemon's controls, and the reply
channel of whoever asked; it writes its result there and nowhere else.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from . import clocks, formatting, table
from .errors import CommandError, shown
from .fragments import Fragments
from .i18n import _
from .kinds._spec import seconds
from .lag import LagMeter
from .reply import Reply
from .supervise import POLICIES, TaskOptions, parse_options

if TYPE_CHECKING:
    from .engine import Engine


class Control(Protocol):
    """What commands may ask of the daemon itself."""

    ending: bool
    started: float  # time.monotonic() when the daemon started
    lag: LagMeter

    def request_end(self, signum: int | None = None) -> None: ...


@dataclass(slots=True)
class Context:
    """What a command runs with: the engine, the daemon, and the asker's reply."""

    engine: Engine
    control: Control
    reply: Reply


@dataclass(frozen=True)
class Param:
    """One positional argument of a command: what it is, for usage and completion.

    KIND is one of: task (a live task's name), pattern (names and globs), kind (a task
    kind), command, file, number, seconds, choice (one of CHOICES), text.
    """

    label: str
    kind: str = "text"
    optional: bool = False
    repeat: bool = False
    choices: tuple[str, ...] = ()

    def usage(self) -> str:
        text = self.label + ("..." if self.repeat else "")
        return f"[{text}]" if self.optional else text


@dataclass(slots=True)
class Args:
    """A parsed command line: positional words, flags given, option values (the
    options that may repeat: every value, in order, in `lists`)."""

    words: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    values: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)


Handler = Callable[[Context, Args], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    handler: Handler
    params: tuple[Param, ...] = ()
    flags: tuple[str, ...] = ()
    options: dict[str, Param] = field(default_factory=dict)  # options that take a value
    details: str = ""
    usage_text: str = ""  # only where the generated usage would read worse

    @property
    def usage(self) -> str:
        if self.usage_text:
            return self.usage_text
        parts = [self.name, *(p.usage() for p in self.params)]
        parts += [f"[{flag}]" for flag in self.flags]
        parts += [
            f"[{option} {value.label}]" + ("..." if value.repeat else "")
            for option, value in self.options.items()
        ]
        return " ".join(parts)

    @cached_property  # read for every line: worked out once
    def min_words(self) -> int:
        return sum(1 for p in self.params if not p.optional)

    @cached_property
    def max_words(self) -> int | None:
        if any(p.repeat for p in self.params):
            return None
        return len(self.params)

    def param_at(self, index: int) -> Param | None:
        """The parameter a positional word at INDEX fills."""
        if index < len(self.params):
            return self.params[index]
        if self.params and self.params[-1].repeat:
            return self.params[-1]
        return None

    def fail(self, message: str) -> CommandError:
        usage = _("{message} (usage: {usage})")
        return CommandError(usage.format(message=message, usage=self.usage))

    def parse(self, tokens: list[str]) -> Args:
        args = Args()
        rest = iter(tokens)
        for token in rest:
            if token == "--":
                args.words.extend(rest)
                break
            if token.startswith("--") and len(token) > 2:
                option, eq, value = token.partition("=")
                if option in self.flags:
                    if eq:
                        raise self.fail(
                            _("{command}: {option} takes no value").format(
                                command=self.name, option=option
                            )
                        )
                    args.flags.add(option)
                elif option in self.options:
                    if not eq:
                        value = next(rest, None)  # type: ignore[assignment]
                        if value is None:
                            raise self.fail(
                                _("{command}: {option} needs a value").format(
                                    command=self.name, option=option
                                )
                            )
                    if self.options[option].repeat:
                        args.lists.setdefault(option, []).append(value)
                    else:
                        args.values[option] = value
                else:
                    raise self.fail(
                        _("{command}: unknown option {option}").format(
                            command=self.name, option=shown(option)
                        )
                    )
            else:
                args.words.append(token)
        if len(args.words) < self.min_words:
            raise self.fail(_("{command}: missing arguments").format(command=self.name))
        if self.max_words is not None and len(args.words) > self.max_words:
            raise self.fail(_("{command}: too many arguments").format(command=self.name))
        return args


COMMANDS: dict[str, Command] = {}


def command(name: str, summary: str, **spec: object) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(name, summary, handler, **spec)  # type: ignore[arg-type]
        return handler

    return register


# shlex costs about 18 us a line, a third of what a 50,000-line script of `new` lines
# takes. A line with no quote or backslash splits the same way on shlex's own
# whitespace (posix mode, no comments), so such lines take a path 10x faster; one of
# printable ASCII and tabs alone, str.split() in C, which splits on those the same.
_NEEDS_SHLEX = re.compile(r"""['"\\]""")
_NOT_PLAIN = re.compile(r"""[^\x20-\x7e\t]|['"\\]""")
_SHLEX_SPACE = re.compile(r"[ \t\r\n]+")


def split(line: str) -> list[str]:
    """Split LINE shell-style; a quoting mistake is a CommandError."""
    if _NOT_PLAIN.search(line) is None:
        return line.split()
    if _NEEDS_SHLEX.search(line) is None:
        return [word for word in _SHLEX_SPACE.split(line) if word]
    try:
        return shlex.split(line, comments=False, posix=True)
    except ValueError as exc:
        raise CommandError(_("cannot split the line: {error}").format(error=exc)) from None


# Words people bring from other tools, and the command that does that here.
_MEANT = {
    "exit": "end", "quit": "end", "ps": "show", "ls": "show", "list": "show",
    "kill": "cancel", "stop": "cancel", "start": "new", "run": "new", "spawn": "new",
}


def lookup(name: str) -> Command:
    found = COMMANDS.get(name)
    if found is not None:
        return found
    if name in _MEANT:
        close = [_MEANT[name]]
    else:
        import difflib  # here, not at start-up: only a mistyped command needs it

        close = difflib.get_close_matches(name, COMMANDS, n=1)
    if close:
        raise CommandError(
            _("unknown command {name} (did you mean {close}?)").format(
                name=shown(name), close=repr(close[0])
            )
        )
    raise CommandError(
        _("unknown command {name}; 'help' lists the commands").format(name=shown(name))
    )


async def execute(ctx: Context, line: str) -> None:
    """Run one command line; blank and comment lines do nothing."""
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return
    tokens = split(stripped)
    if not tokens:
        return
    cmd = lookup(tokens[0])
    await cmd.handler(ctx, cmd.parse(tokens[1:]))


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
        _commands_time.log_steps(ctx, False)
        ctx.reply.out(await engine.stop_log())
    else:
        fmt = "json" if "--json" in args.flags else engine.config.log_format
        steps = "--steps" in args.flags
        if steps:
            _commands_time.need_recorder(ctx)  # before anything changes
        await engine.start_log(args.words[0], fmt)
        _commands_time.log_steps(ctx, steps)
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


# Commands of other rooms register themselves in the same table.
from . import commands_daemon, commands_supervise, commands_teach  # noqa: E402, F401
from . import commands_time as _commands_time  # noqa: E402
