"""How a kind is described: its function, its arguments, its one-line summary.

Arguments are converted and checked when `new` is parsed, before anything is
spawned, so a bad argument changes nothing.
"""

from __future__ import annotations

import inspect
import math
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..errors import CommandError, shown
from ..i18n import _

KindFunc = Callable[..., Awaitable[object]]
_REQUIRED: Any = object()


def _number(label: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CommandError(
            _("{label}: expected a number, got {text}").format(label=label, text=shown(text))
        ) from None
    if not math.isfinite(value):
        raise CommandError(
            _("{label}: expected a finite number, got {text}").format(
                label=label, text=shown(text)
            )
        )
    return value


def seconds(label: str, text: str) -> float:
    """A duration: a finite number >= 0."""
    value = _number(label, text)
    if value < 0:
        raise CommandError(
            _("{label}: expected seconds >= 0, got {text}").format(label=label, text=shown(text))
        )
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


@dataclass(frozen=True)
class Arg:
    """One positional argument of a kind. `rest` takes all remaining words."""

    name: str
    convert: Callable[[str, str], Any] = text
    default: Any = _REQUIRED
    rest: bool = False
    shown_default: str = ""

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


@dataclass(frozen=True)
class Kind:
    """A kind of task that `new` can spawn."""

    name: str
    func: KindFunc
    summary: str
    args: tuple[Arg, ...]
    builtin: bool = True

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
                values.append(words[0] if len(words) == 1 else shlex.join(words))
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
