"""Terminal safety (issue 14, item 8): what a task prints reaches a terminal with its
control characters escaped, and a file or a pipe with its bytes exactly.

Script mode runs as the real program in a real pty (pexpect, read as bytes); the
shell's painter is checked in process, on the very function that paints its lines.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pexpect  # type: ignore[import-untyped]
from shellkit import DEADLINE

from taskd.frontends.colors import paint_fragments, printable

# An OSC window title and a C1 CSI (U+009B) in a failure message (stderr), a cursor-up
# and a bidi override in a shell task's line (stdout), an isolate and a DEL.
SCRIPT = (
    'new fail 0 "x\x1b]0;PWNED\x07y\u009b2Jz" --name f\n'
    "new shell \"echo 'a\x1b[1Ab\u202ec\u2066d\x7fe'\" --name s\n"
    "wait s\n"
)
RAW_OUT = "a\x1b[1Ab\u202ec\u2066d\x7fe".encode()
RAW_ERR = "x\x1b]0;PWNED\x07y\u009b2Jz".encode()
SHOWN_OUT = rb"[s] a\x1b[1Ab\u202ec\u2066d\x7fe"
SHOWN_ERR = rb"x\x1b]0;PWNED\x07y\x9b2Jz"


def _script(tmp_path: Path) -> Path:
    path = tmp_path / "inject.tdc"
    path.write_text(SCRIPT, encoding="utf-8")
    return path


def test_a_terminal_sees_control_characters_escaped(
    env: dict[str, str], tmp_path: Path
) -> None:
    child = pexpect.spawn(
        sys.executable, ["-m", "taskd", str(_script(tmp_path))], env=env, timeout=DEADLINE
    )
    try:
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    screen: bytes = child.before
    assert SHOWN_OUT in screen
    assert SHOWN_ERR in screen
    for raw in (b"\x1b", b"\x07", b"\x7f", "\u009b".encode(), "\u202e".encode(),
                "\u2066".encode()):
        assert raw not in screen


def test_a_file_and_a_pipe_get_the_bytes(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    with out.open("wb") as stdout:
        proc = subprocess.run(
            [sys.executable, "-m", "taskd", str(_script(tmp_path))],
            stdout=stdout, stderr=subprocess.PIPE, env=env, timeout=DEADLINE,
        )
    assert b"[s] " + RAW_OUT + b"\n" in out.read_bytes()
    assert RAW_ERR in proc.stderr


def test_the_shell_painter_escapes_c1_and_bidi() -> None:
    text = "a\x1b[2Jb\u009b2Jc\u202ed\u2069e\u0085f\tg\n"
    assert printable(text) == "a\\x1b[2Jb\\x9b2Jc\\u202ed\\u2069e\\x85f\tg\n"
    painted = "".join(piece for _, piece, *_ in paint_fragments([("task", "t\u202e")], False))
    assert painted == "t\\u202e\n"
    assert printable("plain café 別のタスク") == "plain café 別のタスク"
