"""User kinds for asyncio10: asyncio.all_tasks(), as the program sees it.

Not imported by taskd itself: asyncio10.toml names this module, and taskd finds it
because it sits beside that config file.
"""

from __future__ import annotations

import asyncio


async def census() -> int:
    """Prints asyncio.all_tasks(): every unfinished task on the loop, taskd's own too."""
    tasks = asyncio.all_tasks()
    print(f"asyncio.all_tasks(): {len(tasks)} tasks")
    for task in sorted(tasks, key=lambda t: t.get_name()):
        coro = task.get_coro()
        what = getattr(coro, "__qualname__", type(coro).__name__)
        print(f"  {task.get_name()}: {what}")
    return len(tasks)
