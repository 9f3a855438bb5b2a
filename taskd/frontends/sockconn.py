"""One client of the control socket: its request lines in, its replies and events out.

A connection is a small asyncio.Protocol, not a stream pair, so that nothing a
client does can make the daemon wait: output for a client is queued and written
without ever awaiting a drain, and a client that stops reading is cut off once its
queue passes a bound (its server checks the bound for events, sockserver.py). Its
command lines run one after another (as a script's do), each with its own Reply;
the lines of different clients interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import select
import socket
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

from .. import protocol
from ..errors import CommandError
from ..events import ASKER, Event
from ..fragments import Line, plain
from ..sockpath import peer_allowed

if TYPE_CHECKING:
    from .sockserver import Held, SocketServer

WRITE_AT = 64 << 10  # bytes gathered before writing without waiting for the loop's turn
MAX_QUEUED = 1000  # requests read ahead of the one running; then reading pauses
YIELD_EVERY = 100  # requests run back to back before other clients get a turn
# A subscriber's socket send buffer (the kernel doubles it: 64 KiB). Events that wait
# for a subscriber then wait here, where its bound counts them and a client that has
# stopped reading costs little, not in the kernel, whose default buffer took three
# times as much, all of it encoded first (README, Performance: the stalled client).
SUBSCRIBER_SNDBUF = 32 << 10


class Bus(Protocol):
    def subscribe(
        self, sink: Callable[[Event], None], *, lines: Callable[[str, float, str], None]
    ) -> None: ...
    def unsubscribe(self, sink: Callable[[Event], None]) -> None: ...


class ServedDaemon(Protocol):
    """What the server needs from the daemon it serves."""

    @property
    def bus(self) -> Bus: ...
    async def execute(self, line: str, reply: Any) -> None: ...
    def request_end(self) -> None: ...
    def report(self, message: str) -> None: ...


class Reply:
    """Where one command line's output goes: back to the connection that sent it.

    Once that client has gone, whatever the command still says is dropped.
    """

    __slots__ = ("_conn", "_rid", "width")

    def __init__(self, conn: Connection, rid: int) -> None:
        self._conn = conn
        self._rid = rid
        self.width: int | None = None

    def out(self, line: Line) -> None:
        text = line if isinstance(line, str) else plain(line)
        self._conn.send(protocol.out(self._rid, text.removesuffix("\n")))

    def lines(self, lines: list[Line]) -> None:
        for line in lines:
            self.out(line)

    def notice(self, text: str) -> None:
        self._conn.send(protocol.err(self._rid, text.removesuffix("\n")))

    def err(self, text: str) -> None:
        self._conn.send(protocol.err(self._rid, text.removesuffix("\n")))


class Connection(asyncio.Protocol):
    """One client: its request lines in, its replies and subscribed events out."""

    def __init__(self, server: SocketServer) -> None:
        self.server = server
        self.daemon = server.daemon
        self.closed = False
        self.peer = "?"
        self._transport: asyncio.Transport | None = None
        self._inbuf = bytearray()
        self._discarding = False  # inside a line over the limit, until its newline
        self._outbuf: list[bytes] = []
        self._outsize = 0
        # Events handed while it was not reading: written, in order and before
        # anything else, once its transport has drained (or something else is sent).
        self._held: list[Held] = []
        self._held_size = 0
        self._watching = False  # transport limits lowered: resume_writing when drained
        # A lossy subscriber loses events past its bound instead of being cut off;
        # `dropped` counts them until it is told (take_dropped).
        self.lossy = False
        self.dropped = 0
        self._flush_scheduled = False
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._queue: deque[protocol.Request] = deque()
        self._paused = False
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._running: int | None = None  # the id of the request being executed
        self._interrupted: int | None = None
        self._failed = False  # a line failed: later strict requests are skipped
        self._eof = False
        self.gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, yet behave as one.
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        try:
            allowed, uid = peer_allowed(sock)
        except OSError as exc:
            allowed, uid = False, -1
            self.daemon.report(f"control socket: cannot check a client: {exc.strerror}")
        self.peer = f"uid {uid}"
        if not allowed:
            self.daemon.report(f"control socket: refused a connection from {self.peer}")
            self._say_bye(f"refused: {self.peer} may not use this taskd (only uid {os.geteuid()})")
            return
        if len(self.server.connections) >= self.server.max_clients:
            self._say_bye(f"refused: too many clients ({self.server.max_clients})")
            return
        self.server.connections.add(self)
        # The transport says when it holds more than the bound (pause_writing) and
        # when it has room again: the client's next command waits for that.
        self._transport.set_write_buffer_limits(high=self.server.max_buffer)
        self.send(self.server.hello)
        self._worker = asyncio.get_running_loop().create_task(
            self._work(), name="taskd-socket-client"
        )

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        buf = self._inbuf
        buf += data
        start = 0
        while not self.closed:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            if self._discarding:
                self._discarding = False
            else:
                self._handle(bytes(buf[start:end]))
            start = end + 1
        del buf[:start]
        if len(buf) > protocol.MAX_LINE and not self.closed:
            if not self._discarding:
                self._discarding = True
                self.send(protocol.err(None, f"line too long (over {protocol.MAX_LINE} bytes)"))
            buf.clear()

    def eof_received(self) -> bool:
        if self._peer_gone():
            # Closed (or killed): whatever it asked is dropped, and a command still
            # running for it (a `wait`, say) is cancelled. Its tasks go on.
            self._closed()
            return False
        # Only its writing side was shut (socat, a script done sending): its queued
        # lines still run and their replies go out, then the connection closes.
        self._eof = True
        self._wakeup.set()
        return True

    def _peer_gone(self) -> bool:
        """At EOF: has the peer closed the socket, not merely shut its writing side?
        Linux reports POLLHUP on a Unix socket only in the first case."""
        sock = self._transport.get_extra_info("socket") if self._transport else None
        if sock is None:
            return True
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return any(mask & select.POLLHUP for _fd, mask in poller.poll(0))

    def _shrink_send_buffer(self) -> None:
        """See SUBSCRIBER_SNDBUF. Best effort: a socket that refuses keeps its own."""
        sock = self._transport.get_extra_info("socket") if self._transport else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SUBSCRIBER_SNDBUF)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed()
        if not self.gone.done():
            self.gone.set_result(None)

    # -- in ----------------------------------------------------------------------------

    def _handle(self, raw: bytes) -> None:
        req = protocol.parse_request(raw)
        if isinstance(req, protocol.ProtocolError):
            self.send(protocol.err(req.rid, req.message))
            if req.rid is not None:
                self.send(protocol.done(req.rid, False))
            if req.fatal:
                self._say_bye(req.message)
            return
        if req.subscribe:
            self._shrink_send_buffer()
            self.server.subscribe(self, req.lossy)
            self.send(protocol.done(req.rid, True))
        elif req.cancel is not None:
            self.send(protocol.done(req.rid, self._cancel(req.cancel)))
        elif req.line is None:  # {"subscribe": false}
            self.server.unsubscribe(self)
            self.send(protocol.done(req.rid, True))
        else:
            self._queue.append(req)
            self._wakeup.set()
            if len(self._queue) >= MAX_QUEUED and self._transport and not self._paused:
                self._paused = True
                self._transport.pause_reading()

    def _cancel(self, target: int) -> bool:
        if self._running == target and self._worker is not None:
            self._interrupted = target
            self._worker.cancel()
            return True
        for req in self._queue:
            if req.rid == target:
                self._queue.remove(req)
                self.send(protocol.err(target, "cancelled before it ran"))
                self.send(protocol.done(target, False))
                return True
        return False

    async def _work(self) -> None:
        """Run this client's command lines in order, each to its done reply."""
        since_yield = 0
        while not self.closed:
            if self._paused and len(self._queue) <= MAX_QUEUED // 10:
                self._paused = False
                if self._transport is not None:
                    self._transport.resume_reading()
            if not self._queue:
                if self._eof:
                    self._say_bye(None)  # the client said all it will: all answered
                    return
                # All it asked is answered: the replies go now, not after the rest of
                # this loop iteration (thousands of steps under load).
                self._flush()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._room()
            await self._run(self._queue.popleft())
            since_yield += 1
            if since_yield >= YIELD_EVERY:
                since_yield = 0
                await asyncio.sleep(0)

    async def _room(self) -> None:
        """A client's replies are never cut off (one `show --json` can be larger than
        the bound), but its next command waits while what it has not taken is over
        the bound: a client that asks and never reads holds only its own requests.
        Pushed events are another matter: past the bound, the client is cut off."""
        self._flush()
        transport = self._transport
        if transport is not None and transport.get_write_buffer_size() > self.server.max_buffer:
            # Over the bound with the transport's pause already spent (it was asked
            # while held events were watched, and ignored): resume_writing ends it.
            self._can_write.clear()
        while not self.closed and not self._can_write.is_set():
            await self._can_write.wait()  # resume_writing(), or the connection's end

    def pause_writing(self) -> None:
        if not self._watching:  # while watching, the held events are checked instead
            self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()
        if self._watching:
            self._release()  # drained: it reads after all

    async def _run(self, req: protocol.Request) -> None:
        rid = req.rid
        if req.strict and self._failed:
            self.send(protocol.done(rid, False, skipped=True))
            return
        assert req.line is not None
        reply = Reply(self, rid)
        ok = False
        self._running = rid
        asking = ASKER.set(self)  # this task's context: what the command causes is ours
        try:
            await self.daemon.execute(req.line, reply)
            ok = True
        except CommandError as exc:
            reply.err(str(exc))
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self.closed or self._interrupted != rid or task is None:
                raise
            task.uncancel()
            reply.err("interrupted")
        except Exception as exc:  # a bug in a command: the daemon and this client go on
            self.daemon.report(f"error: {req.line!r} raised {type(exc).__name__}: {exc}")
            reply.err(f"internal error: {type(exc).__name__}: {exc}")
        finally:
            ASKER.reset(asking)
            self._running = None
            self._interrupted = None
        if not ok:
            self._failed = True
        self.send(protocol.done(rid, ok))

    # -- out ---------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue DATA (a reply, a protocol line) for this client; never blocks, never
        waits, and is never cut off for its size (see _room)."""
        if self.closed:
            return
        if not self.server.flush_before(self):
            return  # the events before it took it past its bound: cut off
        self._outbuf.append(data)
        self._outsize += len(data)
        if self._outsize >= WRITE_AT:
            self._flush()  # a burst: let the kernel's buffer take its share now
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def backlog(self) -> int:
        """Bytes queued for this client and not yet taken by its socket (for held
        events, an upper bound)."""
        transport = self._transport
        return (
            self._outsize
            + self._held_size
            + (transport.get_write_buffer_size() if transport else 0)
        )

    def behind(self, size: int) -> bool:
        """Is SIZE or more waiting in its transport, beyond what its socket took?"""
        transport = self._transport
        return transport is not None and transport.get_write_buffer_size() >= size

    def take_dropped(self) -> bytes:
        """The line that tells this client how many events it lost; the count restarts."""
        count, self.dropped = self.dropped, 0
        return protocol.dropped(count)

    def write_events(self, data: bytes) -> None:
        """Events gathered for all subscribers, after what was queued before them."""
        if self.closed or self._transport is None:
            return
        if self._outbuf or self._held or self.dropped:
            self._flush()  # what came first, and how many were lost before these
        self._transport.write(data)

    def hold(self, held: Held) -> None:
        """Events gathered for all subscribers while none was reading: kept as they
        are until this one's transport drains (resume_writing, with the limits
        lowered to nothing), then encoded and written."""
        transport = self._transport
        if self.closed or transport is None:
            return
        if self._outbuf:
            self._flush()
        self._held.append(held)
        self._held_size += held.size
        self._watch(transport)

    def lose(self, count: int) -> None:
        """COUNT events this lossy subscriber could not take: it is told how many as
        soon as its transport has drained, or with the next events it takes."""
        self.dropped += count
        if not self.closed and self._transport is not None:
            self._watch(self._transport)

    def _watch(self, transport: asyncio.Transport) -> None:
        if not self._watching:
            self._watching = True
            transport.set_write_buffer_limits(high=0)  # pause_writing now, resume drained
        if not transport.get_write_buffer_size():
            self._release()  # drained already: no resume_writing is coming

    def _release(self) -> None:
        """Write the held events (first of what is queued), then how many events were
        lost after them; and watch no longer."""
        transport = self._transport
        if self._watching and transport is not None and not self.closed:
            self._watching = False
            transport.set_write_buffer_limits(high=self.server.max_buffer)
        if self.closed or transport is None:
            return
        held = self._held
        if held:
            data = b"".join([h.encoded() for h in held]) if len(held) > 1 else held[0].encoded()
            held.clear()
            self._held_size = 0
            transport.write(data)
        if self.dropped:
            transport.write(self.take_dropped())

    def cut_off(self) -> None:
        """Past the bound with events: the client was not reading, and nobody waits
        for it."""
        if self.closed:
            return
        self._outbuf.clear()
        self._held.clear()
        self._held_size = 0
        if self._transport is not None:
            self._transport.abort()
        self._closed()  # first: the report is an event, which must not come back here
        self.daemon.report(
            f"control socket: a client ({self.peer}) stopped reading; over "
            f"{self.server.max_buffer} bytes were waiting for it: disconnected"
        )

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self.closed or self._transport is None:
            return
        if self._held or self.dropped:
            self._release()  # they came first (and those lost after them)
        if not self._outbuf:
            return
        data = b"".join(self._outbuf) if len(self._outbuf) > 1 else self._outbuf[0]
        self._outbuf.clear()
        self._outsize = 0
        self._transport.write(data)

    def _say_bye(self, reason: str | None) -> None:
        """Send what is queued and a last line saying why (if REASON), then close."""
        if self._transport is None or self._transport.is_closing():
            self._closed()
            return
        if not self.closed:
            if not self.server.flush_before(self):
                return  # the events before the last line took it past its bound
            self._flush()
        if reason is not None:
            self._transport.write(protocol.bye(reason))
        self._transport.close()
        self._closed()

    def _closed(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._queue.clear()
        self._held.clear()
        self._held_size = 0
        self.server.unsubscribe(self)
        self.server.connections.discard(self)
        worker = self._worker
        if worker is not None and worker is not asyncio.current_task():
            # The running command (a `wait`, say) goes; its tasks go on. Asked from no
            # task's context: a cut-off comes in that of the task whose output passed
            # the bound, and a task's cancel of taskd's own tasks is refused.
            contextvars.Context().run(worker.cancel)
        self._wakeup.set()
        self._can_write.set()

    def say_bye(self, reason: str) -> None:
        self._say_bye(reason)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()
        self._closed()
