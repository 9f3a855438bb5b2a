"""The control socket's path, its private folder, probing, and the peer check.

The peer check is tested with a real second user: a client run through setpriv as
nobody, against a real listening socket.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskd import sockpath
from taskd.sockpath import SocketError

SETPRIV = shutil.which("setpriv")


def test_resolve_order(tmp_path: Path) -> None:
    env = {"TASKD_SOCKET": str(tmp_path / "env.sock"), "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    arg = str(tmp_path / "arg.sock")
    assert sockpath.resolve(arg, "cfg.sock", env) == arg
    assert sockpath.resolve(None, "/x/cfg.sock", env) == str(tmp_path / "env.sock")
    del env["TASKD_SOCKET"]
    assert sockpath.resolve(None, "/x/cfg.sock", env) == "/x/cfg.sock"
    assert sockpath.resolve(None, "", env) == str(tmp_path / "run" / "taskd" / "taskd.sock")
    del env["XDG_RUNTIME_DIR"]
    expected = os.path.join(tempfile.gettempdir(), f"taskd-{os.getuid()}", "taskd.sock")
    assert sockpath.resolve(None, None, env) == expected


def test_resolve_makes_relative_paths_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert sockpath.resolve("my.sock", None, {}) == str(tmp_path / "my.sock")


def test_pid_and_console_paths_are_beside_the_socket() -> None:
    assert sockpath.pid_path("/r/taskd/taskd.sock") == "/r/taskd/taskd.pid"
    assert sockpath.pid_path("/r/taskd/x.pid") == "/r/taskd/x.pid.pid"
    assert sockpath.pid_path("/r/plain") == "/r/plain.pid"
    assert sockpath.console_path("/r/taskd/taskd.sock") == "/r/taskd/taskd.console"


def test_prepare_folder_creates_it_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        folder = sockpath.prepare_folder(str(tmp_path / "a" / "b" / "taskd.sock"))
    finally:
        os.umask(old)
    assert folder == str(tmp_path / "a" / "b")
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    # An existing private folder is accepted as it is.
    assert sockpath.prepare_folder(str(tmp_path / "a" / "b" / "other.sock")) == folder


@pytest.mark.parametrize("mode", [0o750, 0o705, 0o777, 0o1777])
def test_prepare_folder_refuses_an_open_folder(tmp_path: Path, mode: int) -> None:
    folder = tmp_path / "open"
    folder.mkdir()
    folder.chmod(mode)
    with pytest.raises(SocketError, match="open to other users") as info:
        sockpath.prepare_folder(str(folder / "taskd.sock"))
    assert "\n" not in str(info.value)
    assert stat.S_IMODE(folder.stat().st_mode) == mode  # nothing changed


def test_prepare_folder_refuses_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(SocketError, match="symbolic link"):
        sockpath.prepare_folder(str(tmp_path / "link" / "taskd.sock"))


def test_prepare_folder_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(SocketError, match="not a folder"):
        sockpath.check_folder(str(tmp_path / "file"))


def test_prepare_folder_refuses_another_owner(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)
    with pytest.raises(SocketError, match="belongs to uid 65534"):
        sockpath.prepare_folder(str(folder / "taskd.sock"))


def test_prepare_folder_reports_a_folder_it_cannot_create(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(SocketError, match="cannot create socket folder"):
        sockpath.prepare_folder(str(tmp_path / "file" / "sub" / "taskd.sock"))


def test_probe_absent_stale_live(tmp_path: Path) -> None:
    path = str(tmp_path / "taskd.sock")
    assert sockpath.probe(path) == "absent"
    assert sockpath.probe(str(tmp_path / "no" / "folder.sock")) == "absent"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    try:
        assert sockpath.probe(path) == "live"
    finally:
        server.close()
    assert os.path.exists(path)
    assert sockpath.probe(path) == "stale"  # the file is left, nobody listens


def test_read_pid(tmp_path: Path) -> None:
    path = str(tmp_path / "taskd.sock")
    assert sockpath.read_pid(path) is None
    Path(sockpath.pid_path(path)).write_text("1234\n")
    assert sockpath.read_pid(path) == 1234
    Path(sockpath.pid_path(path)).write_text("garbage")
    assert sockpath.read_pid(path) is None


def test_peer_allowed_for_ourselves() -> None:
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        assert sockpath.peer_allowed(a) == (True, os.geteuid())


# -- a real second user --------------------------------------------------------

AS_NOBODY_CONNECT = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print("connect-failed", exc.errno)
    raise SystemExit(0)
s.settimeout(30)
data = b""
while not data.endswith(b"\\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print("got", data.decode().strip())
"""


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder under the temporary folder that nobody can traverse (tmp_path cannot)."""
    folder = Path(tempfile.mkdtemp(prefix="taskd-test-"))
    folder.chmod(0o711)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


async def _as_nobody(path: str) -> str:
    if SETPRIV is None:
        pytest.skip("setpriv (util-linux) is not installed: cannot run a client as another user")
    if os.geteuid() != 0:
        pytest.skip("running a client as another user needs root")
    proc = await asyncio.create_subprocess_exec(
        SETPRIV, "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
        sys.executable, "-I", "-c", AS_NOBODY_CONNECT, path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd="/",
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode().strip()


async def test_another_user_is_refused_by_the_peer_check(shared_folder: Path) -> None:
    """Even with the folder and socket left open, the server sees uid 65534 and refuses."""
    path = str(shared_folder / "taskd.sock")
    seen: list[tuple[bool, int]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        allowed, uid = sockpath.peer_allowed(writer.get_extra_info("socket"))
        seen.append((allowed, uid))
        writer.write(b"welcome\n" if allowed else b"refused\n")
        writer.close()

    server = await asyncio.start_unix_server(serve, path)
    os.chmod(path, 0o666)
    try:
        assert await _as_nobody(path) == "got refused"
        assert seen == [(False, 65534)]
        # and ourselves, through the same server, are welcome
        reader, writer = await asyncio.open_unix_connection(path)
        assert await reader.readline() == b"welcome\n"
        writer.close()
        await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()


async def test_another_user_cannot_even_reach_a_private_folder(shared_folder: Path) -> None:
    """With the folder as taskd makes it (0700), another user's connect fails outright."""
    path = str(shared_folder / "private" / "taskd.sock")
    sockpath.prepare_folder(path)
    server = await asyncio.start_unix_server(lambda r, w: w.close(), path)
    try:
        assert await _as_nobody(path) == "connect-failed 13"  # EACCES
        assert sockpath.probe(path) == "live"
    finally:
        server.close()
        await server.wait_closed()
