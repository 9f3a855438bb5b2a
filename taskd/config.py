"""Configuration: the packaged defaults, overlaid by at most one user file.

The defaults live in one file, `config/taskd.toml` in the source tree, which the
build copies into the package as `defaults.toml`; the installed program reads that
copy, so what the documented file says is what the program does.
"""

from __future__ import annotations

import os
import tomllib
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import ConfigError

_CHOICES = {
    "color": ("auto", "always", "never"),
    "log_format": ("text", "json"),
    "loop": ("asyncio", "uvloop"),
    "clock": ("real", "virtual"),
}

# Upper bounds, in seconds: an hour of grace or of stall is already more than anyone
# waits for, and larger values overflow the waits that use them (threading's
# TIMEOUT_MAX: a stall_threshold of 1e11 killed the watchdog thread).
_LIMITS = {"cancel_grace": 3600.0, "stall_threshold": 3600.0}
MAX_CONFIG = 1 << 20  # characters of a config file


@dataclass(frozen=True)
class Config:
    """Every setting taskd reads, already checked."""

    prompt: str = "taskd> "
    cancel_grace: float = 2.0
    history: int = 1000
    color: str = "auto"
    history_file: str = ""
    log_file: str = ""
    log_format: str = "text"
    stall_threshold: float = 0.5
    loop: str = "asyncio"
    state_file: str = ""
    restore: bool = False
    socket: str = ""
    serve: bool = False
    client_buffer: int = 4 << 20
    explain: bool = False
    workers: int = 32
    lang: str = ""
    clock: str = "real"
    timestamps: bool = False
    kinds: dict[str, str] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Here, so that a config file and a command-line override (dataclasses.replace)
        # are both checked: uvloop's loop is C code the virtual clock cannot wrap.
        if self.clock == "virtual" and self.loop == "uvloop":
            raise ConfigError(
                "clock", 'the virtual clock needs loop = "asyncio" (uvloop cannot have it)'
            )


def defaults_text() -> str:
    """The text of the packaged defaults (the source tree's copy when not installed)."""
    # Beside this module, not through importlib.resources (8 ms of imports at every
    # start): taskd is installed as files, never run from a zip. os.path, not pathlib:
    # nothing at start-up needs pathlib (and its imports, about 2.5 ms) otherwise.
    here = os.path.dirname(os.path.realpath(__file__))
    packaged = os.path.join(here, "defaults.toml")
    if not os.path.isfile(packaged):
        packaged = os.path.join(os.path.dirname(here), "config", "taskd.toml")  # source tree
    with open(packaged, encoding="utf-8") as f:
        return f.read()


def user_config_path(explicit: str | None) -> str | None:
    """The user's file: --config PATH, else the XDG location if that file exists."""
    if explicit is not None:
        return explicit
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    candidate = os.path.join(base, "taskd", "config.toml")
    return candidate if os.path.isfile(candidate) else None


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, f"not valid TOML ({exc})") from None
    except ValueError:  # int()'s own limit, which tomllib meets with no line to give
        raise ConfigError(source, "not valid TOML (a number of over 4,300 digits)") from None


def _check(values: dict[str, Any], source: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """Keep the keys taskd knows, each of the default's type; warn about the others."""
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if key not in defaults:
            warnings.warn(f"{source}: unknown key {key!r} ignored", UserWarning, stacklevel=2)
            continue
        expected = type(defaults[key])
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or isinstance(value, bool) != isinstance(
            defaults[key], bool
        ):
            raise ConfigError(
                source, f"expected {expected.__name__}, got {type(value).__name__}", key
            )
        if key == "kinds":
            for name, target in value.items():
                if not isinstance(target, str) or ":" not in target:
                    raise ConfigError(source, 'expected "module:function"', f"kinds.{name}")
        elif key in _CHOICES and value not in _CHOICES[key]:
            raise ConfigError(source, f"expected one of {', '.join(_CHOICES[key])}", key)
        elif key in _LIMITS and not 0 <= value <= _LIMITS[key]:
            limit = _LIMITS[key]
            raise ConfigError(source, f"expected a finite number >= 0 and <= {limit:g}", key)
        elif key == "client_buffer" and not 64 * 1024 <= value <= 1 << 30:
            raise ConfigError(source, "expected bytes from 65536 to 1073741824", key)
        elif key == "history" and value < 0:
            raise ConfigError(source, "expected a number >= 0", key)
        elif key == "workers" and not 1 <= value <= 1024:
            raise ConfigError(source, "expected a number from 1 to 1024", key)
        elif key == "lang" and value not in ("", "en", "ja"):
            raise ConfigError(source, 'expected "", "en" or "ja"', key)
        checked[key] = value
    return checked


def load_config(explicit: str | None = None) -> Config:
    """Read the defaults and the user's file; raise ConfigError naming file and key."""
    try:
        text = defaults_text()
    except OSError as exc:  # a broken install: say so in one line, not a traceback
        raise ConfigError("defaults.toml", f"cannot read taskd's defaults: {exc}") from None
    defaults = _parse(text, "defaults.toml")
    values = dict(defaults)
    sources = ["defaults"]
    path = user_config_path(explicit)
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read(MAX_CONFIG + 1)  # bounded: --config /dev/zero, a wrong file
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(path, f"cannot read it: {reason}") from None
        if len(text) > MAX_CONFIG:
            raise ConfigError(path, f"over {MAX_CONFIG:,} characters: not a taskd config")
        user = _check(_parse(text, path), path, defaults)
        if "kinds" in user:
            user["kinds"] = {**defaults.get("kinds", {}), **user["kinds"]}
        values.update(user)
        sources.append(path)
    return Config(**values, sources=tuple(sources))


def default_state_file() -> str:
    """`$XDG_STATE_HOME/taskd/state.json` (~/.local/state/taskd/state.json)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "taskd", "state.json")


def with_state_options(
    config: Config,
    state_file: str | None = None,
    restore: bool | None = None,
    serving: bool = False,
) -> Config:
    """CONFIG with the command line's --state-file PATH and --restore applied; a
    served daemon (`taskd serve`) keeps its state in default_state_file() unless
    the config or the command line names another file ('off': none)."""
    changes: dict[str, object] = {}
    if state_file is not None:
        changes["state_file"] = state_file
    elif serving and not config.state_file:
        changes["state_file"] = default_state_file()
    if changes.get("state_file", config.state_file) == "off":
        changes["state_file"] = ""
    if restore is not None:
        changes["restore"] = restore
    return replace(config, **changes)  # type: ignore[arg-type]
