"""`show`'s table: the rows of tasks, lined up by display width, as styled fragments
for a terminal (cut to its width) or as plain text for a pipe.

Made for 10,000 rows at a time under load (tests/bench, scenario responsive): the
cells are built column by column, the padding once per distinct width, kind and
state, and a row's text in one f-string.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from . import clocks
from .formatting import CENTIS, STATE_TEXT, detail, duration
from .fragments import Fragments
from .registry import State, TaskRecord
from .width import cut, cwidth, fit

COLUMNS = ("NAME", "KIND", "STATE", "AGE", "DETAIL")


class _Columns:
    """`show`'s cells, column by column (a list each: no object a row for the cycle
    collector to count), and what lines them up: the padding is one string per
    distinct width, kind and state, made once, not measured cell by cell."""

    def __init__(
        self,
        records: list[TaskRecord],
        depths: list[int] | None,
        details: Callable[[TaskRecord], str],
    ) -> None:
        names = [r.name for r in records]
        if depths is not None:
            names = ["  " * d + n for d, n in zip(depths, names, strict=True)]
        self.names = names
        self.kinds = kinds = [r.kind for r in records]
        self.states = states = [STATE_TEXT[r.state] for r in records]
        self.ages = ages = _ages(records, clocks.monotonic())
        # A running task with the default options (never restored nor restarted) shows
        # its last line, whoever details it: DETAILS is asked only for the other rows.
        self.texts = [
            r.last_line
            if r.state is _RUNNING and r.options is None and not r.restored and not r.restarts
            else details(r)
            for r in records
        ]
        self.name_sizes = name_sizes = _widths(names)
        kind_sizes = {kind: cwidth(kind) for kind in set(kinds)}
        distinct_states = set(states)
        age_sizes = set(map(len, ages))
        w = self.w = [
            max(len(COLUMNS[0]), max(name_sizes, default=0)),
            max([len(COLUMNS[1]), *kind_sizes.values()]),
            max([len(COLUMNS[2]), *map(len, distinct_states)]),
            max([len(COLUMNS[3]), *age_sizes]),
        ]
        self.even_ages = age_sizes == {w[3]}  # no age needs padding
        header = "  ".join(head.ljust(n) for head, n in zip(COLUMNS, w, strict=False))
        self.header = (header + "  " + COLUMNS[4]).rstrip()
        # After a name of each width: its padding. A kind with its padding. A state's.
        self.name_pads = {size: " " * (w[0] - size) + "  " for size in set(name_sizes)}
        self.kind_cells = {
            kind: kind + " " * (w[1] - size) + "  " for kind, size in kind_sizes.items()
        }
        self.state_pads = {state: " " * (w[2] - len(state)) + "  " for state in distinct_states}

    def rests(self) -> list[str]:
        """What follows each state: its padding, the age, the detail; no trailing
        blanks (a row with no detail ends with its age)."""
        w3, pads = self.w[3], self.state_pads
        return [
            f"{pads[state]}{age.ljust(w3)}  {text}"
            if text and not text[-1].isspace()
            else f"{pads[state]}{age.ljust(w3)}  {text}".rstrip()
            for state, age, text in zip(self.states, self.ages, self.texts, strict=True)
        ]


def table(
    records: list[TaskRecord],
    width: int | None = None,
    depths: list[int] | None = None,
    details: Callable[[TaskRecord], str] = detail,
) -> list[Fragments]:
    """`show`'s table, aligned by display width (`別のタスク` takes 10 columns); with
    WIDTH, each row is cut to fit it; DEPTHS indent each name (`show --tree`);
    DETAILS makes the last column (the engine's knows places in queues)."""
    c = _Columns(records, depths, details)
    styles = {state: "state-" + state for state in c.state_pads}
    name_pads, kind_cells = c.name_pads, c.kind_cells
    lines: list[Fragments] = [[("header", _cut(c.header, width))]]
    rows = [
        [
            ("task", name),
            ("", name_pads[size] + kind_cells[kind]),
            (styles[state], state),
            ("", rest),
        ]
        for name, size, kind, state, rest in zip(
            c.names, c.name_sizes, c.kinds, c.states, c.rests(), strict=True
        )
    ]
    if width is not None:
        rows = [_cut_fragments(row, width) for row in rows]
    lines += rows
    return lines


def table_text(
    records: list[TaskRecord],
    depths: list[int] | None = None,
    details: Callable[[TaskRecord], str] = detail,
) -> list[str]:
    """table()'s lines as plain text, for an asker with no width limit and no
    colours (a pipe, a file): the same text, one f-string a row, without building
    40,000 fragments for 10,000 rows only to join them again (tests/bench, scenario
    responsive)."""
    c = _Columns(records, depths, details)
    name_pads, kind_cells, w3 = c.name_pads, c.kind_cells, c.w[3]
    states = {state: state + pad for state, pad in c.state_pads.items()}
    ages = c.ages if c.even_ages else [age.ljust(w3) for age in c.ages]
    return [
        c.header,
        *[
            f"{name}{name_pads[size]}{kind_cells[kind]}{states[state]}{age}  {text}"
            if text and not text[-1].isspace()
            else f"{name}{name_pads[size]}{kind_cells[kind]}{states[state]}{age}  {text}".rstrip()
            for name, size, kind, state, age, text in zip(
                c.names, c.name_sizes, c.kinds, c.states, ages, c.texts, strict=True
            )
        ],
    ]


_RUNNING = State.RUNNING


def _ages(records: list[TaskRecord], now: float) -> list[str]:
    """The AGE cells: duration(record.runtime(now)), or "-" when the start is not
    known; without a call per row for the usual age under 10 s."""
    now = now or clocks.monotonic()  # as runtime() does
    centis = CENTIS
    return [
        centis[int(s * 100.0 + 0.5)]
        if 0.0 < (s := (now if r.ended is None else r.ended) - r.started) < 10 and r.started_at
        else _age(s, r.started_at)
        for r in records
    ]


def _age(runtime: float, started_at: float) -> str:
    if not started_at:
        return "-"
    return duration(runtime) if runtime > 0.0 else "0.00s"  # runtime() is never below 0


def _widths(column: list[str]) -> list[int]:
    """The display width of each cell; a column all ASCII is measured by len()."""
    if "".join(column).isascii():
        return list(map(len, column))
    return list(map(cwidth, column))


def tree(records: list[TaskRecord]) -> tuple[list[TaskRecord], list[int]]:
    """RECORDS with each task's children right under it; and each one's depth."""
    by_name = {r.name: r for r in records}
    children: dict[str, list[TaskRecord]] = {}
    roots = []
    for record in records:
        if record.parent is not None and record.parent in by_name:
            children.setdefault(record.parent, []).append(record)
        else:
            roots.append(record)
    ordered: list[TaskRecord] = []
    depths: list[int] = []
    stack = [(r, 0) for r in reversed(roots)]
    while stack:
        record, depth = stack.pop()
        ordered.append(record)
        depths.append(depth)
        stack.extend((c, depth + 1) for c in reversed(children.get(record.name, [])))
    return ordered, depths


SYSTEM_KIND = "(taskd)"


def system_records(live: list[TaskRecord]) -> list[TaskRecord]:
    """Rows for the loop's other tasks (asyncio.all_tasks()): taskd's own machinery,
    the front-ends, the log writer... as `show --system` lists them."""
    ours = {id(r.task) for r in live if r.task is not None}
    rows = []
    for task in sorted(asyncio.all_tasks(), key=lambda t: t.get_name()):
        if id(task) in ours:
            continue
        row = TaskRecord(task.get_name(), SYSTEM_KIND, ())
        row.started_at = 0.0  # not known: the age column says "-"
        coro = task.get_coro()
        row.last_line = getattr(coro, "__qualname__", type(coro).__name__)
        rows.append(row)
    return rows


def _cut(text: str, width: int | None) -> str:
    if width is None:
        return text
    return cut(text, width)


def _cut_fragments(line: Fragments, width: int) -> Fragments:
    """LINE cut to WIDTH columns (an ellipsis at the cut), styles kept."""
    if sum(cwidth(text) for _, text in line) <= width:
        return line
    out: Fragments = []
    room = max(width - 1, 0)
    for style, text in line:
        size = cwidth(text)
        if size >= room:
            out.append((style, fit(text, room)))
            break
        out.append((style, text))
        room -= size
    out.append(("", "…"))
    return out
