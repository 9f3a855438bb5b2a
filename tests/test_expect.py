"""Transcript comparison, against real taskd output."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import RunTaskd

from taskd.expect import TranscriptError, compare_transcript

SCRIPT = "new msg hello 2 0\nwait\nend\n"


def test_a_real_run_matches_its_transcript_and_a_change_is_a_diff(
    run_taskd: RunTaskd, tmp_path: Path
) -> None:
    first = run_taskd(SCRIPT, via="file").out
    transcript = tmp_path / "expected.txt"
    transcript.write_text(first, encoding="utf-8")
    assert compare_transcript(str(transcript), run_taskd(SCRIPT, via="file").out) is None

    changed = run_taskd(SCRIPT.replace("hello", "bye"), via="file").out
    diff = compare_transcript(str(transcript), changed)
    assert diff is not None
    lines = diff.splitlines()
    assert lines[0] == f"--- {transcript}" and lines[1] == "+++ actual output"
    assert lines[2].startswith("@@ ")
    assert "-[msg-1] hello" in lines and "+[msg-1] bye" in lines
    assert all(line[:1] in " -+@" for line in lines)


def test_a_missing_final_newline_and_order_are_differences(tmp_path: Path) -> None:
    transcript = tmp_path / "t.txt"
    transcript.write_text("a\nb\n")
    diff = compare_transcript(str(transcript), "a\nb")
    assert diff is not None and diff.endswith("+b\n\\ No newline at end of file\n")
    swapped = compare_transcript(str(transcript), "b\na\n")
    assert swapped is not None and swapped.endswith("@@ -1,2 +1,2 @@\n+b\n a\n-b\n")
    crlf = compare_transcript(str(transcript), "a\r\nb\r\n")
    assert crlf is not None  # line ends are part of the output


def test_an_unreadable_transcript_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(TranscriptError, match=r"nope\.txt: cannot read the transcript: No such"):
        compare_transcript(str(tmp_path / "nope.txt"), "")
    with pytest.raises(ValueError, match="cannot read the transcript"):
        compare_transcript(str(tmp_path), "")
