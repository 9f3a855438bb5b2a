"""Bad input that used to start a task (issue 14, item 16): every argument is checked
at `new`, one error and nothing started; config values are bounded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import RunTaskd

REFUSED = {
    "blocking-huge": ("new blocking 1e300", "SECONDS: expected seconds <= 1e9, got '1e300'"),
    "timer-huge": ("new timer 1e300", "SECONDS: expected seconds <= 1e9, got '1e300'"),
    "timer-huge-power": ("new timer 10**10", "SECONDS: expected seconds <= 1e9"),
    "search-power-overflows": ("new search 2**5000", "P: expected a finite number"),
    "shell-nul": ('new shell "echo a\0b"', "COMMAND: a command cannot contain a NUL byte"),
    "shell-nul-words": ("new shell echo a\0b c", "COMMAND: a command cannot contain a NUL byte"),
    "sleep-huge": ("sleep 1e300", "SECONDS: expected seconds <= 1e9"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_an_argument_that_would_fail_in_the_task_is_refused_at_new(
    run_taskd: RunTaskd, case: str
) -> None:
    line, message = REFUSED[case]
    result = run_taskd(f"{line}\nshow --all --json\n")
    assert result.status == 1
    assert len(result.errors) == 1, result.err
    assert result.errors[0].startswith("<stdin>:1: error: ") and message in result.errors[0]
    assert result.lines == ["[]"]  # nothing started, nothing finished


def test_a_default_as_kinds_shows_it_is_accepted(run_taskd: RunTaskd) -> None:
    result = run_taskd("kinds\nnew search 2**-20 1\nnew timer 10**-1\nshow --json\nend\n")
    assert result.status == 0, result.err
    assert any("search [P=2**-20]" in line for line in result.lines)
    shown = json.loads(next(ln for ln in result.lines if ln.startswith("[{")))
    assert [t["name"] for t in shown] == ["search-1", "timer-1"]


@pytest.mark.parametrize(
    ("key", "value"), [("stall_threshold", "1e11"), ("cancel_grace", "1e11"),
                       ("stall_threshold", "3601")]
)
def test_a_config_duration_out_of_bounds_is_refused(
    run_taskd: RunTaskd, tmp_path: Path, key: str, value: str
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"{key} = {value}\n")
    marker = tmp_path / "started"
    result = run_taskd(f"new shell 'touch {marker}'\nwait\n", "--config", str(config))
    assert result.status == 2
    assert len(result.errors) == 1, result.err
    assert f"{key}: expected a finite number >= 0 and <= 3600" in result.errors[0]
    assert not marker.exists()


ENDLESS = {
    "--config": "taskd: error: /dev/zero: over 1,048,576 characters: not a taskd config",
    "--expect": "taskd: error: /dev/zero: over 67,108,864 characters: not a transcript to "
    "compare",
    "--state-file": "taskd: error: state file '/dev/zero' is not a regular file; give a "
    "file's path (--state-file PATH) or none (--state-file off)",
}


@pytest.mark.parametrize("option", ENDLESS)
def test_a_file_option_given_an_endless_device_is_refused_in_one_line(
    run_taskd: RunTaskd, option: str
) -> None:
    """/dev/zero where a file is due: each was read whole, 2.2-3.4 GB in 3 s, and on
    until memory ran out. Now a bounded read, or no read at all, and one line."""
    result = run_taskd("", option, "/dev/zero")
    assert (result.status, result.lines, result.errors) == (2, [], [ENDLESS[option]])
