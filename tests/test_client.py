"""The one-shot clients (send, status, stop), run as real processes against a real
serving process (tests/sockfake.py: the socket server over a stand-in daemon)."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskd import cli
from taskd.sockpath import pid_path

HERE = Path(__file__).parent
TIMEOUT = 60
# As a user runs it: buffered output, so the client's own flushing is what is tested.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}

RUN_CLIENT = """
import sys
from taskd import client
name, path, *rest = sys.argv[1:]
if name == "send":
    strict = rest[:1] == ["--strict"]
    sys.exit(client.send(path, rest[1:] if strict else rest, strict=strict))
sys.exit(getattr(client, name)(path))
"""


class Served:
    def __init__(self, path: str, proc: subprocess.Popen[str]) -> None:
        self.path = path
        self.proc = proc


def _loops() -> list[str]:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return ["asyncio"]
    return ["asyncio", "uvloop"]


@pytest.fixture(params=_loops())
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    """The server on each loop taskd runs on (uvloop's transports differ)."""
    path = str(tmp_path / "run" / "taskd.sock")
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "sockfake.py"), path, request.param],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    try:
        yield Served(path, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(TIMEOUT)
        proc.stdout.close()
        assert proc.stderr is not None
        proc.stderr.close()


def run(name: str, path: str, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", RUN_CLIENT, name, path, *args],
        input=stdin.decode("latin-1"),
        capture_output=True,
        text=True,
        encoding="latin-1",
        timeout=TIMEOUT,
        env=ENV,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_importing_the_client_stays_light() -> None:
    """`taskd send` must not pay for the engine, asyncio or the terminal libraries."""
    out = subprocess.run(
        [sys.executable, "-c", "import sys, taskd.client; print(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    ).stdout.split()
    heavy = {"asyncio", "prompt_toolkit", "aiofiles", "aioconsole", "argparse", "tempfile"}
    heavy |= {"taskd.engine", "taskd.daemon", "taskd.config", "taskd.commands", "taskd.events"}
    assert "taskd.client" in out
    assert sorted(heavy & set(out)) == []


@pytest.mark.parametrize("name", cli.LIGHT)
def test_python_m_taskd_takes_the_light_path_past_cli(name: str, tmp_path: Path) -> None:
    """`python -m taskd send ...` goes straight to climini (__main__.py keeps its own
    list of the light commands: it must be cli's)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "taskd", name, "--socket",
         str(tmp_path / "none.sock"), *(["show"] if name == "send" else [])],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    imported = {
        line.rpartition("|")[2].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "taskd.climini" in imported and "taskd.cli" not in imported
    assert done.returncode == 3, done.stderr[-400:]  # no daemon there


def test_send_words_as_one_line(served: Served) -> None:
    done = run("send", served.path, "echo", "hello", "world")
    assert (done.returncode, done.stdout, done.stderr) == (0, "hello world\n", "")


def test_send_a_failing_line(served: Served) -> None:
    done = run("send", served.path, "fail", "no", "such", "task")
    assert (done.returncode, done.stdout, done.stderr) == (1, "", "taskd: error: no such task\n")


SCRIPT = (
    b"echo one\n"
    b"\n"
    b"# a comment\n"
    b"fail second\n"
    b"echo \xff\n"
    b"echo " + b"x" * 70_000 + b"\n"
    b"lines 2\n"
    b"echo last"  # no final newline
)
SCRIPT_ERRORS = [
    "{src}:4: error: second",
    "{src}:5: error: not valid UTF-8 (byte 0xff at column 6)",
    "{src}:6: error: line too long (70005 bytes; the limit is 65536)",
]


def test_send_stdin_reads_lines_as_script_mode_does(served: Served) -> None:
    done = run("send", served.path, "-", stdin=SCRIPT)
    assert done.stdout.splitlines() == ["one", "line 0", "line 1", "last"]
    assert done.stderr.splitlines() == [e.format(src="<stdin>") for e in SCRIPT_ERRORS]
    assert done.returncode == 1


def test_an_over_long_line_from_stdin_is_refused_in_its_place_and_never_kept(
    served: Served,
) -> None:
    """`head -c 8M /dev/zero | taskd send -` must not hold the line in memory (nor copy
    it at each chunk): only its length is kept, for its error."""
    from taskd import client

    long = b"echo " + b"x" * (8 << 20) + b"\n"
    done = run("send", served.path, "-", stdin=b"echo before\n" + long + b"echo after\n")
    assert done.stdout.splitlines() == ["before", "after"]
    assert done.stderr == f"<stdin>:2: error: line too long ({len(long) - 1} bytes; the limit " \
        "is 65536)\n"
    read, write = os.pipe()
    source = client._Source(read)
    os.set_blocking(write, False)
    kept = 0
    lines: list[object] = []
    pending = long + b"echo after"
    while not source.eof:
        if pending:
            try:
                pending = pending[os.write(write, pending):]
            except BlockingIOError:
                pass
            if not pending:
                os.close(write)
        lines += source.read()
        kept = max(kept, len(source._lines._partial))
    os.close(read)
    assert kept <= client.MAX_LINE + 1  # never more of a line than may be sent
    assert isinstance(lines[0], client._Refused) and lines[1:] == [b"echo after"]


def test_send_file(served: Served, tmp_path: Path) -> None:
    script = tmp_path / "s.tdc"
    script.write_bytes(SCRIPT)
    done = run("send", served.path, str(script))
    assert done.stdout.splitlines() == ["one", "line 0", "line 1", "last"]
    assert done.stderr.splitlines() == [e.format(src=str(script)) for e in SCRIPT_ERRORS]
    assert done.returncode == 1
    good = tmp_path / "good.tdc"
    good.write_text("echo a\necho b\n")
    done = run("send", served.path, str(good))
    assert (done.returncode, done.stdout, done.stderr) == (0, "a\nb\n", "")


def test_send_strict_stops_at_the_first_failure(served: Served) -> None:
    lines = b"echo a\nfail stop here\n" + b"echo never\n" * 300
    done = run("send", served.path, "--strict", "-", stdin=lines)
    assert (done.returncode, done.stdout) == (1, "a\n")
    assert done.stderr == "<stdin>:2: error: stop here\n"
    # a refused line stops it too, in its place
    done = run("send", served.path, "--strict", "-", stdin=b"echo a\necho \xff\necho never\n")
    assert (done.returncode, done.stdout) == (1, "a\n")
    assert done.stderr == "<stdin>:2: error: not valid UTF-8 (byte 0xff at column 6)\n"


def test_send_many_lines_keeps_their_order(served: Served) -> None:
    lines = b"".join(b"sleepy %d\n" % i for i in range(5000))
    done = run("send", served.path, "-", stdin=lines)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [str(i) for i in range(5000)]


def test_send_prints_each_reply_before_the_next_line_comes(served: Served) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_CLIENT, "send", served.path, "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for word in ("first", "second"):
            proc.stdin.write(b"echo %s\n" % word.encode())
            proc.stdin.flush()
            readable, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
            assert readable, f"no reply to {word!r} while the client waits for more input"
            assert proc.stdout.readline() == word.encode() + b"\n"
        proc.stdin.close()
        assert proc.wait(TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        assert proc.stderr is not None
        proc.stderr.close()


def test_send_to_a_reader_that_goes_away(served: Served) -> None:
    """`taskd send - | head -1`: status 1, no traceback, the daemon goes on."""
    cmd = [sys.executable, "-c", RUN_CLIENT, "send", served.path, "-"]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(b"lines 200000\n")
    proc.stdin.close()
    assert proc.stdout.readline() == b"line 0\n"
    proc.stdout.close()
    assert proc.wait(TIMEOUT) == 1
    assert proc.stderr.read() == b""
    proc.stderr.close()
    assert run("send", served.path, "echo", "alive").stdout == "alive\n"


def test_send_when_the_daemon_ends_before_answering(served: Served) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_CLIENT, "send", served.path, "wait"],
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    for _ in range(1000):  # until the stand-in runs that wait (bounded)
        if run("send", served.path, "waiting").stdout == "1\n":
            break
    else:
        raise AssertionError("the wait never started")
    assert run("send", served.path, "end").returncode == 0
    assert proc.wait(TIMEOUT) == 1
    assert proc.stderr is not None
    assert proc.stderr.read() == "taskd: error: the daemon ended before answering\n"
    proc.stderr.close()


def test_no_daemon_is_exit_3_with_how_to_start_one(tmp_path: Path) -> None:
    path = str(tmp_path / "taskd.sock")
    for name, args in (("send", ("show",)), ("status", ()), ("stop", ())):
        done = run(name, path, *args)
        assert done.returncode == 3, name
        assert done.stdout == ""
        assert done.stderr == (
            f"taskd: no daemon is running at {path} "
            f"(start one with: taskd serve --detach --socket {path})\n"
        )
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()
    assert run("send", path, "show").returncode == 3


def test_a_daemon_of_another_version_is_named_with_how_to_end_it(tmp_path: Path) -> None:
    """A daemon started before taskd was upgraded speaks the old protocol: every client
    says so in one line, exit 2, and how to end it (this client cannot stop it)."""
    path = str(tmp_path / "taskd.sock")
    hellos = [b'{"taskd":1,"pid":4242,"version":"0.0.9"}\n'] * 3 + [b'{"taskd":1}\n']
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(len(hellos))

    def old_daemon() -> None:
        for hello in hellos:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(hello)
                conn.recv(1)  # until the client has gone

    thread = threading.Thread(target=old_daemon, daemon=True)
    thread.start()
    try:
        said = f"taskd: error: the daemon at {path} is another version of taskd (protocol 1; "
        for name, args in (("send", ("show",)), ("status", ()), ("stop", ())):
            done = run(name, path, *args)
            assert (done.returncode, done.stdout) == (2, ""), name
            assert done.stderr == said + "this one speaks 2): `kill 4242` ends it as " + (
                "`taskd stop` would\n"
            ), name
        done = run("send", path, "show")  # a hello without a pid
        assert (done.returncode, done.stderr) == (
            2, said + "this one speaks 2): end it with the taskd that started it\n"
        )
        thread.join(TIMEOUT)
        assert not thread.is_alive()
    finally:
        listener.close()


def test_send_without_words_is_a_usage_error(served: Served) -> None:
    done = run("send", served.path)
    assert (done.returncode, done.stderr) == (
        2,
        "taskd: error: send needs a command, '-' or a FILE\n",
    )


def test_status(served: Served) -> None:
    done = run("status", served.path)
    assert done.returncode == 0, done.stderr
    rows = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    assert rows["socket"] == served.path
    assert rows["pid"] == str(served.proc.pid)
    assert rows["tasks"] == "running 2, done 1, failed 0, cancelled 0"
    assert rows["log"] == "-"
    assert rows["uptime"].endswith("s")


def test_stop_ends_the_daemon_and_waits_for_it(served: Served) -> None:
    done = run("stop", served.path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    # stop returned only once the process had gone: it can be reaped at once
    assert served.proc.poll() == 0
    assert not os.path.exists(served.path)
    assert not os.path.exists(pid_path(served.path))
    assert run("status", served.path).returncode == 3
