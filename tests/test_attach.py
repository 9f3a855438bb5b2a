"""`taskd attach`'s side of the socket, in process: what it makes of pushed lines.
(The real program in a pty is in tests/test_daemon_socket.py.)"""

from __future__ import annotations

import asyncio
import json
import socket

from taskd import protocol
from taskd.fragments import Line, plain
from taskd.frontends.attach import RemoteDaemon


class _Screen:
    """An Output that says which way each line came: a reply's (never dropped) or a
    pushed event's (dropped past what the terminal can take)."""

    def __init__(self) -> None:
        self.shown: list[tuple[str, str]] = []

    def line(self, line: Line) -> None:
        self.shown.append(("reply", plain(line)))

    def event_line(self, line: Line) -> None:
        self.shown.append(("event", plain(line)))

    def error(self, text: str) -> None:
        self.shown.append(("error", text))


def _event(task: str, name: str, **fields: object) -> bytes:
    return (json.dumps({"event": {"task": task, "name": name, "fields": fields}}) + "\n").encode()


async def test_pushed_lines_show_as_events_and_the_finished_are_kept_to_the_history() -> None:
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_unix_connection(sock=ours)
    daemon = RemoteDaemon(reader, writer)
    daemon.engine.registry.history = 3
    screen = _Screen()
    daemon.output = screen  # type: ignore[assignment]
    pushed = [_event(f"t{i}", "started", kind="idle") for i in range(10)]
    pushed.append(protocol.output([("t0", 1.0, "hello"), ("t1", 1.5, "world")]))
    pushed += [_event(f"t{i}", "done", runtime_s=0.5) for i in range(10)]
    pushed.append(protocol.dropped(7))  # it fell behind: the daemon lost 7 for it
    pushed.append(protocol.bye("taskd ended"))
    theirs.sendall(b"".join(pushed))
    await asyncio.wait_for(daemon.read_forever(), 5)
    registry = daemon.engine.registry
    assert list(registry.finished) == ["t7", "t8", "t9"]  # the daemon's history size
    assert registry.finished_count == 10 and not registry.live
    assert screen.shown[:2] == [("event", "[t0] hello"), ("event", "[t1] world")]
    assert {how for how, _ in screen.shown[:-1]} == {"event"}
    assert len(screen.shown) == 13  # the two lines, ten ends, and the loss told
    assert screen.shown[-1] == (
        "error", "taskd: 7 task events not shown: this client could not keep up\n"
    )
    assert await daemon.bye == "taskd ended"
    resync = daemon._resync  # it asked which tasks there are now: the daemon went
    assert resync is not None
    await asyncio.wait_for(resync, 5)
    daemon.close()
    theirs.close()
