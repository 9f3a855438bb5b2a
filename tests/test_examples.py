"""The shipped chapter: every example runs to the end through the real program, and
the lines that carry its idea are there, in the order that makes the point."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import taskd_command

from taskd.examples import UnknownExample, example_config, example_path, list_examples

REPO = Path(__file__).resolve().parent.parent
CHAPTER = [f"asyncio{n:02d}" for n in range(1, 13)] + ["aiofiles01"]


@dataclass
class Run:
    out: list[str]
    err: list[str]

    def of(self, name: str) -> list[str]:
        """What task NAME printed, in order."""
        prefix = f"[{name}] "
        return [line[len(prefix):] for line in self.out if line.startswith(prefix)]

    def index(self, line: str) -> int:
        return self.out.index(line)


def run_example(name: str, env: dict[str, str], cwd: Path) -> Run:
    config = example_config(name)
    args = ["--config", config] if config else []
    proc = subprocess.run(
        taskd_command(*args, example_path(name)), cwd=cwd, env=env, capture_output=True,
        text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    return Run(proc.stdout.splitlines(), proc.stderr.splitlines())


def test_the_chapter_is_shipped_in_order() -> None:
    examples = list_examples()
    assert [name for name, _ in examples] == CHAPTER
    titles = dict(examples)
    assert titles["asyncio03"] == "asyncio.gather, several coroutines awaited together"
    assert all(title and not title.startswith(name) for name, title in examples)
    for name in CHAPTER:
        text = Path(example_path(name)).read_text()
        comments = [line for line in text.splitlines() if line.startswith("#")]
        assert len(comments) >= 6, name  # the idea, in plain English
        assert any("Watch for:" in line for line in comments), name
    assert {n for n in CHAPTER if example_config(n)} == {"asyncio04", "asyncio10"}


def test_an_unknown_example_is_one_line_with_close_names() -> None:
    with pytest.raises(UnknownExample) as caught:
        example_path("asyncio2")
    message = str(caught.value)
    assert message.startswith("unknown example 'asyncio2' (did you mean ") and "\n" not in message
    assert "'asyncio02'" in message
    with pytest.raises(ValueError, match=r"^unknown example 'lesson'; they are "
                                         r"asyncio01 \.\.\. aiofiles01: 'examples' lists them$"):
        example_path("lesson")
    with pytest.raises(UnknownExample):  # a name, never a path
        example_path("../examples/asyncio01")
    assert example_path("asyncio03.tdc") == example_path("asyncio03")


def test_asyncio01_a_coroutine_runs_to_its_end(env: dict[str, str], tmp_path: Path) -> None:
    run = run_example("asyncio01", env, tmp_path)
    assert run.of("msg-1") == ["hello"] * 3
    assert run.out[4].startswith("msg-1 done after ")


def test_asyncio02_two_tasks_interleave(env: dict[str, str], tmp_path: Path) -> None:
    run = run_example("asyncio02", env, tmp_path)
    said = [line.split("] ")[0][1:] for line in run.out if line.startswith("[")]
    assert said == ["first", "second"] * 3
    done = next(i for i, line in enumerate(run.out) if line.startswith("first done after"))
    row = next(i for i, line in enumerate(run.out) if line.split()[:3] == ["second", "msg",
                                                                            "running"])
    assert done < row  # awaited in turn: first is done, second still runs


def test_asyncio03_gather_returns_the_list_in_order(env: dict[str, str], tmp_path: Path) -> None:
    run = run_example("asyncio03", env, tmp_path)
    assert run.of("gather-1") == ["gathering 3 children", "gather returned [1, 4, 9]"]
    assert [run.of(f"gather-1/{n}") for n in (3, 2, 1)] == [
        [f"child {n} done after {(4 - n) / 10:.2f}s"] for n in (3, 2, 1)
    ]
    # the children end in the order 3, 2, 1
    assert run.index("[gather-1/3] child 3 done after 0.10s") < run.index(
        "[gather-1/1] child 1 done after 0.30s"
    )


def test_asyncio04_a_loop_per_thread(env: dict[str, str], tmp_path: Path) -> None:
    run = run_example("asyncio04", env, tmp_path)
    lines = run.of("threadloops-1")
    assert sorted(lines[1:4]) == [f"thread loop-{n}: its own loop ran 3 sleeps" for n in (1, 2, 3)]
    assert lines[4] == "3 different loops for 3 threads; taskd's own loop among them: False"
    assert run.of("tick-1") == [f"tick {n}" for n in range(1, 5)]


def test_asyncio05_run_in_executor_and_the_thread_that_cannot_be_cancelled(
    env: dict[str, str], tmp_path: Path
) -> None:
    run = run_example("asyncio05", env, tmp_path)
    assert run.of("blocking-1")[-1] == "thread finished"
    assert run.of("sleeper")[1:] == [
        "await cancelled; the thread cannot be, and sleeps on",
        "thread woke after 0.6s; its await was cancelled, so nobody takes the result",
    ]
    assert "cancelled sleeper" in run.out


def test_asyncio06_a_thread_task_beside_a_coroutine_task(
    env: dict[str, str], tmp_path: Path
) -> None:
    run = run_example("asyncio06", env, tmp_path)
    assert run.of("coro-task") == ["tick 1", "tick 2", "tick 3"]
    assert run.index("[coro-task] tick 3") < run.index("[thread-task] thread finished")
    assert not any("blocked the event loop" in line for line in run.err)


def test_asyncio07_cooperative_search_and_the_hog_named(
    env: dict[str, str], tmp_path: Path
) -> None:
    run = run_example("asyncio07", env, tmp_path)
    assert [line.split(":")[0] for line in run.of("polite")] == ["hit 1", "hit 2", "hit 3"]
    stalls = [line for line in run.err if "blocked the event loop" in line]
    assert len(stalls) == 1 and stalls[0].startswith("taskd: task hog-1 blocked the event loop")
    assert run.index("[hog-1] time.sleep returned; the loop runs the others again") < run.index(
        "[waiting] tick 1"
    )


def test_asyncio08_lines_are_read_while_a_task_runs(env: dict[str, str], tmp_path: Path) -> None:
    run = run_example("asyncio08", env, tmp_path)
    assert any(line.split()[:3] == ["ticker", "tick", "running"] for line in run.out)
    assert run.index("[msg-1] a line read while ticker ran") < run.index("[ticker] tick 5")


def test_asyncio09_tasks_added_while_the_loop_runs(env: dict[str, str], tmp_path: Path) -> None:
    run = run_example("asyncio09", env, tmp_path)
    assert run.index("[forever] tick 1") < run.index("started msg-1")
    assert run.of("msg-1") == ["added at runtime"] * 2
    rows = {line.split()[0]: line.split()[2] for line in run.out if len(line.split()) > 3}
    assert rows["forever"] == "running" and rows["timer-1"] == "running"
    assert run.out[-1] == "cancelled forever"


def test_asyncio10_all_tasks_before_and_after_cancel(env: dict[str, str], tmp_path: Path) -> None:
    run = run_example("asyncio10", env, tmp_path)
    first = [line.split(":")[0].strip() for line in run.of("census-1")[1:]]
    second = [line.split(":")[0].strip() for line in run.of("census-2")[1:]]
    assert {"a", "b", "census-1"} <= set(first)
    assert not {"a", "b"} & set(second) and "census-2" in second
    assert set(first) - {"a", "b", "census-1"} == set(second) - {"census-2"}  # taskd's own
    assert run.of("census-1")[0] == f"asyncio.all_tasks(): {len(first)} tasks"


def test_asyncio11_an_async_generator(env: dict[str, str], tmp_path: Path) -> None:
    run = run_example("asyncio11", env, tmp_path)
    expected = []
    total = 0
    for n in range(1, 5):
        total += n
        expected += [f"yield {n}", f"got {n}, total {total}"]
    assert run.of("agen-1") == [*expected, "async for ended: the generator is exhausted (total 10)"]


def test_asyncio12_an_async_iterator_class(env: dict[str, str], tmp_path: Path) -> None:
    run = run_example("asyncio12", env, tmp_path)
    assert run.of("aiter-1") == [
        *(f"__anext__ returned {n}" for n in (4, 3, 2, 1)),
        "__anext__ raises StopAsyncIteration", "async for ended",
    ]


def test_aiofiles01_writes_and_reads_beside_a_ticker(env: dict[str, str], tmp_path: Path) -> None:
    run = run_example("aiofiles01", env, tmp_path)
    writer = run.of("writer")
    assert writer[:4] == [f"wrote {n}/4000 lines" for n in (1000, 2000, 3000, 4000)]
    assert writer[-1] == "read back all 4000 lines: the same as written"
    assert run.of("ticker") == ["tick 1", "tick 2", "tick 3"]
    assert "shell-1 done after" in run.out[-1]
    assert list(tmp_path.iterdir()) == []  # the file was removed, nothing else was made


@pytest.mark.slow
def test_the_wheel_carries_the_chapter_and_the_catalogs(tmp_path: Path) -> None:
    pytest.importorskip("hatchling", reason="the test extra installs the build backend")
    if not (REPO / "pyproject.toml").is_file():
        pytest.skip("not run from a source tree")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True, timeout=120,
    )
    (wheel,) = tmp_path.glob("taskd-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in CHAPTER:
        assert f"taskd/examples/{name}.tdc" in names
    for extra in ("__init__.py", "asyncio04.toml", "threadloops.py", "asyncio10.toml",
                  "census.py"):
        assert f"taskd/examples/{extra}" in names
    for catalog in ("taskd.po", "taskd.mo"):
        assert f"taskd/locale/ja/LC_MESSAGES/{catalog}" in names
