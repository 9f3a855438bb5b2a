"""Teaching (issue 12): children, `where`, `explain`, `examples`, display-width
tables and help, Japanese, and `blocking` queued behind busy workers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import InProcess, RunTaskd

from taskd import i18n
from taskd.config import Config
from taskd.errors import CommandError
from taskd.kinds import BUILTINS, Kind
from taskd.kinds._spec import custom_kind
from taskd.output import MemoryOutput
from taskd.registry import State
from taskd.reply import Reply
from taskd.width import cwidth

KINDS_MODULE = '''
import asyncio

async def worker():
    while True:
        await asyncio.sleep(1)

async def parent():
    """makes three children and returns while they run"""
    asyncio.create_task(worker())
    asyncio.ensure_future(worker())
    asyncio.create_task(worker(), name="helper")
    await asyncio.sleep(0)
    return "left them"

async def grouped():
    """a TaskGroup of two"""
    async def one(n):
        await asyncio.sleep(0)
        print(f"child {n}")
        return n
    async with asyncio.TaskGroup() as group:
        a = group.create_task(one(1))
        b = group.create_task(one(2))
    return a.result() + b.result()
'''


async def worker() -> None:
    while True:
        await asyncio.sleep(1)


async def parent() -> str:
    """makes three children and returns while they run"""
    asyncio.create_task(worker())  # noqa: RUF006  (the engine keeps it)
    asyncio.ensure_future(worker())  # noqa: RUF006
    asyncio.create_task(worker(), name="helper")  # noqa: RUF006
    await asyncio.sleep(0)
    return "left them"


def kinds() -> dict[str, Kind]:
    return {**BUILTINS, "parent": custom_kind("parent", parent, "test_teach:parent")}


@pytest.fixture
def japanese() -> Iterator[None]:
    i18n.setup("ja")
    try:
        yield
    finally:
        i18n.setup("en")


async def turn() -> None:
    """One loop turn: tasks spawned so far run their first step."""
    await asyncio.sleep(0)


# -- children ---------------------------------------------------------------------------


async def test_tasks_made_by_a_task_are_its_named_children(
    live_daemon: Callable[..., Any],
) -> None:
    daemon = await live_daemon(kinds=kinds())
    await daemon.execute("new parent --name p")
    await daemon.execute("wait p")
    registry = daemon.registry
    assert registry.get("p").state is State.DONE  # returned; its children still run
    children = {r.name: r for r in registry.live.values() if r.parent == "p"}
    assert set(children) == {"p/1", "p/2", "helper"}
    assert all(r.state is State.RUNNING and r.kind == "worker" for r in children.values())

    await daemon.execute("show --json --all")
    shown = {item["name"]: item for item in json.loads(daemon.output.lines[-1])}
    assert shown["p"]["parent"] is None and shown["p/2"]["parent"] == "p"

    await daemon.execute("show --tree --all")
    table = daemon.output.lines[-4:]
    assert [line.split()[0] for line in table] == ["p", "p/1", "p/2", "helper"]
    assert [line.index(line.split()[0]) for line in table] == [0, 2, 2, 2]

    await daemon.execute("cancel p/1 helper")
    assert registry.get("p/1").state is State.CANCELLED
    assert registry.get("helper").state is State.CANCELLED
    with pytest.raises(CommandError, match=r"^timed out after 0\.01s; still running: p/2$"):
        await daemon.execute("wait p/2 --timeout 0.01")


async def test_a_task_group_s_children_print_as_themselves(tmp_path: Path,
                                                           run_taskd: RunTaskd) -> None:
    (tmp_path / "teachkinds.py").write_text(KINDS_MODULE)
    config = tmp_path / "taskd.toml"
    config.write_text('[kinds]\ngrouped = "teachkinds:grouped"\n')
    result = run_taskd("new grouped\nwait\nshow --all --tree\n", "--config", str(config))
    assert result.status == 0, result.err
    assert "[grouped-1/1] child 1" in result.lines
    assert "[grouped-1/2] child 2" in result.lines
    assert any(line.startswith("grouped-1 done after") and line.endswith("returned 3")
               for line in result.lines)
    assert [line.split()[0] for line in result.lines[-3:]] == [
        "grouped-1", "grouped-1/1", "grouped-1/2"
    ]


def test_end_cancels_children_and_the_log_says_so(tmp_path: Path, run_taskd: RunTaskd) -> None:
    (tmp_path / "teachkinds.py").write_text(KINDS_MODULE)
    config = tmp_path / "taskd.toml"
    config.write_text('[kinds]\nparent = "teachkinds:parent"\n')
    log = tmp_path / "events.jsonl"
    result = run_taskd("new parent --name p\nwait p\nend\n", "--config", str(config),
                       "--log", str(log), "--log-json")
    assert result.status == 0, result.err
    assert result.err == "taskd: end cancelled 3 tasks: p/1, p/2, helper\n"
    events = [json.loads(line) for line in log.read_text().splitlines()]
    started = {e["task"]: e.get("parent") for e in events if e["event"] == "started"}
    assert started == {"p": None, "p/1": "p", "p/2": "p", "p/3": "p"}
    renamed = [e for e in events if e["event"] == "renamed"]
    assert [(e["task"], e["was"]) for e in renamed] == [("helper", "p/3")]
    cancelled = {e["task"] for e in events if e["event"] == "cancelled"}
    assert cancelled == {"p/1", "p/2", "helper"}


async def test_show_system_lists_taskd_s_own_tasks(live_daemon: Callable[..., Any]) -> None:
    daemon = await live_daemon()
    await daemon.execute("new idle --name i")
    await daemon.execute("show --system")
    rows = {line.split()[0]: line.split() for line in daemon.output.lines[-20:]}
    assert rows["i"][1] == "idle"
    ours = {t.get_name() for t in asyncio.all_tasks()} - {"i"}
    assert ours and ours <= set(rows)
    assert all(rows[name][1] == "(taskd)" for name in ours)


# -- where ------------------------------------------------------------------------------


async def test_where_shows_the_kind_s_frame_and_its_await(
    live_daemon: Callable[..., Any],
) -> None:
    daemon = await live_daemon()
    await daemon.execute("new tick 5 --name t")
    await turn()
    await daemon.execute("where t")
    lines = daemon.output.lines[-4:]
    assert lines[0] == "t (tick) running, awaiting asyncio.sleep"
    assert lines[1].startswith("  taskd/kinds/basic.py:") and lines[1].endswith(" in tick")
    assert lines[2].startswith("  asyncio/tasks.py:") and lines[2].endswith(" in sleep")
    assert lines[3] == "  waiting on a Future"
    assert not any("engine.py" in line or "instruments.py" in line for line in lines)


async def test_where_shows_a_failed_task_s_own_traceback(
    live_daemon: Callable[..., Any],
) -> None:
    daemon = await live_daemon()
    await daemon.execute("new fail 0 oops --name f")
    with pytest.raises(CommandError):
        await daemon.execute("wait f")
    await daemon.execute("where f")
    lines = daemon.output.lines[-5:]
    assert lines[0] == "f (fail) failed: TaskFailure: oops"
    assert lines[1] == "  Traceback (most recent call last):"
    assert lines[2].startswith('    File "') and 'taskd/kinds/basic.py", line ' in lines[2]
    assert lines[2].endswith(", in fail")
    assert lines[3] == "      raise TaskFailure(message)"
    assert lines[4] == "  taskd.kinds.basic.TaskFailure: oops"
    with pytest.raises(CommandError, match="no task named 'nope'"):
        await daemon.execute("where nope")


# -- explain ----------------------------------------------------------------------------


def explained(lines: list[str]) -> list[str]:
    return [line.removeprefix("explain: ") for line in lines if line.startswith("explain: ")]


async def test_explain_narrates_new_cancel_and_ends(live_daemon: Callable[..., Any]) -> None:
    daemon = await live_daemon()
    await daemon.execute("explain on")
    await daemon.execute("new tick --name t")
    await turn()
    lines = daemon.output.lines
    assert lines[-2:] == [
        "started t",
        "explain: scheduled asyncio.create_task(tick(1.0, None)); it runs at the loop's "
        "next turn",
    ]
    await daemon.execute("cancel t")
    assert daemon.output.lines[-2:] == [
        "cancelled t",
        "explain: called task.cancel(): a CancelledError is raised at the task's next "
        "await (asyncio.sleep)",
    ]
    await daemon.execute("new tick --name r")
    await turn()
    await daemon.execute("restart r")  # a cancel, then a create_task, each narrated
    assert daemon.output.lines[-3:] == [
        "restarted r",
        "explain: called task.cancel(): a CancelledError is raised at the task's next "
        "await (asyncio.sleep)",
        "explain: scheduled asyncio.create_task(tick(1.0, None)); it runs at the loop's "
        "next turn",
    ]
    await daemon.execute("new blocking 0.05 --name b")
    await turn()
    await daemon.execute("cancel b")
    assert explained(daemon.output.lines)[-2:] == [
        "called task.cancel(): a CancelledError is raised at the task's next await "
        "(blocking)",
        "only the await was cancelled; the thread cannot be, and runs on",
    ]
    await daemon.execute("new fail 0 oops --name f")
    with pytest.raises(CommandError):
        await daemon.execute("wait f")
    await turn()
    assert explained(daemon.output.lines)[-1] == "f raised TaskFailure: oops; its task failed"
    await daemon.execute("explain off")
    await daemon.execute("new timer 0 --name quiet")
    await daemon.execute("wait quiet")
    await turn()
    assert "quiet done after" in daemon.output.lines[-1]
    assert not any("quiet" in line for line in explained(daemon.output.lines))


async def test_explain_tells_that_a_queued_task_has_no_task_until_its_slot(
    live_daemon: Callable[..., Any],
) -> None:
    """A task queued in a full group is only a record (taskd.slots): the narration
    must not say create_task was called before it is."""
    daemon = await live_daemon()
    for line in ("explain on", "group g --parallel 1", "new idle --name a --group g",
                 "new timer 0 --name b --group g", "new idle --name c --group g"):
        await daemon.execute(line)
    await turn()
    said = explained(daemon.output.lines)
    assert said[-2:] == [
        "b waits for a slot of group g: no task exists yet; asyncio.create_task(timer(0.0))"
        " is called when one frees",
        "c waits for a slot of group g: no task exists yet; asyncio.create_task(idle()) is"
        " called when one frees",
    ]
    await daemon.execute("cancel c")
    assert explained(daemon.output.lines)[-1] == (
        "c had no task yet: it left the queue of group g, and there was nothing to cancel"
    )
    await daemon.execute("cancel a")  # its slot goes to b: said after the cancel is
    assert explained(daemon.output.lines)[-2:] == [
        "called task.cancel(): a CancelledError is raised at the task's next await "
        "(asyncio.sleep)",
        "a slot of group g freed for b: scheduled asyncio.create_task(timer(0.0)); it runs"
        " at the loop's next turn",
    ]
    await daemon.execute("wait b")


async def test_explain_narrates_a_restart_right_after_its_reply(
    live_daemon: Callable[..., Any],
) -> None:
    daemon = await live_daemon()
    for line in ("explain on", "new idle --name b", "restart b"):
        await daemon.execute(line)
    assert daemon.output.lines[-3:] == [
        "restarted b",
        "explain: called task.cancel(): a CancelledError is raised at the task's next "
        "await (its first step)",
        "explain: scheduled asyncio.create_task(idle()); it runs at the loop's next turn",
    ]
    await daemon.execute("cancel b")


def test_explain_names_a_refusal_and_a_stall_and_is_logged(
    tmp_path: Path, run_taskd: RunTaskd
) -> None:
    config = tmp_path / "taskd.toml"
    config.write_text("explain = true\ncancel_grace = 0.2\nstall_threshold = 0.2\n")
    log = tmp_path / "events.jsonl"
    script = "new stubborn --name s\nsleep 0\ncancel s\nnew hog 0.3 --name h\nwait h\n"
    result = run_taskd(script, "--config", str(config), "--log", str(log), "--log-json")
    said = explained(result.lines)
    assert "s caught CancelledError and went on: cancellation is a request, not a command" in said
    assert any(line.startswith("a step of h held the loop 0.3 s") for line in said), said
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    texts = [e["text"] for e in logged if e["event"] == "explain"]
    # the log closes at the end before the last refusal (s, abandoned) is narrated
    assert texts == said[: len(texts)] and len(texts) >= len(said) - 1
    assert any(text.startswith("a step of h held the loop") for text in texts)


async def test_explain_in_japanese(live_daemon: Callable[..., Any], japanese: None) -> None:
    daemon = await live_daemon()
    await daemon.execute("explain on")
    await daemon.execute("new tick --name t")
    await turn()
    await daemon.execute("cancel t")
    assert explained(daemon.output.lines) == [
        "asyncio.create_task(tick(1.0, None)) で予約しました。ループの次の周回で動き始めます",
        "task.cancel() を呼びました。タスクが次に await したところ（asyncio.sleep）で "
        "CancelledError が送出されます",
    ]


# -- examples, tables and help by display width -------------------------------------------


async def test_examples_lists_the_chapter_one_line_each() -> None:
    proc = InProcess()
    await proc.execute("examples")
    lines = proc.output.lines
    assert len(lines) == 13
    assert lines[0].startswith("asyncio01   ") and lines[-1].startswith("aiofiles01  ")
    starts = {len(line) - len(line.split(maxsplit=1)[1]) for line in lines}
    assert starts == {len("aiofiles01") + 2}  # one title column


@pytest.mark.parametrize("columns", [40, 120])
async def test_wide_task_names_keep_the_columns_straight(columns: int) -> None:
    output = MemoryOutput()
    proc = InProcess(Config())
    reply = Reply(output, lambda: columns)
    names = ("別のタスク", "a", "別のタスク別のタスク別のタスク")  # 10, 1 and 30 columns
    for name in names:
        proc.spawn("idle", [], name)
    await proc.daemon.execute("show", reply)
    lines = output.lines
    assert [line.split()[0] for line in lines] == ["NAME", *names]
    assert all(cwidth(line) <= columns for line in lines), lines
    if columns == 120:  # nothing cut: every KIND starts in the same display column
        starts = {cwidth(line[: line.index("idle" if i else "KIND")]) for i, line in
                  enumerate(lines)}
        assert starts == {30 + 2}
        assert not any(line.endswith("…") for line in lines)
    else:  # each row cut to 40 columns, at a character, with an ellipsis
        assert all(line.endswith("…") and cwidth(line) in (39, 40) for line in lines[1:])
    await proc.execute("cancel *")


@pytest.mark.parametrize("columns", [40, 100])
async def test_help_and_kinds_wrap_at_word_boundaries(columns: int) -> None:
    from taskd.commands import COMMANDS

    output = MemoryOutput()
    proc = InProcess(Config())
    reply = Reply(output, lambda: columns)
    await proc.daemon.execute("help", reply)
    await proc.daemon.execute("kinds", reply)
    await proc.daemon.execute("help show", reply)
    lines = output.lines
    assert all(cwidth(line) <= columns for line in lines), [
        line for line in lines if cwidth(line) > columns
    ]
    words = set(" ".join(lines).split())
    texts = [c.summary for c in COMMANDS.values()] + [k.summary for k in BUILTINS.values()]
    texts.append(COMMANDS["show"].details)
    for text in texts:  # every word whole, on some line
        for word in text.split():
            assert word in words, (word, columns)


async def test_help_in_japanese(japanese: None) -> None:
    output = MemoryOutput()
    proc = InProcess(Config())
    await proc.daemon.execute("help", Reply(output, lambda: 40))
    lines = output.lines
    assert lines[0] == "コマンド:"
    assert any("KIND のタスクを起動する" in line for line in lines)
    assert all(cwidth(line) <= 40 for line in lines)
    message = r"^不明なコマンド 'nope'。'help' でコマンドを一覧できます$"
    with pytest.raises(CommandError, match=message):
        await proc.execute("nope")


# -- blocking and the worker threads -----------------------------------------------------


def test_blocking_says_when_every_worker_is_busy(tmp_path: Path, run_taskd: RunTaskd) -> None:
    config = tmp_path / "taskd.toml"
    config.write_text("workers = 1\n")
    result = run_taskd("new blocking 0.2 --name a\nnew blocking 0.2 --name b\nwait\n",
                       "--config", str(config))
    assert result.status == 0, result.err
    assert "[a] sleeping 0.2s in a worker thread; the loop stays free" in result.lines
    queued = result.lines.index(
        "[b] queued: every worker thread (1) is busy; it starts when one is free"
    )
    free = result.lines.index("[b] a worker thread is free: sleeping 0.2s in it; the loop "
                              "stays free")
    assert queued < free
