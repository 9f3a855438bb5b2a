"""Task data formatted in one place, as styled fragments; front-ends render them.

Every line a person sees is built here (or by a command handler) as data: which
piece is a task name, a state, a header. A plain consumer joins the texts, the
terminal colours the pieces by what they are. Nothing ever re-parses these lines.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

from . import clocks
from .events import CANCELLED, DONE, EXPLAIN, FAILED, OUTPUT, RESTARTED, Event
from .fragments import Fragments
from .registry import FINAL, State, TaskRecord
from .width import cwidth, ljust, wrap

MAX_DETAIL = 500  # characters of an error or output line kept for `show`
STATE_TEXT = {state: str(state.value) for state in State}


def one_line(text: str, limit: int = MAX_DETAIL) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def duration(seconds: float) -> str:
    """A short human duration: 0.25s, 12.3s, 3m04s, 2h03m."""
    if 0.0 <= seconds < 10:
        return CENTIS[int(seconds * 100.0 + 0.5)]
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
    """TS as datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds") says
    it, without a datetime per call (1.3 -> 0.3 us; `show --json` makes 50,000): the
    date and time to the second are made once per second, and the microseconds are
    rounded as datetime rounds them (half to even, carried into the second)."""
    fraction, whole = math.modf(ts)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        whole += 1.0
        micro -= 1_000_000
    elif micro < 0:
        whole -= 1.0
        micro += 1_000_000
    second = int(whole)
    head = _ISO_SECONDS.get(second)
    if head is None:
        if len(_ISO_SECONDS) >= 4096:
            _ISO_SECONDS.clear()
        head = datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")[:-6]
        _ISO_SECONDS[second] = head
    return head + _MILLIS[micro // 1000]


# Under ten seconds, by hundredths, rounded half up: a `show` of 10,000 tasks looks up
# its ages here instead of formatting 10,000 floats (2.0 -> 0.7 ms; tests/bench,
# scenario responsive). 10.00s is for the last half hundredth below ten.
CENTIS = [f"{n // 100}.{n % 100:02d}s" for n in range(1001)]
_ISO_SECONDS: dict[int, str] = {}  # "2026-11-25T10:00:00" by whole second
_MILLIS = [f".{n:03d}+00:00" for n in range(1000)]


def ending(record: TaskRecord) -> str:
    """How a finished task ended, in a few words."""
    if record.state is State.FAILED:
        return f"failed: {record.error}"
    if record.state is State.DONE and record.result:
        return f"done, returned {record.result}"
    if record.state is State.CANCELLED and record.error:
        return f"cancelled: {record.error}"  # "after: build failed"
    return record.state.value


def detail(record: TaskRecord) -> str:
    if record.finished:
        return ending(record)
    return record.last_line


def two_columns(rows: list[tuple[str, str]], width: int | None, indent: str = "") -> list[str]:
    """`help`'s and `kinds`' list: a left column padded by display width, the text
    beside it wrapped at word boundaries to WIDTH; a left cell too wide to leave the
    text a fair share goes on a line of its own, the text under it."""
    left = max((cwidth(a) for a, _ in rows), default=0)
    lines: list[str] = []
    for first, text in rows:
        if width is None:
            lines.append(f"{indent}{ljust(first, left)}  {text}".rstrip())
            continue
        room = width - cwidth(indent) - left - 2
        if room >= max(20, width // 3):
            pad = " " * (cwidth(indent) + left + 2)
            for i, part in enumerate(wrap(text, room)):
                lines.append(f"{indent}{ljust(first, left)}  {part}" if i == 0 else pad + part)
            continue
        lines += wrap_indented(first, width, indent)
        lines += wrap_indented(text, width, indent + "    ")
    return lines


def wrap_indented(text: str, width: int | None, indent: str = "") -> list[str]:
    """TEXT wrapped at word boundaries to WIDTH columns, each line after INDENT."""
    if width is None:
        return [indent + text]
    return [indent + part for part in wrap(text, max(width - cwidth(indent), 10))]


def record_dict(record: TaskRecord, now: float) -> dict[str, Any]:
    """`show --json`'s object for one task."""
    item: dict[str, Any] = {
        "name": record.name,
        "kind": record.kind,
        "args": list(record.args),
        "state": STATE_TEXT[record.state],
        "started_at": iso(record.started_at),
        "runtime_s": round(record.runtime(now), 3),
        "last_output": record.last_line,
    }
    if record.state in FINAL:
        item["ended"] = ending(record)
    if record.error:
        item["error"] = record.error
    item["parent"] = record.parent  # the task that created it, or None
    options = record.options
    if options is None:  # the usual: a task with the defaults
        item["group"] = None
        item["after"] = []
        item["restart"] = "no"
        item["restarts"] = record.restarts
        item["timeout_s"] = None
    else:
        item["group"] = options.group
        item["after"] = list(options.after)
        item["restart"] = options.restart
        item["restarts"] = record.restarts
        item["timeout_s"] = options.timeout
    item["restored"] = record.restored
    return item


def records_json(records: list[TaskRecord], now: float) -> str:
    """`show --json`'s reply: json.dumps([record_dict(r, now) ...], ensure_ascii=False),
    the same text, with each task of the usual sort (default options, not ended, no
    error) written by one f-string instead of a dict for json to walk: 50,000 tasks
    ~260 -> ~70 ms. Any other task goes through record_dict and json."""
    items = []
    for record in records:
        if record.options is None and not record.error and record.state not in FINAL:
            args = record.args
            parent = record.parent
            items.append(
                f'{{"name": {_json_text(record.name)}, "kind": {_json_text(record.kind)}, '
                f'"args": {"[" + ", ".join(map(_json_text, args)) + "]" if args else "[]"}, '
                f'"state": {_STATE_JSON[record.state]}, '
                f'"started_at": "{iso(record.started_at)}", '
                f'"runtime_s": {round(record.runtime(now), 3)!r}, '
                f'"last_output": {_json_text(record.last_line)}, '
                f'"parent": {"null" if parent is None else _json_text(parent)}, '
                f'"group": null, "after": [], "restart": "no", '
                f'"restarts": {record.restarts!r}, "timeout_s": null, '
                f'"restored": {"true" if record.restored else "false"}}}'
            )
        else:
            items.append(json.dumps(record_dict(record, now), ensure_ascii=False))
    return "[" + ", ".join(items) + "]"


_json_text: Callable[[str], str] = encode_basestring  # a JSON string, as json.dumps makes it
_STATE_JSON = {state: json.dumps(str(state.value)) for state in State}

# The events present() may show; the others (started, queued, ...) are the log's only.
SHOWN = frozenset({OUTPUT, DONE, FAILED, EXPLAIN, CANCELLED, RESTARTED})  # on screen


def _done(fields: dict[str, Any]) -> str:
    """What follows the name of a task that ended done: " done after 0.25s"."""
    extra = f", returned {fields['result']}" if fields.get("result") else ""
    return f" done after {duration(fields['runtime_s'])}{extra}"


def present(event: Event, stamps: bool = False) -> Fragments | None:
    """The line a person sees for EVENT, or None for events shown only in the log;
    with STAMPS, it starts with the seconds since the daemon started (`+1.002 `)."""
    if event.event not in SHOWN:
        return None
    if stamps:
        line = present(event)
        if line is None:
            return None
        return [("time", clocks.stamp(clocks.since_start_wall(event.ts))), *line]
    if event.event == OUTPUT:
        return [("", "["), ("task", event.task), ("", "] " + event.fields["text"])]
    if event.event == DONE:
        return [("task", event.task), ("", _done(event.fields))]
    if event.event == FAILED:
        runtime = duration(event.fields["runtime_s"])
        error = event.fields["error"]
        return [("task", event.task), ("failed", f" failed after {runtime}: {error}")]
    if event.event == EXPLAIN:
        return [("explain", f"explain: {event.fields['text']}")]
    if event.event == CANCELLED and "reason" in event.fields:
        return [("task", event.task), ("", f" cancelled: {event.fields['reason']}")]
    if event.event == CANCELLED and "by" in event.fields:  # not this consumer's `cancel`
        by = f" (by {event.fields['by']})" if event.fields["by"] else ""
        runtime = duration(event.fields["runtime_s"])
        return [("task", event.task), ("", f" cancelled after {runtime}{by}")]
    if event.event == RESTARTED:
        f = event.fields
        if "by" not in f:  # a policy's
            return [
                ("task", event.task),
                ("", f" ended ({f['reason']}); restart {f['restart']} in {f['delay_s']:g}s"),
            ]
        if f["by"] != "command":  # another consumer's `restart` (its asker has the reply)
            by = f" (by {f['by']})" if f["by"] else ""
            return [("task", event.task), ("", f" restarted{by}")]
    return None


def present_plain(event: Event, stamps: bool = False) -> str | None:
    """present() as plain text; task output, by far the most frequent, the short way."""
    if event.event not in SHOWN:
        return None
    if not stamps:
        if event.event == OUTPUT:
            return f"[{event.task}] {event.fields['text']}"
        if event.event == DONE:  # a task's end: as frequent where tasks are short
            return event.task + _done(event.fields)
    line = present(event, stamps)
    return None if line is None else "".join([text for _, text in line])


def plain_sink(write: Callable[[str], None]) -> Callable[[Event], None]:
    """An event sink that gives WRITE each shown event as a plain line (no stamps).
    Task output, up to 100,000 lines a second, is presented without another call."""

    def sink(event: Event) -> None:
        if event.event == OUTPUT:
            write(f"[{event.task}] {event.fields['text']}\n")
            return
        text = present_plain(event)
        if text is not None:
            write(text + "\n")

    return sink
