"""The state file: atomic under kill -9, coalesced, private, and never lost silently."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from taskd import state as st
from taskd.state import Snapshot, StateStore, make_snapshot, task_spec

DEADLINE = 30.0


def snapshot_of(generation: int, size: int) -> Snapshot:
    live = [
        task_spec(f"g{generation}-{i}", "shell", ["echo", str(i)], {"restart": "no"})
        for i in range(size)
    ]
    history = [
        {"name": f"old{generation}", "kind": "timer", "args": ["1"], "state": "done"}
    ]
    return make_snapshot(live, history)


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        assert "\n" not in line
        self.lines.append(line)


# -- kill -9 in the middle of writing ------------------------------------------------

CHILD = r"""
import sys
from taskd import state as st

sys.path.insert(0, {tests!r})
from test_state import snapshot_of

blobs = [st.encode(snapshot_of(g, 20000 + 7000 * g)) for g in (0, 1)]
print("ready", flush=True)
n = 0
while True:
    st.write_atomic({path!r}, blobs[n % 2])
    print(n, flush=True)
    n += 1
"""


def test_kill_9_while_writing_leaves_old_or_new_state_whole(tmp_path: Path) -> None:
    path = tmp_path / "state" / "state.json"
    blobs = [st.encode(snapshot_of(g, 20000 + 7000 * g)) for g in (0, 1)]
    code = CHILD.format(tests=str(Path(__file__).parent), path=str(path))
    for round_ in range(6):
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        assert child.stdout is not None
        try:
            assert child.stdout.readline() == b"ready\n"
            for _ in range(2 + round_):  # kill at a different point of the cycle each time
                last = int(child.stdout.readline())
            child.send_signal(signal.SIGKILL)
            child.wait(DEADLINE)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdout.close()
        data = path.read_bytes()
        # Written after `last` was printed: that write or the next one, whole.
        assert data in (blobs[last % 2], blobs[(last + 1) % 2])
        report = Lines()
        loaded = StateStore(str(path), report).load()
        assert report.lines == []
        assert loaded is not None and loaded["live"][0]["name"] in ("g0-0", "g1-0")
        # The dead writer's temporary file, if any, is swept by load().
        assert [p.name for p in path.parent.iterdir()] == ["state.json"]


# -- files that cannot be used ------------------------------------------------------

GOOD = st.encode(snapshot_of(3, 50))
BAD = {
    "truncated": GOOD[: len(GOOD) // 2],
    "empty": b"",
    "not JSON": b"hello \x00\xff world\n",
    "foreign JSON": json.dumps({"tasks": [{"id": 1}]}).encode(),
    "newer version": json.dumps({"taskd_state": 2, "live": [], "history": []}).encode(),
    "bad entry": json.dumps({"taskd_state": 1, "live": [{"name": 3}], "history": []}).encode(),
    # json refuses an integer of over 4,300 digits with a plain ValueError
    "huge number": b'{"taskd_state": 1, "live": [], "history": [], "n": ' + b"9" * 5000 + b"}",
}
WORDS = {
    "truncated": "ends too early",
    "empty": "is empty",
    "not JSON": "is not text",
    "foreign JSON": "is not a taskd state file",
    "newer version": "has version '2'",
    "bad entry": "entry 1 of 'live' has no name",
    "huge number": "is not valid JSON (a number of over 4,300 digits)",
}


@pytest.mark.parametrize("how", list(BAD))
def test_unusable_file_is_said_once_and_kept_aside(tmp_path: Path, how: str) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(BAD[how])
    report = Lines()
    assert StateStore(str(path), report).load() is None
    assert len(report.lines) == 1
    line = report.lines[0]
    assert WORDS[how] in line and "kept as 'state.json.corrupt-" in line
    assert line.endswith("starting empty")
    assert not path.exists()
    (aside,) = tmp_path.iterdir()
    assert aside.name.startswith("state.json.corrupt-")
    assert aside.read_bytes() == BAD[how]  # kept as it was, for a person to look at


def test_not_json_in_the_middle_is_not_called_truncated(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b'{"taskd_state": 1, "live": [}, "history": []}')
    report = Lines()
    assert StateStore(str(path), report).load() is None
    assert "is not valid JSON" in report.lines[0] and "truncated" not in report.lines[0]


def test_two_corruptions_in_one_second_both_kept(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    for data in (b"one", b"two"):
        path.write_bytes(data)
        assert StateStore(str(path), Lines()).load() is None
    assert sorted(p.read_bytes() for p in tmp_path.iterdir()) == [b"one", b"two"]


def test_missing_file_is_no_news(tmp_path: Path) -> None:
    report = Lines()
    assert StateStore(str(tmp_path / "none.json"), report).load() is None
    assert report.lines == []


def test_unreadable_path_one_line(tmp_path: Path) -> None:
    (tmp_path / "state.json").mkdir()  # a folder where the file should be
    report = Lines()
    assert StateStore(str(tmp_path / "state.json"), report).load() is None
    assert len(report.lines) == 1 and "cannot be read" in report.lines[0]
    assert (tmp_path / "state.json").is_dir()  # not moved: it was not ours to judge


# -- saving ---------------------------------------------------------------------------


async def test_save_creates_private_folders_and_file(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "state.json"
    store = StateStore(str(path), Lines())
    store.request_save(lambda: snapshot_of(1, 3))
    await store.close()
    assert stat.S_IMODE(os.stat(tmp_path / "a").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "a" / "b").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert StateStore(str(path), Lines()).load() == snapshot_of(1, 3)


async def test_many_requests_coalesce_and_the_last_state_is_written(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = StateStore(str(path), Lines())
    calls: list[int] = []
    current = [0]

    def snap() -> Snapshot:
        calls.append(current[0])
        return snapshot_of(current[0], 2)

    for n in range(1000):  # one loop turn: no write can start in between
        current[0] = n
        store.request_save(snap)
    await store.close()
    assert calls == [999] and store.writes == 1
    assert StateStore(str(path), Lines()).load() == snapshot_of(999, 2)


async def test_writes_are_at_least_the_interval_apart(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path / "state.json"), Lines())
    loop = asyncio.get_running_loop()
    times: list[float] = []

    def snap() -> Snapshot:
        times.append(loop.time())
        return snapshot_of(len(times), 2)

    deadline = loop.time() + DEADLINE
    while len(times) < 4 and loop.time() < deadline:
        store.request_save(snap)
        await asyncio.sleep(0.005)  # a change every few ms, as a busy daemon makes them
    await store.close()
    gaps = [b - a for a, b in itertools.pairwise(times[:-1])]  # the last is close()'s
    assert len(times) >= 4 and all(gap >= st.MIN_INTERVAL * 0.99 for gap in gaps), times


async def test_a_slow_disk_does_not_block_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    release = threading.Event()
    writing = threading.Event()
    threads: list[str] = []
    real = st.write_atomic

    def slow(where: str, data: bytes) -> None:
        threads.append(threading.current_thread().name)
        writing.set()
        release.wait(DEADLINE)
        real(where, data)

    monkeypatch.setattr(st, "write_atomic", slow)
    store = StateStore(str(path), Lines())
    store.request_save(lambda: snapshot_of(1, 2))
    while not writing.is_set():
        await asyncio.sleep(0.01)
    # The write is stuck in its thread; the loop goes on, and new changes wait for it.
    done = await asyncio.gather(*(asyncio.sleep(0, i) for i in range(100)))
    assert done == list(range(100))
    for g in range(2, 50):
        store.request_save(lambda g=g: snapshot_of(g, 2))  # type: ignore[misc]
        await asyncio.sleep(0)
    assert len(threads) == 1
    release.set()
    await store.close()
    assert len(threads) == 2 and all(name.startswith("taskd-state") for name in threads)
    assert StateStore(str(path), Lines()).load() == snapshot_of(49, 2)


async def _until(condition: object, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, what
        await asyncio.sleep(0.01)


async def test_write_into_a_file_posing_as_folder_is_said_once(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    report = Lines()
    store = StateStore(str(tmp_path / "afile" / "state.json"), report)
    attempts = 0

    def snap() -> Snapshot:
        nonlocal attempts
        attempts += 1
        return snapshot_of(attempts, 1)

    store.request_save(snap)
    await _until(lambda: report.lines, "no report")
    for _ in range(3):  # three more failing writes
        seen = attempts
        store.request_save(snap)
        await _until(lambda seen=seen: attempts > seen and store._inflight is None, "no write")
    await store.close()
    assert attempts >= 4 and store.writes == 0
    assert len(report.lines) == 1 and "cannot be written" in report.lines[0], report.lines


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
async def test_read_only_folder_said_once_then_recovers(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    report = Lines()
    store = StateStore(str(folder / "state.json"), report)
    try:
        for g in range(3):
            store.request_save(lambda g=g: snapshot_of(g, 1))  # type: ignore[misc]
            await _until(lambda: store._inflight is None and store._timer is None, "no write")
        assert len(report.lines) == 1 and "Permission denied" in report.lines[0]
        folder.chmod(0o700)
        store.request_save(lambda: snapshot_of(9, 1))
        await store.close()
    finally:
        folder.chmod(0o700)
    assert report.lines[1:] == [f"state file {str(folder / 'state.json')!r} written again"]
    assert StateStore(str(folder / "state.json"), Lines()).load() == snapshot_of(9, 1)


async def test_a_failing_snapshot_function_is_said_not_raised(tmp_path: Path) -> None:
    report = Lines()
    store = StateStore(str(tmp_path / "state.json"), report)

    def broken() -> Snapshot:
        raise KeyError("x")

    store.request_save(broken)
    await store.close()
    assert report.lines == [
        f"state file {str(tmp_path / 'state.json')!r} cannot be written: "
        "its state could not be gathered (KeyError)"
    ]


def test_encode_round_trips_odd_text() -> None:
    snap = make_snapshot(
        [task_spec("t", "shell", ["é", "\udc80", "a\nb", "別"], {"env": {"K": "V"}})]
        * (st._CHUNK + 1),
        [],
    )
    assert st.decode(st.encode(snap)) == snap
    assert st.decode(st.encode(make_snapshot([], []))) == make_snapshot([], [])


def test_records_round_trip_through_the_file(tmp_path: Path) -> None:
    from taskd.registry import State, TaskRecord
    from taskd.supervise import TaskOptions

    live = TaskRecord("build", "shell", ("make", "-j4"))
    live.options = TaskOptions(restart="on-failure", after=("fetch",), group="ci")
    ended = TaskRecord("fetch", "timer", ("1",))
    ended.state, ended.error, ended.restarts = State.FAILED, "RuntimeError: x", 2
    ended.ended = ended.started + 1.5
    path = tmp_path / "state.json"
    st.write_atomic(str(path), st.encode(
        make_snapshot([st.live_entry(live)], [st.history_entry(ended)])
    ))
    loaded = StateStore(str(path), Lines()).load()
    assert loaded is not None
    assert loaded["live"] == [{
        "name": "build", "kind": "shell", "args": ["make", "-j4"],
        "options": {"restart": "on-failure", "after": ["fetch"], "group": "ci"},
    }]
    assert TaskOptions.from_json(loaded["live"][0]["options"]) == live.options
    back = st.finished_record(loaded["history"][0])
    assert (back.name, back.kind, back.args, back.state) == ("fetch", "timer", ("1",), "failed")
    assert (back.error, back.restarts, back.restored) == ("RuntimeError: x", 2, True)
    assert back.runtime() == pytest.approx(1.5) and back.started_at == ended.started_at


async def test_live_specs_keep_start_order_and_write_through_a_store(tmp_path: Path) -> None:
    from taskd.registry import State, TaskRecord

    specs = st.LiveSpecs()
    records = [TaskRecord(f"t{i}", "idle", ()) for i in range(5)]
    for record in records:
        specs.add(record)
    specs.discard("t1")
    specs.discard("nobody")
    specs.add(records[0])  # the name used again: now the last
    records[1].state = State.DONE
    store = StateStore(str(tmp_path / "state.json"), Lines())
    store.request_save(lambda: specs.snapshot([records[1]]))
    await store.close()
    loaded = StateStore(str(tmp_path / "state.json"), Lines()).load()
    assert loaded is not None and len(specs) == 4
    assert [e["name"] for e in loaded["live"]] == ["t2", "t3", "t4", "t0"]
    assert [(e["name"], e["state"]) for e in loaded["history"]] == [("t1", "done")]
