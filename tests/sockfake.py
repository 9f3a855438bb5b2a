"""A stand-in daemon for the control socket's tests, until the engine serves it.

It implements exactly what taskd.frontends.sockserver asks of a daemon (execute with
a Reply, bus, request_end, report), with a few commands made for the tests. Run as a
program (`python tests/sockfake.py PATH [uvloop]`) it is a real serving process: it prints
"ready" once listening and exits once `end` was asked and the server has closed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

from taskd.errors import CommandError
from taskd.events import OUTPUT, EventBus
from taskd.frontends.sockserver import SocketServer
from taskd.sockpath import SocketError


class FakeDaemon:
    """Commands: echo WORDS, lines N, fail MESSAGE, wait, emit N, status --json, end,
    crash, sleepy (awaits once, then echoes), waiting (how many waits run)."""

    def __init__(self) -> None:
        self.bus = EventBus()
        self.reports: list[str] = []
        self.executed: list[str] = []
        self.waiting = 0
        self.waits_cancelled = 0
        self.wait_started = asyncio.Event()
        self.ended = asyncio.Event()
        self.started = time.time()

    async def execute(self, line: str, reply: Any) -> None:
        self.executed.append(line)
        word, _, rest = line.strip().partition(" ")
        if word in ("", "#"):
            return
        if word == "echo":
            reply.out(rest)
        elif word == "lines":
            for i in range(int(rest)):
                reply.out(f"line {i}")
        elif word == "fail":
            raise CommandError(rest or "failed")
        elif word == "wait":
            self.waiting += 1
            self.wait_started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.waits_cancelled += 1
                raise
            finally:
                self.waiting -= 1
        elif word == "waiting":
            reply.out(str(self.waiting))
        elif word == "sleepy":
            await asyncio.sleep(0)
            reply.out(rest)
        elif word == "emit":
            for i in range(int(rest)):
                self.bus.emit("t1", OUTPUT, {"text": f"event {i}"})
        elif word == "status" and rest == "--json":
            reply.out(
                json.dumps(
                    {
                        "pid": os.getpid(),
                        "uptime_s": round(time.time() - self.started, 3),
                        "tasks": {"running": 2, "done": 1, "failed": 0, "cancelled": 0},
                        "log": None,
                    }
                )
            )
        elif word == "end":
            self.request_end()
        elif word == "crash":
            raise RuntimeError("a bug")
        else:
            raise CommandError(f"unknown command {word!r}")

    def request_end(self) -> None:
        self.ended.set()

    def report(self, message: str) -> None:
        self.reports.append(message)
        print(f"taskd: {message}", file=sys.stderr, flush=True)


async def serve(path: str) -> int:
    daemon = FakeDaemon()
    server = SocketServer(daemon)
    try:
        await server.start(path)
    except SocketError as exc:
        print(f"taskd: error: {exc}", file=sys.stderr, flush=True)
        return 2
    print("ready", flush=True)
    await daemon.ended.wait()
    await server.aclose("taskd ended")
    return 0


if __name__ == "__main__":
    if sys.argv[2:] == ["uvloop"]:
        import uvloop

        uvloop.install()
    sys.exit(asyncio.run(serve(sys.argv[1])))
