"""The control socket's protocol: JSON lines, one object a line, UTF-8.

Kept to `json` alone so a one-shot client, or anyone's script, pays nothing for it.
Both directions are documented in the README ("The control socket"). Decoding never
raises on what a peer sent: garbage comes back as a ProtocolError value, to be
answered with one error reply.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False  # typing is not imported at run time: the light clients' start
if TYPE_CHECKING:
    from typing import Any

VERSION = 1
MAX_LINE = 1 << 20  # bytes in one request line, newline excluded

_quote = json.encoder.encode_basestring  # a JSON string, non-ASCII kept (C-accelerated)
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
_dumps_ascii = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=str).encode


def encode(obj: dict[str, Any]) -> bytes:
    """One protocol line. Text that is not valid Unicode (lone surrogates from bytes a
    task wrote) goes out as JSON escapes instead of breaking the line."""
    try:
        return (_dumps(obj) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (_dumps_ascii(obj) + "\n").encode("ascii")


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


def event(task: str, name: str, ts: float, fields: dict[str, Any], text: str | None) -> bytes:
    if name == "output" and text is not None and len(fields) == 1:
        # A task's output line, by far the most frequent event: built from quoted
        # strings (the C encoder's) instead of a nested dict, four times cheaper.
        line = (
            f'{{"event":{{"task":{_quote(task)},"name":"output","ts":{ts!r},'
            f'"fields":{{"text":{_quote(fields["text"])}}},"text":{_quote(text)}}}}}\n'
        )
        try:
            return line.encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: the general way escapes it
    return encode({"event": {"task": task, "name": name, "ts": ts, "fields": fields, "text": text}})


def output_event(task: str, ts: float, line: str) -> bytes | None:
    """event() of a task's output LINE shown as the shell shows it, "[TASK] LINE"
    (formatting.present_plain), in one call: 100,000 lines a second go through here
    for every attached client. None for a line event() must escape (a lone
    surrogate). JSON quoting is per character, so the shown text's quoted form is
    put together from the quoted name and line."""
    name = _quote(task)
    text = _quote(line)
    try:
        return (
            f'{{"event":{{"task":{name},"name":"output","ts":{ts!r},"fields":{{"text":{text}}},'
            f'"text":"[{name[1:-1]}] {text[1:]}}}}}\n'
        ).encode()
    except UnicodeEncodeError:
        return None


# The longest repr() of a float: sign, 17 digits, point, exponent (-2.2250738585072014e-308).
_FLOAT_MAX = 24
# output_event()'s bytes besides its quoted name and line (each twice, less quotes) and ts.
_OUTPUT_FIXED = len(output_event("", 0.0, "") or b"") - len(repr(0.0)) - 4 * len('""')


def output_event_bound(task: str, line: str) -> int | None:
    """The most bytes output_event(TASK, ts, LINE) can take, whatever ts (over by
    24 less the length of ts's repr, 6 to 12 bytes today): what a client that is not
    reading is charged for a line it is not sent yet, not encoded (sockserver.py).
    None unless both are ASCII, whose quoted form is their size: other text is
    encoded, its size known."""
    name = _quote(task)
    text = _quote(line)
    if name.isascii() and text.isascii():
        return _OUTPUT_FIXED + _FLOAT_MAX + 2 * len(name) + 2 * len(text)
    return None


def bye(reason: str) -> bytes:
    return encode({"bye": reason})


# -- what the client sends ---------------------------------------------------------


def request(rid: int, line: str, strict: bool = False) -> bytes:
    req: dict[str, Any] = {"id": rid, "line": line}
    if strict:
        req["strict"] = True
    return encode(req)


def subscribe(rid: int) -> bytes:
    return encode({"id": rid, "subscribe": True})


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

    __slots__ = ("rid", "line", "subscribe", "cancel", "strict")

    def __init__(
        self,
        rid: int,
        line: str | None = None,
        subscribe: bool = False,
        cancel: int | None = None,
        strict: bool = False,
    ) -> None:
        self.rid = rid
        self.line = line
        self.subscribe = subscribe
        self.cancel = cancel
        self.strict = strict

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


def decode(raw: bytes) -> dict[str, Any] | ProtocolError:
    """One received line (its newline optional) as a JSON object, or what was wrong."""
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    try:
        text = text_of(raw, MAX_LINE)
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
        return Request(rid, subscribe=obj["subscribe"])
    target = obj["cancel"]
    if not _is_int(target):
        return ProtocolError('"cancel" must be the integer id of a request', rid)
    return Request(rid, cancel=target)
