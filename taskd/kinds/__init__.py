"""Task kinds: the built-in ones, one module per idea, and users' own from config.

A user's kind module is looked for first beside the config file that names it, then
in the current folder, then on the usual import path: a class keeps `mykinds.py`
next to `taskd.toml` and needs no PYTHONPATH. Those two folders are on the import
path only while the config's modules are imported (so imports at a module's top
level find their neighbours; imports made later, inside a kind, do not).
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType

from ..errors import ConfigError
from ..registry import name_start_ok
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

__all__ = ["Arg", "Kind", "KindFunc", "BUILTINS", "load_kinds", "kind_folders"]

MAX_KIND_NAME = 32
MAX_REASON = 300  # characters of an import failure's message


def kind_folders(source: str) -> list[str]:
    """Where user kind modules are found besides the import path: the folder of the
    config file SOURCE (when it is one), then the current folder."""
    folders = []
    if source and os.path.isfile(source):
        folders.append(os.path.dirname(os.path.realpath(source)))
    try:
        folders.append(os.getcwd())
    except OSError:  # the current folder was removed: nothing to find there
        pass
    return list(dict.fromkeys(folders))


@contextmanager
def _on_path(folders: Sequence[str]) -> Iterator[None]:
    added = [f for f in folders if f not in sys.path]
    sys.path[:0] = added
    importlib.invalidate_caches()
    try:
        yield
    finally:
        for folder in added:
            if folder in sys.path:
                sys.path.remove(folder)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > MAX_REASON:
        text = text[: MAX_REASON - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _import(module_name: str, folders: Sequence[str], source: str, key: str) -> ModuleType:
    try:
        with _on_path(folders):
            return importlib.import_module(module_name)
    # Any failure is the config's fault, SystemExit and KeyboardInterrupt raised by
    # the module included: nothing has started yet, so one line and exit 2 is right.
    except BaseException as exc:
        raise ConfigError(
            source, f"cannot import {module_name!r}: {_one_line(exc)}", key
        ) from None


def load_kinds(
    custom: dict[str, str], source: str = "config", folders: Sequence[str] | None = None
) -> dict[str, Kind]:
    """The built-in kinds plus the user's `[kinds] NAME = "module:function"` entries.

    FOLDERS are searched for their modules before the import path (default:
    kind_folders(SOURCE))."""
    kinds = dict(BUILTINS)
    if custom and folders is None:
        folders = kind_folders(source)
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
        if not name_start_ok(name):
            raise ConfigError(source, "a kind name starts with a letter, a digit or '_'", key)
        module_name, _, attr = target.partition(":")
        module = _import(module_name, folders or (), source, key)
        try:
            func = getattr(module, attr, None)
        except BaseException as exc:  # a module __getattr__ of the user's own
            raise ConfigError(source, f"{module_name!r}.{attr}: {_one_line(exc)}", key) from None
        if func is None:
            raise ConfigError(source, f"{module_name!r} has no {attr!r}", key)
        if not inspect.iscoroutinefunction(func):
            raise ConfigError(source, f"{target!r} is not an async function", key)
        kinds[name] = custom_kind(name, func, target)
    return kinds
