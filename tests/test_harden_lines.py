"""Long lines (issue 14, items 5 and 6): split at a documented maximum, every byte
delivered, memory bounded, work linear."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import RunTaskd, taskd_command

from taskd.kinds.processes import MAX_LINE

# Runs its arguments as a child and prints the peak RSS (KiB) of all its waited-for
# descendants: taskd and whatever taskd reaped.
PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def task_lines(out: str, name: str) -> list[str]:
    prefix = f"[{name}] "
    return [line[len(prefix):] for line in out.split("\n") if line.startswith(prefix)]


def test_a_long_shell_line_arrives_whole_in_max_line_pieces(
    run_taskd: RunTaskd, tmp_path: Path
) -> None:
    ascii_line = "x" * (3 * MAX_LINE + 1000)
    # One byte, then two-byte characters: the cut at MAX_LINE bytes would fall inside one.
    utf8_line = "a" + "é" * (MAX_LINE // 2 + 7000)
    data = tmp_path / "long.txt"
    data.write_text(f"{ascii_line}\nshort\n{utf8_line}", encoding="utf-8")
    result = run_taskd(f"new shell 'cat {data}'\nwait\n")
    assert result.status == 0, result.err
    lines = task_lines(result.out, "shell-1")
    assert [len(line) for line in lines[:5]] == [MAX_LINE, MAX_LINE, MAX_LINE, 1000, 5]
    assert "".join(lines[:4]) == ascii_line
    assert lines[4] == "short"
    rest = lines[5:]
    assert len(rest) == 2
    assert all(len(piece.encode()) <= MAX_LINE for piece in rest)
    assert "".join(rest) == utf8_line  # no character split, no U+FFFD


def test_an_endless_line_needs_bounded_memory(tmp_path: Path, env: dict[str, str]) -> None:
    size = 300_000_000  # bytes of NUL, no newline
    script = tmp_path / "flood.tdc"
    script.write_text(f"new shell 'head -c {size} /dev/zero'\nwait\n")
    peak_kib = int(
        subprocess.run(
            [sys.executable, "-c", PEAK_RSS, *taskd_command(str(script))],
            env=env, capture_output=True, check=True, timeout=300,
        ).stdout
    )
    assert peak_kib < 150_000, f"peak RSS {peak_kib} KiB for a {size}-byte line"
