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

from ..capture import MAX_LINE  # here in bytes: a longer line comes in pieces
from ..context import CANCEL_GRACE
from ._spec import Arg, builtin, command_line

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


def _cut(line: bytearray) -> int:
    """Where to cut a line longer than MAX_LINE: at MAX_LINE bytes, moved back (at
    most 3 bytes) to the start of a UTF-8 character, so no character is split."""
    for cut in range(MAX_LINE, MAX_LINE - 4, -1):
        if line[cut] & 0xC0 != 0x80:  # not a continuation byte
            return cut
    return MAX_LINE  # not UTF-8 anyway


def _print_full(line: bytearray) -> None:
    """Print pieces of LINE while it is longer than MAX_LINE; the rest stays in it."""
    while len(line) > MAX_LINE:
        cut = _cut(line)
        print(line[:cut].decode("utf-8", "replace"))
        del line[:cut]


def _print_line(line: bytearray) -> None:
    _print_full(line)
    print(line.decode("utf-8", "replace"))


async def _pump(stream: asyncio.StreamReader) -> None:
    """Print each line the child writes; bytes of any kind, every one of them.

    A line longer than MAX_LINE bytes is delivered as consecutive pieces of at most
    MAX_LINE bytes (as journald does with its LINE_MAX), so `cat /dev/zero` needs a
    bounded amount of memory. Only the new chunk is split, and the partial line
    never holds more than MAX_LINE + CHUNK bytes: the work is linear in the output."""
    partial = bytearray()
    while chunk := await stream.read(CHUNK):
        if b"\n" not in chunk:
            partial += chunk
            _print_full(partial)
            continue
        first, *lines, last = chunk.split(b"\n")
        partial += first
        _print_line(partial)
        for line in lines:
            if len(line) <= MAX_LINE:
                print(line.decode("utf-8", "replace"))
            else:
                _print_line(bytearray(line))
        partial = bytearray(last)
        _print_full(partial)
    if partial:
        _print_line(partial)


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
    Arg("COMMAND", command_line, rest=True),
)
async def shell(command: str) -> None:
    process = await asyncio.create_subprocess_shell(
        command,
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
