"""User kinds for asyncio04: an event loop per thread.

Not imported by taskd itself: asyncio04.toml names this module, and taskd finds it
because it sits beside that config file.
"""

from __future__ import annotations

import asyncio
import threading


async def _worker(steps: int) -> str:
    """Runs on a loop of its own, in a thread of its own."""
    for _ in range(steps):
        await asyncio.sleep(0.05)
    return f"thread {threading.current_thread().name}: its own loop ran {steps} sleeps"


async def threadloops(count: str = "3") -> None:
    """Starts COUNT threads, each running asyncio.run() with a loop of its own."""
    n = max(1, min(int(count), 16))
    main_loop = asyncio.get_running_loop()
    # Each result keeps its loop object alive, so that no two loops share an id().
    finished: list[asyncio.Future[tuple[str, asyncio.AbstractEventLoop]]] = []

    def run_one(done: asyncio.Future[tuple[str, asyncio.AbstractEventLoop]]) -> None:
        # asyncio.run makes a new loop for this thread, runs the coroutine, closes it.
        loops: list[asyncio.AbstractEventLoop] = []

        async def main() -> str:
            loops.append(asyncio.get_running_loop())
            return await _worker(3)

        line = asyncio.run(main())
        try:  # hand the result to taskd's loop, the only thread-safe way in
            main_loop.call_soon_threadsafe(done.set_result, (line, loops[0]))
        except RuntimeError:  # taskd's loop has closed meanwhile: nobody to tell
            pass

    for number in range(1, n + 1):
        done: asyncio.Future[tuple[str, asyncio.AbstractEventLoop]] = main_loop.create_future()
        finished.append(done)
        threading.Thread(target=run_one, args=(done,), name=f"loop-{number}", daemon=True).start()
    print(f"started {n} threads, each calls asyncio.run()")
    results = await asyncio.gather(*finished)
    for line, _ in results:
        print(line)
    loops = {id(loop) for _, loop in results}
    mine = id(main_loop) in loops
    print(f"{len(loops)} different loops for {n} threads; taskd's own loop among them: {mine}")
