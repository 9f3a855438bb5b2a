"""The event log's two line formats: text for people and grep, JSON lines for jq.

Formatting is the log's hot path: a task printing in a tight loop makes one event per
line, and every one is formatted on the loop thread. So the timestamp is not made with
datetime per event (about 1 us each here): the seconds part is cached and only the
milliseconds are looked up in a table, and `output` events, nearly all of a busy log,
take a short path with a single f-string.

Both formats keep one event per physical line (plus, in text, one line per traceback
line), so a line is never ambiguous and `grep NAME` finds every line of a task:
text puts the timestamp and task name first on every line, JSON escapes newlines.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any

from .events import OUTPUT, Event

Formatter = Callable[[Event], str]

_MILLIS = [f".{n:03d}+00:00" for n in range(1000)]
_encode: Callable[[str], str] = encode_basestring  # JSON string, non-ASCII kept as is


class _Clock:
    """ISO 8601 UTC timestamps with milliseconds, the same text as formatting.iso."""

    __slots__ = ("_second", "_head")

    def __init__(self) -> None:
        self._second: int | None = None  # not -1: that is a second too (1969's last)
        self._head = ""

    def stamp(self, ts: float) -> str:
        ms = int(ts * 1000)
        second = ms // 1000
        if second != self._second:
            self._second = second
            self._head = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return self._head + _MILLIS[ms % 1000]


def _value(value: Any) -> str:
    """A field's value for the text format: bare when that is unambiguous, else JSON."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    text = value if isinstance(value, str) else None
    if text is not None and text and not any(c.isspace() or c in '"\\' for c in text):
        return text
    return json.dumps(value, ensure_ascii=False, default=str)


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n") if "\n" in text or "\r" in text else text


class TextFormat(_Clock):
    """`TIMESTAMP TASK EVENT DETAIL`, one line per event.

    DETAIL is the event's text (`output`) or error (`failed`), then its other fields
    as key=value; a traceback follows as lines `TIMESTAMP TASK traceback LINE`.
    """

    __slots__ = ("_low", "_high", "_stamp")

    def __init__(self) -> None:
        super().__init__()
        # Times well inside the millisecond of the last stamp, which they share: a
        # busy log has hundreds of events in one millisecond, and two comparisons
        # cost less than working the millisecond out (0.01 ms from either edge is
        # far more than a float's error on a time of day).
        self._low, self._high = 1.0, 0.0
        self._stamp = ""  # the whole timestamp of that millisecond, and a space

    def __call__(self, event: Event) -> str:
        ts = event.ts  # the stamp, inlined: this runs once per line printed
        if not self._low <= ts <= self._high:
            ms = int(ts * 1000)
            if ms // 1000 != self._second:
                self._second = ms // 1000
                self._head = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self._second))
            self._stamp = self._head + _MILLIS[ms % 1000] + " "
            if ms > 0:
                self._low, self._high = (ms + 0.01) / 1000, (ms + 0.99) / 1000
        if event.event == OUTPUT:
            text = event.fields["text"]
            if not text.isprintable() and ("\n" in text or "\r" in text):
                text = _one_line(text)
            return f"{self._stamp}{event.task} output {text}\n"
        return self._other(event, self._stamp + event.task)

    @staticmethod
    def _other(event: Event, head: str) -> str:
        fields = event.fields
        parts = [head, event.event]
        main = fields.get("text", fields.get("error"))
        if isinstance(main, str):
            parts.append(_one_line(main))
        for key, value in fields.items():
            if key in ("text", "error", "traceback") and isinstance(value, str):
                continue
            parts.append(f"{key}={_value(value)}")
        line = " ".join(parts) + "\n"
        trace = fields.get("traceback")
        if isinstance(trace, str) and trace:
            prefix = f"{head} traceback "
            trace_lines = trace.rstrip("\n").split("\n")
            line += "".join(f"{prefix}{t.rstrip(chr(13))}\n" for t in trace_lines)
        return line


class JsonFormat(_Clock):
    """One JSON object per line: `ts`, `task`, `event`, then the event's own fields."""

    __slots__ = ()

    def __call__(self, event: Event) -> str:
        ts = self.stamp(event.ts)
        if event.event == OUTPUT and len(event.fields) == 1:
            return (
                f'{{"ts": "{ts}", "task": {_encode(event.task)}, "event": "output", '
                f'"text": {_encode(event.fields["text"])}}}\n'
            )
        record: dict[str, Any] = {"ts": ts, "task": event.task, "event": event.event}
        for key, value in event.fields.items():
            record.setdefault(key, value)
        return json.dumps(record, ensure_ascii=False, default=str) + "\n"


def formatter(fmt: str) -> Formatter:
    """A fresh formatter for FMT ("text" or "json"), with its own timestamp cache.

    The bound method, not the instance: calling an instance goes through its type's
    __call__ slot, some 50 ns more a line.
    """
    return JsonFormat().__call__ if fmt == "json" else TextFormat().__call__
