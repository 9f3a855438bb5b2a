"""The JSON-lines protocol: what each side sends, and garbage never raising."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskd import protocol
from taskd.protocol import ProtocolError, Request


def test_server_lines_are_one_json_object_a_line() -> None:
    assert json.loads(protocol.hello(42, "0.1.0")) == {"taskd": 1, "pid": 42, "version": "0.1.0"}
    assert json.loads(protocol.out(3, "a\nb")) == {"id": 3, "out": "a\nb"}
    assert json.loads(protocol.err(3, "bad")) == {"id": 3, "err": "bad"}
    assert json.loads(protocol.done(3, True)) == {"id": 3, "done": True, "ok": True}
    assert json.loads(protocol.done(3, False, skipped=True)) == {
        "id": 3, "done": True, "ok": False, "skipped": True,
    }  # fmt: skip
    assert json.loads(protocol.bye("taskd ended")) == {"bye": "taskd ended"}
    ev = json.loads(protocol.event("t1", "output", 1.5, {"text": "hi"}, "[t1] hi"))
    assert ev == {
        "event": {"task": "t1", "name": "output", "ts": 1.5, "fields": {"text": "hi"},
                  "text": "[t1] hi"},
    }  # fmt: skip
    for line in (protocol.hello(1, "x"), protocol.out(1, "é\x00\n"), protocol.bye("x")):
        assert line.endswith(b"\n") and line.count(b"\n") == 1


def test_text_that_is_not_unicode_still_makes_one_valid_line() -> None:
    line = protocol.out(1, "bytes \udcff here")
    assert line.count(b"\n") == 1
    assert json.loads(line.decode("ascii"))["out"] == "bytes \udcff here"


def test_fields_json_cannot_hold_are_sent_as_text() -> None:
    ev = json.loads(protocol.event("t", "done", 0.0, {"result": {1, 2}.__class__}, None))
    assert ev["event"]["fields"]["result"] == "<class 'set'>"


def test_requests_round_trip() -> None:
    req = protocol.parse_request(protocol.request(7, "show --json"))
    assert isinstance(req, Request)
    assert (req.rid, req.line, req.strict, req.subscribe, req.cancel) == (
        7, "show --json", False, False, None,
    )  # fmt: skip
    req = protocol.parse_request(protocol.request(8, "new idle", strict=True))
    assert isinstance(req, Request) and req.strict
    req = protocol.parse_request(protocol.subscribe(9))
    assert isinstance(req, Request) and req.subscribe and req.line is None
    req = protocol.parse_request(protocol.cancel(10, 7))
    assert isinstance(req, Request) and req.cancel == 7
    req = protocol.parse_request(b'{"id": 1, "line": "show", "taskd": 1, "future": "ignored"}')
    assert isinstance(req, Request) and req.line == "show"


@pytest.mark.parametrize(
    ("raw", "message", "rid"),
    [
        (b"", "not JSON", None),
        (b"{not json}\n", "not JSON", None),
        (b"\xff\xfe\x00garbage\n", "not valid UTF-8 (byte 0xff at column 1)", None),
        (b"[1, 2]", "expected a JSON object, got list", None),
        (b'"show"', "expected a JSON object, got str", None),
        (b'{"line": "show"}', 'integer "id"', None),
        (b'{"id": true, "line": "show"}', 'integer "id"', None),
        (b'{"id": "1", "line": "show"}', 'integer "id"', None),
        (b'{"id": 1}', "exactly one of", 1),
        (b'{"id": 1, "line": "a", "subscribe": true}', "exactly one of", 1),
        (b'{"id": 1, "line": 5}', '"line" must be a string', 1),
        (b'{"id": 1, "line": "a\\nb"}', "without newlines", 1),
        (b'{"id": 1, "subscribe": "yes"}', "true or false", 1),
        (b'{"id": 1, "cancel": "2"}', "integer id", 1),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON", None),
        (b'{"id": 1' + b"0" * 5000 + b', "line": "x"}', "not JSON", None),
    ],
)
def test_bad_requests_are_one_error_value(raw: bytes, message: str, rid: int | None) -> None:
    result = protocol.parse_request(raw)
    assert isinstance(result, ProtocolError)
    assert message in result.message
    assert "\n" not in result.message
    assert result.rid == rid
    assert not result.fatal


def test_an_unknown_version_is_fatal() -> None:
    result = protocol.parse_request(b'{"taskd": 2, "id": 4, "line": "show"}')
    assert isinstance(result, ProtocolError)
    assert result.fatal and result.rid == 4
    assert result.message == "protocol version 2 is not supported (this daemon speaks 1)"


def test_a_line_over_the_limit_is_refused_before_parsing() -> None:
    raw = protocol.request(1, "x" * protocol.MAX_LINE)
    result = protocol.parse_request(raw)
    assert isinstance(result, ProtocolError)
    assert result.message.startswith("line too long")
    # exactly at the limit is fine
    body = b'{"id":1,"line":"'
    raw = body + b"x" * (protocol.MAX_LINE - len(body) - 2) + b'"}'
    assert len(raw) == protocol.MAX_LINE
    assert isinstance(protocol.parse_request(raw + b"\n"), Request)


@given(st.binary(max_size=300))
def test_garbage_never_raises(raw: bytes) -> None:
    result = protocol.parse_request(raw)
    assert isinstance(result, ProtocolError | Request)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda c: st.lists(c)
       | st.dictionaries(st.sampled_from(["id", "line", "subscribe", "cancel", "taskd",
                                           "strict", "x"]), c)))  # fmt: skip
def test_any_json_never_raises(value: object) -> None:
    result = protocol.parse_request(json.dumps(value).encode())
    assert isinstance(result, ProtocolError | Request)


@given(
    st.text(max_size=20),
    st.text(st.characters(exclude_categories=()), max_size=200),
    st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.just(1764131000.5)),
)
def test_a_task_line_is_the_event_the_general_way_gives(task: str, line: str, ts: float) -> None:
    """output_event, the socket's short way for task output, says byte for byte what
    event() says with present_plain's text; only a line it cannot encode is left."""
    from taskd.events import OUTPUT, Event
    from taskd.formatting import present_plain

    ev = Event(task, OUTPUT, {"text": line})
    ev.ts = ts
    general = protocol.event(task, OUTPUT, ts, ev.fields, present_plain(ev))
    short = protocol.output_event(task, ts, line)
    if short is None:
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in task + line)
    else:
        assert short == general
    bound = protocol.output_event_bound(task, line)
    if bound is None:
        assert not (task + line).isascii()
    else:
        assert short is not None
        assert 0 <= bound - len(short) == 24 - len(repr(ts))


def test_the_bound_of_a_line_holds_for_the_longest_timestamps() -> None:
    for ts in (-2.2250738585072014e-308, -1.7976931348623157e308, 0.0, 1795670569.7283242):
        short = protocol.output_event("t", ts, 'a "quoted" \\ \x01 line')
        bound = protocol.output_event_bound("t", 'a "quoted" \\ \x01 line')
        assert short is not None and bound is not None and len(short) <= bound
