"""taskd beside the floor: each scenario timed against a bare-asyncio baseline.

    python tests/bench/run.py [--quick] [--loop asyncio|uvloop] [--only SCENARIO]
                              [--repeat N] [--taskd DIR]

Every scenario runs several times, alternating taskd and its baseline so that both
see the same moment of a shared machine; the table shows the medians and their ratio
(taskd / baseline, in time or bytes: lower is better) beside the target. Absolute
figures on a busy 2-core machine are noise; ratios measured side by side are not.
Without --loop, each scenario runs on asyncio and, when it is installed, on uvloop.
Not a test: pytest does not collect it, and nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import compileall
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import daemon_scenarios
from drive import Child, memory_kb

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BASELINE = HERE / "baseline.py"

FULL = {
    "spawn": 50_000, "live": 100_000, "show": 50_000, "shows": 7, "log_events": 1_000_000,
    "log_lines": 100_000, "startups": 11, "ticks": 10_000, "samples": 60, "repeat": 5,
    "grouped": 10_000, "restore": 100_000, "vtasks": 1_000,
}
QUICK = {
    "spawn": 10_000, "live": 20_000, "show": 10_000, "shows": 5, "log_events": 200_000,
    "log_lines": 20_000, "startups": 5, "ticks": 10_000, "samples": 20, "repeat": 3,
    "grouped": 10_000, "restore": 20_000, "vtasks": 100,
}


@dataclass
class Row:
    scenario: str
    loop: str
    taskd: float
    baseline: float
    unit: str  # "s", "ms", "B/task", "ev/s"
    target: str
    met: bool
    ratio: float

    def cells(self) -> list[str]:
        return [
            self.scenario, self.loop, show(self.taskd, self.unit), show(self.baseline, self.unit),
            f"{self.ratio:.2f}", self.target, "yes" if self.met else "NO",
        ]


def show(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "ms":
        return f"{value * 1000:.1f} ms"
    if unit == "ev/s":
        return f"{value / 1e6:.2f} M/s"
    return f"{value:,.0f} {unit}"


class Bench:
    """Sizes, the loop under test, and a scratch directory shared by the runs."""

    def __init__(
        self, sizes: dict[str, int], loop: str, scratch: Path, repeat: int, source: Path
    ) -> None:
        self.n = sizes
        self.loop = loop
        self.scratch = scratch
        self.repeat = repeat
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join(
            [str(source), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        self.env["XDG_CONFIG_HOME"] = str(scratch / "xdg")  # no user config
        self.env.pop("NO_COLOR", None)
        # The baselines print() to a buffered stdout, as baseline.py says: inherited,
        # PYTHONUNBUFFERED=1 made each print two write() calls (the grouped scenario's
        # 10,000 lines: about 5 ms more for the baseline, taskd's ratio that much better).
        self.env.pop("PYTHONUNBUFFERED", None)

    # -- commands ------------------------------------------------------------------

    def taskd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "taskd", "--loop", self.loop, *args]

    def taskd_bare(self, *args: str) -> list[str]:
        """A subcommand (serve) takes the loop option after its name."""
        if args and args[0] == "serve":
            return [sys.executable, "-m", "taskd", "serve", "--loop", self.loop, *args[1:]]
        return self.taskd(*args)

    def baseline(self) -> list[str]:
        return [sys.executable, str(BASELINE), "--loop", self.loop]

    def script(self, name: str, lines: list[str]) -> Path:
        path = self.scratch / name
        if not path.exists():
            path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return path

    def spawn_lines(self, n: int, kind: str = "idle") -> list[str]:
        prefix = "w" if kind == "idle" else "t"
        return [f"new {kind} --name {prefix}{i}" for i in range(n)]

    def alternate(
        self, ours: Callable[[], float], theirs: Callable[[], float], times: int = 0
    ) -> tuple[float, float]:
        """Medians of TIMES runs of each, alternating which goes first."""
        a: list[float] = []
        b: list[float] = []
        for i in range(times or self.repeat):
            if i % 2:
                b.append(theirs())
                a.append(ours())
            else:
                a.append(ours())
                b.append(theirs())
        return statistics.median(a), statistics.median(b)

    def timed(self, argv: list[str], stdin: Path, expect_lines: int = -1, **kw: object) -> float:
        out = self.scratch / "out.txt"
        with stdin.open("rb") as fin, out.open("wb") as fout:
            start = time.perf_counter()
            proc = subprocess.run(
                argv, stdin=fin, stdout=fout, stderr=subprocess.PIPE, env=self.env,
                cwd=self.scratch, check=False, **kw,  # type: ignore[call-overload]
            )
            elapsed = time.perf_counter() - start
        check(argv, proc.returncode, proc.stderr)
        if expect_lines >= 0:
            got = out.read_bytes().count(b"\n")
            if got < expect_lines:
                raise RuntimeError(f"{argv[1:3]} wrote {got} lines, expected {expect_lines}")
        return elapsed

    # -- scenarios -----------------------------------------------------------------

    def spawn_file(self) -> list[Row]:
        n = self.n["spawn"]
        script = self.script(f"spawn{n}.tdc", [*self.spawn_lines(n), "end"])
        ours, theirs = self.alternate(
            lambda: self.timed(self.taskd(), script, n),
            lambda: self.timed(self.baseline(), script, n),
        )
        return [self.row(f"spawn {n // 1000}k, files", ours, theirs, "s", 1.5)]

    def _through_pipes(self, argv: list[str], script: Path) -> float:
        start = time.perf_counter()
        cat = subprocess.Popen(["cat", str(script)], stdout=subprocess.PIPE)
        middle = subprocess.Popen(
            argv, stdin=cat.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=self.env, cwd=self.scratch,
        )
        assert cat.stdout and middle.stdout
        cat.stdout.close()
        sink = subprocess.Popen(["cat"], stdin=middle.stdout, stdout=subprocess.DEVNULL)
        middle.stdout.close()
        _, err = middle.communicate()
        sink.wait()
        cat.wait()
        elapsed = time.perf_counter() - start
        check(argv, middle.returncode, err)
        return elapsed

    def spawn_pipe(self) -> list[Row]:
        n = self.n["spawn"]
        script = self.script(f"spawn{n}.tdc", [*self.spawn_lines(n), "end"])
        ours, theirs = self.alternate(
            lambda: self._through_pipes(self.taskd(), script),
            lambda: self._through_pipes(self.baseline(), script),
        )
        return [self.row(f"spawn {n // 1000}k, pipes", ours, theirs, "s", 1.5)]

    def _live(self, argv: list[str], results: list[tuple[float, float]]) -> float:
        """N live idle tasks: peak RSS per task, then the time from `end` to exit."""
        n = self.n["live"]
        child = Child(argv, self.env, str(self.scratch))
        child.write_now(b"new idle --name ping0\n")
        child.read_until(b"started ping0\n")
        before = memory_kb(child.pid)["VmRSS"]
        child.send("".join(line + "\n" for line in self.spawn_lines(n)).encode())
        child.read_until(f"started w{n - 1}\n".encode())
        child.write_now(b"new idle --name ping\n")  # every task has run its first step
        child.read_until(b"started ping\n")
        per_task = (memory_kb(child.pid)["VmHWM"] - before) * 1024 / n
        start = time.perf_counter()
        child.write_now(b"end\n")
        status = child.close_and_wait()
        elapsed = time.perf_counter() - start
        check(argv, status, child.stderr.encode())
        results.append((per_task, elapsed))
        return elapsed

    def live(self) -> list[Row]:
        """`end` with N live tasks, and the memory they take (one set of runs for both)."""
        n = self.n["live"]
        ours: list[tuple[float, float]] = []
        theirs: list[tuple[float, float]] = []
        self.alternate(lambda: self._live(self.taskd(), ours),
                       lambda: self._live(self.baseline(), theirs))
        mem = statistics.median(m for m, _ in ours), statistics.median(m for m, _ in theirs)
        end = statistics.median(e for _, e in ours), statistics.median(e for _, e in theirs)
        return [
            self.row(f"end with {n // 1000}k live", *end, "s", 1.5),
            self.row(f"peak RSS/task at {n // 1000}k", *mem, "B/task", 1.5),
        ]

    def _show_json(self, argv: list[str]) -> float:
        n = self.n["show"]
        child = Child(argv, self.env, str(self.scratch))
        child.send("".join(line + "\n" for line in self.spawn_lines(n)).encode())
        child.read_until(f"started w{n - 1}\n".encode())
        child.write_now(b"new idle --name ping\n")
        child.read_until(b"started ping\n")
        times = []
        for _ in range(self.n["shows"]):
            start = time.perf_counter()
            child.write_now(b"show --json\n")
            child.read_until(b"]\n")
            times.append(time.perf_counter() - start)
        child.write_now(b"end\n")
        check(argv, child.close_and_wait(), child.stderr.encode())
        return statistics.median(times)

    def show_json(self) -> list[Row]:
        n = self.n["show"]
        ours, theirs = self.alternate(
            lambda: self._show_json(self.taskd()), lambda: self._show_json(self.baseline())
        )
        return [self.row(f"show --json, {n // 1000}k live", ours, theirs, "ms", 3)]

    def log_writer(self) -> list[Row]:
        from log_scenarios import writer_rates

        n = self.n["log_events"]
        rates: list[tuple[float, float]] = [
            writer_rates(n, self.loop, self.scratch) for _ in range(self.repeat)
        ]
        ours = statistics.median(r for r, _ in rates)
        theirs = statistics.median(b for _, b in rates)
        ratio = theirs / ours
        return [
            Row("log writer alone", self.loop, ours, theirs, "ev/s",
                ">=1M ev/s, <=3", ours >= 1e6 and ratio <= 3, ratio)
        ]

    def log_end_to_end(self) -> list[Row]:
        n = self.n["log_lines"]
        script = self.script(f"msg{n}.tdc", [f"new msg x {n} 0", "wait", "end"])
        log = self.scratch / "e2e.log"

        def logged() -> float:
            log.unlink(missing_ok=True)
            return self.timed(self.taskd("--log", str(log)), script, n)

        ours, theirs = self.alternate(logged, lambda: self.timed(self.taskd(), script, n))
        return [self.row(f"print {n // 1000}k, log on/off", ours, theirs, "s", 2)]

    def startup(self) -> list[Row]:
        modules = "asyncio, prompt_toolkit, aioconsole, aiofiles"
        if self.loop == "uvloop":
            modules += ", uvloop"
        end = self.scratch / "end.tdc"
        end.write_text("end\n", encoding="utf-8")

        def piped(argv: list[str]) -> float:
            start = time.perf_counter()
            proc = subprocess.run(argv, input=b"end\n", capture_output=True, env=self.env,
                                  cwd=self.scratch, check=False)
            elapsed = time.perf_counter() - start
            check(argv, proc.returncode, proc.stderr)
            return elapsed

        ours, theirs = self.alternate(
            lambda: piped(self.taskd()),
            lambda: piped([sys.executable, "-c", f"import {modules}"]),
            self.n["startups"],
        )
        return [self.row("startup, echo end", ours, theirs, "ms", 1.3)]

    def _responsive(self, argv: list[str]) -> list[float]:
        n = self.n["ticks"]
        child = Child(argv, self.env, str(self.scratch))
        child.send("".join(line + "\n" for line in self.spawn_lines(n, "tick 0.1")).encode())
        child.read_until(f"started t{n - 1}\n".encode())
        child.pump(1.0)
        rng = random.Random(6)
        times = []
        for _ in range(self.n["samples"]):
            start = time.perf_counter()
            child.write_now(b"show\n")
            child.read_lines_after(b"NAME ", n + 1)
            times.append(time.perf_counter() - start)
            child.pump(rng.uniform(0.02, 0.1))
        child.write_now(b"end\n")
        check(argv, child.close_and_wait(), child.stderr.encode())
        return times

    def responsive(self) -> list[Row]:
        n = self.n["ticks"]
        ours = self._responsive(self.taskd())
        theirs = self._responsive(self.baseline())
        p99 = percentile(ours, 99), percentile(theirs, 99)
        return [
            Row(f"show p99, {n // 1000}k tick 0.1", self.loop, *p99, "ms", "p99 < 100 ms",
                p99[0] < 0.1, p99[0] / p99[1]),
            Row(f"show p50, {n // 1000}k tick 0.1", self.loop, percentile(ours, 50),
                percentile(theirs, 50), "ms", "(info)", True,
                percentile(ours, 50) / percentile(theirs, 50)),
        ]

    # -- issue 11: the state file and groups -------------------------------------

    def config(self, name: str, text: str) -> Path:
        path = self.scratch / name
        path.write_text(text, encoding="utf-8")
        return path

    def state_spawn(self) -> list[Row]:
        """N `new idle` with a state file (written while they start, and at the end)
        against the same without one."""
        n = self.n["spawn"]
        script = self.script(f"spawn{n}.tdc", [*self.spawn_lines(n), "end"])
        state = self.scratch / "spawn-state.json"
        config = self.config("state.toml", f'state_file = "{state}"\n')

        def with_state() -> float:
            state.unlink(missing_ok=True)  # each run starts with no file to read
            return self.timed(self.taskd("--config", str(config)), script, n)

        ours, theirs = self.alternate(with_state, lambda: self.timed(self.taskd(), script, n))
        return [self.row(f"spawn {n // 1000}k, state file on/off", ours, theirs, "s", 1.3)]

    def grouped(self) -> list[Row]:
        """N `timer 0` in a group of 100 at a time, all waited for, against bare
        asyncio doing the same through a Semaphore (baseline.py)."""
        n = self.n["grouped"]
        lines = [f"new timer 0 --name t{i} --group g" for i in range(n)]
        script = self.script(f"grouped{n}.tdc", ["group g --parallel 100", *lines, "wait", "end"])
        ours, theirs = self.alternate(
            lambda: self.timed(self.taskd(), script, n),
            lambda: self.timed(self.baseline(), script, n),
        )
        return [self.row(f"{n // 1000}k timer 0, parallel 100", ours, theirs, "s", 1.5)]

    def restore(self) -> list[Row]:
        """Starting N live tasks again from the state file (then `end`) against
        spawning them from a script (then `end`)."""
        n = self.n["restore"]
        spawn = self.script(f"spawn{n}.tdc", [*self.spawn_lines(n), "end"])
        state = self.scratch / "restore-state.json"
        keep = self.config("keep.toml", f'state_file = "{state}"\n')
        again = self.config("restore.toml", f'state_file = "{state}"\nrestore = true\n')
        state.unlink(missing_ok=True)
        self.timed(self.taskd("--config", str(keep)), spawn, n)  # the file: N live tasks
        end = self.script("end.tdc", ["end"])
        ours, theirs = self.alternate(
            lambda: self.timed(self.taskd("--config", str(again)), end),
            lambda: self.timed(self.taskd(), spawn, n),
        )
        return [self.row(f"restore {n // 1000}k live vs spawn", ours, theirs, "s", 2)]

    def virtual_clock(self) -> list[Row]:
        """N tasks of `tick 1 3600` on the virtual clock (an hour of virtual time, N x
        3,600 wake-ups and lines of output): virtual seconds per real second, through
        taskd and for bare sleepers on the same loop (tests/bench/clock_bench.py)."""
        if self.loop != "asyncio":
            return []  # the virtual clock wraps asyncio's own loop only
        from clock_bench import clock_rate

        tasks, sleeps = self.n["vtasks"], 3600
        config = self.scratch / "virtual.toml"
        config.write_text('clock = "virtual"\n', encoding="utf-8")
        script = self.script(f"vtick{tasks}.tdc", [f"new tick 1 {sleeps}"] * tasks + ["wait"])
        times = max(1, self.repeat // 2)  # long runs: fewer of them
        ours, bare = self.alternate(
            lambda: self.timed(self.taskd("--config", str(config)), script, tasks * sleeps),
            lambda: clock_rate(tasks, sleeps)["real_s"],
            times,
        )
        return [Row(f"virtual clock, {tasks} x tick 1 {sleeps}", self.loop, sleeps / ours,
                    sleeps / bare, "virtual s/s", "(info)", True, ours / bare)]

    def row(self, name: str, ours: float, theirs: float, unit: str, limit: float) -> Row:
        ratio = ours / theirs
        return Row(name, self.loop, ours, theirs, unit, f"<= {limit:g}", ratio <= limit, ratio)


SCENARIOS: dict[str, Callable[[Bench], list[Row]]] = {
    "spawn-file": Bench.spawn_file,
    "spawn-pipe": Bench.spawn_pipe,
    "live": Bench.live,  # end-to-exit time and peak memory, from the same runs
    "show-json": Bench.show_json,
    "log-writer": Bench.log_writer,
    "log-e2e": Bench.log_end_to_end,
    "startup": Bench.startup,
    "responsive": Bench.responsive,
    "state-spawn": Bench.state_spawn,
    "grouped": Bench.grouped,
    "restore": Bench.restore,
    "virtual-clock": Bench.virtual_clock,  # virtual seconds per real second
    "send-script": daemon_scenarios.send_script,
    "send-one": daemon_scenarios.send_one,
    "attached": daemon_scenarios.attached,
}


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def check(argv: list[str], status: int, err: bytes) -> None:
    if status != 0:
        tail = err.decode("utf-8", "replace")[-800:]
        raise RuntimeError(f"{' '.join(argv[1:4])} exited {status}: {tail}")


def loops(choice: str | None) -> list[str]:
    if choice:
        return [choice]
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return ["asyncio"]
    return ["asyncio", "uvloop"]


def table(rows: list[Row]) -> str:
    head = ["scenario", "loop", "taskd", "baseline", "ratio", "target", "met"]
    cells = [head, *(r.cells() for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
             for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer runs")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), help="only this loop")
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS),
                        help="only this scenario (repeatable)")
    parser.add_argument("--repeat", type=int, help="runs of each side (default 5, quick 3)")
    parser.add_argument("--taskd", metavar="DIR", type=Path, default=REPO,
                        help="the source tree whose taskd runs (default: this one), "
                        "to compare a change with what came before")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    repeat = args.repeat or sizes["repeat"]
    rows: list[Row] = []
    sys.path.insert(0, str(args.taskd.resolve()))  # for the in-process scenarios
    # An installed taskd has its bytecode (pip compiles it); a checkout run with
    # PYTHONDONTWRITEBYTECODE=1 would compile every module at every start instead,
    # about 9 ms of a one-shot `send`: measure what users run.
    compileall.compile_dir(str(args.taskd.resolve() / "taskd"), quiet=1)
    with tempfile.TemporaryDirectory(prefix="taskd-bench-") as scratch:
        for name, scenario in SCENARIOS.items():
            if args.only and name not in args.only:
                continue
            for loop in loops(args.loop):
                started = time.perf_counter()
                print(f"{name} on {loop}...", file=sys.stderr, flush=True)
                bench = Bench(sizes, loop, Path(scratch), repeat, args.taskd.resolve())
                try:
                    rows.extend(scenario(bench))
                except RuntimeError as exc:
                    print(f"  {name} on {loop} failed: {exc}", file=sys.stderr)
                    continue
                print(f"  {time.perf_counter() - started:.0f}s", file=sys.stderr, flush=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
