"""The sessions of shell tasks: who is in one, signalling all of it, waiting for it.

Each shell task runs in a session of its own (start_new_session), and the session,
not the process group, is what taskd cleans up: tools that put themselves in a
group of their own (GNU `timeout`, a shell's job control) stay in the session. Only
`setsid` leaves it, and whoever does that has asked to be on their own.

Members are found in /proc (field 6 of /proc/PID/stat is the session id); without
/proc, only the leader's process group can be reached. Zombies do not count: an
init that does not reap (some containers) would otherwise keep a session alive.
"""

from __future__ import annotations

import asyncio
import os
import signal

SESSIONS: set[int] = set()  # session ids of shell tasks not yet cleaned up


def members(sid: int) -> list[int] | None:
    """The live processes of session SID, or None when /proc cannot be read."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    found = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        # pid (comm) state ppid pgrp session ...: comm may hold spaces and ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 3 and int(fields[3]) == sid and fields[0] != b"Z":
            found.append(int(entry))
    return found


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):  # gone, or the id was reused
        return False
    return True


def signal_session(sid: int, sig: int) -> bool:
    """Send SIG to every process of the session; False when nobody was left."""
    sent = _signal_group(sid, sig)  # the leader's group: all there is without /proc
    for pid in members(sid) or ():
        try:
            os.kill(pid, sig)
            sent = True
        except (ProcessLookupError, PermissionError):
            pass
    return sent


def alive(sid: int) -> bool:
    """Whether a process of the session still runs."""
    found = members(sid)
    if found is None:
        return _signal_group(sid, 0)
    return bool(found)


async def gone(sid: int) -> None:
    """Return once nothing is left running in the session."""
    delay = 0.001
    while alive(sid):
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


def kill_all() -> int:
    """SIGKILL every session a shell task has not cleaned up; how many had someone."""
    killed = 0
    for sid in list(SESSIONS):
        # Twice: a process forked between the scan and the signal is caught the
        # second time (a fork bomb is not; that is what ulimits are for).
        hit = signal_session(sid, signal.SIGKILL)
        signal_session(sid, signal.SIGKILL)
        killed += hit
    SESSIONS.clear()
    return killed
