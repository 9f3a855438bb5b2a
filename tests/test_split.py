"""commands.split: the fast path for plain lines must split exactly as shlex does."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskd.commands import split
from taskd.errors import CommandError

# Blanks shlex splits at, blanks it does not (str.split would), '#', and plain text.
PLAIN = st.text(alphabet=st.sampled_from(list("ab-_.#= \t\r\n\x0b\x0c\x1c\xa0\u2003é")))


@given(PLAIN)
def test_plain_lines_split_as_shlex_does(line: str) -> None:
    assert split(line) == shlex.split(line, comments=False, posix=True)


@given(st.text(alphabet=st.sampled_from(list("ab '\"\\\t#"))))
def test_quoted_lines_split_as_shlex_does(line: str) -> None:
    try:
        expected = shlex.split(line, comments=False, posix=True)
    except ValueError:
        with pytest.raises(CommandError):
            split(line)
    else:
        assert split(line) == expected


def test_quotes_keep_words_together() -> None:
    assert split("new msg 'a b' 2 --name x") == ["new", "msg", "a b", "2", "--name", "x"]
