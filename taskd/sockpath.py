"""Where the control socket lives, and who may use it.

Used by both the daemon and the one-shot client, so it imports only light stdlib
modules. The socket's folder is the security boundary: a private 0700 folder owned
by the user, which taskd creates and refuses to use if anyone else could reach it;
SO_PEERCRED on every connection is the second line.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import struct
from collections.abc import Mapping

TYPE_CHECKING = False  # typing is not imported at run time: the light clients' start
if TYPE_CHECKING:
    from typing import Literal

    Probe = Literal["live", "stale", "absent"]

SOCKET_NAME = "taskd.sock"
PROBE_TIMEOUT = 1.0


class SocketError(Exception):
    """The socket or its folder cannot be used; the message is one line for a user."""


def default_path(environ: Mapping[str, str] | None = None) -> str:
    """$XDG_RUNTIME_DIR/taskd/taskd.sock, else taskd-UID in the temporary folder."""
    env = os.environ if environ is None else environ
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "taskd", SOCKET_NAME)
    import tempfile  # only here: the client stays light when XDG_RUNTIME_DIR is set

    return os.path.join(tempfile.gettempdir(), f"taskd-{os.getuid()}", SOCKET_NAME)


def resolve(
    arg: str | None = None,
    config_value: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The socket path: --socket, else $TASKD_SOCKET, else the config's, else the default."""
    env = os.environ if environ is None else environ
    for candidate in (arg, env.get("TASKD_SOCKET"), config_value):
        if candidate:
            return os.path.abspath(os.path.expanduser(candidate))
    return default_path(env)


def pid_path(path: str) -> str:
    """The pid file beside the socket: taskd.sock -> taskd.pid."""
    root, _ = os.path.splitext(path)
    candidate = root + ".pid"
    return candidate if candidate != path else path + ".pid"


def console_path(path: str) -> str:
    """The Python console's socket, in the same private folder: taskd.sock -> taskd.console."""
    root, _ = os.path.splitext(path)
    candidate = root + ".console"
    return candidate if candidate != path else path + ".console"


def check_folder(folder: str) -> None:
    """Refuse a folder another user could reach or swap: SocketError says why."""
    try:
        info = os.lstat(folder)
    except OSError as exc:
        raise SocketError(f"cannot use socket folder {folder}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise SocketError(f"socket folder {folder} is a symbolic link; refusing to use it")
    if not stat.S_ISDIR(info.st_mode):
        raise SocketError(f"socket folder {folder} is not a folder")
    if info.st_uid != os.geteuid():
        raise SocketError(
            f"socket folder {folder} belongs to uid {info.st_uid}, not you (uid {os.geteuid()})"
        )
    if info.st_mode & 0o077:
        raise SocketError(
            f"socket folder {folder} is open to other users (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); make it private: chmod 700 {folder}"
        )


def prepare_folder(path: str) -> str:
    """Create the socket's folder (0700) if missing, check it, and return it."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise SocketError(f"cannot create socket folder {folder}: {exc.strerror}") from None
    else:
        os.chmod(folder, 0o700)  # whatever the umask said
    check_folder(folder)
    return folder


def probe(path: str, timeout: float = PROBE_TIMEOUT) -> Probe:
    """Is a daemon listening at PATH ('live'), was one there ('stale'), or nothing ('absent')?

    A listener too busy to accept in TIMEOUT counts as live: replacing its socket would
    cut it off. A path we may not reach is a SocketError, never a guess.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except (FileNotFoundError, NotADirectoryError):
        return "absent"
    except ConnectionRefusedError:
        return "stale"
    except TimeoutError:
        return "live"
    except OSError as exc:
        if exc.errno == errno.EAGAIN:  # a full backlog: someone is listening
            return "live"
        raise SocketError(f"cannot reach {path}: {exc.strerror}") from None
    finally:
        sock.close()
    return "live"


def read_pid(path: str) -> int | None:
    """The pid written beside the socket at PATH, or None if unreadable."""
    try:
        with open(pid_path(path), encoding="ascii") as f:
            text = f.read(32).strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket (SO_PEERCRED)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", raw)
    return int(uid)


def peer_allowed(sock: socket.socket) -> tuple[bool, int]:
    """Only our own uid, or root, is served; returns (allowed, the peer's uid)."""
    uid = peer_uid(sock)
    return uid in (os.geteuid(), 0), uid
