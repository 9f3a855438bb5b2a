"""Styled text as data: a line is a list of (style, text) fragments.

Handlers and event presenters build fragments; each consumer renders them its own
way (plain text for pipes and files, colours for a terminal, JSON for a socket).
The style names say what a piece *is*, never how it looks: `task` (a task's name),
`state-STATE`, `header`, `error`, `failed`, `explain`, `time` (a timestamp). Only the
terminal front-end turns them into colours, so wording can change without any colour being lost.
"""

from __future__ import annotations

Fragments = list[tuple[str, str]]
Line = str | Fragments  # a plain line is simply a string


def plain(line: Line) -> str:
    """The text of LINE without its styles."""
    if isinstance(line, str):
        return line
    return "".join([text for _, text in line])


def task(name: str) -> tuple[str, str]:
    return ("task", name)
