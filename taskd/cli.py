"""The command line: arguments, configuration, and which front-end to start.

A thin layer over Daemon.run(): everything here happens before the loop exists, and
a mistake here (bad option, bad config, missing file) exits 2 with nothing started.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import sys
import warnings
from collections.abc import Sequence

from . import __version__
from .config import Config, load_config
from .daemon import Daemon, Frontend
from .errors import ConfigError
from .kinds import Kind, load_kinds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taskd",
        description="A task-manager shell for asyncio: spawn, watch and cancel named tasks.",
        epilog="With no FILE and a terminal on stdin and stdout, taskd is an interactive "
        "shell; otherwise it reads commands from FILE or stdin. Exit status: 0, 1 when a "
        "command failed or output was lost, 2 for usage and configuration errors, "
        "128+N after signal N.",
    )
    parser.add_argument(
        "file", nargs="?", metavar="FILE", help="read commands from FILE ('-': stdin)"
    )
    parser.add_argument("--config", metavar="PATH", help="configuration file to use")
    parser.add_argument("--strict", action="store_true", help="stop at the first failed command")
    parser.add_argument("--log", metavar="FILE", help="log task events to FILE from the start")
    parser.add_argument("--log-json", action="store_true", help="log as JSON lines")
    parser.add_argument("--prompt", metavar="TEXT", help="the interactive prompt")
    parser.add_argument("--no-color", action="store_true", help="no colours in the shell")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), help="the event loop to use")
    parser.add_argument("--version", action="version", version=f"taskd {__version__}")
    return parser


def _configure(args: argparse.Namespace) -> tuple[Config, dict[str, Kind]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = load_config(args.config)
    for warning in caught:
        print(f"taskd: warning: {warning.message}", file=sys.stderr)
    changes: dict[str, object] = {}
    if args.prompt is not None:
        changes["prompt"] = args.prompt
    if args.log is not None:
        changes["log_file"] = args.log
    if args.log_json:
        changes["log_format"] = "json"
    if args.no_color:
        changes["color"] = "never"
    if args.loop is not None:
        changes["loop"] = args.loop
    config = dataclasses.replace(config, **changes)  # type: ignore[arg-type]
    if config.loop == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            raise ConfigError(
                "loop", "uvloop is not installed (pip install 'taskd[uvloop]')"
            ) from None
    kinds = load_kinds(config.kinds, config.sources[-1])
    return config, kinds


def _frontend(args: argparse.Namespace, config: Config) -> Frontend:
    # A prompt needs a terminal to draw on: with stdout redirected, the lines typed
    # are read as a script and the output goes where it was sent.
    terminal = all(s is not None and s.isatty() for s in (sys.stdin, sys.stdout))
    if args.file is None and terminal:
        try:
            from .frontends.shell import ShellFrontend
        except ImportError:
            pass
        else:
            return ShellFrontend(config)
    from .frontends.script import ScriptFrontend

    return ScriptFrontend(args.file or "-", strict=args.strict)


def _tune_gc() -> None:
    """Collect cycles less often: with tens of thousands of live tasks the collector's
    passes were the largest single cost of spawning and ending them (tests/bench: 50k
    spawns 0.98 s -> 0.47 s; spawning and ending 100k: 27 middle and 2 full passes,
    1.1 s, at 10000/10/10, and 10 middle ones, 0.4 s, at these). taskd's own objects
    are freed by reference counting, and full passes still come (after 10 middle
    ones, or a quarter more old objects).
    What was imported so far is frozen out of every pass."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 10)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config, kinds = _configure(args)
    except ConfigError as exc:
        print(f"taskd: error: {exc}", file=sys.stderr)
        return 2
    if args.file not in (None, "-"):
        try:
            with open(args.file, "rb"):
                pass
        except OSError as exc:
            print(f"taskd: error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
            return 2
    daemon = Daemon(config, kinds)
    frontend = _frontend(args, config)
    _tune_gc()
    status = daemon.run(frontend)
    # The interpreter's last collection at exit would scan every object still
    # referenced: 1.5 s with 100,000 finished tasks (measured), past the bounded end.
    gc.freeze()
    if daemon.abandoned_threads or daemon.abandoned_tasks:
        # The interpreter would join the sleeping threads (and finalize the stuck
        # tasks) at exit: leave now, everything has been flushed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status
