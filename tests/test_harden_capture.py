"""What tasks print (issue 14, items 6 and 14): long lines cut at MAX_LINE, never
dropped; lines from several threads never mixed; run_in_executor work keeps its task."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path

import pytest
from conftest import RunTaskd

from taskd.capture import MAX_LINE, TaskStream
from taskd.context import CURRENT
from taskd.executor import WORKER_PREFIX, TaskExecutor
from taskd.registry import TaskRecord

KINDS = '''
"""Kinds that print the hard way."""
import asyncio
import contextvars
import sys
import threading
import time


async def dots(count):
    for _ in range(int(count)):
        print(".", end="")
    print("end")


async def two_threads(lines):
    """Two threads write lines in fragments, each fragment yielding the GIL."""
    def work(tag):
        for i in range(int(lines)):
            for piece in (tag, "-", str(i), "\\n"):
                sys.stdout.write(piece)
                time.sleep(0)

    threads = [
        threading.Thread(target=contextvars.copy_context().run, args=(work, tag))
        for tag in "AB"
    ]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        await asyncio.sleep(0.01)
'''


@pytest.fixture
def kinds_config(tmp_path: Path, env: dict[str, str]) -> Path:
    (tmp_path / "hardkinds.py").write_text(KINDS)
    config = tmp_path / "config.toml"
    config.write_text('[kinds]\ndots = "hardkinds:dots"\ntwo_threads = "hardkinds:two_threads"\n')
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    return config


def task_lines(out: str, name: str) -> list[str]:
    prefix = f"[{name}] "
    return [line[len(prefix):] for line in out.split("\n") if line.startswith(prefix)]


def test_a_long_printed_line_arrives_in_max_line_pieces(
    run_taskd: RunTaskd, kinds_config: Path
) -> None:
    count = 3 * MAX_LINE + 5
    result = run_taskd(f"new dots {count}\nwait\n", "--config", str(kinds_config))
    assert result.status == 0, result.err
    lines = task_lines(result.out, "dots-1")
    assert lines == ["." * MAX_LINE] * 3 + [".....end"]


def test_lines_from_two_threads_never_mix(run_taskd: RunTaskd, kinds_config: Path) -> None:
    result = run_taskd("new two_threads 300\nwait\n", "--config", str(kinds_config))
    assert result.status == 0, result.err
    lines = task_lines(result.out, "two_threads-1")
    assert sorted(lines) == sorted(f"{tag}-{i}" for tag in "AB" for i in range(300))
    # Each thread's own lines stay in its order.
    assert [ln for ln in lines if ln[0] == "A"] == [f"A-{i}" for i in range(300)]


# -- in-process: a real loop, real threads ---------------------------------------------


class Collected:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.other: list[str] = []

    def task_line(self, record: TaskRecord, line: str) -> None:
        self.lines.append((record.name, line))


async def in_task(record: TaskRecord, coro_fn: object) -> object:
    """Run CORO_FN() as a task whose context names RECORD, as the engine does."""
    import contextvars

    context = contextvars.copy_context()
    context.run(CURRENT.set, record)
    return await asyncio.get_running_loop().create_task(coro_fn(), context=context)  # type: ignore[operator]


async def settle() -> None:
    """Let callbacks the threads queued with call_soon_threadsafe run."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_executor_jobs_print_as_their_task(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    seen = Collected()
    stream = TaskStream(loop, seen.task_line, seen.other.append)
    monkeypatch.setattr(sys, "stdout", stream)
    executor = TaskExecutor(max_workers=2)
    record = TaskRecord("t-1", "test", ())
    names: list[str] = []

    def work() -> str:
        names.append(threading.current_thread().name)
        print("from the thread")
        print("left unterminated", end="")
        return "result"

    async def body() -> object:
        return await loop.run_in_executor(executor, work)

    try:
        assert await in_task(record, body) == "result"
        await settle()
    finally:
        executor.shutdown(wait=True)
    assert seen.lines == [("t-1", "from the thread"), ("t-1", "left unterminated")]
    assert seen.other == []
    assert names[0].startswith(WORKER_PREFIX)


async def test_executor_counts_busy_workers() -> None:
    loop = asyncio.get_running_loop()
    executor = TaskExecutor(max_workers=2)
    started = threading.Barrier(3, timeout=30)
    release = threading.Event()

    def job() -> None:
        started.wait()
        release.wait(30)

    try:
        assert (executor.busy, executor.max_workers) == (0, 2)
        futures = [loop.run_in_executor(executor, job) for _ in range(2)]
        await loop.run_in_executor(None, started.wait)  # both jobs are in their threads
        assert executor.busy == 2
        third = loop.run_in_executor(executor, release.wait, 30)
        assert executor.waiting == 1  # queued behind two busy workers
        release.set()
        await asyncio.gather(*futures, third)
        assert executor.busy == 0
    finally:
        release.set()
        executor.shutdown(wait=True)


async def test_threads_lines_stay_whole_and_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    seen = Collected()
    stream = TaskStream(loop, seen.task_line, seen.other.append)
    monkeypatch.setattr(sys, "stdout", stream)
    record = TaskRecord("t-1", "test", ())
    executor = TaskExecutor(max_workers=2)
    gate = threading.Barrier(2, timeout=30)

    def work(tag: str) -> None:
        gate.wait()
        for i in range(200):
            for piece in (tag, "-", str(i), "\n"):
                sys.stdout.write(piece)
                os.sched_yield()

    async def body() -> object:
        return await asyncio.gather(
            loop.run_in_executor(executor, work, "A"), loop.run_in_executor(executor, work, "B")
        )

    try:
        # The loop thread has a line of its own going; no thread's line joins it.
        CURRENT.set(record)
        sys.stdout.write("loop's own ")
        await in_task(record, body)
        sys.stdout.write("line\n")
        await settle()
    finally:
        CURRENT.set(None)
        executor.shutdown(wait=True)
    lines = [line for _, line in seen.lines]
    assert sorted(lines) == sorted(
        [f"{tag}-{i}" for tag in "AB" for i in range(200)] + ["loop's own line"]
    )


async def test_a_thread_that_ends_mid_line_is_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    seen = Collected()
    stream = TaskStream(loop, seen.task_line, seen.other.append)
    monkeypatch.setattr(sys, "stdout", stream)
    record = TaskRecord("t-1", "test", ())

    def work() -> None:
        CURRENT.set(record)
        sys.stdout.write("no newline")

    thread = threading.Thread(target=work)
    thread.start()
    await loop.run_in_executor(None, thread.join, 30)
    await settle()
    assert seen.lines == [("t-1", "no newline")]


def test_one_character_prints_keep_parts_not_a_growing_string() -> None:
    """print(".", end="") appended to a string was quadratic: parts are joined once."""
    loop = asyncio.new_event_loop()
    try:
        seen = Collected()
        stream = TaskStream(loop, seen.task_line, seen.other.append)
        record = TaskRecord("t-1", "test", ())
        token = CURRENT.set(record)
        try:
            for _ in range(1000):
                stream.write(".")
        finally:
            CURRENT.reset(token)
        assert record.pending == ["."] * 1000 and record.pending_size == 1000
        stream.flush_record(record)
        assert seen.lines == [("t-1", "." * 1000)]
    finally:
        loop.close()
