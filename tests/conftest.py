"""Shared fixtures: run the real taskd program in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Result:
    status: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    @property
    def errors(self) -> list[str]:
        return self.err.splitlines()


def taskd_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "taskd", *args]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment with no user config and no colours."""
    environ = dict(os.environ)
    environ["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")
    environ["XDG_STATE_HOME"] = str(tmp_path / "xdg-state")
    environ.pop("NO_COLOR", None)
    return environ


RunTaskd = Callable[..., Result]


@pytest.fixture
def run_taskd(env: dict[str, str], tmp_path: Path) -> RunTaskd:
    """Run taskd with SCRIPT on stdin (a pipe) or as a file, wait for it to exit."""

    def run(
        script: str | bytes = "",
        *args: str,
        via: str = "pipe",
        timeout: float = 60,
    ) -> Result:
        data = script.encode() if isinstance(script, str) else script
        if via == "file":
            path = tmp_path / "script.tdc"
            path.write_bytes(data)
            proc = subprocess.run(
                taskd_command(*args, str(path)), capture_output=True, env=env,
                timeout=timeout, stdin=subprocess.DEVNULL,
            )
        elif via == "stdin-file":
            path = tmp_path / "script.tdc"
            path.write_bytes(data)
            with path.open("rb") as stdin:
                proc = subprocess.run(
                    taskd_command(*args), capture_output=True, env=env,
                    timeout=timeout, stdin=stdin,
                )
        else:
            proc = subprocess.run(
                taskd_command(*args), input=data, capture_output=True, env=env,
                timeout=timeout,
            )
        return Result(
            proc.returncode,
            proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"),
        )

    return run
