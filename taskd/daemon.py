"""The daemon's lifecycle: one loop, kept alive with run_forever().

The story of `run`: make a new event loop and a first task, `serve`, on it; run the
loop forever. `serve` starts up (each front-end's output, stdout capture, signals,
the log), lets the front-ends read and execute commands until `end`, a signal, or
no front-end is left, then shuts down: cancel every task, wait up to the grace
period, name the ones that refused, flush and close the log, and stop the loop.
After the loop stops, `run` finalizes async generators, gives executor threads a
bounded moment, and closes.

The daemon *holds* an Engine (the tasks) and its front-ends (peers: a script
reader, the terminal shell, a socket server can run at once). Each front-end has
its own Output; task events are presented to every one, a command's reply goes
only to the one that asked, and SIGINT goes to the front-end that owns the terminal.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
import time
import traceback
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from . import clocks, commands
from . import events as ev
from .clock import new_virtual_loop
from .config import Config
from .context import CANCEL_GRACE, CURRENT, IN_CONSOLE
from .engine import Engine
from .errors import CommandError
from .executor import TaskExecutor, release
from .formatting import one_line
from .instruments import Instrument
from .kinds import Kind
from .kinds.processes import kill_groups
from .lag import LagMeter
from .output import MemoryOutput, Output
from .presenting import Presenters
from .registry import Registry, State, TaskRecord
from .reply import Reply
from .stall import StallWatch
from .stdcapture import StdCapture
from .steps import StepRecorder

if TYPE_CHECKING:
    from .narrate import Narrator
    from .persist import Persistence

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
MAX_NAMED = 10  # names in one line about the end (the rest are counted)


def _bounded(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMED])
    return shown + (f" (+{len(names) - MAX_NAMED} more)" if len(names) > MAX_NAMED else "")


class Frontend(Protocol):
    """Where commands come from. The engine never imports one; the daemon runs them.

    `open` returns the front-end's Output, to which the daemon presents task events
    and messages, or None for a front-end that presents them itself (a socket server,
    per connection). A front-end that owns the terminal (attribute `owns_terminal`,
    True when absent) is the one SIGINT is for. A front-end whose run fails when a
    task failed (attribute `fails_with_tasks`, False when absent: a script) has the
    daemon's exit status say so, in its `daemon-end` event too."""

    async def open(self, daemon: Daemon) -> Output | None:
        """Set up the streams on the running loop; return where output goes."""

    async def run(self, daemon: Daemon) -> None:
        """Read and execute commands until end of input or `daemon.ending`."""

    def interrupt(self, daemon: Daemon) -> None:
        """SIGINT arrived (Ctrl-C outside a prompt)."""

    async def aclose(self) -> None:
        """Release the front-end's streams, after everything was written."""


class _OwnTask(asyncio.Task):  # type: ignore[type-arg]
    """A task of taskd's own (serving, reading, writing the log, the lag meter, the
    socket server's...): a user's kind that cancels every task in all_tasks() must
    not end the daemon. A cancel asked from inside a taskd task's code (its context
    names a task record) is refused and reported; taskd's own cancels come from
    contexts that name none. Refusing beats catching CancelledError afterwards and
    uncancelling: the cancel never reaches the middle of a read or a write."""

    refused: Callable[[asyncio.Task[Any], TaskRecord], None] | None = None

    def cancel(self, msg: Any = None) -> bool:
        record = CURRENT.get()
        if record is not None and self.refused is not None:
            self.refused(self, record)
            return False
        return super().cancel(msg)


class _Reaper(Instrument):
    """A shell task that would not stop: its processes must not outlive taskd."""

    def task_abandoned(self, record: TaskRecord) -> None:
        kill_groups()


class Daemon:
    """An Engine hosted on its own event loop, from start to a bounded end."""

    def __init__(
        self,
        config: Config,
        kinds: dict[str, Kind] | None = None,
        output: Output | None = None,
        *,
        hangup_reopens_log: bool = False,
    ) -> None:
        """OUTPUT receives replies and messages while no front-end runs (embedding,
        tests); by default they are kept in memory. HANGUP_REOPENS_LOG: SIGHUP means
        the log was rotated (a served daemon has no terminal to hang up)."""
        self.config = config
        self.engine = Engine(config, kinds, report=self._notice)
        self._narrator: Narrator | None = None  # made by the first `explain`
        if config.explain:
            self.narrator.switch(True)
        self.exit_status = 0
        self.ending = False
        self.started = time.monotonic()
        self.lag = LagMeter()
        self.hangup_reopens_log = hangup_reopens_log
        self.abandoned_tasks: list[TaskRecord] = []
        self.abandoned_threads: list[str] = []
        self.frontends: list[Frontend] = []
        self._outputs: list[Output] = []
        self.presenters = Presenters(self.engine.bus, config.timestamps)  # on screen
        self.steps = StepRecorder()  # for `timeline` and `log --steps`
        self._end_requested: asyncio.Event | None = None
        self._hurry: asyncio.Event | None = None
        self.std = StdCapture(self.engine.task_line, self.report)
        self._refusals: dict[str, list[str]] = {}  # task -> taskd tasks it tried to cancel
        self._gc_was_enabled = False
        # Turn the collector back on when run() returns (shutdown() turned it off).
        # A process that exits next says no: the cancelled tasks left cyclic garbage
        # (a million objects at 100,000 tasks) that one collection, set off by any
        # allocation once it is on, took 0.5 s to free just before exiting.
        self.collect_after_run = True
        self._default: Output = output or MemoryOutput()
        self._console_tasks: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        self.persist: Persistence | None = None  # the state file, when configured
        self.start_failure = ""  # why startup() failed, one line

    # -- what front-ends and commands use ------------------------------------------

    @property
    def registry(self) -> Registry:
        return self.engine.registry

    @property
    def bus(self) -> ev.EventBus:
        return self.engine.bus

    async def execute(self, line: str, reply: Reply | None = None) -> None:
        """Run one command line for whoever REPLY belongs to; CommandError says what
        was wrong (and nothing changed)."""
        ctx = commands.Context(self.engine, self, reply or self.primary_reply())
        narrator = self._narrator
        if narrator is None or not narrator.on:
            await commands.execute(ctx, line)
            return
        note = narrator.before(line)  # what a `cancel` interrupts, before it does
        try:
            await commands.execute(ctx, line)
        finally:
            narrator.after(note)

    @property
    def narrator(self) -> Narrator:
        """The `explain on|off` switch, made when first wanted (most runs never are)."""
        if self._narrator is None:
            from .narrate import Narrator

            self._narrator = Narrator(self.engine)
        return self._narrator

    def primary_reply(self) -> Reply:
        """The reply channel of the first front-end (standard output)."""
        return Reply(self._outputs[0] if self._outputs else self._default)

    def report(self, message: str) -> None:
        """A one-line message for stderr that no command line caused."""
        self.engine.report(message)

    def _notice(self, line: str) -> None:
        outputs = self._outputs or [self._default]
        for output in outputs:
            output.error(line + "\n")
        # And to the log: a served daemon's stderr is often /dev/null.
        self.engine.bus.emit(ev.DAEMON, ev.NOTICE, {"message": line.removeprefix("taskd: ")})

    # -- the story ---------------------------------------------------------------

    def run(self, frontend: Frontend, *more: Frontend) -> int:
        """Run the daemon with its front-ends until it ends; return the exit status."""
        loop = self._new_loop()
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(self._on_loop_error)
        executor = TaskExecutor(self.config.workers)
        loop.set_default_executor(executor)
        serving = _OwnTask(self.serve(frontend, *more), loop=loop, name="taskd:serve")
        serving.refused = self._refused
        serving.add_done_callback(lambda _: loop.stop())
        try:
            loop.run_forever()
            while not serving.done():
                # A task called loop.stop(): the daemon is not done, so it goes on.
                self.report("error: a task stopped the event loop (loop.stop()); ignored")
                loop.run_forever()
        finally:
            started_closing = time.monotonic()
            loop.run_until_complete(loop.shutdown_asyncgens())
            self._release_executor(executor, started_closing + 0.5)
            self.std.restore()
            asyncio.set_event_loop(None)
            loop.close()
            clocks.reset()
            if self._gc_was_enabled and self.collect_after_run:
                gc.enable()
        if not serving.cancelled() and (failure := serving.exception()) is not None:
            # A bug of taskd's own (a front-end's open(), startup()): said, not only
            # counted, or the daemon would end with 1 and no word.
            _late_error(f"internal error: {type(failure).__name__}: {failure}")
            self.exit_status = max(self.exit_status, 1)
        return self.exit_status

    async def serve(self, *frontends: Frontend) -> None:
        CANCEL_GRACE.set(self.config.cancel_grace)  # inherited by every task from here on
        loop = asyncio.get_running_loop()
        factory = loop.get_task_factory()
        loop.set_task_factory(self._task_factory)
        clocks.install(loop)  # times count from here
        self.steps.start()
        self.engine.instruments.add(self.steps)
        self._end_requested = asyncio.Event()
        self._hurry = asyncio.Event()
        self.frontends = list(frontends)
        for frontend in frontends:
            output = await frontend.open(self)
            if output is not None:
                self._outputs.append(output)
                self.presenters.add(output)
        self.started = time.monotonic()
        lag = asyncio.get_running_loop().create_task(self.lag.run(), name="taskd:lag")
        primary = self._outputs[0] if self._outputs else self._default
        self.std.start(primary.write, primary.error)
        self.engine.instruments.add(self.std)
        self._install_signals()
        watch = StallWatch(self.engine, self.config.stall_threshold)
        watch.start()
        self.engine.instruments.add(_Reaper())
        try:
            # A front-end that could not open (the socket: another taskd is there)
            # has asked for the end: nothing to start.
            ok = not self._end_requested.is_set() and await self.startup()
            for frontend in frontends:
                started = getattr(frontend, "started", None)
                if started is not None:
                    started(None if ok else self.start_failure)
            if ok:
                await self._main()
        finally:
            lag.cancel()
            self.std.stop_guard()
            watch.stop()
            await self.shutdown()
            self._remove_signals()
            for frontend in frontends:
                await frontend.aclose()
            loop.set_task_factory(factory)

    @property
    def timestamps(self) -> bool:
        """Whether task lines and endings on screen start with `+SECONDS `."""
        return self.presenters.timestamps

    @timestamps.setter
    def timestamps(self, on: bool) -> None:
        self.presenters.timestamps = on

    async def startup(self) -> bool:
        """Take the state file and open the configured log; False (exit 2, nothing
        started) if either can't be had."""
        persist = None
        if self.config.state_file:
            from .persist import Persistence
            from .statelock import StateUnavailable

            persist = Persistence(self.engine, self.config.state_file)
            try:
                persist.lock.acquire()
            except StateUnavailable as exc:
                return self._cannot_start(str(exc))
        if self.config.log_file:
            try:
                await self.engine.start_log(self.config.log_file, self.config.log_format)
            except CommandError as exc:
                if persist is not None:
                    persist.lock.release()
                return self._cannot_start(str(exc))
        self.engine.bus.emit(ev.DAEMON, ev.DAEMON_START, {"config": list(self.config.sources)})
        if persist is not None:
            self.persist = persist
            persist.start(self.config.restore)
        elif self.config.restore:
            self.report("warning: restore is on but no state_file is set: nothing to restore")
        return True

    def _cannot_start(self, why: str) -> bool:
        self.start_failure = why
        self.report(f"error: {why}")
        self.exit_status = 2
        return False

    async def _main(self) -> None:
        """The front-ends run until an end is requested or none is left running."""
        assert self._end_requested is not None
        readers = {
            asyncio.create_task(f.run(self), name="taskd:frontend"): f for f in self.frontends
        }
        ended = asyncio.create_task(self._end_requested.wait(), name="taskd:end-request")
        pending: set[asyncio.Task[Any]] = set(readers)
        while pending and not ended.done():
            done, pending = await asyncio.wait(
                pending | {ended}, return_when=asyncio.FIRST_COMPLETED
            )
            pending.discard(ended)
            for reader in done & set(readers):
                self._reader_ended(reader)
        ended.cancel()
        for reader in pending:
            reader.cancel()  # a signal or `end`: stop reading, even mid-command
        if pending:
            await asyncio.wait(pending)
            for reader in pending:
                self._reader_ended(reader)

    def _reader_ended(self, reader: asyncio.Task[Any]) -> None:
        if not reader.cancelled() and (exc := reader.exception()) is not None:
            self._daemon_error(f"internal error in the front-end: {type(exc).__name__}: {exc}", exc)
            self.exit_status = max(self.exit_status, 1)

    async def shutdown(self) -> None:
        """Cancel every task, wait up to the grace period, report, flush the log."""
        self.ending = True
        # Cancelling makes garbage (an exception and traceback per task) that sets off
        # full collections, each scanning every live task: with 100,000 tasks,
        # measured 15 of them, 6.6 s in all. Nothing about to end needs collecting;
        # run() turns the collector back on.
        self._gc_was_enabled = gc.isenabled()
        gc.disable()
        engine = self.engine
        if self.persist is not None:
            self.persist.freeze()  # what is live now is what a restore starts again
        live = list(engine.registry.live.values())
        tasks = engine.cancel_now(live)
        console = [t for t in self._console_tasks if not t.done()]
        for task in console:
            task.cancel()
        tasks.extend(console)
        if tasks:
            await self._wait_or_hurry(tasks, self.config.cancel_grace)
        # A shell task still running here was abandoned (or hurried): its processes
        # must not outlive taskd all the same.
        kill_groups()
        engine.settle(live)
        cancelled = [r.name for r in live if r.state is State.CANCELLED]
        if cancelled and not self._output_gone():
            self.report(
                f"end cancelled {len(cancelled)} task{'s' if len(cancelled) > 1 else ''}: "
                + _bounded(cancelled)
            )
        stuck = [r for r in live if not r.finished]
        for task in console:
            if not task.done():
                task._log_destroy_pending = False  # type: ignore[attr-defined]
                self.report(f"abandoned {task.get_name()}, started from the console, still running")
        engine.abandon(stuck)
        if stuck:
            self.report(
                f"abandoned {len(stuck)} task{'s' if len(stuck) > 1 else ''} that did not "
                f"stop within {self.config.cancel_grace:g}s: "
                + ", ".join(r.name for r in stuck[:10])
                + (f" (+{len(stuck) - 10} more)" if len(stuck) > 10 else "")
            )
        self.abandoned_tasks = stuck
        if engine.failed_count and any(
            getattr(f, "fails_with_tasks", False) for f in self.frontends
        ):
            self.exit_status = max(self.exit_status, 1)  # before the log's last line
        engine.bus.emit(ev.DAEMON, ev.DAEMON_END, {"status": self.exit_status})
        if self.persist is not None:
            await self.persist.close()
        log = engine.log
        await engine.stop_log()
        if log is not None and log.abandoned:
            # Its thread is stuck in a write: the interpreter would join it at exit.
            from .eventlog import THREAD_NAME

            self.abandoned_threads.append(THREAD_NAME)
        for output in self._outputs:
            await output.drain()

    def _output_gone(self) -> bool:
        """Standard output broke (`taskd s.tdc | head -1`, a full disk): an end nobody
        asked for, and a pipeline's end is not commented on."""
        return any(getattr(getattr(o, "stdout", None), "is_broken", False) for o in self._outputs)

    # -- ending ------------------------------------------------------------------

    def request_end(self, signum: int | None = None) -> None:
        """Stop reading and shut down; a second signal skips the grace period."""
        if signum is not None:
            self.exit_status = 128 + signum
        if self.ending and signum is not None and self._hurry is not None:
            self._hurry.set()
        self.ending = True
        if self._end_requested is not None:
            self._end_requested.set()

    async def _wait_or_hurry(self, tasks: list[asyncio.Task[object]], timeout: float) -> None:
        assert self._hurry is not None
        hurry = asyncio.create_task(self._hurry.wait(), name="taskd:hurry")
        waiting = asyncio.create_task(asyncio.wait(tasks, timeout=timeout), name="taskd:grace")
        await asyncio.wait({hurry, waiting}, return_when=asyncio.FIRST_COMPLETED)
        hurry.cancel()
        waiting.cancel()
        await asyncio.wait({hurry, waiting})

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        self._signals = []
        for signum in SIGNALS:
            if signum == signal.SIGHUP and signal.getsignal(signum) == signal.SIG_IGN:
                continue  # `nohup taskd`: the person asked for hang-ups to be ignored
            if signum == signal.SIGINT:
                loop.add_signal_handler(signum, self._on_sigint)
            elif signum == signal.SIGHUP and self.hangup_reopens_log:
                loop.add_signal_handler(signum, self._reopen_log)
            else:
                loop.add_signal_handler(signum, self.request_end, signum)
            self._signals.append(signum)

    def _reopen_log(self) -> None:
        """SIGHUP to a served daemon: the log was rotated; open its path anew."""
        log = self.engine.log
        if log is not None and not self.ending:
            asyncio.get_running_loop().create_task(
                self._switch_log(log.path, log.format), name="taskd:log-reopen"
            )

    async def _switch_log(self, path: str, fmt: str) -> None:
        try:
            await self.engine.start_log(path, fmt)
        except CommandError as exc:
            self.report(f"error: cannot reopen the log after SIGHUP: {exc}")

    def _on_sigint(self) -> None:
        owner = next((f for f in self.frontends if getattr(f, "owns_terminal", True)), None)
        if self.ending or owner is None:
            self.request_end(signal.SIGINT)
        else:
            owner.interrupt(self)

    def _remove_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in getattr(self, "_signals", ()):
            loop.remove_signal_handler(signum)

    # -- output ------------------------------------------------------------------

    def _refused(self, task: asyncio.Task[Any], record: TaskRecord) -> None:
        """Task RECORD tried to cancel taskd's own TASK: refused; said once a task,
        at the end of this loop turn (one line however many it tried)."""
        names = self._refusals.get(record.name)
        if names is None:
            names = self._refusals[record.name] = []
            asyncio.get_running_loop().call_soon(self._say_refused, record.name)
        names.append(task.get_name())

    def _say_refused(self, name: str) -> None:
        names = self._refusals.get(name, [])
        self.report(
            f"error: task {name} tried to cancel {len(names)} of taskd's own task"
            f"{'s' if len(names) != 1 else ''} ({_bounded(names)}); refused"
        )

    def _task_factory(
        self, loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any
    ) -> asyncio.Task[Any]:
        given = kwargs.get("context")
        if (given.get(CURRENT) if given is not None else CURRENT.get()) is None and not (
            given.get(IN_CONSOLE) if given is not None else IN_CONSOLE.get()
        ):
            own = _OwnTask(coro, loop=loop, **kwargs)  # taskd's: see _OwnTask
            own.refused = self._refused
            return own
        task = self.engine.children.task_factory(loop, coro, **kwargs)  # made by tasks
        if IN_CONSOLE.get():
            self._console_tasks.add(task)  # started from the console: cancelled at `end`
        return task

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """taskd's own exception handler: one line for the user, the rest to the log."""
        message = str(context.get("message", "unexpected error"))
        exc = context.get("exception")
        line = message + (f": {type(exc).__name__}: {exc}" if exc is not None else "")
        if not loop.is_running():  # after the end (garbage collection): no output left
            _late_error(line)
            return
        self._daemon_error(line, exc)

    def _daemon_error(self, line: str, exc: object) -> None:
        """An error of taskd's own: one line on stderr, the traceback in the log."""
        self.report(f"error: {line}")
        fields: dict[str, Any] = {"error": one_line(line)}
        if isinstance(exc, BaseException):
            fields["traceback"] = "".join(traceback.format_exception(exc))
        self.engine.bus.emit(ev.DAEMON, ev.DAEMON_ERROR, fields)

    # -- the loop and its threads -------------------------------------------------

    def _new_loop(self) -> asyncio.AbstractEventLoop:
        if self.config.clock == "virtual":  # Config refuses it with uvloop
            return new_virtual_loop()
        if self.config.loop == "uvloop":
            import uvloop  # an optional extra; cli checks that it imports

            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
        return asyncio.new_event_loop()

    def _release_executor(self, executor: ThreadPoolExecutor, deadline: float) -> None:
        """Release the executor (executor.release) and name the threads left running."""
        workers, others = release(executor, deadline)
        self.abandoned_threads += workers + others
        saved = self.std.saved[1] if self.std.saved else sys.stderr
        if workers:
            busy = ", ".join(n.removeprefix("taskd:") for n in workers if n.startswith("taskd:"))
            text = f"abandoned {len(workers)} executor thread{'s' if len(workers) > 1 else ''}"
            print(f"taskd: {text} still running" + (f" ({busy})" if busy else ""), file=saved,
                  flush=True)
        if others:
            print(
                f"taskd: abandoned {len(others)} thread{'s' if len(others) > 1 else ''} "
                f"still running: {_bounded(others)}",
                file=saved,
                flush=True,
            )


def _late_error(line: str) -> None:
    """LINE on the process's stderr, once the loop and the outputs have closed."""
    try:
        print(f"taskd: error: {one_line(line)}", file=sys.__stderr__, flush=True)
    except (OSError, ValueError, AttributeError):
        pass
