"""Issue 10 through the real program: `serve --detach`, `send`, `status`, `stop`,
`attach` in a pty, `console`, a second user, a second daemon, stale sockets,
signals. (The socket server's hostile clients are in tests/test_sockserver.py.)"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, cast
from unittest.mock import ANY

import pytest
from reliability import DEADLINE, wait_until
from shellkit import plain
from test_shell_pty import ENTER, Terminal

from taskd import protocol

GRACE = 0.5
BOUND = GRACE + 1.0
SLACK = 4.0


class Daemon:
    """A `taskd serve --detach` started for one test, stopped (or killed) after it."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env = env
        self.folder = folder
        self.socket = str(folder / "taskd" / "taskd.sock")
        self.pid: int | None = None

    def taskd(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "taskd", *args]
        return subprocess.run(
            command, input=stdin, capture_output=True, text=True, env=self.env,
            timeout=DEADLINE, stdin=None if stdin is not None else subprocess.DEVNULL,
        )

    def start(self, *extra: str) -> subprocess.CompletedProcess[str]:
        started = self.taskd("serve", "--detach", "--socket", self.socket, *extra)
        if started.returncode == 0:
            self.pid = int(started.stdout.rsplit("pid ", 1)[1].rstrip(")\n"))
        return started

    def send(self, *words: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.taskd("send", "--socket", self.socket, *words, stdin=stdin)

    def alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        with open(f"/proc/{self.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"

    def kill(self) -> None:
        if self.alive():
            assert self.pid is not None
            os.kill(self.pid, signal.SIGKILL)


@pytest.fixture
def daemon(env: dict[str, str]) -> Iterator[Callable[[], Daemon]]:
    made: list[Daemon] = []
    folders: list[str] = []

    def make() -> Daemon:
        folder = tempfile.mkdtemp(prefix="tdsock")  # short: a socket path is <= 107 bytes
        folders.append(folder)
        os.chmod(folder, 0o755)  # reachable by the second user of the uid test
        config = Path(folder) / "cfg" / "taskd" / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text(f"cancel_grace = {GRACE}\n")
        d = Daemon({**env, "XDG_CONFIG_HOME": str(Path(folder) / "cfg")}, Path(folder))
        made.append(d)
        return d

    yield make
    for d in made:
        d.kill()
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def test_serve_detach_send_status_stop(daemon: Callable[[], Daemon]) -> None:
    d = daemon()
    started = d.start()
    assert started.returncode == 0, started.stderr
    assert started.stdout.startswith(f"taskd: serving on {d.socket} (pid ")
    assert d.alive()
    assert stat.S_IMODE(os.stat(d.socket).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(d.socket)).st_mode) == 0o700
    assert d.send("new", "tick", "0.01", "--name", "t").stdout == "started t\n"
    shown = d.send("show", "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)[0]["name"] == "t"
    script = "new timer 9 --name x\nbogus\nshow x\n"
    piped = d.send("-", stdin=script)
    assert piped.returncode == 1
    assert piped.stderr == "<stdin>:2: error: unknown command 'bogus'; 'help' lists the commands\n"
    assert piped.stdout.splitlines()[0] == "started x"
    (d.folder / "cmds.tdc").write_text("cancel x\n")
    from_file = d.send(str(d.folder / "cmds.tdc"))
    assert (from_file.returncode, from_file.stdout) == (0, "cancelled x\n")
    status = d.taskd("status", "--socket", d.socket)
    assert status.returncode == 0 and f"pid: {d.pid}" in status.stdout
    stopped = d.taskd("stop", "--socket", d.socket)
    assert stopped.returncode == 0, stopped.stderr
    assert not d.alive()  # stop returns once the process has gone
    assert not os.path.exists(d.socket) and not os.path.exists(d.socket[:-4] + "pid")
    none = d.send("show")
    assert none.returncode == 3
    assert none.stderr.startswith(f"taskd: no daemon is running at {d.socket} (start one")
    assert d.taskd("status", "--socket", d.socket).returncode == 3


def test_one_daemon_per_socket_and_a_stale_socket_is_replaced(
    daemon: Callable[[], Daemon],
) -> None:
    d = daemon()
    os.makedirs(os.path.dirname(d.socket), mode=0o700)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(d.socket)  # a socket file nobody listens on (a crashed daemon's)
    stale.close()
    assert d.start().returncode == 0
    second = d.taskd("serve", "--socket", d.socket)
    assert second.returncode == 2
    running = f"a taskd is already running at {d.socket} (pid {d.pid})"
    assert second.stderr == f"taskd: error: {running}\n"
    detached = d.taskd("serve", "--detach", "--socket", d.socket)
    assert detached.returncode == 2 and "already running" in detached.stderr


def test_a_daemon_that_cannot_start_says_why_and_leaves_nothing(
    daemon: Callable[[], Daemon],
) -> None:
    """`serve --detach` says `serving` only once the daemon has started: a state file
    another taskd holds, or a log it cannot open, is the typed command's error (exit
    2), and nothing is left listening. A daemon killed with SIGKILL holds nothing."""
    first = daemon()
    assert first.start().returncode == 0
    second = daemon()  # the same XDG_STATE_HOME: the same default state file
    state = os.path.join(second.env["XDG_STATE_HOME"], "taskd", "state.json")
    refused = second.start()
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == (
        f"taskd: error: state file '{state}' is in use by another taskd (pid {first.pid}); "
        "give this one a state file of its own (--state-file PATH) or none (--state-file off)\n"
    )
    assert not os.path.exists(second.socket)
    missing = second.folder / "missing" / "events.log"
    no_log = second.start("--state-file", "off", "--log", str(missing))
    assert no_log.returncode == 2 and no_log.stderr.startswith("taskd: error: cannot log to ")
    assert not os.path.exists(second.socket)
    own = second.start("--state-file", "off")
    assert own.returncode == 0, own.stderr
    assert second.taskd("stop", "--socket", second.socket).returncode == 0
    first.kill()
    wait_until(lambda: not first.alive(), "the killed daemon is still there")
    taken = second.start("--restore")
    assert taken.returncode == 0, taken.stderr


def test_an_unsafe_folder_is_refused(daemon: Callable[[], Daemon]) -> None:
    d = daemon()
    open_folder = d.folder / "open"
    open_folder.mkdir(mode=0o777)
    os.chmod(open_folder, 0o777)
    refused = d.taskd("serve", "--detach", "--socket", str(open_folder / "s.sock"))
    assert refused.returncode == 2
    assert refused.stderr.startswith("taskd: error: ") and "open" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1


SECOND_USER_CLIENT = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print("refused:", exc.strerror)
    sys.exit(0)
s.sendall(json.dumps({"id": 1, "line": "show"}).encode() + b"\\n")
print("answered:", s.recv(65536))
"""


@pytest.mark.skipif(
    shutil.which("setpriv") is None or not os.path.exists("/usr/bin/python3") or os.getuid() != 0,
    reason="needs setpriv, a system python3 and root to become another user",
)
def test_another_user_is_refused(daemon: Callable[[], Daemon]) -> None:
    """A real second user (nobody), with the system's python (the test's own may sit
    in a folder only root can enter), tries the socket: refused, daemon unaffected."""
    d = daemon()
    assert d.start().returncode == 0
    other = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
         "/usr/bin/python3", "-c", SECOND_USER_CLIENT, d.socket],
        capture_output=True, text=True, timeout=DEADLINE, env={"PATH": "/usr/bin:/bin"},
    )
    assert other.stdout == "refused: Permission denied\n", other
    assert d.send("show").returncode == 0  # and the daemon is unaffected


@pytest.mark.parametrize("how", ["end", "SIGTERM", "SIGINT"])
def test_every_ending_removes_the_socket_in_time(
    daemon: Callable[[], Daemon], how: str
) -> None:
    d = daemon()
    assert d.start().returncode == 0
    assert d.send("new", "stubborn", "--name", "s").returncode == 0
    began = time.monotonic()
    if how == "end":
        assert d.send("end").returncode == 0
    else:
        assert d.pid is not None
        os.kill(d.pid, getattr(signal, how))
    wait_until(lambda: not d.alive(), "the daemon did not end")
    assert time.monotonic() - began < BOUND + SLACK
    assert not os.path.exists(d.socket)


def test_attach_detach_attach_again_and_end(
    daemon: Callable[[], Daemon], env: dict[str, str]
) -> None:
    d = daemon()
    assert d.start().returncode == 0
    assert d.send("new", "tick", "0.05", "--name", "ticker").returncode == 0
    term = Terminal({**d.env, "TERM": "xterm-256color"}, f"attach --socket {d.socket}")
    try:
        term.wait_for(r"\[ticker\] tick \d+")  # events arrive above the prompt
        term.send("show" + ENTER)
        term.wait_for(r"ticker\s+tick\s+running")
        term.send("detach" + ENTER)
        status, _ = term.left_as_found()
        assert status == "0"
    finally:
        term.child.close(force=True)
    assert d.alive() and "ticker" in d.send("show").stdout  # the daemon went on
    again = Terminal({**d.env, "TERM": "xterm-256color"}, f"attach --socket {d.socket}")
    other = Terminal({**d.env, "TERM": "xterm-256color"}, f"attach --socket {d.socket}")
    try:
        again.wait_for(r"\[ticker\] tick \d+")
        other.wait_for(r"\[ticker\] tick \d+")
        other.send("kinds" + ENTER)
        other.wait_for(r"stubborn")
        again.send("new timer 0 --name quick" + ENTER)
        again.wait_for(r"started quick")
        other.wait_for(r"quick done after")  # events reach every attached shell...
        assert "started quick" not in plain(other.raw)  # ...a reply only to the asker
        again.send("end" + ENTER)
        for term_ in (again, other):
            term_.wait_for(r"taskd ended; detached")
            assert term_.left_as_found()[0] == "0"
    finally:
        again.child.close(force=True)
        other.child.close(force=True)
    wait_until(lambda: not d.alive(), "the daemon did not end")


def test_the_console_runs_python_in_the_daemon(daemon: Callable[[], Daemon]) -> None:
    d = daemon()
    assert d.start().returncode == 0
    assert d.send("new", "idle", "--name", "i").returncode == 0
    code = (
        "print(sorted(registry.live))\n"
        "t = asyncio.create_task(asyncio.sleep(3600), name='from-console')\n"
        "await asyncio.sleep(0)\n"
        "print(t.get_name(), t.done())\n"
    )
    result = d.taskd("console", "--socket", d.socket, stdin=code)
    assert result.returncode == 0, result.stderr
    assert "['i']" in result.stdout and "from-console False" in result.stdout
    began = time.monotonic()
    assert d.send("end").returncode == 0
    wait_until(lambda: not d.alive(), "the console's task kept the daemon")
    assert time.monotonic() - began < BOUND + SLACK


def test_a_foreground_taskd_can_serve_too(daemon: Callable[[], Daemon]) -> None:
    d = daemon()
    proc = subprocess.Popen(
        [sys.executable, "-m", "taskd", "--serve", "--socket", d.socket],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=d.env,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"new idle --name local\n")
        proc.stdin.flush()
        wait_until(lambda: d.send("show").returncode == 0, "the socket did not come up")
        assert "local" in d.send("show").stdout
        out, err = proc.communicate(timeout=DEADLINE)  # end of input: the end
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.decode().startswith("started local")
    assert not os.path.exists(d.socket)


def test_a_killed_daemon_comes_back_with_serve_restore(daemon: Callable[[], Daemon]) -> None:
    """SIGKILL while tasks run, then `serve --restore`: the same names, kinds and
    arguments run again, and the history is back."""
    d = daemon()
    state = d.folder / "state.json"
    assert d.start("--state-file", str(state)).returncode == 0
    for line in ("new tick 0.2 --name beat", "new timer 3600 --name long --group g",
                 "new timer 0 --name quick", "wait quick"):
        assert d.send(*line.split()).returncode == 0

    def saved() -> bool:
        # `quick` done, not merely not started yet: a write from before it was spawned
        # shows the same live tasks (a loaded CI run killed the daemon at that one).
        try:
            saved = json.loads(state.read_text())
            live, history = saved["live"], saved["history"]
        except (OSError, ValueError, KeyError):
            return False
        return [t["name"] for t in live] == ["beat", "long"] and any(
            t["name"] == "quick" for t in history
        )

    wait_until(saved, "the state file did not show the live tasks and the history")
    d.kill()
    wait_until(lambda: not d.alive(), "SIGKILL did not end it")
    assert d.start("--state-file", str(state), "--restore").returncode == 0
    shown = json.loads(d.send("show", "--all", "--json").stdout)
    by_name = {t["name"]: t for t in shown}
    assert (by_name["beat"]["kind"], by_name["beat"]["args"]) == ("tick", ["0.2"])
    assert (by_name["long"]["kind"], by_name["long"]["group"]) == ("timer", "g")
    assert by_name["beat"]["state"] == "running" and by_name["beat"]["restored"]
    assert by_name["quick"]["state"] == "done"  # the history is back


def test_sighup_reopens_a_served_daemons_log(daemon: Callable[[], Daemon]) -> None:
    d = daemon()
    log = d.folder / "events.log"
    assert d.start("--log", str(log)).returncode == 0
    assert d.send("new", "timer", "0", "--name", "before").returncode == 0
    assert d.send("wait", "before").returncode == 0
    wait_until(lambda: log.exists() and " before done" in log.read_text(), "not logged")
    log.rename(d.folder / "events.log.1")  # logrotate's move
    assert d.pid is not None
    os.kill(d.pid, signal.SIGHUP)
    wait_until(log.exists, "SIGHUP did not reopen the log")
    assert d.alive()  # a hang-up is not an end for a daemon with no terminal
    assert d.send("new", "timer", "0", "--name", "after").returncode == 0
    assert d.send("wait", "after").returncode == 0
    wait_until(lambda: " after done" in log.read_text(), "the new file got nothing")
    assert " after " not in (d.folder / "events.log.1").read_text()


def test_hostile_clients_against_a_real_daemon(daemon: Callable[[], Daemon]) -> None:
    """Garbage, an over-long line, a bad version, a client killed mid-`wait`, 256
    clients at once and a client that never reads: each gets its answer or is cut off,
    and the daemon, its tasks and the other clients go on."""
    d = daemon()
    log = d.folder / "events.log"
    assert d.start("--log", str(log)).returncode == 0
    assert d.send("new", "tick", "0.05", "--name", "beat").returncode == 0

    def connect() -> socket.socket:
        s = socket.socket(socket.AF_UNIX)
        s.connect(d.socket)
        s.settimeout(DEADLINE)
        assert s.makefile("rb").readline().startswith(b'{"taskd":2')
        return s

    def until(f: object, test: Callable[[dict[str, object]], bool]) -> list[dict[str, object]]:
        got = []
        while True:
            raw = f.readline()  # type: ignore[attr-defined]
            assert raw, got
            got.append(json.loads(raw))
            if test(got[-1]):
                return got

    rude = connect()
    replies = rude.makefile("rb")
    rude.sendall(b"\x00\xff not json\n" + b'{"id": 1, "line": "x' + b"x" * (1 << 20) + b'"}\n')
    rude.sendall(b'{"id": 2, "line": "show beat"}\n')
    got = until(replies, lambda g: g.get("id") == 2 and g.get("done") is True)
    assert ["err" in g for g in got[:2]] == [True, True]  # one error each...
    assert any("beat" in str(g.get("out")) for g in got)  # ...and the connection goes on
    rude.sendall(b'{"taskd": 99, "id": 3, "line": "show"}\n')
    until(replies, lambda g: "bye" in g)
    rude.close()

    killed = subprocess.Popen([sys.executable, "-m", "taskd", "send", "--socket", d.socket,
                               "wait", "beat"], env=d.env)
    def waiting_for_reply() -> bool:  # sent, and blocked reading the reply
        with open(f"/proc/{killed.pid}/wchan") as f:
            where = f.read()
        return any(w in where for w in ("poll", "select", "read"))

    wait_until(waiting_for_reply, "the client did not start waiting")
    killed.kill()  # mid-command: its wait is dropped, the task goes on
    killed.wait()

    many = [connect() for _ in range(256)]
    for i, s in enumerate(many):
        s.sendall(json.dumps({"id": i, "line": "status --json"}).encode() + b"\n")
    for s in many:
        assert json.loads(s.makefile("rb").readline())["id"] >= 0
        s.close()

    stalled = connect()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b'{"id": 1, "subscribe": true}\n')
    assert d.send("new", "msg", "y" * 200, "100000", "0", "--name", "flood").returncode == 0
    assert d.send("wait", "flood").returncode == 0  # the daemon never waited for it
    wait_until(lambda: "stopped reading" in log.read_text(), "the cut-off was not logged")
    stalled.close()
    shown = json.loads(d.send("show", "--json").stdout)
    assert [t["name"] for t in shown] == ["beat"] and shown[0]["state"] == "running"
    assert d.alive()
    # The cut-off came from the flood's output, in its context: taskd's own doing
    # all the same, not the task cancelling taskd's connection task.
    assert "tried to cancel" not in log.read_text()


def test_a_reply_larger_than_the_client_buffer_is_not_cut_off(
    daemon: Callable[[], Daemon],
) -> None:
    d = daemon()
    config = Path(d.env["XDG_CONFIG_HOME"]) / "taskd" / "config.toml"
    config.write_text(config.read_text() + "client_buffer = 65536\n")
    assert d.start().returncode == 0
    script = "".join(f"new idle --name w{i}\n" for i in range(2000))
    assert d.send("-", stdin=script).returncode == 0
    shown = d.send("show", "--json")  # about 500 kB on one line, 8 times the bound
    assert shown.returncode == 0, shown.stderr
    assert len(json.loads(shown.stdout)) == 2000


def test_replies_longer_than_a_request_may_be_reach_send_and_attach(
    daemon: Callable[[], Daemon],
) -> None:
    """A request line is bounded at 1 MiB; a reply is not: `show --json` of 5,000 tasks
    is one line of about 1.5 MB, which `send` prints whole and `attach` reads at its
    start (it crashed on it, with a traceback)."""
    d = daemon()
    assert d.start().returncode == 0
    script = "".join(f"new idle --name w{i}\n" for i in range(5000))
    assert d.send("-", stdin=script).returncode == 0
    shown = d.send("show", "--all", "--json")
    assert shown.returncode == 0, shown.stderr
    assert len(shown.stdout) > protocol.MAX_LINE
    assert len(json.loads(shown.stdout)) == 5000
    term = Terminal({**d.env, "TERM": "xterm-256color"}, f"attach --socket {d.socket}")
    try:
        term.wait_for(r"5000 running")  # the toolbar, from the long reply
        term.send("detach" + ENTER)
        assert term.left_as_found()[0] == "0"
    finally:
        term.child.close(force=True)
    assert "Traceback" not in plain(term.raw)


def test_a_cancel_is_the_askers_reply_and_the_other_clients_event(
    daemon: Callable[[], Daemon],
) -> None:
    """Issue 10: every attached client sees every `cancelled`; the one that asked
    has it as its reply, and its event says nothing more."""
    d = daemon()
    assert d.start().returncode == 0
    assert d.send("new", "idle", "--name", "i1").returncode == 0

    def subscribed() -> tuple[socket.socket, IO[bytes]]:
        s = socket.socket(socket.AF_UNIX)
        s.connect(d.socket)
        s.settimeout(DEADLINE)
        f = s.makefile("rb")
        assert f.readline().startswith(b'{"taskd":2')
        s.sendall(b'{"id": 1, "subscribe": true}\n')
        while not json.loads(f.readline()).get("done"):
            pass
        return s, f

    def cancelled_event(f: IO[bytes]) -> dict[str, Any]:
        while True:
            got = json.loads(f.readline())
            if got.get("event", {}).get("name") == "cancelled":
                return cast("dict[str, Any]", got["event"])

    (watcher, watched), (asker, asked) = subscribed(), subscribed()
    asker.sendall(b'{"id": 2, "line": "cancel i1"}\n')
    seen = cancelled_event(watched)
    assert seen["task"] == "i1" and seen["fields"]["by"] == "another client"
    assert seen["text"].startswith("i1 cancelled after ") and seen["text"].endswith(
        " (by another client)"
    )
    own = cancelled_event(asked)
    assert "by" not in own["fields"] and own["text"] is None
    replies = []
    while not (got := json.loads(asked.readline())).get("done"):
        replies.append(got.get("out"))
    assert replies == ["cancelled i1"]
    # The same for `restart`: the others see that it was restarted, and by whom.
    assert d.send("new", "idle", "--name", "r1").returncode == 0
    asker.sendall(b'{"id": 3, "line": "restart r1"}\n')
    while (got := json.loads(watched.readline()).get("event", {})).get("name") != "restarted":
        pass
    assert got["task"] == "r1" and got["text"] == "r1 restarted (by another client)"
    assert d.send("cancel", "r1").returncode == 0  # `taskd send` is another client too
    assert cancelled_event(watched)["fields"] == {"runtime_s": ANY, "by": "another client"}
    # A task cancelled by no client's command (here: at the end) is told without `by`.
    assert d.send("new", "idle", "--name", "i2").returncode == 0
    d.send("end")
    seen = cancelled_event(watched)
    assert seen["task"] == "i2" and seen["fields"]["by"] == ""
    assert seen["text"].startswith("i2 cancelled after ") and "(by" not in seen["text"]
    watcher.close()
    asker.close()


GC_KIND = '''
import gc


async def gcstate():
    print(f"collector {'on' if gc.isenabled() else 'off'}, thresholds {gc.get_threshold()}")
'''


def test_the_collector_is_on_once_a_daemon_runs(
    daemon: Callable[[], Daemon], tmp_path: Path
) -> None:
    """Start-up runs with the collector off (cli._quiet_startup); whatever the daemon
    then runs, in a script or served, runs with it on, at taskd's thresholds."""
    (tmp_path / "gckinds.py").write_text(GC_KIND)
    config = tmp_path / "taskd.toml"  # the kind module is found beside its config
    config.write_text(f'cancel_grace = {GRACE}\n[kinds]\ngcstate = "gckinds:gcstate"\n')
    wanted = "collector on, thresholds (20000, 20, 10)"
    d = daemon()
    script = d.taskd("--config", str(config), stdin="new gcstate --name g\nwait\n")
    assert script.returncode == 0, script.stderr
    assert f"[g] {wanted}" in script.stdout.splitlines()
    log = tmp_path / "served.log"
    assert d.start("--config", str(config), "--log", str(log)).returncode == 0
    assert d.send("new", "gcstate", "--name", "g").returncode == 0
    assert d.send("wait", "g").returncode == 0
    assert d.taskd("stop", "--socket", d.socket).returncode == 0  # the log is closed
    said = [line for line in log.read_text().splitlines() if " g output " in line]
    assert len(said) == 1 and said[0].endswith(wanted), said
