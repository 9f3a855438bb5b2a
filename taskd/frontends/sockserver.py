"""The control socket's server: other terminals and scripts talking to the daemon.

The server listens, accepts (a Connection each, sockconn.py), says bye to every
client at the end, and hands task events to its subscribers.

Task events are gathered once for all subscribers and written as one chunk to each:
with 10 clients and a task printing a line per loop iteration, a send() per client
per line would be a million system calls. Task output lines, by far the most
frequent, are gathered as they are and encoded at the write, a run of them as one
message (protocol.output): one C encoder call, a third of the bytes of an event
each, for 10 clients to read.

Each subscriber's bound is checked at each write: a client whose backlog would pass
it is cut off instead of being written to. While every subscriber is far behind
(BEHIND), the lines are not encoded at all but handed over as they are (Held),
charged at an upper bound of their size plus the memory they take meanwhile, and
encoded only if a client takes them after all: a client that has stopped reading
costs the daemon little, and not for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import Callable

from .. import __version__, protocol
from ..events import CANCELLED, RESTARTED, Event
from ..sockpath import SocketError, pid_path, prepare_folder, probe, read_pid
from .sockconn import WRITE_AT, Connection, ServedDaemon

MAX_BUFFER = 4 << 20  # bytes queued for one client before it is cut off
# Seconds task events wait for company before they are written: a task printing a
# line per loop iteration cost a send() per line per client (10 clients, 100k lines:
# a million system calls); replies to a command are not held.
EVENT_LINGER = 0.005
# Bytes its transport holds, beyond what its socket took, for a subscriber to be
# behind: a client reading as lines come is not (its socket takes about 64 KiB first:
# sockconn.SUBSCRIBER_SNDBUF).
BEHIND = 64 << 10
MAX_CLIENTS = 1024
CLOSE_GRACE = 1.0  # seconds for clients to take their last lines at the end
UNIX_PATH_MAX = 107


# A task's output line: (task, ts, text); a run of them is encoded as one message.
Line = tuple[str, float, str]
# What is gathered for the subscribers: an encoded event, or a run of lines.
Item = bytes | list[Line]
# Bytes a gathered line is counted as, besides its task's and text's characters: about
# what protocol.output() makes of it, for when to write (not for the bound).
LINE_COST = 32
# Bytes a line held unencoded (Held) takes in the daemon beyond the most its JSON can
# take: a tuple, a float, a string's header (152 bytes measured for a 7-character
# line, whose JSON is 36). A held line is charged both against the bound.
HELD_LINE = 120


def _encode(items: list[Item]) -> bytes:
    parts = [item if isinstance(item, bytes) else protocol.output(item) for item in items]
    return b"".join(parts) if len(parts) > 1 else parts[0]


class Held:
    """Events handed, unencoded, to subscribers that were not reading: encoded once,
    for the first of them to take them (Connection._release), then shared."""

    __slots__ = ("_items", "_data", "size")

    def __init__(self, items: list[Item]) -> None:
        self._items = items
        self._data: bytes | None = None
        # What the subscribers' bound is charged: at least the bytes they will take,
        # and at least the memory the lines take until then.
        self.size = sum(
            len(item)
            if isinstance(item, bytes)
            else protocol.output_bound(item) + HELD_LINE * len(item)
            for item in items
        )

    def encoded(self) -> bytes:
        if self._data is None:
            self._data = _encode(self._items)
            self._items = []
        return self._data


class SocketServer:
    """The daemon's control socket: start() it on a path, aclose() it at the end."""

    def __init__(
        self,
        daemon: ServedDaemon,
        max_buffer: int = MAX_BUFFER,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.daemon = daemon
        self.max_buffer = max_buffer
        self.max_clients = max_clients
        self.path: str | None = None
        self.connections: set[Connection] = set()
        self.hello = protocol.hello(os.getpid(), __version__)
        self._subscribers: set[Connection] = set()
        # Not yet written to the subscribers, in order: encoded events and runs of
        # lines; _run is the last item while it is a run that lines join.
        self._events: list[Item] = []
        self._run: list[Line] | None = None
        self._events_size = 0  # their bytes (for lines, about: LINE_COST)
        self._event_timer: asyncio.TimerHandle | None = None
        self._present: Callable[[Event], str | None] | None = None
        self._server: asyncio.AbstractServer | None = None
        self._bound: tuple[int, int] | None = None  # (st_dev, st_ino) of our socket

    async def start(self, path: str) -> None:
        """Listen at PATH. SocketError (one line, exit 2 at the CLI) when it cannot:
        an unsafe folder, another taskd live there, or the OS refusing."""
        if len(os.fsencode(path)) > UNIX_PATH_MAX:
            raise SocketError(
                f"socket path too long ({len(os.fsencode(path))} bytes; the limit is "
                f"{UNIX_PATH_MAX}): {path}"
            )
        prepare_folder(path)
        state = probe(path)
        if state == "live":
            pid = read_pid(path)
            who = f" (pid {pid})" if pid is not None else ""
            raise SocketError(f"a taskd is already running at {path}{who}")
        if state == "stale":
            info = os.lstat(path)
            if not stat.S_ISSOCK(info.st_mode):
                raise SocketError(f"{path} exists and is not a socket; refusing to replace it")
            os.unlink(path)
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_unix_server(
                lambda: Connection(self), path, backlog=self.max_clients
            )
        except OSError as exc:
            raise SocketError(f"cannot listen at {path}: {exc.strerror}") from None
        os.chmod(path, 0o600)
        info = os.stat(path)
        self._bound = (info.st_dev, info.st_ino)
        self.path = path
        self._write_pid(path)

    def _write_pid(self, path: str) -> None:
        target = pid_path(path)
        temporary = f"{target}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, f"{os.getpid()}\n".encode())
        finally:
            os.close(fd)
        os.replace(temporary, target)

    # -- events ------------------------------------------------------------------------

    @property
    def subscribers(self) -> set[Connection]:
        return self._subscribers

    def flush_before(self, conn: Connection) -> bool:
        """Write the events gathered so far, before what CONN is sent next (they came
        first); False when that took CONN past its bound, and it was cut off."""
        if self._events and conn in self._subscribers:
            self.flush_events()
        return not conn.closed

    def subscribe(self, conn: Connection, lossy: bool = False) -> None:
        if self._present is None:
            from ..formatting import present_plain  # the engine's side: when first needed

            self._present = present_plain
        if not self._subscribers:
            self.daemon.bus.subscribe(self._on_event, lines=self._on_line)
        self.flush_events()  # what was emitted before it subscribed is not for it
        conn.lossy = lossy
        self._subscribers.add(conn)

    def unsubscribe(self, conn: Connection) -> None:
        if conn in self._subscribers:
            if not conn.closed:
                self.flush_events()  # what was emitted before it unsubscribed is
            self._subscribers.discard(conn)
            if not self._subscribers:
                self.daemon.bus.unsubscribe(self._on_event)
                self._drop_events()

    def _on_line(self, task: str, ts: float, line: str) -> None:
        """A task's line, by far the most frequent event: kept as it is (encoded
        with its run at the write), in as few steps as can be."""
        run = self._run
        if run is None:
            run = self._run = []
            self._events.append(run)
        run.append((task, ts, line))
        # _gathered(), inline: up to 100,000 lines a second come this way.
        size = self._events_size = self._events_size + len(task) + len(line) + LINE_COST
        if size >= WRITE_AT:
            self.flush_events()
        elif self._event_timer is None:
            self._event_timer = asyncio.get_running_loop().call_later(
                EVENT_LINGER, self.flush_events
            )

    def _on_event(self, event: Event) -> None:
        data = self._encode_event(event)
        if data is None:
            return  # told at once to each (_to_the_others)
        self._run = None  # lines after it make a run of their own
        self._events.append(data)
        self._gathered(len(data))

    def _gathered(self, size: int) -> None:
        """SIZE bytes (about, for lines) joined the gathered events."""
        size = self._events_size = self._events_size + size
        if size >= WRITE_AT:
            self.flush_events()  # a burst: let the kernels' buffers take their share now
        elif self._event_timer is None:
            self._event_timer = asyncio.get_running_loop().call_later(
                EVENT_LINGER, self.flush_events
            )

    def _encode_event(self, event: Event) -> bytes | None:
        """EVENT for every subscriber; None when it was told to each already."""
        assert self._present is not None
        data = protocol.event(
            event.task, event.event, event.ts, event.fields, self._present(event)
        )
        name = event.event
        if (name == CANCELLED and "reason" not in event.fields) or (
            name == RESTARTED and event.fields.get("by") == "command"
        ):
            self._to_the_others(event, data)
            return None
        return data

    def flush_events(self) -> None:
        """Write the gathered events, one chunk, to every subscriber; cut off each one
        whose backlog that chunk would take past the bound."""
        if self._event_timer is not None:
            self._event_timer.cancel()
            self._event_timer = None
        events = self._events
        if not events:
            return
        self._events = []
        self._run = None
        self._events_size = 0
        subscribers = tuple(self._subscribers)
        if not subscribers:
            return
        limit = self.max_buffer
        if all(conn.behind(BEHIND) for conn in subscribers):
            held = Held(events)  # nobody reads: no encoding, unless one takes them
            for conn in subscribers:
                if conn.backlog() + held.size > limit:
                    self._over(conn, events)
                else:
                    if conn.dropped:
                        conn.hold(Held([conn.take_dropped()]))
                    conn.hold(held)
            return
        data = _encode(events)
        for conn in subscribers:
            if conn.backlog() + len(data) > limit:
                self._over(conn, events)
            else:
                conn.write_events(data)

    @staticmethod
    def _over(conn: Connection, events: list[Item]) -> None:
        """EVENTS would take CONN past its bound: a lossy subscriber (a person's
        terminal) loses them, counted, and is told how many when it takes events
        again; any other is cut off (its report is an event: it may come back here)."""
        if conn.lossy:
            conn.lose(sum(1 if isinstance(i, bytes) else len(i) for i in events))
        else:
            conn.cut_off()

    def _drop_events(self) -> None:
        if self._event_timer is not None:
            self._event_timer.cancel()
            self._event_timer = None
        self._events = []
        self._run = None
        self._events_size = 0

    def _to_the_others(self, event: Event, data: bytes) -> None:
        """The asker of a `cancel` or `restart` has its reply; every other client is
        told of it here, with `by` (a shell shows such an event only when `by` says
        another client did it, or no client). A rare event: written at once, after
        the gathered ones, each client's own."""
        assert self._present is not None
        by = getattr(event, "by", None)
        fields = {**event.fields, "by": "" if by is None else "another client"}
        told = Event(event.task, event.event, fields)
        told.ts = event.ts
        others = protocol.event(event.task, event.event, event.ts, fields, self._present(told))
        self.flush_events()
        for conn in tuple(self._subscribers):
            own = data if conn is by else others
            if conn.backlog() + len(own) > self.max_buffer:
                self._over(conn, [own])
            else:
                conn.write_events(own)

    # -- the end -----------------------------------------------------------------------

    async def aclose(self, reason: str = "taskd ended") -> None:
        """Tell every client REASON, give them a bounded moment to take it, close,
        and remove the socket and pid file (if they are still ours)."""
        if self._server is not None:
            self._server.close()
        conns = list(self.connections)
        for conn in conns:
            conn.say_bye(reason)
        if conns:
            await asyncio.wait([conn.gone for conn in conns], timeout=CLOSE_GRACE)
            for conn in conns:
                if not conn.gone.done():
                    conn.abort()  # not taking its last lines: no more waiting
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self._remove_files()

    def _remove_files(self) -> None:
        path = self.path
        if path is None:
            return
        self.path = None
        with contextlib.suppress(OSError):
            info = os.lstat(path)
            if (info.st_dev, info.st_ino) == self._bound:
                os.unlink(path)
        if read_pid(path) == os.getpid():
            with contextlib.suppress(OSError):
                os.unlink(pid_path(path))
