"""Task data formatted in one place, as styled fragments; front-ends render them.

Every line a person sees is built here (or by a command handler) as data: which
piece is a task name, a state, a header. A plain consumer joins the texts, the
terminal colours the pieces by what they are. Nothing ever re-parses these lines.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from . import clocks
from .events import DONE, FAILED, OUTPUT, Event
from .fragments import Fragments
from .registry import State, TaskRecord

COLUMNS = ("NAME", "KIND", "STATE", "AGE", "DETAIL")


def duration(seconds: float) -> str:
    """A short human duration: 0.25s, 12.3s, 3m04s, 2h03m."""
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        m, s = divmod(int(seconds), 60)
        return f"{m}m{s:02d}s"
    h, m = divmod(int(seconds) // 60, 60)
    return f"{h}h{m:02d}m"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def ending(record: TaskRecord) -> str:
    """How a finished task ended, in a few words."""
    if record.state is State.FAILED:
        return f"failed: {record.error}"
    if record.state is State.DONE and record.result:
        return f"done, returned {record.result}"
    return record.state.value


def detail(record: TaskRecord) -> str:
    if record.finished:
        return ending(record)
    return record.last_line


def table(records: list[TaskRecord], width: int | None = None) -> list[Fragments]:
    """`show`'s table; with WIDTH, each row is cut to fit it."""
    # One format call a row and column widths from max(map(len)): `show` must stay
    # quick at 10,000 rows while they all tick (tests/bench, scenario responsive).
    now = clocks.monotonic()
    names = [r.name for r in records]
    kinds = [r.kind for r in records]
    states = [str(r.state.value) for r in records]
    ages = [duration(r.runtime(now)) for r in records]
    w = [
        max(len(head), max(map(len, col), default=0))
        for head, col in zip(COLUMNS, (names, kinds, states, ages), strict=False)
    ]
    rest = f"  {{:<{w[1]}}}  {{:<{w[2]}}}  {{:<{w[3]}}}  {{}}".format
    header = (COLUMNS[0].ljust(w[0]) + rest(*COLUMNS[1:])).rstrip()
    lines: list[Fragments] = [[("header", _cut(header, width))]]
    for name, kind, state, age, text in zip(
        names, kinds, states, ages, map(detail, records), strict=True
    ):
        row = [
            ("task", name),
            ("", " " * (w[0] - len(name)) + "  " + kind.ljust(w[1]) + "  "),
            ("state-" + state, state),
            ("", (" " * (w[2] - len(state)) + "  " + age.ljust(w[3]) + "  " + text).rstrip()),
        ]
        lines.append(row if width is None else _cut_fragments(row, width))
    return lines


def _cut(text: str, width: int | None) -> str:
    if width is None or len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…"


def _cut_fragments(line: Fragments, width: int) -> Fragments:
    """LINE cut to WIDTH characters (an ellipsis at the cut), styles kept."""
    if sum(len(text) for _, text in line) <= width:
        return line
    out: Fragments = []
    room = max(width - 1, 0)
    for style, text in line:
        if len(text) >= room:
            out.append((style, text[:room]))
            break
        out.append((style, text))
        room -= len(text)
    out.append(("", "…"))
    return out


def record_dict(record: TaskRecord, now: float) -> dict[str, Any]:
    """`show --json`'s object for one task."""
    item: dict[str, Any] = {
        "name": record.name,
        "kind": record.kind,
        "args": list(record.args),
        "state": record.state.value,
        "started_at": iso(record.started_at),
        "runtime_s": round(record.runtime(now), 3),
        "last_output": record.last_line,
    }
    if record.finished:
        item["ended"] = ending(record)
    if record.error:
        item["error"] = record.error
    return item


def present(event: Event, stamps: bool = False) -> Fragments | None:
    """The line a person sees for EVENT, or None for events shown only in the log;
    with STAMPS, it starts with the seconds since the daemon started (`+1.002 `)."""
    if stamps:
        line = present(event)
        if line is None:
            return None
        return [("time", clocks.stamp(clocks.since_start_wall(event.ts))), *line]
    if event.event == OUTPUT:
        return [("", "["), ("task", event.task), ("", "] " + event.fields["text"])]
    if event.event == DONE:
        extra = f", returned {event.fields['result']}" if event.fields.get("result") else ""
        runtime = duration(event.fields["runtime_s"])
        return [("task", event.task), ("", f" done after {runtime}{extra}")]
    if event.event == FAILED:
        runtime = duration(event.fields["runtime_s"])
        error = event.fields["error"]
        return [("task", event.task), ("failed", f" failed after {runtime}: {error}")]
    return None


def present_plain(event: Event, stamps: bool = False) -> str | None:
    """present() as plain text; task output, by far the most frequent, the short way."""
    if event.event == OUTPUT and not stamps:
        return f"[{event.task}] {event.fields['text']}"
    line = present(event, stamps)
    return None if line is None else "".join([text for _, text in line])
