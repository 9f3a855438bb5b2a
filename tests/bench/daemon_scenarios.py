"""The daemon's scenarios for run.py (issue 10): a script sent to a served daemon,
a one-shot `send`, and a task printing while clients are attached.

Each starts a real `taskd serve --detach` on a private socket (untimed), times what
the issue names, and stops it (untimed). The baselines are what the issue compares
with: script mode on the same script, a bare standard-library client, the same
printing task with no client attached.

Every process runs in the scratch folder, as run.py's own do: `python -m taskd` puts
the current folder first on sys.path, so started from a checkout they would run that
checkout's taskd, whatever `--taskd` named.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# A client made of the standard library only: connect, send one line, read the reply.
BARE_CLIENT = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rb")
f.readline()
s.sendall(b'{"id": 1, "line": "show"}\n')
for raw in f:
    if json.loads(raw).get("done"):
        break
"""

# An attached client: subscribes, reads every event until the task's `done`; or,
# with "stall", subscribes and never reads again.
LISTENER = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b'{"id": 1, "subscribe": true}\n')
seen = b""
while b'"done":true' not in seen:
    seen += s.recv(65536)
print("ready", flush=True)
if sys.argv[2] == "stall":
    sys.stdin.read()
    sys.exit(0)
# Read everything, cheaply (bytes only: the client's own CPU is not what is measured),
# until the printing task's `done` event.
marker, tail = b'"task":"m","name":"done"', b""
while True:
    chunk = s.recv(1 << 20)
    if not chunk or marker in tail + chunk:
        break
    tail = chunk[-64:]
"""


class Served:
    """A `taskd serve --detach` for one measurement."""

    def __init__(self, bench: Any) -> None:
        self.bench = bench
        self.folder = tempfile.mkdtemp(prefix="tdb")  # a socket path is <= 107 bytes
        self.socket = os.path.join(self.folder, "taskd", "taskd.sock")

    def __enter__(self) -> Served:
        started = subprocess.run(
            self.bench.taskd_bare("serve", "--detach", "--socket", self.socket,
                                  "--state-file", "off"),
            capture_output=True, env=self.bench.env, cwd=self.bench.scratch, check=False,
        )
        if started.returncode != 0:
            raise RuntimeError(f"serve: {started.stderr.decode()[-400:]}")
        return self

    def send(self, *words: str, stdin: Path | None = None) -> float:
        argv = [sys.executable, "-m", "taskd", "send", "--socket", self.socket, *words]
        start = time.perf_counter()
        with open(stdin or os.devnull, "rb") as fin:
            done = subprocess.run(argv, stdin=fin, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, env=self.bench.env,
                                  cwd=self.bench.scratch, check=False)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"send {words}: {done.stderr.decode()[-400:]}")
        return elapsed

    def __exit__(self, *exc: object) -> None:
        subprocess.run([sys.executable, "-m", "taskd", "stop", "--socket", self.socket],
                       capture_output=True, env=self.bench.env, cwd=self.bench.scratch,
                       check=False)


def send_script(bench: Any) -> list[Any]:
    """`taskd send - < N.tdc` against `taskd N.tdc`, the same N `new idle` lines."""
    n = bench.n["spawn"]
    script = bench.script(f"spawn{n}-noend.tdc", bench.spawn_lines(n))

    def sent() -> float:
        with Served(bench) as served:
            return served.send("-", stdin=script)

    ours, theirs = bench.alternate(sent, lambda: bench.timed(bench.taskd_bare(), script, n))
    return [bench.row(f"send - < {n // 1000}k.tdc vs script", ours, theirs, "s", 1.5)]


def send_one(bench: Any) -> list[Any]:
    """One-shot `taskd send show` against a bare Python client doing the same."""
    with Served(bench) as served:
        times = bench.n["startups"]

        def bare() -> float:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", BARE_CLIENT, served.socket], check=True,
                           env=bench.env, cwd=bench.scratch)
            return time.perf_counter() - start

        ours, theirs = bench.alternate(lambda: served.send("show"), bare, times)
    return [bench.row("send show vs bare client", ours, theirs, "s", 1.5)]


def _printing(served: Served, bench: Any, clients: int, mode: str) -> float:
    """The daemon's time for `new msg x N 0` to end, with CLIENTS attached."""
    n = bench.n["log_lines"]
    listeners = [
        subprocess.Popen([sys.executable, "-c", LISTENER, served.socket, mode],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=bench.env,
                         cwd=bench.scratch)
        for _ in range(clients)
    ]
    for listener in listeners:
        assert listener.stdout is not None
        listener.stdout.readline()  # "ready": subscribed
    start = time.perf_counter()
    served.send("new", "msg", "x", str(n), "0", "--name", "m")
    served.send("wait", "m")
    elapsed = time.perf_counter() - start
    for listener in listeners:
        if listener.stdin is not None:
            listener.stdin.close()
        listener.wait()
        if listener.stdout is not None:
            listener.stdout.close()
    return elapsed


def attached(bench: Any) -> list[Any]:
    """A task printing N lines with 10 clients taking every line, and with one client
    that never reads, each against the same with none attached."""
    rows = []
    for clients, mode, limit, label in ((10, "read", 1.5, "10 clients"),
                                        (1, "stall", 1.1, "1 stalled client")):

        def with_clients(clients: int = clients, mode: str = mode) -> float:
            with Served(bench) as served:
                return _printing(served, bench, clients, mode)

        def alone() -> float:
            with Served(bench) as served:
                return _printing(served, bench, 0, "read")

        ours, theirs = bench.alternate(with_clients, alone)
        n = bench.n["log_lines"]
        rows.append(bench.row(f"print {n // 1000}k, {label}", ours, theirs, "s", limit))
    return rows
