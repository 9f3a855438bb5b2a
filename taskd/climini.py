"""The light clients' command line: `taskd send|status|stop|console [--socket PATH]`.

Parsed by hand on purpose: this path must not import argparse's friends, the
engine, asyncio or prompt-toolkit (a one-shot `send` should cost about what the
interpreter's start does).
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from . import client
from .sockpath import SocketError, resolve

USAGE = {
    "send": "taskd send [--socket PATH] [--strict] COMMAND...|-|FILE",
    "status": "taskd status [--socket PATH]",
    "stop": "taskd stop [--socket PATH]",
    "console": "taskd console [--socket PATH]",
}


def _config_socket(config: str | None) -> str:
    """The `socket` key of the user's config file (the defaults leave it empty)."""
    if config is None:
        base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(
            os.path.expanduser("~"), ".config"
        )
        config = os.path.join(base, "taskd", "config.toml")
        if not os.path.isfile(config):
            return ""
    import tomllib

    try:
        with open(config, "rb") as f:
            value = tomllib.load(f).get("socket", "")
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SocketError(f"{config}: cannot read it: {exc}") from None
    return value if isinstance(value, str) else ""


def main(argv: list[str] | None = None) -> int:
    """`python -m taskd send ...` (__main__.py) comes straight here, past cli.py.
    Ctrl-C ends quietly with 130, as cli.main has it."""
    args = sys.argv[1:] if argv is None else argv
    try:
        return light_main(args[0], args[1:])
    except KeyboardInterrupt:
        interrupted()


def interrupted() -> NoReturn:
    """Ctrl-C outside the loop: what was printed goes out, then exit 130, quietly."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(130)


def light_main(name: str, argv: list[str]) -> int:
    socket_arg: str | None = None
    config: str | None = None
    strict = False
    words: list[str] = []
    rest = iter(argv)
    for word in rest:
        if words:  # after the first word of the command, everything is the command's
            words.append(word)
        elif word in ("-h", "--help"):
            print(f"usage: {USAGE[name]}")
            return 0
        elif word in ("--socket", "--config"):
            value = next(rest, None)
            if value is None:
                print(f"taskd: error: {word} needs a value (usage: {USAGE[name]})", file=sys.stderr)
                return 2
            if word == "--socket":
                socket_arg = value
            else:
                config = value
        elif word.startswith(("--socket=", "--config=")):
            key, _, value = word.partition("=")
            if key == "--socket":
                socket_arg = value
            else:
                config = value
        elif word == "--strict" and name == "send":
            strict = True
        elif word.startswith("--") and word != "--":
            print(f"taskd: error: unknown option {word!r} (usage: {USAGE[name]})", file=sys.stderr)
            return 2
        elif name == "send":
            if word != "--":
                words.append(word)
        else:
            usage = USAGE[name]
            print(f"taskd: error: {name} takes no arguments (usage: {usage})", file=sys.stderr)
            return 2
    try:
        path = resolve(socket_arg, _config_socket(config), os.environ)
    except SocketError as exc:
        print(f"taskd: error: {exc}", file=sys.stderr)
        return 2
    if name == "send":
        return client.send(path, words, strict)
    if name == "status":
        return client.status(path)
    if name == "stop":
        return client.stop(path)
    return client.console(path)
