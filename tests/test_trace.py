"""Exporting real taskd logs (text and JSON) to the Chrome Trace Event Format."""

from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import RunTaskd, taskd_command
from reliability import DEADLINE

from taskd.trace import MAX_LOG_LINE, LogError, export_trace, read_log

SCRIPT = "new msg hello 2 0.1\nnew fail 0.15 oops\nnew tick 0.1\nwait msg-1\ncancel tick-1\nend\n"
TASKS = {"taskd", "msg-1", "fail-1", "tick-1"}


def run_logged(run_taskd: RunTaskd, log: Path, *flags: str) -> None:
    result = run_taskd(SCRIPT, "--log", str(log), *flags, via="file")
    assert "[msg-1] hello" in result.lines, result.err


def load(path: Path) -> list[dict[str, Any]]:
    document = json.loads(path.read_text(encoding="utf-8"))
    events: list[dict[str, Any]] = document["traceEvents"]
    for event in events:  # the fields every viewer needs
        assert {"ph", "name", "pid", "tid"} <= event.keys()
        assert event["ph"] in ("X", "i", "M")
        if event["ph"] in ("X", "i"):
            assert isinstance(event["ts"], float)
    return events


def lanes(events: list[dict[str, Any]], pid: int = 1) -> dict[str, int]:
    names = [e for e in events if e["ph"] == "M" and e["name"] == "thread_name"
             and e["pid"] == pid]
    lane = {e["args"]["name"]: e["tid"] for e in names}
    assert len(lane) == len(names) == len(set(lane.values()))  # one lane a task
    return lane


@pytest.mark.parametrize("flags", [(), ("--log-json",)], ids=["text", "json"])
def test_a_real_log_becomes_one_lane_per_task(
    run_taskd: RunTaskd, tmp_path: Path, flags: tuple[str, ...]
) -> None:
    log, out = tmp_path / "session.log", tmp_path / "trace.json"
    run_logged(run_taskd, log, *flags)
    count = export_trace(str(log), str(out))
    events = load(out)
    assert count == len(events)
    lane = lanes(events)
    assert set(lane) == TASKS
    slices = {e["name"]: e for e in events if e["ph"] == "X"}
    assert set(slices) == TASKS - {"taskd"}
    assert {name: s["args"]["end"] for name, s in slices.items()} == {
        "msg-1": "done", "fail-1": "failed", "tick-1": "cancelled"
    }
    for name, piece in slices.items():
        assert piece["tid"] == lane[name] and piece["dur"] > 0
    instants = [e for e in events if e["ph"] == "i"]
    outputs = [e for e in instants if e["name"] == "output" and e["tid"] == lane["msg-1"]]
    assert [e["args"]["text"] for e in outputs] == ["hello", "hello"]
    failed = next(e for e in instants if e["name"] == "failed")
    assert failed["args"]["error"] == "TaskFailure: oops"
    assert failed["args"]["traceback"].rstrip().endswith("TaskFailure: oops")
    assert not any(e["name"] == "traceback" for e in instants)  # folded into `failed`
    assert {e["name"] for e in instants if e["tid"] == lane["taskd"]} == {
        "daemon-start", "daemon-end"
    }


def test_steps_become_slices_nested_in_their_task(
    run_taskd: RunTaskd, tmp_path: Path
) -> None:
    """`step` events are not logged yet by taskd: two are appended by hand, one in
    each format, after a real run; a second run in the same file is a second process."""
    log, out = tmp_path / "session.log", tmp_path / "trace.json"
    run_logged(run_taskd, log)
    stamp = log.read_text().splitlines()[1].split()[0]
    with log.open("a") as file:
        file.write(f"{stamp} msg-1 step start_s=0.05 dur_s=0.004\n")
        file.write(json.dumps({"ts": stamp, "task": "msg-1", "event": "step",
                               "start_s": 0.1, "dur_s": 0.25}) + "\n")
    run_logged(run_taskd, log)
    export_trace(str(log), str(out))
    events = load(out)
    first = [e for e in events if e["pid"] == 1]
    steps = [e for e in first if e["ph"] == "X" and e["name"] == "step"]
    assert [(s["ts"], s["dur"]) for s in steps] == [(50_000.0, 4_000.0), (100_000.0, 250_000.0)]
    life = next(e for e in first if e["ph"] == "X" and e["name"] == "msg-1")
    assert {s["tid"] for s in steps} == {life["tid"]} == {lanes(events)["msg-1"]}
    for step in steps:  # nested: inside the life slice, widened if need be
        assert life["ts"] <= step["ts"] and step["ts"] + step["dur"] <= life["ts"] + life["dur"]
    assert set(lanes(events, pid=2)) == TASKS
    processes = [e for e in events if e["name"] == "process_name"]
    assert [p["args"]["name"] for p in processes] == ["taskd run 1", "taskd run 2"]


def test_text_fields_read_back_with_equals_signs_and_json_values(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text(
        "2026-11-25T09:06:24.853+00:00 taskd daemon-start config=[\"defaults\"]\n"
        "2026-11-25T09:06:24.900+00:00 t-1 failed ValueError: a=b c runtime_s=0.5\n"
        "2026-11-25T09:06:24.950+00:00 t-1 output x=1 y=2\n"
        "2026-11-25T09:06:25.000+00:00 taskd error \"quoted\" detail=\"two words\" n=true\n"
    )
    records = read_log(str(log))[0].records
    assert [(r.ts, r.fields) for r in records] == [
        (0.0, {"config": ["defaults"]}),
        (0.047, {"error": "ValueError: a=b c", "runtime_s": 0.5}),
        (0.097, {"text": "x=1 y=2"}),
        (0.147, {"text": "\"quoted\"", "detail": "two words", "n": True}),
    ]


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("2026-11-25T09:06:24.853+00:00 taskd daemon-start\nnot a log line at all\n", ":2:"),
        ("{\"ts\": \"2026-11-25T09:06:24.853+00:00\", \"task\": \"t\"}\n", ":1:"),
        ("\n\n2026-11-25T09:06:24.853+00:00 t step start_s=x dur_s=1\n", ":3:"),
        ("{\"ts\": \"2026-11-25T09:06:24.853+00:00\", \"task\": \"t\", \"event\": \n", ":1:"),
        ("", ": no events"),
    ],
    ids=["text", "json-missing-event", "bad-step", "json-cut", "empty"],
)
def test_bad_logs_give_one_line_naming_file_and_line(
    tmp_path: Path, content: str, where: str
) -> None:
    log, out = tmp_path / "bad.log", tmp_path / "trace.json"
    log.write_text(content)
    with pytest.raises(LogError) as caught:
        export_trace(str(log), str(out))
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert message.startswith(f"{log}{where}") and "\n" not in message
    assert not out.exists()


def test_unreadable_log_and_unwritable_output(tmp_path: Path) -> None:
    with pytest.raises(LogError, match=r"missing\.log: cannot read it: No such file"):
        export_trace(str(tmp_path / "missing.log"), str(tmp_path / "t.json"))
    log = tmp_path / "ok.log"
    log.write_text("2026-11-25T09:06:24.853+00:00 taskd daemon-start\n")
    with pytest.raises(LogError, match="cannot write it"):
        export_trace(str(log), str(tmp_path / "no-such-folder" / "t.json"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.log"]  # no temporary left


@pytest.mark.parametrize("command", [["timeline"], ["trace", "-o", "trace.json"]])
def test_a_log_line_that_never_ends_is_refused_at_the_limit(
    tmp_path: Path, command: list[str]
) -> None:
    """A log read from a pipe left open, 2 MB and no newline: refused once a line
    passes MAX_LOG_LINE, not read to an end that never comes (nor into memory, as
    /dev/zero was: 3.5 GB in 3 s)."""
    proc = subprocess.Popen(
        [*taskd_command(*command, "/dev/stdin")], cwd=tmp_path, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(b"x" * (2 << 20))  # taken up to the limit, then the end
            proc.stdin.flush()
        proc.wait(timeout=DEADLINE)  # with the pipe still open: no end of file comes
        out, err = proc.stdout.read(), proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            with contextlib.suppress(BrokenPipeError):
                stream.close()
    assert (proc.returncode, out) == (2, b"")
    assert err.decode() == (
        f"taskd: error: /dev/stdin:1: not a taskd log line (over {MAX_LOG_LINE:,} characters)\n"
    )
