"""Helpers for driving the interactive shell in tests: ANSI stripping and a deadline."""

from __future__ import annotations

import re

# CSI sequences (colours, cursor moves, erase), OSC sequences, and lone ESC-x pairs.
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")

# Only a safety net: every wait returns as soon as what it waits for has appeared.
DEADLINE = 30.0

# SGR parameters that set a colour (30-37, 90-97, 38;5;N, 38;2;...); bold and reverse
# are attributes, not colours, and may stay when colour is off.
COLOUR_SGR = re.compile(r"\x1b\[[0-9;]*?(?:\b3[0-8]|\b9[0-7])[0-9;]*m")


def plain(text: str) -> str:
    """What a person reads: escape sequences removed, carriage returns dropped."""
    return ANSI.sub("", text).replace("\r", "")
