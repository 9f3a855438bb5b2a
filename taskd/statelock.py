"""One taskd per state file.

Two daemons writing the same state file would each overwrite the other's tasks, and
`serve --restore` would bring back whichever wrote last. So a daemon holds an
advisory lock (flock) on STATE.lock beside the file for as long as it runs. The
kernel lets it go when the process ends in any way, kill -9 too: a crash never
leaves a lock behind for a restore to clear. The lock file holds its owner's pid,
for the message that names it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from .errors import shown
from .state import make_private_dirs


class StateUnavailable(Exception):
    """The state file is not a file, or another process holds it; one line."""


class StateLock:
    """The lock on one state file: acquire() at the start, release() at the end."""

    def __init__(self, state_path: str) -> None:
        self.state_path = state_path
        self.path = state_path + ".lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Hold the lock, or raise StateUnavailable. A folder that cannot be made or
        written is left to the state file's own writes to report."""
        if os.path.exists(self.state_path) and not os.path.isfile(self.state_path):
            # A folder, a device (/dev/zero would be read for ever), a FIFO: refused,
            # and no PATH.lock made beside it.
            what = "a folder" if os.path.isdir(self.state_path) else "not a regular file"
            raise StateUnavailable(
                f"state file {shown(self.state_path, 200)} is {what}; give a file's path "
                "(--state-file PATH) or none (--state-file off)"
            )
        try:
            make_private_dirs(os.path.dirname(os.path.abspath(self.path)))
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _pid_in(fd)
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise StateUnavailable(
                f"state file {shown(self.state_path, 200)} is in use by another taskd{who}; "
                "give this one a state file of its own (--state-file PATH) or none "
                "(--state-file off)"
            ) from None
        except OSError:
            os.close(fd)
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _pid_in(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
