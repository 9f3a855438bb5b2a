"""The control socket's protocol: JSON lines, one object a line, UTF-8.

Kept to `json` alone so a one-shot client, or anyone's script, pays nothing for it.
Both directions are documented in the README ("The control socket"). Decoding never
raises on what a peer sent: garbage comes back as a ProtocolError value, to be
answered with one error reply.
"""

from __future__ import annotations

import json
import operator

TYPE_CHECKING = False  # typing is not imported at run time: the light clients' start
if TYPE_CHECKING:
    from typing import Any

VERSION = 2  # 2: every `ts` is whole microseconds since the Unix epoch (an integer)
# A time's microseconds are kept within this (a virtual clock can run far ahead):
# output_bound() counts on at most 20 characters for one.
MAX_MICROS = 10**19 - 1
MAX_LINE = 1 << 20  # bytes in one request line, newline excluded
# Bytes in one line a client takes from the daemon: a reply can be far longer than a
# request (`show --json` of 50,000 tasks is one line of 15 MB); the bound only keeps
# a broken peer from filling a client's memory.
MAX_REPLY = 1 << 30

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
_dumps_ascii = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=str).encode


def encode(obj: dict[str, Any]) -> bytes:
    """One protocol line. Text that is not valid Unicode (lone surrogates from bytes a
    task wrote) goes out as JSON escapes instead of breaking the line."""
    try:
        return (_dumps(obj) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (_dumps_ascii(obj) + "\n").encode("ascii")


def other_version(path: str, hello: dict[str, Any]) -> str:
    """What a client says of the daemon at PATH whose first line, HELLO, names another
    protocol: most often a daemon started before taskd was upgraded, which this
    client can no longer stop (SIGTERM ends a daemon as `taskd stop` does)."""
    pid = hello.get("pid")
    how = (
        f"`kill {pid}` ends it as `taskd stop` would"
        if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0
        else "end it with the taskd that started it"
    )
    return (
        f"the daemon at {path} is another version of taskd (protocol "
        f"{str(hello.get('taskd'))[:20]}; this one speaks {VERSION}): {how}"
    )


# -- what the server sends -------------------------------------------------------


def hello(pid: int, version: str) -> bytes:
    return encode({"taskd": VERSION, "pid": pid, "version": version})


def out(rid: int | None, text: str) -> bytes:
    return encode({"id": rid, "out": text})


def err(rid: int | None, message: str) -> bytes:
    return encode({"id": rid, "err": message})


def done(rid: int | None, ok: bool, skipped: bool = False) -> bytes:
    reply: dict[str, Any] = {"id": rid, "done": True, "ok": ok}
    if skipped:
        reply["skipped"] = True
    return encode(reply)


def micros(ts: float) -> int:
    """TS (seconds since the epoch) as the protocol gives it: whole microseconds. An
    integer because a float's shortest repr() is the dearest part of encoding a line
    (README, Performance); exact, and within MAX_MICROS (NaN is 0)."""
    us = ts * 1_000_000
    if -MAX_MICROS < us < MAX_MICROS:
        return int(us)
    return 0 if us != us else MAX_MICROS if us > 0 else -MAX_MICROS


def event(task: str, name: str, ts: float, fields: dict[str, Any], text: str | None) -> bytes:
    return encode(
        {"event": {"task": task, "name": name, "ts": micros(ts), "fields": fields, "text": text}}
    )


_lines = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode
_lines_ascii = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
_TASKS = operator.itemgetter(0)
_TIMES = operator.itemgetter(1)
_TEXTS = operator.itemgetter(2)
_MICRO = (1_000_000.0).__mul__


def output(lines: list[tuple[str, float, str]]) -> bytes:
    """Task output LINES, (task, ts, text) each in the order printed, as one message:
    {"output": [[task, ts, text], ...]}, ts in micros(). The most frequent thing a
    client is sent (100,000 lines a second to each attached client): one C encoder
    call for a run of lines, and a third of the bytes of an event each. The times are
    made integers here, for the lines encoded: a client far behind holds its lines
    as they came, and most are never encoded (sockserver.Held)."""
    try:
        times = list(map(int, map(_MICRO, map(_TIMES, lines))))  # C calls, no frame
        if times and not -MAX_MICROS < min(times) <= max(times) < MAX_MICROS:
            raise OverflowError
    except (OverflowError, ValueError):  # a time out of range, inf or NaN: the long way
        times = [micros(ts) for ts in map(_TIMES, lines)]
    items = list(zip(map(_TASKS, lines), times, map(_TEXTS, lines), strict=True))
    try:
        return b'{"output":' + _lines(items).encode("utf-8") + b"}\n"
    except UnicodeEncodeError:  # a lone surrogate (bytes a task wrote): escaped instead
        return b'{"output":' + _lines_ascii(items).encode("ascii") + b"}\n"


# output()'s bytes for a line besides the characters of its task and text: brackets,
# quotes, commas, and the longest ts (-MAX_MICROS); and the comma between two lines.
_LINE_FIXED = len('["",,""]') + len(str(-MAX_MICROS))
_BETWEEN = len(",")
_OUTPUT_FIXED = len(b'{"output":[]}\n')
_quote_ascii = json.encoder.encode_basestring_ascii  # C: ASCII text's exact JSON form


def output_bound(lines: list[tuple[str, float, str]]) -> int:
    """The most bytes output(LINES) can take: what a client that is not reading is
    charged for lines not encoded yet (sockserver.py), without encoding them. Text of
    printable ASCII with no quote or backslash is its own size in JSON: that case is
    settled in a few C calls for the whole run. Otherwise each line's ASCII text is
    measured quoted, and any other character counted at 12 bytes, the most it can
    take (an astral one escaped as two \\uXXXX when a lone surrogate makes the run
    ASCII)."""
    text = "".join(map(_TASKS, lines)) + "".join(map(_TEXTS, lines))
    total = _OUTPUT_FIXED + _LINE_FIXED * len(lines) + _BETWEEN * max(len(lines) - 1, 0)
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return total + len(text)
    for task, _ts, line in lines:  # line by line, then
        for part in (task, line):
            total += len(_quote_ascii(part)) - 2 if part.isascii() else 12 * len(part)
    return total


def dropped(count: int) -> bytes:
    """To a lossy subscriber: COUNT task events were dropped while it was behind."""
    return encode({"dropped": count})


def bye(reason: str) -> bytes:
    return encode({"bye": reason})


# -- what the client sends ---------------------------------------------------------


def request(rid: int, line: str, strict: bool = False) -> bytes:
    req: dict[str, Any] = {"id": rid, "line": line}
    if strict:
        req["strict"] = True
    return encode(req)


def subscribe(rid: int, lossy: bool = False) -> bytes:
    req: dict[str, Any] = {"id": rid, "subscribe": True}
    if lossy:
        req["lossy"] = True
    return encode(req)


def cancel(rid: int, target: int) -> bytes:
    return encode({"id": rid, "cancel": target})


# -- decoding ----------------------------------------------------------------------


class ProtocolError:
    """What was wrong with a line a peer sent. A value, not an exception: the caller
    answers it (FATAL: then closes the connection) and goes on."""

    __slots__ = ("rid", "message", "fatal")

    def __init__(self, message: str, rid: int | None = None, fatal: bool = False) -> None:
        self.message = message
        self.rid = rid
        self.fatal = fatal

    def __repr__(self) -> str:
        return f"ProtocolError({self.message!r}, rid={self.rid!r}, fatal={self.fatal})"


class Request:
    """One well-formed request: exactly one of LINE, SUBSCRIBE or CANCEL is set."""

    __slots__ = ("rid", "line", "subscribe", "cancel", "strict", "lossy")

    def __init__(
        self,
        rid: int,
        line: str | None = None,
        subscribe: bool = False,
        cancel: int | None = None,
        strict: bool = False,
        lossy: bool = False,
    ) -> None:
        self.rid = rid
        self.line = line
        self.subscribe = subscribe
        self.cancel = cancel
        self.strict = strict
        self.lossy = lossy  # a subscriber that would rather lose events than be cut off

    def __repr__(self) -> str:
        return (
            f"Request({self.rid}, line={self.line!r}, subscribe={self.subscribe}, "
            f"cancel={self.cancel}, strict={self.strict})"
        )


class BadLine(ValueError):
    """A command or protocol line that cannot be read, with the one-line reason that
    script mode, `taskd send` and the socket all give."""


def too_long(length: int, limit: int) -> BadLine:
    return BadLine(f"line too long ({length} bytes; the limit is {limit})")


def text_of(raw: bytes, limit: int) -> str:
    """RAW (no newline) as text; BadLine if it is over LIMIT bytes or not UTF-8."""
    if len(raw) > limit:
        raise too_long(len(raw), limit)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadLine(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
        ) from None


def decode(raw: bytes, limit: int = MAX_LINE) -> dict[str, Any] | ProtocolError:
    """One received line (its newline optional) as a JSON object, or what was wrong;
    a line over LIMIT bytes is wrong (a request's limit unless told)."""
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    try:
        text = text_of(raw, limit)
    except BadLine as exc:
        return ProtocolError(str(exc))
    try:
        obj = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, and huge integers
        return ProtocolError(f"not JSON: {str(exc).splitlines()[0][:200]}")
    except RecursionError:
        return ProtocolError("not JSON: nested too deeply")
    if not isinstance(obj, dict):
        return ProtocolError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_request(raw: bytes) -> Request | ProtocolError:
    """A client's line as a Request, or the one error to answer it with."""
    obj = decode(raw)
    if isinstance(obj, ProtocolError):
        return obj
    rid = obj.get("id")
    if not _is_int(rid):
        return ProtocolError('a request needs an integer "id"')
    assert isinstance(rid, int)
    version = obj.get("taskd", VERSION)
    if version != VERSION:
        return ProtocolError(
            f"protocol version {str(version)[:20]} is not supported (this daemon speaks {VERSION})",
            rid,
            fatal=True,
        )
    kinds = [key for key in ("line", "subscribe", "cancel") if key in obj]
    if len(kinds) != 1:
        return ProtocolError('a request has exactly one of "line", "subscribe", "cancel"', rid)
    strict = obj.get("strict", False) is True
    if "line" in obj:
        line = obj["line"]
        if not isinstance(line, str):
            return ProtocolError('"line" must be a string', rid)
        if "\n" in line or "\r" in line:
            return ProtocolError('"line" holds one command line, without newlines', rid)
        return Request(rid, line=line, strict=strict)
    if "subscribe" in obj:
        if not isinstance(obj["subscribe"], bool):
            return ProtocolError('"subscribe" must be true or false', rid)
        lossy = obj.get("lossy", False)
        if not isinstance(lossy, bool):
            return ProtocolError('"lossy" must be true or false', rid)
        return Request(rid, subscribe=obj["subscribe"], lossy=lossy)
    target = obj["cancel"]
    if not _is_int(target):
        return ProtocolError('"cancel" must be the integer id of a request', rid)
    return Request(rid, cancel=target)
