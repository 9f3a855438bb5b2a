"""The control socket's server: other terminals and scripts talking to the daemon.

The server listens, accepts (a Connection each, sockconn.py), says bye to every
client at the end, and hands task events to its subscribers.

Task events are encoded once, gathered once for all subscribers, and written as one
chunk to each: with 10 clients and a task printing a line per loop iteration, per
event and client work (a list append, a bound check) cost more than the event's
encoding, and a send() per client per line would be a million system calls.

A client that has stopped reading cost the encoding of its events until it was cut
off (about 40,000 lines at the 4 MiB bound). While every subscriber is far behind
(BEHIND), task lines are gathered unencoded, charged at an upper bound of their
size, and encoded only if a client takes them after all (Held). The bound is
checked on that upper bound: such a client is cut off no later than it would be
with the lines encoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import Callable
from typing import cast

from .. import __version__, protocol
from ..events import CANCELLED, OUTPUT, RESTARTED, Event
from ..sockpath import SocketError, pid_path, prepare_folder, probe, read_pid
from .sockconn import WRITE_AT, Connection, ServedDaemon

MAX_BUFFER = 4 << 20  # bytes queued for one client before it is cut off
# Seconds task events wait for company before they are written: a task printing a
# line per loop iteration cost a send() per line per client (10 clients, 100k lines:
# a million system calls); replies to a command are not held.
EVENT_LINGER = 0.005
# Bytes its transport holds, beyond what its socket took, for a subscriber to be
# behind: a client reading 64 KiB chunks as they come is not.
BEHIND = 256 << 10
MAX_CLIENTS = 1024
CLOSE_GRACE = 1.0  # seconds for clients to take their last lines at the end
UNIX_PATH_MAX = 107


# A task's output line not encoded yet: (task, ts, line).
Line = tuple[str, float, str]


def _encode(items: list[bytes | Line]) -> bytes:
    parts = []
    for item in items:
        if isinstance(item, bytes):
            parts.append(item)
        else:
            data = protocol.output_event(*item)
            assert data is not None  # only ASCII lines are gathered unencoded
            parts.append(data)
    return b"".join(parts)


class Held:
    """Events handed, unencoded, to subscribers that were not reading: encoded once,
    for the first of them to take them (Connection._release), then shared."""

    __slots__ = ("_items", "_data", "size")

    def __init__(self, items: list[bytes | Line], size: int) -> None:
        self._items = items
        self._data: bytes | None = None
        self.size = size  # what the subscribers' bound is charged: at least the bytes

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
        # Not yet written to the subscribers: encoded, or (while _holding) lines.
        self._events: list[bytes | Line] = []
        self._events_size = 0  # their bytes (for lines, an upper bound)
        self._unencoded = False  # lines among them
        # Every subscriber was BEHIND at the last flush: lines are gathered unencoded.
        self._holding = False
        # Bytes of events that may gather before any subscriber could pass its bound:
        # checked against the subscribers' backlogs only when passed (0: check now).
        self._headroom = 0
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

    @property
    def events_pending(self) -> bool:
        return bool(self._events)

    def subscribe(self, conn: Connection) -> None:
        if self._present is None:
            from ..formatting import present_plain  # the engine's side: when first needed

            self._present = present_plain
        if not self._subscribers:
            self.daemon.bus.subscribe(self._on_event, lines=self._on_line)
        self.flush_events()  # what was emitted before it subscribed is not for it
        self._subscribers.add(conn)
        self._headroom = 0
        self._holding = False

    def unsubscribe(self, conn: Connection) -> None:
        if conn in self._subscribers:
            if not conn.closed:
                self.flush_events()  # what was emitted before it unsubscribed is
            self._subscribers.discard(conn)
            if not self._subscribers:
                self.daemon.bus.unsubscribe(self._on_event)
                self._drop_events()

    def bound_changed(self) -> None:
        """A subscriber's backlog grew by other means than events (a reply)."""
        self._headroom = 0

    def _on_line(self, task: str, ts: float, line: str) -> None:
        """A task's line, by far the most frequent event: encoded in one call, or
        kept unencoded while nobody reads."""
        if self._holding:
            bound = protocol.output_event_bound(task, line)
            if bound is not None:
                self._events.append((task, ts, line))
                self._unencoded = True
                self._gathered(bound)
                return
        data = protocol.output_event(task, ts, line)
        if data is None:  # a lone surrogate: the escaping encoder's way
            event = Event(task, OUTPUT, {"text": line})
            event.ts = ts
            self._on_event(event)
            return
        self._events.append(data)
        self._gathered(len(data))

    def _on_event(self, event: Event) -> None:
        data = self._encode_event(event)
        if data is None:
            return  # told at once to each (_to_the_others)
        self._events.append(data)
        self._gathered(len(data))

    def _gathered(self, length: int) -> None:
        """An event of LENGTH bytes (at most) joined the gathered ones."""
        size = self._events_size = self._events_size + length
        if size > self._headroom:
            self._check_bounds()
        if size >= WRITE_AT:
            self.flush_events()  # a burst: let the kernels' buffers take their share now
        elif self._event_timer is None and self._events:
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

    def _check_bounds(self) -> None:
        """Cut off each subscriber whose backlog and the gathered events pass the
        bound; the others leave the headroom until the next check."""
        size = self._events_size
        over = [c for c in self._subscribers if c.backlog() + size > self.max_buffer]
        for conn in over:
            conn.cut_off()  # its report is an event: it may come back to _on_event
        self._headroom = self.max_buffer - max(
            (c.backlog() for c in self._subscribers), default=0
        )

    def flush_events(self) -> None:
        """Write the gathered events, one chunk, to every subscriber."""
        if self._event_timer is not None:
            self._event_timer.cancel()
            self._event_timer = None
        events = self._events
        if not events:
            return
        size = self._events_size
        self._events = []
        self._events_size = 0
        subscribers = tuple(self._subscribers)
        if self._unencoded:
            self._unencoded = False
            if all(conn.behind(BEHIND) for conn in subscribers):
                held = Held(events, size)  # nobody reads: no encoding
                for conn in subscribers:
                    conn.hold(held)
            else:
                data = _encode(events)
                for conn in subscribers:
                    conn.write_events(data)
        else:
            encoded = cast("list[bytes]", events)  # no lines among them
            data = b"".join(encoded) if len(encoded) > 1 else encoded[0]
            for conn in subscribers:
                conn.write_events(data)
        self._holding = bool(subscribers)
        worst = 0
        for conn in subscribers:
            worst = max(worst, conn.backlog())
            self._holding = self._holding and conn.behind(BEHIND)
        self._headroom = self.max_buffer - worst

    def _drop_events(self) -> None:
        if self._event_timer is not None:
            self._event_timer.cancel()
            self._event_timer = None
        self._events = []
        self._events_size = 0
        self._unencoded = False
        self._holding = False

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
                conn.cut_off()  # its report is an event: it may come back to _on_event
            else:
                conn.write_events(own)
        self._headroom = 0

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
