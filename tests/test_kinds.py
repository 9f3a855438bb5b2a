"""Every task kind, through the real program and in-process."""

from __future__ import annotations

import json
import os
import re
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import ListFrontend, RunTaskd, Session

from taskd.config import Config
from taskd.daemon import Daemon
from taskd.kinds import load_kinds
from taskd.registry import State


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, process group) of PID, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0], int(fields[2])


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group PGID, from the process table."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat is not None and stat[1] == pgid and stat[0] != "Z":
                members.append(int(entry))
    return members


def is_json_list(line: str) -> bool:
    return line == "[]" or line.startswith("[{")


def shown_json(result_lines: list[str]) -> list[dict[str, Any]]:
    """The last `show --json` line of the output."""
    found: list[dict[str, Any]] = json.loads([ln for ln in result_lines if is_json_list(ln)][-1])
    return found


# -- through the real entry point ------------------------------------------------------


def test_idle_is_the_default_and_runs_until_cancelled(run_taskd: RunTaskd) -> None:
    result = run_taskd("new\nshow --json\ncancel idle-1\nshow --all --json\n")
    assert result.status == 0, result.err
    before = json.loads(result.lines[1])
    after = json.loads(result.lines[3])
    assert [(t["name"], t["kind"], t["state"]) for t in before] == [("idle-1", "idle", "running")]
    assert "cancelled idle-1" in result.lines
    assert [(t["name"], t["state"]) for t in after] == [("idle-1", "cancelled")]


def test_tick_counts_then_is_done(run_taskd: RunTaskd) -> None:
    result = run_taskd("new tick 0.01 3\nwait\n")
    assert result.lines[:4] == ["started tick-1", "[tick-1] tick 1", "[tick-1] tick 2",
                                "[tick-1] tick 3"]
    assert result.lines[4].startswith("tick-1 done after ")


def test_msg_prints_its_text_count_times(run_taskd: RunTaskd) -> None:
    result = run_taskd("new msg 'hello there' 2 0 --name m\nwait m\n")
    assert result.status == 0
    assert [line for line in result.lines if line.startswith("[m]")] == ["[m] hello there"] * 2


def test_search_reports_each_hit(run_taskd: RunTaskd) -> None:
    result = run_taskd("new search 1 3 --name s\nnew search 0.5 --name h\nwait\n")
    assert result.status == 0, result.err
    hits = [line for line in result.lines if line.startswith("[s] hit ")]
    assert [h.split(":")[0] for h in hits] == ["[s] hit 1", "[s] hit 2", "[s] hit 3"]
    assert all(h.endswith("after 1 draws") for h in hits)  # P=1: every draw is a hit
    assert any(re.fullmatch(r"\[h\] hit 1: \S+ after \d+ draws", line) for line in result.lines)


def test_timer_is_done(run_taskd: RunTaskd) -> None:
    result = run_taskd("new timer 0.01 --name t\nwait t\nshow --all --json\n")
    assert result.status == 0
    assert shown_json(result.lines)[0]["state"] == "done"


def test_fail_shows_its_message_and_fails(run_taskd: RunTaskd) -> None:
    result = run_taskd("new fail 0 'it broke' --name f\nwait f\nshow --all --json\n")
    assert result.status == 1
    assert "f failed after" in result.out and "TaskFailure: it broke" in result.out
    assert result.errors == [
        "<stdin>:2: error: 1 task failed: f: TaskFailure: it broke",
        "taskd: 1 task failed: f (TaskFailure: it broke)",  # a script's summary (issue 11)
    ]
    (record,) = shown_json(result.lines)
    assert record["state"] == "failed" and record["error"] == "TaskFailure: it broke"


def test_fail_default_message(run_taskd: RunTaskd) -> None:
    result = run_taskd("new fail\nwait fail-1 --timeout 30\n")
    assert "TaskFailure: failed on purpose" in result.out


def test_shell_lines_and_exit_status(run_taskd: RunTaskd) -> None:
    result = run_taskd(
        "new shell 'echo one; echo two >&2; printf last' --name ok\n"
        "new shell 'echo bad; exit 3' --name bad\n"
        "wait ok\nwait bad\nshow --all --json\n"
    )
    assert result.status == 1
    out = [line for line in result.lines if line.startswith("[ok]")]
    assert out == ["[ok] one", "[ok] two", "[ok] last"]
    assert "[bad] bad" in result.lines
    assert result.errors == [
        "<stdin>:4: error: 1 task failed: bad: ShellFailure: exit status 3",
        "taskd: 1 task failed: bad (exit status 3)",  # a script's summary (issue 11)
    ]
    states = {t["name"]: t["state"] for t in shown_json(result.lines)}
    assert states == {"ok": "done", "bad": "failed"}


def test_shell_cancel_kills_the_whole_group(
    session: Callable[..., Session], tmp_path: Path
) -> None:
    """A grandchild that ignores SIGTERM is killed too: nothing of the group survives."""
    script = tmp_path / "family.sh"
    script.write_text(textwrap.dedent("""\
        sh -c 'trap "" TERM; echo grandchild $$; exec sleep 60' &
        echo child $$
        wait
        """))
    config = tmp_path / "grace.toml"
    config.write_text("cancel_grace = 1.0\n")
    s = session("--config", str(config))
    s.send(f"new shell sh {script} --name fam")
    pids = {}
    for _ in range(2):
        who, pid = s.expect(lambda line: line.startswith("[fam] ")).split()[1:]
        pids[who] = int(pid)
    stats = {who: proc_stat(pid) for who, pid in pids.items()}
    pgid = stats["child"][1] if stats["child"] else -1
    assert pgid > 1 and stats["grandchild"] is not None and stats["grandchild"][1] == pgid
    assert pgid != os.getpgid(s.proc.pid)  # a group of its own, not taskd's
    s.send("cancel fam")
    s.expect("cancelled fam")
    # SIGKILL was sent before `cancelled`; the kernel finishes killing asynchronously,
    # so poll the process table (the deadline is only a safety net).
    deadline = time.monotonic() + 10
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert group_members(pgid) == []
    s.send("show --all --json")
    record = json.loads(s.expect(is_json_list))[0]
    assert record["state"] == "cancelled"
    s.close_stdin()
    assert s.finish() == 0
    assert s.err == []


def test_blocking_cancel_cancels_the_await_not_the_thread(
    session: Callable[..., Session],
) -> None:
    s = session()
    # 2 s leaves ample room for `cancel` to arrive while the thread still sleeps.
    s.send("new blocking 2 --name b")
    s.expect("[b] sleeping 2s in a worker thread; the loop stays free")
    s.send("cancel b")
    s.expect("[b] await cancelled; the thread cannot be, and sleeps on")
    s.expect("cancelled b")
    # The thread goes on and says so later, under the task's name.
    s.expect("[b] thread woke after 2s; its await was cancelled, so nobody takes the result")
    s.close_stdin()
    assert s.finish() == 0


def test_blocking_runs_to_the_end(run_taskd: RunTaskd) -> None:
    result = run_taskd("new blocking 0.01 --name b\nwait b\n")
    assert result.status == 0
    assert "[b] thread finished" in result.lines


def test_stubborn_refuses_and_stays_cancelling(run_taskd: RunTaskd, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("cancel_grace = 0.2\n")
    # `sleep 0` lets the task take its first step: a task cancelled before it ever
    # runs cannot refuse (asyncio never starts its coroutine).
    script = "new stubborn --name st\nsleep 0\ncancel st\nshow --json\n"
    result = run_taskd(script, "--config", str(config))
    assert result.status == 1
    assert "[st] cancel refused (1): CancelledError caught and ignored" in result.lines
    assert result.errors[0] == (
        "<stdin>:3: error: st did not stop within 0.2s (still cancelling)"
    )
    assert shown_json(result.lines)[0]["state"] == "cancelling"
    assert "abandoned 1 task that did not stop within 0.2s: st" in result.errors[-1]


USER_KINDS = '''\
"""A user's kinds, loaded through [kinds] in a config file."""
import asyncio


async def greet(who, times="2"):
    """greets WHO TIMES times"""
    for _ in range(int(times)):
        await asyncio.sleep(0)
        print(f"hello {who}")


async def shout(*words):
    print(" ".join(words).upper())
'''


def user_kind_setup(tmp_path: Path, env: dict[str, str]) -> Path:
    (tmp_path / "mykinds.py").write_text(USER_KINDS)
    config = tmp_path / "kinds.toml"
    config.write_text('[kinds]\ngreet = "mykinds:greet"\nshout = "mykinds:shout"\n')
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    return config


def test_user_defined_kind(run_taskd: RunTaskd, tmp_path: Path, env: dict[str, str]) -> None:
    config = user_kind_setup(tmp_path, env)
    result = run_taskd(
        "kinds\nnew greet world\nnew shout a b c --name s\nwait\nnew greet\nnew greet a b c\n",
        "--config", str(config),
    )
    assert result.status == 1
    assert any(re.fullmatch(r"greet WHO \[TIMES=2\] +greets WHO TIMES times", line)
               for line in result.lines)
    assert result.lines.count("[greet-1] hello world") == 2
    assert "[s] A B C" in result.lines
    assert [e.split(": error: ")[0] for e in result.errors] == ["<stdin>:5", "<stdin>:6"]
    assert "usage: greet WHO [TIMES=2]" in result.errors[0]


# -- in-process -------------------------------------------------------------------------


async def test_kinds_in_process(live_daemon: Callable[..., Any]) -> None:
    daemon = await live_daemon()
    await daemon.execute("new tick 0.001 2 --name t")
    await daemon.execute("new msg hi 1 0 --name m")
    await daemon.execute("new search 1 2 --name s")
    await daemon.execute("new timer 0 --name tm")
    await daemon.execute("new shell 'echo out' --name sh")
    await daemon.execute("new blocking 0 --name b")
    await daemon.execute("wait")
    lines = daemon.output.lines
    for expected in ("[t] tick 2", "[m] hi", "[sh] out", "[b] thread finished"):
        assert expected in lines
    assert sum(line.startswith("[s] hit ") for line in lines) == 2
    assert {r.name: r.state for r in daemon.registry.records(True)} == {
        name: State.DONE for name in ("t", "m", "s", "tm", "sh", "b")
    }


def test_fail_and_stubborn_in_process() -> None:
    """Through Daemon.run() on its own loop: a test loop would hang at teardown trying
    to cancel the stubborn task that the daemon rightly abandons."""
    daemon = Daemon(Config(cancel_grace=0.05))
    frontend = ListFrontend(
        ["new fail 0 nope --name f", "new stubborn --name st", "sleep 0", "cancel st",
         "show --json"]
    )
    assert daemon.run(frontend) == 1
    out, err = frontend.output.lines, frontend.output.errors
    assert "[st] cancel refused (1): CancelledError caught and ignored" in out
    assert shown_json(out)[-1]["state"] == "cancelling"
    assert err[0] == "error: st did not stop within 0.05s (still cancelling)"
    assert "abandoned 1 task that did not stop within 0.05s: st" in err[1]
    assert daemon.registry.get("f").error == "TaskFailure: nope"
    assert [r.name for r in daemon.abandoned_tasks] == ["st"]


async def test_user_kind_in_process(
    live_daemon: Callable[..., Any], tmp_path: Path, monkeypatch: Any
) -> None:
    (tmp_path / "mykinds2.py").write_text(USER_KINDS)
    monkeypatch.syspath_prepend(str(tmp_path))
    kinds = load_kinds({"greet": "mykinds2:greet"})
    daemon = await live_daemon(Config(kinds={"greet": "mykinds2:greet"}), kinds)
    await daemon.execute("new greet you 1 --name g")
    await daemon.execute("wait g")
    assert "[g] hello you" in daemon.output.lines
