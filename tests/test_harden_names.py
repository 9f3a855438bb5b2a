"""Task names (issue 14, item 18): NFKC-normalised, look-alikes refused, and the
daemon's own name reserved."""

from __future__ import annotations

import json

import pytest
from conftest import RunTaskd

from taskd.errors import CommandError
from taskd.registry import Registry, TaskRecord

FULL_WIDTH_A = "\uff41"  # ａ
CYRILLIC_A = "\u0430"  # а


@pytest.mark.parametrize("name", ["taskd", f"t{CYRILLIC_A}skd", "\uff54askd"])
def test_the_daemons_own_name_is_reserved(run_taskd: RunTaskd, name: str) -> None:
    result = run_taskd(f"new --name {name}\nshow --all --json\n")
    assert result.status == 1
    assert len(result.errors) == 1, result.err
    assert "is taskd's own name in the log" in result.errors[0]
    assert result.lines == ["[]"]


def test_names_that_look_alike_are_one_name(run_taskd: RunTaskd) -> None:
    result = run_taskd(
        f"new --name a\nnew --name {FULL_WIDTH_A}\nnew --name {CYRILLIC_A}\n"
        f"show --json\ncancel {FULL_WIDTH_A}\n"
    )
    assert result.status == 1
    assert result.errors == [
        "<stdin>:2: error: a task named 'a' is already running",
        f"<stdin>:3: error: task name '{CYRILLIC_A}' looks like 'a', which is running",
    ]
    assert [t["name"] for t in json.loads(result.lines[1])] == ["a"]
    assert result.lines[-1] == "cancelled a"  # found by its full-width spelling


def test_claim_returns_the_normalised_name_and_forgets_finished_lookalikes() -> None:
    registry = Registry()
    assert registry.claim(FULL_WIDTH_A) == "a"
    record = TaskRecord(f"b{CYRILLIC_A}r", "idle", ())
    registry.add(record)
    with pytest.raises(CommandError, match="looks like"):
        registry.claim("bar")
    with pytest.raises(CommandError, match="already running"):
        registry.claim(f"b{CYRILLIC_A}r")
    registry.finish(record)
    assert registry.claim("bar") == "bar"
    with pytest.raises(CommandError, match="too long"):
        registry.claim("\ufb03" * 30)  # ﬃ is three letters once normalised
