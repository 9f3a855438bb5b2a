"""Configuration: the packaged defaults, a user file over them, and bad files."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
from conftest import RunTaskd

from taskd.config import Config, defaults_text, load_config
from taskd.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
DOCUMENTED = tomllib.loads((REPO / "config" / "taskd.toml").read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point XDG_CONFIG_HOME at an empty place, so the machine's own file never counts."""
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


def test_defaults_equal_the_documented_file() -> None:
    config = load_config()
    fields = {f.name for f in dataclasses.fields(Config)} - {"sources"}
    assert set(DOCUMENTED) == fields  # every key is documented, none more
    for key, value in DOCUMENTED.items():
        assert getattr(config, key) == value, key
    assert config.sources == ("defaults",)
    # The dataclass's own defaults (used when embedding) agree with the file too.
    assert dataclasses.asdict(Config()) | {"sources": ()} == dataclasses.asdict(config) | {
        "sources": ()
    }
    assert tomllib.loads(defaults_text()) == DOCUMENTED


def test_user_file_via_option_overrides(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('cancel_grace = 3\nprompt = "> "\nhistory = 5\n')
    config = load_config(str(path))
    assert (config.cancel_grace, config.prompt, config.history) == (3.0, "> ", 5)
    assert isinstance(config.cancel_grace, float)  # an integer where a float is expected
    assert config.log_format == DOCUMENTED["log_format"]  # keys left out keep defaults
    assert config.sources == ("defaults", str(path))


def test_user_file_via_xdg_overrides(no_user_config: Path) -> None:
    (no_user_config / "taskd").mkdir(parents=True)
    (no_user_config / "taskd" / "config.toml").write_text('log_format = "json"\n')
    assert load_config().log_format == "json"


def test_option_wins_over_xdg(no_user_config: Path, tmp_path: Path) -> None:
    (no_user_config / "taskd").mkdir(parents=True)
    (no_user_config / "taskd" / "config.toml").write_text('log_format = "json"\n')
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("history = 7\n")
    config = load_config(str(explicit))
    assert (config.log_format, config.history) == ("text", 7)


BAD_FILES = [
    ("syntax", "cancel_grace = = 1\n", r"not valid TOML"),
    ("wrong type", 'cancel_grace = "soon"\n', r"cancel_grace: expected float, got str"),
    ("bool for number", "history = true\n", r"history: expected int, got bool"),
    ("float for int", "history = 1.5\n", r"history: expected int, got float"),
    ("negative grace", "cancel_grace = -1\n", r"cancel_grace: expected a finite number >= 0"),
    ("nan grace", "cancel_grace = nan\n", r"cancel_grace: expected a finite number >= 0"),
    ("inf threshold", "stall_threshold = inf\n", r"stall_threshold: expected a finite"),
    ("negative history", "history = -1\n", r"history: expected a number >= 0"),
    ("bad choice", 'log_format = "xml"\n', r"log_format: expected one of text, json"),
    ("kinds not a table", 'kinds = "x"\n', r"kinds: expected dict, got str"),
    ("kind target", "[kinds]\nfoo = 3\n", r'kinds.foo: expected "module:function"'),
    ("kind no colon", '[kinds]\nfoo = "mod"\n', r'kinds.foo: expected "module:function"'),
    ("huge number", "history = " + "9" * 5000 + "\n", r"not valid TOML \(a number of over 4,300"),
]


@pytest.mark.parametrize(
    ("text", "message"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_bad_file_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(str(path))
    assert str(caught.value).startswith(f"{path}: ")


def test_unknown_key_warns(tmp_path: Path) -> None:
    path = tmp_path / "odd.toml"
    path.write_text("colour = 'never'\nhistory = 3\n")
    with pytest.warns(UserWarning, match=r"odd.toml: unknown key 'colour' ignored"):
        config = load_config(str(path))
    assert config.history == 3


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing.toml: cannot read it: No such file"):
        load_config(str(tmp_path / "missing.toml"))


# -- through the program (bad files, missing files, unknown keys: test_reliability_config.py)


def test_program_reads_xdg_file(run_taskd: RunTaskd, env: dict[str, str]) -> None:
    home = Path(env["XDG_CONFIG_HOME"]) / "taskd"
    home.mkdir(parents=True)
    (home / "config.toml").write_text("cancel_grace = 0.1\n")
    result = run_taskd("new stubborn --name s\nsleep 0\ncancel s\n")
    assert "s did not stop within 0.1s" in result.err


@pytest.mark.parametrize("name", ["a b", "k" * 33, "x*", '""'])
def test_kind_names_must_make_valid_task_names(tmp_path: Path, name: str) -> None:
    from taskd.kinds import load_kinds

    with pytest.raises(ConfigError, match=r"kinds\..*: a kind name has 1 to 32 letters"):
        load_kinds({name.strip('"'): "os.path:join"}, "c.toml")


@pytest.mark.parametrize("name", ["-k", ".k"])
def test_kind_names_start_as_task_names_do(name: str) -> None:
    from taskd.kinds import load_kinds

    with pytest.raises(ConfigError, match=r"a kind name starts with a letter, a digit or '_'"):
        load_kinds({name: "os.path:join"}, "c.toml")


def test_missing_packaged_defaults_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import taskd.config

    def missing() -> str:
        raise FileNotFoundError(2, "No such file or directory", "defaults.toml")

    monkeypatch.setattr(taskd.config, "defaults_text", missing)
    with pytest.raises(ConfigError, match=r"^defaults.toml: cannot read taskd's defaults: "):
        load_config()
