"""The daemon's state file, kept as tasks come and go, and read back with `restore`.

`Persistence` watches the engine as an instrument: every task that starts or ends
asks for a (coalesced) write of the whole state, which the StateStore does on its
own thread. At the end the state is frozen *before* the daemon cancels its tasks,
so the tasks live at `end` (or at a signal) are the ones a restore starts again;
after a crash or kill -9 the last write is (at most 100 ms old, or ten times what a
write costs: about 0.5 s with 50,000 live tasks, whose writes took about 50 ms here).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .errors import CommandError
from .instruments import Instrument
from .state import LiveSpecs, Snapshot, StateStore, finished_record
from .statelock import StateLock
from .supervise import TaskOptions, check_group

if TYPE_CHECKING:
    from .engine import Engine
    from .registry import TaskRecord

MAX_SAID = 5  # tasks that could not be restored, named one by one


class Persistence(Instrument):
    """One engine's state file: `start()` at startup, `freeze()` when the daemon
    begins to end, `await close()` last."""

    def __init__(self, engine: Engine, path: str) -> None:
        self.engine = engine
        self.path = os.path.expanduser(path)
        self.store = StateStore(self.path, engine.report)
        self.lock = StateLock(self.path)
        self.specs = LiveSpecs()
        self._frozen: Snapshot | None = None

    def start(self, restore: bool) -> None:
        """Read the file (an unusable one is said and kept aside); with RESTORE, put
        the history back and start the live tasks again, in their order."""
        snapshot = self.store.load()
        self.engine.instruments.add(self)
        self.engine.state_changed = self.changed
        if snapshot is not None and restore:
            self._restore(snapshot)

    def _restore(self, snapshot: Snapshot) -> None:
        engine = self.engine
        registry = engine.registry
        for entry in snapshot["history"]:
            if registry.history_size > 0:
                record = finished_record(entry)
                registry.history.pop(record.name, None)
                registry.history[record.name] = record
        while len(registry.history) > registry.history_size:
            registry.history.popitem(last=False)
        for group, limit in snapshot.get("groups", {}).items():
            try:
                engine.groups.set_parallel(check_group(group), limit)
            except CommandError:
                pass  # not a name this taskd gives groups: a hand-edited file
        problems: list[str] = []
        started = 0
        for entry in snapshot["live"]:
            try:
                raw = entry.get("options")
                options = TaskOptions.from_json(raw) if raw else None
                record = engine.spawn(entry["kind"], list(entry["args"]), entry["name"], options)
            except CommandError as exc:
                problems.append(f"{entry['name']} ({exc})")
                continue
            record.restored = True
            started += 1
        if problems:
            more = len(problems) - MAX_SAID
            engine.report(
                f"{len(problems)} task{'s' if len(problems) != 1 else ''} not restored: "
                + ", ".join(problems[:MAX_SAID]) + (f" (+{more} more)" if more > 0 else "")
            )
        engine.report(
            f"restored {started} live task{'s' if started != 1 else ''} and "
            f"{len(snapshot['history'])} finished from {self.path}"
        )

    # -- keeping the file up to date ------------------------------------------------

    def task_spawned(self, record: TaskRecord) -> None:
        self.specs.add(record)
        self.store.request_save(self._snapshot)

    def task_exited(self, record: TaskRecord) -> None:
        self.specs.discard(record.name)
        self.store.request_save(self._snapshot)

    def changed(self) -> None:
        """Something else the file keeps changed (a group's limit)."""
        if self._frozen is None:
            self.store.request_save(self._snapshot)

    def _snapshot(self) -> Snapshot:
        if self._frozen is not None:
            return self._frozen
        engine = self.engine
        snapshot = self.specs.snapshot(engine.registry.history.values())
        limits = {g: n for g, n, _, _ in engine.groups.listing() if n is not None}
        if limits:
            snapshot["groups"] = limits
        return snapshot

    def freeze(self) -> None:
        """The daemon is ending: what is live now is what a restore starts again, so
        the cancels of the end are not recorded."""
        engine = self.engine
        engine.settle(list(engine.registry.live.values()))
        self._frozen = self._snapshot()
        engine.instruments.remove(self)
        engine.state_changed = lambda: None

    async def close(self) -> None:
        """Write the last state (the frozen one, if frozen), stop the writer, and let
        another taskd have the file."""
        try:
            await self.store.close(self._snapshot)
        finally:
            self.lock.release()
