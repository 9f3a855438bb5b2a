"""Text measured by display width, not by len(): `別のタスク` is 5 characters but 10
columns wide, so tables padded with len() lose their columns.

wcwidth gives each character's width (2 for wide East Asian characters, 0 for
combining marks); a control character, which it calls -1, is counted as 1 here
(taskd escapes them before showing, and a table must not shrink).
"""

from __future__ import annotations

from wcwidth import wcwidth

ELLIPSIS = "…"


def _w(char: str) -> int:
    width = wcwidth(char)
    return 1 if width < 0 else width


def cwidth(text: str) -> int:
    """Columns TEXT takes on a terminal."""
    if text.isascii():
        return len(text)  # the common case, without a call per character
    return sum(_w(c) for c in text)


def ljust(text: str, width: int) -> str:
    """TEXT padded with spaces to WIDTH columns (unchanged if already wider)."""
    return text + " " * max(0, width - cwidth(text))


def _fit(text: str, width: int) -> str:
    """The longest start of TEXT that fits in WIDTH columns (zero-width marks kept with
    the character before them)."""
    used = 0
    for i, char in enumerate(text):
        used += _w(char)
        if used > width:
            return text[:i]
    return text


def fit(text: str, width: int) -> str:
    """The longest start of TEXT that fits in WIDTH columns (no ellipsis)."""
    return _fit(text, max(width, 0))


def cut(text: str, width: int) -> str:
    """TEXT cut to WIDTH columns, ending in an ellipsis when something was cut; a wide
    character that would be split is left out whole (the result may be a column
    short)."""
    if width <= 0:
        return ""
    if cwidth(text) <= width:
        return text
    return _fit(text, width - 1) + ELLIPSIS


def wrap(text: str, width: int) -> list[str]:
    """TEXT in lines of at most WIDTH columns, broken at spaces; a word wider than a
    line is broken where it must (never inside a character). Runs of spaces between
    words become one."""
    width = max(1, width)
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if cwidth(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        while cwidth(word) > width:
            head = _fit(word, width) or word[0]  # a wide char in a 1-column line: whole
            lines.append(head)
            word = word[len(head):]
        line = word
    if line or not lines:
        lines.append(line)
    return lines
