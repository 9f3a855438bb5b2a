"""The shell's input history file: where it lives and how it fails.

`history_file = ""` means $XDG_STATE_HOME/taskd/history (the XDG spec's place for
state that should outlive a session but is not worth a backup), "off" means none.
A history that cannot be read or written is said once and then ignored: losing
history must never cost the person their prompt.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from prompt_toolkit.history import FileHistory, History, InMemoryHistory, ThreadedHistory

Report = Callable[[str], None]


def history_path(setting: str, environ: Mapping[str, str]) -> Path | None:
    if setting == "off":
        return None
    if setting:
        return Path(setting).expanduser()
    base = environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "taskd" / "history"


class ForgivingFileHistory(FileHistory):
    """A FileHistory whose read and write failures are reported, not raised (raised
    inside the prompt, they would end the shell)."""

    def __init__(self, path: Path, report: Report) -> None:
        super().__init__(str(path))
        self._report = report
        self._lock = threading.Lock()
        self.failed = False

    def load_history_strings(self) -> Iterable[str]:
        try:
            return list(super().load_history_strings())
        except OSError as exc:
            self._fail("read", exc)
            return []

    def store_string(self, string: str) -> None:
        if self.failed:
            return
        try:
            super().store_string(string)
        except OSError as exc:
            self._fail("write", exc)

    def _fail(self, doing: str, exc: OSError) -> None:
        # Loading runs in a thread, storing on the loop: both may fail at once.
        with self._lock:
            if self.failed:
                return
            self.failed = True
        reason = exc.strerror or str(exc)
        where = os.fsdecode(self.filename)
        self._report(f"cannot {doing} the history file {where}: {reason}; history off")


def make_history(setting: str, environ: Mapping[str, str], report: Report) -> History:
    """The session's history. REPORT may be called from the loading thread."""
    path = history_path(setting, environ)
    if path is None:
        return InMemoryHistory()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        report(f"cannot create {path.parent}: {exc.strerror or exc}; history off")
        return InMemoryHistory()
    # Threaded: a long history file is read beside the loop, not on it.
    return ThreadedHistory(ForgivingFileHistory(path, report))
