"""The shell's input history file: where it lives and how it fails.

`history_file = ""` means $XDG_STATE_HOME/taskd/history (the XDG spec's place for
state that should outlive a session but is not worth a backup), "off" means none.
A history that cannot be read or written is said once and then ignored: losing
history must never cost the person their prompt.

The file holds every line typed (`new shell 'mysql -pSECRET'`), so it is private,
as bash keeps its own: the file is created 0600 and folders taskd creates 0700; an
existing history file, and the `taskd` folder of the default location (taskd's own),
are narrowed to that if they are open to others. Other existing folders are the
user's and are left alone.
"""

from __future__ import annotations

import os
import stat
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


def _private_folders(folder: Path) -> None:
    """Create FOLDER and its missing parents, each 0700 (Path.mkdir would give the
    parents the default mode)."""
    missing: list[Path] = []
    while not folder.is_dir():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            if not path.is_dir():
                raise


def _narrow(path: Path, mode: int) -> None:
    """Take away what MODE does not grant, if PATH grants more (and is ours)."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
        if current & ~mode:
            path.chmod(current & mode)
    except OSError:
        pass  # not ours to change, or gone: the history still works


def _private_file(path: Path) -> None:
    """Create PATH 0600 if it is missing; narrow it to 0600 if it exists."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK, 0o600))
    except OSError:
        return  # FileHistory meets the same error and reports it
    _narrow(path, 0o600)


def make_history(setting: str, environ: Mapping[str, str], report: Report) -> History:
    """The session's history. REPORT may be called from the loading thread."""
    path = history_path(setting, environ)
    if path is None:
        return InMemoryHistory()
    try:
        _private_folders(path.parent)
    except OSError as exc:
        report(f"cannot create {path.parent}: {exc.strerror or exc}; history off")
        return InMemoryHistory()
    if not setting:
        _narrow(path.parent, 0o700)  # $XDG_STATE_HOME/taskd is taskd's own folder
    _private_file(path)
    # Threaded: a long history file is read beside the loop, not on it.
    return ThreadedHistory(ForgivingFileHistory(path, report))
