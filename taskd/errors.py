"""The exceptions taskd raises on purpose.

Every error a user can cause is one of these, carrying a one-line message that is
shown as it is; anything else reaching a front-end is a bug, reported without a
traceback by the daemon's exception handler.
"""

from __future__ import annotations


class TaskdError(Exception):
    """Base of every error taskd reports to a user as one line."""


class CommandError(TaskdError):
    """A command line that cannot be carried out; nothing was changed."""


class ConfigError(TaskdError):
    """A configuration file or key that cannot be used (exit status 2)."""

    def __init__(self, source: str, message: str, key: str | None = None) -> None:
        self.source = source
        self.key = key
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {message}")


def shown(token: str, limit: int = 40) -> str:
    """Quote a user's token for an error message: one line, printable, bounded.

    Control characters and lone surrogates are escaped as repr() would, so a hostile
    token can never break the one-line promise or the terminal.
    """
    text = repr(token)
    if len(text) > limit + 2:
        text = text[: limit + 1] + "..." + text[0]
    return text
