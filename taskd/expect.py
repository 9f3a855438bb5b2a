"""Transcript checks: does a run's output match the transcript shipped with it?

Why: a teacher ships an exercise with the output it must print (best run on the
virtual clock, whose output is the same every time); `taskd --expect TRANSCRIPT FILE`
runs FILE and, on any difference, shows a unified diff and exits 1.
"""

from __future__ import annotations

import difflib

NO_NEWLINE = "\\ No newline at end of file\n"


MAX_TRANSCRIPT = 1 << 26  # characters of a transcript read for --expect


class TranscriptError(ValueError):
    """The transcript cannot be read: one line, naming the file."""


def compare_transcript(expected_path: str, actual: str) -> str | None:
    """None if ACTUAL is exactly the text of EXPECTED_PATH, else a unified diff
    (expected first, as `diff expected actual` would show it).

    Bytes that are not UTF-8 compare as U+FFFD, on both sides alike if the caller
    decoded ACTUAL the same way. TranscriptError if the file cannot be read.
    """
    try:
        with open(expected_path, encoding="utf-8", errors="replace", newline="") as file:
            expected = file.read(MAX_TRANSCRIPT + 1)  # bounded: /dev/zero, a wrong file
    except OSError as exc:
        raise TranscriptError(
            f"{expected_path}: cannot read the transcript: {exc.strerror or exc}"
        ) from None
    if len(expected) > MAX_TRANSCRIPT:
        raise TranscriptError(
            f"{expected_path}: over {MAX_TRANSCRIPT:,} characters: not a transcript to compare"
        )
    if expected == actual:
        return None
    diff = difflib.unified_diff(
        _lines(expected), _lines(actual), fromfile=expected_path, tofile="actual output"
    )
    return "".join(diff)


def _lines(text: str) -> list[str]:
    """TEXT's lines with their ends; a last line without one is marked as diff does,
    so that a missing final newline shows up as a difference."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += "\n" + NO_NEWLINE
    return lines
