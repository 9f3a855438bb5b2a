"""Colour for the shell: whether to use it, and which part of a line gets which.

The engine hands the front-end finished lines of text (formatting.py made them);
this module only decides how those lines look. Colour is a help, never a carrier
of meaning, so turning it off (NO_COLOR, `color = "never"`, --no-color, a terminal
that has no colours) loses nothing.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping

from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.output import ColorDepth
from prompt_toolkit.styles import Style

from ..registry import State

# Stable across runs and machines (unlike hash(), which is salted per process), so
# a task keeps its colour from one session to the next. No red: red means error.
PALETTE = (
    "ansicyan",
    "ansimagenta",
    "ansigreen",
    "ansiyellow",
    "ansiblue",
    "ansibrightcyan",
    "ansibrightmagenta",
    "ansibrightgreen",
)

STATE_STYLES = {
    State.RUNNING: "ansigreen",
    State.CANCELLING: "ansiyellow bold",
    State.DONE: "ansiblue",
    State.CANCELLED: "ansiyellow",
    State.FAILED: "ansired bold",
}

# With colour off the toolbar still needs to stand apart from the prompt: reverse
# video is an attribute, not a colour, and every terminal has it.
PLAIN_STYLE = Style.from_dict({"bottom-toolbar": "reverse", "bottom-toolbar.text": ""})

COLOR_STYLE = Style.from_dict(
    {
        "error": "ansired",
        "prompt": "bold",
        "header": "bold",
        "bottom-toolbar": "noreverse bg:#303030 #d0d0d0",
        "bottom-toolbar.warn": "bg:#303030 ansiyellow bold",
        **{f"task-{i}": colour for i, colour in enumerate(PALETTE)},
        **{f"state-{state.value}": style for state, style in STATE_STYLES.items()},
    }
)

DUMB_TERMS = frozenset({"", "dumb", "unknown"})


def wants_color(setting: str, environ: Mapping[str, str], term_colors: int | None) -> bool:
    """The `color` setting resolved: "auto" is on unless NO_COLOR is set (to anything
    but the empty string, as no-color.org asks) or the terminal cannot show colour.

    TERM_COLORS is what terminfo says the terminal has (None: unknown, assume yes).
    """
    if setting == "never":
        return False
    if setting == "always":
        return True
    if environ.get("NO_COLOR"):
        return False
    if environ.get("TERM", "") in DUMB_TERMS:
        return False
    return term_colors is None or term_colors >= 8


def terminal_colors(term: str | None, fd: int) -> int | None:
    """How many colours terminfo says TERM has; None when terminfo cannot say."""
    try:
        import curses

        curses.setupterm(term, fd)
        return int(curses.tigetnum("colors"))
    except Exception:  # no curses module, no terminfo entry, fd not a terminal
        return None


def color_depth(on: bool, default: ColorDepth) -> ColorDepth:
    """The depth the prompt renders with; 1 bit means attributes only."""
    if not on:
        return ColorDepth.DEPTH_1_BIT
    return default if default is not ColorDepth.DEPTH_1_BIT else ColorDepth.DEPTH_4_BIT


def task_style(name: str) -> str:
    return f"class:task-{zlib.crc32(name.encode('utf-8', 'replace')) % len(PALETTE)}"


_CONTROL = {c: "?" for c in (*range(0x20), 0x7F) if c not in (0x09, 0x0A)}


def printable(text: str) -> str:
    """Control characters (other than tab and newline) as '?': a task's output must
    not move the cursor, ring the bell or switch the character set under the prompt."""
    return text.translate(_CONTROL)


_NAME = r"[\w.-]+"
_TASK_LINE = re.compile(rf"\[({_NAME})\] ")
_ENDED = re.compile(rf"({_NAME}) (done|failed) after ")
_VERB = re.compile(rf"(started|cancelled) ({_NAME})$")
_HEADER = re.compile(r"NAME +KIND +STATE +AGE +DETAIL$")
_STATES = frozenset(state.value for state in State)


def line_fragments(line: str) -> StyleAndTextTuples:
    """One output line (no newline) with its task name and state coloured."""
    if m := _TASK_LINE.match(line):
        return [("", "["), (task_style(m[1]), m[1]), ("", "] "), ("", line[m.end() :])]
    if m := _ENDED.match(line):
        style = "class:state-failed" if m[2] == "failed" else ""
        return [(task_style(m[1]), m[1]), (style, line[m.end(1) :])]
    if m := _VERB.match(line):
        return [("", m[1] + " "), (task_style(m[2]), m[2])]
    return [("", line)]


def table_fragments(lines: list[str]) -> StyleAndTextTuples:
    """`show`'s table: a bold header, names in their colours, states in theirs.

    The columns are found from the header's words, so this follows formatting.table
    without knowing its widths.
    """
    header = lines[0]
    state_at, age_at = header.index("STATE"), header.index("AGE")
    kind_at = header.index("KIND")
    out: StyleAndTextTuples = [("class:header", header), ("", "\n")]
    for row in lines[1:]:
        name = row[:kind_at].rstrip()
        state = row[state_at:age_at].rstrip()
        out += [
            (task_style(name), name),
            ("", row[len(name) : state_at]),
            (f"class:state-{state}" if state in _STATES else "", state),
            ("", row[state_at + len(state) :]),
            ("", "\n"),
        ]
    return out


def fragments(text: str, is_error: bool) -> StyleAndTextTuples:
    """TEXT (whole lines, each ending with a newline) as styled fragments."""
    text = printable(text)
    if is_error:
        return [("class:error", text)]
    lines = text.split("\n")
    tail = lines.pop()  # "" when TEXT ends with a newline
    out: StyleAndTextTuples = []
    i = 0
    while i < len(lines):
        if _HEADER.match(lines[i]):
            j = i + 1
            while j < len(lines) and lines[j]:
                j += 1
            out += table_fragments(lines[i:j])
            i = j
            continue
        out += [*line_fragments(lines[i]), ("", "\n")]
        i += 1
    if tail:
        out.append(("", tail))
    return out
