"""Config faults: each bad configuration is one clear error, exit status 2, and
nothing is started (the script would create a file if it ran at all)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import RunTaskd

CASES = {
    "syntax": ("cancel_grace = = 1\n", "not valid TOML"),
    "type": ('cancel_grace = "soon"\n', "cancel_grace: expected float, got str"),
    "bool-for-number": ("history = true\n", "history: expected int, got bool"),
    "negative": ("stall_threshold = -1\n", "stall_threshold: expected a finite number >= 0"),
    "choice": ('loop = "trio"\n', "loop: expected one of asyncio, uvloop"),
    "kind-target": ('[kinds]\nx = "nocolon"\n', 'kinds.x: expected "module:function"'),
    "kind-import": ('[kinds]\nx = "no_such_module_taskd:f"\n', "kinds.x: cannot import"),
    "kind-import-error": ('[kinds]\nx = "brokenkinds:f"\n', "ZeroDivisionError"),
    "kind-missing": ('[kinds]\nx = "plainkinds:nothing"\n', "has no 'nothing'"),
    "kind-not-async": ('[kinds]\nx = "plainkinds:sync"\n', "is not an async function"),
    "kind-builtin-name": ('[kinds]\nidle = "plainkinds:coro"\n', "a built-in kind has this name"),
}


@pytest.fixture
def script(tmp_path: Path, env: dict[str, str]) -> str:
    (tmp_path / "brokenkinds.py").write_text("1 / 0\n")
    (tmp_path / "plainkinds.py").write_text(
        "def sync():\n    pass\n\nasync def coro():\n    pass\n"
    )
    env["PYTHONPATH"] = f"{tmp_path}:{env.get('PYTHONPATH', '')}"
    return f"new shell 'touch {tmp_path / 'started'}'\nwait\n"


@pytest.mark.parametrize("case", CASES)
def test_a_bad_config_is_one_error_and_nothing_starts(
    run_taskd: RunTaskd, tmp_path: Path, script: str, case: str
) -> None:
    text, message = CASES[case]
    config = tmp_path / "bad.toml"
    config.write_text(text)
    result = run_taskd(script, "--config", str(config))
    assert result.status == 2
    assert result.out == ""
    (line,) = result.errors
    assert line.startswith(f"taskd: error: {config}") and message in line, line
    assert not (tmp_path / "started").exists()


def test_a_missing_config_file_is_an_error(
    run_taskd: RunTaskd, tmp_path: Path, script: str
) -> None:
    result = run_taskd(script, "--config", str(tmp_path / "nowhere.toml"))
    assert result.status == 2 and result.out == ""
    assert result.errors == [
        f"taskd: error: {tmp_path / 'nowhere.toml'}: cannot read it: No such file or directory"
    ]
    assert not (tmp_path / "started").exists()


def test_an_unknown_key_is_a_warning_and_taskd_runs(
    run_taskd: RunTaskd, tmp_path: Path, script: str
) -> None:
    config = tmp_path / "typo.toml"
    config.write_text("cancel_grase = 1\n")
    result = run_taskd(script, "--config", str(config))
    assert result.status == 0
    assert result.errors == [f"taskd: warning: {config}: unknown key 'cancel_grase' ignored"]
    assert (tmp_path / "started").exists()
