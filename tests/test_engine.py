"""The engine and daemon in-process: names, states, history, output routing, the
loop's exception handler, and a 50,000-line script through the real program."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import InProcess, ListFrontend, taskd_command

from taskd.config import Config
from taskd.daemon import Daemon
from taskd.errors import CommandError
from taskd.kinds import load_kinds
from taskd.registry import State

KINDS_MODULE = '''
import asyncio, sys, threading, weakref

class Payload:
    pass

REFS = []

async def keep():
    """holds an object in its frame, then ends"""
    payload = Payload()
    REFS.append(weakref.ref(payload))
    await asyncio.sleep(0)

async def leave(code="4"):
    sys.exit(int(code))

async def stray():
    async def boom():
        raise RuntimeError("from a stray task")
    task = asyncio.get_running_loop().create_task(boom())
    await asyncio.sleep(0)
    del task
    import gc
    gc.collect()  # asyncio reports an unretrieved exception when the task is freed
    print("carried on")

async def chatty():
    print("no newline yet", end="")
    print(" ... now", end="\\n")
    print("two\\nlines")
    print("to stderr", file=sys.stderr)
    print("tail without newline", end="")
'''


@pytest.fixture
def kinds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    (tmp_path / "engine_kinds.py").write_text(KINDS_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    targets = {n: f"engine_kinds:{n}" for n in ("keep", "leave", "stray", "chatty")}
    return load_kinds(targets)


def run_daemon(lines: list[str], config: Config | None = None,
               kinds: dict[str, Any] | None = None) -> tuple[Daemon, ListFrontend, int]:
    daemon = Daemon(config or Config(), kinds)
    frontend = ListFrontend(lines)
    status = daemon.run(frontend)
    return daemon, frontend, status


def test_history_is_bounded_oldest_first() -> None:
    lines = [f"new timer 0 --name t{i}" for i in range(5)] + ["wait", "show --all --json"]
    daemon, _frontend, status = run_daemon(lines, Config(history=3))
    assert status == 0
    assert list(daemon.registry.history) == ["t2", "t3", "t4"]
    assert daemon.registry.finished_count == 5


def test_no_history_keeps_nothing() -> None:
    _daemon, frontend, _status = run_daemon(["new timer 0", "wait", "show --all"],
                                          Config(history=0))
    assert frontend.output.lines[-1] == "no tasks, live or finished"


def test_task_and_asyncio_names_agree_and_lookup_is_by_name() -> None:
    async def main() -> None:
        engine = InProcess(Config())
        for i in range(100):
            engine.spawn("idle", [], f"n{i}")
        names = {t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("n")}
        assert names == {f"n{i}" for i in range(100)}
        assert isinstance(engine.registry.live, dict)  # lookup by name is a dict's
        await engine.execute("cancel n*")
        assert all(r.state is State.CANCELLED for r in engine.registry.records(True))

    asyncio.run(main())


def test_a_finished_tasks_frame_is_not_kept(kinds: dict[str, Any]) -> None:
    daemon, _frontend, _status = run_daemon(["new keep --name k", "wait k"], kinds=kinds)
    module = sys.modules["engine_kinds"]
    record = daemon.registry.get("k")
    assert record is not None and record.state is State.DONE and record.task is None
    gc.collect()
    assert [ref() for ref in module.REFS] == [None]


def test_system_exit_in_a_task_fails_the_task_only(kinds: dict[str, Any]) -> None:
    daemon, _frontend, status = run_daemon(
        ["new leave 4 --name l", "wait l", "new timer 0 --name after", "wait after"],
        kinds=kinds,
    )
    assert status == 1  # `wait l` failed; the daemon went on
    assert daemon.registry.get("l").error == "TaskExit: the task raised SystemExit(4)"  # type: ignore[union-attr]
    assert daemon.registry.get("after").state is State.DONE  # type: ignore[union-attr]


def test_a_task_made_by_a_task_fails_as_its_child_and_the_daemon_goes_on(
    kinds: dict[str, Any],
) -> None:
    daemon, frontend, _status = run_daemon(
        ["new stray --name s", "wait s", "new timer 0 --name next", "wait"], kinds=kinds
    )
    gc.collect()
    assert "[s] carried on" in frontend.output.lines
    assert daemon.registry.get("next").state is State.DONE  # type: ignore[union-attr]
    child = daemon.registry.get("s/1")
    assert child is not None and child.parent == "s" and child.state is State.FAILED
    assert child.error == "RuntimeError: from a stray task"
    assert any(line.startswith("s/1 failed after") for line in frontend.output.lines)
    # its failure was the child's, taken by taskd: asyncio has nothing left to report
    assert not [e for e in frontend.output.errors if "from a stray task" in e]


def test_print_inside_a_task_is_its_output(kinds: dict[str, Any]) -> None:
    daemon, frontend, status = run_daemon(["new chatty --name c", "wait c"], kinds=kinds)
    assert status == 0
    lines = frontend.output.lines
    assert [line for line in lines if line.startswith("[c]")] == [
        "[c] no newline yet ... now", "[c] two", "[c] lines", "[c] to stderr",
        "[c] tail without newline",
    ]
    assert daemon.registry.get("c").last_line == "tail without newline"  # type: ignore[union-attr]
    assert sys.stdout is not None and type(sys.stdout).__name__ != "TaskStream"  # restored


async def test_engine_events(live_daemon: Callable[..., Any]) -> None:
    daemon = await live_daemon()
    seen: list[tuple[str, str]] = []
    daemon.bus.subscribe(lambda e: seen.append((e.task, e.event)))
    await daemon.execute("new tick 0.001 1 --name t")
    await daemon.execute("new fail --name f")
    await daemon.execute("new --name i")
    await daemon.execute("cancel i")
    with pytest.raises(CommandError, match="1 task failed: f"):
        await daemon.execute("wait t f")
    for expected in [("t", "started"), ("t", "output"), ("t", "done"), ("f", "failed"),
                     ("i", "cancelled")]:
        assert expected in seen
    assert seen.index(("t", "started")) < seen.index(("t", "output")) < seen.index(("t", "done"))


# -- the 50,000-line script ------------------------------------------------------------


@pytest.mark.slow
def test_fifty_thousand_new_lines_from_file_to_file(tmp_path: Path, env: dict[str, str]) -> None:
    """Stdin and stdout both regular files: no line lost. The time is printed as a
    figure to report, not asserted."""
    n = 50_000
    script = tmp_path / "many.tdc"
    script.write_text("".join(f"new idle --name w{i}\n" for i in range(n)))
    out = tmp_path / "out.txt"
    with script.open("rb") as stdin, out.open("wb") as stdout:
        started = time.monotonic()
        proc = subprocess.run(taskd_command(), stdin=stdin, stdout=stdout,
                              stderr=subprocess.PIPE, env=env, timeout=300)
        elapsed = time.monotonic() - started
    print(f"\n{n} lines, stdin and stdout regular files: {elapsed:.2f}s")
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr.startswith(b"taskd: end cancelled 50000 tasks: ")  # and nothing else
    assert proc.stderr.count(b"\n") == 1
    lines = out.read_text().splitlines()
    assert len(lines) == n
    assert lines[0] == "started w0" and lines[-1] == f"started w{n - 1}"


async def test_a_task_that_renames_itself_is_still_accounted_for() -> None:
    """The done callback finds a record by its task's name; a renamed task must not
    stay `running` for ever."""
    import asyncio as _asyncio

    from taskd.config import Config
    from taskd.kinds import Kind

    async def rename() -> None:
        task = _asyncio.current_task()
        assert task is not None
        task.set_name("someone-else")

    kinds = {"rename": Kind("rename", rename, "renames its task", ())}
    engine = InProcess(Config(), kinds)
    await engine.execute("new rename --name r")
    task = engine.registry.live["r"].task
    assert task is not None
    # asyncio.wait returns through a done callback added after the engine's own, so
    # the engine's has run by then (no settle() here, which would hide a miss).
    await _asyncio.wait({task})
    record = engine.registry.get("r")
    assert record is not None and record.state == "done"
    assert "r" not in engine.registry.live


def test_a_bug_of_taskd_s_own_is_said_not_only_counted(capfd: pytest.CaptureFixture[str]) -> None:
    """An exception out of the daemon's own serve() (here a front-end's open()) ends
    it with 1 and one line on stderr: it once ended with 1 and no word."""

    class Broken(ListFrontend):
        async def open(self, daemon: Any) -> Any:
            raise RuntimeError("boom")

    status = Daemon(Config()).run(Broken([]))
    assert status == 1
    assert capfd.readouterr().err == "taskd: error: internal error: RuntimeError: boom\n"
