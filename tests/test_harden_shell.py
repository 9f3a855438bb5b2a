"""The shell's rough edges (issue 14, items 19, 20 and 22), through the real program
in a real pty: a paste of several lines, typing ahead, narrow and wide terminals.

Each wait is on what the screen shows, with shellkit's deadline as a safety net only.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect  # type: ignore[import-untyped]
import pytest
from prompt_toolkit.utils import get_cwidth
from shellkit import DEADLINE, plain
from test_shell_pty import AFTER, ENTER, PYTHON, Terminal
from tmuxkit import Tmux

PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"


class SizedTerminal(Terminal):
    """test_shell_pty's Terminal, at a size of the test's choosing."""

    def __init__(self, env: dict[str, str], args: str = "", columns: int = 100) -> None:
        super().__init__(env, args)
        self.child.close(force=True)
        self.child = pexpect.spawn(
            "/bin/sh",
            ["-c", f"trap : INT; {PYTHON} -m taskd {args}; {AFTER}"],
            env=env,
            dimensions=(24, columns),
            encoding="utf-8",
            codec_errors="replace",
        )


OpenTerminal = Callable[..., SizedTerminal]


@pytest.fixture
def sized(env: dict[str, str]) -> Iterator[OpenTerminal]:
    env = {**env, "TERM": "xterm-256color"}
    opened: list[SizedTerminal] = []

    def open_terminal(args: str = "", columns: int = 100) -> SizedTerminal:
        term = SizedTerminal(env, args, columns)
        opened.append(term)
        term.wait_for(r"taskd>")
        return term

    yield open_terminal
    for term in opened:
        term.child.close(force=True)


def _history(env: dict[str, str]) -> list[str]:
    """The history file's entries, each the list of its lines (FileHistory's format:
    a '# date' line, then '+' before each line of the entry)."""
    path = Path(env["XDG_STATE_HOME"]) / "taskd" / "history"
    entries: list[list[str]] = []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            entries.append([])
        elif line.startswith("+"):
            entries[-1].append(line[1:])
    return ["\n".join(entry) for entry in entries]


def test_a_pasted_block_runs_line_by_line(sized: OpenTerminal, env: dict[str, str]) -> None:
    term = sized()
    # Terminals send a pasted newline as CR; the last line is left unfinished.
    term.send(
        PASTE_START
        + "new idle --name p1\rnew idle --name p2\r\rnew timer 0 --name p3\rcancel p1"
        + PASTE_END
    )
    for name in ("p1", "p2", "p3"):
        term.wait_for(rf"started {name}\n")
    term.wait_for(r"taskd> cancel p1")  # left at the prompt, to edit or run
    term.send(ENTER)
    term.wait_for(r"cancelled p1")
    term.send("end" + ENTER)
    assert term.left_as_found() == ("0", "icanon echo")
    assert "error" not in plain(term.raw)
    assert _history(env) == [
        "new idle --name p1", "new idle --name p2", "new timer 0 --name p3", "cancel p1", "end",
    ]


def _cooked(tmux: Tmux) -> bool:
    """The pane's terminal is in canonical mode: taskd is running a command."""
    fd = os.open(tmux.tmux("display-message", "-p", "#{pane_tty}").strip(),
                 os.O_RDWR | os.O_NOCTTY)
    try:
        return bool(termios.tcgetattr(fd)[3] & termios.ICANON)
    finally:
        os.close(fd)


@pytest.fixture
def tmux(env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Tmux]]:
    opened: list[Tmux] = []

    def open_tmux(columns: int = 100, args: str = "") -> Tmux:
        term = Tmux(tmp_path, env, columns)
        opened.append(term)
        term.type(f"{PYTHON} -m taskd {args}")
        term.key("Enter")
        term.wait_for("taskd>")
        return term

    yield open_tmux
    for term in opened:
        term.close()


def test_typing_ahead_shows_once_at_the_next_prompt(
    tmux: Callable[..., Tmux], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    term = tmux()
    term.type(f"new shell 'cat {gate}' --name w\r")
    term.wait_for("started w")
    term.type("wait w\r")
    term.wait_until(lambda _: _cooked(term), "the wait runs (the prompt gave the terminal back)")
    term.type("new idle --name ahead\rshow\r")
    with gate.open("w") as writer:  # w ends, and with it the wait
        writer.write("go\n")
    screen = term.wait_until(lambda s: re.search(r"ahead +idle +running", s) is not None,
                             "the typed-ahead lines ran")
    lines = screen[screen.index("taskd> wait w"):].splitlines()
    # Each typed line shown once, at its own prompt, in order; nothing glued to it.
    assert sum("new idle --name ahead" in line for line in lines) == 1, screen
    assert sum("show" in line for line in lines) == 1, screen
    assert lines.index("taskd> new idle --name ahead") < lines.index("started ahead")
    assert lines.index("started ahead") < lines.index("taskd> show")


def _state(pid: int) -> str:
    """The process's state letter from /proc: 'T' when stopped."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("State:"):
            return line.split()[1]
    raise AssertionError("no State line")


def test_ctrl_z_suspends_and_fg_redraws(tmux: Callable[..., Tmux]) -> None:
    term = tmux()
    term.type("new shell 'echo pid=$PPID' --name p\r")  # $PPID of its sh is taskd
    pid = int(re.findall(r"\[p\] pid=(\d+)", term.wait_for("p done after"))[0])
    term.type("half typed")
    term.wait_for("taskd> half typed")
    term.key("C-z")
    term.wait_until(lambda _: _state(pid) == "T", "taskd stopped")
    term.wait_for("Stopped")  # the job shell says so, and has the terminal
    term.type("fg\r")
    term.wait_until(lambda _: _state(pid) != "T", "taskd running again")
    # The prompt is drawn again, with the half-typed line on it, and works.
    term.wait_until(lambda s: re.search(r"\bfg\n.*\ntaskd> half typed", s) is not None,
                    "the prompt redrawn after fg")
    term.key("C-u")
    _show_then_end(term, pid)


def _show_then_end(term: Tmux, pid: int) -> None:
    """The prompt works (`show`), and `end` ends taskd with status 0."""
    term.type("show --all\r")
    term.wait_until(lambda s: re.search(r"p +shell +done", s) is not None, "show ran")
    term.type("end\r")
    term.wait_until(lambda _: not Path(f"/proc/{pid}").exists(), "taskd ended")
    term.type("echo status=$?\r")
    term.wait_for("status=0")


def _switches(pid: int) -> int:
    """The process's context switches so far: a stopped process makes none."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["voluntary_ctxt_switches"]) + int(fields["nonvoluntary_ctxt_switches"])


def test_continued_in_the_background_it_stops_again_and_fg_gives_it_back(
    env: dict[str, str], tmp_path: Path
) -> None:
    """`kill -STOP`, then `kill -CONT` from elsewhere, continues taskd in the
    background: its prompt would draw over the job shell, which has the terminal, and
    the answers to its cursor queries would land in that shell's input. It stops
    itself again; `fg` gives it the terminal back in its own raw mode. (bash as the
    job shell: like zsh and fish, it takes the terminal back in its own modes.)"""
    term = Tmux(tmp_path, env)
    try:
        term.type("exec bash --norc\r")
        term.type(f"{PYTHON} -m taskd\r")
        term.wait_for("taskd>")
        term.type("new shell 'echo pid=$PPID' --name p\r")  # $PPID of its sh is taskd
        pid = int(re.findall(r"\[p\] pid=(\d+)", term.wait_for("p done after"))[0])
        os.kill(pid, signal.SIGSTOP)
        term.wait_until(lambda _: _state(pid) == "T", "taskd stopped")
        term.wait_for("Stopped")  # the job shell says so, and has the terminal
        ran = _switches(pid)
        os.kill(pid, signal.SIGCONT)
        term.wait_until(
            lambda _: _switches(pid) > ran and _state(pid) == "T",
            "taskd ran, then stopped again",
        )
        term.type("fg\r")
        term.wait_until(lambda _: _state(pid) != "T", "taskd running again")
        term.wait_until(lambda _: not _cooked(term), "the prompt's raw mode back")
        _show_then_end(term, pid)
    finally:
        term.close()

def _after(screen: str, mark: str) -> str:
    """What SCREEN shows after the last MARK ('' if it has none)."""
    _, found, rest = screen.rpartition(mark)
    return rest if found else ""


def _words(command: str, env: dict[str, str]) -> set[str]:
    """COMMAND's output words, unwrapped (script mode has no width)."""
    done = subprocess.run([sys.executable, "-m", "taskd"], input=f"{command}\n",
                          capture_output=True, text=True, env=env, timeout=DEADLINE)
    return set(done.stdout.split())


@pytest.mark.parametrize("columns", [40, 100])
def test_help_and_kinds_wrap_between_words(
    tmux: Callable[..., Tmux], env: dict[str, str], columns: int
) -> None:
    term = tmux(columns)
    for command in ("help", "kinds"):
        words = _words(command, env)
        term.type(f"{command}\r")
        screen = term.wait_until(  # shown, and the next prompt under it
            lambda s, c=command: "taskd>" in _after(s, f"taskd> {c}\n"), f"{command} shown"
        )
        shown = _after(screen, f"taskd> {command}\n").partition("taskd>")[0]
        assert len(shown.splitlines()) > 10
        for line in shown.splitlines():
            # capture-pane -J joins what the terminal wrapped: a too-long line shows.
            assert get_cwidth(line) <= columns, line
            assert set(line.split()) <= words, f"a word cut: {line!r}"
    term.type("end\r")


def test_the_toolbar_stays_during_a_command_and_keeps_the_lag(
    tmux: Callable[..., Tmux], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    (tmp_path / "a-long-folder-name").mkdir()
    term = tmux(40, f"--log {tmp_path / 'a-long-folder-name' / 'events.log'}")
    # At the prompt, 40 columns: the lag is kept, the log's path is what goes.
    term.wait_until(lambda s: re.search(r"0 running · 0 finished · lag", s) is not None,
                    "the toolbar with its lag")
    term.type(f"new shell 'cat {gate}' --name w\r")
    term.wait_for("started w")
    term.type("wait w\r")
    term.wait_until(lambda _: _cooked(term), "the wait runs")
    # While the wait runs there is no prompt, and still a toolbar, below the output.
    term.wait_until(
        lambda s: re.search(r"taskd> wait w\n(.*\n)*? ?1 running · 0 finished · lag", s)
        is not None,
        "the toolbar during the wait",
    )
    with gate.open("w") as writer:
        writer.write("go\n")
    screen = term.wait_until(
        lambda s: re.search(r"w done after.*\n(.*\n)*?taskd>", s) is not None, "the wait ended"
    )
    after = screen[screen.rindex("taskd> wait w"):]
    # The status line was taken away: the only toolbar left is the prompt's own.
    term.wait_until(
        lambda s: sum("finished · lag" in x for x in s[s.rindex("taskd> wait w"):].splitlines())
        == 1, f"one toolbar left, in:\n{after}"
    )
    term.type("end\r")


def _taskd_pid(term: Tmux) -> int:
    """taskd's pid: the only child of the pane's shell."""
    shell = term.tmux("display-message", "-p", "#{pane_pid}").strip()
    children = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS line")


FLOOD_WATCH = 3.0  # seconds of flood watched: long enough for a leak to show
FLOOD_GROWTH_KIB = 64 * 1024  # the bounded queue and its slices, with room to spare
END_SLACK = 5.0  # seconds beyond cancel_grace: a safety margin for a loaded machine


def test_an_output_flood_keeps_memory_bounded_and_the_prompt_live(
    tmux: Callable[..., Tmux], tmp_path: Path
) -> None:
    (tmp_path / "taskd.toml").write_text("cancel_grace = 1.0\n")
    term = tmux(100, f"--config {tmp_path / 'taskd.toml'}")
    pid = _taskd_pid(term)
    term.type("new shell yes --name flood\r")
    term.wait_for("[flood] y")
    first = _rss_kib(pid)
    peak = first
    watch_until = time.monotonic() + FLOOD_WATCH
    while time.monotonic() < watch_until:  # sampling, not waiting for an outcome
        peak = max(peak, _rss_kib(pid))
        time.sleep(0.05)
    assert peak - first < FLOOD_GROWTH_KIB, (first, peak)
    # The prompt answers in the flood: a typed command is shown and runs.
    term.type("cancel flood\r")
    term.wait_for("cancelled flood")
    term.type("new shell yes --name flood2\r")
    term.wait_for("[flood2] y")
    # And `end` in a flood ends within the grace period and a bounded slack.
    began = time.monotonic()
    term.type("end\r")
    term.wait_until(lambda _: not Path(f"/proc/{pid}").exists(), "taskd ended")
    assert time.monotonic() - began < 1.0 + END_SLACK
