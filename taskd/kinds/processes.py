"""shell: a child process run through /bin/sh as an asyncio subprocess.

The child is started in a session (and process group) of its own, so that
cancelling can signal everything it started, grandchildren included: SIGTERM to the
group, SIGKILL after half the cancel grace if anything is left, then the child is
reaped. Half, so that the task has ended before `cancel` or `end` stop waiting.
A command that exits by itself gets the same treatment for whatever it left running
in its group (`sleep 99 &`): a shell task is over when its whole group is.

The groups still in use are remembered, so that the daemon can kill them when it
abandons a task (a second signal skips the grace period): no process a shell task
started outlives taskd.
"""

from __future__ import annotations

import asyncio
import os
import signal

from ..context import CANCEL_GRACE, SHELL_SETTINGS
from ._spec import Arg, builtin, text

CHUNK = 1 << 16
_GROUPS: set[int] = set()  # process groups of shell tasks not yet cleaned up


def kill_groups() -> int:
    """SIGKILL every process group a shell task has not cleaned up; how many."""
    killed = 0
    for pgid in list(_GROUPS):
        killed += _signal_group(pgid, signal.SIGKILL)
    _GROUPS.clear()
    return killed


class ShellFailure(Exception):
    """The command exited non-zero or was killed by a signal."""


def _signal_group(pgid: int, sig: int) -> bool:
    """Send SIG to the process group; False when nobody is left in it."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # the group id was reused by someone else's process
        return False
    return True


async def _pump(stream: asyncio.StreamReader) -> None:
    """Print each line the child writes; lines of any length, bytes of any kind.

    Only the new chunk is split: a long line without a newline is gathered in a
    bytearray, not copied again with every chunk (that was quadratic)."""
    partial = bytearray()
    while chunk := await stream.read(CHUNK):
        if b"\n" not in chunk:
            partial += chunk
            continue
        first, *lines, last = chunk.split(b"\n")
        partial += first
        print(partial.decode("utf-8", "replace"))
        for line in lines:
            print(line.decode("utf-8", "replace"))
        partial = bytearray(last)
    if partial:
        print(partial.decode("utf-8", "replace"))


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. Zombies do not count: an init that
    does not reap (some containers) would otherwise keep a group alive forever."""
    if not _signal_group(pgid, 0):
        return False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # no /proc: the signal test is all we have
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


async def _group_gone(pgid: int) -> None:
    """Return once nothing is left running in the group (its leader already reaped)."""
    delay = 0.001
    while _group_alive(pgid):
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


async def _finish(process: asyncio.subprocess.Process) -> None:
    """Reap the child. Its output is read (and dropped) meanwhile: asyncio's wait()
    returns only once the pipe is closed, and a child that filled the pipe (`yes`)
    would otherwise hold it open until the KILL."""
    if process.stdout is not None:
        while await process.stdout.read(CHUNK):
            pass
    await process.wait()


async def _stop(process: asyncio.subprocess.Process) -> None:
    """TERM the whole group, KILL it after half the grace period, reap the child."""
    pgid = process.pid  # start_new_session made the child its group's leader
    if process.returncode is not None and not _group_alive(pgid):
        return  # the usual case: the command ended and left nothing behind
    _signal_group(pgid, signal.SIGTERM)
    try:
        leader = _finish(process) if process.returncode is None else _group_gone(pgid)
        await asyncio.wait_for(leader, CANCEL_GRACE.get() / 2)
    except TimeoutError:
        pass
    finally:
        # Kill what is left even when the leader obeyed: a grandchild that ignores
        # SIGTERM is still in the group, and would otherwise outlive taskd.
        _signal_group(pgid, signal.SIGKILL)
        try:
            await asyncio.wait_for(_finish(process), CANCEL_GRACE.get() / 2)
        except TimeoutError:
            pass  # someone left the group (setsid) and holds the pipe: let it go
        finally:
            # Close the pipe transport now, on the loop; left to the garbage
            # collector it would try to, after the loop closed, with a traceback.
            transport = getattr(process, "_transport", None)
            if transport is not None:
                transport.close()


def _describe(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


@builtin(
    "shell",
    "runs COMMAND with /bin/sh -c; its stdout and stderr lines are the task's output; "
    "exit 0 is done, anything else failed",
    Arg("COMMAND", text, rest=True),
)
async def shell(command: str) -> None:
    cwd, extra = SHELL_SETTINGS.get()  # the task's --cwd and --env
    process = await asyncio.create_subprocess_shell(
        command,
        cwd=cwd,
        env={**os.environ, **dict(extra)} if extra else None,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,  # one pipe keeps the two in their real order
        start_new_session=True,
    )
    _GROUPS.add(process.pid)
    try:
        assert process.stdout is not None
        await _pump(process.stdout)
        returncode = await process.wait()
        await _stop(process)  # what the command left behind in its group
    except BaseException:
        await _stop(process)
        raise
    finally:
        _GROUPS.discard(process.pid)
    if returncode != 0:
        raise ShellFailure(_describe(returncode))
