"""The history file is private (issue 14, item 9): it holds every typed line."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_shell_pty import CTRL_D, ENTER, Terminal

from taskd.frontends.history import make_history


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that would make files 0644 and folders 0755, as most users have."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_the_shell_creates_its_history_private(
    env: dict[str, str], tmp_path: Path, open_umask: None
) -> None:
    state = tmp_path / "xdg-state"
    assert not state.exists()
    term = Terminal({**env, "TERM": "xterm-256color"})
    try:
        term.wait_for(r"taskd>")
        term.send("new idle --name secret-line" + ENTER)
        term.wait_for(r"started secret-line")
        term.send(CTRL_D)
        assert term.left_as_found()[0] == "0"
    finally:
        term.child.close(force=True)
    history = state / "taskd" / "history"
    assert "new idle --name secret-line" in history.read_text()
    assert (mode(history), mode(history.parent), mode(state)) == (0o600, 0o700, 0o700)


def test_an_open_history_and_taskds_folder_are_narrowed(tmp_path: Path, open_umask: None) -> None:
    folder = tmp_path / "state" / "taskd"
    folder.mkdir(parents=True, mode=0o755)
    (folder / "history").write_text("# old\n+new idle\n")
    (folder / "history").chmod(0o644)
    make_history("", {"XDG_STATE_HOME": str(tmp_path / "state")}, lambda s: None)
    assert (mode(folder / "history"), mode(folder)) == (0o600, 0o700)
    assert mode(tmp_path / "state") == 0o755  # the user's own folder: left alone
    assert (folder / "history").read_text() == "# old\n+new idle\n"


def test_a_chosen_history_file_is_private_its_folder_left_alone(
    tmp_path: Path, open_umask: None
) -> None:
    folder = tmp_path / "mine"
    folder.mkdir(mode=0o755)
    said: list[str] = []
    make_history(str(folder / "h"), {}, said.append)
    assert (mode(folder / "h"), mode(folder), said) == (0o600, 0o755, [])
    make_history(str(tmp_path / "new" / "deeper" / "h"), {}, said.append)
    assert mode(tmp_path / "new") == mode(tmp_path / "new" / "deeper") == 0o700
    assert mode(tmp_path / "new" / "deeper" / "h") == 0o600
