"""The floor: a bare asyncio program doing what a benchmarked taskd run does, and no more.

It speaks just enough of taskd's script language to be driven exactly like taskd:
`new idle --name N` and `new tick S --name N` create a named task and print
`started N`, `show` prints a table, `show --json` prints the tasks as one JSON line,
`end` (or end of input) cancels every task and awaits them all. For groups:
`group G --parallel N` makes a Semaphore(N), `new timer S --name N --group G` runs
sleep(S) holding it, `wait` awaits every task. Input is read the
way a careful asyncio program would: a pipe through a StreamReader, a regular file
in 64 KiB chunks through the default executor. Output is print() to a buffered
stdout, flushed once per chunk of input, as taskd flushes once per loop iteration.

Run as `python baseline.py [--loop uvloop]`; the benchmark reads its memory from /proc.
Whatever it lacks (checks, errors, events, logs) is what taskd's ratio pays for.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

CHUNK = 1 << 16


async def idle() -> None:
    """The same body as taskd's `idle` kind, so both pay the same wake-ups."""
    while True:
        await asyncio.sleep(1)


async def tick(interval: float, name: str, last: dict[str, str]) -> None:
    n = 0
    while True:
        await asyncio.sleep(interval)
        n += 1
        last[name] = line = f"tick {n}"
        print(f"[{name}] {line}")


async def timer(delay: float, semaphore: asyncio.Semaphore | None) -> None:
    if semaphore is None:
        await asyncio.sleep(delay)
        return
    async with semaphore:
        await asyncio.sleep(delay)


async def stdin_chunks() -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    if stat.S_ISREG(os.fstat(0).st_mode):
        while chunk := await loop.run_in_executor(None, os.read, 0, CHUNK):
            yield chunk
        return
    reader = asyncio.StreamReader(limit=CHUNK)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", closefd=False)
    )
    while chunk := await reader.read(CHUNK):
        yield chunk


def show_json(tasks: dict[str, tuple[asyncio.Task[None], str, float, float]]) -> str:
    now = time.monotonic()
    items = [
        {
            "name": name,
            "kind": kind,
            "args": [],
            "state": "running",
            "started_at": datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds"),
            "runtime_s": round(now - mono, 3),
            "last_output": "",
        }
        for name, (_, kind, wall, mono) in tasks.items()
    ]
    return json.dumps(items, ensure_ascii=False)


def show_table(
    tasks: dict[str, tuple[asyncio.Task[None], str, float, float]], last: dict[str, str]
) -> str:
    now = time.monotonic()
    rows = ["NAME  KIND  STATE  AGE  DETAIL"]
    rows.extend(
        f"{name}  {kind}  running  {now - mono:.2f}s  {last.get(name, '')}"
        for name, (_, kind, _w, mono) in tasks.items()
    )
    return "\n".join(rows)


async def main() -> None:
    tasks: dict[str, tuple[asyncio.Task[None], str, float, float]] = {}
    last: dict[str, str] = {}
    rest = b""
    ending = False
    semaphores: dict[str, asyncio.Semaphore] = {}
    async for chunk in stdin_chunks():
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for raw in lines:
            words = raw.decode().split()
            if not words:
                continue
            if words[0] == "new":
                name = words[words.index("--name") + 1]
                if words[1] == "tick":
                    coro: Any = tick(float(words[2]), name, last)
                elif words[1] == "timer":
                    group = words[words.index("--group") + 1] if "--group" in words else ""
                    coro = timer(float(words[2]), semaphores.get(group))
                else:
                    coro = idle()
                task = asyncio.create_task(coro, name=name)
                tasks[name] = (task, words[1], time.time(), time.monotonic())
                print(f"started {name}")
            elif words[0] == "show":
                print(show_json(tasks) if "--json" in words else show_table(tasks, last))
            elif words[0] == "group":
                semaphores[words[1]] = asyncio.Semaphore(int(words[3]))
            elif words[0] == "wait":
                sys.stdout.flush()
                await asyncio.gather(*(task for task, *_ in tasks.values()))
            elif words[0] == "end":
                ending = True
                break
        sys.stdout.flush()
        if ending:
            break
    running = [task for task, *_ in tasks.values()]
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    sys.stdout.flush()


def runner(loop: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


if __name__ == "__main__":
    kind = sys.argv[sys.argv.index("--loop") + 1] if "--loop" in sys.argv else "asyncio"
    with asyncio.Runner(loop_factory=runner(kind)) as run:
        run.run(main())
