"""The scripted front-end through the real entry point."""

from __future__ import annotations

import json

import pytest
from conftest import RunTaskd

VIAS = ["pipe", "file", "stdin-file"]


@pytest.mark.parametrize("via", VIAS)
def test_tasks_run_and_report(run_taskd: RunTaskd, via: str) -> None:
    result = run_taskd("new tick 0.01 3 --name t\nwait t\nshow --all --json\n", via=via)
    assert result.status == 0, result.err
    assert result.lines[:4] == ["started t", "[t] tick 1", "[t] tick 2", "[t] tick 3"]
    assert result.lines[4].startswith("t done after ")
    (record,) = json.loads(result.lines[5])
    assert record["name"] == "t" and record["kind"] == "tick" and record["state"] == "done"
    assert record["started_at"].endswith("+00:00") and record["runtime_s"] > 0


@pytest.mark.parametrize("via", VIAS)
def test_errors_are_numbered_and_processing_goes_on(run_taskd: RunTaskd, via: str) -> None:
    result = run_taskd("shwo\n\n# a comment\nnew tick -1\nnew timer 0 --name ok\n", via=via)
    assert result.status == 1
    source = "<stdin>" if via != "file" else "script.tdc"
    assert [e.split(": error: ")[0].rsplit("/", 1)[-1] for e in result.errors] == [
        f"{source}:1", f"{source}:4",
    ]
    assert "did you mean 'show'?" in result.errors[0]
    assert "started ok" in result.lines


def test_strict_stops_at_first_error(run_taskd: RunTaskd) -> None:
    result = run_taskd("bogus\nnew idle --name never\n", "--strict")
    assert result.status == 1
    assert "started never" not in result.out


def test_last_line_without_newline_runs(run_taskd: RunTaskd) -> None:
    result = run_taskd("new timer 0 --name last")
    assert result.status == 0
    assert "started last" in result.lines


def test_missing_file_is_a_usage_error(run_taskd: RunTaskd) -> None:
    result = run_taskd("", "/nonexistent/script.tdc")
    assert result.status == 2
    assert result.errors == [
        "taskd: error: cannot read /nonexistent/script.tdc: No such file or directory"
    ]


def test_unknown_option_is_a_usage_error(run_taskd: RunTaskd) -> None:
    result = run_taskd("", "--bogus")
    assert result.status == 2
