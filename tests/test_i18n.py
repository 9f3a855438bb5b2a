"""Japanese messages: the shipped catalog is complete for kinds and commands, its
.mo is the .po compiled, and the language is chosen by --lang or the locale."""

from __future__ import annotations

import gettext
import io
import string
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskd import i18n
from taskd.commands import COMMANDS
from taskd.kinds import BUILTINS

PO = Path(i18n.LOCALEDIR) / "ja" / "LC_MESSAGES" / "taskd.po"
NARRATION = [
    "scheduled asyncio.create_task({call}); it runs at the loop's next turn",
    "called task.cancel(): a CancelledError is raised at the task's next await ({where})",
    "{name} caught CancelledError and went on: cancellation is a request, not a command",
    "only the await was cancelled; the thread cannot be, and runs on",
    "a step of {name} held the loop {seconds:.1f} s: every other task waited",
    "{name} returned; its task is done",
    "{name} raised {error}; its task failed",
    "{name} waits for a slot of group {group}: no task exists yet; "
    "asyncio.create_task({call}) is called when one frees",
    "a slot of group {group} freed for {name}: scheduled asyncio.create_task({call}); it "
    "runs at the loop's next turn",
    "{name} had no task yet: it left the queue of group {group}, and there was nothing "
    "to cancel",
]


@pytest.fixture(autouse=True)
def english_after() -> Iterator[None]:
    yield
    i18n.setup("en")


def entries() -> dict[str, str]:
    return i18n.parse_po(PO.read_text(encoding="utf-8"))


def test_the_committed_mo_is_the_po_compiled() -> None:
    """If this fails, run `python -m taskd.i18n` after editing the .po."""
    assert PO.with_suffix(".mo").read_bytes() == i18n.compile_po(PO.read_text(encoding="utf-8"))


def test_the_mo_loads_and_translates() -> None:
    with PO.with_suffix(".mo").open("rb") as f:
        catalog = gettext.GNUTranslations(f)
    assert catalog.gettext("no tasks") == "タスクはありません"
    assert catalog.info()["content-type"] == "text/plain; charset=UTF-8"
    assert catalog.gettext("not in the catalog") == "not in the catalog"


def test_ja_translates_and_en_does_not() -> None:
    assert i18n.setup("ja") == "ja"
    assert i18n._("sleeps SECONDS, then is done") == "SECONDS 秒眠って終了する"
    narrated = i18n._("{name} raised {error}; its task failed").format(
        name="fail-1", error="TaskFailure: oops"
    )
    assert narrated == "fail-1 が TaskFailure: oops を送出しました。タスクは失敗です"
    assert i18n.setup("en") == "en"
    assert i18n._("sleeps SECONDS, then is done") == "sleeps SECONDS, then is done"


@pytest.mark.parametrize(
    ("lang", "environ", "expected"),
    [
        ("ja", {}, "ja"),
        ("JA", {"LANG": "en_US.UTF-8"}, "ja"),
        ("en", {"LANG": "ja_JP.UTF-8"}, "en"),
        (None, {"LANG": "ja_JP.UTF-8"}, "ja"),
        (None, {"LC_ALL": "ja_JP.UTF-8", "LANG": "en_US.UTF-8"}, "ja"),
        (None, {"LC_ALL": "C", "LANG": "ja_JP.UTF-8"}, "en"),  # LC_ALL wins, as in POSIX
        (None, {"LC_MESSAGES": "ja_JP", "LANG": "C"}, "ja"),
        (None, {"LC_ALL": "", "LANG": "ja"}, "ja"),  # an empty variable is unset
        (None, {"LANG": "fr_FR.UTF-8"}, "en"),
        (None, {}, "en"),
    ],
)
def test_the_language_is_chosen_by_flag_then_locale(
    lang: str | None, environ: dict[str, str], expected: str
) -> None:
    assert i18n.choose(lang, environ) == expected


def test_an_unknown_language_is_one_line() -> None:
    with pytest.raises(i18n.UnknownLanguage, match=r"^unknown language 'fr': taskd speaks "
                                                   r"en, ja$"):
        i18n.setup("fr", {})


def test_every_kind_command_and_narration_is_translated() -> None:
    translated = entries()
    wanted = [k.summary for k in BUILTINS.values()] + [c.summary for c in COMMANDS.values()]
    missing = [m for m in [*wanted, *NARRATION] if m not in translated]
    assert missing == []


def fields(template: str) -> list[str]:
    return sorted(
        f"{name}:{spec}" for _, name, spec, _ in string.Formatter().parse(template)
        if name is not None
    )


def test_translations_keep_their_placeholders() -> None:
    for msgid, msgstr in entries().items():
        if msgid:
            assert fields(msgstr) == fields(msgid), msgid
            assert "\n" not in msgstr  # every message is one line


def test_parse_po_reads_continuations_and_escapes_and_skips_fuzzy() -> None:
    text = (
        '# a comment\n'
        'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "two "\n"parts"\nmsgstr "二つ"\n"の部分 \\"引用\\""\n\n'
        '#, fuzzy\nmsgid "unsure"\nmsgstr "不確か"\n\n'
        'msgid "untranslated"\nmsgstr ""\n'
    )
    parsed = i18n.parse_po(text)
    assert parsed == {
        "": "Content-Type: text/plain; charset=UTF-8\n",
        "two parts": '二つの部分 "引用"',
    }
    catalog = gettext.GNUTranslations(io.BytesIO(i18n.compile_po(text)))
    assert catalog.gettext("two parts") == '二つの部分 "引用"'
    assert catalog.gettext("unsure") == "unsure"


def test_parse_po_refuses_what_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="line 2: cannot read"):
        i18n.parse_po('msgid "a"\nmsgctxt "b"\n')
    with pytest.raises(ValueError, match="line 1: expected a quoted string"):
        i18n.parse_po("msgid a\n")
