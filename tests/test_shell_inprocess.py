"""The shell driven in-process: a real PromptSession fed through a pipe.

The daemon runs for real (Daemon.run, its own loop, in the main thread, where its
signal handlers can be installed); a second thread plays the person: it types keys
into prompt_toolkit's pipe input and waits for what the shell prints, which goes to
a real vt100 renderer writing into memory.
"""

from __future__ import annotations

import io
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output.vt100 import Vt100_Output
from shellkit import COLOUR_SGR, DEADLINE, plain

from taskd.config import Config
from taskd.daemon import Daemon
from taskd.frontends.shell import LEAVE_HINT, ShellFrontend

ENTER, CTRL_C, CTRL_D, CTRL_R, UP = "\r", "\x03", "\x04", "\x12", "\x1b[A"


class Person:
    """Types into the shell and reads its screen, from a thread of its own."""

    def __init__(self, keys: PipeInput, screen: io.StringIO, frontend: ShellFrontend) -> None:
        self.keys = keys
        self.screen = screen
        self.frontend = frontend
        self.seen = 0  # where in the plain screen text the next wait starts

    def type(self, text: str) -> None:
        self.keys.send_text(text)

    def text(self) -> str:
        return plain(self.screen.getvalue())

    def wait_for(self, pattern: str) -> re.Match[str]:
        """Wait until PATTERN appears after what earlier waits consumed."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + DEADLINE
        while True:
            found = regex.search(self.text(), self.seen)
            if found:
                self.seen = found.end()
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} never appeared in:\n{self.text()[-2000:]}")
            time.sleep(0.005)

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"never happened: {what}")
            time.sleep(0.005)


class Run:
    def __init__(self, status: int, daemon: Daemon, frontend: ShellFrontend, raw: str) -> None:
        self.status = status
        self.daemon = daemon
        self.frontend = frontend
        self.raw = raw  # with the escape sequences
        self.screen = plain(raw)


Script = Callable[[Person], None]
RunShell = Callable[..., Run]


@pytest.fixture
def run_shell(tmp_path: Path) -> Iterator[RunShell]:
    def run(
        script: Script,
        columns: int = 100,
        environ: dict[str, str] | None = None,
        **settings: object,
    ) -> Run:
        settings.setdefault("history_file", str(tmp_path / "history"))
        settings.setdefault("color", "never")
        config = Config(**settings)  # type: ignore[arg-type]
        screen = io.StringIO()
        terminal = Vt100_Output(screen, lambda: Size(rows=30, columns=columns), term="xterm")
        daemon = Daemon(config)
        failure: list[BaseException] = []
        finished = threading.Event()
        env = {"TERM": "xterm"} if environ is None else environ
        with create_pipe_input() as keys:
            frontend = ShellFrontend(config, input=keys, output=terminal, environ=env)
            person = Person(keys, screen, frontend)

            def play() -> None:
                try:
                    script(person)
                except BaseException as exc:
                    failure.append(exc)
                    keys.send_text(CTRL_C + CTRL_D)  # leave, so the failure is seen
                if not finished.wait(DEADLINE):  # the shell did not end: end it
                    os.kill(os.getpid(), signal.SIGTERM)

            player = threading.Thread(target=play, name="person")
            player.start()
            try:
                with create_app_session(input=keys, output=terminal):
                    status = daemon.run(frontend)
            finally:
                finished.set()
                player.join()
        if failure:
            raise failure[0]
        return Run(status, daemon, frontend, screen.getvalue())

    yield run


def test_a_typed_command_runs_and_ctrl_d_ends(run_shell: RunShell) -> None:
    def script(p: Person) -> None:
        p.wait_for(r"taskd>")
        p.type("new idle --name alpha" + ENTER)
        p.wait_for(r"started alpha")
        p.type(CTRL_D)

    run = run_shell(script)
    assert run.status == 0
    assert run.daemon.registry.get("alpha") is not None
    assert run.daemon.registry.get("alpha").state == "cancelled"  # type: ignore[union-attr]


def test_tab_completes_a_live_task_name(run_shell: RunShell) -> None:
    def script(p: Person) -> None:
        p.type("new idle --name alphabet" + ENTER)
        p.wait_for(r"started alphabet")
        p.type("cancel alp\t")
        p.wait_for(r"habet")  # the renderer writes just what completion added
        p.type(ENTER)
        p.wait_for(r"cancelled alphabet")
        # Gone now: nothing completes, the word stays as typed.
        p.type("cancel alp\t" + ENTER)
        p.wait_for(r"error: no task named 'alp'")
        p.type(CTRL_D)

    assert run_shell(script).status == 0


def test_output_lands_above_a_half_typed_line(run_shell: RunShell) -> None:
    def script(p: Person) -> None:
        p.type("new tick 0.01 3 --name t" + ENTER)
        p.wait_for(r"started t")
        p.type("sh")
        p.wait_for(r"t done after")
        p.type("ow --all" + ENTER)  # the half line was kept: this completes it
        p.wait_for(r"NAME +KIND +STATE.*\n *t +tick +done")
        p.type(CTRL_D)

    run = run_shell(script)
    assert run.status == 0
    assert run.screen.index("[t] tick 3") < run.screen.index("taskd> show --all")


def test_ctrl_c_abandons_the_line_and_a_second_says_how_to_leave(run_shell: RunShell) -> None:
    def script(p: Person) -> None:
        p.type("new idle --name never" + CTRL_C)
        p.wait_until(lambda: p.frontend.prompts >= 2, "a fresh prompt")
        p.type(CTRL_C)
        p.wait_until(lambda: p.frontend.prompts >= 3, "a fresh prompt")
        p.type(CTRL_C)
        p.wait_for(re.escape(LEAVE_HINT.strip()))
        p.type("new idle --name kept" + ENTER)
        p.wait_for(r"started kept")
        p.type(CTRL_D)

    run = run_shell(script)
    assert run.status == 0
    assert run.daemon.registry.get("never") is None
    assert run.screen.count(LEAVE_HINT.strip()) == 1


def test_ctrl_d_on_a_typed_line_does_not_end(run_shell: RunShell) -> None:
    def script(p: Person) -> None:
        p.type("new idle --name x" + CTRL_D)  # deletes nothing: the cursor is at the end
        p.type(ENTER)
        p.wait_for(r"started x")
        p.type("end" + ENTER)

    assert run_shell(script).status == 0


def test_sigint_cancels_the_running_command_not_the_daemon(run_shell: RunShell) -> None:
    def script(p: Person) -> None:
        p.type("sleep 60" + ENTER)
        p.wait_until(lambda: p.frontend.running_command == "sleep 60", "sleep runs")
        os.kill(os.getpid(), signal.SIGINT)
        p.wait_for(r"interrupted: sleep 60")
        p.type("new idle --name after" + ENTER)
        p.wait_for(r"started after")
        p.type(CTRL_D)

    assert run_shell(script).status == 0


def test_errors_are_one_line_and_the_status_stays_zero(run_shell: RunShell) -> None:
    def script(p: Person) -> None:
        p.type("shwo" + ENTER)
        p.wait_for(r"error: unknown command 'shwo' \(did you mean 'show'\?\)")
        p.type("new tick -1" + ENTER)
        p.wait_for(r"error: ")
        p.type(CTRL_D)

    run = run_shell(script)
    assert run.status == 0
    assert run.frontend.failures == 2
    assert "Traceback" not in run.screen


def test_history_is_kept_in_the_file_and_recalled(run_shell: RunShell, tmp_path: Path) -> None:
    def first(p: Person) -> None:
        p.type("new idle --name remembered" + ENTER)
        p.wait_for(r"started remembered")
        p.type("show" + ENTER)
        p.wait_for(r"remembered +idle +running")
        p.type(CTRL_D)

    run_shell(first)
    assert "+new idle --name remembered" in (tmp_path / "history").read_text()

    def second(p: Person) -> None:
        p.wait_for(r"taskd>")
        # The file is read beside the loop; Up works once its lines are in.
        buffer = p.frontend.session.default_buffer  # type: ignore[union-attr]
        p.wait_until(lambda: buffer.working_index >= 2, "the history is loaded")
        p.type(UP + UP + ENTER)  # Up twice: past `show`, to `new`
        p.wait_for(r"started remembered")
        p.type(CTRL_R + "sho")
        p.wait_for(r"show")
        p.type(ENTER)  # accept the search...
        p.type(ENTER)  # ...and run it
        p.wait_for(r"remembered +idle +running")
        p.type(CTRL_D)

    assert run_shell(second).status == 0


def test_history_off_writes_no_file(run_shell: RunShell, tmp_path: Path) -> None:
    def script(p: Person) -> None:
        p.type("new idle --name h" + ENTER)
        p.wait_for("started h")
        p.type(CTRL_D)

    run_shell(script, history_file="off")
    assert not (tmp_path / "history").exists()


def test_an_unwritable_history_is_said_once_and_the_shell_goes_on(
    run_shell: RunShell, tmp_path: Path
) -> None:
    (tmp_path / "dir").mkdir()

    def script(p: Person) -> None:
        p.type("new idle --name a" + ENTER)
        p.wait_for("started a")
        p.type("new idle --name b" + ENTER)
        p.wait_for("started b")
        p.type(CTRL_D)

    run = run_shell(script, history_file=str(tmp_path / "dir"))  # a directory: unusable
    assert run.status == 0
    assert run.screen.count("history off") == 1


def test_show_fits_the_terminal_width(run_shell: RunShell) -> None:
    def script(p: Person) -> None:
        p.type("new fail 0 " + "x" * 200 + " --name f" + ENTER)
        p.wait_for("f failed after")
        p.type("show --all" + ENTER)
        p.wait_for(r"NAME.*\n.*f +fail +failed[^\n]*…")
        p.type(CTRL_D)

    run = run_shell(script, columns=50)
    table = run.screen[run.screen.index("NAME") :].splitlines()
    assert len(table[1]) == 50 and table[1].endswith("…")


def test_colour_on_for_always_and_off_for_no_color(run_shell: RunShell) -> None:
    def script(p: Person) -> None:
        p.type("shwo" + ENTER)
        p.wait_for("error: unknown command")
        p.type(CTRL_D)

    coloured = run_shell(script, color="always", environ={"TERM": "xterm", "NO_COLOR": "1"})
    assert coloured.frontend.colored
    assert COLOUR_SGR.search(coloured.raw)
    for environ, setting in [
        ({"TERM": "xterm", "NO_COLOR": "1"}, "auto"),
        ({"TERM": "dumb"}, "auto"),
        ({"TERM": "xterm"}, "never"),
    ]:
        uncoloured = run_shell(script, color=setting, environ=environ)
        assert not uncoloured.frontend.colored
        assert not COLOUR_SGR.search(uncoloured.raw), (environ, setting)
    auto = run_shell(script, color="auto", environ={"TERM": "xterm"})
    assert auto.frontend.colored and COLOUR_SGR.search(auto.raw)
