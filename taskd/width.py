"""Text measured by display width, not by len(): `別のタスク` is 5 characters but 10
columns wide, so tables padded with len() lose their columns.

wcwidth gives each character's width (2 for wide East Asian characters, 0 for
combining marks); a control character, which it calls -1, is counted as 1 here
(taskd escapes them before showing, and a table must not shrink).
"""

from __future__ import annotations

import re

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


# A space run; a wide character (with a closing mark after it: no line starts with
# 。 or ）); a run of narrow ones (a word).
_TOKENS = re.compile(
    r"(\s+)|([\u1100-\uffff][、。）」』，．]*)|([^\s\u1100-\uffff]+)"
)


def wrap(text: str, width: int) -> list[str]:
    """TEXT in lines of at most WIDTH columns, broken at spaces or between wide
    characters (Japanese has no spaces), never inside a word of narrow ones unless
    it is wider than a line."""
    width = max(1, width)
    lines: list[str] = []
    line = ""
    space = False
    for gap, wide, word in _TOKENS.findall(text):
        if gap:
            space = True
            continue
        piece = wide or word
        joined = f"{line} {piece}" if (line and space) else line + piece
        space = False
        if cwidth(joined) <= width:
            line = joined
            continue
        if line:
            lines.append(line)
        while cwidth(piece) > width:
            head = _fit(piece, width) or piece[0]
            lines.append(head)
            piece = piece[len(head):]
        line = piece
    if line or not lines:
        lines.append(line)
    return lines
