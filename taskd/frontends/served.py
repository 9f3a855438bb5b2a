"""The served front-end: the daemon listening on its control socket (and console).

It reads no commands itself: each connection of the SocketServer is a reader of its
own, with its own replies. Task events go to this front-end's Output (the daemon's
stdout and stderr, which systemd or a container collects; /dev/null once detached).
It never ends by itself: a served daemon ends when asked (`end`, a signal).

The console (`taskd console`) is aioconsole's interactive server on a second socket
in the same private folder: a Python prompt with top-level await inside the
daemon's loop. Tasks started there are the daemon's strays, cancelled at `end`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..context import IN_CONSOLE
from ..output import Output
from ..sockpath import SocketError, console_path, peer_allowed
from .sinks import StdOutput
from .sockserver import SocketServer

if TYPE_CHECKING:
    from ..daemon import Daemon



class ServedFrontend:
    """Listens at PATH; with OUTPUT, task events and messages go to stdout/stderr."""

    def __init__(
        self,
        path: str,
        *,
        own_output: bool,
        owns_terminal: bool = True,
        ready: Callable[[str | None], None] | None = None,
    ) -> None:
        """READY is called once: with None when the socket accepts connections and
        the daemon has started (started()), or with the one-line reason it could not
        start (`serve --detach` waits on it)."""
        self.path = path
        self._ready = ready
        self.owns_terminal = owns_terminal
        self._own_output = own_output
        self.server: SocketServer | None = None
        self.failed: str | None = None  # why it could not start
        self._output: StdOutput | None = None
        self._console: asyncio.AbstractServer | None = None
        self._console_path = console_path(path)
        self._console_tasks: set[asyncio.Task[Any]] = set()

    async def open(self, daemon: Daemon) -> Output | None:
        if self._own_output:
            self._output = StdOutput(lambda which, failure: None, lambda which: None)
        server = SocketServer(daemon, max_buffer=daemon.config.client_buffer)
        try:
            await server.start(self.path)
        except SocketError as exc:
            self.failed = str(exc)
            if self._output is not None:  # not yet the daemon's: say it here
                self._output.error(f"taskd: error: {exc}\n")
            else:
                daemon.report(f"error: {exc}")
            daemon.exit_status = 2
            daemon.request_end()
            if self._ready is not None:
                self._ready(self.failed)
            return self._output
        self.server = server
        await self._start_console(daemon)
        return self._output

    def started(self, failure: str | None) -> None:
        """The daemon has taken its state file and opened its log, or could not
        (FAILURE, one line): only now is a detached daemon up, or known not to be."""
        if self._ready is not None and self.failed is None:
            self._ready(failure)

    async def run(self, daemon: Daemon) -> None:
        await asyncio.Event().wait()  # connections are served on their own; cancelled at the end

    def interrupt(self, daemon: Daemon) -> None:
        from signal import SIGINT

        daemon.request_end(SIGINT)

    async def aclose(self) -> None:
        if self.server is not None:
            await self.server.aclose("taskd ended")
        if self._console is not None:
            self._console.close()
            for task in list(self._console_tasks):
                task.cancel()
            if self._console_tasks:
                await asyncio.wait(self._console_tasks, timeout=1.0)
            with contextlib.suppress(OSError):
                os.unlink(self._console_path)
        if self._output is not None:
            await self._output.aclose()

    # -- the console -------------------------------------------------------------------

    async def _start_console(self, daemon: Daemon) -> None:
        from aioconsole import AsynchronousConsole, start_interactive_server

        loop = asyncio.get_running_loop()
        scope = {
            "daemon": daemon,
            "engine": daemon.engine,
            "registry": daemon.engine.registry,
            "asyncio": asyncio,
            "loop": loop,
        }

        def factory(streams: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> Any:
            # Called by aioconsole inside the connection's own task.
            sock = streams[1].get_extra_info("socket")
            allowed, uid = peer_allowed(sock) if sock is not None else (False, -1)
            if not allowed:
                daemon.report(f"console: refused a connection from uid {uid}")
                return _Refused()
            IN_CONSOLE.set(True)  # tasks started from here are cancelled at `end`
            task = asyncio.current_task()
            if task is not None:
                self._console_tasks.add(task)
                task.add_done_callback(self._console_tasks.discard)
            return AsynchronousConsole(streams=streams, locals=dict(scope))

        with contextlib.suppress(FileNotFoundError):
            if _is_socket(self._console_path):
                os.unlink(self._console_path)
        try:
            self._console = await start_interactive_server(
                factory,
                path=self._console_path,
                banner="taskd console: daemon, engine, registry, asyncio and loop are in "
                "scope; top-level await works. Ctrl-D leaves.",
            )
            os.chmod(self._console_path, 0o600)
        except OSError as exc:
            daemon.report(f"warning: no console: cannot listen at {self._console_path}: {exc}")


class _Refused:
    """What a refused console connection gets: nothing (the daemon said why)."""

    async def interact(self, **_: Any) -> None:
        return None


def _is_socket(path: str) -> bool:
    import stat

    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except OSError:
        return False
