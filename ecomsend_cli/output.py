"""Rendering: data on stdout, talk on stderr (STYLE §3).

One :class:`Output` owns both consoles. Tables are Rich tables on a terminal
and tab-separated plain text when stdout is piped; JSON is one document on
stdout. Colour is off under ``NO_COLOR`` or when not a terminal (Rich honours
both). Prompts go to stderr and refuse to run without a terminal on stdin.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from .errors import NeedsTerminalError


class Output:
    def __init__(self, *, quiet: bool = False, verbose: bool = False) -> None:
        self.out = Console(soft_wrap=True, highlight=False)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        self.quiet = quiet
        self.verbose = verbose

    # -- talk (stderr) ------------------------------------------------------------

    def _say(self, message: str, style: str | None = None) -> None:
        # Rich drops colours under NO_COLOR but keeps bold/dim; drop every style then.
        self.err.print(message, markup=False, style=None if self.err.no_color else style)

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

    # -- data (stdout) ------------------------------------------------------------

    @property
    def is_terminal(self) -> bool:
        return self.out.is_terminal

    def json(self, data: Any) -> None:
        # Indented for a person at a terminal; compact (and C-encoded, ~10x faster) for scripts.
        indent = 2 if self.is_terminal else None
        sys.stdout.write(json.dumps(data, indent=indent, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def json_array(self, items: Iterable[Any], *, chunk: int = 2000) -> None:
        """A JSON array written as it is produced: 100,000s of rows never sit in memory twice."""
        if self.is_terminal:
            self.json(list(items))
            return
        write = sys.stdout.write
        write("[")
        batch: list[Any] = []
        first = True
        for item in items:
            batch.append(item)
            if len(batch) == chunk:
                write(("" if first else ",") + json.dumps(batch, ensure_ascii=False)[1:-1])
                first, batch = False, []
        if batch:
            write(("" if first else ",") + json.dumps(batch, ensure_ascii=False)[1:-1])
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
        if not console.is_terminal:
            stream = sys.stderr if to_stderr else sys.stdout
            stream.write("\t".join(columns) + "\n")
            for row in rows:
                stream.write("\t".join(_plain(c) for c in row) + "\n")
            stream.flush()
            return
        plain = console.no_color
        table = Table(title=title, title_justify="left", header_style=None if plain else "bold",
                      title_style=None if plain else "italic")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(_plain(c) for c in row))
        console.print(table)

    # -- prompts (stderr) ---------------------------------------------------------

    @staticmethod
    def interactive() -> bool:
        return sys.stdin.isatty()

    def require_terminal(self, what: str) -> None:
        if not self.interactive():
            raise NeedsTerminalError(
                f"{what} needs a confirmation, but stdin is not a terminal",
                hint="pass --yes to confirm from a script (or --dry-run to preview)",
            )

    def confirm(self, question: str, *, what: str) -> bool:
        """``question [y/N]`` on stderr; False unless the answer is y/yes."""
        self.require_terminal(what)
        self.err.print(f"{question} [y/N] ", end="", markup=False)
        answer = sys.stdin.readline()
        return answer.strip().lower() in ("y", "yes")

    def ask(self, question: str, *, what: str, default: str = "") -> str | None:
        """A line of input (None at end of input)."""
        self.require_terminal(what)
        suffix = f" [{default}]" if default else ""
        self.err.print(f"{question}{suffix}: ", end="", markup=False)
        line = sys.stdin.readline()
        if not line:
            return None
        return line.strip() or default


def _plain(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    # Keep one record per line in piped output.
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")
