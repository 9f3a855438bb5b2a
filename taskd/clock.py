"""A virtual clock for asyncio: when only timers are pending, time jumps to the next one.

Why: a lesson's `tick 60 100` should not take 100 minutes to show, and two runs of a
script should print the same bytes, timestamps included. This is trio's autojump clock
(`MockClock(autojump_threshold=0)`) done for an asyncio loop.

How. `new_virtual_loop()` makes a SelectorEventLoop whose `time()` starts at 0.0 and
stands still while callbacks run. Its selector, asked to wait for up to T seconds (the
loop only asks that when nothing is ready and a timer is due in T), first polls with a
zero timeout; if no I/O is ready either, it moves the clock to the next timer's
deadline and returns at once, so the timer fires in the same iteration.

Holds. Some work completes outside the loop and must not be overtaken by the clock: a
function run on a thread (`run_in_executor`, hence `asyncio.to_thread` and aiofiles), a
child process, a front-end waiting for the user's next line. While at least one hold
is outstanding the loop waits for real and its time runs at real speed from where it
stood, so timers still fire in order around the outside work; when the last hold ends
the clock stands still again. Thread futures and subprocesses are held automatically;
anything else (a thread of your own that calls `call_soon_threadsafe`, stdin) must be
wrapped in `hold(loop)` or `hold_until(loop, future)`, else the clock may run past it.

Freezes. Waiting for the next line of a script is different: the line is not work
the lesson is about, and a hold would let the read's real microseconds into the
virtual times, so two runs would differ in their last digit. While a freeze is
outstanding (and no hold), the loop waits for I/O without jumping and without
letting time run: the script's reading takes no virtual time at all. An executor
given to `exempt()` (the script reader's own thread) does not hold; its caller
freezes instead.

Limits: asyncio's own SelectorEventLoop only (uvloop's loop is C code with no selector
to wrap); it relies on private parts of CPython 3.11's loop (`_scheduled`, a
subprocess transport's `_exit_waiters`). Times are deterministic only while nothing is
held: held periods last as long as the outside work really takes.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import heapq
import itertools
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, TypeVarTuple, Unpack

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")
_monotonic = time.monotonic
_MAX_WAIT = 24 * 3600.0  # the stock loop's longest select() too
_COMPACT_MIN = 100  # cancelled timers tolerated before a full clean-up


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """A SelectorEventLoop on virtual time; see the module docstring.

    It keeps its timers itself, in a heap of (deadline, sequence, handle) tuples, and
    runs its own `_run_once`: tuples compare in C where the stock heap of TimerHandles
    calls a Python `__lt__` some ten times a pop, a quarter of a wake-up's cost when a
    thousand tasks sleep at once. Timers due at the same time fire in the order they
    were set, which keeps runs identical.
    """

    def __init__(self) -> None:
        self._now = 0.0  # virtual time while nothing is held
        self._holds = 0
        self._freezes = 0  # waits for input: time stands still and does not jump
        # executors whose calls freeze instead of hold (taskd's script reader)
        self._exempt: weakref.WeakSet[Any] = weakref.WeakSet()
        self._anchor = 0.0  # real monotonic time when the first hold began
        self._timers: list[tuple[float, int, asyncio.TimerHandle]] = []
        self._sequence = itertools.count()
        self.jumps = 0  # how often the clock skipped a wait (for benchmarks and tests)
        super().__init__()

    def time(self) -> float:
        if self._holds:
            return self._now + (_monotonic() - self._anchor)
        return self._now

    # -- holds -------------------------------------------------------------------

    def acquire(self) -> None:
        """Start a hold: time runs at real speed until the matching release()."""
        if not self._holds:
            self._anchor = _monotonic()
        self._holds += 1

    def release(self) -> None:
        """End a hold; the last one stops the clock where real time had taken it."""
        if self._holds <= 0:
            raise RuntimeError("virtual clock released more often than acquired")
        self._holds -= 1
        if not self._holds:
            self._now += _monotonic() - self._anchor

    def freeze(self) -> None:
        """Start a freeze: no jump, no running time, until the matching thaw()."""
        self._freezes += 1

    def thaw(self) -> None:
        if self._freezes <= 0:
            raise RuntimeError("virtual clock thawed more often than frozen")
        self._freezes -= 1

    def exempt(self, executor: Any) -> None:
        """Calls on EXECUTOR (taskd's input reader) do not hold the clock."""
        self._exempt.add(executor)

    @property
    def holds(self) -> int:
        return self._holds

    def hold_until(self, future: asyncio.Future[Any]) -> None:
        """Hold the clock until FUTURE (of this loop) is done."""
        if future.done():
            return
        self.acquire()
        future.add_done_callback(self._release_future)

    def _release_future(self, _future: asyncio.Future[Any]) -> None:
        self.release()

    # -- timers and the loop's iteration -------------------------------------------

    def call_at(
        self, when: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        if when is None:
            raise TypeError("when cannot be None")
        return self._schedule(when, callback, args, context)

    def call_later(
        self, delay: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        if delay is None:
            raise TypeError("delay must not be None")
        return self._schedule(self.time() + delay, callback, args, context)

    def _schedule(
        self, when: float, callback: Callable[..., object], args: tuple[Any, ...],
        context: contextvars.Context | None,
    ) -> asyncio.TimerHandle:
        if self._closed:  # type: ignore[attr-defined]
            raise RuntimeError("Event loop is closed")
        if self._debug:  # type: ignore[attr-defined]
            self._check_thread()  # type: ignore[attr-defined]
        timer = asyncio.TimerHandle(when, callback, args, self, context)
        heapq.heappush(self._timers, (when, next(self._sequence), timer))
        timer._scheduled = True  # type: ignore[attr-defined]  # counted when cancelled
        return timer

    def call_soon(
        self, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        """The stock call_soon without its layers (a future's every wake-up comes here)."""
        if self._debug or self._closed:  # type: ignore[attr-defined]
            return super().call_soon(callback, *args, context=context)
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)  # type: ignore[attr-defined]
        return handle

    def _run_once(self) -> None:
        timers = self._timers
        ready: collections.deque[asyncio.Handle] = self._ready  # type: ignore[attr-defined]
        self._drop_cancelled()
        jump = False
        if ready or self._stopping:  # type: ignore[attr-defined]
            timeout: float | None = 0.0
        elif not timers:
            timeout = None  # nothing to jump to: wait for I/O like any loop
        elif self._holds:
            timeout = min(max(0.0, timers[0][0] - self.time()), _MAX_WAIT)
        elif self._freezes:
            timeout = None  # time stands still until the input (or a thread) comes
        else:
            timeout, jump = 0.0, True  # poll; if nothing is there, only timers are left
        events = self._selector.select(timeout)  # type: ignore[attr-defined]
        if jump and not events and timers[0][0] > self._now:
            self._now = timers[0][0]
            self.jumps += 1
        self._process_events(events)  # type: ignore[attr-defined]
        end = self.time() + self._clock_resolution  # type: ignore[attr-defined]
        while timers and timers[0][0] < end:
            timer = heapq.heappop(timers)[2]
            timer._scheduled = False  # type: ignore[attr-defined]
            ready.append(timer)
        for _ in range(len(ready)):
            handle = ready.popleft()
            if not handle.cancelled():
                handle._run()

    def _drop_cancelled(self) -> None:
        """Forget cancelled timers: all of them when they are most of the heap, else
        those at its head (what the stock loop does with its own heap)."""
        timers = self._timers
        cancelled = self._timer_cancelled_count  # type: ignore[has-type]
        if cancelled > _COMPACT_MIN and cancelled * 2 > len(timers):
            kept = []
            for entry in timers:
                if entry[2].cancelled():
                    entry[2]._scheduled = False  # type: ignore[attr-defined]
                else:
                    kept.append(entry)
            heapq.heapify(kept)
            timers[:] = kept
            self._timer_cancelled_count = 0
            return
        while timers and timers[0][2].cancelled():
            heapq.heappop(timers)[2]._scheduled = False  # type: ignore[attr-defined]
            self._timer_cancelled_count -= 1

    def close(self) -> None:
        if not self.is_running():
            self._timers.clear()
        super().close()

    # -- outside work holds the clock ---------------------------------------------

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., _T], *args: Any
    ) -> asyncio.Future[_T]:
        """The clock is held until FUNC has returned in its thread (an await cancelled
        while the thread works on, asyncio05, leaves a thread that will still print)
        and its future is done (between the two, under load, the clock would jump
        past the awaiting task's next step)."""
        if executor is not None and executor in self._exempt:
            return super().run_in_executor(executor, func, *args)
        lock = threading.Lock()
        state = {"started": False, "returned": False, "done": False, "released": False}

        def release_when_over() -> None:
            with lock:
                over = state["done"] and (state["returned"] or not state["started"])
                if state["released"] or not over:
                    return
                state["released"] = True
            self.release()

        def work() -> _T:
            with lock:
                state["started"] = True
            try:
                return func(*args)
            finally:
                with lock:
                    state["returned"] = True
                try:
                    self.call_soon_threadsafe(release_when_over)
                except RuntimeError:  # the loop is closed: nobody holds anything now
                    pass

        def settled(_future: asyncio.Future[_T]) -> None:
            with lock:
                state["done"] = True
            release_when_over()  # unless its thread still works (a cancelled await)

        self.acquire()
        try:
            future = super().run_in_executor(executor, work)
        except BaseException:
            self.release()
            raise
        future.add_done_callback(settled)
        return future

    async def _make_subprocess_transport(  # type: ignore[no-untyped-def]
        self, *args: Any, **kwargs: Any
    ):
        """A child holds the clock from its start until it has exited and its pipes
        are closed (when the transport wakes its exit waiters)."""
        self.acquire()
        try:
            transport = await super()._make_subprocess_transport(  # type: ignore[misc]
                *args, **kwargs
            )
        except BaseException:
            self.release()
            raise
        if transport.get_returncode() is not None:
            self.release()
        else:
            waiter: asyncio.Future[Any] = self.create_future()
            waiter.add_done_callback(self._release_future)
            transport._exit_waiters.append(waiter)
        return transport


def new_virtual_loop() -> VirtualClockLoop:
    """A new event loop on virtual time starting at 0.0 (asyncio only, not uvloop).

    Use it as `asyncio.Runner(loop_factory=new_virtual_loop)` or set it as the
    current loop and run_forever() as usual.
    """
    return VirtualClockLoop()


def is_virtual(loop: asyncio.AbstractEventLoop) -> bool:
    return isinstance(loop, VirtualClockLoop)


@contextmanager
def hold(loop: asyncio.AbstractEventLoop | None = None) -> Iterator[None]:
    """Keep LOOP (default: the running loop) on real time inside the block.

    For a front-end waiting on something the loop cannot see coming, such as the next
    line of a script read by a thread of its own. A no-op on any other kind of loop,
    so callers need not know which clock is in use. Use on the loop's thread only.
    """
    target = loop if loop is not None else asyncio.get_running_loop()
    if not isinstance(target, VirtualClockLoop):
        yield
        return
    target.acquire()
    try:
        yield
    finally:
        target.release()


@contextmanager
def freeze(loop: asyncio.AbstractEventLoop | None = None) -> Iterator[None]:
    """Keep LOOP's virtual time still (no jump) inside the block: for a front-end
    waiting for input, which takes no time in a script. A no-op on other loops."""
    target = loop if loop is not None else asyncio.get_running_loop()
    if not isinstance(target, VirtualClockLoop):
        yield
        return
    target.freeze()
    try:
        yield
    finally:
        target.thaw()


def exempt(loop: asyncio.AbstractEventLoop, executor: Any) -> None:
    """EXECUTOR's calls on LOOP do not hold its clock (their callers freeze it)."""
    if isinstance(loop, VirtualClockLoop):
        loop.exempt(executor)


def hold_until(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> None:
    """Hold LOOP's clock until FUTURE is done; a no-op on any other kind of loop."""
    if isinstance(loop, VirtualClockLoop):
        loop.hold_until(future)
