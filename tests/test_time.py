"""Time made visible, through the real program: timestamps, timeline, step logs and
traces, the virtual clock in the daemon, and transcript checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import RunTaskd, Session

from taskd.config import Config
from taskd.daemon import Daemon
from taskd.steps import LIMIT
from taskd.timecli import run_expect, without_expect

VIRTUAL = 'clock = "virtual"\n'
STAMPED = "timestamps = true\n"


def config(tmp_path: Path, text: str, name: str = "taskd.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# -- timestamps -------------------------------------------------------------------


def test_timestamps_on_and_off(run_taskd: RunTaskd, tmp_path: Path) -> None:
    script = (
        "new msg a 1 0\nwait\ntimestamps on\nnew msg b 1 0.5\nnew fail 0.25 x\nnew idle\n"
        "sleep 1\ncancel idle-1\ntimestamps off\nnew msg c 1 0\nwait msg-3\n"
    )
    result = run_taskd(script, "--config", config(tmp_path, VIRTUAL))
    assert result.lines == [
        "started msg-1", "[msg-1] a", "msg-1 done after 0.00s",
        "timestamps on",
        "started msg-2", "started fail-1", "started idle-1",
        "+0.250 fail-1 failed after 0.25s: TaskFailure: x",
        "+0.500 [msg-2] b", "+0.500 msg-2 done after 0.50s", "+1.000 cancelled idle-1",
        "timestamps off",
        "started msg-3", "[msg-3] c", "msg-3 done after 0.00s",
    ]
    bad = run_taskd("timestamps maybe\n")
    assert bad.status == 1
    assert bad.errors == ["<stdin>:1: error: timestamps: expected on or off, got 'maybe' "
                          "(usage: timestamps on|off)"]


def test_the_config_turns_them_on_with_real_times(run_taskd: RunTaskd, tmp_path: Path) -> None:
    result = run_taskd("new tick 0.05 2\nwait\n", "--config", config(tmp_path, STAMPED))
    assert result.status == 0, result.err
    stamped = result.lines[1:]
    assert [line.split(" ", 1)[1] for line in stamped] == [
        "[tick-1] tick 1", "[tick-1] tick 2", f"tick-1 done after {stamped[2].split()[-1]}"
    ]
    times = [float(line.split()[0]) for line in stamped]
    assert all(line.startswith("+") for line in stamped)
    assert 0.05 <= times[0] <= times[1] <= times[2] and times[1] >= 0.1


# -- the virtual clock in the daemon ----------------------------------------------


def test_a_long_timer_script_finishes_at_once_with_every_tick_in_order(
    run_taskd: RunTaskd, tmp_path: Path
) -> None:
    """100 minutes of ticks; the 60 s subprocess timeout is the safety net."""
    result = run_taskd("new tick 60 100\nwait\n", "--config",
                       config(tmp_path, VIRTUAL + STAMPED), via="file")
    assert result.status == 0, result.err
    assert result.lines[0] == "started tick-1"
    assert result.lines[1:101] == [f"+{60 * n}.000 [tick-1] tick {n}" for n in range(1, 101)]
    assert result.lines[101:] == ["+6000.000 tick-1 done after 1h40m"]


def test_two_virtual_runs_print_the_same_bytes(run_taskd: RunTaskd, tmp_path: Path) -> None:
    script = (
        "new tick 0.7 5\nnew msg hi 4 1.3\nsleep 2\nshow\nnew fail 1.5 oops\n"
        "new timer 2.25\nwait --timeout 30\nshow --all\n"
    )
    cfg = config(tmp_path, VIRTUAL + STAMPED)
    first = run_taskd(script, "--config", cfg, via="file")
    second = run_taskd(script, "--config", cfg)  # from a pipe this time
    assert first.out == second.out
    assert "+3.500 [tick-1] tick 5" in first.lines
    assert "+3.500 fail-1 failed after 1.50s: TaskFailure: oops" in first.lines
    assert "tick-1  tick  running  2.00s  tick 2" in first.lines  # `show` at 2 s


def test_a_thread_holds_the_virtual_clock(run_taskd: RunTaskd, tmp_path: Path) -> None:
    result = run_taskd("new timer 100\nnew blocking 0.3\nwait\n", "--config",
                       config(tmp_path, VIRTUAL))
    assert result.status == 0, result.err
    assert result.lines == [
        "started timer-1", "started blocking-1",
        "[blocking-1] sleeping 0.3s in a worker thread; the loop stays free",
        "[blocking-1] thread finished",
        result.lines[4],
        "timer-1 done after 1m40s",
    ]
    assert result.lines[4].startswith("blocking-1 done after 0.3")  # real time, held


def test_waiting_for_input_takes_no_virtual_time(
    session: type[Session], tmp_path: Path
) -> None:
    """The lines come from a pipe, written only once the previous one was answered:
    real time passes between them, virtual time does not."""
    taskd = session("--config", config(tmp_path, VIRTUAL + STAMPED))
    taskd.send("new tick 1 3")
    taskd.expect("started tick-1")
    taskd.send("show")
    taskd.expect(lambda line: line.startswith("tick-1 "))
    taskd.send("sleep 5")
    taskd.send("new timer 0.5")
    taskd.expect("started timer-1")
    taskd.close_stdin()
    assert taskd.finish() == 0
    assert [line for line in taskd.out if line.startswith("+")] == [
        "+1.000 [tick-1] tick 1", "+2.000 [tick-1] tick 2", "+3.000 [tick-1] tick 3",
        "+3.000 tick-1 done after 3.00s",
    ]
    assert taskd.out[1] == "NAME    KIND  STATE    AGE    DETAIL"
    assert taskd.out[2].split()[3] == "0.00s"


def test_the_virtual_clock_is_refused_with_uvloop(run_taskd: RunTaskd, tmp_path: Path) -> None:
    result = run_taskd("new tick\n", "--config", config(tmp_path, VIRTUAL + 'loop = "uvloop"\n'))
    assert result.status == 2
    assert result.errors == ['taskd: error: clock: the virtual clock needs loop = "asyncio" '
                             "(uvloop cannot have it)"]
    assert result.out == ""
    wrong = run_taskd("", "--config", config(tmp_path, 'clock = "fast"\n'))
    assert wrong.status == 2 and len(wrong.errors) == 1
    assert "clock: expected one of real, virtual" in wrong.err


def test_a_virtual_log_counts_from_2000(run_taskd: RunTaskd, tmp_path: Path) -> None:
    log = tmp_path / "v.log"
    result = run_taskd(f"log {log}\nnew timer 90\nwait\n", "--config",
                       config(tmp_path, VIRTUAL))
    assert result.status == 0, result.err
    lines = log.read_text().splitlines()
    assert lines[0].startswith("2000-01-01T00:00:00.000+00:00 timer-1 started")
    assert lines[1].startswith("2000-01-01T00:01:30.000+00:00 timer-1 done runtime_s=90.0")


# -- steps, timeline, trace ---------------------------------------------------------

THREE = (
    "new tick 0.1 4 --name ticker\nnew hog 0.3 --name hog\nsleep 0.05\n"
    "new msg hi 2 0.1 --name talker\nwait\n"
)


def test_a_timeline_of_three_tasks_with_a_hog(run_taskd: RunTaskd, tmp_path: Path) -> None:
    result = run_taskd(THREE + "timeline --width 60\ntimeline t* --width 40\n"
                       "timeline --width 5\ntimeline nobody\n")
    assert result.status == 1
    chart = result.lines[-7:-3]
    rows = [line.split(" ", 1)[0] for line in chart[:3]]
    assert rows == ["ticker", "hog", "talker"]  # in order of start
    assert all(len(line) <= 60 for line in chart)
    assert "!" in chart[1] and "█" not in chart[1]  # the hog's one long step
    assert "!" not in chart[0] and chart[0].count("█") >= 4
    assert chart[3].split()[0].endswith("s")  # the time axis
    assert chart[2].index("█") > chart[0].index("█")  # talker started later
    assert [line.split(" ", 1)[0] for line in result.lines[-3:-1]] == ["ticker", "talker"]
    assert result.errors[0].endswith("error: timeline: --width must be a whole number from "
                                      "20 to 1000, got '5' (usage: timeline [PATTERN...] "
                                      "[--width N])")
    assert result.errors[1].endswith("error: no task is named 'nobody'")


def test_log_steps_then_trace_and_timeline_from_the_log(
    run_taskd: RunTaskd, tmp_path: Path
) -> None:
    log, out = tmp_path / "s.log", tmp_path / "trace.json"
    result = run_taskd(f"log {log} --steps --json\n" + THREE, "--log", str(tmp_path / "x"))
    assert result.status == 0, result.err
    assert result.lines[0] == f"logging to {log} (json, steps)"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    steps = [r for r in records if r["event"] == "step"]
    assert {r["task"] for r in steps} == {"ticker", "hog", "talker"}
    hog = [r for r in steps if r["task"] == "hog"]
    assert max(r["dur_s"] for r in hog) >= 0.3
    assert all(r["start_s"] >= 0 for r in steps)
    plain = tmp_path / "x"
    assert "step" not in {line.split()[2] for line in plain.read_text().splitlines()}

    cli = [sys.executable, "-m", "taskd.timecli"]
    traced = subprocess.run([*cli, "trace", str(log), "-o", str(out)], capture_output=True,
                            text=True, timeout=60)
    assert traced.returncode == 0, traced.stderr
    assert traced.stdout.startswith("wrote ") and str(out) in traced.stdout
    events = json.loads(out.read_text())["traceEvents"]
    lanes = {e["args"]["name"]: e["tid"] for e in events if e["name"] == "thread_name"}
    assert {"ticker", "hog", "talker", "taskd"} == set(lanes)
    assert len(set(lanes.values())) == 4  # one lane per task
    slices = [e for e in events if e["ph"] == "X" and e["name"] == "step"]
    assert {e["tid"] for e in slices} == {lanes["ticker"], lanes["hog"], lanes["talker"]}
    assert max(e["dur"] for e in slices if e["tid"] == lanes["hog"]) >= 300_000

    drawn = subprocess.run([*cli, "timeline", str(log), "--width", "50"], capture_output=True,
                           text=True, timeout=60)
    assert drawn.returncode == 0, drawn.stderr
    rows = drawn.stdout.splitlines()
    assert [row.split(" ", 1)[0] for row in rows[:3]] == ["ticker", "hog", "talker"]
    assert "!" in rows[1]
    missing = subprocess.run([*cli, "trace", str(tmp_path / "nope.log"), "-o", str(out)],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2
    assert missing.stderr.splitlines() == [
        f"taskd: error: {tmp_path / 'nope.log'}: cannot read it: No such file or directory"
    ]


def test_log_steps_needs_a_file_and_off_stops_them(run_taskd: RunTaskd, tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    result = run_taskd(f"log --steps\nlog {log} --steps\nnew timer 0\nwait\nlog {log}\n"
                       "new timer 0 --name quiet\nwait\nlog off --steps\n")
    assert result.errors[0].endswith("error: log: --steps needs a FILE "
                                     "(usage: log [FILE [--json] [--steps] | off])")
    assert result.errors[1].endswith("error: log: --steps goes with a FILE "
                                     "(usage: log [FILE [--json] [--steps] | off])")
    tasks = {line.split()[1] for line in log.read_text().splitlines() if " step " in line}
    assert tasks == {"timer-1"}


async def test_steps_are_bounded_per_task_and_counted(live_daemon: object) -> None:
    import asyncio

    live = await live_daemon()  # type: ignore[operator]
    await live.execute("new msg x 3000 0 --name busy")  # 3,000 lines, sleep(0) after each
    record = live.registry.get("busy")
    await live.execute("wait busy")
    steps = live.daemon.steps
    assert steps.count(record) >= 3000
    kept = steps.steps(record)
    assert LIMIT <= len(kept) <= LIMIT + LIMIT // 4
    assert [start for start, _ in kept] == sorted(start for start, _ in kept)
    assert record.finished  # and its steps outlive it
    await live.execute("new msg y 3 0 --name later")
    await live.execute("wait later")
    assert steps.steps(record) == kept
    await asyncio.sleep(0)


def test_steps_are_bounded_in_all_by_one_ring() -> None:
    from taskd.registry import TaskRecord
    from taskd.steps import StepRecorder

    steps = StepRecorder(capacity=8)
    origin = steps._origin  # a step's start is kept as seconds from here
    a, b = TaskRecord("a", "idle", ()), TaskRecord("b", "idle", ())
    held = sys.getrefcount(a)
    for i in range(5):
        steps.after_step(a, origin + i, 0.5)
    assert sys.getrefcount(a) == held  # a forgotten task's record is not kept alive
    for i in range(5, 11):
        steps.after_step(b, origin + i, 0.25)
    assert steps.count(a) == 5 and steps.count(b) == 6
    # 11 steps in a ring of 8: a's first three gave way, the rest oldest first.
    assert steps.steps(a) == [(pytest.approx(3.0), 0.5), (pytest.approx(4.0), 0.5)]
    assert steps.steps(b) == [(pytest.approx(float(i)), 0.25) for i in range(5, 11)]
    assert steps.steps_of([b, a]) == {b: steps.steps(b), a: steps.steps(a)}
    assert steps.steps(TaskRecord("c", "idle", ())) == []


# -- transcripts ----------------------------------------------------------------------


def test_expect_passes_and_fails_with_a_diff(
    env: dict[str, str], tmp_path: Path, run_taskd: RunTaskd
) -> None:
    script = tmp_path / "lesson.tdc"
    script.write_text("new tick 30 2\nwait\n")
    cfg = config(tmp_path, VIRTUAL + STAMPED)
    good = tmp_path / "good.out"
    good.write_text("started tick-1\n+30.000 [tick-1] tick 1\n+60.000 [tick-1] tick 2\n"
                    "+60.000 tick-1 done after 1m00s\n")
    bad = tmp_path / "bad.out"
    bad.write_text(good.read_text().replace("tick 2", "tick two"))
    cli = [sys.executable, "-m", "taskd.timecli", "expect"]
    passed = subprocess.run([*cli, str(good), "--config", cfg, str(script)], env=env,
                            capture_output=True, text=True, timeout=60)
    assert (passed.returncode, passed.stdout, passed.stderr) == (0, "", "")
    failed = subprocess.run([*cli, str(bad), "--config", cfg, str(script)], env=env,
                            capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1
    assert failed.stdout.splitlines() == [
        f"--- {bad}", "+++ actual output", "@@ -1,4 +1,4 @@", " started tick-1",
        " +30.000 [tick-1] tick 1", "-+60.000 [tick-1] tick two", "++60.000 [tick-1] tick 2",
        " +60.000 tick-1 done after 1m00s",
    ]
    assert failed.stderr == f"taskd: the output differs from {bad}\n"
    missing = subprocess.run([*cli, str(tmp_path / "none.out"), str(script)], env=env,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.startswith("taskd: error: ") and missing.stderr.count("\n") == 1
    unusable = subprocess.run([*cli, str(good), "--config", str(tmp_path / "no.toml"),
                               str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert (unusable.returncode, unusable.stdout) == (2, "")  # the run's own error, no diff
    assert unusable.stderr.startswith("taskd: error: ") and unusable.stderr.count("\n") == 1


def test_without_expect_takes_the_option_out() -> None:
    assert without_expect(["--clock", "virtual", "--expect", "t.out", "f.tdc"]) == (
        ["--clock", "virtual", "f.tdc"], "t.out")
    assert without_expect(["--expect=t.out", "--", "--expect"]) == (["--", "--expect"], "t.out")
    assert without_expect(["f.tdc"]) == (["f.tdc"], None)


EXAMPLES = Path(__file__).resolve().parent.parent / "taskd" / "examples"
TRANSCRIBED = ["asyncio01", "asyncio02", "asyncio03", "asyncio07", "asyncio08", "asyncio09",
               "asyncio10", "asyncio11", "asyncio12"]
NOT_TRANSCRIBED = {"asyncio04", "asyncio05", "asyncio06", "aiofiles01"}  # real threads, I/O


def test_the_transcribed_examples_are_the_chapter_less_the_real_time_ones() -> None:
    shipped = {p.stem for p in EXAMPLES.glob("*.tdc")}
    assert {p.stem for p in EXAMPLES.glob("*.out")} == set(TRANSCRIBED)
    assert shipped == set(TRANSCRIBED) | NOT_TRANSCRIBED


@pytest.mark.parametrize("name", TRANSCRIBED)
def test_every_transcribed_example_matches_on_the_virtual_clock(
    name: str, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As `taskd --clock virtual --timestamps [--config NAME.toml] --expect NAME.out
    NAME.tdc` will run (the options through a config until the CLI has them)."""
    own = EXAMPLES / f"{name}.toml"
    cfg = config(tmp_path, VIRTUAL + STAMPED + (own.read_text() if own.exists() else ""))
    if own.exists():  # its kinds' modules sit beside the example's config
        for module in EXAMPLES.glob("*.py"):
            if module.name != "__init__.py":
                (tmp_path / module.name).write_text(module.read_text())
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    argv, transcript = without_expect(
        ["--config", cfg, "--expect", str(EXAMPLES / f"{name}.out"), str(EXAMPLES / f"{name}.tdc")]
    )
    assert transcript is not None
    status = run_expect(argv, transcript)
    assert status == 0, capsys.readouterr().out


def test_a_daemon_left_on_the_virtual_clock_is_reset(tmp_path: Path) -> None:
    """After a virtual run in this process, times are real again."""
    import time

    from conftest import ListFrontend

    from taskd import clocks

    daemon = Daemon(Config(clock="virtual"))
    frontend = ListFrontend(["new timer 50", "wait"])
    assert daemon.run(frontend) == 0
    assert frontend.output.lines == ["started timer-1", "timer-1 done after 50.0s"]
    assert not clocks.virtual and clocks.wall() == pytest.approx(time.time(), abs=5)


def test_a_log_opened_mid_run_lines_its_steps_up_and_changes_no_time(
    run_taskd: RunTaskd, tmp_path: Path
) -> None:
    from taskd.timeline import spans_from_log

    log = tmp_path / "mid.log"
    cfg = config(tmp_path, VIRTUAL + STAMPED)
    tail = "new tick 0.2 3\nnew hog 0.2\nwait\n"
    logged = run_taskd(f"new tick 0.5 3 --name early\nsleep 2\nlog {log} --steps\n{tail}",
                       "--config", cfg)
    plain = run_taskd(f"new tick 0.5 3 --name early\nsleep 2\nlog off\n{tail}", "--config", cfg)
    assert logged.status == plain.status == 0, logged.err + plain.err
    def others(lines: list[str]) -> list[str]:
        return [line for line in lines if "logging" not in line]

    assert others(logged.lines) == others(plain.lines)  # the log took no virtual time
    assert "+2.600 tick-1 done after 0.60s" in logged.lines
    spans = {span.name: span for span in spans_from_log(str(log))}
    assert set(spans) == {"tick-1", "hog-1"}
    tick = spans["tick-1"]
    assert tick.start == 0.0 and tick.end == 0.6  # counted from the log's first line
    assert [round(start, 3) for start, _ in tick.steps] == [0.0, 0.2, 0.4, 0.6]


def test_a_styled_consumer_gets_the_stamp_as_a_piece_of_its_own() -> None:
    from taskd import clocks, formatting
    from taskd.events import DONE, OUTPUT, STALL, Event

    output = Event("t-1", OUTPUT, {"text": "hello"})
    started = -clocks.since_start_wall(0.0)  # the wall time of the start
    output.ts = started + 1.25
    assert formatting.present(output, True) == [
        ("time", "+1.250 "), ("", "["), ("task", "t-1"), ("", "] hello")
    ]
    assert formatting.present_plain(output, True) == "+1.250 [t-1] hello"
    assert formatting.present_plain(output) == "[t-1] hello"
    done = Event("t-1", DONE, {"runtime_s": 2.0})
    done.ts = output.ts
    assert formatting.present_plain(done, True) == "+1.250 t-1 done after 2.00s"
    assert formatting.present(Event("t-1", STALL, {}), True) is None
