"""The one-shot clients: `taskd send`, `taskd status`, `taskd stop`.

They run once and exit, so they are plain blocking code on the standard library's
lightest modules: no asyncio, no prompt-toolkit, no engine. What they print follows
script mode: replies on stdout, errors on stderr as SOURCE:LINE: error: MESSAGE.
Exit status: 0, 1 when a command failed, 2 for usage errors, 3 when no daemon runs.
"""

from __future__ import annotations

import json
import os
import select
import socket
import sys
import time
from collections import deque

from . import protocol
from .linesplit import LineSplitter, LineTooLong
from .sockpath import default_path

TYPE_CHECKING = False  # typing is not imported at run time: the light clients' start
if TYPE_CHECKING:
    from typing import Any

OK, FAILED, USAGE, NO_DAEMON = 0, 1, 2, 3
WINDOW = 256  # requests sent ahead of their replies
MAX_LINE = 64 * 1024  # a command line, as in script mode
STOP_WAIT = 60.0  # seconds `stop` waits for the daemon's process to go


class ClientError(Exception):
    """One line for the user, and the exit status to leave with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def no_daemon(path: str) -> ClientError:
    where = "" if path == default_path() else f" --socket {path}"
    return ClientError(
        f"taskd: no daemon is running at {path} (start one with: taskd serve --detach{where})",
        NO_DAEMON,
    )


class Connection:
    """A blocking connection to the daemon, past its hello line."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            self.sock.close()
            raise no_daemon(path) from None
        except OSError as exc:
            self.sock.close()
            raise ClientError(f"taskd: error: cannot reach {path}: {exc.strerror}", USAGE) from None
        self._lines: deque[bytes] = deque()
        self._partial: list[bytes] = []  # a line's start, until its newline comes
        self.next_id = 0
        hello = self.receive()
        if hello is None or "bye" in hello:
            reason = hello["bye"] if hello else "it closed the connection"
            self.close()
            raise ClientError(f"taskd: error: the daemon at {path} refused: {reason}", USAGE)
        if hello.get("taskd") != protocol.VERSION:
            self.close()
            raise ClientError(f"taskd: error: {protocol.other_version(path, hello)}", USAGE)
        pid = hello.get("pid")
        self.pid = pid if isinstance(pid, int) else None
        self.version = str(hello.get("version", "?"))

    def fill(self) -> bool:
        """Read what the socket has (blocking until something); False at its end."""
        try:
            data = self.sock.recv(1 << 18)
        except OSError:
            data = b""
        if not data:
            return False
        if b"\n" not in data:
            self._partial.append(data)  # a long reply: joined once, when it is whole
            return True
        *whole, tail = data.split(b"\n")
        if self._partial:
            whole[0] = b"".join([*self._partial, whole[0]])
            self._partial.clear()
        self._lines.extend(whole)
        if tail:
            self._partial.append(tail)
        return True

    def has_line(self) -> bool:
        return bool(self._lines)

    def receive(self) -> dict[str, Any] | None:
        """The daemon's next line, or None at the end of the connection."""
        while not self._lines:
            if not self.fill():
                return None
        obj = protocol.decode(self._lines.popleft(), protocol.MAX_REPLY)
        if isinstance(obj, protocol.ProtocolError):
            raise ClientError(
                f"taskd: error: unexpected reply from the daemon: {obj.message}", FAILED
            )
        return obj

    def request(self, line: str, strict: bool = False) -> int:
        self.next_id += 1
        try:
            self.sock.sendall(protocol.request(self.next_id, line, strict))
        except OSError:
            pass  # the daemon is gone: reading says how
        return self.next_id

    def ask(self, line: str) -> tuple[list[str], list[str], bool]:
        """Send LINE and collect its replies (events, if any, are skipped)."""
        rid = self.request(line)
        outs: list[str] = []
        errs: list[str] = []
        while True:
            obj = self.receive()
            if obj is None or "bye" in obj:
                raise gone(obj)
            if obj.get("id") != rid:
                continue
            if "out" in obj:
                outs.append(str(obj["out"]))
            elif "err" in obj:
                errs.append(str(obj["err"]))
            elif obj.get("done"):
                return outs, errs, obj.get("ok") is True

    def close(self) -> None:
        self.sock.close()


def gone(obj: dict[str, Any] | None) -> ClientError:
    """The daemon ended, or closed this connection, before answering."""
    reason = str(obj["bye"]) if obj else "closed the connection"
    if reason == "taskd ended":
        return ClientError("taskd: error: the daemon ended before answering", FAILED)
    return ClientError(f"taskd: error: the daemon closed the connection: {reason}", FAILED)


# -- send ----------------------------------------------------------------------------


def source_of(words: list[str]) -> str | None:
    """'-' or a FILE when WORDS name one (a single word that is '-' or an existing
    file), else None: the words are one command line."""
    if len(words) == 1 and (words[0] == "-" or os.path.isfile(words[0])):
        return words[0]
    return None


class _Out:
    """stdout and stderr as bytes, flushed only before waiting; a reader gone away
    (`| head`) ends the run quietly with status 1."""

    def __init__(self) -> None:
        self.lost = False

    def write(self, text: str, stream: Any) -> None:
        if self.lost:
            return
        data = text + "\n"
        try:
            encoded = data.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            encoded = data.encode("utf-8", "replace")
        try:
            stream.buffer.write(encoded)
        except BrokenPipeError:
            self._lose(stream)

    def flush(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BrokenPipeError:
                self._lose(stream)

    def _lose(self, stream: Any) -> None:
        self.lost = True
        # Point the stream at /dev/null so the interpreter's last flush is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def send(socket_path: str, words: list[str], strict: bool = False) -> int:
    """`taskd send`: run WORDS as one command line, or the lines of '-' / FILE."""
    if not words:
        print("taskd: error: send needs a command, '-' or a FILE", file=sys.stderr)
        return USAGE
    source = source_of(words)
    try:
        conn = Connection(socket_path)
    except ClientError as exc:
        print(exc, file=sys.stderr)
        return exc.status
    try:
        if source is None:
            return _send_one(conn, " ".join(words))
        return _send_lines(conn, source, strict)
    except ClientError as exc:
        print(exc, file=sys.stderr)
        return exc.status
    finally:
        conn.close()


def _send_one(conn: Connection, line: str) -> int:
    out = _Out()
    outs, errs, ok = conn.ask(line)
    for text in outs:
        out.write(text, sys.stdout)
    for text in errs:
        out.write(f"taskd: error: {text}", sys.stderr)
    out.flush()
    return FAILED if out.lost or not ok else OK


def _send_lines(conn: Connection, source: str, strict: bool) -> int:
    label = "<stdin>" if source == "-" else source
    if source == "-":
        fd = sys.stdin.fileno()
    else:
        try:
            fd = os.open(source, os.O_RDONLY)
        except OSError as exc:
            print(f"taskd: error: cannot read {source}: {exc.strerror}", file=sys.stderr)
            return USAGE
    try:
        return _pump(conn, fd, label, strict)
    finally:
        if source != "-":
            os.close(fd)


class _Source:
    """Command lines from a file descriptor, read only when select() says so; a line
    over MAX_LINE is refused in its place without being kept (linesplit.py)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.eof = False
        self._lines = LineSplitter(MAX_LINE + 1)  # +1: a CR before the LF

    def read(self) -> list[bytes | _Refused]:
        chunk = os.read(self.fd, 1 << 16)
        if chunk:
            lines = self._lines.feed(chunk)
        else:
            self.eof = True
            lines = self._lines.end()
        return [
            _Refused(str(protocol.too_long(line.length, MAX_LINE)))
            if isinstance(line, LineTooLong)
            else line
            for line in lines
        ]


def _pump(conn: Connection, fd: int, label: str, strict: bool) -> int:
    """Send each line as it comes, at most WINDOW ahead of the replies, and print the
    replies as they come: a slow pipe's output is never held back by its next line.
    A line refused here (too long, not UTF-8) keeps its place in the order."""
    out = _Out()
    source = _Source(fd)
    queue: deque[tuple[int, str | None, str]] = deque()  # (lineno, line, local error)
    pending: dict[int, int] = {}  # request id -> line number
    lineno = 0
    failed = False

    def fail(number: int, message: str) -> None:
        nonlocal failed
        failed = True
        out.write(f"{label}:{number}: error: {message}", sys.stderr)

    while not out.lost:
        while conn.has_line():
            obj = conn.receive()
            if obj is None or "bye" in obj:
                raise gone(obj)
            rid = obj.get("id")
            if rid not in pending:
                continue  # an event, or a reply to nothing we asked
            if "out" in obj:
                out.write(str(obj["out"]), sys.stdout)
            elif "err" in obj:
                fail(pending[rid], str(obj["err"]))
            elif obj.get("done"):
                del pending[rid]
                if obj.get("ok") is not True:
                    failed = True
        stopped = strict and failed
        while queue and not stopped and len(pending) < WINDOW:
            number, line, error = queue[0]
            if line is None:
                if pending:
                    break  # printed in its turn, after the replies before it
                fail(number, error)
                stopped = strict
            else:
                pending[conn.request(line, strict)] = number
            queue.popleft()
        if not pending and (stopped or (source.eof and not queue)):
            break
        out.flush()
        watched: list[Any] = [conn.sock]
        if not source.eof and not stopped and len(queue) < WINDOW:
            watched.append(fd)
        readable, _, _ = select.select(watched, [], [])
        if conn.sock in readable and not conn.fill():
            raise gone(None)
        if fd in readable:
            for raw in source.read():
                lineno += 1
                checked = raw if isinstance(raw, _Refused) else _check(raw)
                if isinstance(checked, _Refused):
                    queue.append((lineno, None, checked.message))
                elif checked is not None:
                    queue.append((lineno, checked, ""))
    out.flush()
    return FAILED if failed or out.lost else OK


class _Refused:
    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def _check(raw: bytes) -> str | _Refused | None:
    """The line to send; None for blank and comment lines (the daemon would do
    nothing with them); _Refused for a line script mode refuses, with its words."""
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        line = protocol.text_of(raw, MAX_LINE)
    except protocol.BadLine as exc:
        return _Refused(str(exc))
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    return line


# -- status and stop -------------------------------------------------------------------


def _human(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_human(k, v)}" for k, v in value.items()) or "-"
    if key.endswith("_s") and isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
        if seconds < 60:
            return f"{seconds:.1f}s"
        minutes, secs = divmod(int(seconds), 60)
        hours, minutes = divmod(minutes, 60)
        days, hours = divmod(hours, 24)
        if days:
            return f"{days}d{hours:02d}h{minutes:02d}m"
        return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
    return str(value)


def status(socket_path: str) -> int:
    """`taskd status`: is a daemon running there (exit 3 if not), and its figures,
    as the daemon's `status --json` gives them, one `name: value` a line."""
    try:
        conn = Connection(socket_path)
    except ClientError as exc:
        print(exc, file=sys.stderr)
        return exc.status
    try:
        outs, errs, ok = conn.ask("status --json")
    except ClientError as exc:
        print(exc, file=sys.stderr)
        return exc.status
    finally:
        conn.close()
    rows: list[tuple[str, Any]] = [("socket", socket_path), ("pid", conn.pid)]
    rows.append(("version", conn.version))
    details: Any = None
    if ok:
        try:
            details = json.loads("\n".join(outs))
        except ValueError:
            details = None
    if isinstance(details, dict):
        rows.extend((str(k), v) for k, v in details.items() if k not in ("pid", "version"))
    for key, value in rows:
        name = key[:-2] if key.endswith("_s") else key
        print(f"{name}: {_human(key, value)}")
    if not isinstance(details, dict):
        why = errs[0] if errs else "its reply was not a JSON object"
        print(f"taskd: warning: no details from the daemon: {why}", file=sys.stderr)
    return OK


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait until process PID has ended; False if it is still there after TIMEOUT.
    A pidfd says so the moment it happens; without one, look every 50 ms."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (OSError, AttributeError):
        pidfd = -1
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if pidfd >= 0:
                readable, _, _ = select.select([pidfd], [], [], max(left, 0))
                if readable:
                    return True
            else:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return True
                except PermissionError:
                    pass
                select.select([], [], [], min(0.05, max(left, 0)))
            if left <= 0:
                return False
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def stop(socket_path: str, timeout: float = STOP_WAIT) -> int:
    """`taskd stop`: ask the daemon to `end`, then wait (bounded) until it has gone."""
    try:
        conn = Connection(socket_path)
    except ClientError as exc:
        print(exc, file=sys.stderr)
        return exc.status
    pid = conn.pid
    try:
        outs, errs, ok = conn.ask("end")
    except ClientError as exc:
        if exc.status != FAILED:
            print(exc, file=sys.stderr)
            return exc.status
        ok, outs, errs = True, [], []  # it ended before saying done: that is an end
    finally:
        conn.close()
    for text in outs:
        print(text)
    for text in errs:
        print(f"taskd: error: {text}", file=sys.stderr)
    if not ok:
        return FAILED
    if pid is not None and pid != os.getpid() and not _wait_gone(pid, timeout):
        print(
            f"taskd: error: the daemon (pid {pid}) has not ended after {timeout:g} s",
            file=sys.stderr,
        )
        return FAILED
    return OK


# -- console -------------------------------------------------------------------------


def console(socket_path: str) -> int:
    """`taskd console`: the daemon's Python console, relayed between this terminal
    (or pipe) and the console socket until either side ends."""
    from .sockpath import console_path

    path = console_path(socket_path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
        sock.close()
        print(no_daemon(socket_path), file=sys.stderr)
        return NO_DAEMON
    except OSError as exc:
        sock.close()
        print(f"taskd: error: cannot reach {path}: {exc.strerror}", file=sys.stderr)
        return USAGE
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    watched: list[Any] = [sock, stdin]
    try:
        while True:
            readable, _, _ = select.select(watched, [], [])
            if sock in readable:
                data = sock.recv(1 << 16)
                if not data:
                    return OK  # the console ended (Ctrl-D, or the daemon ended)
                try:
                    os.write(stdout, data)
                except BrokenPipeError:
                    return FAILED
            if stdin in readable:
                data = os.read(stdin, 1 << 16)
                if not data:
                    sock.shutdown(socket.SHUT_WR)  # end of input: the console ends
                    watched.remove(stdin)
                else:
                    sock.sendall(data)
    except KeyboardInterrupt:
        return 130
    except OSError:
        return OK  # the daemon went away mid-session
    finally:
        sock.close()
