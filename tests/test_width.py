"""Display width: wide characters take two columns, and nothing splits one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from taskd.width import cut, cwidth, ljust, wrap

WIDE = "別のタスク"  # 5 characters, 10 columns


def test_cwidth_counts_columns() -> None:
    assert cwidth(WIDE) == 10
    assert cwidth("task 別の") == 9
    assert cwidth("café") == 4
    assert cwidth("cafe\u0301") == 4  # a combining accent takes no column
    assert cwidth("") == 0
    assert cwidth("a\x07b") == 3  # a control character is never negative


def test_ljust_pads_to_columns() -> None:
    assert ljust(WIDE, 12) == WIDE + "  "
    assert ljust("tick-1", 12) == "tick-1      "
    assert cwidth(ljust("a別b", 7)) == 7
    assert ljust(WIDE, 4) == WIDE  # already wider: unchanged


def test_a_table_column_lines_up() -> None:
    names = [WIDE, "tick-1", "x別"]
    width = max(cwidth(n) for n in names)
    rows = [ljust(n, width) + " | running" for n in names]
    assert {cwidth(row.split(" | ")[0]) for row in rows} == {10}
    assert len({row.index("|") for row in rows}) == 3  # by len() they differ...
    assert len({cwidth(row[: row.index("|")]) for row in rows}) == 1  # ...by columns not


def test_cut_never_splits_a_wide_character() -> None:
    assert cut(WIDE, 10) == WIDE
    assert cut(WIDE, 9) == "別のタス…"
    assert cut(WIDE, 8) == "別のタ…"  # 6 + 1 columns: half of ス would fit, so none of it
    assert cut(WIDE, 7) == "別のタ…"
    assert cut(WIDE, 6) == "別の…"
    assert cut("tick-1 別のタスク", 9) == "tick-1 …"
    assert cut("tick-1 別のタスク", 10) == "tick-1 別…"
    assert cut("abc", 1) == "…"
    assert cut("abc", 0) == ""
    assert cut("abc", 3) == "abc"


def test_wrap_breaks_at_words_by_columns() -> None:
    text = "スタブ tasks 別のタスク catch CancelledError"
    lines = wrap(text, 16)
    # Japanese has no spaces: a line may break between two wide characters, never
    # inside a word of narrow ones.
    assert lines == ["スタブ tasks 別", "のタスク catch", "CancelledError"]
    assert all(cwidth(line) <= 16 for line in lines)
    assert wrap("", 10) == [""]
    assert wrap("a  b", 10) == ["a b"]


def test_wrap_breaks_a_word_wider_than_the_line() -> None:
    assert wrap("別のタスク", 4) == ["別の", "タス", "ク"]
    assert wrap("別のタスク", 3) == ["別", "の", "タ", "ス", "ク"]
    assert wrap("abcdefgh xy", 3) == ["abc", "def", "gh", "xy"]
    assert wrap("別", 1) == ["別"]  # cannot fit: whole, never split


@given(st.text(alphabet="ab 別のタスク\u0301", max_size=40), st.integers(1, 30))
def test_cut_and_wrap_fit_and_keep_every_character(text: str, width: int) -> None:
    short = cut(text, width)
    assert cwidth(short) <= width
    if short != text:
        assert short.endswith("…") and text.startswith(short[:-1])
    lines = wrap(text, width)
    assert all(cwidth(line) <= width for line in lines if cwidth(line[:1]) < 2 or width >= 2)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
