"""Task tracebacks without taskd's own frames (issue 14, item 23)."""

from __future__ import annotations

import asyncio
import traceback

import pytest

from taskd.capture import TaskStream
from taskd.context import CURRENT
from taskd.kinds._spec import Arg, Kind
from taskd.tracebacks import format_task_exception


def raised(func: object) -> BaseException:
    try:
        func()  # type: ignore[operator]
    except BaseException as exc:
        return exc
    raise AssertionError("nothing raised")


def users_callback(text: str) -> None:
    raise ValueError(f"user code refused {text!r}")


def through_taskd() -> None:
    """User code called by taskd's capture (two frames of taskd's) raises; the test
    wraps it with `raise ... from`, while handling it raises again."""
    loop = asyncio.new_event_loop()
    try:
        stream = TaskStream(loop, lambda record, line: None, users_callback)
        token = CURRENT.set(None)
        try:
            stream.write("hello")
        except ValueError as exc:
            try:
                raise RuntimeError("wrapped") from exc
            except RuntimeError:
                {}["missing"]  # an error while handling another
        finally:
            CURRENT.reset(token)
    finally:
        loop.close()


def test_taskds_frames_are_hidden_and_the_chain_kept() -> None:
    exc = raised(through_taskd)
    full = "".join(traceback.format_exception(exc))
    shown = format_task_exception(exc)
    assert "taskd/capture.py" in full  # the frames are there to hide...
    assert "taskd/capture.py" not in shown  # ...and hidden
    for part in (
        "ValueError: user code refused 'hello'",
        "The above exception was the direct cause of the following exception:",
        "RuntimeError: wrapped",
        "During handling of the above exception, another exception occurred:",
        "KeyError: 'missing'",
        "in users_callback",
        "in through_taskd",
    ):
        assert part in shown, part
    # Everything but the hidden frames is as traceback prints it.
    kept = [ln for ln in full.splitlines() if ln not in shown.splitlines()]
    assert kept and all(
        "taskd/capture.py" in ln or not ln.startswith('  File "') for ln in kept
    ), kept


def test_the_kinds_own_frames_stay() -> None:
    def convert(label: str, text: str) -> str:
        raise ValueError("bad value")

    kind = Kind("k", lambda: None, "a kind", (Arg("X", convert),))  # type: ignore[arg-type,return-value]
    shown = format_task_exception(raised(lambda: kind.bind(["v"])))
    assert "taskd/kinds/_spec.py" in shown and "in bind" in shown
    assert "ValueError: bad value" in shown


def test_a_traceback_of_only_taskds_frames_is_shown_whole() -> None:
    from taskd.registry import check_name

    exc = raised(lambda: check_name(""))
    # Drop the test's own two frames (raised() and the lambda).
    exc.__traceback__ = exc.__traceback__.tb_next.tb_next  # type: ignore[union-attr]
    shown = format_task_exception(exc)
    assert "taskd/registry.py" in shown and "CommandError" in shown


def test_exception_groups_are_filtered_inside() -> None:
    inner = raised(through_taskd)
    group = raised(lambda: (_ for _ in ()).throw(ExceptionGroup("several", [inner])))  # type: ignore[arg-type]
    shown = format_task_exception(group)
    assert "ExceptionGroup: several" in shown and "KeyError: 'missing'" in shown
    assert "taskd/capture.py" not in shown


@pytest.mark.parametrize("exc", [ValueError("no traceback at all")])
def test_an_exception_never_raised_is_one_line(exc: BaseException) -> None:
    assert format_task_exception(exc) == "ValueError: no traceback at all\n"
