"""A terminal picture of when each task lived and when it actually ran on the loop.

One row per task: its name, then a bar across the time from the first start to NOW.
`─` while the task is alive but waiting, `█` where one of its steps ran on the loop
(a step shorter than a column still marks its column, so brief work stays visible),
`!` where a step ran longer than LONG_STEP: a step that held the whole loop, which is
what a teacher wants found at a glance. A last line is the time axis. Widths are
display widths (a wide character takes two columns), so names like `別のタスク`
keep the bars aligned, and no line is wider than WIDTH.

Rendering only: the daemon gives it live spans, `spans_from_log` reads them from a log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .events import DAEMON, STARTED
from .trace import END_EVENTS, STEP, read_log, step_times
from .width import wcwidth

WAIT, RUN, LONG, EMPTY = "─", "█", "!", " "
LONG_STEP = 0.1  # seconds: a step this long is felt by everyone sharing the loop
MIN_WIDTH = 20
_NICE = (1.0, 2.0, 2.5, 5.0)  # label spacings: these times powers of ten


@dataclass
class TaskSpan:
    """A task's life in seconds since the daemon started; END None while it is alive;
    STEPS (start, duration) of the stretches it ran on the loop."""

    name: str
    start: float
    end: float | None = None
    steps: list[tuple[float, float]] = field(default_factory=list)


def render_timeline(
    rows: list[TaskSpan], width: int, now: float, long_step: float = LONG_STEP
) -> list[str]:
    """The chart's lines (rows in the order given, then the axis), each at most WIDTH
    columns. ValueError if WIDTH is under MIN_WIDTH."""
    if width < MIN_WIDTH:
        raise ValueError(f"a timeline needs a width of at least {MIN_WIDTH} columns")
    start = min((row.start for row in rows), default=0.0)
    start = min(start, now)
    span = now - start if now - start > 1e-6 else 1.0  # nothing to show: one second
    name_cols = min(max((_width(row.name) for row in rows), default=0), width // 3)
    cols = width - name_cols - 1

    def column(t: float) -> int:
        return min(cols - 1, max(0, int((t - start) / span * cols)))

    lines = []
    for row in rows:
        cells = [EMPTY] * cols
        end = now if row.end is None else row.end
        for i in range(column(row.start), column(end) + 1):
            cells[i] = WAIT
        for step_start, duration in row.steps:
            mark = LONG if duration > long_step else RUN
            for i in range(column(step_start), column(step_start + duration) + 1):
                if cells[i] != LONG:
                    cells[i] = mark
        lines.append(f"{_fit(row.name, name_cols)} {''.join(cells)}".rstrip())
    lines.append(" " * (name_cols + 1) + _axis(start, span, cols))
    return lines


def _axis(start: float, span: float, cols: int) -> str:
    """Labels at round times (1, 2, 2.5 or 5 times a power of ten), the closest
    spacing at which every label has room, cut to COLS."""
    power = 10.0 ** math.floor(math.log10(span / cols))
    end = start + span + 1e-9
    for step in (n * power * 10**k for k in range(12) for n in _NICE):
        first = math.ceil(start / step - 1e-9)
        last = math.floor(end / step) + 1  # one more: the filter below decides
        if last - first > cols:
            continue  # more ticks than columns: no room for their labels
        ticks = [t for t in (i * step for i in range(first, last + 1)) if t <= end] or [start]
        digits = _digits(step, ticks[-1])
        room = max(len(_label(t, digits)) for t in ticks) + 2
        if step / span * cols >= room:
            break
    line = [" "] * cols
    for tick in ticks:
        pos = min(cols - 1, int((tick - start) / span * cols))
        text = _label(tick, digits)
        if pos + len(text) <= cols:
            line[pos : pos + len(text)] = text
    return "".join(line).rstrip()


def _digits(step: float, last: float) -> int:
    """Significant digits that tell ticks STEP apart up to LAST: 6, or more for a short
    window late in a long session (1000.0001s, not 1000s for every tick)."""
    mantissa, exponent = f"{step:.10e}".split("e")  # 2.5000000000e-01
    fraction = mantissa.rstrip("0").rstrip(".").partition(".")[2]
    decimals = max(0, len(fraction) - int(exponent))
    whole = len(str(int(abs(last)))) if abs(last) >= 1 else 0
    return max(6, whole + decimals)


def _label(t: float, digits: int = 6) -> str:
    return f"{round(t, max(6, digits)):.{digits}g}s"


def _width(text: str) -> int:
    return sum(max(0, wcwidth(char)) for char in text)


def _fit(text: str, cols: int) -> str:
    """TEXT cut (with …) or padded to exactly COLS display columns."""
    if _width(text) > cols:
        out, used = "", 0
        for char in text:
            w = max(0, wcwidth(char))
            if used + w > cols - 1:
                break
            out, used = out + char, used + w
        text = out + "…" if cols > 0 else ""
    return text + " " * (cols - _width(text))


def spans_from_log(path: str) -> list[TaskSpan]:
    """The tasks of the log's last session, in the order they first appear; LogError
    (a ValueError) if the log cannot be read."""
    return _spans(path)[0]


def _spans(path: str) -> tuple[list[TaskSpan], float]:
    session = read_log(path)[-1]
    spans: dict[str, TaskSpan] = {}
    for record in session.records:
        if record.task == DAEMON:
            continue
        if record.event == STEP:
            begin, duration = step_times(record.fields)
            span = spans.setdefault(record.task, TaskSpan(record.task, begin))
            span.start = min(span.start, begin)
            span.steps.append((begin, duration))
        elif record.event == STARTED:
            spans.setdefault(record.task, TaskSpan(record.task, record.ts)).start = record.ts
        elif record.event in END_EVENTS:
            spans.setdefault(record.task, TaskSpan(record.task, record.ts)).end = record.ts
        else:  # a log opened while the task was already running
            spans.setdefault(record.task, TaskSpan(record.task, record.ts))
    return list(spans.values()), session.end


def render_log(path: str, width: int, long_step: float = LONG_STEP) -> list[str]:
    """`taskd timeline LOGFILE`: the chart of the log's last session, up to its end."""
    spans, end = _spans(path)
    return render_timeline(spans, width, end, long_step)
