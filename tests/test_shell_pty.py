"""The shell through a real pseudo-terminal: `python -m taskd` under pexpect.

taskd runs inside `sh -c 'python -m taskd; echo exit=$?; stty -a'`, so that after it
leaves, the same terminal reports its own state: cooked (icanon) with echo on, or
the person would be left typing blind. pexpect is not a terminal emulator, so the
test answers prompt_toolkit's cursor position requests the way a terminal would;
without an answer prompt_toolkit would not draw the bottom toolbar.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect  # type: ignore[import-untyped]
import pytest
from shellkit import COLOUR_SGR, DEADLINE, plain

CPR_REQUEST = "\x1b[6n"
ENTER, CTRL_C, CTRL_D = "\r", "\x03", "\x04"
AFTER = 'echo "exit=$?"; stty -a'
PYTHON = shlex.quote(sys.executable)


class Terminal:
    """A pty with taskd in it, read as a person would read the screen."""

    def __init__(self, env: dict[str, str], args: str = "") -> None:
        self.child = pexpect.spawn(
            "/bin/sh",
            # The terminal's Ctrl-C reaches the whole foreground group, sh too: a
            # trap (not an ignore, which taskd would inherit) keeps sh alive.
            ["-c", f"trap : INT; {PYTHON} -m taskd {args}; {AFTER}"],
            env=env,
            dimensions=(24, 100),
            encoding="utf-8",
            codec_errors="replace",
        )
        self.raw = ""
        self.answered = 0
        self.seen = 0
        self.eof = False

    def send(self, text: str) -> None:
        self.child.send(text)

    def _read(self) -> None:
        if self.eof:
            return
        try:
            self.raw += self.child.read_nonblocking(65536, timeout=0.05)
        except pexpect.TIMEOUT:
            pass
        except pexpect.EOF:
            self.eof = True  # everything the terminal will ever show has been read
            return
        requests = self.raw.count(CPR_REQUEST)
        while self.answered < requests:  # "the cursor is at row 1, column 1"
            self.answered += 1
            try:
                self.child.send("\x1b[1;1R")
            except OSError:  # taskd has already left: nobody is asking any more
                pass

    def wait_for(self, pattern: str) -> re.Match[str]:
        """Wait until PATTERN appears on screen after what earlier waits consumed."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + DEADLINE
        while True:
            found = regex.search(plain(self.raw), self.seen)
            if found:
                self.seen = found.end()
                return found
            if self.eof or time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} never appeared in:\n{plain(self.raw)[-3000:]}")
            self._read()

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"never happened: {what}")
            self._read()

    def cooked(self) -> bool:
        """The terminal's line discipline is in canonical mode (taskd is not at its
        prompt). On Linux the master side reports the pty's own settings."""
        return bool(termios.tcgetattr(self.child.child_fd)[3] & termios.ICANON)

    def left_as_found(self) -> tuple[str, str]:
        """After taskd ended: its status, and the terminal's flags from `stty -a`."""
        status = self.wait_for(r"exit=(\d+)")[1]
        flags = self.wait_for(r"(-?icanon)[\s\S]*?(-?echo)\s")
        return status, f"{flags[1]} {flags[2]}"


@pytest.fixture
def terminal(env: dict[str, str]) -> Iterator[Callable[..., Terminal]]:
    env = {**env, "TERM": "xterm-256color"}
    opened: list[Terminal] = []

    def open_terminal(args: str = "", **extra: str) -> Terminal:
        term = Terminal({**env, **extra}, args)
        opened.append(term)
        term.wait_for(r"taskd>")
        return term

    yield open_terminal
    for term in opened:
        term.child.close(force=True)


def test_output_lands_above_a_half_typed_line(terminal: Callable[..., Terminal]) -> None:
    term = terminal()
    term.wait_for(r"0 running · 0 finished · no log · lag")
    term.send("new tick 0.2 --name t" + ENTER)
    term.wait_for(r"started t")
    term.send("show")
    term.wait_for(r"\[t\] tick 2\n")
    # The prompt is redrawn under the new line with what was typed still on it...
    term.wait_for(r"taskd> show")
    term.wait_for(r"1 running · 0 finished")
    # ...and Enter runs it.
    term.send(ENTER)
    term.wait_for(r"NAME +KIND +STATE +AGE +DETAIL\n *t +tick +running +[0-9.]+s +tick \d+")
    term.send(CTRL_D)
    assert term.left_as_found() == ("0", "icanon echo")


def test_tab_completes_a_live_task_name(terminal: Callable[..., Terminal]) -> None:
    term = terminal()
    term.send("new idle --name alpha42" + ENTER)
    term.wait_for(r"started alpha42")
    term.send("cancel alp\t")
    # The renderer writes only what changed: the completed rest of the name.
    term.wait_for(r"ha42")
    term.send(ENTER)
    term.wait_for(r"cancelled alpha42")
    term.send("end" + ENTER)
    assert term.left_as_found() == ("0", "icanon echo")


def test_ctrl_c_keeps_the_daemon(terminal: Callable[..., Terminal]) -> None:
    term = terminal()
    term.send("new idle --name kept" + ENTER)
    term.wait_for(r"started kept")
    term.send("half a line")
    term.wait_for(r"line")  # drawn (maybe in pieces: the renderer sends changes)
    term.send(CTRL_C)  # abandoned at the prompt...
    term.wait_for(r"taskd>")  # ...and a fresh one (in raw mode) is drawn
    term.send("sleep 30" + ENTER)
    term.wait_until(term.cooked, "the command runs (the prompt gave the terminal back)")
    term.send(CTRL_C)  # a real SIGINT from the terminal, to the running command
    term.wait_for(r"interrupted: sleep 30")
    term.send("show" + ENTER)
    term.wait_for(r"kept +idle +running")
    term.send(CTRL_D)
    assert term.left_as_found() == ("0", "icanon echo")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_at_the_prompt_restores_the_terminal(
    terminal: Callable[..., Terminal], signum: int
) -> None:
    term = terminal()
    # $PPID of the task's /bin/sh is taskd itself.
    term.send("new shell 'echo pid=$PPID' --name p" + ENTER)
    pid = int(term.wait_for(r"\[p\] pid=(\d+)")[1])
    term.wait_for(r"p done after")
    term.send("half typed")
    term.wait_for(r"typed")
    os.kill(pid, signum)
    assert term.left_as_found() == (str(128 + signum), "icanon echo")


def test_errors_are_red_unless_no_color(terminal: Callable[..., Terminal]) -> None:
    for extra, coloured in [({}, True), ({"NO_COLOR": "1"}, False)]:
        term = terminal(**extra)
        start = len(term.raw)
        term.send("shwo" + ENTER)
        term.wait_for(r"error: unknown command 'shwo' \(did you mean 'show'\?\)")
        term.send(CTRL_D)
        assert term.left_as_found() == ("0", "icanon echo")
        assert bool(COLOUR_SGR.search(term.raw[start:])) is coloured


def test_a_hang_up_ends_taskd_cleanly(terminal: Callable[..., Terminal], tmp_path: Path) -> None:
    log = tmp_path / "events.log"
    term = terminal(f"--log {log}")
    term.send("new shell 'echo pid=$PPID' --name p" + ENTER)
    pid = int(term.wait_for(r"\[p\] pid=(\d+)")[1])
    term.send("new tick 0.01 --name busy" + ENTER)  # output keeps coming as it hangs up
    term.wait_for(r"\[busy\] tick 3")
    term.send("half")
    term.child.close(force=True)  # the terminal goes away: EIO for writes, and SIGHUP
    deadline = time.monotonic() + DEADLINE
    while "daemon-end" not in log.read_text():
        assert time.monotonic() < deadline, "taskd did not end after the hang-up"
        time.sleep(0.01)
    events = [line.split()[2] for line in log.read_text().splitlines()]
    assert "error" not in events  # nothing went wrong: the terminal merely left
    assert log.read_text().rstrip().endswith("daemon-end status=129")
    while True:  # and the process is gone
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "taskd is still running"
        time.sleep(0.01)


def test_with_stdout_redirected_the_terminal_is_read_as_a_script(
    env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "out.txt"
    term = Terminal(env, f"> {out}")
    try:
        term.send("new timer 0 --name a\n")
        term.send(CTRL_D)  # end of input, from a terminal in cooked mode
        assert term.left_as_found() == ("0", "icanon echo")
    finally:
        term.child.close(force=True)
    assert out.read_text().splitlines()[0] == "started a"
    assert "taskd>" not in out.read_text()
