"""Control characters made visible, for text that reaches a terminal.

A task's output is not taskd's to let loose on a terminal: an escape sequence in it
could write the clipboard (OSC 52), retitle the window, move the cursor up and erase
lines already shown, and a bidi override (U+202E) reorders what follows so that the
screen says something other than the bytes. On a terminal every such character is
shown as a backslash escape, as Python writes it: `\\x1b`, `\\x9b`, `\\u202e`. One
form for all of them (caret notation has no spelling for C1 or bidi controls), and
one a person can paste back into a `printf`. Tab and newline pass: they only lay
text out. Text going to a file or a pipe is not for a terminal and keeps its bytes.
"""

from __future__ import annotations

import re

# C0 (but tab and newline), DEL, C1, the bidi embeddings and overrides
# (U+202A-U+202E) and isolates (U+2066-U+2069).
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(found: re.Match[str]) -> str:
    code = ord(found[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """TEXT with every control character (see CONTROLS) as its backslash escape."""
    return CONTROLS.sub(_escape, text) if CONTROLS.search(text) else text
