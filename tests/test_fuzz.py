"""Hostile input, fuzzed: thousands of random and malformed command lines.

Each hypothesis example is a script of a few hundred lines fed to one real taskd
process (a process per line would be too slow; a few examples of many lines each
try thousands of lines in seconds). Every line is built to be bad (or blank), so
that the oracle is simple and independent of taskd's parser: a line that is not
blank and not a comment must yield exactly one error, on stderr, as
`<stdin>:LINE: error: MESSAGE`, printable and on one line; nothing else may appear
there, taskd must not crash or hang, and its exit status is 1.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskd.commands import COMMANDS as TABLE

MAX_LINE = 64 * 1024  # the script front-end's documented limit

COMMANDS = set(TABLE)  # every command word: a fuzzed line must not start with one
ERROR = "<stdin>:{n}: error: "

# Every command with wrong arguments. No task ever exists in these scripts, so any
# name or pattern is an error too.
WRONG = [
    "new nosuchkind", "new tick -1", "new tick abc", "new tick 1 0", "new tick 1 2 3",
    "new timer", "new timer 1 2", "new timer nan", "new timer inf", "new search 2",
    "new search 0", "new msg", "new idle --bogus", "new idle --name", "new --name",
    "new idle --name 'bad name!'", "new idle --name ''", f"new idle --name {'n' * 65}",
    "new fail x", "new blocking -3", "new stubborn extra",
    "show --bogus", "show nosuchtask", "show 'nomatch*'", "show --all nothing",
    "cancel", "cancel nosuchtask", "cancel 'x*'", "cancel --all", "cancel -- --all",
    "wait nosuchtask", "wait --timeout", "wait --timeout abc", "wait --timeout -1",
    "wait 'nomatch?'", "sleep", "sleep -1", "sleep abc", "sleep 1 2", "sleep inf",
    "sleep nan", "log a b", "log --json", "log off --json", "log --bogus",
    "log /nonexistent-taskd-dir/x/y.log", "log /", "kinds extra", "kinds --all",
    "help nosuch", "help a b", "help --x", "end now", "end --force",
]

CONTROL = st.characters(min_codepoint=0, max_codepoint=31).filter(lambda c: c != "\n")


def _not_a_command(raw: bytes) -> bytes:
    """Random text must not start with a real command (`end` would stop the script)."""
    try:
        first = shlex.split(raw.decode())[:1]
    except (UnicodeDecodeError, ValueError):
        return raw
    return b"zz" + raw if first and first[0] in COMMANDS else raw


random_bytes = st.binary(max_size=60).map(lambda b: b.replace(b"\n", b" ")).map(_not_a_command)
random_text = (
    st.text(alphabet=st.characters(blacklist_characters="\n"), max_size=60)
    .map(lambda t: t.encode("utf-8", "surrogatepass"))
    .map(_not_a_command)
)
controls = st.lists(CONTROL, min_size=1, max_size=8).map(
    lambda cs: ("x" + "".join(cs) + "y").encode()
)
bad_names = st.text(alphabet=CONTROL, min_size=1, max_size=5).map(
    lambda t: f"new idle --name {shlex.quote(t)}".encode()
)
quoting = st.sampled_from(["'", '"', "'abc", 'new "idle', "show 'x", "\\", 'help "a\\"']).map(
    str.encode
)
invalid_utf8 = st.sampled_from([b"\xff", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80", b"\x80"]).map(
    lambda b: b"new idle --name " + b
)
huge = st.integers(MAX_LINE + 1, MAX_LINE * 3).map(lambda n: b"y" * n)
wrong_args = st.sampled_from(WRONG).map(str.encode)
blank = st.sampled_from([b"", b"   ", b"\t", b"# comment 'unbalanced", b"  # x \xff", b"\r"])

LINES = st.one_of(
    wrong_args, wrong_args, wrong_args, random_bytes, random_text, controls, bad_names,
    quoting, invalid_utf8, blank, huge,
)


def should_fail(raw: bytes) -> bool:
    """The oracle: every line here is bad unless blank or a comment."""
    if len(raw) > MAX_LINE:
        return True
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    stripped = text.strip()
    if not stripped or stripped.startswith("#"):
        return False
    try:
        return shlex.split(stripped) != []
    except ValueError:
        return True


ENV = dict(os.environ)
ENV["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="taskd-fuzz-")  # no user config


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(LINES, min_size=150, max_size=400))
def test_hostile_lines_each_give_one_numbered_error(lines: list[bytes]) -> None:
    script = b"\n".join(lines) + b"\n"
    proc = subprocess.run(
        [sys.executable, "-m", "taskd"], input=script, capture_output=True, env=ENV,
        timeout=60,
    )
    errors = proc.stderr.decode("utf-8").split("\n")
    assert errors.pop() == ""  # ends with a newline
    expected = [n for n, raw in enumerate(lines, 1) if should_fail(raw)]
    numbers = []
    for line in errors:
        head, sep, message = line.partition(": error: ")
        assert sep and head.startswith("<stdin>:"), line
        numbers.append(int(head.removeprefix("<stdin>:")))
        assert message and message.isprintable(), line
    assert numbers == expected
    assert proc.stdout == b""  # no bad line did anything
    assert proc.returncode == (1 if expected else 0)
