"""The event log's writer alone, against a plain synchronous write of the same lines.

Only EventLog's public behaviour is used (construct, `await open()`, call it with
events, `await aclose()`), so the figure follows whatever the writer becomes. The
clock runs from the first event handed over to the file being closed: everything
written. The baseline writes the very lines the log wrote (read back from its file),
one `write` a line to a buffered file, then closes it: the floor for the same bytes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from taskd.eventlog import EventLog
from taskd.events import OUTPUT, Event


def _loop_factory(loop: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def events(n: int) -> list[Event]:
    """N output events of a few tasks, as a busy taskd would emit them."""
    return [Event(f"w{i % 100}", OUTPUT, {"text": f"line {i} of some task's output"})
            for i in range(n)]


async def _through_log(path: Path, batch: list[Event]) -> float:
    problems: list[str] = []
    log = EventLog(str(path), "text", problems.append)
    await log.open()
    start = time.perf_counter()
    for event in batch:
        log(event)
    await log.aclose()
    elapsed = time.perf_counter() - start
    if problems:
        raise RuntimeError(f"the event log reported: {problems[0]}")
    return elapsed


def _plain_write(path: Path, lines: list[str]) -> float:
    start = time.perf_counter()
    with path.open("a", encoding="utf-8") as f:
        for line in lines:
            f.write(line)
    return time.perf_counter() - start


def writer_rates(n: int, loop: str, scratch: Path) -> tuple[float, float]:
    """Events per second: (through EventLog, plain synchronous write of its lines)."""
    logged, plain = scratch / "writer.log", scratch / "plain.log"
    logged.unlink(missing_ok=True)
    plain.unlink(missing_ok=True)
    batch = events(n)
    with asyncio.Runner(loop_factory=_loop_factory(loop)) as runner:
        ours = runner.run(_through_log(logged, batch))
    lines = logged.read_text(encoding="utf-8").splitlines(keepends=True)
    if len(lines) != n:
        raise RuntimeError(f"the event log wrote {len(lines)} lines for {n} events")
    theirs = _plain_write(plain, lines)
    return n / ours, n / theirs
