"""The state file: what taskd knew, written so that a crash never loses it.

A write goes to a temporary file in the same folder, is fsynced and renamed over the
old file, and the folder is fsynced: whatever kills the daemon (kill -9, a power cut),
the file holds the old or the new state whole. Writes are coalesced and done on one
thread of their own, so neither many changes nor a slow disk slow the loop down.

A file that cannot be used (truncated, not JSON, someone else's JSON, a newer
version) is reported in one line and renamed aside, never silently lost, and the
daemon starts empty.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import json
import os
import time
from collections.abc import Callable, Iterable
from typing import Any, NotRequired, TypedDict

from .errors import CommandError, shown
from .registry import State, TaskRecord
from .supervise import TaskOptions

FORMAT_KEY = "taskd_state"
VERSION = 1
MIN_INTERVAL = 0.1  # seconds between two writes, at least
# ... and at least this many times the last write's cost: the writer's thread holds
# the GIL while it encodes, so it takes at most about a tenth of the loop's time
# (50,000 spawns with a state file: 1.28x -> 1.21x of the same without, at 3 -> 10).
COST_FACTOR = 10.0
_CHUNK = 1000  # entries encoded per json.dumps call: lets the loop thread take the GIL


class Snapshot(TypedDict):
    """The whole state file: `live` are TaskSpec dicts, `history` finished records,
    `groups` the limits set with `group G --parallel N` (a group: N)."""

    taskd_state: int
    live: list[dict[str, Any]]
    history: list[dict[str, Any]]
    groups: NotRequired[dict[str, int]]


def make_snapshot(
    live: Iterable[dict[str, Any]], history: Iterable[dict[str, Any]]
) -> Snapshot:
    return {FORMAT_KEY: VERSION, "live": list(live), "history": list(history)}  # type: ignore[misc]


def task_spec(
    name: str, kind: str, args: Iterable[str], options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A live task as the state file keeps it: enough to start it again."""
    return {"name": name, "kind": kind, "args": list(args), "options": options or {}}


def live_entry(record: TaskRecord) -> dict[str, Any]:
    """RECORD as a TaskSpec: what starts it again after a restart of the daemon."""
    options = record.options.to_json() if record.options is not None else {}
    # args stay the record's own tuple, not a copy: JSON writes it as a list.
    return {"name": record.name, "kind": record.kind, "args": record.args,
            "options": options}


def history_entry(record: TaskRecord) -> dict[str, Any]:
    """A finished RECORD as `show --all` needs it: text only, as the registry keeps it."""
    entry = live_entry(record)
    entry.update(
        state=record.state.value, error=record.error, result=record.result,
        last_line=record.last_line, started_at=record.started_at,
        runtime_s=round(record.runtime(), 6), restarts=record.restarts,
    )
    return entry


class LiveSpecs:
    """The live tasks' entries, kept up to date as tasks start and end, so that a
    snapshot of 100,000 live tasks is a list() and not 100,000 dicts built again
    (measured: 155 ms of the loop's time per snapshot). Entries are never changed
    once made, so a snapshot can be handed to the writer's thread as it is."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, record: TaskRecord) -> None:
        """RECORD started (set its options first); replaces a same-named entry."""
        self._entries.pop(record.name, None)  # a name used again goes to the end
        self._entries[record.name] = live_entry(record)

    def discard(self, name: str) -> None:
        self._entries.pop(name, None)

    def snapshot(self, finished: Iterable[TaskRecord]) -> Snapshot:
        """The whole state: the live tasks in the order they started, and FINISHED
        (the registry's bounded history) as history entries."""
        return make_snapshot(list(self._entries.values()), map(history_entry, finished))


def finished_record(entry: dict[str, Any]) -> TaskRecord:
    """The finished TaskRecord a history entry describes (marked restored). Fields
    missing or of the wrong type are left at their defaults."""
    record = TaskRecord(entry["name"], entry["kind"], tuple(entry["args"]))
    record.state = State(entry["state"])
    record.restored = True
    for field in ("error", "result", "last_line"):
        if isinstance(value := entry.get(field), str):
            setattr(record, field, value)
    if isinstance(restarts := entry.get("restarts"), int):
        record.restarts = restarts
    if isinstance(started_at := entry.get("started_at"), (int, float)):
        record.started_at = float(started_at)
    runtime = entry.get("runtime_s")
    runtime = float(runtime) if isinstance(runtime, (int, float)) and runtime >= 0 else 0.0
    # Monotonic times of another boot mean nothing here: keep the duration only.
    record.ended = time.monotonic()
    record.started = record.ended - runtime
    try:
        record.options = TaskOptions.from_json(entry.get("options") or {})
    except CommandError:
        record.options = None  # shown with the defaults; it ended long ago
    return record


class BadState(Exception):
    """Why a state file cannot be used, as the end of a sentence."""


# -- writing ---------------------------------------------------------------------


def make_private_dirs(folder: str) -> None:
    """Create FOLDER and any missing parent with mode 0700 (existing ones are left)."""
    missing = []
    current = os.path.abspath(folder)
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            if not os.path.isdir(path):
                raise


def _temp_name(path: str, pid: int) -> str:
    folder, base = os.path.split(path)
    return os.path.join(folder, f".{base}.{pid}.tmp")


def write_atomic(path: str, data: bytes) -> None:
    """Replace PATH with DATA so that a reader sees the old or the new bytes whole."""
    folder = os.path.dirname(os.path.abspath(path))
    make_private_dirs(folder)
    temp = _temp_name(os.path.abspath(path), os.getpid())
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a temp file left by an earlier run may have another mode
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink(temp)
        raise
    os.close(fd)
    try:
        os.replace(temp, path)
    except BaseException:
        _unlink(temp)
        raise
    _fsync_folder(folder)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_folder(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # some file systems cannot fsync a folder
            raise
    finally:
        os.close(fd)


def encode(snapshot: Snapshot) -> bytes:
    """JSON of SNAPSHOT, encoded in chunks (a single dumps of 100,000 tasks would hold
    the GIL, and so the loop, for its whole length)."""
    parts = [f'{{"{FORMAT_KEY}":{int(snapshot["taskd_state"])}']
    for key in ("live", "history"):
        items = snapshot[key]
        chunks = (
            json.dumps(items[i : i + _CHUNK], separators=(",", ":"), allow_nan=False)[1:-1]
            for i in range(0, len(items), _CHUNK)
        )
        parts.append(f',"{key}":[' + ",".join(chunks) + "]")
    if "groups" in snapshot:
        parts.append(',"groups":' + json.dumps(snapshot["groups"], separators=(",", ":")))
    parts.append("}\n")
    return "".join(parts).encode("ascii")


# -- reading ---------------------------------------------------------------------


def decode(data: bytes) -> Snapshot:
    """The snapshot in DATA; BadState saying why it is not one."""
    if not data.strip():
        raise BadState("is empty (truncated?)")
    try:
        value = json.loads(data)
    except UnicodeDecodeError:
        raise BadState("is not text") from None
    except json.JSONDecodeError as exc:
        if data.lstrip().startswith(b"{") and not data.rstrip().endswith(b"}"):
            raise BadState("ends too early (truncated?)") from None
        raise BadState(f"is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except RecursionError:
        raise BadState("is nested too deeply to be a state file") from None
    except ValueError:  # int()'s own limit, which json meets before it can say where
        raise BadState("is not valid JSON (a number of over 4,300 digits)") from None
    if not isinstance(value, dict) or FORMAT_KEY not in value:
        raise BadState("is not a taskd state file")
    version = value[FORMAT_KEY]
    if version != VERSION or isinstance(version, bool):
        raise BadState(f"has version {shown(str(version), 20)}; this taskd reads {VERSION}")
    for key in ("live", "history"):
        items = value.get(key)
        if not isinstance(items, list):
            raise BadState(f"has no {key!r} list")
        for n, item in enumerate(items, 1):
            problem = _entry_problem(item, finished=key == "history")
            if problem:
                raise BadState(f"entry {n} of {key!r} {problem}")
    groups = value.get("groups", {})
    if not isinstance(groups, dict) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in groups.values()
    ):
        raise BadState("has a 'groups' entry that is not group names and limits")
    return value  # type: ignore[return-value]


def _entry_problem(item: object, finished: bool) -> str:
    if not isinstance(item, dict):
        return "is not an object"
    for field in ("name", "kind"):
        if not isinstance(item.get(field), str):
            return f"has no {field}"
    args = item.get("args")
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        return "has no list of arguments"
    if not isinstance(item.get("options", {}), dict):
        return "has options that are not an object"
    if finished and item.get("state") not in ("done", "failed", "cancelled"):
        return "has no final state"
    return ""


def sweep_temp_files(path: str) -> None:
    """Remove temporary files that writers killed mid-write left next to PATH."""
    folder, base = os.path.split(os.path.abspath(path))
    prefix = f".{base}."
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid_text = name[len(prefix) : -len(".tmp")]
        if not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid != os.getpid():
            try:
                os.kill(pid, 0)
                continue  # its writer still runs
            except ProcessLookupError:
                pass
            except OSError:
                continue  # someone else's process: not ours to judge
        _unlink(os.path.join(folder, name))


# -- the store -------------------------------------------------------------------


_Written = asyncio.Future[tuple[float, str]]  # a write's cost in seconds, and "" or its error


class StateStore:
    """One state file: `load()` at start, `request_save()` on every change,
    `await close()` at the end.

    `report` receives one-line messages (no "taskd:" prefix), always on the caller's
    thread: load's from load, a failed write's from the loop thread.
    """

    def __init__(self, path: str, report: Callable[[str], None]) -> None:
        self.path = path
        self.report = report
        self.writes = 0  # completed writes, for tests and `show`
        self._where = shown(path, 200)
        self._fn: Callable[[], Snapshot] | None = None
        self._dirty = False
        self._timer: asyncio.TimerHandle | None = None
        self._inflight: _Written | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next_at = 0.0  # loop time before which no write starts
        self._started_at = 0.0  # loop time the last write started
        self._failing = False  # a failure was reported; say nothing more until a success

    # -- load ----------------------------------------------------------------------

    def load(self) -> Snapshot | None:
        """The saved snapshot, or None (no file, or one that cannot be used: said once)."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            sweep_temp_files(self.path)
            return None
        except OSError as exc:
            self.report(
                f"state file {self._where} cannot be read ({exc.strerror or exc}); starting empty"
            )
            return None
        sweep_temp_files(self.path)
        try:
            return decode(data)
        except BadState as why:
            self.report(f"state file {self._where} {why}; {self._set_aside()}; starting empty")
            return None

    def _set_aside(self) -> str:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = f"{self.path}.corrupt-{stamp}"
        n = 1
        while os.path.lexists(aside):
            n += 1
            aside = f"{self.path}.corrupt-{stamp}-{n}"
        try:
            os.rename(self.path, aside)
        except OSError as exc:
            return f"it could not be kept aside ({exc.strerror or exc}) and stays as it is"
        return f"kept as {shown(os.path.basename(aside), 200)}"

    # -- save ----------------------------------------------------------------------

    def request_save(self, snapshot_fn: Callable[[], Snapshot]) -> None:
        """Note that the state changed; SNAPSHOT_FN is called on the loop thread when
        the write is due and must return a structure nobody changes afterwards."""
        self._fn = snapshot_fn
        self._dirty = True
        if self._timer is None and self._inflight is None:
            self._schedule()

    def _schedule(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        delay = max(0.0, self._next_at - loop.time())
        self._timer = loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if not self._dirty or self._fn is None or self._inflight is not None:
            return
        self._inflight = self._start_write(self._fn)
        self._inflight.add_done_callback(self._written)

    def _start_write(self, snapshot_fn: Callable[[], Snapshot]) -> _Written:
        self._dirty = False
        loop = self._loop or asyncio.get_running_loop()
        started = self._started_at = loop.time()
        try:
            snapshot = snapshot_fn()
        except Exception as exc:  # a bug in the caller: said, never raised into the loop
            future: _Written = loop.create_future()
            future.set_result((0.0, f"its state could not be gathered ({type(exc).__name__})"))
            return future
        built = loop.time() - started
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, "taskd-state")
        return loop.run_in_executor(self._pool, self._write, snapshot, built)

    def _write(self, snapshot: Snapshot, built: float) -> tuple[float, str]:
        """On the store's thread: (seconds it cost, "" or why it failed)."""
        started = time.monotonic()
        try:
            write_atomic(self.path, encode(snapshot))
        except OSError as exc:
            return built + time.monotonic() - started, exc.strerror or str(exc)
        except Exception as exc:  # e.g. a value JSON cannot hold
            return built + time.monotonic() - started, f"{type(exc).__name__}: {exc}"
        return built + time.monotonic() - started, ""

    def _written(self, future: _Written) -> None:
        self._inflight = None
        if future.cancelled():
            return
        cost, error = future.result()
        self._next_at = self._started_at + max(MIN_INTERVAL, COST_FACTOR * cost)
        if error:
            if not self._failing:
                self._failing = True
                self.report(f"state file {self._where} cannot be written: {error}")
        else:
            self.writes += 1
            if self._failing:
                self._failing = False
                self.report(f"state file {self._where} written again")
        if self._dirty:
            self._schedule()

    async def close(self, snapshot_fn: Callable[[], Snapshot] | None = None) -> None:
        """Write the last state now (SNAPSHOT_FN's, else the last one requested, if
        anything changed since the last write), wait for it, stop the thread."""
        if snapshot_fn is not None:
            self._fn = snapshot_fn
            self._dirty = True
        self._cancel_timer()
        await self._settle()
        if self._dirty and self._fn is not None:
            self._loop = asyncio.get_running_loop()
            self._inflight = self._start_write(self._fn)
            self._inflight.add_done_callback(self._written)
            await self._settle()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    async def _settle(self) -> None:
        """Wait for the write under way, and account for it now."""
        while (future := self._inflight) is not None:
            await asyncio.shield(future)
            if self._inflight is future:  # its done callback has not run yet
                future.remove_done_callback(self._written)
                self._written(future)
            self._cancel_timer()  # close() writes what is left itself

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
