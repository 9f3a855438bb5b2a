"""The virtual clock: timers jump, outside work (threads, children, holds) is waited for."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from taskd import clock

T = TypeVar("T")


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=clock.new_virtual_loop) as runner:
        return runner.run(main)


def test_time_starts_at_zero_and_stands_still_while_code_runs() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        first = loop.time()
        sum(range(200_000))  # real work takes real time, but no virtual time
        return first, loop.time()

    assert run_virtual(main()) == (0.0, 0.0)


def test_an_hour_of_sleeps_for_many_tasks_ends_at_exactly_one_hour() -> None:
    """100 tasks x 3,600 sleeps of 1 s: the clock reads 3600.0 at the end, reached in
    3,600 jumps (the 1,000-task figure is measured by tests/bench/clock_bench.py)."""
    counts = [0] * 100

    async def worker(i: int) -> None:
        for _ in range(3600):
            await asyncio.sleep(1)
            counts[i] += 1

    async def main() -> tuple[float, int]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, clock.VirtualClockLoop)
        await asyncio.gather(*(worker(i) for i in range(100)))
        return loop.time(), loop.jumps

    assert run_virtual(main()) == (3600.0, 3600)
    assert counts == [3600] * 100


def _record_scenario() -> list[tuple[float, str]]:
    async def ticker(name: str, every: float, times: int, out: list[tuple[float, str]]) -> None:
        loop = asyncio.get_running_loop()
        for n in range(times):
            await asyncio.sleep(every)
            out.append((loop.time(), f"{name} {n}"))

    async def main() -> list[tuple[float, str]]:
        loop = asyncio.get_running_loop()
        out: list[tuple[float, str]] = []
        loop.call_later(2.5, lambda: out.append((loop.time(), "call_later 2.5")))
        async with asyncio.TaskGroup() as group:
            group.create_task(ticker("a", 0.5, 8, out))
            group.create_task(ticker("b", 0.75, 5, out))
            group.create_task(ticker("c", 3, 1, out))
        try:
            await asyncio.wait_for(asyncio.Event().wait(), 30)
        except TimeoutError:
            out.append((loop.time(), "timeout"))
        return out

    return run_virtual(main())


def test_two_runs_record_identical_times_and_events() -> None:
    first, second = _record_scenario(), _record_scenario()
    assert first == second
    times = [t for t, _ in first]
    assert times == sorted(times)
    assert (2.5, "call_later 2.5") in first and (3.0, "c 0") in first
    assert first[-1] == (34.0, "timeout")  # 4.0 (the last ticker, a) + 30
    assert [e for _, e in first if e.startswith("a")] == [f"a {n}" for n in range(8)]


class _LateResults(concurrent.futures.Executor):
    """Runs each call on a thread of its own, and hands its result over RESULT_LAG
    seconds after it returned: what a loaded machine does between the two."""

    RESULT_LAG = 0.3

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            future.set_running_or_notify_cancel()
            result = fn(*args, **kwargs)
            time.sleep(self.RESULT_LAG)  # the fault injected, not a wait for the test
            future.set_result(result)

        threading.Thread(target=run, daemon=True).start()
        return future


def test_the_clock_is_held_until_the_threads_result_reaches_the_loop() -> None:
    """Released when the thread returned, the clock jumped 100 s before the awaiting
    task got its result (CI under load: 'sleeper' came first)."""

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        order: list[str] = []

        async def in_thread() -> None:
            await loop.run_in_executor(_LateResults(), time.sleep, 0.01)
            order.append("thread")

        async def sleeper() -> None:
            await asyncio.sleep(100)
            order.append("sleeper")

        await asyncio.gather(in_thread(), sleeper())
        return order

    assert run_virtual(main()) == ["thread", "sleeper"]


async def _sleep_100(order: list[tuple[str, float]]) -> None:
    """asyncio.sleep(100), by hand, to know its deadline (loop.time() read a statement
    before the sleep has moved on if a thread or child holds the clock meanwhile); then
    ("sleeper", how far past that deadline the clock stood when it woke)."""
    loop = asyncio.get_running_loop()
    woken = loop.create_future()
    timer = loop.call_later(100, woken.set_result, None)
    await woken
    order.append(("sleeper", loop.time() - timer.when()))


def test_a_thread_holds_the_clock_until_it_returns() -> None:
    """The executor's result comes before a 100 s sleep ends, at a time near the
    thread's real duration, not after a jump to 100."""

    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        order: list[tuple[str, float]] = []

        async def in_thread() -> None:
            await loop.run_in_executor(None, time.sleep, 0.2)
            order.append(("thread", loop.time()))
            await asyncio.to_thread(time.sleep, 0.1)
            order.append(("to_thread", loop.time()))

        await asyncio.gather(in_thread(), _sleep_100(order))
        assert isinstance(loop, clock.VirtualClockLoop) and loop.holds == 0
        return order

    order = run_virtual(main())
    assert [name for name, _ in order] == ["thread", "to_thread", "sleeper"]
    assert 0.2 <= order[0][1] < order[1][1] < 100
    assert order[1][1] >= 0.3
    assert order[2][1] == 0.0  # then the clock jumped to its deadline, exactly


def test_a_subprocess_holds_the_clock_until_it_exits() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        order: list[tuple[str, float]] = []

        async def child() -> None:
            proc = await asyncio.create_subprocess_exec("sleep", "0.2")
            assert await proc.wait() == 0
            order.append(("child", loop.time()))
            proc = await asyncio.create_subprocess_shell(
                "sleep 0.1; echo out", stdout=asyncio.subprocess.PIPE
            )
            out, _ = await proc.communicate()
            order.append((out.decode().strip(), loop.time()))

        await asyncio.gather(child(), _sleep_100(order))
        assert isinstance(loop, clock.VirtualClockLoop) and loop.holds == 0
        return order

    order = run_virtual(main())
    assert [name for name, _ in order] == ["child", "out", "sleeper"]
    assert 0.2 <= order[0][1] < order[1][1] < 100
    assert order[2][1] == 0.0  # then the clock jumped to its deadline, exactly


def test_a_failed_spawn_releases_its_hold() -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, clock.VirtualClockLoop)
        with pytest.raises(FileNotFoundError):
            await asyncio.create_subprocess_exec("/nonexistent/taskd-no-such-program")
        return loop.holds

    assert run_virtual(main()) == 0


def test_hold_waits_for_a_thread_the_loop_cannot_see() -> None:
    """A thread of our own (as a script reader is) posts its result with
    call_soon_threadsafe; inside hold() the clock does not run past it."""

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        order: list[str] = []
        done: asyncio.Future[str] = loop.create_future()
        release = threading.Event()

        def work() -> None:
            release.wait(30)
            loop.call_soon_threadsafe(done.set_result, "line")

        async def reader() -> None:
            with clock.hold():
                threading.Thread(target=work, daemon=True).start()
                release.set()  # the thread may now finish; the loop cannot know when
                order.append(await done)

        async def sleeper() -> None:
            await asyncio.sleep(100)
            order.append("sleeper")

        await asyncio.gather(reader(), sleeper())
        return order

    assert run_virtual(main()) == ["line", "sleeper"]


def test_hold_until_a_future_and_release_errors() -> None:
    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, clock.VirtualClockLoop)
        future: asyncio.Future[None] = loop.create_future()
        clock.hold_until(loop, future)
        held = loop.holds
        future.set_result(None)
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="released more often"):
            loop.release()
        return held, loop.holds

    assert run_virtual(main()) == (1, 0)


async def test_hold_is_a_no_op_on_a_stock_loop() -> None:
    loop = asyncio.get_running_loop()
    assert not clock.is_virtual(loop)
    with clock.hold():
        future: asyncio.Future[int] = loop.create_future()
        clock.hold_until(loop, future)
        loop.call_soon(future.set_result, 1)
        assert await future == 1


def test_io_still_wakes_the_loop_and_cancelled_timers_do_not_count() -> None:
    """A socket read ends when the data comes (sent after a virtual 5 s); 500
    cancelled timers neither fire nor move the clock."""

    async def main() -> tuple[bytes, float, list[int]]:
        loop = asyncio.get_running_loop()
        fired: list[int] = []
        for i in range(500):
            loop.call_later(1 + i, fired.append, i).cancel()
        left, right = socket.socketpair()
        with left, right:
            reader, writer = await asyncio.open_connection(sock=left)

            async def send() -> None:
                await asyncio.sleep(5)
                right.sendall(b"hello\n")

            sender = asyncio.create_task(send())
            line = await reader.readline()
            await sender
            writer.close()
            await writer.wait_closed()
        return line, loop.time(), fired

    assert run_virtual(main()) == (b"hello\n", 5.0, [])
