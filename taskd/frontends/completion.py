"""Tab completion for the shell, read from the live daemon at every key press.

Completions come from the command table: each command says what each of its
arguments is (a task name, a kind, a command, a file, a choice), and this module
only knows where to find each sort of thing: kinds from the engine, task names from
the registry (so a task started a moment ago completes, and one that just ended no
longer does), file names from the file system. Nothing is cached, so nothing can
go stale; the registry is a dict, and reading it for a Tab costs next to nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document

from ..commands import COMMANDS, Command

if TYPE_CHECKING:
    from ..engine import Engine


class TaskdCompleter(Completer):
    """Completes the word before the cursor from what that place of the line takes."""

    def __init__(self, daemon: Engine) -> None:
        self.daemon = daemon
        self._paths = PathCompleter(expanduser=True)

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        before = document.text_before_cursor
        words = before.split()
        word = "" if not words or before[-1].isspace() else words.pop()
        if not words:
            yield from _matching(word, ((c.name, c.summary) for c in COMMANDS.values()))
            return
        command = COMMANDS.get(words[0])
        if command is None:
            return
        if word.startswith("-"):
            yield from _matching(word, ((o, "") for o in _unused_options(command, words)))
            return
        if words[-1] in command.options:
            return  # the value of an option (a new task's name, a timeout): free text
        given = _positional(command, words)
        yield from self._argument(command, words, given, word, complete_event)

    def _argument(
        self,
        command: Command,
        words: list[str],
        before: list[str],
        word: str,
        event: CompleteEvent,
    ) -> Iterator[Completion]:
        param = command.param_at(len(before))
        if param is None:
            return
        if param.kind == "kind":
            kinds = self.daemon.kinds.values()
            yield from _matching(word, ((k.name, k.summary) for k in kinds))
        elif param.kind in ("task", "pattern"):
            registry = self.daemon.registry
            # Live tasks; with --all (show) finished ones too.
            records = registry.records(include_finished="--all" in words)
            yield from _matching(
                word,
                ((r.name, f"{r.kind}, {r.state.value}") for r in records if r.name not in before),
            )
        elif param.kind == "command":
            yield from _matching(word, ((c.name, c.summary) for c in COMMANDS.values()))
        elif param.kind == "choice":
            yield from _matching(word, ((c, "") for c in param.choices))
        elif param.kind == "file":
            yield from _matching(word, ((c, "") for c in param.choices))
            for path in self._paths.get_completions(Document(word), event):
                # Whole words, like every other completion here (PathCompleter
                # gives only what is left to type).
                full = word[: len(word) + path.start_position] + path.text
                yield Completion(full, start_position=-len(word), display=path.display)


def _positional(command: Command, words: list[str]) -> list[str]:
    """The command's arguments so far: WORDS without options and their values."""
    found, skip = [], False
    for word in words[1:]:
        if skip:
            skip = False
        elif word.startswith("--"):
            skip = word in command.options
        else:
            found.append(word)
    return found


def _unused_options(command: Command, words: list[str]) -> list[str]:
    return [o for o in (*command.flags, *command.options) if o not in words]


def _matching(word: str, candidates: Iterable[tuple[str, str]]) -> Iterator[Completion]:
    seen = set()
    for text, meta in candidates:
        if text.startswith(word) and text not in seen:
            seen.add(text)
            yield Completion(text, start_position=-len(word), display_meta=meta)
