"""`show`'s table: the plain text made for a pipe is the styled table's text."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from taskd import clocks, formatting
from taskd.fragments import plain
from taskd.output import MemoryOutput
from taskd.registry import State, TaskRecord
from taskd.reply import Reply

NAMES = st.text(alphabet="ab1別のタスク\u0301\t", min_size=1, max_size=12)
DETAILS = st.sampled_from(["", "tick 1", "tick 2  ", "別 ", "x\t", "  ", "done"])


@st.composite
def records(draw: st.DrawFn) -> TaskRecord:
    record = TaskRecord(draw(NAMES), draw(st.sampled_from(["tick", "idle", "別kind"])), ())
    record.state = draw(st.sampled_from(list(State)))
    record.last_line = draw(DETAILS)
    now = clocks.monotonic()
    record.started = now - draw(st.sampled_from([0.0, 0.5, 9.99, 12.0, 75.0, 4000.0, -3.0]))
    if draw(st.booleans()):
        record.started_at = 0.0  # an age not known: "-"
    if draw(st.booleans()):
        record.ended = record.started + draw(st.sampled_from([0.25, 12.0, -1.0]))
    return record


@given(st.lists(records(), max_size=8), st.data())
def test_the_plain_table_is_the_styled_tables_text(
    rows: list[TaskRecord], data: st.DataObject
) -> None:
    depths = data.draw(st.none() | st.lists(st.integers(0, 3), min_size=len(rows),
                                            max_size=len(rows)))
    frozen = clocks.monotonic()
    saved = clocks.monotonic
    clocks.monotonic = lambda: frozen  # both tables at the same moment
    try:
        styled = [plain(line) for line in formatting.table(rows, None, depths)]
        text = formatting.table_text(rows, depths)
    finally:
        clocks.monotonic = saved
    assert text == styled


def test_table_columns_line_up_by_display_width() -> None:
    a, b = TaskRecord("別のタスク", "tick", ()), TaskRecord("t1", "idle", ())
    a.last_line = "tick 3"
    lines = formatting.table_text([a, b])
    assert lines[0].startswith("NAME        KIND  STATE    AGE")
    assert lines[1].startswith("別のタスク  tick  running  ")
    assert lines[1].endswith("  tick 3")
    assert lines[2].startswith("t1          idle  running  ")
    assert not lines[2].endswith(" ")  # no detail: no trailing blanks


def test_a_plain_reply_takes_the_table_as_one_piece() -> None:
    out = MemoryOutput()
    reply = Reply(out)
    assert reply.plain
    reply.text(["a", "b"])
    assert out.out == ["a\nb\n"]
    reply.text([])
    assert out.out == ["a\nb\n"]
    assert not Reply(out, lambda: 80).plain  # a width: cut row by row, as fragments


@given(st.floats(min_value=-1e10, max_value=4e9, allow_nan=False) | st.sampled_from(
    [0.0, 1.9999995, 1.9999994999, 1.0000005, 1.0005, 1764148452.9999996, -0.9999996]
))
def test_iso_is_datetimes_text(ts: float) -> None:
    assert formatting.iso(ts) == datetime.fromtimestamp(ts, UTC).isoformat(
        timespec="milliseconds"
    )


def test_show_json_items_keep_their_keys_in_order() -> None:
    record = TaskRecord("w1", "idle", ("1",))
    item = formatting.record_dict(record, clocks.monotonic())
    assert list(item) == [
        "name", "kind", "args", "state", "started_at", "runtime_s", "last_output",
        "parent", "group", "after", "restart", "restarts", "timeout_s", "restored",
    ]
    assert item["state"] == "running" and item["args"] == ["1"] and item["after"] == []
    record.state, record.error = State.FAILED, "boom"
    assert list(formatting.record_dict(record, clocks.monotonic()))[7:9] == ["ended", "error"]
