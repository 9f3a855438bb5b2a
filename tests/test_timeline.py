"""The terminal timeline: exact pictures at two widths, wide names, and from a real log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import RunTaskd
from prompt_toolkit.utils import get_cwidth

from taskd.timeline import TaskSpan, render_log, render_timeline, spans_from_log
from taskd.trace import LogError


def three_tasks() -> list[TaskSpan]:
    """A ticker alive throughout, a hog whose 0.4 s step held the loop, and a task
    with a wide-character name; 3 s in all."""
    return [
        TaskSpan("tick-1", 0.0, None, [(i * 0.5, 0.001) for i in range(7)]),
        TaskSpan("hog-1", 0.2, 1.6, [(0.2, 0.001), (0.7, 0.4), (1.6, 0.0)]),
        TaskSpan("別のタスク", 1.0, 2.5, [(1.0, 0.002), (2.5, 0.001)]),
    ]


def test_three_tasks_at_60_columns() -> None:
    assert render_timeline(three_tasks(), 60, 3.0) == [
        "tick-1     █───────█───────█───────█───────█───────█───────█",
        "hog-1         █───────!!!!!!!────────█",
        "別のタスク                 █───────────────────────█",
        "           0s      0.5s    1s      1.5s    2s      2.5s",
    ]


def test_three_tasks_at_30_columns_cut_the_wide_name() -> None:
    assert render_timeline(three_tasks(), 30, 3.0) == [
        "tick-1     █──█──█──█──█──█──█",
        "hog-1       █──!!!───█",
        "別のタスク       █────────█",
        "           0s    1s    2s",
    ]
    lines = render_timeline(three_tasks(), 20, 3.0)
    assert lines[2] == "別の…      █─────█"  # the name column is at most a third
    for line in lines:
        assert sum(get_cwidth(c) for c in line) <= 20


def test_a_short_window_late_in_a_session_has_distinct_labels() -> None:
    """A task 1000 s into the session that lived a millisecond: each tick its own label
    (the axis once labelled every tick `1000s`, after building a million candidates)."""
    axis = render_timeline([TaskSpan("quick", 1000.0, 1000.001)], 60, 1000.001)[-1]
    labels = axis.split()
    assert labels == ["1000s", "1000.00025s", "1000.0005s", "1000.00075s"]


@pytest.mark.parametrize("width", [20, 33, 80, 200])
def test_every_width_keeps_rows_aligned_and_within_bounds(width: int) -> None:
    lines = render_timeline(three_tasks(), width, 3.0)
    assert len(lines) == 4
    name_cols = min(width // 3, 10)  # 別のタスク is 10 columns wide, the widest name
    cols = width - name_cols - 1

    def first_mark(line: str) -> int:  # in display columns
        index = min(i for i, c in enumerate(line) if c in "─█!0")
        return sum(get_cwidth(c) for c in line[:index])

    for line in lines:
        assert sum(get_cwidth(c) for c in line) <= width
    # tick-1 and the axis's "0s" start together; 別のタスク (started at 1 s) a third in
    assert first_mark(lines[0]) == first_mark(lines[3]) == name_cols + 1
    assert first_mark(lines[2]) == name_cols + 1 + int(cols / 3)
    assert "!" in lines[1] and "!" not in lines[0] + lines[2]


def test_a_too_narrow_width_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 20 columns"):
        render_timeline(three_tasks(), 19, 3.0)


def test_a_real_log_with_steps(run_taskd: RunTaskd, tmp_path: Path) -> None:
    """taskd does not log steps yet: they are appended to a real log by hand, one of
    them long; rows come in the order the tasks started."""
    log = tmp_path / "session.log"
    script = "new msg hello 2 0.1\nnew fail 0.15 oops\nnew tick 0.1\nwait msg-1\nend\n"
    result = run_taskd(script, "--log", str(log), "--log-json", via="file")
    assert "[msg-1] hello" in result.lines, result.err
    stamp = json.loads(log.read_text().splitlines()[1])["ts"]
    with log.open("a") as file:
        for task, start, dur in (("msg-1", 0.1, 0.001), ("tick-1", 0.12, 0.06)):
            file.write(json.dumps({"ts": stamp, "task": task, "event": "step",
                                   "start_s": start, "dur_s": dur}) + "\n")
    spans = spans_from_log(str(log))
    assert [s.name for s in spans] == ["msg-1", "fail-1", "tick-1"]
    assert spans[0].end is not None and spans[1].end is not None and spans[2].end is not None
    assert spans[2].steps == [(0.12, 0.06)]
    lines = render_log(str(log), 50, long_step=0.05)
    assert [line.split()[0] for line in lines[:3]] == ["msg-1", "fail-1", "tick-1"]
    assert "█" in lines[0] and "!" in lines[2] and "!" not in lines[0] + lines[1]
    assert lines[3].split()[0].endswith("s")


def test_a_bad_log_is_one_error(tmp_path: Path) -> None:
    log = tmp_path / "bad.log"
    log.write_text("garbage\n")
    with pytest.raises(LogError, match=r"bad\.log:1: not a taskd log line"):
        render_log(str(log), 80)
