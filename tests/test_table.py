"""`show`'s table: the plain text made for a pipe is the styled table's text."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from taskd import clocks, formatting, table
from taskd.fragments import plain
from taskd.output import MemoryOutput
from taskd.registry import State, TaskRecord
from taskd.reply import Reply
from taskd.supervise import TaskOptions

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
        styled = [plain(line) for line in table.table(rows, None, depths)]
        text = table.table_text(rows, depths)
    finally:
        clocks.monotonic = saved
    assert text == styled



@given(st.floats(min_value=0.0, max_value=10.0, exclude_max=True))
def test_a_duration_under_ten_seconds_is_in_hundredths(seconds: float) -> None:
    hundredths = seconds * 100.0
    if abs(hundredths % 1.0 - 0.5) > 1e-6:  # away from a tie, as format() rounds
        assert formatting.duration(seconds) == f"{seconds:.2f}s"


def test_a_duration_tie_rounds_up_and_nine_point_nine_nine_five_is_ten() -> None:
    assert [formatting.duration(s) for s in (0.0, 0.125, 0.375, 1.0, 9.994, 9.996)] == [
        "0.00s", "0.13s", "0.38s", "1.00s", "9.99s", "10.00s",
    ]
    assert formatting.duration(-3.0) == "-3.00s"
    assert formatting.duration(12.0) == "12.0s"


@given(st.lists(records(), max_size=8))
def test_each_age_is_the_tasks_runtime_or_a_dash(rows: list[TaskRecord]) -> None:
    now = clocks.monotonic()
    expected = [formatting.duration(r.runtime(now)) if r.started_at else "-" for r in rows]
    assert table._ages(rows, now) == expected


def test_details_is_asked_only_for_rows_that_are_not_plain_running_ones() -> None:
    plain_row, queued, restored = (TaskRecord(n, "tick", ()) for n in ("a", "b", "c"))
    plain_row.last_line = "tick 1"
    queued.state = State.QUEUED
    restored.restored = True
    asked: list[str] = []

    def details(record: TaskRecord) -> str:
        asked.append(record.name)
        return "from details"

    lines = table.table_text([plain_row, queued, restored], None, details)
    assert asked == ["b", "c"]
    assert lines[1].endswith("  tick 1") and lines[2].endswith("  from details")

def test_table_columns_line_up_by_display_width() -> None:
    a, b = TaskRecord("別のタスク", "tick", ()), TaskRecord("t1", "idle", ())
    a.last_line = "tick 3"
    lines = table.table_text([a, b])
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


TEXTS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12) | (
    st.sampled_from(
        ['"quoted"', "back\\slash", "tab\tnew\nline", "\x00\x1f\x7f", "別のタスク", "\ud800"]
    )
)


@st.composite
def json_records(draw: st.DrawFn) -> TaskRecord:
    record = TaskRecord(draw(TEXTS), draw(TEXTS), tuple(draw(st.lists(TEXTS, max_size=3))))
    record.state = draw(st.sampled_from(list(State)))
    record.last_line = draw(TEXTS)
    record.error = draw(st.sampled_from(["", "", "boom", 'ValueError: "x"']))
    record.result = draw(st.sampled_from(["", "42"]))
    record.parent = draw(st.none() | TEXTS)
    record.restarts = draw(st.integers(0, 3))
    record.restored = draw(st.booleans())
    record.started_at = draw(st.sampled_from([0.0, 1764148452.9999996, 1764148452.25]))
    record.started = clocks.monotonic() - draw(st.floats(-5, 1e6, allow_nan=False))
    if draw(st.booleans()):
        record.options = TaskOptions(
            restart=draw(st.sampled_from(["no", "on-failure", "always"])),
            after=tuple(draw(st.lists(TEXTS, max_size=2))),
            timeout=draw(st.none() | st.floats(0.5, 10)),
            group=draw(st.none() | TEXTS),
        )
    return record


@given(st.lists(json_records(), max_size=6))
def test_show_json_is_json_dumps_of_the_records(rows: list[TaskRecord]) -> None:
    now = clocks.monotonic()
    expected = json.dumps([formatting.record_dict(r, now) for r in rows], ensure_ascii=False)
    assert formatting.records_json(rows, now) == expected
