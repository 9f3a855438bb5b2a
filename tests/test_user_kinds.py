"""User kind modules: found beside the config file or in the current folder without
PYTHONPATH, a module that exits or is interrupted while importing is one error, and
`kinds` shows the first line of the kind's docstring."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from taskd.errors import ConfigError
from taskd.kinds import BUILTINS, kind_folders, load_kinds

KINDS = '''\
"""A class's own kinds."""

import asyncio


async def greet(who, times=2):
    """Greets WHO, TIMES times.

    The rest of the docstring is for the reader of the code, not for `kinds`.
    """
    for _ in range(int(times)):
        await asyncio.sleep(0)
        print(f"hello {who}")


async def bare():
    print("no docstring")
'''


def isolated(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """taskd with -I: neither the current folder nor PYTHONPATH is on the import path,
    as for the installed `taskd` command, so only taskd's own search can find a module."""
    return subprocess.run(
        [sys.executable, "-I", "-m", "taskd", *args], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=60, stdin=subprocess.DEVNULL,
    )


def write_config(folder: Path, module: str = "classkinds") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "taskd.toml"
    config.write_text(f'[kinds]\ngreet = "{module}:greet"\nbare = "{module}:bare"\n')
    return config


def test_a_module_beside_the_config_file_is_found(tmp_path: Path, env: dict[str, str]) -> None:
    config = write_config(tmp_path / "lesson")
    (tmp_path / "lesson" / "classkinds.py").write_text(KINDS)
    (tmp_path / "elsewhere").mkdir()
    script = tmp_path / "s.tdc"
    script.write_text("kinds\nnew greet class 1\nnew bare\nwait\n")
    result = isolated("--config", str(config), str(script), cwd=tmp_path / "elsewhere", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(
        line.startswith("greet WHO [TIMES=2]") and line.endswith("  Greets WHO, TIMES times.")
        for line in lines
    ), lines
    assert any(line.startswith("bare ") and line.endswith("user kind from classkinds:bare")
               for line in lines), lines
    assert "[greet-1] hello class" in lines
    assert "[bare-1] no docstring" in lines


def test_a_module_in_the_current_folder_is_found(tmp_path: Path, env: dict[str, str]) -> None:
    config = write_config(tmp_path / "conf")
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "classkinds.py").write_text(KINDS)
    script = tmp_path / "s.tdc"
    script.write_text("new greet here 1\nwait\n")
    result = isolated("--config", str(config), str(script), cwd=tmp_path / "work", env=env)
    assert result.returncode == 0, result.stderr
    assert "[greet-1] hello here" in result.stdout.splitlines()


def test_without_taskds_search_the_module_is_not_found(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """The control for the two tests above: a module in neither folder is an error."""
    config = write_config(tmp_path / "conf")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "classkinds.py").write_text(KINDS)
    (tmp_path / "work").mkdir()
    result = isolated("--config", str(config), "-", cwd=tmp_path / "work", env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"taskd: error: {config}: kinds.greet: cannot import 'classkinds': "
        "ModuleNotFoundError: No module named 'classkinds'"
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("raise SystemExit(0)\n", "SystemExit: 0"),
        ("raise SystemExit\n", "SystemExit"),
        ("raise KeyboardInterrupt\n", "KeyboardInterrupt"),
        ("class Odd(BaseException):\n    pass\n\nraise Odd('one\\ntwo')\n", "Odd: one two"),
        ("def (:\n", "SyntaxError: invalid syntax"),
    ],
)
def test_a_module_that_exits_on_import_is_one_error(
    tmp_path: Path, env: dict[str, str], body: str, reason: str
) -> None:
    config = write_config(tmp_path, "leaving")
    (tmp_path / "leaving.py").write_text(body)
    marker = tmp_path / "started"
    script = tmp_path / "s.tdc"
    script.write_text(f"new shell 'touch {marker}'\nwait\n")
    result = isolated("--config", str(config), str(script), cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"taskd: error: {config}: kinds.greet: cannot import 'leaving': "
                           f"{reason}"), line
    assert not marker.exists()


def test_the_folders_are_on_the_import_path_only_while_importing(tmp_path: Path) -> None:
    (tmp_path / "pathkinds_taskd_test.py").write_text(KINDS)
    before = list(sys.path)
    try:
        kinds = load_kinds({"greet": "pathkinds_taskd_test:greet"}, folders=[str(tmp_path)])
    finally:
        sys.modules.pop("pathkinds_taskd_test", None)
    assert sys.path == before
    assert kinds["greet"].summary == "Greets WHO, TIMES times."
    assert set(kinds) == {*BUILTINS, "greet"}
    with pytest.raises(ConfigError, match="No module named 'pathkinds_taskd_test'"):
        load_kinds({"greet": "pathkinds_taskd_test:greet"}, folders=[])
    assert sys.path == before


def test_kind_folders_are_the_config_files_folder_then_the_current_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "conf")
    monkeypatch.chdir(tmp_path)
    assert kind_folders(str(config)) == [str(tmp_path / "conf"), str(tmp_path)]
    assert kind_folders("defaults") == [str(tmp_path)]
    monkeypatch.chdir(tmp_path / "conf")
    assert kind_folders(str(config)) == [str(tmp_path / "conf")]
