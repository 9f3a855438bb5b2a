"""shell: a child process run through /bin/sh as an asyncio subprocess.

The child is started in a session of its own, so that cancelling can signal
everything it started, grandchildren included, even those that made a process group
of their own (GNU `timeout`): SIGTERM to the whole session, SIGKILL after half the
cancel grace if anything is left, then the child is reaped. Half, so that the task
has ended before `cancel` or `end` stop waiting. A command that exits by itself gets
the same treatment for whatever it left running (`sleep 99 &`): a shell task is over
when its whole session is.

Output is read until the pipe closes, or, once the shell has exited and nothing of
its session is left, for LINGER seconds more: a process that left the session
(`setsid`) and kept the pipe must not keep the task running forever.

The sessions still in use are remembered, so that the daemon can kill them when it
abandons a task (a second signal skips the grace period): no process a shell task
started in its session outlives taskd.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from ..capture import MAX_LINE  # here in bytes: a longer line comes in pieces
from ..context import CANCEL_GRACE, SHELL_SETTINGS, machinery
from . import _sessions as sessions
from ._spec import Arg, builtin, command_line

CHUNK = 1 << 16
KILLED_PATIENCE = 0.2  # seconds a SIGKILLed session is given to be gone
LINGER = 0.25  # seconds of reading after the session is gone and the pipe is not


def kill_groups() -> int:
    """SIGKILL every session a shell task has not cleaned up; how many (the daemon
    calls this at the end, for tasks it abandoned)."""
    return sessions.kill_all()


class ShellFailure(Exception):
    """The command exited non-zero or was killed by a signal."""


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


@machinery
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


@machinery
async def _finish(process: asyncio.subprocess.Process) -> None:
    """Reap the child. Its output is read (and dropped) meanwhile: a child that
    filled the pipe (`yes`) would otherwise not get to its end until the KILL."""
    if process.stdout is not None:
        while await process.stdout.read(CHUNK):
            pass
    await process.wait()


async def _stop(process: asyncio.subprocess.Process) -> None:
    """TERM the whole session, KILL it after half the grace period, reap the child."""
    sid = process.pid  # start_new_session made the child its session's leader
    if process.returncode is not None and not sessions.alive(sid):
        return  # the usual case: the command ended and left nothing behind
    sessions.signal_session(sid, signal.SIGTERM)
    try:
        leader = _finish(process) if process.returncode is None else sessions.gone(sid)
        await asyncio.wait_for(leader, CANCEL_GRACE.get() / 2)
    except TimeoutError:
        pass
    finally:
        # Kill what is left even when the leader obeyed: a grandchild that ignores
        # SIGTERM is still in the session, and would otherwise outlive taskd.
        sessions.signal_session(sid, signal.SIGKILL)
        try:
            await asyncio.wait_for(_finish(process), CANCEL_GRACE.get() / 2)
        except TimeoutError:
            pass  # someone left the session (setsid) and holds the pipe: let it go
        try:
            # The KILLed grandchildren's exits, so that `cancelled` means gone (a
            # loaded machine had one still there when the reply came); a process
            # stuck in the kernel is not waited for long.
            await asyncio.wait_for(sessions.gone(sid), KILLED_PATIENCE)
        except TimeoutError:
            pass


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """asyncio's own protocol, also telling when the child has exited: Process.wait()
    cannot, since it waits for the pipe as well."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exited: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


async def _read_output(process: asyncio.subprocess.Process, exited: asyncio.Future[None]) -> None:
    """Print the child's output until the pipe closes, or until the child has exited,
    nothing of its session is left, and LINGER more seconds have passed."""
    assert process.stdout is not None
    pump = asyncio.ensure_future(_pump(process.stdout))
    try:
        await asyncio.wait({pump, exited}, return_when=asyncio.FIRST_COMPLETED)
        delay = 0.01
        while not pump.done() and sessions.alive(process.pid):
            await asyncio.wait({pump}, timeout=delay)  # the session may still write
            delay = min(delay * 2, 0.2)
        if not pump.done():
            await asyncio.wait({pump}, timeout=LINGER)  # what is still in flight
    finally:
        if not pump.done():
            pump.cancel()  # whoever holds the pipe has left the session
            await asyncio.wait({pump})
    if not pump.cancelled():
        pump.result()


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
    loop = asyncio.get_running_loop()
    cwd, extra = SHELL_SETTINGS.get()  # the task's --cwd and --env
    transport, protocol = await loop.subprocess_shell(
        lambda: _Protocol(limit=CHUNK, loop=loop),
        command,
        cwd=cwd,
        env={**os.environ, **dict(extra)} if extra else None,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,  # one pipe keeps the two in their real order
        start_new_session=True,
    )
    process = asyncio.subprocess.Process(transport, protocol, loop)
    sessions.SESSIONS.add(process.pid)
    try:
        await _read_output(process, protocol.exited)
        returncode = await process.wait()
        await _stop(process)  # what the command left behind in its session
    except BaseException:
        await _stop(process)
        raise
    finally:
        sessions.SESSIONS.discard(process.pid)
        # Close the pipe transport now, on the loop; left to the garbage collector
        # it would try to, after the loop closed, with a traceback.
        transport.close()
    if returncode != 0:
        raise ShellFailure(_describe(returncode))
