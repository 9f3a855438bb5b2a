"""A taskd event log, read back, and exported in the Chrome Trace Event Format.

Why: Perfetto (ui.perfetto.dev) and chrome://tracing draw a trace file as lanes on a
zoomable time axis, which shows at a glance which task ran when. `export_trace` makes
one lane per task: its life as a slice from `started` to its end, each `step` event
(a stretch the task ran on the loop: `start_s` seconds after the daemon started, for
`dur_s` seconds) as a slice nested in it, and every other event as an instant.

The reader (`read_log`, shared with timeline.py) takes both log formats, line by line
(a JSON line starts with `{`), so a file whose format was switched midway still reads.
A log is appended to across runs: each `daemon-start` begins a new session, with
times counted from it, and each session becomes its own process in the trace. A log
opened while taskd ran (`log FILE --steps` typed later) has no `daemon-start`: its
times count from its first line, and its steps' `start_s` (counted from the daemon's
start) are moved onto that origin, by how far the first step's end is from the
moment its event was stamped (the event is made as the step ends).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .events import CANCELLED, DAEMON, DAEMON_START, DONE, FAILED, OUTPUT, STARTED

STEP = "step"  # a task's stretch on the loop: fields start_s, dur_s
TRACEBACK = "traceback"  # the text format's continuation lines of a `failed` event
END_EVENTS = frozenset((DONE, FAILED, CANCELLED))
# Characters of the longest line read: a task's longest output line (capture.MAX_LINE,
# 65,536 characters) fits, each character escaped at its longest (12: two \uXXXX).
MAX_LOG_LINE = 1 << 20

_TEXT_LINE = re.compile(r"(\S+) (\S+) (\S+)(?: (.*))?\Z", re.DOTALL)
_FIELD = re.compile(r" ([A-Za-z_][A-Za-z0-9_]*)=")
_BARE = {"true": True, "false": False, "null": None}
_decoder = json.JSONDecoder()


class LogError(ValueError):
    """A log that cannot be read or a trace that cannot be written: one line, naming
    the file (and the line, for bad content)."""


@dataclass
class Record:
    """One event of the log: TS in seconds since its session's daemon-start."""

    ts: float
    task: str
    event: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Session:
    """The events of one daemon run, in file order; END is the last time seen."""

    records: list[Record] = field(default_factory=list)
    end: float = 0.0


# -- reading --------------------------------------------------------------------


def _lines(path: str) -> Iterator[str]:
    """The lines of the file at PATH, without their newline, each read on its own:
    one longer than MAX_LOG_LINE is refused there, so that a file with no newline in
    sight (/dev/zero, a FIFO left open) neither fills memory nor is read forever."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            number = 0
            while line := file.readline(MAX_LOG_LINE + 2):
                number += 1
                line = line.removesuffix("\n")
                if len(line) > MAX_LOG_LINE:
                    raise LogError(
                        f"{path}:{number}: not a taskd log line "
                        f"(over {MAX_LOG_LINE:,} characters)"
                    )
                yield line
    except OSError as exc:
        raise LogError(f"{path}: cannot read it: {exc.strerror or exc}") from None


def read_log(path: str) -> list[Session]:
    """Every session of the log at PATH; LogError on the first line that is not an event."""
    sessions: list[Session] = []
    origin = 0.0
    for number, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        try:
            stamp, task, event, fields = _parse(line)
            ts = datetime.fromisoformat(stamp).timestamp()
            step = step_times(fields) if event == STEP else (0.0, 0.0)
        except (ValueError, TypeError) as exc:
            reason = str(exc).split("\n")[0] or type(exc).__name__
            raise LogError(f"{path}:{number}: not a taskd log line ({reason})") from None
        if event == TRACEBACK and sessions and sessions[-1].records:
            last = sessions[-1].records[-1]
            if last.task == task:
                text = last.fields.get(TRACEBACK, "")
                last.fields[TRACEBACK] = f"{text}{fields.get('text', '')}\n"
                continue
        if event == DAEMON_START or not sessions:
            sessions.append(Session())
            origin = ts
        session = sessions[-1]
        ts = round(ts - origin, 6)  # the log's stamps are in milliseconds
        session.records.append(Record(ts, task, event, fields))
        session.end = max(session.end, ts, sum(step))
    if not sessions:
        raise LogError(f"{path}: no events in it")
    first = sessions[0].records[0]
    if first.event != DAEMON_START:
        _rebase_steps(sessions[0])
    return sessions


def _rebase_steps(session: Session) -> None:
    """Steps of a session begun mid-run, onto the session's own origin."""
    steps = [r for r in session.records if r.event == STEP]
    if not steps:
        return
    start, dur = step_times(steps[0].fields)
    shift = round(start + dur - steps[0].ts, 3)  # the stamps are in milliseconds
    if not shift:
        return
    for record in steps:
        start, dur = step_times(record.fields)
        record.fields["start_s"] = round(start - shift, 6)
    session.end = max([r.ts for r in session.records] + [
        sum(step_times(r.fields)) for r in steps
    ])


def _parse(line: str) -> tuple[str, str, str, dict[str, Any]]:
    """(timestamp, task, event, fields) of one line, JSON or text."""
    if line.startswith("{"):
        record = json.loads(line)
        if not isinstance(record, dict):
            raise ValueError("not an object")
        head = [record.pop(key, None) for key in ("ts", "task", "event")]
        if not all(isinstance(value, str) for value in head):
            raise ValueError("ts, task and event must be strings")
        return head[0], head[1], head[2], record
    match = _TEXT_LINE.match(line)
    if match is None:
        raise ValueError("expected TIMESTAMP TASK EVENT")
    stamp, task, event, rest = match.groups()
    rest = rest or ""
    if event in (OUTPUT, TRACEBACK):
        return stamp, task, event, {"text": rest}
    return stamp, task, event, _text_fields(event, rest)


def _text_fields(event: str, rest: str) -> dict[str, Any]:
    """The fields of a text line's DETAIL: a leading text (the error of `failed`, else
    `text`), then `key=value` pairs. The pairs are the longest tail that reads as
    such, so an `=` inside the leading text does not confuse it."""
    rest = " " + rest
    for match in _FIELD.finditer(rest):
        pairs = _pairs(rest, match.start())
        if pairs is not None:
            head = rest[1 : match.start()]
            break
    else:
        pairs, head = {}, rest[1:]
    if head:
        pairs = {("error" if event == FAILED else "text"): head, **pairs}
    return pairs


def _pairs(text: str, pos: int) -> dict[str, Any] | None:
    """` key=value` pairs from POS to the end of TEXT, or None if it is not only that."""
    pairs: dict[str, Any] = {}
    while pos < len(text):
        match = _FIELD.match(text, pos)
        if match is None:
            return None
        pos = match.end()
        if text[pos : pos + 1] in ('"', "[", "{"):
            try:
                value, pos = _decoder.raw_decode(text, pos)
            except ValueError:
                return None
        else:
            end = text.find(" ", pos)
            end = len(text) if end < 0 else end
            value, pos = _bare(text[pos:end]), end
        pairs[match.group(1)] = value
    return pairs


def _bare(token: str) -> Any:
    if token in _BARE:
        return _BARE[token]
    for kind in (int, float):
        try:
            return kind(token)
        except ValueError:
            pass
    return token


def step_times(fields: dict[str, Any]) -> tuple[float, float]:
    """(start_s, dur_s) of a step event's fields; ValueError if they are not numbers."""
    start, dur = fields.get("start_s"), fields.get("dur_s")
    if not isinstance(start, int | float) or not isinstance(dur, int | float):
        raise ValueError("a step needs numbers start_s and dur_s")
    return float(start), float(dur)


# -- the trace ------------------------------------------------------------------


def _us(seconds: float) -> float:
    return round(seconds * 1e6, 3)


def trace_events(sessions: list[Session]) -> list[dict[str, Any]]:
    """The Trace Event Format events for SESSIONS: a process per session, a lane per task."""
    out: list[dict[str, Any]] = []
    for pid, session in enumerate(sessions, 1):
        out.append(_meta("process_name", pid, 0, name=f"taskd run {pid}"))
        lanes: dict[str, int] = {}  # task -> tid, in order of first appearance
        lives: dict[str, list[float]] = {}  # task -> [start, end], widened to its steps
        ends: dict[str, str] = {}
        for record in session.records:
            tid = lanes.setdefault(record.task, len(lanes) + 1)
            if record.event == STEP:
                start, dur = step_times(record.fields)
                out.append({"ph": "X", "name": STEP, "cat": "step", "ts": _us(start),
                            "dur": _us(dur), "pid": pid, "tid": tid})
                life = lives.setdefault(record.task, [start, start + dur])
                life[:] = [min(life[0], start), max(life[1], start + dur)]
                continue
            if record.event == STARTED and record.task != DAEMON:
                lives[record.task] = [record.ts, record.ts]
            elif record.event in END_EVENTS and record.task in lives:
                lives[record.task][1] = max(lives[record.task][1], record.ts)
                ends[record.task] = record.event
            out.append({"ph": "i", "s": "t", "name": record.event, "cat": "event",
                        "ts": _us(record.ts), "pid": pid, "tid": tid, "args": record.fields})
        for task, tid in lanes.items():
            out.append(_meta("thread_name", pid, tid, name=task))
            out.append(_meta("thread_sort_index", pid, tid, sort_index=tid))
        for task, (start, end) in lives.items():
            if task not in ends:  # alive when the log ends: the slice runs to its end
                end = max(end, session.end)
            out.append({"ph": "X", "name": task, "cat": "task", "ts": _us(start),
                        "dur": _us(end - start), "pid": pid, "tid": lanes[task],
                        "args": {"end": ends.get(task, "still running")}})
    return out


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _meta(kind: str, pid: int, tid: int, **args: Any) -> dict[str, Any]:
    return {"ph": "M", "name": kind, "pid": pid, "tid": tid, "args": args}


def export_trace(log_path: str, out_path: str) -> int:
    """Write LOG_PATH as a trace to OUT_PATH; return the number of trace events.

    LogError (a ValueError) for a log that cannot be read or a file that cannot be
    written; OUT_PATH is replaced only once the whole trace is made and written.
    """
    events = trace_events(read_log(log_path))
    document = {"traceEvents": events, "displayTimeUnit": "ms"}
    folder = os.path.dirname(os.path.abspath(out_path))
    try:
        fd, temporary = tempfile.mkstemp(prefix=".taskd-trace-", dir=folder)
        try:
            os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 is not what a user expects
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(document, file, ensure_ascii=False)
            os.replace(temporary, out_path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as exc:
        raise LogError(f"{out_path}: cannot write it: {exc.strerror or exc}") from None
    return len(events)
