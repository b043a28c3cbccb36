"""Rendering: data on stdout, talk on stderr (STYLE §3).

One :class:`Output` owns both consoles. Tables are Rich tables on a terminal
and tab-separated plain text when stdout is piped; JSON is one document on
stdout. Colour is off under ``NO_COLOR`` or when not a terminal (Rich honours
both). Prompts go to stderr and refuse to run without a terminal on stdin.

Much of what is printed comes from outside: product titles, SKU names and
seller SKUs from TikTok and Shopify, Shopify's error messages, CSV cells. An
escape sequence in a product title could retitle the operator's window, clear
the screen or rewrite a cron log, and a right-to-left override could reorder
what they read. So every method here that writes text passes it through
:func:`terminal_safe`, and Rich never reads it as markup or emoji codes: a
new command that prints through :class:`Output` is safe without thinking of
it. ``--json`` stays exact (it escapes those characters instead); CSV
written for a re-import stays exact too (see :meth:`Output.data_stream`).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .errors import NeedsTerminalError
from .text import terminal_safe

# DEL, C1 and bidi controls, which json.dumps writes raw (C0 it already escapes).
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Colour and style codes (SGR) of a child ecomsend run: they only colour text.
_SGR = re.compile("(\x1b\\[[0-9;]*m)")


def _json_safe(text: str) -> str:
    """JSON text with DEL, C1 and bidi controls as \\u escapes: the same document, inert on a terminal."""
    if text.isascii() and "\x7f" not in text:
        return text
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class Output:
    def __init__(self, *, quiet: bool = False, verbose: bool = False) -> None:
        # No emoji codes: ":fire:" in a product title prints as typed.
        self.out = Console(soft_wrap=True, highlight=False, emoji=False)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
        self.quiet = quiet
        self.verbose = verbose
        # Something went to stdout: a failure then prints no JSON error document after it
        # (``--json`` promises one document).
        self.data_written = False
        # The global options the user gave (``--config``/``--store``, shell-quoted): every
        # `ecomsend …` a message suggests repeats them, so a pasted hint reads the same store.
        self.context = ""

    def in_context(self, text: str) -> str:
        """``text`` with the user's global options in every backticked `ecomsend …` command."""
        if not self.context or "`ecomsend " not in text:
            return text
        return text.replace("`ecomsend ", f"`ecomsend {self.context} ")

    # -- talk (stderr) ------------------------------------------------------------

    def _say(self, message: str, style: str | None = None) -> None:
        # Rich drops colours under NO_COLOR but keeps bold/dim; drop every style then.
        self.err.print(terminal_safe(self.in_context(message)), markup=False,
                       style=None if self.err.no_color else style)

    def info(self, message: str) -> None:
        if not self.quiet:
            self._say(message)

    def note(self, message: str) -> None:
        """A detail shown only with -v."""
        if self.verbose and not self.quiet:
            self._say(message, "dim")

    def success(self, message: str) -> None:
        if not self.quiet:
            self._say(message, "green")

    def warn(self, message: str) -> None:
        self._say(f"warning: {message}", "yellow")

    def error(self, message: str) -> None:
        self._say(f"error: {message}", "bold red")

    def relay(self, text: str) -> None:
        """What a child ``ecomsend`` printed (the demo): its colours kept, nothing else let through."""
        if not self.quiet:
            parts = _SGR.split(text)
            parts[::2] = [terminal_safe(p) for p in parts[::2]]
            self.err.file.write("".join(parts) + "\n")
            self.err.file.flush()

    # -- data (stdout) ------------------------------------------------------------

    @property
    def is_terminal(self) -> bool:
        return self.out.is_terminal

    def json(self, data: Any) -> None:
        # Indented for a person at a terminal; compact (and C-encoded, ~10x faster) for scripts.
        indent = 2 if self.is_terminal else None
        self.data_written = True
        sys.stdout.write(_json_safe(json.dumps(data, indent=indent, ensure_ascii=False)) + "\n")
        sys.stdout.flush()

    def text(self, text: str) -> None:
        """A plain text document on stdout (``config show``), as it is but for :func:`terminal_safe`."""
        self.data_written = True
        sys.stdout.write(terminal_safe(text) + "\n")
        sys.stdout.flush()

    def data_stream(self) -> TextIO:
        """Where to write data that must stay byte-exact when redirected (CSV for a re-import).

        A file or a pipe gets stdout itself: ``list-unlinked --csv > todo.csv``
        and ``links export`` must give back every cell as the store holds it, or
        an import of the file would change links. On a terminal a person reads
        it and nothing re-imports it, so it is made :func:`terminal_safe`.
        """
        self.data_written = True
        return _SafeStream(sys.stdout) if self.is_terminal else sys.stdout

    def json_array(self, items: Iterable[Any], *, chunk: int = 2000) -> None:
        """A JSON array written as it is produced: 100,000s of rows never sit in memory twice."""
        if self.is_terminal:
            self.json(list(items))
            return
        self.data_written = True
        write = sys.stdout.write
        write("[")
        batch: list[Any] = []
        first = True
        for item in items:
            batch.append(item)
            if len(batch) == chunk:
                write(("" if first else ",") + _json_safe(json.dumps(batch, ensure_ascii=False)[1:-1]))
                first, batch = False, []
        if batch:
            write(("" if first else ",") + _json_safe(json.dumps(batch, ensure_ascii=False)[1:-1]))
        write("]\n")
        sys.stdout.flush()

    def table(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        title: str | None = None,
        to_stderr: bool = False,
    ) -> None:
        """A Rich table on a terminal; tab-separated lines with a header row when piped.

        Piped, rows are written as they come, so a generator of 100,000s of rows
        never sits in memory.
        """
        console = self.err if to_stderr else self.out
        self.data_written = self.data_written or not to_stderr
        if not console.is_terminal:
            stream = sys.stderr if to_stderr else sys.stdout
            stream.write("\t".join(_plain(c) for c in columns) + "\n")
            for row in rows:
                stream.write("\t".join(_plain(c) for c in row) + "\n")
            stream.flush()
            return
        plain = console.no_color
        # Text objects, never str: Rich would read "[red]" or "[link=…]" in a cell as markup.
        table = Table(title=_cell(title) if title is not None else None, title_justify="left",
                      header_style=None if plain else "bold",
                      title_style=None if plain else "italic")
        for column in columns:
            table.add_column(_cell(column), overflow="fold")
        for row in rows:
            table.add_row(*(_cell(c) for c in row))
        console.print(table)

    # -- prompts (stderr) ---------------------------------------------------------

    @staticmethod
    def interactive() -> bool:
        return sys.stdin.isatty()

    def require_terminal(self, what: str, hint: str | None = None) -> None:
        """Refuse to prompt without a terminal; ``hint`` names the command that works instead."""
        if not self.interactive():
            raise NeedsTerminalError(
                f"{what} needs a confirmation, but stdin is not a terminal",
                hint=hint or "pass --yes to confirm from a script",
            )

    def confirm(self, question: str, *, what: str, hint: str | None = None) -> bool:
        """``question [y/N]`` on stderr; False unless the answer is y/yes."""
        self.require_terminal(what, hint)
        self.err.print(f"{terminal_safe(question)} [y/N] ", end="", markup=False)
        answer = sys.stdin.readline()
        return answer.strip().lower() in ("y", "yes")

    def ask(self, question: str, *, what: str, default: str = "") -> str | None:
        """A line of input (None at end of input)."""
        self.require_terminal(what)
        suffix = f" [{default}]" if default else ""
        self.err.print(terminal_safe(f"{question}{suffix}: "), end="", markup=False)
        line = sys.stdin.readline()
        if not line:
            return None
        return line.strip() or default


def _plain(value: Any) -> str:
    """A cell of piped, tab-separated output: one line, nothing a terminal would act on."""
    if value is None:
        return ""
    text = str(value)
    # Keep one record per line in piped output.
    return terminal_safe(text.replace("\t", " ").replace("\r", " ").replace("\n", " "))


def _cell(value: Any) -> Text:
    """A cell of a Rich table: literal text (no markup), line breaks kept."""
    return Text("" if value is None else terminal_safe(str(value)))


class _SafeStream:
    """A text stream that writes through :func:`terminal_safe` (for csv.writer on a terminal)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(terminal_safe(text))

    def flush(self) -> None:
        self.stream.flush()
