"""The scripted front-end through the real entry point."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest
from conftest import RunTaskd, taskd_command
from reliability import DEADLINE

VIAS = ["pipe", "file", "stdin-file"]


@pytest.mark.parametrize("via", VIAS)
def test_tasks_run_and_report(run_taskd: RunTaskd, via: str) -> None:
    result = run_taskd("new tick 0.01 3 --name t\nwait t\nshow --all --json\n", via=via)
    assert result.status == 0, result.err
    assert result.lines[:4] == ["started t", "[t] tick 1", "[t] tick 2", "[t] tick 3"]
    assert result.lines[4].startswith("t done after ")
    (record,) = json.loads(result.lines[5])
    assert record["name"] == "t" and record["kind"] == "tick" and record["state"] == "done"
    assert record["started_at"].endswith("+00:00") and record["runtime_s"] > 0


@pytest.mark.parametrize("via", VIAS)
def test_errors_are_numbered_and_processing_goes_on(run_taskd: RunTaskd, via: str) -> None:
    result = run_taskd("shwo\n\n# a comment\nnew tick -1\nnew timer 0 --name ok\n", via=via)
    assert result.status == 1
    source = "<stdin>" if via != "file" else "script.tdc"
    assert [e.split(": error: ")[0].rsplit("/", 1)[-1] for e in result.errors] == [
        f"{source}:1", f"{source}:4",
    ]
    assert "did you mean 'show'?" in result.errors[0]
    assert "started ok" in result.lines


def test_strict_stops_at_first_error(run_taskd: RunTaskd) -> None:
    result = run_taskd("bogus\nnew idle --name never\n", "--strict")
    assert result.status == 1
    assert "started never" not in result.out


def test_last_line_without_newline_runs(run_taskd: RunTaskd) -> None:
    result = run_taskd("new timer 0 --name last")
    assert result.status == 0
    assert "started last" in result.lines


def test_missing_file_is_a_usage_error(run_taskd: RunTaskd) -> None:
    result = run_taskd("", "/nonexistent/script.tdc")
    assert result.status == 2
    assert result.errors == [
        "taskd: error: cannot read /nonexistent/script.tdc: No such file or directory"
    ]


def test_unknown_option_is_a_usage_error(run_taskd: RunTaskd) -> None:
    result = run_taskd("", "--bogus")
    assert result.status == 2


def test_dash_means_stdin_and_crlf_lines_work(run_taskd: RunTaskd) -> None:
    result = run_taskd("new timer 0 --name a\r\nshow --json\r\n", "-")
    assert result.status == 0, result.err
    assert result.lines[0] == "started a"
    assert json.loads(result.lines[1])[0]["name"] == "a"


def test_a_directory_as_script_is_a_usage_error(run_taskd: RunTaskd, tmp_path: Path) -> None:
    result = run_taskd("", str(tmp_path))
    assert result.status == 2
    assert result.errors == [f"taskd: error: cannot read {tmp_path}: Is a directory"]


def test_unusable_log_option_exits_2_before_anything(run_taskd: RunTaskd, tmp_path: Path) -> None:
    result = run_taskd("new --name never\n", "--log", str(tmp_path))
    assert result.status == 2
    assert result.errors == [f"taskd: error: cannot log to '{tmp_path}': it is a directory"]
    assert result.out == ""


def test_strict_ends_cleanly_after_the_error(run_taskd: RunTaskd) -> None:
    result = run_taskd("new --name a\nnew tick -1\nnew --name b\n", "--strict")
    assert result.status == 1
    assert result.lines == ["started a"]
    assert result.errors == [
        "<stdin>:2: error: INTERVAL: expected seconds >= 0, got '-1'",
        "taskd: end cancelled 1 task: a",
    ]


def test_script_frontend_in_process(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """The real ScriptFrontend and Daemon.run(), in this process, on a script file with
    bad bytes and an over-long line between good lines."""
    from taskd.config import Config
    from taskd.daemon import Daemon
    from taskd.frontends.script import MAX_LINE, ScriptFrontend

    script = tmp_path / "bad.tdc"
    script.write_bytes(
        b"new timer 0 --name a\nnew \xff\n" + b"#" * (MAX_LINE + 1) + b"\nwait\nshow --all --json"
    )
    status = Daemon(Config()).run(ScriptFrontend(str(script)))
    out, err = capfd.readouterr()
    assert status == 1
    assert err.splitlines() == [
        f"{script}:2: error: not valid UTF-8 (byte 0xff at column 5)",
        f"{script}:3: error: line too long ({MAX_LINE + 1} bytes; the limit is {MAX_LINE})",
    ]
    assert [t["name"] for t in json.loads(out.splitlines()[-1])] == ["a"]


@pytest.mark.parametrize("via", ["file", "stdin-file"])
def test_a_full_default_pool_does_not_hold_up_reading_a_file(
    run_taskd: RunTaskd, via: str
) -> None:
    """33 `blocking` tasks fill the loop's default pool (32 threads) for an hour. The
    script file is read on a thread of its own, so its end is found and taskd ends
    now; read on the default pool it would wait for one of those hours (the timeout
    is only a safety net)."""
    result = run_taskd("new blocking 3600\n" * 33, via=via, timeout=60)
    assert result.status == 0, result.err
    assert result.errors[-1].startswith("taskd: abandoned 32 executor threads still running")


def test_end_before_the_input_ends_closes_the_reader_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """`end` with more script to come: the reader (an aiofiles file in an async
    generator) is closed by the script itself, while the loop runs. Left to the
    garbage collector, its close was a thread hop the stopped loop never finished:
    'taskd: error: Task was destroyed but it is pending!' about once in 60 runs."""
    import asyncio

    from taskd.config import Config
    from taskd.daemon import Daemon
    from taskd.frontends import streams
    from taskd.frontends.script import ScriptFrontend

    closed: list[str] = []
    real = streams.file_chunks

    async def watched(path: str | int) -> AsyncGenerator[bytes, None]:
        try:
            async for chunk in real(path):
                yield chunk
        finally:  # by whom: the script, or the loop's finalizer hook (a task of its own)
            task = asyncio.current_task()
            closed.append("finalizer" if "athrow" in repr(task and task.get_coro()) else "script")

    monkeypatch.setattr(streams, "file_chunks", watched)
    script = tmp_path / "early.tdc"
    script.write_text("new idle --name i\nend\n" + "show\n" * 50_000)  # 250 kB: more to read
    assert Daemon(Config()).run(ScriptFrontend(str(script))) == 0
    assert closed == ["script"]
    assert "Task was destroyed" not in capfd.readouterr().err


def test_the_reply_to_a_batch_goes_out_before_the_next_batch_is_read() -> None:
    """Under load a loop iteration runs thousands of steps: a reply must not wait for
    the rest of it. The next batch is asked for without the loop running in between,
    so the reply can only be in the pipe if it was handed over at the batch's end."""
    import os
    import select

    from taskd.config import Config
    from taskd.daemon import Daemon
    from taskd.frontends.script import ScriptFrontend
    from taskd.frontends.sinks import StdOutput
    from taskd.output import Output

    read_end, write_end = os.pipe()
    seen: list[bytes] = []

    class Piped(ScriptFrontend):
        async def open(self, daemon: Daemon) -> Output:
            self._daemon = daemon
            self._output = StdOutput(self._broken, self._stalled, out_fd=write_end)
            return self._output

        def _chunks(self) -> AsyncGenerator[bytes, None]:
            return self._batches()

        async def _batches(self) -> AsyncGenerator[bytes, None]:
            yield b"show\n"
            # The loop is held here: only the writer thread can fill the pipe now.
            if select.select([read_end], [], [], 10)[0]:
                seen.append(os.read(read_end, 100))

    try:
        assert Daemon(Config()).run(Piped()) == 0
    finally:
        os.close(read_end)
        os.close(write_end)
    assert seen == [b"no tasks\n"]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("stdin", ["/dev/null", "closed"])
def test_an_empty_stdin_that_the_loop_cannot_watch_is_an_empty_script(
    env: dict[str, str], loop: str, stdin: str
) -> None:
    """/dev/null (as cron and systemd give) is read on a thread: epoll refuses it.
    Handed to the loop's pipe reader, asyncio printed an error and never returned,
    and uvloop aborted the process. A closed stdin becomes /dev/null (fill_closed)."""
    pytest.importorskip(loop)
    command = [*taskd_command("--loop", loop)]
    if stdin == "closed":
        command = ["sh", "-c", '"$@" <&-', "sh", *command]
    with open(os.devnull, "rb") as null:
        done = subprocess.run(command, stdin=null, capture_output=True, env=env,
                              timeout=DEADLINE, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
