"""A real terminal emulator for tests: a private tmux server, read as a screen.

pexpect sees the bytes a program writes; tmux applies them, so what `screen()`
returns is what a person would see (a line redrawn in place counts once), and its
sessions have job control (Ctrl-Z, `fg`). Each Tmux has a server of its own, on a
socket in the test's folder, killed at the end.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from shellkit import DEADLINE


class Tmux:
    def __init__(self, folder: Path, env: dict[str, str], columns: int = 100,
                 rows: int = 30) -> None:
        self.socket = str(folder / "tmux.sock")
        self.env = env
        self.tmux(
            "-f", "/dev/null", "new-session", "-d", "-x", str(columns), "-y", str(rows),
            "sh",
        )
        self.tmux("set-option", "-g", "history-limit", "10000")

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", self.socket, *args], env=self.env, capture_output=True,
            text=True, timeout=DEADLINE, check=True,
        )
        return done.stdout

    def type(self, text: str) -> None:
        """TEXT as typed (literally: `send-keys end` alone would press the End key)."""
        self.tmux("send-keys", "-l", text)

    def key(self, *names: str) -> None:
        self.tmux("send-keys", *names)

    def screen(self) -> str:
        """The whole screen and its scroll-back, trailing blanks dropped."""
        text = self.tmux("capture-pane", "-p", "-J", "-S", "-")
        return "\n".join(line.rstrip() for line in text.splitlines()).rstrip("\n")

    def wait_until(self, condition: Callable[[str], bool], what: str) -> str:
        deadline = time.monotonic() + DEADLINE
        while True:
            screen = self.screen()
            if condition(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"never happened: {what}; the screen:\n{screen}")
            time.sleep(0.02)  # a poll interval, not a wait for an outcome

    def wait_for(self, text: str) -> str:
        return self.wait_until(lambda screen: text in screen, repr(text))

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], env=self.env,
                       capture_output=True, timeout=DEADLINE)
