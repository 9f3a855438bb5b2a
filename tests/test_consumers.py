"""Issue 9's promises: several front-ends on one daemon, each with its own replies;
a stalled consumer bounded; a task's real stack reachable."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

from conftest import IdleFrontend
from reliability import DEADLINE, wait_until, write_config

from taskd.config import Config
from taskd.daemon import Daemon
from taskd.reply import Reply
from taskd.stacks import walk

GRACE = 0.5
BOUND = GRACE + 1.0
SLACK = 4.0  # a loaded 2-core machine; the tasks here would otherwise run for ever


@contextlib.asynccontextmanager
async def _serving(*fronts: IdleFrontend) -> AsyncIterator[Daemon]:
    """A real Daemon serving FRONTS on this loop; ended, and sys.stdout and sys.stderr
    given back, at the end of the block."""
    daemon = Daemon(Config(cancel_grace=GRACE))
    serving = asyncio.get_running_loop().create_task(daemon.serve(*fronts))
    while daemon.std.saved is None:
        await asyncio.sleep(0)
    try:
        yield daemon
    finally:
        daemon.request_end()
        await asyncio.wait_for(serving, DEADLINE)
        daemon.std.restore()


async def test_two_front_ends_get_their_own_replies_and_both_see_events() -> None:
    first, second = IdleFrontend(), IdleFrontend()
    async with _serving(first, second) as daemon:
        await daemon.execute("new tick 0.001 2 --name t", Reply(first.output))
        await daemon.execute("show", Reply(second.output))
        await daemon.execute("wait t", Reply(first.output))
    one, two = first.output.lines, second.output.lines
    assert "started t" in one and "started t" not in two
    assert any(line.startswith("NAME ") for line in two)
    assert not any(line.startswith("NAME ") for line in one)
    for lines in (one, two):
        assert "[t] tick 1" in lines and "[t] tick 2" in lines
        assert any(line.startswith("t done after ") for line in lines)


async def test_a_running_tasks_stack_names_the_kinds_own_function(live_daemon: object) -> None:
    daemon = await live_daemon()  # type: ignore[operator]
    await daemon.execute("new tick 5 --name t")
    await asyncio.sleep(0)  # one loop turn: the task starts and awaits its sleep
    task = daemon.registry.live["t"].task
    frames, awaited = walk(task.get_coro())
    functions = [f.function for f in frames]
    assert "tick" in functions, functions
    assert functions[-1] == "sleep" and frames[-1].file.endswith("asyncio/tasks.py")
    assert awaited is not None  # the sleep's future (its await iterator)
    # asyncio's own view stops at the first non-coroutine: ours goes further.
    assert len(frames) > len(task.get_stack())


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def log_lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def test_a_stdout_nobody_reads_is_bounded(env: dict[str, str], tmp_path: Path) -> None:
    """A flood to a stdout pipe nobody reads: stderr still says so at once, the log
    (another consumer) keeps up, memory stays bounded, SIGTERM ends it in time."""
    log = tmp_path / "events.log"
    config = write_config(tmp_path, grace=GRACE)
    proc = subprocess.Popen(
        [sys.executable, "-m", "taskd", "--config", str(config), "--log", str(log)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    err: list[bytes] = []
    reader = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"new msg xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx 1000000000 0 --name flood\n")
        proc.stdin.flush()
        wait_until(lambda: any(b"standard output is not being read" in e for e in err), "warned")
        wait_until(lambda: log_lines(log) > 200_000, "the log kept writing")
        before = rss_kb(proc.pid)
        wait_until(lambda: log_lines(log) > 1_500_000, "the log kept writing")
        after = rss_kb(proc.pid)
        assert after - before < 64 * 1024, (before, after)  # kB: not growing with the flood
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(BOUND + SLACK)
        assert time.monotonic() - began < BOUND + SLACK
        assert status == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()
    reader.join(DEADLINE)
    assert proc.stderr is not None
    proc.stderr.close()
    text = b"".join(err).decode()
    assert "Traceback" not in text
    assert "lines of standard output dropped" in text
    assert log.read_text().rstrip("\n").rsplit("\n", 1)[-1].split()[2] == "daemon-end"


def test_a_stderr_nobody_reads_loses_the_messages_not_the_work(
    env: dict[str, str], tmp_path: Path
) -> None:
    script = b"no-such-command with some words to fill the pipe\n" * 50_000
    script += b"new msg alive 3 0.01 --name a\nwait a\n"
    proc = subprocess.Popen(
        [sys.executable, "-m", "taskd", "--config", str(write_config(tmp_path, grace=GRACE))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        feeder = threading.Thread(target=lambda: (proc.stdin.write(script), proc.stdin.close()))  # type: ignore[union-attr]
        feeder.start()
        out = proc.stdout.read()  # stderr is never read
        status = proc.wait(DEADLINE)
        feeder.join(DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()
    lines = out.decode().splitlines()
    assert lines.count("[a] alive") == 3, lines[-5:]
    assert status == 1


def test_one_reply_larger_than_the_bound_arrives_whole(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A `show --json` of 20,000 tasks is one line of 5 MB, more than a stream's bound
    (4 MiB): with a reader that takes everything it must arrive whole, and the time
    spent spawning (the writer idle meanwhile) must not count as a stalled reader."""
    n = 20_000
    script = tmp_path / "many.tdc"
    script.write_text("".join(f"new idle --name w{i}\n" for i in range(n)) + "show --json\n")
    out = tmp_path / "out.txt"
    with out.open("wb") as f:
        done = subprocess.run(
            [sys.executable, "-m", "taskd", str(script)], stdout=f, stderr=subprocess.PIPE,
            env=env, timeout=DEADLINE,
        )
    assert done.returncode == 0, done.stderr
    assert b"not being read" not in done.stderr and b"dropped" not in done.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == n + 1 and len(json.loads(lines[-1])) == n


class _StdoutFrontend(IdleFrontend):
    """An idle front-end whose output is a real stdout and stderr, on FD."""

    def __init__(self, fd: int) -> None:
        from taskd.frontends.sinks import StdOutput

        self.output = StdOutput(lambda *_: None, lambda _: None, out_fd=fd, err_fd=fd)  # type: ignore[assignment]


async def test_no_task_line_is_formatted_for_a_stdout_that_is_dev_null(tmp_path: Path) -> None:
    """A detached daemon's stdout is /dev/null: no presenter makes its tasks' lines
    for nobody, so with no other consumer no output event is made at all; a stdout
    that is a file gets them."""
    from taskd.events import OUTPUT

    with open("/dev/null", "wb") as null, open(tmp_path / "out", "wb") as real:
        for target, shown in ((null, False), (real, True)):
            front = _StdoutFrontend(target.fileno())
            async with _serving(front) as daemon:
                assert daemon.engine.bus.wants(OUTPUT) is shown
                await daemon.execute("new msg hi 2 0 --name t", Reply(front.output))
                await daemon.execute("wait t", Reply(front.output))
    assert (tmp_path / "out").read_text().splitlines()[1:3] == ["[t] hi", "[t] hi"]


async def test_a_sink_on_dev_null_takes_nothing_to_its_thread(tmp_path: Path) -> None:
    """A served daemon's stdio is /dev/null: its task output costs no hand-over to a
    writer thread (it cost the loop a GIL hand-off every iteration)."""
    from taskd.frontends.sinks import StreamSink

    said: list[str] = []
    with open("/dev/null", "wb") as null, open(tmp_path / "out", "wb") as real:
        sinks = [
            StreamSink(f.fileno(), name, lambda *a: said.append("broken"), said.append)
            for f, name in ((null, "null"), (real, "file"))
        ]
        for sink in sinks:
            sink.put("a line\n" * 1000)
            sink.put("one more\n")
        assert sinks[0]._queued == 0 and not sinks[0]._pending
        for sink in sinks:
            await sink.drain(DEADLINE)
            sink.close()
    assert (tmp_path / "out").read_text() == "a line\n" * 1000 + "one more\n"
    assert not said
