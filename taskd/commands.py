"""The command language: one table of commands, their usage, help and handlers.

`help` is generated from the table, and so is tab completion in the shell. Parsing
is strict: a line is split shell-style, options are checked against the command's
own, and any mistake raises CommandError before anything is changed.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import re
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import formatting
from .errors import CommandError, shown
from .kinds._spec import seconds

if TYPE_CHECKING:
    from .engine import Engine as Daemon


@dataclass
class Args:
    """A parsed command line: positional words, flags given, option values."""

    words: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    values: dict[str, str] = field(default_factory=dict)


Handler = Callable[["Daemon", Args], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    summary: str
    handler: Handler
    flags: tuple[str, ...] = ()
    options: tuple[str, ...] = ()  # options that take a value
    min_words: int = 0
    max_words: int | None = None
    details: str = ""

    def fail(self, message: str) -> CommandError:
        return CommandError(f"{message} (usage: {self.usage})")

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
                        raise self.fail(f"{self.name}: {option} takes no value")
                    args.flags.add(option)
                elif option in self.options:
                    if not eq:
                        value = next(rest, None)  # type: ignore[assignment]
                        if value is None:
                            raise self.fail(f"{self.name}: {option} needs a value")
                    args.values[option] = value
                else:
                    raise self.fail(f"{self.name}: unknown option {shown(option)}")
            else:
                args.words.append(token)
        if len(args.words) < self.min_words:
            raise self.fail(f"{self.name}: missing arguments")
        if self.max_words is not None and len(args.words) > self.max_words:
            raise self.fail(f"{self.name}: too many arguments")
        return args


COMMANDS: dict[str, Command] = {}


def command(name: str, usage: str, summary: str, **spec: object) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(name, usage, summary, handler, **spec)  # type: ignore[arg-type]
        return handler

    return register


# shlex costs about 18 us a line, a third of what a 50,000-line script of `new` lines
# takes. A line with no quote or backslash splits the same way on shlex's own
# whitespace (posix mode, no comments), so such lines take this 10x faster path.
_NEEDS_SHLEX = re.compile(r"""['"\\]""")
_SHLEX_SPACE = re.compile(r"[ \t\r\n]+")


def split(line: str) -> list[str]:
    """Split LINE shell-style; a quoting mistake is a CommandError."""
    if _NEEDS_SHLEX.search(line) is None:
        return [word for word in _SHLEX_SPACE.split(line) if word]
    try:
        return shlex.split(line, comments=False, posix=True)
    except ValueError as exc:
        raise CommandError(f"cannot split the line: {exc}") from None


# Words people bring from other tools, and the command that does that here.
_MEANT = {
    "exit": "end", "quit": "end", "ps": "show", "ls": "show", "list": "show",
    "kill": "cancel", "stop": "cancel", "start": "new", "run": "new", "spawn": "new",
}


def lookup(name: str) -> Command:
    found = COMMANDS.get(name)
    if found is not None:
        return found
    close = [_MEANT[name]] if name in _MEANT else difflib.get_close_matches(name, COMMANDS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else "; 'help' lists the commands"
    raise CommandError(f"unknown command {shown(name)}{hint}")


async def execute(daemon: Daemon, line: str) -> None:
    """Run one command line against DAEMON; blank and comment lines do nothing."""
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return
    tokens = split(stripped)
    if not tokens:
        return
    cmd = lookup(tokens[0])
    await cmd.handler(daemon, cmd.parse(tokens[1:]))


def _timeout(args: Args, name: str) -> float | None:
    text = args.values.get(name)
    return None if text is None else seconds(name, text)


@command(
    "new",
    "new [KIND] [ARG...] [--name NAME]",
    "spawn a task of KIND (default idle)",
    options=("--name",),
    details="`kinds` lists the kinds and their arguments. Without --name the task is "
    "called KIND-N.",
)
async def _new(daemon: Daemon, args: Args) -> None:
    kind, *words = args.words or ["idle"]
    record = daemon.spawn(kind, words, args.values.get("--name"))
    daemon.output.write(f"started {record.name}\n")


@command(
    "show",
    "show [--all] [--json] [PATTERN...]",
    "list live tasks (--all: finished ones too), as a table or one line of JSON",
    flags=("--all", "--json"),
)
async def _show(daemon: Daemon, args: Args) -> None:
    include = "--all" in args.flags
    daemon.settle(list(daemon.registry.live.values()))
    if args.words:
        records = daemon.registry.select(args.words, include_finished=include)
        if not include:  # a task asked for by name is shown however it ended
            records = [r for r in records if not r.finished or r.name in args.words]
    else:
        records = list(daemon.registry.records(include))
    if "--json" in args.flags:
        now = time.monotonic()
        items = [formatting.record_dict(r, now) for r in records]
        daemon.output.write(json.dumps(items, ensure_ascii=False) + "\n")
    elif not records:
        daemon.output.write("no tasks\n" if not include else "no tasks, live or finished\n")
    else:
        lines = formatting.table(records, daemon.output_width())
        daemon.output.write("\n".join(lines) + "\n")


@command(
    "cancel",
    "cancel NAME|PATTERN...",
    "cancel tasks and wait up to the grace period for each to stop",
    min_words=1,
)
async def _cancel(daemon: Daemon, args: Args) -> None:
    records = daemon.registry.select(args.words, include_finished=True)
    for record in records:
        if record.finished and record.name in args.words:
            raise CommandError(f"task {shown(record.name)} has already ended ({record.state})")
    live = [r for r in records if not r.finished]
    if not live:
        raise CommandError("no live task matches " + " ".join(shown(w) for w in args.words))
    refused = await daemon.cancel(live)
    if refused:
        names = ", ".join(r.name for r in refused)
        raise CommandError(
            f"{names} did not stop within {daemon.config.cancel_grace:g}s (still cancelling)"
        )


@command(
    "wait",
    "wait [NAME|PATTERN...] [--timeout S]",
    "wait until tasks (default: all live ones) end; an error if one failed",
    options=("--timeout",),
)
async def _wait(daemon: Daemon, args: Args) -> None:
    timeout = _timeout(args, "--timeout")
    if args.words:
        records = daemon.registry.select(args.words, include_finished=True)
    else:
        records = list(daemon.registry.live.values())
    await daemon.wait_for(records, timeout)


@command(
    "sleep", "sleep SECONDS", "pause reading commands while tasks run", min_words=1, max_words=1
)
async def _sleep(daemon: Daemon, args: Args) -> None:
    await asyncio.sleep(seconds("SECONDS", args.words[0]))


@command(
    "log",
    "log [FILE [--json] | off]",
    "append task events to FILE (--json: JSON lines); 'off' stops; bare: where it logs",
    flags=("--json",),
    max_words=1,
)
async def _log(daemon: Daemon, args: Args) -> None:
    if not args.words:
        if "--json" in args.flags:
            raise COMMANDS["log"].fail("log: --json needs a FILE")
        await daemon.flush_log()  # so that the count is exact
        daemon.output.write(daemon.log_status() + "\n")
    elif args.words[0] == "off":
        if "--json" in args.flags:
            raise COMMANDS["log"].fail("log: --json goes with a FILE")
        daemon.output.write(await daemon.stop_log() + "\n")
    else:
        fmt = "json" if "--json" in args.flags else daemon.config.log_format
        await daemon.start_log(args.words[0], fmt)
        daemon.output.write(f"logging to {args.words[0]} ({fmt})\n")


@command("kinds", "kinds", "list the task kinds and their arguments", max_words=0)
async def _kinds(daemon: Daemon, args: Args) -> None:
    lines = []
    width = max(len(k.usage) for k in daemon.kinds.values())
    for kind in daemon.kinds.values():
        lines.append(f"{kind.usage.ljust(width)}  {kind.summary}")
    daemon.output.write("\n".join(lines) + "\n")


@command("help", "help [COMMAND]", "list the commands, or explain one", max_words=1)
async def _help(daemon: Daemon, args: Args) -> None:
    daemon.output.write(help_text(args.words[0] if args.words else None) + "\n")


@command("end", "end", "cancel every task, wait for them, and leave", max_words=0)
async def _end(daemon: Daemon, args: Args) -> None:
    daemon.request_end()


def help_text(name: str | None = None) -> str:
    if name is not None:
        cmd = lookup(name)
        text = f"usage: {cmd.usage}\n  {cmd.summary}"
        return text + (f"\n  {cmd.details}" if cmd.details else "")
    width = max(len(c.usage) for c in COMMANDS.values())
    lines = [f"  {c.usage.ljust(width)}  {c.summary}" for c in COMMANDS.values()]
    return "\n".join(
        [
            "commands:",
            *lines,
            "",
            "Tasks' output appears as [NAME] text. "
            "End of input means end. 'help COMMAND' for more.",
        ]
    )
