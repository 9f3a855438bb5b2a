"""The asyncio chapter, shipped: one commented command script per program.

asyncio01 ... asyncio12 and aiofiles01 each show one idea of the chapter with taskd.
An example whose idea needs a kind of its own has a config file beside it
(NAME.toml) naming a user-kind module that also sits here; run it with that config.
"""

from __future__ import annotations

import difflib
from pathlib import Path

__all__ = ["UnknownExample", "example_config", "example_path", "list_examples"]

FOLDER = Path(__file__).resolve().parent
SUFFIX = ".tdc"


class UnknownExample(ValueError):
    """A name that is not one of the shipped examples; the message is one line."""


def _names() -> list[str]:
    names = [p.stem for p in FOLDER.glob(f"*{SUFFIX}")]
    # The chapter's order: asyncio01 ... asyncio12, then aiofiles01.
    return sorted(names, key=lambda name: (not name.startswith("asyncio"), name))


def _title(path: Path) -> str:
    """The first comment line, without its '#' and the 'NAME: ' that starts it."""
    with path.open(encoding="utf-8") as f:
        for line in f:
            text = line.strip()
            if text.startswith("#") and text.lstrip("#").strip():
                title = text.lstrip("#").strip()
                prefix = f"{path.stem}:"
                return title[len(prefix):].strip() if title.startswith(prefix) else title
    return ""


def list_examples() -> list[tuple[str, str]]:
    """(name, title) of every shipped example, in the chapter's order."""
    return [(name, _title(FOLDER / f"{name}{SUFFIX}")) for name in _names()]


def example_path(name: str) -> str:
    """The script file of example NAME; UnknownExample when there is none."""
    names = _names()
    key = name.removesuffix(SUFFIX)
    if key not in names:
        close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
        hint = (
            f" (did you mean {' or '.join(repr(c) for c in close)}?)"
            if close
            else f"; they are {names[0]} ... {names[-1]}: 'examples' lists them"
        )
        shown = repr(name) if len(name) <= 40 else repr(name[:40]) + "..."
        raise UnknownExample(f"unknown example {shown}{hint}")
    return str(FOLDER / f"{key}{SUFFIX}")


def example_config(name: str) -> str | None:
    """The config file example NAME needs (its user kinds), or None."""
    config = Path(example_path(name)).with_suffix(".toml")
    return str(config) if config.is_file() else None
