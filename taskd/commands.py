"""The command language: one table of commands, their usage, help and handlers.

Each command says what its arguments are (a task name, a kind, a file, a number, a
choice...): its usage line, `help` and the shell's tab completion are all generated
from that. Parsing is strict: a line is split shell-style, options are checked
against the command's own, and any mistake raises CommandError before anything is
changed. A handler gets a Context: the engine, the daemon's controls, and the reply
channel of whoever asked; it writes its result there and nowhere else.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from .errors import CommandError, shown
from .i18n import _
from .lag import LagMeter
from .reply import Reply

if TYPE_CHECKING:
    from .engine import Engine


class Control(Protocol):
    """What commands may ask of the daemon itself."""

    ending: bool
    started: float  # time.monotonic() when the daemon started
    lag: LagMeter

    def request_end(self, signum: int | None = None) -> None: ...


# Plain classes, not dataclasses: a dataclass compiles its methods when its module is
# imported, and every start of taskd paid for that (README, Performance). A Param and
# a Command are not changed once made.


class Context:
    """What a command runs with: the engine, the daemon, and the asker's reply."""

    __slots__ = ("engine", "control", "reply")

    def __init__(self, engine: Engine, control: Control, reply: Reply) -> None:
        self.engine = engine
        self.control = control
        self.reply = reply


class Param:
    """One positional argument of a command: what it is, for usage and completion.

    KIND is one of: task (a live task's name), pattern (names and globs), kind (a task
    kind), command, file, number, seconds, choice (one of CHOICES), text.
    """

    __slots__ = ("label", "kind", "optional", "repeat", "choices")

    def __init__(
        self,
        label: str,
        kind: str = "text",
        optional: bool = False,
        repeat: bool = False,
        choices: tuple[str, ...] = (),
    ) -> None:
        self.label = label
        self.kind = kind
        self.optional = optional
        self.repeat = repeat
        self.choices = choices

    def usage(self) -> str:
        text = self.label + ("..." if self.repeat else "")
        return f"[{text}]" if self.optional else text


class Args:
    """A parsed command line: positional words, flags given, option values (the
    options that may repeat: every value, in order, in `lists`)."""

    __slots__ = ("words", "flags", "values", "lists")

    def __init__(
        self,
        words: list[str] | None = None,
        flags: set[str] | None = None,
        values: dict[str, str] | None = None,
        lists: dict[str, list[str]] | None = None,
    ) -> None:
        self.words = [] if words is None else words
        self.flags = set() if flags is None else flags
        self.values = {} if values is None else values
        self.lists = {} if lists is None else lists


Handler = Callable[[Context, Args], Awaitable[None]]


class Command:
    """One command of the table: its name, what it takes, and its handler."""

    def __init__(
        self,
        name: str,
        summary: str,
        handler: Handler,
        params: tuple[Param, ...] = (),
        flags: tuple[str, ...] = (),
        options: dict[str, Param] | None = None,  # options that take a value
        details: str = "",
        usage_text: str = "",  # only where the generated usage would read worse
    ) -> None:
        self.name = name
        self.summary = summary
        self.handler = handler
        self.params = params
        self.flags = flags
        self.options = {} if options is None else options
        self.details = details
        self.usage_text = usage_text

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


# The commands, each room's registering itself in the table above; the commands on
# tasks first, as `help` lists them (one import a line: sorting must not reorder them).
from . import commands_tasks  # noqa: E402, F401, I001
from . import commands_daemon  # noqa: E402, F401
from . import commands_supervise  # noqa: E402, F401
from . import commands_teach  # noqa: E402, F401
from . import commands_time  # noqa: E402, F401
from .commands_tasks import help_text  # noqa: E402, F401
