"""Group slots the engine holds for a task: `new --group G` with no other option.

That is the usual way through a group of thousands, so the engine takes the slot
itself, at spawn or when one comes free, and gives it back when the task ends. A task
queued for its turn is then only its record and a place in the queue: no asyncio
task, coroutine or context switch until its turn (tests/bench `grouped`). supervise()
and in_group() hold a slot from inside the task instead.
"""

from __future__ import annotations

from .registry import State, TaskRecord
from .supervise import Group, Groups


def admit(groups: Groups, name: str, record: TaskRecord) -> Group | None:
    """A slot of group NAME taken for RECORD now (None), or the group whose queue it
    joins (RECORD is then QUEUED): behind those queued already, as in_group() does."""
    group = groups.group(name)
    if group.queue or not group.has_room():
        record.state = State.QUEUED
        return group
    group.running += 1
    return None


def leave(groups: Groups, name: str, record: TaskRecord) -> None:
    """RECORD, admitted to group NAME, ends: its place in the queue is given up, or its
    slot handed to the next in the queue."""
    if record.state is State.QUEUED:
        groups.drop(groups.group(name), record)
    else:
        groups.release(name)


def queued_detail(groups: Groups, name: str, record: TaskRecord) -> str:
    """`show`'s DETAIL for RECORD while it is queued in group NAME."""
    place = groups.position(record)
    return f"queued ({ordinal(place)} in group {name})" if place else f"queued in group {name}"


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 21st..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
