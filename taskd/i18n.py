"""Messages in the user's language: English, or Japanese with `--lang ja` or a
LC_ALL / LC_MESSAGES / LANG starting with `ja`.

Standard gettext over catalogs shipped in the package (locale/ja/LC_MESSAGES/
taskd.mo). The .mo is compiled from the .po by compile_po() below, not by GNU
msgfmt, so that no tool beyond Python is needed; `python -m taskd.i18n` rewrites it,
and a test checks that the committed .mo is the .po compiled. Messages with values
are templates for str.format: `_("no task named {name}").format(name=...)`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import gettext
    from pathlib import Path

DOMAIN = "taskd"
LOCALEDIR = os.path.join(os.path.dirname(os.path.realpath(__file__)), "locale")
LANGUAGES = ("en", "ja")
_ENV_KEYS = ("LC_ALL", "LC_MESSAGES", "LANG")  # the POSIX order: the first set wins

# None: English, the messages as written. gettext is imported only for another
# language (it and its imports cost a few ms at every start).
_catalog: gettext.NullTranslations | None = None


class UnknownLanguage(ValueError):
    """A --lang (or config `lang`) that taskd has no messages for."""


def choose(lang: str | None, environ: Mapping[str, str]) -> str:
    """The language to speak: LANG if given (en or ja), else from the locale variables."""
    if lang is not None:
        code = lang.strip().lower()
        if code not in LANGUAGES:
            raise UnknownLanguage(
                f"unknown language {lang!r}: taskd speaks {', '.join(LANGUAGES)}"
            )
        return code
    for key in _ENV_KEYS:
        value = environ.get(key, "")
        if value:
            return "ja" if value.lower().startswith("ja") else "en"
    return "en"


def setup(lang: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """Choose the language for `_()`; returns its code. A missing catalog means English."""
    global _catalog
    import os

    code = choose(lang, os.environ if environ is None else environ)
    if code == "en":
        _catalog = None
    else:
        import gettext

        _catalog = gettext.translation(DOMAIN, LOCALEDIR, languages=[code], fallback=True)
    return code


def _(message: str) -> str:
    """MESSAGE in the chosen language (itself when there is no translation)."""
    return message if _catalog is None else _catalog.gettext(message)


# -- .po -> .mo ---------------------------------------------------------------------


def parse_po(text: str) -> dict[str, str]:
    """msgid -> msgstr of a .po file's entries (the header is msgid ""). Fuzzy and
    untranslated entries are left out, as msgfmt does; plural forms and contexts are
    not supported (taskd's catalog has none)."""
    entries: dict[str, str] = {}
    msgid: list[str] | None = None
    msgstr: list[str] | None = None
    current: list[str] | None = None
    fuzzy = False

    def finish() -> None:
        nonlocal msgid, msgstr, fuzzy
        if msgid is not None and msgstr is not None and not fuzzy:
            key, value = "".join(msgid), "".join(msgstr)
            if value:
                entries[key] = value
        msgid = msgstr = None
        fuzzy = False

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if msgstr is not None:
                finish()
            if line.startswith("#,") and "fuzzy" in line:
                fuzzy = True
            continue
        keyword, _, rest = line.partition(" ")
        if keyword == "msgid":
            if msgstr is not None:
                finish()
            msgid = current = [_unquote(rest, number)]
        elif keyword == "msgstr" and msgid is not None and msgstr is None:
            msgstr = current = [_unquote(rest, number)]
        elif line.startswith('"') and current is not None:
            current.append(_unquote(line, number))
        else:
            raise ValueError(f"line {number}: cannot read {line[:40]!r}")
    finish()
    return entries


def _unquote(text: str, number: int) -> str:
    text = text.strip()
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise ValueError(f"line {number}: expected a quoted string, got {text[:40]!r}")
    import ast

    value = ast.literal_eval(text)  # C-style escapes: \n \t \" \\ , as Python reads them
    if not isinstance(value, str):
        raise ValueError(f"line {number}: expected a string")
    return value


def compile_po(text: str) -> bytes:
    """The GNU .mo file for a .po file's TEXT: little-endian, no hash table, the
    messages sorted by msgid (so the output is the same bytes for the same input)."""
    import struct

    entries = sorted(
        (k.encode("utf-8"), v.encode("utf-8")) for k, v in parse_po(text).items()
    )
    count = len(entries)
    originals_at = 7 * 4
    translations_at = originals_at + count * 8
    data_at = translations_at + count * 8
    tables: list[int] = []
    data = bytearray()
    for column in (0, 1):
        for entry in entries:
            tables += [len(entry[column]), data_at + len(data)]
            data += entry[column] + b"\0"
    header = struct.pack("<7I", 0x950412DE, 0, count, originals_at, translations_at, 0, data_at)
    return header + struct.pack(f"<{len(tables)}I", *tables) + bytes(data)


def catalogs() -> list[Path]:
    """Every shipped .po file."""
    from pathlib import Path  # the catalogs' tool, not taskd's start

    return sorted(Path(LOCALEDIR).glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def main() -> int:
    """Rewrite each shipped .mo from its .po."""
    for po in catalogs():
        po.with_suffix(".mo").write_bytes(compile_po(po.read_text(encoding="utf-8")))
        print(f"compiled {po.parent.parent.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
