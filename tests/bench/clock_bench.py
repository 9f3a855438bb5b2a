"""How fast the virtual clock runs time (not part of pytest).

    PYTHONPATH=. python tests/bench/clock_bench.py [--tasks N] [--sleeps N] [--runs N]

TASKS tasks each `await asyncio.sleep(1)` SLEEPS times on the virtual-clock loop
(issue 13: 1,000 x 3,600, 3.6 M wake-ups, an hour of virtual time). Printed: real
seconds, virtual seconds per real second, and microseconds a wake-up; beside them the
same wake-ups on asyncio's stock loop with timers already due when it looks
(`sleep(1e-7)`), which is what asyncio itself costs for a timer wake-up, without any
waiting: the floor any clock on this loop design can reach.

`clock_rate()` returns a dict so that tests/bench/run.py can import and use it.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable

from taskd.clock import new_virtual_loop


async def _sleepers(tasks: int, sleeps: int, delay: float) -> float:
    async def worker() -> None:
        for _ in range(sleeps):
            await asyncio.sleep(delay)

    await asyncio.gather(*(worker() for _ in range(tasks)))
    return asyncio.get_running_loop().time()


def _timed(factory: Callable[[], asyncio.AbstractEventLoop], tasks: int, sleeps: int,
           delay: float) -> tuple[float, float]:
    """(real seconds, loop time at the end) of one run on a fresh loop."""
    start = time.perf_counter()
    with asyncio.Runner(loop_factory=factory) as runner:
        loop_time = runner.run(_sleepers(tasks, sleeps, delay))
    return time.perf_counter() - start, loop_time


def clock_rate(tasks: int = 1000, sleeps: int = 3600, runs: int = 1) -> dict[str, float]:
    """Virtual seconds per real second for TASKS x SLEEPS sleeps of 1 s (best of RUNS),
    and the stock loop's cost of as many timer wake-ups that need no waiting."""
    wakeups = tasks * sleeps
    best = min(_timed(new_virtual_loop, tasks, sleeps, 1.0) for _ in range(runs))
    real, virtual = best
    if virtual != float(sleeps):
        raise RuntimeError(f"the virtual clock ended at {virtual}, not {sleeps}.0")
    floor = min(_timed(asyncio.SelectorEventLoop, tasks, sleeps, 1e-7)[0] for _ in range(runs))
    return {
        "wakeups": wakeups,
        "real_s": real,
        "virtual_s": virtual,
        "virtual_per_real": virtual / real,
        "us_per_wakeup": real / wakeups * 1e6,
        "stock_real_s": floor,
        "stock_us_per_wakeup": floor / wakeups * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--sleeps", type=int, default=3600)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    r = clock_rate(args.tasks, args.sleeps, args.runs)
    print(
        f"{args.tasks} tasks x {args.sleeps} x sleep(1): {r['wakeups'] / 1e6:.2f} M wake-ups, "
        f"{r['virtual_s']:.0f} s of virtual time in {r['real_s']:.2f} s real: "
        f"{r['virtual_per_real']:.0f} virtual s per real s, {r['us_per_wakeup']:.2f} us a wake-up"
    )
    print(
        f"stock asyncio loop, same wake-ups with timers already due: {r['stock_real_s']:.2f} s, "
        f"{r['stock_us_per_wakeup']:.2f} us a wake-up"
    )


if __name__ == "__main__":
    main()
