"""How a kind is described: its function, its arguments, its one-line summary.

Arguments are converted and checked when `new` is parsed, before anything is
spawned, so a bad argument changes nothing: a value that would only fail inside the
task (a sleep longer than the platform can time, a NUL byte that no command line can
carry) is refused here.
"""

from __future__ import annotations

import inspect
import math
import re
import shlex
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import CommandError, shown
from ..i18n import _

KindFunc = Callable[..., Awaitable[object]]
_REQUIRED: Any = object()

# The longest duration taskd accepts: about 31.7 years. time.sleep and
# threading's waits stop at threading.TIMEOUT_MAX (about 9.2e9 s here), uvloop's
# timers at 2**64 ms; 1e9 s is well inside all of them, and longer than any task.
MAX_SECONDS = 1e9

# A power of two plain numbers, as `kinds` shows defaults (search's P=2**-20).
_POWER = re.compile(r"\s*([^*\s]+)\s*\*\*\s*([^*\s]+)\s*")


def _float(label: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise CommandError(
            _("{label}: expected a number, got {text}").format(label=label, text=shown(text))
        ) from None


def _number(label: str, text: str) -> float:
    """A finite number, written plainly or as BASE**EXPONENT (computed, never eval'd)."""
    power = _POWER.fullmatch(text)
    if power is None:
        value = _float(label, text)
    else:
        base, exponent = (_float(label, part) for part in power.groups())
        try:
            value = math.pow(base, exponent)
        except (OverflowError, ValueError):
            value = math.nan
    if not math.isfinite(value):
        raise CommandError(
            _("{label}: expected a finite number, got {text}").format(
                label=label, text=shown(text)
            )
        )
    return value


def seconds(label: str, text: str) -> float:
    """A duration: a finite number from 0 to MAX_SECONDS."""
    value = _number(label, text)
    if value < 0:
        raise CommandError(
            _("{label}: expected seconds >= 0, got {text}").format(label=label, text=shown(text))
        )
    if value > MAX_SECONDS:
        raise CommandError(f"{label}: expected seconds <= 1e9, got {shown(text)}")
    return value


def count(label: str, text: str) -> int:
    """A whole number >= 1."""
    message = _("{label}: expected a whole number >= 1, got {text}")
    try:
        value = int(text)
    except ValueError:
        raise CommandError(message.format(label=label, text=shown(text))) from None
    if value < 1:
        raise CommandError(message.format(label=label, text=shown(text)))
    return value


def probability(label: str, text: str) -> float:
    """A probability in (0, 1]."""
    value = _number(label, text)
    if not 0 < value <= 1:
        raise CommandError(
            _("{label}: expected a probability in (0, 1], got {text}").format(
                label=label, text=shown(text)
            )
        )
    return value


def text(label: str, value: str) -> str:
    return value


def command_line(label: str, value: str) -> str:
    """A command line for /bin/sh: any text but a NUL byte, which no argv can carry."""
    if "\0" in value:
        raise CommandError(f"{label}: a command cannot contain a NUL byte")
    return value


class Arg:
    """One positional argument of a kind. `rest` takes all remaining words. A plain
    class, not a dataclass, as commands.Param is (and for the same reason); not
    changed once made."""

    __slots__ = ("name", "convert", "default", "rest", "shown_default")

    def __init__(
        self,
        name: str,
        convert: Callable[[str, str], Any] = text,
        default: Any = _REQUIRED,
        rest: bool = False,
        shown_default: str = "",
    ) -> None:
        self.name = name
        self.convert = convert
        self.default = default
        self.rest = rest
        self.shown_default = shown_default

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    def usage(self) -> str:
        dots = "..." if self.rest else ""
        if self.required:
            return self.name + dots
        if self.default is None or self.default == "":
            return f"[{self.name}{dots}]"
        if self.shown_default:
            return f"[{self.name}={self.shown_default}]"
        if isinstance(self.default, (int, float)):
            return f"[{self.name}={self.default:g}]"
        return f"[{self.name}={self.default}]"


class Kind:
    """A kind of task that `new` can spawn (not changed once made)."""

    __slots__ = ("name", "func", "summary", "args", "builtin")

    def __init__(
        self, name: str, func: KindFunc, summary: str, args: tuple[Arg, ...], builtin: bool = True
    ) -> None:
        self.name = name
        self.func = func
        self.summary = summary
        self.args = args
        self.builtin = builtin

    @property
    def usage(self) -> str:
        return " ".join([self.name, *(a.usage() for a in self.args)])

    def bind(self, words: list[str]) -> list[Any]:
        """Convert WORDS to the function's arguments, or raise CommandError."""
        if not self.builtin:
            try:
                inspect.signature(self.func).bind(*words)
            except TypeError as exc:
                raise CommandError(
                    _("{kind}: {error} (usage: {usage})").format(
                        kind=self.name, error=exc, usage=self.usage
                    )
                ) from None
            return list(words)
        values: list[Any] = []
        words = list(words)
        for arg in self.args:
            if arg.rest and words:
                # One word is used as it is ("echo hi | wc"), several are re-quoted
                # so that the shell sees the words the user wrote.
                joined = words[0] if len(words) == 1 else shlex.join(words)
                values.append(arg.convert(arg.name, joined))
                words = []
            elif words:
                values.append(arg.convert(arg.name, words.pop(0)))
            elif arg.required:
                raise CommandError(
                    _("{kind} needs {arg} (usage: {usage})").format(
                        kind=self.name, arg=arg.name, usage=self.usage
                    )
                )
            else:
                values.append(arg.default)
        if words:
            template = (
                _("{kind} takes at most {count} argument (usage: {usage})")
                if len(self.args) == 1
                else _("{kind} takes at most {count} arguments (usage: {usage})")
            )
            raise CommandError(
                template.format(kind=self.name, count=len(self.args), usage=self.usage)
            )
        return values


BUILTINS: dict[str, Kind] = {}


def builtin(name: str, summary: str, *args: Arg) -> Callable[[KindFunc], KindFunc]:
    """Register a built-in kind; the decorated function gets the converted arguments."""

    def register(func: KindFunc) -> KindFunc:
        BUILTINS[name] = Kind(name, func, summary, args)
        return func

    return register


def custom_kind(name: str, func: KindFunc, target: str) -> Kind:
    """A user's kind: its positional parameters become string arguments."""
    args: list[Arg] = []
    for param in inspect.signature(func).parameters.values():
        label = param.name.upper()
        if param.kind is param.VAR_POSITIONAL:
            args.append(Arg(label, rest=True, default=None))
        elif param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            if param.default is param.empty:
                args.append(Arg(label))
            else:
                args.append(Arg(label, default=param.default, shown_default=str(param.default)))
    doc = (inspect.getdoc(func) or "").strip().splitlines()
    summary = doc[0] if doc else f"user kind from {target}"
    return Kind(name, func, summary, tuple(args), builtin=False)
