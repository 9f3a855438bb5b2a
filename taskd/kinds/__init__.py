"""Task kinds: the built-in ones, one module per idea, and users' own from config."""

from __future__ import annotations

import importlib
import inspect

from ..errors import ConfigError
from . import (  # noqa: F401  (they register)
    basic,
    blocker,
    cooperative,
    files,
    gathering,
    generators,
    iterators,
    processes,
    threads,
)
from ._spec import BUILTINS, Arg, Kind, KindFunc, custom_kind

__all__ = ["Arg", "Kind", "KindFunc", "BUILTINS", "load_kinds"]

MAX_KIND_NAME = 32


def load_kinds(custom: dict[str, str], source: str = "config") -> dict[str, Kind]:
    """The built-in kinds plus the user's `[kinds] NAME = "module:function"` entries."""
    kinds = dict(BUILTINS)
    for name, target in custom.items():
        key = f"kinds.{name}"
        if name in BUILTINS:
            raise ConfigError(source, "a built-in kind has this name", key)
        # A kind's name starts its tasks' automatic names (KIND-N), which must be
        # valid task names: the same characters, and room left for the number.
        if not name or len(name) > MAX_KIND_NAME or not all(
            c.isalnum() or c in "-_." for c in name
        ):
            raise ConfigError(
                source,
                f"a kind name has 1 to {MAX_KIND_NAME} letters, digits, '-', '_' or '.'",
                key,
            )
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # any import failure is the config's fault
            raise ConfigError(
                source, f"cannot import {module_name!r}: {type(exc).__name__}: {exc}", key
            ) from None
        func = getattr(module, attr, None)
        if func is None:
            raise ConfigError(source, f"{module_name!r} has no {attr!r}", key)
        if not inspect.iscoroutinefunction(func):
            raise ConfigError(source, f"{target!r} is not an async function", key)
        kinds[name] = custom_kind(name, func, target)
    return kinds
