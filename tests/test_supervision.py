"""Issue 11 through the real program: restart policies, `restart`, --after, --timeout,
groups, shell --cwd/--env, the log's new events, and a script's failed tasks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import RunTaskd, Session

from taskd.errors import shown


def last_json(lines: list[str]) -> list[dict[str, Any]]:
    found = [line for line in lines if line == "[]" or line.startswith("[{")]
    assert found, lines
    result: list[dict[str, Any]] = json.loads(found[-1])
    return result


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items}


def test_on_failure_restarts_then_gives_up_saying_so(run_taskd: RunTaskd) -> None:
    result = run_taskd(
        "new fail 0 boom --name f --restart on-failure --max-restarts 2 --backoff 0.01\n"
        "wait f\nshow --all --json\n"
    )
    f = by_name(last_json(result.lines))["f"]
    assert (f["state"], f["restarts"], f["restart"]) == ("failed", 2, "on-failure")
    assert [line for line in result.lines if line.startswith("f ended")] == [
        "f ended (TaskFailure: boom); restart 1 in 0.01s",
        "f ended (TaskFailure: boom); restart 2 in 0.02s",
    ]
    assert "taskd: f: not restarted again after 2 restarts (--max-restarts 2); it ends as " \
        "its last run did" in result.errors
    assert result.status == 1


def test_on_failure_leaves_a_task_that_is_done_alone(run_taskd: RunTaskd) -> None:
    result = run_taskd("new timer 0 --name t --restart on-failure\nwait\nshow --all --json\n")
    t = by_name(last_json(result.lines))["t"]
    assert (t["state"], t["restarts"], result.status) == ("done", 0, 0)


def test_always_restarts_and_a_cancel_in_the_backoff_ends_it(
    session: Callable[..., Session],
) -> None:
    s = session()
    s.send("new timer 0 --name t --restart always --backoff 30")
    s.expect("t ended (done); restart 1 in 30s")
    s.send("show")
    s.expect(lambda line: line.startswith("t ") and "waiting" in line and "restart 1 in" in line)
    s.send("cancel t")
    s.expect("cancelled t")
    s.send("show --all --json")
    t = by_name(json.loads(s.expect(lambda line: line.startswith("[{"))))["t"]
    assert (t["state"], t["restarts"]) == ("cancelled", 1)
    s.close_stdin()
    assert s.finish() == 0
    assert not any("restart 2" in line for line in s.out)


def test_restart_command_counts_and_keeps_options(run_taskd: RunTaskd) -> None:
    result = run_taskd(
        "new timer 0 --name t --timeout 9 --group g\nwait t\nrestart t\nwait t\n"
        "restart t\nshow --json t\nrestart nope\n"
    )
    assert result.lines.count("restarted t") == 2
    t = last_json(result.lines)[0]
    assert (t["restarts"], t["timeout_s"], t["group"], t["kind"]) == (2, 9.0, "g", "timer")
    assert result.errors == ["<stdin>:7: error: no task named 'nope'"]


def test_show_counts_restarts_in_the_table(run_taskd: RunTaskd) -> None:
    result = run_taskd(
        "new idle --name a\nrestart a\nrestart a\nnew idle --name plain\n"
        "new fail 0 --name f --restart on-failure --max-restarts 1 --backoff 0\n"
        "new timer 0 --name b\nwait b\nrestart b\nwait b f\nshow --all\n"
    )
    rows = {line.split()[0]: line for line in result.lines[-5:]}
    assert rows["a"].split()[2:3] == ["running"] and rows["a"].endswith("s  (2 restarts)")
    assert rows["b"].endswith("done (1 restart)")
    assert rows["f"].endswith("failed: TaskFailure: failed on purpose (1 restart)")
    assert rows["plain"].split() == ["plain", "idle", "running", rows["plain"].split()[3]]


def test_restart_of_a_live_task_cancels_it_first(session: Callable[..., Session]) -> None:
    s = session()
    s.send("new tick 0.01 --name k")
    s.expect("[k] tick 1")
    s.send("restart k")
    s.expect("restarted k")
    s.expect("[k] tick 1")  # counting again: a new run
    s.send("show --json k")
    k = json.loads(s.expect(lambda line: line.startswith("[{")))[0]
    assert (k["state"], k["restarts"], k["args"]) == ("running", 1, ["0.01"])
    s.close_stdin()
    assert s.finish() == 0


def test_after_a_task_that_fails_ends_cancelled_with_the_reason(run_taskd: RunTaskd) -> None:
    result = run_taskd(
        "new fail 0.01 --name build\nnew timer 0 --name test --after build\n"
        "new timer 0 --name ok --after test\nwait ok\nshow --all --json\n"
    )
    tasks = by_name(last_json(result.lines))
    assert (tasks["test"]["state"], tasks["test"]["error"]) == ("cancelled", "after: build failed")
    assert tasks["test"]["after"] == ["build"]
    assert tasks["ok"]["error"] == "after: test cancelled"
    assert "test cancelled: after: build failed" in result.lines
    assert result.status == 1  # build failed, though nothing waited on it


def test_the_log_ends_with_the_status_a_failed_task_gave_the_script(
    run_taskd: RunTaskd, tmp_path: Path
) -> None:
    log = tmp_path / "run.log"
    # `wait fine`, not a wait on build (a failed wait is a failed command, exit 1 on
    # its own): build was spawned first, so it has run, and failed, when fine is done.
    result = run_taskd("new fail 0 --name build\nnew timer 0 --name fine\nwait fine\n",
                       "--log", str(log))
    assert result.status == 1
    assert log.read_text().splitlines()[-1].endswith("taskd daemon-end status=1")
    result = run_taskd("new timer 0 --name fine\nwait fine\n", "--log", str(log))
    assert result.status == 0
    assert log.read_text().splitlines()[-1].endswith("taskd daemon-end status=0")


def test_after_waits_until_every_named_task_is_done(session: Callable[..., Session]) -> None:
    s = session()
    s.send("new idle --name a")
    s.send("new timer 0 --name b")
    s.send("new tick 0.01 1 --name c --after a,b")
    s.send("show")
    s.expect(lambda line: line.startswith("c ") and "waiting" in line and "waiting for a" in line)
    s.send("cancel a")  # cancelled, not done: c never runs
    s.expect("c cancelled: after: a cancelled")
    s.send("new idle --name d")
    s.send("new tick 0.01 1 --name e --after d")
    s.send("cancel e")  # a waiting task is live: it can be cancelled
    s.expect("cancelled e")
    s.close_stdin()
    assert s.finish() == 0
    assert not any(line.startswith("[c]") for line in s.out)


def test_after_names_must_exist(run_taskd: RunTaskd) -> None:
    result = run_taskd("new --name a --after nope\nnew --after a,\nshow --all\n")
    assert result.errors == [
        "<stdin>:1: error: --after: no task named 'nope'",
        "<stdin>:2: error: --after: expected NAME[,NAME...], got 'a,'",
    ]
    assert result.lines == ["no tasks, live or finished"]


def test_timeout_on_a_blocking_task_fails_it_and_its_thread_goes_on(
    run_taskd: RunTaskd,
) -> None:
    result = run_taskd(
        "new blocking 3 --name b --timeout 0.1\nnew timer 0 --name gate --after b\n"
        "wait gate\nshow --all --json\n"
    )
    b = by_name(last_json(result.lines))["b"]
    assert (b["state"], b["error"], b["timeout_s"]) == ("failed", "timed out after 0.1 s", 0.1)
    assert "[b] await cancelled; the thread cannot be, and sleeps on" in result.lines
    assert "taskd: 1 task failed: b (timed out after 0.1 s)" in result.errors
    assert "taskd: abandoned 1 executor thread still running (b)" in result.errors
    assert result.status == 1


def test_a_script_fails_when_a_task_failed_even_unwaited(run_taskd: RunTaskd) -> None:
    # The gates are cancelled (not failed) when their task fails: waiting on them
    # waits for the failures without waiting on the failed tasks themselves.
    result = run_taskd(
        "new shell 'exit 2' --name build\nnew idle --name test --timeout 0.2\n"
        "new --name g1 --after build\nnew --name g2 --after test\nwait g1 g2\n"
    )
    assert result.status == 1
    assert result.errors == [
        "taskd: 2 tasks failed: build (exit status 2), test (timed out after 0.2 s)"
    ]


def test_a_script_whose_tasks_all_succeed_exits_0(run_taskd: RunTaskd) -> None:
    result = run_taskd("new timer 0 --timeout 5 --restart on-failure\nwait\n")
    assert (result.status, result.errors) == (0, [])


def test_group_queues_in_order_and_restart_of_a_queued_task(
    session: Callable[..., Session],
) -> None:
    s = session()
    s.send("group g --parallel 1")
    s.expect("group g: parallel 1, 0 running, 0 queued")
    for name in ("g1", "g2", "g3", "g4"):
        s.send(f"new idle --name {name} --group g")
        s.expect(f"started {name}")
    s.send("show")
    s.expect(lambda line: line.startswith("g3 ") and "queued (2nd in group g)" in line)
    s.send("restart g2")  # a queued task: out of the queue, then in again at the end
    s.expect("restarted g2")
    s.send("cancel g3")  # a queued task leaves the queue
    s.expect("cancelled g3")
    s.send("show --json")
    tasks = by_name(json.loads(s.expect(lambda line: line.startswith("[{"))))
    assert {n: t["state"] for n, t in tasks.items()} == {
        "g1": "running", "g2": "queued", "g4": "queued"
    }
    s.send("show")
    s.expect(lambda line: line.startswith("g4 ") and "queued (1st in group g)" in line)
    s.expect(lambda line: line.startswith("g2 ") and "queued (2nd in group g)" in line)
    s.send("group")
    s.expect(lambda line: line.split() == ["g", "1", "1", "2"])
    s.send("group g --parallel unlimited")
    s.expect("group g: parallel unlimited, 3 running, 0 queued")
    s.close_stdin()
    assert s.finish() == 0


def test_group_command_errors(run_taskd: RunTaskd) -> None:
    result = run_taskd(
        "group\ngroup --parallel 2\ngroup g --parallel 0\ngroup nope\ngroup 'a b'\n"
        "group -g --parallel 2\ngroup g --parallel 99999999999999999999\n"
        f"group g --parallel {'9' * 5000}\nnew idle --restart always --max-restarts {'9' * 5000}\n"
        "group g --parallel 0001000000\n"
    )
    # leading zeros are the same number: a million is the most, and taken
    assert result.lines == ["no groups", "group g: parallel 1000000, 0 running, 0 queued"]
    assert [e.split(": error: ", 1)[1] for e in result.errors] == [
        "group: --parallel needs a group name (usage: group [G [--parallel N|unlimited]])",
        "--parallel: expected a whole number from 1 to 1,000,000 or 'unlimited', got '0'",
        "no group named 'nope' (`new --group` or --parallel makes one)",
        "invalid group name 'a b': use up to 64 letters, digits, '-', '_' and '.'",
        "invalid group name '-g': start it with a letter, a digit or '_'",
        "--parallel: expected a whole number from 1 to 1,000,000 or 'unlimited', got "
        "'99999999999999999999'",
        # over 4,300 digits: int() itself refuses them (an internal error, once)
        "--parallel: expected a whole number from 1 to 1,000,000 or 'unlimited', got "
        f"{shown('9' * 5000)}",
        f"--max-restarts: expected at most 1,000,000, got {shown('9' * 5000)}",
    ]


def test_ten_tasks_through_a_group_of_two_all_done(run_taskd: RunTaskd) -> None:
    lines = "".join(f"new timer 0.01 --name t{i} --group g\n" for i in range(10))
    result = run_taskd(f"group g --parallel 2\n{lines}wait\nshow --all --json\n")
    assert {t["state"] for t in last_json(result.lines)} == {"done"}
    assert result.status == 0


def test_shell_cwd_and_env(run_taskd: RunTaskd, tmp_path: Path) -> None:
    folder = tmp_path / "work place"
    folder.mkdir()
    result = run_taskd(
        f"new shell 'pwd; echo \"$A $B\"' --name s --cwd '{folder}' --env A=1 --env 'B=two words'\n"
        "wait s\nnew timer 0 --cwd /\nnew shell true --cwd /no/such/folder\n"
        "new shell true --env NOEQUALS\n"
    )
    assert f"[s] {folder}" in result.lines and "[s] 1 two words" in result.lines
    assert [e.split(": error: ", 1)[1] for e in result.errors] == [
        "--cwd and --env are for shell tasks only",
        "--cwd: no folder '/no/such/folder'",
        "--env: expected KEY=VALUE, got 'NOEQUALS'",
    ]


def test_bad_option_values_are_one_line_and_start_nothing(run_taskd: RunTaskd) -> None:
    result = run_taskd(
        "new --restart sometimes\nnew --max-restarts -1\nnew --backoff x\nnew --timeout 0\n"
        "new --group 'a b'\nshow --all\n"
    )
    assert len(result.errors) == 5 and result.lines == ["no tasks, live or finished"]
    assert "unknown policy 'sometimes' (use no, on-failure or always)" in result.errors[0]


def test_log_has_restarted_queued_and_waiting_events(
    run_taskd: RunTaskd, tmp_path: Path
) -> None:
    log = tmp_path / "events.log"
    jlog = tmp_path / "events.jsonl"
    script = (
        "group g --parallel 1\nnew idle --name a --group g\nnew idle --name q --group g\n"
        "new timer 0 --name w --after a\n"
        "new fail 0 --name r --restart on-failure --max-restarts 1 --backoff 0\n"
        "wait r\nend\n"  # r's restart has been logged; so have the others' first steps
    )
    run_taskd(script, "--log", str(log))
    text = log.read_text().splitlines()
    events = {(line.split()[1], line.split()[2]) for line in text}
    assert {("q", "queued"), ("w", "waiting"), ("r", "restarted")} <= events
    assert any(" r restarted " in line and "restart=1" in line for line in text)
    run_taskd(script, "--log", str(jlog), "--log-json")
    items = [json.loads(line) for line in jlog.read_text().splitlines()]
    queued = next(i for i in items if i["event"] == "queued")
    assert (queued["task"], queued["group"], queued["place"]) == ("q", "g", 1)


def test_show_right_after_new_lines_predicts_who_runs(run_taskd: RunTaskd) -> None:
    # All lines arrive in one chunk: no task has taken its first step at `show`.
    result = run_taskd(
        "group g --parallel 1\nnew idle --name a --group g\nnew idle --name b --group g\n"
        "new idle --name c --group free\nshow --json\n", via="file",
    )
    states = {t["name"]: t["state"] for t in last_json(result.lines)}
    assert states == {"a": "running", "b": "queued", "c": "running"}
