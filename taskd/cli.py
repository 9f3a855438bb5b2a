"""The command line: arguments, configuration, and which front-ends to start.

A thin layer over Daemon.run(): everything here happens before the loop exists, and
a mistake here (bad option, bad config, missing file) exits 2 with nothing started.

The one-shot clients (`send`, `status`, `stop`, `console`) take a light path: they
import neither the engine nor asyncio nor prompt-toolkit, so `taskd send show` costs
little more than the Python interpreter's own start.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from . import __version__

TYPE_CHECKING = False  # typing is not imported at run time: the light clients' start
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from .config import Config
    from .daemon import Frontend
    from .kinds import Kind

LIGHT = ("send", "status", "stop", "console")
SUBCOMMANDS = ("serve", "attach", "trace", "timeline", *LIGHT)
SWITCH_INTERVAL = 0.001  # seconds a thread holds the GIL while another waits
EPILOG = (
    "Subcommands: serve, attach, send, status, stop, console, trace, timeline "
    "(`taskd SUBCOMMAND --help`). "
    "With no FILE and a terminal on stdin and stdout, taskd is an interactive shell; "
    "otherwise it reads commands from FILE or stdin. Exit status: 0, 1 when a command "
    "failed or output was lost, 2 for usage and configuration errors, 3 when no daemon "
    "runs at the socket (clients), 128+N after signal N."
)


def build_parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="taskd",
        description="A task-manager shell for asyncio: spawn, watch and cancel named tasks.",
        epilog=EPILOG,
    )
    parser.add_argument(
        "file", nargs="?", metavar="FILE", help="read commands from FILE ('-': stdin)"
    )
    _common(parser)
    parser.add_argument("--strict", action="store_true", help="stop at the first failed command")
    parser.add_argument("--prompt", metavar="TEXT", help="the interactive prompt")
    parser.add_argument("--no-color", action="store_true", help="no colours in the shell")
    parser.add_argument(
        "--serve", action="store_true", help="also listen on the control socket (attach, send)"
    )
    parser.add_argument(
        "--example", metavar="NAME", help="run a shipped example of the asyncio chapter"
    )
    parser.add_argument(
        "--expect",
        metavar="TRANSCRIPT",
        help="run FILE and compare its standard output with TRANSCRIPT (a diff, exit 1)",
    )
    parser.add_argument("--version", action="version", version=f"taskd {__version__}")
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="configuration file to use")
    parser.add_argument("--log", metavar="FILE", help="log task events to FILE from the start")
    parser.add_argument("--log-json", action="store_true", help="log as JSON lines")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), help="the event loop to use")
    parser.add_argument("--socket", metavar="PATH", help="the control socket")
    parser.add_argument(
        "--state-file", metavar="PATH", help="keep the tasks' state in PATH ('off': none)"
    )
    parser.add_argument(
        "--restore", action="store_true", help="start again the tasks live at the last stop"
    )
    parser.add_argument("--lang", metavar="LANG", help="the language of messages: en or ja")
    parser.add_argument(
        "--clock",
        choices=("real", "virtual"),
        help="the loop's clock (virtual: time jumps to the next timer; output repeats exactly)",
    )
    parser.add_argument(
        "--timestamps", action="store_true", help="start task lines with the seconds since start"
    )


def build_serve_parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="taskd serve",
        description="Run the daemon with no terminal, listening on its control socket.",
        epilog="SIGTERM and SIGINT end it like `end`; SIGHUP reopens the log file.",
    )
    _common(parser)
    parser.add_argument(
        "--detach", action="store_true", help="run in the background; return once it listens"
    )
    return parser


def _configure(
    args: argparse.Namespace, serving: bool = False
) -> tuple[Config, dict[str, Kind]]:
    import dataclasses
    import warnings

    from . import i18n
    from .config import load_config, with_state_options
    from .errors import ConfigError
    from .kinds import load_kinds

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = load_config(args.config)
    for warning in caught:
        print(f"taskd: warning: {warning.message}", file=sys.stderr)
    changes: dict[str, object] = {}
    if getattr(args, "prompt", None) is not None:
        changes["prompt"] = args.prompt
    if args.log is not None:
        changes["log_file"] = args.log
    if args.log_json:
        changes["log_format"] = "json"
    if getattr(args, "no_color", False):
        changes["color"] = "never"
    if args.loop is not None:
        changes["loop"] = args.loop
    if args.socket is not None:
        changes["socket"] = args.socket
    if args.clock is not None:
        changes["clock"] = args.clock
    if args.timestamps:
        changes["timestamps"] = True
    if getattr(args, "serve", False):
        changes["serve"] = True
    config = dataclasses.replace(config, **changes)  # type: ignore[arg-type]
    config = with_state_options(
        config, args.state_file, True if args.restore else None, serving=serving
    )
    try:
        i18n.setup(args.lang or config.lang or None)
    except i18n.UnknownLanguage as exc:
        raise ConfigError("--lang" if args.lang else "lang", str(exc)) from None
    if config.loop == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            raise ConfigError(
                "loop", "uvloop is not installed (pip install 'taskd[uvloop]')"
            ) from None
    kinds = load_kinds(config.kinds, config.sources[-1])
    return config, kinds


def socket_path(explicit: str | None, config_value: str) -> str:
    from .sockpath import resolve

    return resolve(explicit, config_value, os.environ)


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
    What was imported so far is frozen out of every pass, and the collector, off
    since start-up began (_quiet_startup), is on again."""
    import gc

    gc.freeze()
    gc.set_threshold(20_000, 20, 10)
    gc.enable()


def _quiet_startup() -> None:
    """No collection while a daemon starts: its imports and its configuration make
    objects that live as long as the process, which the collector's passes only
    traversed (README, Performance). _tune_gc turns it on again before the daemon
    runs anything; a start-up that fails, or `--expect` (whose run is a child
    process), ends the process instead."""
    import gc

    gc.disable()


def _tune_threads() -> None:
    """Hand the GIL over every millisecond instead of every five: the loop runs
    Python without pause under load, and each writer thread (stdout, stderr, the
    log) needs the GIL before and after every write, which a busy loop gives up
    only when asked at that interval. At five, a `show` under 10,000 ticking
    tasks waited up to 100 ms for its writer (tests/bench, responsive)."""
    sys.setswitchinterval(SWITCH_INTERVAL)


def _run(config: Config, kinds: dict[str, Kind], frontends: list[Frontend], **daemon: Any) -> int:
    import gc

    from .daemon import Daemon

    instance = Daemon(config, kinds, **daemon)
    instance.collect_after_run = False  # the process ends next: nothing to collect
    _tune_gc()
    _tune_threads()
    status = instance.run(*frontends)
    # The interpreter's last collection at exit would scan every object still
    # referenced: 1.5 s with 100,000 finished tasks (measured), past the bounded end.
    gc.freeze()
    if instance.abandoned_threads or instance.abandoned_tasks:
        # The interpreter would join the sleeping threads (and finalize the stuck
        # tasks) at exit: leave now, everything has been flushed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Ctrl-C before the loop's own handler is installed (start-up: imports, config)
    ends taskd quietly with 130, like a signal during the run; nothing has started."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        from .climini import interrupted

        interrupted()


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in LIGHT:
        from .climini import light_main

        return light_main(argv[0], argv[1:])
    if argv and argv[0] == "serve":
        return serve_main(argv[1:])
    if argv and argv[0] in ("trace", "timeline"):
        from . import timecli

        return timecli.main(argv, prog="taskd")
    if argv and argv[0] == "attach":
        from .frontends.attach import attach_main

        return attach_main(argv[1:])
    return shell_or_script_main(argv)


def _config_or_exit(
    args: argparse.Namespace, serving: bool = False
) -> tuple[Config, dict[str, Kind]] | int:
    from .errors import ConfigError

    try:
        return _configure(args, serving)
    except ConfigError as exc:
        print(f"taskd: error: {exc}", file=sys.stderr)
        return 2


def shell_or_script_main(argv: list[str]) -> int:
    _quiet_startup()
    args = build_parser().parse_args(argv)
    if args.expect is not None:
        from . import timecli

        return timecli.run_expect(timecli.without_expect(argv)[0], args.expect)
    if args.example is not None:
        from .examples import UnknownExample, example_config, example_path

        if args.file is not None:
            print("taskd: error: --example runs its own script; give no FILE", file=sys.stderr)
            return 2
        try:
            args.file = example_path(args.example)
        except UnknownExample as exc:
            print(f"taskd: error: {exc}", file=sys.stderr)
            return 2
        if args.config is None:
            args.config = example_config(args.example)
    configured = _config_or_exit(args)
    if isinstance(configured, int):
        return configured
    config, kinds = configured
    if args.file not in (None, "-"):
        import stat

        try:
            # Checked without opening: opening a named FIFO would take its writer's data.
            if stat.S_ISDIR(os.stat(args.file).st_mode):
                raise IsADirectoryError(21, "Is a directory")
            if not os.access(args.file, os.R_OK):
                raise PermissionError(13, "Permission denied")
        except OSError as exc:
            print(f"taskd: error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
            return 2
    frontends = [_frontend(args, config)]
    if config.serve:
        from .frontends.served import ServedFrontend

        path = socket_path(args.socket, config.socket)
        frontends.append(ServedFrontend(path, own_output=False, owns_terminal=False))
    return _run(config, kinds, frontends)


def serve_main(argv: list[str]) -> int:
    _quiet_startup()
    args = build_serve_parser().parse_args(argv)
    configured = _config_or_exit(args, serving=True)
    if isinstance(configured, int):
        return configured
    config, kinds = configured
    path = socket_path(args.socket, config.socket)
    if args.detach:
        from .detach import detach

        return detach(lambda ready: _serve(config, kinds, path, ready), path)
    return _serve(config, kinds, path, None)


def _serve(config: Config, kinds: dict[str, Kind], path: str, ready: Any) -> int:
    from .frontends.served import ServedFrontend

    frontend = ServedFrontend(path, own_output=True, ready=ready)
    return _run(config, kinds, [frontend], hangup_reopens_log=True)
