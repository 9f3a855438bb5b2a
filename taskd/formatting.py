"""Task data formatted in one place; front-ends only present it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from .events import DONE, FAILED, OUTPUT, Event
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


def table(records: list[TaskRecord], width: int | None = None) -> list[str]:
    """`show`'s table; with WIDTH, the detail column is cut to fit it."""
    # One format call a row and column widths from max(map(len)): `show` must stay
    # quick at 10,000 rows while they all tick (tests/bench, scenario responsive).
    now = time.monotonic()
    names = [r.name for r in records]
    kinds = [r.kind for r in records]
    states = [str(r.state.value) for r in records]
    ages = [duration(r.runtime(now)) for r in records]
    w = [
        max(len(head), max(map(len, col), default=0))
        for head, col in zip(COLUMNS, (names, kinds, states, ages), strict=False)
    ]
    row = f"{{:<{w[0]}}}  {{:<{w[1]}}}  {{:<{w[2]}}}  {{:<{w[3]}}}  {{}}".format
    lines = [row(*COLUMNS).rstrip()]
    lines.extend(
        row(*cells).rstrip()
        for cells in zip(names, kinds, states, ages, map(detail, records), strict=True)
    )
    if width is not None:
        lines = [line if len(line) <= width else line[: max(width - 1, 0)] + "…" for line in lines]
    return lines


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


def present(event: Event) -> str | None:
    """The line a person sees for EVENT, or None for events shown only in the log."""
    if event.event == OUTPUT:
        return f"[{event.task}] {event.fields['text']}"
    if event.event == DONE:
        extra = f", returned {event.fields['result']}" if event.fields.get("result") else ""
        return f"{event.task} done after {duration(event.fields['runtime_s'])}{extra}"
    if event.event == FAILED:
        runtime = duration(event.fields["runtime_s"])
        return f"{event.task} failed after {runtime}: {event.fields['error']}"
    return None
