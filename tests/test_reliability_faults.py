"""Task faults: tasks that misbehave in every way a user's code can, and the daemon
goes on; tasks that block the loop, and taskd names them.

The misbehaving tasks are user kinds from a config file (`[kinds] NAME =
"module:function"`), the module written into tmp_path and put on PYTHONPATH, as a
user would do it.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import RunTaskd, taskd_command

BAD_KINDS = '''
import asyncio, sys, time

class BadRepr:
    def __repr__(self):
        raise RuntimeError("repr exploded")

class BadStr(Exception):
    def __str__(self):
        raise RuntimeError("str exploded")

async def raises():
    raise ValueError("line one\\nline two")

async def weird():
    return BadRepr()

async def huge():
    return list(range(1_000_000))

async def interrupt():
    raise KeyboardInterrupt("ctrl-c from a task")

async def exits():
    sys.exit(3)

async def badstr():
    raise BadStr()

async def self_cancel():
    raise asyncio.CancelledError()

async def orphans():
    """spawns tasks of its own, then dies"""
    async def child():
        print("child still here")
        await asyncio.sleep(0)
        raise OSError("child failed")
    async def forever():
        while True:
            await asyncio.sleep(1)
    asyncio.create_task(child())
    asyncio.create_task(forever(), name="left-behind")
    await asyncio.sleep(0)
    raise RuntimeError("parent died")

async def hog(seconds):
    time.sleep(float(seconds))

async def spin(seconds):
    end = time.monotonic() + float(seconds)
    while time.monotonic() < end:
        pass
'''
KIND_NAMES = [
    "raises", "weird", "huge", "interrupt", "exits", "badstr", "self_cancel", "orphans",
    "spin",  # `hog` is a built-in kind now, the same time.sleep
]


@pytest.fixture
def bad_config(tmp_path: Path, env: dict[str, str]) -> Path:
    (tmp_path / "badkinds.py").write_text(BAD_KINDS, encoding="utf-8")
    env["PYTHONPATH"] = f"{tmp_path}:{env.get('PYTHONPATH', '')}"
    config = tmp_path / "taskd.toml"
    kinds = "".join(f'{k} = "badkinds:{k}"\n' for k in KIND_NAMES)
    config.write_text(f"cancel_grace = 0.5\nstall_threshold = 0.2\n[kinds]\n{kinds}")
    return config


EXPECTED = {
    "raises": ("failed", "ValueError: line one line two"),
    "weird": ("done", None),
    "huge": ("done", None),
    "interrupt": ("failed", "TaskExit: the task raised KeyboardInterrupt(ctrl-c from a task)"),
    "exits": ("failed", "TaskExit: the task raised SystemExit(3)"),
    "badstr": ("failed", "BadStr: <BadStr: its str() raised RuntimeError>"),
    "self_cancel": ("cancelled", None),
    "orphans": ("failed", "RuntimeError: parent died"),
}


def test_misbehaving_tasks_are_reported_and_the_daemon_goes_on(
    run_taskd: RunTaskd, bad_config: Path, tmp_path: Path
) -> None:
    log = tmp_path / "events.log"
    script = "".join(f"new {k} --name {k}\n" for k in EXPECTED)
    script += "wait --timeout 30\nshow --all --json\nnew timer 0 --name alive\nwait alive\n"
    result = run_taskd(script, "--config", str(bad_config), "--log", str(log))
    assert result.status == 1  # `wait` says that tasks failed; nothing else went wrong
    shown = {item["name"]: item for item in json.loads(result.lines[-3])}
    for name, (state, error) in EXPECTED.items():
        assert shown[name]["state"] == state, shown[name]
        if error is not None:
            assert shown[name]["error"] == error
    assert "returned <BadRepr instance" in shown["weird"]["ended"]
    assert len(shown["huge"]["ended"]) < 300  # a million items, shown bounded
    assert "alive done after" in result.lines[-1]  # the daemon went on
    # the tasks it made are its children: their output and their ends are their own
    assert "[orphans/1] child still here" in result.out
    assert shown["orphans/1"]["error"] == "OSError: child failed"
    assert shown["left-behind"]["parent"] == "orphans"
    assert "Traceback" not in result.err
    # Each failure's traceback is in the log; the task left behind was cancelled at
    # the end, nothing pending, nothing left for asyncio to report.
    text = log.read_text()
    for name in ("raises", "interrupt", "exits", "badstr", "orphans", "orphans/1"):
        assert f"{name} traceback Traceback (most recent call last):" in text
    assert not any("Task exception was never retrieved" in e for e in result.errors)
    assert not any("destroyed but it is pending" in e for e in result.errors)
    assert not any(
        "left-behind" in e for e in result.errors if not e.startswith("taskd: end cancelled")
    )


STALL = re.compile(r"^taskd: task (\S+) blocked the event loop for ([\d.]+)s \(stall_threshold")
BLOCKING = re.compile(r"^taskd: task (\S+) is blocking the event loop \(over 0.2s so far\)$")


def test_a_task_blocking_the_loop_is_named_with_its_time(
    run_taskd: RunTaskd, bad_config: Path, tmp_path: Path
) -> None:
    log = tmp_path / "events.jsonl"
    # Three blocking steps in one loop iteration (no await between them), beside a
    # well-behaved task; then a burst of 20,000 short steps that must not count.
    script = (
        "new tick 0.01 5 --name fine\n"
        "new hog 0.6 --name sleeper\n"
        "new spin 0.4 --name spinner\n"
        "new hog 0.05 --name brief\n"
        "wait\n"
        + "new timer 3600\n" * 20_000
        + "cancel 'timer-*'\n"
    )
    result = run_taskd(script, "--config", str(bad_config), "--log", str(log), "--log-json")
    assert result.status == 0, result.err
    ongoing = [m.group(1) for line in result.errors if (m := BLOCKING.match(line))]
    stalls = [STALL.match(line) for line in result.errors if not BLOCKING.match(line)]
    assert all(stalls), result.errors
    named = {m.group(1): float(m.group(2)) for m in stalls if m}
    # The watchdog spoke while each long step was still running, and only of those.
    assert {"sleeper", "spinner"} <= set(ongoing) <= set(named), (ongoing, named)
    assert {"sleeper", "spinner"} <= set(named)
    assert named["sleeper"] >= 0.6 and named["spinner"] >= 0.4
    # Steps that do not block are not blamed (the OS pausing the whole process on a
    # badly loaded machine could, rarely, make one look blocked: hence no equality).
    assert not any(name.startswith("timer-") for name in named), named
    assert "brief" not in named or named["brief"] < 0.6
    events = [json.loads(line) for line in log.read_text().splitlines()]
    logged = {e["task"]: e["blocked_s"] for e in events if e["event"] == "stall"}
    assert logged.keys() == named.keys()
    assert logged["sleeper"] >= 0.6


def test_stall_detection_can_be_turned_off(
    run_taskd: RunTaskd, bad_config: Path
) -> None:
    config = bad_config.read_text().replace("stall_threshold = 0.2", "stall_threshold = 0")
    bad_config.write_text(config)
    result = run_taskd("new hog 0.3\nwait\n", "--config", str(bad_config))
    assert result.status == 0 and result.err == ""


def test_a_step_that_never_ends_is_named_while_it_blocks(
    bad_config: Path, env: dict[str, str]
) -> None:
    """The loop is frozen for good: only the watchdog thread can say which task did it."""
    with subprocess.Popen(
        taskd_command("--config", str(bad_config)), stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    ) as proc:
        assert proc.stdin is not None and proc.stderr is not None
        try:
            proc.stdin.write(b"new spin 3600 --name forever\n")
            proc.stdin.flush()
            line = proc.stderr.readline().decode()  # blocks until the watchdog speaks
            assert BLOCKING.match(line.rstrip("\n")), line
            assert "forever" in line
        finally:
            proc.kill()
