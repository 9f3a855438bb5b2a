"""taskd: a task-manager shell for asyncio, on one run_forever() event loop.

The public names are imported when first used, so that `import taskd.client` (the
one-shot `taskd send`) does not pay for the engine, asyncio or aiofiles.
"""

from __future__ import annotations

import importlib

# The light clients import nothing they do not use: typing costs 5 ms at start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .config import Config, load_config
    from .daemon import Daemon, Frontend
    from .engine import Engine
    from .errors import CommandError, ConfigError, TaskdError
    from .events import Event, EventBus
    from .output import MemoryOutput, Output
    from .registry import Registry, State, TaskRecord

_WHERE = {
    "Config": "config",
    "load_config": "config",
    "Daemon": "daemon",
    "Frontend": "daemon",
    "Engine": "engine",
    "CommandError": "errors",
    "ConfigError": "errors",
    "TaskdError": "errors",
    "Event": "events",
    "EventBus": "events",
    "MemoryOutput": "output",
    "Output": "output",
    "Registry": "registry",
    "State": "registry",
    "TaskRecord": "registry",
}

__all__ = [
    "__version__",
    "Config",
    "load_config",
    "Daemon",
    "Frontend",
    "Engine",
    "CommandError",
    "ConfigError",
    "TaskdError",
    "Event",
    "EventBus",
    "MemoryOutput",
    "Output",
    "Registry",
    "State",
    "TaskRecord",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'taskd' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
