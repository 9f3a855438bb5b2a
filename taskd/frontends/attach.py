"""`taskd attach`: the interactive shell, connected to a running daemon.

The shell (ShellFrontend) is the same one a local taskd uses; what it talks to is
a RemoteDaemon: the daemon's control socket seen through the few things the shell
asks of a daemon (run a line and reply to me, the kinds and task names for
completion, the counts, log and lag for the toolbar). Task events arrive pushed and
are shown above the prompt, coloured from their data as locally. The names and
counts are kept from the events (after one `show --json` at the start), so a Tab
never waits for the daemon; the toolbar's log and lag come from `status --json`
once a second.

`detach` or Ctrl-D leaves and the daemon goes on; `end` ends the daemon, which
says bye to every attached shell: each prints one line and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from .. import formatting, protocol
from ..config import Config
from ..errors import CommandError, ConfigError
from ..events import CANCELLED, DONE, FAILED, OUTPUT, STARTED, Event
from ..fragments import Fragments
from ..output import Output
from ..registry import FINAL, State
from ..reply import Reply
from ..sockpath import SocketError, resolve

if TYPE_CHECKING:
    from ..daemon import Daemon

NO_DAEMON = 3


@dataclass
class _Record:
    name: str
    kind: str
    state: State


@dataclass
class _Kind:
    name: str
    summary: str


@dataclass
class _Log:
    path: str


class _Registry:
    """Live task names and the finished count, as completion and the toolbar read them."""

    def __init__(self) -> None:
        self.live: dict[str, _Record] = {}
        # The last `history` finished, as the daemon keeps them (config `history`):
        # an attached shell left for days must not keep every task that ever ended.
        self.finished: OrderedDict[str, _Record] = OrderedDict()
        self.history = 1000
        self.finished_count = 0

    def finish(self, record: _Record) -> None:
        finished = self.finished
        finished.pop(record.name, None)
        finished[record.name] = record
        while len(finished) > max(self.history, 0):
            finished.popitem(last=False)

    def records(self, include_finished: bool = False) -> Iterator[_Record]:
        if include_finished:
            yield from self.finished.values()
        yield from self.live.values()


@dataclass
class _View:
    """What the shell reads of `daemon.engine`."""

    registry: _Registry = field(default_factory=_Registry)
    kinds: dict[str, _Kind] = field(default_factory=dict)
    log: _Log | None = None


class RemoteDaemon:
    """A daemon on the other side of the control socket, as the shell sees one."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.engine = _View()
        self.ending = False
        self.bye: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.output: Output | None = None
        self.lag: float | None = None
        self._next = 0
        self._pending: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self._resync: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, path: str) -> RemoteDaemon:
        reader, writer = await asyncio.open_unix_connection(path, limit=protocol.MAX_REPLY + 2)
        hello = protocol.decode(await reader.readline(), protocol.MAX_REPLY)
        if isinstance(hello, protocol.ProtocolError) or "bye" in hello:
            writer.close()
            reason = hello.get("bye") if isinstance(hello, dict) else hello.message
            raise SocketError(f"the daemon at {path} refused: {reason}")
        if hello.get("taskd") != protocol.VERSION:
            writer.close()
            raise SocketError(protocol.other_version(path, hello))
        return cls(reader, writer)

    # -- what the shell calls -------------------------------------------------------

    async def execute(self, line: str, reply: Reply | None = None) -> None:
        stripped = line.strip()
        if stripped == "detach":
            self.request_end()
            return
        _, errs, ok = await self.ask(line, reply)
        if not ok:
            raise CommandError("; ".join(errs) or "failed")

    def request_end(self, signum: int | None = None) -> None:
        """Leave (detach): the daemon goes on."""
        self.ending = True
        if not self.bye.done():
            self.bye.set_result("")

    def report(self, message: str) -> None:
        if self.output is not None:
            self.output.error(f"taskd: {message}\n")

    # -- the connection -----------------------------------------------------------

    async def ask(self, line: str, reply: Reply | None = None) -> tuple[list[str], list[str], bool]:
        self._next += 1
        rid = self._next
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pending[rid] = queue
        outs: list[str] = []
        errs: list[str] = []
        try:
            self._writer.write(protocol.request(rid, line))
            while True:
                obj = await self._next_reply(queue)
                if "out" in obj:
                    if reply is not None:
                        reply.out(str(obj["out"]))
                    outs.append(str(obj["out"]))
                elif "err" in obj:
                    errs.append(str(obj["err"]))
                elif obj.get("done"):
                    return outs, errs, obj.get("ok") is True
        except asyncio.CancelledError:
            # Ctrl-C during a command: the daemon interrupts it too.
            self._next += 1
            self._writer.write(protocol.cancel(self._next, rid))
            raise
        finally:
            del self._pending[rid]

    async def _next_reply(self, queue: asyncio.Queue[dict[str, Any]]) -> dict[str, Any]:
        getting: asyncio.Future[Any] = asyncio.ensure_future(queue.get())
        bye: asyncio.Future[Any] = self.bye
        await asyncio.wait({getting, bye}, return_when=asyncio.FIRST_COMPLETED)
        if getting.done():
            return cast("dict[str, Any]", getting.result())
        getting.cancel()
        raise CommandError("the daemon ended")

    async def read_forever(self) -> None:
        """Dispatch what the daemon sends: replies to their askers, events to the
        screen and the name cache; bye (or the end of the connection) ends it."""
        reason = "the connection to the daemon was lost"
        try:
            while raw := await self._reader.readline():
                obj = protocol.decode(raw, protocol.MAX_REPLY)
                if isinstance(obj, protocol.ProtocolError):
                    continue
                if "bye" in obj:
                    reason = str(obj["bye"])
                    break
                if "output" in obj:
                    self._on_output(obj["output"])
                    continue
                if "dropped" in obj:
                    self._on_dropped(obj["dropped"])
                    continue
                if "event" in obj:
                    self._on_event(obj["event"])
                    continue
                queue = self._pending.get(obj.get("id", -1))
                if queue is not None:
                    queue.put_nowait(obj)
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        if not self.bye.done():
            self.bye.set_result(reason)

    def _on_event(self, data: dict[str, Any]) -> None:
        try:
            event = Event(str(data["task"]), str(data["name"]), dict(data.get("fields") or {}))
        except (KeyError, TypeError):
            return
        self._track(event)
        line = formatting.present(event)
        if line is not None:
            self._show(line)

    def _on_output(self, lines: Any) -> None:
        """Task output lines, [task, ts, text] each, shown as the local shell does."""
        if not isinstance(lines, list):
            return
        for item in lines:
            try:
                task, _ts, text = item
            except (TypeError, ValueError):
                continue
            line = formatting.present(Event(str(task), OUTPUT, {"text": str(text)}))
            if line is not None:
                self._show(line)

    def _on_dropped(self, count: Any) -> None:
        """The daemon lost COUNT events for us (we fell behind, a flood of them): say
        so, and ask again which tasks there are, since some of those were ends."""
        if self.output is not None:
            self.output.error(
                f"taskd: {count} task events not shown: this client could not keep up\n"
            )
        if self._resync is None or self._resync.done():
            self._resync = asyncio.get_running_loop().create_task(
                self._resync_tasks(), name="attach:resync"
            )

    async def _resync_tasks(self) -> None:
        with contextlib.suppress(CommandError):  # the daemon went meanwhile
            await self._tasks()

    def _show(self, line: Fragments) -> None:
        """A pushed line on the screen, as the local shell shows task events: past
        what the terminal can take they are dropped and counted, so that this client
        keeps reading and the daemon never has to cut it off for a flood."""
        output = self.output
        if output is not None:
            getattr(output, "event_line", output.line)(line)

    def _track(self, event: Event) -> None:
        registry = self.engine.registry
        if event.event == STARTED:
            registry.live[event.task] = _Record(
                event.task, str(event.fields.get("kind", "?")), State.RUNNING
            )
        elif event.event in (DONE, FAILED, CANCELLED):
            record = registry.live.pop(event.task, None)
            if record is not None:
                record.state = State(event.event)
                registry.finish(record)
                registry.finished_count += 1

    async def load(self) -> None:
        """The kinds, the live and finished tasks, once; later, events keep them."""
        outs, _, ok = await self.ask("kinds --json")
        if ok and outs:
            for item in json.loads(outs[0]):
                self.engine.kinds[item["name"]] = _Kind(item["name"], item["summary"])
        await self._tasks()

    async def _tasks(self) -> None:
        """The live and finished tasks, as the daemon has them now."""
        outs, _, ok = await self.ask("show --all --json")
        if ok and outs:
            self.engine.registry.live.clear()
            for item in json.loads(outs[0]):
                record = _Record(item["name"], item["kind"], State(item["state"]))
                if record.state in FINAL:
                    self.engine.registry.finish(record)
                else:
                    self.engine.registry.live[record.name] = record

    async def subscribe(self) -> None:
        self._next += 1
        self._writer.write(protocol.subscribe(self._next, lossy=True))

    async def watch_status(self) -> None:
        """The toolbar's log and lag, from the daemon, once a second."""
        while True:
            outs, _, ok = await self.ask("status --json")
            if ok and outs:
                fields = json.loads(outs[0])
                log = fields.get("log")
                self.engine.log = _Log(str(log["path"])) if isinstance(log, dict) else None
                lag = fields.get("lag_s")
                self.lag = float(lag) if isinstance(lag, (int, float)) else None
                tasks = fields.get("tasks") or {}
                self.engine.registry.finished_count = int(tasks.get("finished", 0))
            await asyncio.sleep(1.0)

    def close(self) -> None:
        if self._resync is not None:
            self._resync.cancel()
        self._writer.close()


def attach_main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="taskd attach",
        description="The interactive shell, attached to a running daemon. "
        "`detach` or Ctrl-D leaves it running; `end` ends it.",
    )
    parser.add_argument("--socket", metavar="PATH", help="the control socket")
    parser.add_argument("--config", metavar="PATH", help="configuration file to use")
    parser.add_argument("--no-color", action="store_true", help="no colours")
    args = parser.parse_args(argv)
    from ..config import load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"taskd: error: {exc}", file=sys.stderr)
        return 2
    if args.no_color:
        import dataclasses

        config = dataclasses.replace(config, color="never")
    try:
        path = resolve(args.socket, config.socket, os.environ)
    except SocketError as exc:
        print(f"taskd: error: {exc}", file=sys.stderr)
        return 2
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("taskd: error: attach needs a terminal; use `taskd send` from scripts",
              file=sys.stderr)
        return 2
    return asyncio.run(_attach(config, path))


async def _attach(config: Config, path: str) -> int:
    from .shell import ShellFrontend

    try:
        daemon = await RemoteDaemon.connect(path)
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
        print(f"taskd: no daemon is running at {path} (start one with: taskd serve --detach)",
              file=sys.stderr)
        return NO_DAEMON
    except (OSError, SocketError) as exc:
        print(f"taskd: error: cannot attach: {exc}", file=sys.stderr)
        return 2
    daemon.engine.registry.history = config.history
    shell = ShellFrontend(config, lag=lambda: daemon.lag)
    remote = cast("Daemon", daemon)  # the few things the shell asks of a daemon
    reading = asyncio.get_running_loop().create_task(daemon.read_forever(), name="attach:read")
    await daemon.subscribe()
    try:
        await daemon.load()
    except CommandError:  # it ended (or cut us off) before the shell was up
        reason = daemon.bye.result() if daemon.bye.done() else "the daemon ended"
        print(f"taskd: {reason}; detached", file=sys.stderr)
        reading.cancel()
        await asyncio.wait({reading})
        daemon.close()
        return 0
    daemon.output = await shell.open(remote)
    status = asyncio.get_running_loop().create_task(daemon.watch_status(), name="attach:status")
    loop = asyncio.get_running_loop()
    running: asyncio.Future[Any] = loop.create_task(shell.run(remote), name="attach:shell")
    loop.add_signal_handler(signal.SIGINT, shell.interrupt, remote)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, running.cancel)
    try:
        bye: asyncio.Future[Any] = daemon.bye
        await asyncio.wait({running, bye}, return_when=asyncio.FIRST_COMPLETED)
        running.cancel()
        await asyncio.wait({running})
        reason = daemon.bye.result() if daemon.bye.done() else ""
        if reason and shell.output is not None:
            shell.output.write(f"taskd: {reason}; detached\n")
    finally:
        status.cancel()
        reading.cancel()
        await asyncio.wait({status, reading})
        await shell.aclose()
        daemon.close()
    return 0
