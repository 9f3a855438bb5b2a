"""The state file through the real program: kept as tasks come and go, read back with
`restore = true` after an `end` or a SIGKILL, and an unusable file kept aside."""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import RunTaskd, Session

from taskd.config import Config, default_state_file, with_state_options


def last_json(lines: list[str]) -> list[dict[str, Any]]:
    found = [line for line in lines if line == "[]" or line.startswith("[{")]
    assert found, lines
    result: list[dict[str, Any]] = json.loads(found[-1])
    return result


def configs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(the state file, a config that writes it, a config that also restores from it)"""
    state = tmp_path / "state" / "taskd" / "state.json"
    keep = tmp_path / "keep.toml"
    keep.write_text(f'state_file = "{state}"\n')
    restore = tmp_path / "restore.toml"
    restore.write_text(f'state_file = "{state}"\nrestore = true\n')
    return state, keep, restore


def test_a_script_run_then_a_restore_finds_the_tasks_again(
    run_taskd: RunTaskd, tmp_path: Path
) -> None:
    state, keep, restore = configs(tmp_path)
    first = run_taskd(
        "group g --parallel 2\nnew idle --name a\n"
        "new tick 5 --name t --group g --restart always --timeout 30\n"
        "new timer 60 --name w --after a\n"
        f"new shell 'sleep 60' --name s --cwd '{tmp_path}' --env K=V\n"
        "new timer 0 --name done1\nwait done1\n",
        "--config", str(keep),
    )
    assert first.status == 0, first.err
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
    second = run_taskd(
        "show --json\nshow --all --json done1\ngroup\nshow\n", "--config", str(restore)
    )
    assert second.errors == [
        f"taskd: restored 4 live tasks and 1 finished from {state}",
        "taskd: end cancelled 4 tasks: a, t, w, s",
    ]
    live = last_json(second.lines[:1])
    assert [(t["name"], t["kind"], t["args"]) for t in live] == [
        ("a", "idle", []), ("t", "tick", ["5"]), ("w", "timer", ["60"]),
        ("s", "shell", ["sleep 60"]),
    ]
    assert all(t["restored"] for t in live)
    t = live[1]
    assert (t["group"], t["restart"], t["timeout_s"]) == ("g", "always", 30.0)
    assert live[2]["after"] == ["a"] and live[2]["state"] == "waiting"
    done1 = last_json(second.lines)[0]
    assert (done1["state"], done1["restored"]) == ("done", True)
    assert ["g", "2", "1", "0"] in [line.split() for line in second.lines]
    assert any(line.startswith("a ") and line.endswith("(restored)") for line in second.lines)
    # The shell task's --cwd and --env came back too.
    saved = json.loads(state.read_text())
    s = next(e for e in saved["live"] if e["name"] == "s")
    assert s["options"] == {"cwd": str(tmp_path), "env": [["K", "V"]]}


def test_without_restore_the_file_is_replaced_by_this_run(
    run_taskd: RunTaskd, tmp_path: Path
) -> None:
    state, keep, _ = configs(tmp_path)
    run_taskd("new idle --name old\n", "--config", str(keep))
    fresh = run_taskd("show --all\nnew idle --name new\n", "--config", str(keep))
    assert fresh.lines[0] == "no tasks, live or finished"
    assert fresh.errors == ["taskd: end cancelled 1 task: new"]
    assert [e["name"] for e in json.loads(state.read_text())["live"]] == ["new"]


def test_a_task_that_cannot_come_back_is_named(run_taskd: RunTaskd, tmp_path: Path) -> None:
    state, _, restore = configs(tmp_path)
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"taskd_state": 1, "history": [], "live": [
        {"name": "gone", "kind": "nosuchkind", "args": [], "options": {}},
        {"name": "ok", "kind": "idle", "args": [], "options": {}},
    ]}))
    result = run_taskd("show --json\n", "--config", str(restore))
    assert [t["name"] for t in last_json(result.lines)] == ["ok"]
    assert result.errors[0].startswith("taskd: 1 task not restored: gone (unknown kind")
    assert result.errors[1] == f"taskd: restored 1 live task and 0 finished from {state}"


def wait_for_file(path: Path, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Poll PATH until its JSON satisfies READY (a generous safety deadline)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            data: dict[str, Any] = json.loads(path.read_bytes())
            if ready(data):
                return data
        except (OSError, ValueError):
            pass  # not written yet: the rename makes every read whole
        assert time.monotonic() < deadline, f"{path} never showed the tasks"
        time.sleep(0.02)


def test_sigkill_then_restore_brings_back_tasks_and_history(
    session: Callable[..., Session], tmp_path: Path
) -> None:
    state, keep, restore = configs(tmp_path)
    s = session("--config", str(keep))
    s.send("group g --parallel 1")
    for line in (
        "new idle --name a", "new tick 0.5 --name t --group g", "new timer 60 --name q --group g",
        "new timer 60 --name w --after a --timeout 90", "new fail 0 boom --name f",
    ):
        s.send(line)
    s.expect("started f")
    names = ["a", "t", "q", "w"]
    wait_for_file(state, lambda d: [e["name"] for e in d["live"]] == names and bool(d["history"]))
    os.kill(s.proc.pid, signal.SIGKILL)
    assert s.proc.wait(30) == -signal.SIGKILL

    again = session("--config", str(restore))
    again.send("show --json")
    live = json.loads(again.expect(lambda line: line.startswith("[")))
    assert [(t["name"], t["kind"], t["args"]) for t in live] == [
        ("a", "idle", []), ("t", "tick", ["0.5"]), ("q", "timer", ["60"]),
        ("w", "timer", ["60"]),
    ]
    assert [t["state"] for t in live] == ["running", "running", "queued", "waiting"]
    assert all(t["restored"] for t in live) and live[3]["timeout_s"] == 90
    again.send("show --all --json f")
    f = json.loads(again.expect(lambda line: line.startswith("[")))[0]
    assert (f["state"], f["error"], f["restored"]) == ("failed", "TaskFailure: boom", True)
    again.expect(f"taskd: restored 4 live tasks and 1 finished from {state}", which="err")
    again.close_stdin()
    assert again.finish() == 0


FOREIGN = {
    "truncated": lambda good: good[: len(good) // 2],
    "not JSON": lambda good: b"\x00\x01 this is not a state file \xff",
    "someone else's JSON": lambda good: b'{"name": "my settings", "live": []}\n',
}


@pytest.mark.parametrize("how", list(FOREIGN))
def test_an_unusable_state_file_is_said_kept_aside_and_taskd_starts_empty(
    run_taskd: RunTaskd, tmp_path: Path, how: str
) -> None:
    state, keep, restore = configs(tmp_path)
    run_taskd("new idle --name a\nnew timer 0 --name b\nwait b\n", "--config", str(keep))
    bad = FOREIGN[how](state.read_bytes())
    state.write_bytes(bad)
    result = run_taskd("show --all\n", "--config", str(restore))
    assert result.status == 0 and result.lines == ["no tasks, live or finished"]
    assert len(result.errors) == 1, result.errors
    assert result.errors[0].startswith(f"taskd: state file '{state}' ")
    assert "; kept as 'state.json.corrupt-" in result.errors[0]
    assert result.errors[0].endswith("; starting empty")
    aside = [p for p in state.parent.iterdir() if p.name.startswith("state.json.corrupt-")]
    assert len(aside) == 1 and aside[0].read_bytes() == bad
    assert json.loads(state.read_text())["live"] == []  # this run's (empty) state


def test_restore_without_a_state_file_says_so(run_taskd: RunTaskd, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("restore = true\n")
    result = run_taskd("show\n", "--config", str(config))
    assert result.errors == [
        "taskd: warning: restore is on but no state_file is set: nothing to restore"
    ]


def test_a_folder_as_the_state_file_is_refused_before_anything(
    run_taskd: RunTaskd, tmp_path: Path
) -> None:
    folder = tmp_path / "states"
    folder.mkdir()
    result = run_taskd("new idle --name x\n", "--state-file", str(folder))
    assert (result.status, result.out) == (2, "")
    assert result.errors == [
        f"taskd: error: state file '{folder}' is a folder; give a file's path "
        "(--state-file PATH) or none (--state-file off)"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["states"]  # no states.lock


def test_state_options_for_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "/xdg")
    assert default_state_file() == "/xdg/taskd/state.json"
    base = Config()
    assert with_state_options(base) == base
    assert with_state_options(base, serving=True).state_file == "/xdg/taskd/state.json"
    chosen = with_state_options(base, "s.json", True, serving=True)
    assert (chosen.state_file, chosen.restore) == ("s.json", True)
    assert with_state_options(Config(state_file="x"), serving=True).state_file == "x"
    assert with_state_options(base, "off", serving=True).state_file == ""
