"""Shared fixtures: run the real taskd program in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Result:
    status: int
    out: str
    err: str
    source: Path | None = None  # the script file, when run with via="file"

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    @property
    def errors(self) -> list[str]:
        return self.err.splitlines()


def taskd_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "taskd", *args]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment with no user config and no colours."""
    environ = dict(os.environ)
    environ["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")
    environ["XDG_STATE_HOME"] = str(tmp_path / "xdg-state")
    environ.pop("NO_COLOR", None)
    return environ


@pytest.hookimpl(wrapper=True)
def pytest_assertrepr_compare() -> Iterator[list[str] | None]:
    """Explain a failed comparison as on a desk, also on CI.

    With CI set, pytest diffs whole pretty-printed sequences even without -v; for two
    lists of 40,000 log lines that part in many places, that took longer than CI's
    time limit. Without it: the first difference and the lengths, at once.
    """
    hidden = {name: os.environ.pop(name) for name in ("CI", "BUILD_NUMBER") if name in os.environ}
    try:
        return (yield)
    finally:
        os.environ.update(hidden)


RunTaskd = Callable[..., Result]


@pytest.fixture
def run_taskd(env: dict[str, str], tmp_path: Path) -> RunTaskd:
    """Run taskd with SCRIPT on stdin (a pipe) or as a file, wait for it to exit."""

    def run(
        script: str | bytes = "",
        *args: str,
        via: str = "pipe",
        timeout: float = 60,
    ) -> Result:
        data = script.encode() if isinstance(script, str) else script
        if via == "file":
            path = tmp_path / "script.tdc"
            path.write_bytes(data)
            proc = subprocess.run(
                taskd_command(*args, str(path)), capture_output=True, env=env,
                timeout=timeout, stdin=subprocess.DEVNULL,
            )
        elif via == "stdin-file":
            path = tmp_path / "script.tdc"
            path.write_bytes(data)
            with path.open("rb") as stdin:
                proc = subprocess.run(
                    taskd_command(*args), capture_output=True, env=env,
                    timeout=timeout, stdin=stdin,
                )
        else:
            proc = subprocess.run(
                taskd_command(*args), input=data, capture_output=True, env=env,
                timeout=timeout,
            )
        return Result(
            proc.returncode,
            proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"),
            tmp_path / "script.tdc" if via == "file" else None,
        )

    return run


class Session:
    """A taskd child whose stdin we write when we choose and whose output we wait on.

    Lines are read by two threads into queues, so `expect` waits on the output itself
    (with a generous safety deadline), never on a sleep.
    """

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
        import queue
        import threading

        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=cwd,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._queues: dict[str, queue.Queue[str | None]] = {
            "out": queue.Queue(), "err": queue.Queue()
        }
        self._threads = [
            threading.Thread(target=self._read, args=(which, stream), daemon=True)
            for which, stream in (("out", self.proc.stdout), ("err", self.proc.stderr))
        ]
        for thread in self._threads:
            thread.start()

    def _read(self, which: str, stream: object) -> None:
        for raw in stream:  # type: ignore[attr-defined]
            self._queues[which].put(raw.decode("utf-8", "replace").rstrip("\n"))
        self._queues[which].put(None)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def expect(self, predicate: Callable[[str], bool] | str, which: str = "out",
               timeout: float = 30) -> str:
        """Return the first new line of WHICH that PREDICATE accepts (or that equals it)."""
        import queue
        import time

        test = predicate if callable(predicate) else (lambda line: line == predicate)
        seen = self.out if which == "out" else self.err
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queues[which].get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no matching line on std{which}; seen {seen!r}") from None
            if line is None:
                self._queues[which].put(None)
                raise AssertionError(f"std{which} ended; seen {seen!r}")
            seen.append(line)
            if test(line):
                return line

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass

    def finish(self, timeout: float = 30) -> int:
        """Wait for the exit; collect the rest of both streams."""
        import queue

        status = self.proc.wait(timeout)
        for which, seen in (("out", self.out), ("err", self.err)):
            while True:
                try:
                    line = self._queues[which].get(timeout=timeout)
                except queue.Empty:
                    break
                if line is None:
                    break
                seen.append(line)
        return status

    def kill(self) -> None:
        """Kill the child if it still runs, and release every pipe."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for thread in self._threads:
            thread.join(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except BrokenPipeError:
                    pass


@pytest.fixture
def session(env: dict[str, str]) -> Iterator[Callable[..., Session]]:
    """Start taskd children (arguments as for the command line); killed at teardown."""
    started: list[Session] = []

    def start(*args: str, environ: dict[str, str] | None = None) -> Session:
        s = Session(taskd_command(*args), environ or env)
        started.append(s)
        return s

    yield start
    for s in started:
        s.kill()


class InProcess:
    """Commands run in process against a daemon that is not serving (no loop of its
    own, no front-end): its replies and messages are kept in `output`. Attributes
    not its own are the daemon's, then the engine's."""

    def __init__(self, config: Any = None, kinds: Any = None) -> None:
        from taskd.config import Config
        from taskd.daemon import Daemon
        from taskd.output import MemoryOutput
        from taskd.reply import Reply

        self.output = MemoryOutput()
        self.daemon = Daemon(config or Config(), kinds, output=self.output)
        self.reply = Reply(self.output)

    async def execute(self, line: str) -> None:
        await self.daemon.execute(line, self.reply)

    def __getattr__(self, name: str) -> Any:
        if hasattr(self.daemon, name):
            return getattr(self.daemon, name)
        return getattr(self.daemon.engine, name)


class IdleFrontend:
    """An in-process front-end that reads nothing: the test calls daemon.execute()
    itself, and ends the daemon with request_end()."""

    def __init__(self) -> None:
        from taskd.output import MemoryOutput

        self.output = MemoryOutput()

    async def open(self, daemon: Any) -> Any:
        return self.output

    async def run(self, daemon: Any) -> None:
        import asyncio

        await asyncio.Event().wait()  # cancelled by the daemon when it ends

    def interrupt(self, daemon: Any) -> None:
        daemon.request_end()

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def live_daemon() -> AsyncIterator[Callable[..., Any]]:
    """Start a real Daemon (its serve()) on the test's loop with a MemoryOutput;
    ended, and sys.stdout/sys.stderr restored, at teardown."""
    import asyncio

    from taskd.config import Config
    from taskd.daemon import Daemon

    running: list[tuple[Any, asyncio.Task[None]]] = []

    class Live:
        """The daemon, with its (only) front-end's output as `output`."""

        def __init__(self, daemon: Daemon, frontend: IdleFrontend) -> None:
            self.daemon = daemon
            self.output = frontend.output

        def __getattr__(self, name: str) -> Any:
            return getattr(self.daemon, name)

    async def start(config: Config | None = None, kinds: Any = None) -> Live:
        daemon = Daemon(config or Config(), kinds)
        frontend = IdleFrontend()
        serving = asyncio.get_running_loop().create_task(daemon.serve(frontend))
        while daemon._end_requested is None or daemon.std.saved is None:
            if serving.done():
                serving.result()  # serve() failed early: say why
            await asyncio.sleep(0)  # until serve() has opened its output and capture
        running.append((daemon, serving))
        return Live(daemon, frontend)

    yield start
    for daemon, serving in running:
        daemon.request_end()
        await asyncio.wait_for(serving, 30)
        daemon.std.restore()


class ListFrontend(IdleFrontend):
    """An in-process front-end for Daemon.run(): executes LINES in order, each error
    going to the output as `error: MESSAGE` (the daemon's own run() drives the loop)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines

    async def run(self, daemon: Any) -> None:
        from taskd.errors import CommandError
        from taskd.reply import Reply

        for line in self.lines:
            try:
                await daemon.execute(line, Reply(self.output))
            except CommandError as exc:
                daemon.exit_status = max(daemon.exit_status, 1)
                self.output.error(f"error: {exc}\n")
            if daemon.ending:
                return


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: builds or installs things (seconds, not ms)")
