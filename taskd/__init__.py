"""taskd: a task-manager shell for asyncio, on one run_forever() event loop."""

__version__ = "0.1.0"

from .config import Config, load_config
from .daemon import Daemon, Frontend
from .engine import Engine
from .errors import CommandError, ConfigError, TaskdError
from .events import Event, EventBus
from .output import MemoryOutput, Output
from .registry import Registry, State, TaskRecord

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
