"""How fast the event log is, and what it costs the tasks it records (not part of pytest).

    PYTHONPATH=. python tests/bench/log_bench.py [--events N] [--lines N] [--runs N]

Three figures:
- the writer alone: events handed to an EventLog (as a busy loop would, yielding to
  the loop every 1000 events) until the file is closed, so everything is written;
- a plain synchronous write of the same lines: formatted by the same formatter and
  written one `write` a line to a buffered file, then closed (the floor);
- the tight loop: a real `python -m taskd` whose one task prints as fast as it can
  (`msg x N 0`), with the log off and on; the task's own runtime from `show --json`.

The functions return dicts so that another script can import and run them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from taskd.eventlog import EventLog
from taskd.events import OUTPUT, Event
from taskd.logformat import formatter

CHUNK = 1000  # events handed over between two yields to the loop


def make_events(n: int) -> list[Event]:
    """N output events of a few tasks, the bulk of any busy log."""
    return [Event(f"task-{i % 8}", OUTPUT, {"text": f"line {i} of the output"}) for i in range(n)]


async def _feed(path: Path, events: list[Event], fmt: str) -> tuple[float, int]:
    problems: list[str] = []
    log = EventLog(str(path), fmt, problems.append)
    await log.open()
    start = time.perf_counter()
    for i in range(0, len(events), CHUNK):
        for event in events[i : i + CHUNK]:
            log(event)
        await asyncio.sleep(0)
    await log.aclose()
    elapsed = time.perf_counter() - start
    if problems or log.written != len(events):
        raise RuntimeError(f"the log failed: {problems} ({log.written} written)")
    return elapsed, path.stat().st_size


def bench_writer(n: int = 1_000_000, fmt: str = "text", runs: int = 3) -> dict[str, float]:
    """Events per second through EventLog, and through a plain synchronous write
    (each the best of RUNS, so that other work on the machine hurts less)."""
    events = make_events(n)
    format_line = formatter(fmt)
    lines = [format_line(e) for e in events]
    writer, sync, raw = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.log"
        for _ in range(runs):
            path.unlink(missing_ok=True)
            elapsed, size = asyncio.run(_feed(path, events, fmt))
            writer.append(elapsed)
            path.unlink()
            format_line = formatter(fmt)
            start = time.perf_counter()
            with path.open("a", encoding="utf-8") as f:
                for event in events:
                    f.write(format_line(event))
            sync.append(time.perf_counter() - start)
            path.unlink()
            start = time.perf_counter()
            with path.open("a", encoding="utf-8") as f:
                for line in lines:
                    f.write(line)
            raw.append(time.perf_counter() - start)
    return {
        "events": n,
        "bytes": size,
        "writer_events_per_s": n / min(writer),
        "sync_format_and_write_per_s": n / min(sync),
        "sync_write_preformatted_per_s": n / min(raw),
    }


def _task_runtime(lines: int, log: Path | None, fmt: str) -> float:
    """The runtime (s) of one `msg x LINES 0` task in a real taskd."""
    args = [sys.executable, "-m", "taskd"]
    if log is not None:
        args += ["--log", str(log)] + (["--log-json"] if fmt == "json" else [])
    script = f"new msg x {lines} 0 --name m\nwait\nshow --all --json\n"
    proc = subprocess.run(args, input=script.encode(), capture_output=True, check=True)
    for line in reversed(proc.stdout.decode().splitlines()):
        if line.startswith("["):
            items = json.loads(line)
            return float(next(i for i in items if i["name"] == "m")["runtime_s"])
    raise RuntimeError("no `show --json` line in taskd's output")


def bench_tight_loop(lines: int = 200_000, runs: int = 3, fmt: str = "text") -> dict[str, float]:
    """A task printing in a tight loop: lines/s with the log off and on (best of RUNS)."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "tight.log"
        off, on = [], []
        for _ in range(runs):  # interleaved, so that a busy machine hurts both alike
            off.append(_task_runtime(lines, None, fmt))
            log.unlink(missing_ok=True)
            on.append(_task_runtime(lines, log, fmt))
    return {
        "lines": lines,
        "off_lines_per_s": lines / min(off),
        "on_lines_per_s": lines / min(on),
        "on_over_off": min(off) / min(on),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {load}")
    for fmt in ("text", "json"):
        w = bench_writer(args.events, fmt, args.runs)
        print(
            f"{fmt:4}  writer {w['writer_events_per_s']:>12,.0f} events/s   "
            f"sync format+write {w['sync_format_and_write_per_s']:>12,.0f}/s   "
            f"sync write of preformatted lines {w['sync_write_preformatted_per_s']:>12,.0f}/s"
        )
    for fmt in ("text", "json"):
        t = bench_tight_loop(args.lines, args.runs, fmt)
        print(
            f"{fmt:4}  tight loop: log off {t['off_lines_per_s']:>10,.0f} lines/s, "
            f"on {t['on_lines_per_s']:>10,.0f} lines/s: {t['on_over_off']:.2f} of full speed"
        )


if __name__ == "__main__":
    main()
