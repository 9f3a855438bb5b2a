"""What the command line runs for time: `taskd trace`, `taskd timeline`, `--expect`.

Each function returns an exit status and says any problem in one line on stderr:
0 done; 1 a transcript that differs (the diff is printed); 2 nothing could be done
(a log or transcript that cannot be read, a file that cannot be written, a bad
width). taskd.cli calls them; `python -m taskd.timecli` runs them on their own.

--expect runs taskd again as a child with the same arguments (minus --expect), its
stdout captured into memory and its stdin and stderr left as they are: a child, not
the same process, because a daemon may leave abandoned threads behind and exit with
os._exit, which would take the comparison with it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Sequence

from .expect import TranscriptError, compare_transcript
from .timeline import MIN_WIDTH, render_log
from .trace import LogError, export_trace

DEFAULT_WIDTH = 100
MAX_WIDTH = 1000


def _error(message: str) -> int:
    print(f"taskd: error: {message}", file=sys.stderr)
    return 2


def trace_main(log: str, out: str) -> int:
    """`taskd trace LOG -o OUT`: LOG as a Chrome trace (open it in ui.perfetto.dev)."""
    try:
        count = export_trace(log, out)
    except LogError as exc:
        return _error(str(exc))
    print(f"wrote {count} trace events to {out} (open it in ui.perfetto.dev: Open trace file)")
    return 0


def timeline_main(log: str, width: int | None = None) -> int:
    """`taskd timeline LOG [--width N]`: the chart of LOG's last session; the
    terminal's width by default (100 columns when stdout is not a terminal)."""
    if width is None:
        width = shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns if sys.stdout.isatty() \
            else DEFAULT_WIDTH
    if not MIN_WIDTH <= width <= MAX_WIDTH:
        return _error(f"--width must be from {MIN_WIDTH} to {MAX_WIDTH}, got {width}")
    try:
        lines = render_log(log, width)
    except LogError as exc:
        return _error(str(exc))
    print("\n".join(lines))
    return 0


def without_expect(argv: Sequence[str]) -> tuple[list[str], str | None]:
    """ARGV without `--expect TRANSCRIPT` (or `--expect=TRANSCRIPT`), and TRANSCRIPT."""
    rest: list[str] = []
    transcript = None
    items = iter(argv)
    for arg in items:
        if arg == "--":
            rest += [arg, *items]
            break
        if arg == "--expect":
            transcript = next(items, None)
        elif arg.startswith("--expect="):
            transcript = arg.partition("=")[2]
        else:
            rest.append(arg)
    return rest, transcript


def run_expect(argv: Sequence[str], transcript: str) -> int:
    """Run `taskd ARGV` with its stdout captured and compare it with TRANSCRIPT: on a
    difference print a unified diff and return 1; else return the run's own status."""
    try:
        with open(transcript, "rb"):
            pass
    except OSError as exc:
        return _error(f"{transcript}: cannot read the transcript: {exc.strerror or exc}")
    try:
        child = subprocess.run(
            [sys.executable, "-m", "taskd", *argv], stdout=subprocess.PIPE, check=False
        )
    except KeyboardInterrupt:
        return 130
    try:
        diff = compare_transcript(transcript, child.stdout.decode("utf-8", "replace"))
    except TranscriptError as exc:
        return _error(str(exc))
    status = child.returncode if child.returncode >= 0 else 128 - child.returncode
    if status == 2 and not child.stdout:
        return 2  # a usage or configuration error, said by the run itself: no diff
    if diff is None:
        return status
    sys.stdout.write(diff)
    sys.stdout.flush()
    print(f"taskd: the output differs from {transcript}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None, prog: str = "python -m taskd.timecli") -> int:
    """`trace LOG -o OUT | timeline LOG [--width N] | expect TRANSCRIPT TASKD-ARGS...`;
    taskd.cli may hand `taskd trace ...` and `taskd timeline ...` here (PROG "taskd")."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    trace = sub.add_parser("trace", help="a log as a Chrome trace (Perfetto)")
    trace.add_argument("log", metavar="LOGFILE")
    trace.add_argument("-o", "--output", metavar="OUT", required=True)
    timeline = sub.add_parser("timeline", help="a log's timeline in the terminal")
    timeline.add_argument("log", metavar="LOGFILE")
    timeline.add_argument("--width", type=int, metavar="N")
    expect = sub.add_parser("expect", help="run taskd and compare its output")
    expect.add_argument("transcript", metavar="TRANSCRIPT")
    expect.add_argument("args", nargs=argparse.REMAINDER, metavar="TASKD-ARGS")
    args = parser.parse_args(argv)
    if args.what == "trace":
        return trace_main(args.log, args.output)
    if args.what == "timeline":
        return timeline_main(args.log, args.width)
    return run_expect(args.args, args.transcript)


if __name__ == "__main__":
    raise SystemExit(main())
