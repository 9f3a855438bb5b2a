"""The JSON-lines protocol: what each side sends, and garbage never raising."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskd import protocol
from taskd.protocol import ProtocolError, Request


def test_server_lines_are_one_json_object_a_line() -> None:
    assert json.loads(protocol.hello(42, "0.1.0")) == {"taskd": 2, "pid": 42, "version": "0.1.0"}
    assert json.loads(protocol.out(3, "a\nb")) == {"id": 3, "out": "a\nb"}
    assert json.loads(protocol.err(3, "bad")) == {"id": 3, "err": "bad"}
    assert json.loads(protocol.done(3, True)) == {"id": 3, "done": True, "ok": True}
    assert json.loads(protocol.done(3, False, skipped=True)) == {
        "id": 3, "done": True, "ok": False, "skipped": True,
    }  # fmt: skip
    assert json.loads(protocol.bye("taskd ended")) == {"bye": "taskd ended"}
    ev = json.loads(protocol.event("t1", "done", 1.5, {"runtime_s": 0.5}, "t1 done"))
    assert ev == {
        "event": {"task": "t1", "name": "done", "ts": 1_500_000, "fields": {"runtime_s": 0.5},
                  "text": "t1 done"},
    }  # fmt: skip
    lines = json.loads(protocol.output([("t1", 1.5, "hi"), ("t2", 1.75, "there")]))
    assert lines == {"output": [["t1", 1_500_000, "hi"], ["t2", 1_750_000, "there"]]}
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
    assert isinstance(req, Request) and req.subscribe and req.line is None and not req.lossy
    req = protocol.parse_request(protocol.subscribe(9, lossy=True))
    assert isinstance(req, Request) and req.subscribe and req.lossy
    req = protocol.parse_request(protocol.cancel(10, 7))
    assert isinstance(req, Request) and req.cancel == 7
    req = protocol.parse_request(b'{"id": 1, "line": "show", "taskd": 2, "future": "ignored"}')
    assert isinstance(req, Request) and req.line == "show"
    old = protocol.parse_request(b'{"id": 1, "line": "show", "taskd": 1}')
    assert isinstance(old, ProtocolError) and (old.message, old.rid, old.fatal) == (
        "protocol version 1 is not supported (this daemon speaks 2)", 1, True
    )


def test_a_time_is_whole_microseconds_kept_in_range() -> None:
    """Protocol 2 gives every ts as an integer; a virtual clock's absurd times are
    kept within MAX_MICROS, which output_bound() counts on."""
    assert protocol.micros(1795670569.7283242) == 1795670569728324
    assert protocol.micros(-1.5) == -1_500_000 and protocol.micros(0.0) == 0
    assert protocol.micros(1e300) == protocol.MAX_MICROS
    assert protocol.micros(float("-inf")) == -protocol.MAX_MICROS
    assert protocol.micros(float("nan")) == 0


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
        (b'{"id": 1, "subscribe": true, "lossy": 1}', '"lossy" must be true or false', 1),
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
    result = protocol.parse_request(b'{"taskd": 3, "id": 4, "line": "show"}')
    assert isinstance(result, ProtocolError)
    assert result.fatal and result.rid == 4
    assert result.message == "protocol version 3 is not supported (this daemon speaks 2)"


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


_LINES = st.lists(
    st.tuples(
        st.text(max_size=20),
        st.one_of(st.floats(), st.just(1764131000.5)),  # infinities and NaN too
        st.text(st.characters(exclude_categories=()), max_size=200),
    ),
    min_size=1,
    max_size=20,
)


@given(_LINES)
def test_task_lines_go_as_one_line_that_gives_them_back_and_within_their_bound(
    lines: list[tuple[str, float, str]],
) -> None:
    """output() sends a run of lines as one protocol line, whatever their text (lone
    surrogates included: escaped); output_bound() is never below its size."""
    data = protocol.output(lines)
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    given = [[task, protocol.micros(ts), text] for task, ts, text in lines]
    assert json.loads(data) == {"output": given}
    assert protocol.output_bound(lines) >= len(data)


@given(st.lists(st.tuples(st.text(st.characters(min_codepoint=32, max_codepoint=126),
                                  max_size=20),
                          st.floats(),
                          st.text(st.characters(min_codepoint=32, max_codepoint=126),
                                  max_size=200)),
                min_size=1, max_size=20))  # fmt: skip
def test_the_bound_of_printable_ascii_lines_is_their_size_but_for_the_timestamps(
    lines: list[tuple[str, float, str]],
) -> None:
    """The usual text, printable ASCII: charged its size, over only by each line's
    timestamp taking less than the longest one's 20 characters."""
    slack = sum(20 - len(str(protocol.micros(ts))) for _task, ts, _text in lines)
    assert protocol.output_bound(lines) - len(protocol.output(lines)) == slack


def test_the_bound_holds_for_the_longest_timestamps_and_escapes() -> None:
    for ts in (-1.7976931348623157e308, float("inf"), float("nan"), 0.0, 1795670569.7283242):
        for text in ('a "quoted" \\ \x01 line', "\x1b[31mred\x1b[0m", "é \U0001f600", "\udc80"):
            lines = [("t", ts, text), ("t\x7f", ts, "plain")]
            assert len(protocol.output(lines)) <= protocol.output_bound(lines)
