"""`pip install .` (not editable) gives a working `taskd` whose defaults are the
documented file, byte for byte."""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_installed_program_runs_from_elsewhere(tmp_path: Path) -> None:
    if not (REPO / "pyproject.toml").is_file():
        pytest.skip("not run from a source tree")
    pytest.importorskip("hatchling", reason="the test extra installs the build backend")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The fresh environment sees this one's packages (pip, hatchling and taskd's
    # dependencies) through a .pth file, after its own: nothing is downloaded, and the
    # taskd it imports is the one installed into it.
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    outer = [*site.getsitepackages(), site.getusersitepackages()]
    Path(purelib, "outer.pth").write_text("\n".join(p for p in outer if os.path.isdir(p)))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", str(REPO)],
        check=True, env=env, cwd=tmp_path, capture_output=True, timeout=120,
    )
    installed = Path(purelib, "taskd")
    assert (installed / "defaults.toml").read_bytes() == (
        REPO / "config" / "taskd.toml"
    ).read_bytes()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [str(python), "-c", "import taskd; print(taskd.__file__)"],
        check=True, capture_output=True, text=True, env=env, cwd=elsewhere,
    ).stdout.strip()
    assert Path(where).parent == installed  # not the source tree's copy

    result = subprocess.run(
        [str(venv / "bin" / "taskd")], input=b"new tick 0.01 2 --name t\nwait\nkinds\n",
        capture_output=True, env=env, cwd=elsewhere, timeout=60,
    )
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert out.splitlines()[:3] == ["started t", "[t] tick 1", "[t] tick 2"]
    version = subprocess.run(
        [str(venv / "bin" / "taskd"), "--version"], capture_output=True, text=True, env=env,
        cwd=elsewhere, check=True,
    )
    assert version.stdout.startswith("taskd ")
