"""shell: a child process run through /bin/sh as an asyncio subprocess.

The child is started in a session (and process group) of its own, so that
cancelling can signal everything it started, grandchildren included: SIGTERM to the
group, SIGKILL after half the cancel grace if anything is left, then the child is
reaped. Half, so that the task has ended before `cancel` or `end` stop waiting.
"""

from __future__ import annotations

import asyncio
import os
import signal

from ..context import CANCEL_GRACE
from ._spec import Arg, builtin, text

CHUNK = 1 << 16


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
    """Print each line the child writes; lines of any length, bytes of any kind."""
    partial = b""
    while chunk := await stream.read(CHUNK):
        lines = (partial + chunk).split(b"\n")
        partial = lines.pop()
        for line in lines:
            print(line.decode("utf-8", "replace"))
    if partial:
        print(partial.decode("utf-8", "replace"))


async def _stop(process: asyncio.subprocess.Process) -> None:
    """TERM the whole group, KILL it after half the grace period, reap the child."""
    pgid = process.pid  # start_new_session made the child its group's leader
    _signal_group(pgid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), CANCEL_GRACE.get() / 2)
    except TimeoutError:
        pass
    finally:
        # Kill what is left even when the leader obeyed: a grandchild that ignores
        # SIGTERM is still in the group, and would otherwise outlive taskd.
        _signal_group(pgid, signal.SIGKILL)
        if process.returncode is None:
            await process.wait()


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
    process = await asyncio.create_subprocess_shell(
        command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,  # one pipe keeps the two in their real order
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        await _pump(process.stdout)
        returncode = await process.wait()
    except BaseException:
        await _stop(process)
        raise
    if returncode != 0:
        raise ShellFailure(_describe(returncode))
