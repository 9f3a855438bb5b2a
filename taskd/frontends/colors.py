"""Colour for the shell: whether to use it, and which part of a line gets which.

Lines reach the shell as styled fragments (formatting.py and the commands say which
piece is a task name, a state, a header); this module only decides how each kind of
piece looks. Colour is a help, never a carrier of meaning, so turning it off
(NO_COLOR, `color = "never"`, --no-color, a terminal that has no colours) loses
nothing.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.output import ColorDepth
from prompt_toolkit.styles import Style

from ..fragments import Fragments
from ..registry import State
from .visible import visible

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
    State.WAITING: "ansibrightblack",
    State.QUEUED: "ansibrightblack italic",
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
        "failed": "ansired bold",
        "explain": "italic ansibrightblack",
        "prompt": "bold",
        "header": "bold",
        "time": "ansibrightblack",  # a timestamp (+1.002)
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


def printable(text: str) -> str:
    """Control characters (other than tab and newline; C1 and bidi controls too) as
    backslash escapes (visible.py): a task's output must not move the cursor, ring
    the bell, switch the character set or reorder the line under the prompt."""
    return visible(text)


def paint_fragments(payload: str | Fragments, is_error: bool) -> StyleAndTextTuples:
    """PAYLOAD (plain text, or one styled line) as prompt_toolkit style fragments.

    A piece styled `task` gets that task's own colour; any other style name is a
    class of the style sheet. Every piece is made printable first."""
    if isinstance(payload, str):
        return [("class:error" if is_error else "", printable(payload))]
    out: StyleAndTextTuples = []
    for style, text in payload:
        if style == "task":
            out.append((task_style(text), printable(text)))
        else:
            out.append((f"class:{style}" if style else "", printable(text)))
    out.append(("", "\n"))
    return out
