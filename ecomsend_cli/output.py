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

Rich is imported when a console is first needed. Writing to a file or a
pipe (a cron log), a line of talk is what Rich would print there, the text
and a newline, so it is written as such: a ``sync-orders`` run with nothing to
do then never imports Rich (some 25 ms of its start-up).
"""

from __future__ import annotations

import builtins
import os
import re
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TextIO

from .bulk import paused_gc
from .errors import NeedsTerminalError
from .models import VARIANT_GID_PREFIX
from .text import terminal_safe

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

# DEL, C1 and bidi controls, which JSON encoders write raw (C0 they escape), as
# their UTF-8 bytes (UTF-8 never starts a character inside another's bytes, so
# the pattern cannot match across two characters).
_JSON_UNSAFE = re.compile(b"\x7f|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]|\xe2\x81[\xa6-\xa9]")
# Colour and style codes (SGR) of a child ecomsend run: they only colour text.
_SGR = re.compile("(\x1b\\[[0-9;]*m)")
# Variables with which Rich may take a file or a pipe for a terminal (or a notebook).
_RICH_TERMINAL_VARIABLES = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JUPYTER_COLUMNS", "JUPYTER_LINES")


def _plainly_not_a_terminal(stream: TextIO) -> bool:
    """True when Rich, too, would write to ``stream`` as to a file: it is not a terminal and
    nothing tells Rich otherwise. False when in doubt (then Rich decides)."""
    if any(name in os.environ for name in _RICH_TERMINAL_VARIABLES) or hasattr(builtins, "get_ipython"):
        return False
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return False


def _json_safe(data: bytes) -> bytes:
    """UTF-8 JSON with DEL, C1 and bidi controls as \\u escapes: the same document, inert on a terminal."""
    if data.isascii() and b"\x7f" not in data:
        return data
    return _JSON_UNSAFE.sub(lambda m: b"\\u%04x" % ord(m.group().decode()), data)


def _tuple_as_list(value: Any) -> Any:
    """orjson's hook for what it does not encode itself: named tuples, as json.dumps writes them."""
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode_json(data: Any, *, indent: bool = False) -> bytes:
    """``data`` as UTF-8 JSON: the document ``json.dumps(data, ensure_ascii=False)`` writes.

    orjson (issue 13): the listings write 100,000s of rows, and encoding them
    took ~0.9 s of a 1.7 s ``list-unlinked --json`` with the json module;
    orjson takes 0.07 s. Compact output has no space after ``,`` and ``:``;
    ``indent`` gives json.dumps' ``indent=2`` layout exactly. Keys that are
    not strings (rare: orjson refuses them unless asked, and asking costs 3x)
    are written as json.dumps writes them.
    """
    import orjson

    option = orjson.OPT_INDENT_2 if indent else 0
    try:
        return orjson.dumps(data, default=_tuple_as_list, option=option)
    except TypeError:
        return orjson.dumps(data, default=_tuple_as_list, option=option | orjson.OPT_NON_STR_KEYS)


ID, VARIANT, TITLE, TEXT = "id", "variant", "title", "text"
# A word longer than this in a TEXT cell may fold, unless it looks like an id (those never do).
_WORD = 20
_ID_LIKE = re.compile(r"\d{5}|gid://")


class Column(NamedTuple):
    """A table column: how its cells give way when the terminal is narrow.

    ``kind``: ID never wraps (ids, GIDs, order names, SKU codes, times, counts);
    VARIANT is an ID whose variant GIDs show as their number (tables only, never
    ``--json`` or piped output); TITLE stays on one line and shortens with "…";
    TEXT wraps between words, keeping id-like words whole. ``drop``: 0 keeps the
    column always; otherwise, when even the narrowest layout does not fit, the
    column with the highest ``drop`` goes first, and a footnote names it.
    """

    header: str
    kind: str = TEXT
    drop: int = 0


def short_variant_id(value: Any) -> str:
    """``gid://shopify/ProductVariant/123`` as ``123`` (what `link` accepts); anything else unchanged."""
    text = "" if value is None else str(value)
    return text.removeprefix(VARIANT_GID_PREFIX) if text.startswith(VARIANT_GID_PREFIX) else text


class Output:
    def __init__(self, *, quiet: bool = False, verbose: bool = False) -> None:
        self._out: Console | None = None
        self._err: Console | None = None
        self.quiet = quiet
        self.verbose = verbose
        # Something went to stdout: a failure then prints no JSON error document after it
        # (``--json`` promises one document).
        self.data_written = False
        # The global options the user gave (``--config``/``--store``, shell-quoted): every
        # `ecomsend …` a message suggests repeats them, so a pasted hint reads the same store.
        self.context = ""

    def in_context(self, text: str) -> str:
        """``text`` with the user's global options in every backticked `ecomsend …` command
        (once: a text that has them already is unchanged)."""
        if not self.context or "`ecomsend " not in text:
            return text
        given = f"`ecomsend {self.context} "
        return text.replace(given, "`ecomsend ").replace("`ecomsend ", given)

    @property
    def out(self) -> Console:
        """The Rich console of stdout (made on first use)."""
        if self._out is None:
            from rich.console import Console

            # No emoji codes: ":fire:" in a product title prints as typed.
            self._out = Console(soft_wrap=True, highlight=False, emoji=False)
        return self._out

    @property
    def err(self) -> Console:
        """The Rich console of stderr (made on first use)."""
        if self._err is None:
            from rich.console import Console

            self._err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
        return self._err

    @property
    def err_is_terminal(self) -> bool:
        """Whether stderr is a terminal, as Rich sees it (without Rich when plainly not)."""
        if self._err is None and _plainly_not_a_terminal(sys.stderr):
            return False
        return self.err.is_terminal

    @property
    def err_is_interactive(self) -> bool:
        """Whether stderr is a terminal a person watches, as Rich sees it (without Rich when plainly not)."""
        if self._err is None and _plainly_not_a_terminal(sys.stderr):
            return False
        return self.err.is_interactive

    # -- talk (stderr) ------------------------------------------------------------

    def _say(self, message: str, style: str | None = None) -> None:
        text = terminal_safe(self.in_context(message))
        if self._err is None and "\t" not in text and _plainly_not_a_terminal(sys.stderr):
            # What Rich prints to a file or a pipe: the text, unstyled, unwrapped (soft_wrap),
            # and a newline (Rich only changes tabs, to spaces). tests/test_output_plain.py holds it to that.
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
            return
        # Rich drops colours under NO_COLOR but keeps bold/dim; drop every style then.
        self.err.print(text, markup=False, style=None if self.err.no_color else style)

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
        """Whether stdout is a terminal, as Rich sees it (without Rich when plainly not)."""
        if self._out is None and _plainly_not_a_terminal(sys.stdout):
            return False
        return self.out.is_terminal

    def json(self, data: Any) -> None:
        # Indented for a person at a terminal; compact for scripts.
        self.data_written = True
        self._write_utf8(_json_safe(encode_json(data, indent=self.is_terminal)) + b"\n")

    @staticmethod
    def _write_utf8(data: bytes) -> None:
        """Encoded text to stdout: straight to its bytes when it is UTF-8 (no decode, no copy)."""
        stream = sys.stdout
        buffer = getattr(stream, "buffer", None)
        if buffer is not None and (stream.encoding or "").lower().replace("-", "") == "utf8":
            stream.flush()
            buffer.write(data)
            buffer.flush()
        else:
            stream.write(data.decode())
            stream.flush()

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
        write = self._write_utf8
        batch: list[Any] = []
        start = b"["
        with paused_gc():
            for item in items:
                batch.append(item)
                if len(batch) == chunk:
                    write(start + _json_safe(encode_json(batch)[1:-1]))
                    start, batch = b",", []
            if batch:
                write(start + _json_safe(encode_json(batch)[1:-1]))
                start = b","
        write(b"[]\n" if start == b"[" else b"]\n")

    def table(
        self,
        columns: Sequence[str | Column],
        rows: Iterable[Sequence[Any]],
        *,
        title: str | None = None,
        to_stderr: bool = False,
        hidden_hint: str = "widen the terminal or use --json",
    ) -> None:
        """A Rich table on a terminal; tab-separated lines with a header row when piped.

        Piped, rows are written as they come, so a generator of 100,000s of rows
        never sits in memory, and every cell is whole (full GIDs). With
        :class:`Column` specs a terminal table fits its width without breaking
        an id: see :func:`_fit`.
        """
        self.data_written = self.data_written or not to_stderr
        if not (self.err_is_terminal if to_stderr else self.is_terminal):
            stream = sys.stderr if to_stderr else sys.stdout
            stream.write(_plain_line([c.header if isinstance(c, Column) else c for c in columns]) + "\n")
            # Hints in cells (doctor's Fix, a reason's command) carry the user's --config/--store
            # too: checked once per line, as few lines hold one. The options go into the cells
            # before they are made plain: a path may hold a tab or a newline.
            context = self.in_context if self.context else None
            with paused_gc():
                batch: list[str] = []
                for row in rows:
                    line = _plain_line(row)
                    if context and "`ecomsend " in line:
                        line = _plain_line([context(c) if type(c) is str else c for c in row])
                    batch.append(line)
                    if len(batch) == 1000:
                        batch.append("")
                        stream.write("\n".join(batch))
                        batch = []
                if batch:
                    batch.append("")
                    stream.write("\n".join(batch))
            stream.flush()
            return
        from rich.table import Table

        console = self.err if to_stderr else self.out
        if self.context:  # a terminal shows a few hundred rows at most: each cell checked
            rows = ([self.in_context(c) if type(c) is str else c for c in row] for row in rows)
        if any(isinstance(c, Column) for c in columns):
            self._fitted_table(console, [c if isinstance(c, Column) else Column(c) for c in columns],
                               rows, title=title, hidden_hint=hidden_hint)
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

    def _fitted_table(self, console: Console, columns: list[Column], rows: Iterable[Sequence[Any]], *,
                      title: str | None, hidden_hint: str) -> None:
        from rich.table import Table
        from rich.text import Text

        cells = [[_cell_text(col, value) for col, value in zip(columns, row, strict=True)] for row in rows]
        width = console.width
        keep, widths = _fit(columns, cells, width)
        plain = console.no_color
        table = Table(title=_cell(title) if title is not None else None, title_justify="left",
                      header_style=None if plain else "bold", title_style=None if plain else "italic")
        for i in keep:
            col = columns[i]
            one_line = col.kind != TEXT
            table.add_column(Text(terminal_safe(col.header), no_wrap=False, overflow="fold"),
                             no_wrap=one_line, overflow="ellipsis" if col.kind == TITLE else "fold",
                             width=widths[i] if widths else None,
                             min_width=widths[i] if widths and col.kind in (ID, VARIANT) else None)
        for row in cells:
            table.add_row(*(_rich_cell(columns[i], row[i]) for i in keep))
        total = sum(widths[i] for i in keep) + 3 * len(keep) + 1 if widths else None
        # Too narrow even for the ids alone: wider than the terminal (it wraps the lines) beats a broken id.
        console.print(table, width=total if total and total > width else None)
        hidden = [columns[i].header for i in range(len(columns)) if i not in keep]
        if hidden:
            n = len(hidden)
            self.info(f"{n} column{'s' if n > 1 else ''} hidden at {width} columns: "
                      f"{', '.join(hidden)}; {hidden_hint}")

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


def _cell_text(column: Column, value: Any) -> str:
    if value is None:
        return ""
    # In a table the number stands for the GID, in an id column and in text alike (piped: whole GIDs).
    return terminal_safe(str(value).replace(VARIANT_GID_PREFIX, ""))


def _rich_cell(column: Column, text: str) -> Text:
    from rich.text import Text

    if column.kind == TEXT:
        return Text(text, overflow="fold")
    return Text(text, no_wrap=True, overflow="ellipsis" if column.kind == TITLE else "fold")


def _fit(columns: Sequence[Column], cells: list[list[str]], width: int) -> tuple[list[int], list[int] | None]:
    """Which columns to show and how wide (None: as wide as their content), for ``width`` cells.

    Each column has a natural width (its longest line) and a minimum: an ID the
    natural width (an id never breaks), a TITLE 10 cells, a TEXT its longest
    word (id-like words whole, others up to 20 cells), every column its
    longest header word. If the natural widths do not fit, columns are dropped
    (highest ``drop`` first) until the minimums fit, and the space left is
    shared in proportion to what each column still wants.
    """
    from rich.cells import cell_len

    n = len(columns)
    natural = [max((len(line) for c in [col.header] for line in c.split("\n")), default=0) for col in columns]
    minimum = [max((len(w) for w in col.header.split()), default=1) for col in columns]
    for row in cells:
        for i, text in enumerate(row):
            lines = text.split("\n")
            natural[i] = max(natural[i], *(cell_len(line) for line in lines))
            kind = columns[i].kind
            if kind in (ID, VARIANT):
                minimum[i] = max(minimum[i], *(cell_len(line) for line in lines))
            elif kind == TEXT:
                words = text.split()
                if words:
                    minimum[i] = max(minimum[i], *(cell_len(w) if _ID_LIKE.search(w) else min(cell_len(w), _WORD)
                                                   for w in words))
    for i, col in enumerate(columns):
        if col.kind == TITLE:
            minimum[i] = max(minimum[i], 10)
        minimum[i] = min(max(minimum[i], 1), max(natural[i], 1)) if col.kind != ID else max(minimum[i], 1)
    keep = list(range(n))

    def room() -> int:
        return width - (3 * len(keep) + 1)  # a border per column and one more, one space each side

    if sum(natural[i] for i in keep) <= room():
        return keep, None
    droppable = sorted((i for i in keep if columns[i].drop), key=lambda i: -columns[i].drop)
    while sum(minimum[i] for i in keep) > room() and droppable:
        keep.remove(droppable.pop(0))
    widths = list(natural)
    if sum(natural[i] for i in keep) <= room():
        return keep, widths
    spare = room() - sum(minimum[i] for i in keep)
    for i in keep:
        widths[i] = minimum[i]
    want = {i: natural[i] - minimum[i] for i in keep if natural[i] > minimum[i]}
    if spare > 0 and want:
        total = sum(want.values())
        for i, w in want.items():
            widths[i] += spare * w // total
        left = room() - sum(widths[i] for i in keep)
        for i in sorted(want, key=lambda i: -(natural[i] - widths[i])):
            if left <= 0:
                break
            if widths[i] < natural[i]:
                widths[i] += 1
                left -= 1
    return keep, widths


# What a piped line must not hold: line breaks and what terminal_safe removes (tabs
# are checked by count: they separate the cells).
_NOT_PLAIN = re.compile("[\r\n\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _plain_line(row: Sequence[Any]) -> str:
    """``row`` as one piped line: :func:`_plain` cells joined by tabs.

    Joined first and checked once, as nearly every line is plain already: a
    100,000-row table is written in a third of the time of nine checks per row.
    """
    cells = ["" if c is None else c if type(c) is str else str(c) for c in row]
    line = "\t".join(cells)
    if line.count("\t") == len(cells) - 1 and _NOT_PLAIN.search(line) is None:
        return line
    return "\t".join(_plain(c) for c in cells)


def _plain(value: Any) -> str:
    """A cell of piped, tab-separated output: one line, nothing a terminal would act on."""
    if value is None:
        return ""
    text = str(value)
    # Keep one record per line in piped output.
    return terminal_safe(text.replace("\t", " ").replace("\r", " ").replace("\n", " "))


def _cell(value: Any) -> Text:
    """A cell of a Rich table: literal text (no markup), line breaks kept."""
    from rich.text import Text

    return Text("" if value is None else terminal_safe(str(value)))


class _SafeStream:
    """A text stream that writes through :func:`terminal_safe` (for csv.writer on a terminal)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(terminal_safe(text))

    def flush(self) -> None:
        self.stream.flush()
