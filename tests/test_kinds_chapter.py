"""The chapter's kinds (gather, agen, aiter, file, hog), through the real program."""

from __future__ import annotations

from pathlib import Path

from conftest import RunTaskd


def task_lines(lines: list[str], name: str) -> list[str]:
    prefix = f"[{name}] "
    return [line[len(prefix):] for line in lines if line.startswith(prefix)]


def test_gather_prints_children_as_they_finish_and_results_in_order(
    run_taskd: RunTaskd,
) -> None:
    result = run_taskd("new gather\nwait\n")
    assert result.status == 0, result.err
    # gather wraps each coroutine in a task: the children are tasks of their own
    said = [line for line in result.lines if line.startswith("[gather-1")]
    assert said == [
        "[gather-1] gathering 3 children",
        "[gather-1/3] child 3 done after 0.10s",
        "[gather-1/2] child 2 done after 0.20s",
        "[gather-1/1] child 1 done after 0.30s",
        "[gather-1] gather returned [1, 4, 9]",
    ]
    assert any(line.startswith("gather-1 done after") and line.endswith("returned [1, 4, 9]")
               for line in result.lines)


def test_gather_of_one_and_bad_counts(run_taskd: RunTaskd) -> None:
    result = run_taskd("new gather 1\nwait\nnew gather 0\nnew gather x\nshow --all --json\n")
    assert result.status == 1
    assert "gather returned [1]" in task_lines(result.lines, "gather-1")
    assert result.errors == [
        "<stdin>:3: error: N: expected a whole number >= 1, got '0'",
        "<stdin>:4: error: N: expected a whole number >= 1, got 'x'",
    ]
    assert result.lines[-1].count('"parent": null') == 1  # nothing else was started


def test_agen_producer_and_consumer_take_turns(run_taskd: RunTaskd) -> None:
    result = run_taskd("new agen 3 0.01\nwait\n")
    assert result.status == 0, result.err
    assert task_lines(result.lines, "agen-1") == [
        "yield 1", "got 1, total 1",
        "yield 2", "got 2, total 3",
        "yield 3", "got 3, total 6",
        "async for ended: the generator is exhausted (total 6)",
    ]


def test_agen_is_cancelled_inside_the_generator(run_taskd: RunTaskd) -> None:
    result = run_taskd("new agen 5 30\nsleep 0\ncancel agen-1\nshow --all\n")
    assert result.status == 0, result.err
    assert "cancelled agen-1" in result.lines
    assert task_lines(result.lines, "agen-1") == []


def test_aiter_counts_down_then_stops(run_taskd: RunTaskd) -> None:
    result = run_taskd("new aiter 3\nwait\n")
    assert result.status == 0, result.err
    assert task_lines(result.lines, "aiter-1") == [
        "__anext__ returned 3", "__anext__ returned 2", "__anext__ returned 1",
        "__anext__ raises StopAsyncIteration", "async for ended",
    ]


def test_file_writes_then_reads_back(run_taskd: RunTaskd, tmp_path: Path) -> None:
    target = tmp_path / "lines.txt"
    script = f"new file {target} 10\nwait\nnew file {target} 3\nwait\n"
    result = run_taskd(script)
    assert result.status == 0, result.err
    first = task_lines(result.lines, "file-1")
    assert first[:4] == [f"wrote {n}/10 lines" for n in (3, 6, 9, 10)]
    assert first[-1] == "read back all 10 lines: the same as written"
    assert "read 10/10 lines" in first
    # The second run replaced the first's file: a file it wrote itself.
    assert target.read_text().splitlines()[1:] == ["line 1", "line 2", "line 3"]


def test_file_path_errors_fail_the_task_in_one_line(
    run_taskd: RunTaskd, tmp_path: Path
) -> None:
    mine = tmp_path / "mine.txt"
    mine.write_text("precious\n")
    script = (
        f"new file {tmp_path / 'no-such-folder' / 'x'}\n"
        f"new file {tmp_path}\n"
        f"new file {mine}\n"
        "new file /dev/zero\n"  # a line that never ends, read in a thread no cancel stops
        "wait\n"
    )
    result = run_taskd(script)
    assert result.status == 1
    failed = sorted(line for line in result.lines if " failed after " in line)
    assert len(failed) == 4
    assert failed[0].startswith("file-1 failed after ")
    assert failed[0].endswith("No such file or directory")
    assert failed[1].endswith(f"FileTaskError: {str(tmp_path)!r} is a directory")
    assert failed[2].endswith(
        f"FileTaskError: {str(mine)!r} exists and was not written by `file`; not overwritten"
    )
    assert failed[3].endswith("FileTaskError: '/dev/zero' is not a regular file")
    assert mine.read_text() == "precious\n"
    assert "Traceback" not in result.out + result.err


def test_file_lines_are_checked_before_anything_starts(run_taskd: RunTaskd) -> None:
    result = run_taskd("new file x 0\nnew file x many\nnew file\nshow\n")
    assert result.status == 1
    assert [e.split(": error: ")[1] for e in result.errors] == [
        "LINES: expected a whole number from 1 to 1,000,000, got '0'",
        "LINES: expected a whole number from 1 to 1,000,000, got 'many'",
        "file needs PATH (usage: file PATH [LINES=100])",
    ]
    assert result.lines == ["no tasks"]


def test_hog_blocks_the_loop_and_the_stall_line_names_it(run_taskd: RunTaskd) -> None:
    result = run_taskd("new hog 0.8\nnew tick 0.05 2\nwait\n")
    assert result.status == 0, result.err
    assert task_lines(result.lines, "hog-1") == [
        "time.sleep(0.8) in a coroutine: nothing else runs until it returns",
        "time.sleep returned; the loop runs the others again",
    ]
    assert any(
        line.startswith("taskd: task hog-1 blocked the event loop for ") for line in result.errors
    ), result.err
    # The hog's blocking step is ready at once, tick's first wake-up is a timer: however
    # the two lines are read, tick 1 can only come after the hog gave the loop back.
    out = result.lines
    assert out.index("[hog-1] time.sleep returned; the loop runs the others again") < out.index(
        "[tick-1] tick 1"
    )


def test_hog_refuses_a_long_block(run_taskd: RunTaskd) -> None:
    result = run_taskd("new hog 11\nshow\n")
    assert result.status == 1
    assert result.errors == [
        "<stdin>:1: error: SECONDS: at most 10 seconds (the loop cannot be interrupted "
        "meanwhile), got '11'"
    ]
    assert result.lines == ["no tasks"]
