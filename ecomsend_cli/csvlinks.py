"""The link CSV of DESIGN §6: the columns, writing them safely, reading them back.

One column set serves ``links export``, ``list-unlinked --csv`` and
``link --csv``, so an operator can export, fill in a spreadsheet and import.

Reading is two steps, neither of which writes anything:

* :func:`read_link_csv` turns the file's bytes, or a stream
  (:func:`open_link_csv` opens a regular file or a pipe and refuses devices,
  directories and sockets), into rows. It reads a row at a time, each bounded
  by :data:`MAX_ROW_CHARS`, so memory never depends on the length of a row;
  it decodes UTF-8 (with or without BOM; UTF-16 with a BOM, as Excel's
  "Unicode text"), detects the separator (comma, semicolon or tab) from the
  header, matches header names case-insensitively, keeps each row's physical
  line number and undoes the exporter's formula neutralisation. A file that
  cannot be read as a link CSV raises :class:`InputError`.
* :func:`plan_link_csv` validates every row against the store with a few
  batched queries (never one per row) and returns a :class:`CsvPlan`: links to
  add, to change, already so, rows skipped for an empty Shopify column, and
  every problem with its line number. Nothing is written;
  :func:`apply_csv_plan` writes the plan in one transaction.

When a row fills both the id and the SKU column of one side, the two must name
the same item, or the row is invalid: a spreadsheet user who edits the SKU of
an exported row and forgets the id beside it is told, rather than silently
keeping the old link.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
import re
import stat
from collections.abc import Container, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NamedTuple, TextIO

from .bulk import paused_gc
from .errors import InputError
from .matching import sku_key
from .models import VARIANT_GID_PREFIX, variant_gid
from .store import LinkChange, SkuInfo, Store, VariantInfo
from .text import terminal_safe

# Link columns first (what `link --csv` reads), then read-only context.
COLUMNS = (
    "tiktok_sku_id",
    "tiktok_seller_sku",
    "shopify_variant_id",
    "shopify_sku",
    "product_title",
    "sku_name",
    "suggestion",
)
TIKTOK_ID, TIKTOK_SKU, SHOPIFY_ID, SHOPIFY_SKU = COLUMNS[:4]
LINK_COLUMNS = COLUMNS[:4]

# A leading apostrophe is neutralised too, so that un-neutralising is the exact
# inverse: a seller SKU that really starts with "'-" survives the round trip.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def neutralise(cell: str) -> str:
    """Stop a spreadsheet from running a cell as a formula (OWASP CSV injection).

    A leading apostrophe makes Excel, LibreOffice and Google Sheets show the
    text as typed; :func:`unneutralise` strips it again on import.
    """
    if cell and cell.startswith(_FORMULA_START):
        return "'" + cell
    return cell


def unneutralise(cell: str) -> str:
    """Undo :func:`neutralise`: drop the apostrophe it put before a formula character."""
    if cell[:1] == "'" and cell[1:2] in _FORMULA_START:
        return cell[1:]
    return cell


# Columns a person reads and no import needs: outside text there is made inert,
# so an export holding a hostile title still imports (the reader refuses control
# characters as the mark of a binary file). Id and SKU columns stay exact.
_DISPLAY_ONLY = frozenset({"product_title", "sku_name", "suggestion"})


def write_csv(stream: TextIO, rows: Iterable[dict]) -> int:
    """Write rows (dicts keyed by :data:`COLUMNS`) with a header. Returns the row count."""
    writer = csv.writer(stream, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    n = 0
    for row in rows:
        writer.writerow([
            neutralise(terminal_safe(text) if c in _DISPLAY_ONLY else text)
            for c in COLUMNS for text in (str(row.get(c) or ""),)
        ])
        n += 1
    return n


# --- reading ---------------------------------------------------------------------

_SEPARATORS = (",", ";", "\t")
_SEP_LINE = re.compile(r"sep=(.)(?:\r\n|\n|\r)", re.IGNORECASE)  # Excel's "sep=;" first line
# C0 controls a text file never holds (tab, line breaks, VT and FF aside), and the
# stand-ins of bytes that are not UTF-8 (surrogateescape).
_UNREADABLE = re.compile("[\x00-\x08\x0e-\x1f\udc80-\udcff]")
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
_EXPORT_HINT = "export a file to fill in with `ecomsend list-unlinked --csv > todo.csv`"
_SIGNATURES = (
    (b"PK\x03\x04", "an Excel workbook or another zip file"),
    (b"\xd0\xcf\x11\xe0", "an old Excel (.xls) workbook"),
    (b"%PDF", "a PDF"),
    (b"SQLite format 3\x00", "a SQLite database"),
)
_HEAD_BYTES = max(len(magic) for magic, _ in _SIGNATURES)  # read before anything is decoded
_BUFFER_BYTES = 1 << 16
_CHUNK_CHARS = 1 << 16
# A physical line of a CSV: it ends at CRLF, LF or CR, nothing else (form feeds,
# U+2028 and the like are cell content).
_LINE = re.compile("[^\r\n]*(?:\r\n|\r|\n)")

MAX_ROW_CHARS = 1 << 20
"""The longest row (its cells and line breaks) that ``link --csv`` reads: 1 MB of text.

A link CSV row is a few hundred characters, so no real file comes near it;
without a bound, ``/dev/zero``, a binary file or a quote left open (which makes
the rest of the file one cell) would be read into memory whole. Memory
for one row stays under a few MB whatever is fed in.
"""
_TOO_LONG_HINT = ("a link CSV row is a few hundred characters: check that this is the right "
                  "file, and that no quoted cell is left open")


class CsvRow(NamedTuple):
    """One data row's link cells, un-neutralised and trimmed ('' when absent)."""

    line: int
    tiktok_sku_id: str
    tiktok_seller_sku: str
    shopify_variant_id: str
    shopify_sku: str


class RowProblem(NamedTuple):
    """Why one row cannot be imported."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class LinkCsv:
    """A link CSV as read: its link columns and rows; nothing checked against the store."""

    name: str
    separator: str
    columns: tuple[str, ...]  # the link columns the header has, in COLUMNS order
    rows: list[CsvRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)  # rows that could not be read
    data_rows: int = 0  # non-blank rows after the header


def open_link_csv(path: str) -> BinaryIO:
    """Open ``path`` for :func:`read_link_csv`: a regular file or a pipe (FIFO), nothing else.

    A character device (``/dev/zero``, a terminal), a directory or a socket is
    refused with InputError before it is opened: none of them is a CSV, and
    some never end.
    """
    try:
        kind = _file_kind(os.stat(path).st_mode)
        if kind is None:
            handle = open(path, "rb")  # noqa: SIM115 — the caller closes it
            # Checked again on what was opened: the name may now point elsewhere.
            kind = _file_kind(os.fstat(handle.fileno()).st_mode)
            if kind is None:
                return handle
            handle.close()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    raise InputError(f"cannot read {path}: it is {kind}, not a CSV file",
                     hint="give a CSV file, a pipe, or - to read stdin")


def _file_kind(mode: int) -> str | None:
    """None for what a link CSV may come from (a regular file, a FIFO); else what it is."""
    if stat.S_ISREG(mode) or stat.S_ISFIFO(mode):
        return None
    for test, what in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "a special file"


def read_link_csv(source: bytes | BinaryIO, *, name: str = "-") -> LinkCsv:
    """Read a link CSV from its bytes or a binary stream. Raises InputError when it is not one.

    The stream is read as it comes, a row at a time, and a row longer than
    :data:`MAX_ROW_CHARS` ends the reading with an error: memory depends on the
    number of rows, never on the length of one (``/dev/zero`` on stdin stops
    after 1 MB).

    Rows whose cells are all empty are ignored. A row that lacks a link
    column's cell, or has non-empty cells beyond the header, is reported as a
    problem; missing trailing context cells are not (Excel leaves out trailing
    empty cells on rows after the 16th).
    """
    stream = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    with paused_gc(), _field_limit(MAX_ROW_CHARS):
        return _read_link_csv(_LineSource(stream, name))


@contextmanager
def _field_limit(limit: int) -> Iterator[None]:
    """Let one cell be as long as a row may be: the row bound is the only limit a user meets.

    (The csv module's own default, 128 KiB per cell, would otherwise fail a
    long cell with a message about a "field limit" that means nothing here.)
    """
    old = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _read_link_csv(source: _LineSource) -> LinkCsv:
    name = source.name
    first = source.first_line()
    separator = None
    if first is not None:
        sep_match = _SEP_LINE.fullmatch(first)
        if sep_match and sep_match.group(1) in _SEPARATORS:
            separator = sep_match.group(1)
            first = None
    if first is None or not first.strip():
        first = source.first_nonblank_line()
    if first is None:
        raise InputError(
            f"{name} is empty: expected a header row naming {TIKTOK_ID} (or {TIKTOK_SKU}) "
            f"and {SHOPIFY_ID} (or {SHOPIFY_SKU})",
            hint=_EXPORT_HINT,
        )
    reader_sep = separator or _detect_separator(first)
    reader_sep, header, header_line, records = _open_records(source, first, reader_sep, name)
    columns = _header_columns(header, name, header_line)
    wanted = [columns.get(c) for c in LINK_COLUMNS]
    width = len(header)
    needed = max(columns.values()) + 1  # trailing context cells may be missing
    parsed = LinkCsv(name=name, separator=reader_sep,
                     columns=tuple(c for c in LINK_COLUMNS if c in columns))
    rows, problems = parsed.rows, parsed.problems
    # An absent column reads the empty cell appended to every row.
    pick = [-1 if i is None else i for i in wanted]
    i0, i1, i2, i3 = pick
    data_rows = 0
    new_row = tuple.__new__  # CsvRow(...) without the keyword handling: 100,000s of rows
    for line, cells in records:
        n = len(cells)
        if n < needed or (n > width and any(c.strip() for c in cells[width:])):
            if any(c.strip() for c in cells):
                data_rows += 1
                problems.append(RowProblem(line, _cell_count_message(n, width, needed, reader_sep)))
            continue
        cells.append("")
        a, b, c, d = cells[i0], cells[i1], cells[i2], cells[i3]
        if a[:1] == "'" or b[:1] == "'" or c[:1] == "'" or d[:1] == "'":
            a, b, c, d = unneutralise(a), unneutralise(b), unneutralise(c), unneutralise(d)
        a, b, c, d = a.strip(), b.strip(), c.strip(), d.strip()
        if not (a or b or c or d) and not any(unneutralise(x).strip() for x in cells):
            continue  # a blank row (as spreadsheets leave at the end), once our quoting is undone
        data_rows += 1
        rows.append(new_row(CsvRow, (line, a, b, c, d)))
    parsed.data_rows += data_rows
    return parsed


def _cell_count_message(n: int, width: int, needed: int, separator: str) -> str:
    sep_name = {",": "comma", ";": "semicolon", "\t": "tab"}[separator]
    if n < needed:
        return (f"{n} cell(s), the header has {width} and the link columns need {needed} — "
                "a row with too few cells (a line break inside an unquoted cell?)")
    return (f"{n} cells, the header has {width} — a row with too many cells "
            f"(a {sep_name} inside an unquoted cell?)")


class _RowTooLong(Exception):
    """A row passed :data:`MAX_ROW_CHARS`; the reader says on which line it starts."""


class _LineSource:
    """The physical lines of a link CSV, decoded and checked as they are read.

    Lines end at CRLF, LF or CR only: form feeds, U+2028 and the like are cell
    content in a CSV. Only a small prefix is read before the first line (to
    spot a workbook or PDF and the byte-order mark); after that, every read is
    bounded by what is left of the current row's :data:`MAX_ROW_CHARS`, which
    the caller renews (:meth:`new_row`) when a row is complete, so a row spread
    over many lines (quoted line breaks) is bounded as a whole.
    """

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self.name = name
        head = _read_prefix(stream, _HEAD_BYTES)
        for magic, what in _SIGNATURES:
            if head.startswith(magic):
                raise InputError(f"{name} is not a text file: it looks like {what}",
                                 hint="save it as CSV UTF-8 and import that")
        utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        # Bytes that are not UTF-8 decode to U+DC80..U+DCFF (surrogateescape) and
        # are reported with their line by _refuse; UTF-16 has no such mapping.
        self.text = io.TextIOWrapper(
            io.BufferedReader(_Rejoined(head, stream), _BUFFER_BYTES),
            encoding="utf-16" if utf16 else "utf-8-sig",
            errors="strict" if utf16 else "surrogateescape", newline="",
        )
        self.line = 0  # the number of the last line read
        self.left = MAX_ROW_CHARS  # what the current row may still take

    def new_row(self) -> None:
        self.left = MAX_ROW_CHARS

    def readline(self) -> str:
        """The next line with its ending ('' at the end). Raises _RowTooLong, InputError."""
        try:
            line = self.text.readline(self.left + 1)
        except UnicodeDecodeError:  # UTF-16 only
            raise self._not_utf16() from None
        if not line:
            return line
        self.line += 1
        self.left -= len(line)
        if self.left < 0:
            raise _RowTooLong
        if _UNREADABLE.search(line):
            self._refuse(line)
        return line

    def _not_utf16(self) -> InputError:
        return InputError(f"{self.name} is not valid UTF-16 text", hint="save it as CSV UTF-8 and import that")

    def __iter__(self) -> Iterator[str]:
        """The remaining lines, as :meth:`readline` gives them, read a chunk at a time.

        One read and one check for unreadable characters per 64 KB instead of
        per line (a third of the reading time of a 100,000-row file). Each
        line is still counted and charged to its row's bound as it is given
        out; a line still incomplete at the end of a chunk waits for the next,
        as long as its row's bound allows, and a chunk holding something
        unreadable has its lines checked one by one, so the error names the
        line, as :meth:`readline` does.
        """
        text, find_lines, unreadable = self.text, _LINE.findall, _UNREADABLE.search
        carry = ""
        while True:
            if len(carry) > self.left:
                self.line += 1  # the line read in part, as readline counts it
                raise _RowTooLong
            try:
                chunk = text.read(_CHUNK_CHARS)
            except UnicodeDecodeError:  # UTF-16 only
                raise self._not_utf16() from None
            if not chunk:
                break
            chunk = carry + chunk if carry else chunk
            # Complete lines end at the last line break (a CR at the very end may be the
            # first half of a CRLF: its line waits for the next chunk). Searching only
            # up to there keeps the pattern from scanning a long unfinished line again
            # from each of its characters.
            last = len(chunk) - 1
            size = max(chunk.rfind("\n", 0, last), chunk.rfind("\r", 0, last)) + 1
            if chunk[last] == "\n":
                size = last + 1
            lines = find_lines(chunk, 0, size) if size else []
            carry = chunk[size:]
            check = unreadable(chunk, 0, size) is not None
            for line in lines:
                self.line += 1
                self.left -= len(line)
                if self.left < 0:
                    raise _RowTooLong
                if check and unreadable(line):
                    self._refuse(line)
                yield line
        if carry:  # the last line, without a line ending
            self.line += 1
            self.left -= len(carry)
            if self.left < 0:
                raise _RowTooLong
            if unreadable(carry):
                self._refuse(carry)
            yield carry

    def first_line(self) -> str | None:
        """The first line, without a second byte-order mark (as some tools add)."""
        line = self._line_alone()
        if line and line[0] == "\ufeff":
            line = line[1:]
        return line or None

    def first_nonblank_line(self) -> str | None:
        """The next line that is not only white space (None at the end)."""
        while line := self._line_alone():
            if line.strip():
                return line
        return None

    def _line_alone(self) -> str:
        """The next line, as a row of its own (before the header)."""
        self.new_row()
        try:
            return self.readline()
        except _RowTooLong:
            raise InputError(_too_long(self.line), hint=_TOO_LONG_HINT) from None

    def _refuse(self, line: str) -> None:
        """Raise the InputError for a line that _UNREADABLE found something in."""
        # A byte that is not UTF-8 first: the likelier cause (a file saved as "CSV" in cp1252).
        not_utf8 = _NOT_UTF8.search(line)
        if not_utf8:
            raise InputError(
                f"{self.name} is not UTF-8 text (byte 0x{ord(not_utf8.group()) - 0xDC00:02x} "
                f"on line {self.line})",
                hint="save it as \"CSV UTF-8\" (Excel: File › Save As › CSV UTF-8)",
            )
        char = ord(_UNREADABLE.search(line).group())  # type: ignore[union-attr]
        raise InputError(
            f"{self.name} is not a text file (control character U+{char:04X} on line {self.line})",
            hint="save it as CSV UTF-8 and import that",
        )


class _Rejoined(io.RawIOBase):
    """A prefix already read, then the rest of the stream: a pipe cannot be rewound."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self.head = head
        self.rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.head:
            data, self.head = self.head[:len(buffer)], self.head[len(buffer):]
        else:
            read1 = getattr(self.rest, "read1", None)  # one read: a pipe gives what it has
            data = read1(len(buffer)) if read1 else self.rest.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _read_prefix(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes from the start (fewer only at the end of the stream)."""
    head = b""
    while len(head) < size:
        more = stream.read(size - len(head))
        if not more:
            break
        head += more
    return head


def _too_long(line: int) -> str:
    return f"line {line}: row is longer than 1 MB ({MAX_ROW_CHARS:,} characters)"


def _records(
    source: _LineSource, first: str, separator: str
) -> Iterator[tuple[int, list[str]]]:
    """``(first physical line, cells)`` per record from ``first`` on; blank lines give empty lists.

    ``strict`` makes a quote left open, or text after a closing quote, an error
    rather than a cell silently swallowing the rest of the file.
    """
    offset = source.line - 1  # the file's line number of `first`, less one
    source.left = MAX_ROW_CHARS - len(first)
    reader = csv.reader(itertools.chain((first,), source), delimiter=separator, strict=True)
    end = 0
    while True:
        start = end + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(
                f"line {start + offset}: the CSV cannot be read here ({exc})",
                hint="a quote inside a cell must be doubled (\"\"), and a quoted cell must be closed",
            ) from None
        except _RowTooLong:
            raise InputError(_too_long(start + offset), hint=_TOO_LONG_HINT) from None
        source.new_row()
        end = reader.line_num
        yield start + offset, cells


def _open_records(
    source: _LineSource, first: str, separator: str, name: str
) -> tuple[str, list[str], int, Iterator[tuple[int, list[str]]]]:
    """The separator, the header's cells and line, and an iterator over the data records."""
    records = _records(source, first, separator)
    for line, cells in records:
        if any(c.strip() for c in cells):
            return separator, cells, line, records
    raise InputError(
        f"{name} is empty: expected a header row naming {TIKTOK_ID} (or {TIKTOK_SKU}) "
        f"and {SHOPIFY_ID} (or {SHOPIFY_SKU})",
        hint=_EXPORT_HINT,
    )


def _detect_separator(first: str) -> str:
    """The separator whose split of the first non-blank line names the most link columns."""
    best, best_score = ",", (-1, -1)
    for sep in _SEPARATORS:
        try:
            cells = next(csv.reader([first], delimiter=sep), [])
        except csv.Error:
            continue
        names = {c.strip().casefold() for c in cells}
        score = (sum(1 for c in LINK_COLUMNS if c in names), len(cells))
        if score > best_score:
            best, best_score = sep, score
    return best


def _header_columns(header: list[str], name: str, line: int) -> dict[str, int]:
    """Link column name → index. Raises InputError for a missing side or a repeated column."""
    columns: dict[str, int] = {}
    for index, raw in enumerate(header):
        key = raw.strip().casefold()
        if key in LINK_COLUMNS:
            if key in columns:
                raise InputError(
                    f"{name} line {line}: column {key} appears twice (columns "
                    f"{columns[key] + 1} and {index + 1})",
                    hint="keep one of them",
                )
            columns[key] = index
    missing = []
    if TIKTOK_ID not in columns and TIKTOK_SKU not in columns:
        missing.append(f"TikTok column ({TIKTOK_ID} or {TIKTOK_SKU})")
    if SHOPIFY_ID not in columns and SHOPIFY_SKU not in columns:
        missing.append(f"Shopify column ({SHOPIFY_ID} or {SHOPIFY_SKU})")
    if missing:
        shown = ", ".join(repr(c) for c in header[:8])
        if len(header) > 8:
            shown += f", … ({len(header)} columns)"
        raise InputError(
            f"{name} is not a link CSV: it has no {' and no '.join(missing)}; "
            f"its header (line {line}) is {shown}",
            hint=_EXPORT_HINT,
        )
    return columns


# --- planning ----------------------------------------------------------------------


class PlannedLink(NamedTuple):
    """One link the file asks for; ``old`` is the link it replaces (changed rows only)."""

    line: int
    tiktok_sku_id: str
    shopify_variant_id: str
    old: str | None = None


@dataclass
class CsvPlan:
    """What importing a link CSV would do. Every data row lands in exactly one list."""

    name: str
    data_rows: int = 0
    new: list[PlannedLink] = field(default_factory=list)
    changed: list[PlannedLink] = field(default_factory=list)
    unchanged: list[PlannedLink] = field(default_factory=list)
    skipped: list[CsvRow] = field(default_factory=list)  # the Shopify column is empty
    repeated: list[tuple[int, str, int]] = field(default_factory=list)  # (line, sku id, first line)
    problems: list[RowProblem] = field(default_factory=list)
    # Details for display, filled by describe_csv_plan for the rows to show.
    skus: dict[str, SkuInfo] = field(default_factory=dict)
    variants: dict[str, VariantInfo] = field(default_factory=dict)

    @property
    def invalid_rows(self) -> int:
        """How many rows have at least one problem (a row may have one per side)."""
        return len({p.line for p in self.problems})

    def changes(self) -> list[LinkChange]:
        """The writes: new and changed links, each stating the link it replaces."""
        make = tuple.__new__  # LinkChange(...) without the keyword handling: 100,000s of them
        return [make(LinkChange, (sku_id, gid, old)) for _, sku_id, gid, old in (*self.new, *self.changed)]

    def as_json(self, *, dry_run: bool, written: int) -> dict:
        """The ``link --csv --json`` document (field names are a documented interface)."""
        def link(p: PlannedLink) -> dict:
            return {"line": p.line, "tiktok_sku_id": p.tiktok_sku_id,
                    "shopify_variant_id": p.shopify_variant_id}

        return {
            "file": self.name,
            "dry_run": dry_run,
            "rows": self.data_rows,
            "new": [link(p) for p in self.new],
            "changed": [{**link(p), "old_shopify_variant_id": p.old} for p in self.changed],
            "unchanged": [link(p) for p in self.unchanged],
            "skipped": [{"line": r.line, "tiktok_sku_id": r.tiktok_sku_id,
                         "tiktok_seller_sku": r.tiktok_seller_sku} for r in self.skipped],
            "repeated": [{"line": line, "tiktok_sku_id": sku_id, "first_line": first}
                         for line, sku_id, first in self.repeated],
            "invalid": [{"line": p.line, "error": p.message} for p in self.problems],
            "written": written,
        }


_UNKNOWN_TIKTOK_HINT = "no pulled order has it; see `ecomsend list-unlinked --all`"
_UNKNOWN_VARIANT_HINT = "check it, or run `ecomsend catalog refresh`"
_TEXT_HINT = ("format the column as Text in the spreadsheet and paste the values again "
              "(or re-export)")
_SCIENTIFIC = re.compile(r"[0-9]+(?:[.,][0-9]+)?[eE][+-]?[0-9]+")
_DECIMAL = re.compile(r"[0-9]+[.,]0+")


def spreadsheet_damage(cell: str) -> str | None:
    """How a spreadsheet probably changed this cell, or None if it looks untouched.

    Excel and Google Sheets turn long digit strings into numbers: shown (and
    saved) as ``1.72959E+18``, rounded to 15 significant digits, or with a
    ``.0`` added.
    """
    if _SCIENTIFIC.fullmatch(cell):
        return "a spreadsheet turned it into a number in scientific notation"
    if _DECIMAL.fullmatch(cell):
        return "a spreadsheet turned it into a decimal number"
    if cell.isdigit() and len(cell) > 15 and not cell[15:].strip("0"):
        return "it looks rounded by a spreadsheet, which keeps only 15 significant digits"
    return None


def plan_link_csv(store: Store, parsed: LinkCsv, *, details: bool = False) -> CsvPlan:
    """Validate every row of ``parsed`` against the store and plan the import; writes nothing.

    All lookups are batched (a few queries for the whole file, never one per
    row), so a file of 100,000 rows is checked in about the time it takes to
    read it. ``details``: every row will be shown, so the lookups also read
    what the table shows (``plan.skus``, ``plan.variants``), which spares
    :func:`describe_csv_plan` a second pass over both tables.
    """
    with paused_gc():
        return _Planner(store, parsed, details=details).plan()


def apply_csv_plan(store: Store, plan: CsvPlan, *, actor: str, batch: int | None = None) -> int:
    """Write the plan's new and changed links in one transaction, source ``csv``.

    One history row per change, marked with ``batch``. If another process
    changed one of these links since the plan was made, nothing is written (StoreError).
    """
    return store.apply_links(plan.changes(), source="csv", actor=actor, batch=batch)


def describe_csv_plan(store: Store, plan: CsvPlan, links: Iterable[PlannedLink]) -> None:
    """Fill ``plan.skus`` and ``plan.variants`` for ``links`` (the rows about to be shown)."""
    links = list(links)
    with paused_gc():
        plan.skus.update(store.sku_infos({p.tiktok_sku_id for p in links} - plan.skus.keys()))
        wanted = {p.shopify_variant_id for p in links} | {p.old for p in links if p.old}
        plan.variants.update(store.variant_infos(wanted - plan.variants.keys()))


class _Planner:
    """One planning run: a few batched lookups, then the per-row rules.

    The common row (known ids, agreeing cells) takes a short path; anything
    else goes through :meth:`_tiktok` / :meth:`_shopify`, which say what is
    wrong with it.
    """

    def __init__(self, store: Store, parsed: LinkCsv, *, details: bool = False) -> None:
        self.store = store
        self.parsed = parsed
        self.details = details
        self.out = CsvPlan(name=parsed.name, data_rows=parsed.data_rows,
                           problems=list(parsed.problems))
        self._zero_padded: dict[str, dict[str, list[str]]] = {}

    def problem(self, line: int, message: str) -> None:
        self.out.problems.append(RowProblem(line, message))

    def plan(self) -> CsvPlan:
        out = self.out
        key = sku_key
        # 1. The keys of every row, and the sets to look up in one go.
        active: list[tuple[CsvRow, str | None, str | None, str | None]] = []
        tiktok_ids: set[str] = set()
        seller_keys: set[str] = set()
        gids: set[str] = set()  # rows that also give a SKU: its agreement needs the variant's SKU
        bare_gids: set[str] = set()  # rows with the id alone: only whether it is cached
        shopify_keys: set[str] = set()
        for row in self.parsed.rows:
            _, tid, tsku, vid, vsku = row
            # Keys are computed only where a lookup needs them; agreement checks
            # below compare the raw cells first, which is the usual case.
            if vid:
                gid = _as_gid(vid)
                if gid is not None:
                    (gids if vsku else bare_gids).add(gid)
                skey = None
            else:
                gid = None
                skey = key(vsku) if vsku else None
                if skey is None:
                    out.skipped.append(row)
                    continue
                shopify_keys.add(skey)
            tkey = None
            if tid:
                tiktok_ids.add(tid)
            elif tsku:
                tkey = key(tsku)
                if tkey is not None:
                    seller_keys.add(tkey)
            active.append((row, tkey, gid, skey))

        store = self.store
        self.skus_by_key = store.tiktok_skus_by_seller_keys(seller_keys)
        self.variants_by_key = store.variants_by_sku_keys(shopify_keys)
        if self.details:
            # Every row will be shown: read what the table shows with what the check
            # needs, in one pass over each table instead of a second (describe_csv_plan).
            skus, variants = out.skus, out.variants
            skus.update(store.sku_infos(tiktok_ids))
            variants.update(store.variant_infos(gids | bare_gids))
            for found in self.skus_by_key.values():
                skus.update((s.sku_id, s) for s in found)
            for found in self.variants_by_key.values():
                variants.update((v.variant_id, v) for v in found)
            self.seller_skus = {sku_id: info.seller_sku for sku_id, info in skus.items()}
            self.variant_skus = {gid: info.sku for gid, info in variants.items()}
            known: Container[str] = variants
        else:
            self.seller_skus = store.seller_skus_of(tiktok_ids)
            self.variant_skus = store.variant_skus_of(gids)
            known = store.known_variant_ids(bare_gids)

        # 2. Resolve both sides of each row; record every problem, not just the first.
        seller_skus, variant_skus, by_key = self.seller_skus, self.variant_skus, self.variants_by_key
        resolved: list[tuple[int, str, str, bool]] = []  # (line, sku id, gid, gid is cached)
        for row, tkey, gid, skey in active:
            line, tid, tsku, vid, vsku = row
            raw = seller_skus.get(tid) if tid else None
            if raw is not None and (not tsku or tsku == raw or key(tsku) == key(raw)):
                sku_id: str | None = tid
            else:
                sku_id = self._tiktok(row, tkey if tkey is not None or not tsku else key(tsku))
            cached = True
            if gid is not None and not vsku:
                target: str | None = gid
                cached = gid in known  # if not, decided below, once the current link is known
            elif gid is not None:
                raw = variant_skus.get(gid)
                if raw is None:
                    target = gid
                    cached = False  # decided below, once the current link is known
                elif not vsku or vsku == raw or key(vsku) == key(raw):
                    target = gid
                else:
                    target = self._shopify(row, gid, key(vsku))
            elif vid:
                target = self._shopify(row, None, None)
            else:
                candidates = by_key.get(skey)  # type: ignore[arg-type]
                if candidates and len(candidates) == 1:
                    target = candidates[0].variant_id
                else:
                    target = self._shopify(row, None, skey)
            if sku_id is not None and target is not None:
                resolved.append((line, sku_id, target, cached))

        # 3. One row per TikTok SKU, then compare with the current links.
        # Done with the lookups: a lower peak on big files.
        del active, tiktok_ids, seller_keys, gids, bare_gids, known, shopify_keys, seller_skus, variant_skus
        self.seller_skus = self.variant_skus = {}
        current = store.links_of({r[1] for r in resolved})
        first: dict[str, tuple[int, str]] = {}
        more: dict[str, list[tuple[int, str]]] = {}
        for line, sku_id, gid, cached in resolved:
            if not cached and current.get(sku_id) != gid:
                # Re-importing an export must not fail on a link whose variant has
                # since left the catalog, as long as the row keeps that link.
                self.problem(line, f"no Shopify variant {gid} in the catalog cache — "
                                   f"{_UNKNOWN_VARIANT_HINT}")
            elif sku_id in first:
                more.setdefault(sku_id, []).append((line, gid))
            else:
                first[sku_id] = (line, gid)
        make = tuple.__new__  # PlannedLink(...) without the keyword handling
        new, changed, unchanged = out.new.append, out.changed.append, out.unchanged.append
        for sku_id, (line, gid) in first.items():
            if more and sku_id in more:
                others = more[sku_id]
                if any(g != gid for _, g in others):
                    # Which row is meant cannot be known: every one of them is invalid.
                    rows = [(line, gid), *others]
                    lines = ", ".join(str(n) for n, _ in rows)
                    targets = ", ".join(dict.fromkeys(g for _, g in rows))
                    for n, _ in rows:
                        self.problem(n, f"TikTok SKU {sku_id} is on lines {lines} with different "
                                        f"variants ({targets}) — keep one row per TikTok SKU")
                    continue
                out.repeated.extend((n, sku_id, line) for n, _ in others)
            old = current.get(sku_id)
            if old == gid:
                unchanged(make(PlannedLink, (line, sku_id, gid, None)))
            elif old is None:
                new(make(PlannedLink, (line, sku_id, gid, None)))
            else:
                changed(make(PlannedLink, (line, sku_id, gid, old)))
        out.problems.sort(key=lambda p: p.line)
        out.repeated.sort()
        return out

    def _tiktok(self, row: CsvRow, seller_key: str | None) -> str | None:
        """The row's TikTok sku_id, or None after recording why there is none."""
        line = row.line
        if row.tiktok_sku_id:
            raw = self.seller_skus.get(row.tiktok_sku_id)
            if raw is None:
                damage = spreadsheet_damage(row.tiktok_sku_id)
                self.problem(line, (
                    f"TikTok SKU id {row.tiktok_sku_id!r} is damaged: {damage} — {_TEXT_HINT}"
                    if damage else
                    f"unknown TikTok SKU {row.tiktok_sku_id!r} — {_UNKNOWN_TIKTOK_HINT}"
                ))
                return None
            if seller_key is not None and seller_key != sku_key(raw):
                self.problem(line, (
                    f"{TIKTOK_ID} {row.tiktok_sku_id} has seller SKU {raw!r} but "
                    f"{TIKTOK_SKU} says {row.tiktok_seller_sku!r} — clear one of the two cells"
                ))
                return None
            return row.tiktok_sku_id
        if seller_key is None:
            self.problem(line, "no TikTok SKU: the TikTok column is empty")
            return None
        candidates = self.skus_by_key.get(seller_key, [])
        if len(candidates) == 1:
            return candidates[0].sku_id
        if candidates:
            self.problem(line, _ambiguous(
                f"TikTok seller SKU {row.tiktok_seller_sku!r}", "TikTok SKUs", TIKTOK_ID,
                [f"{s.sku_id} ({s.product_title} / {s.sku_name})" for s in candidates]))
            return None
        self.problem(line, self._unknown_code("TikTok seller SKU", row.tiktok_seller_sku, seller_key,
                                              TIKTOK_SKU, "in no pulled order", _UNKNOWN_TIKTOK_HINT))
        return None

    def _shopify(self, row: CsvRow, gid: str | None, shopify_key: str | None) -> str | None:
        """The row's variant GID, or None after recording why there is none."""
        line = row.line
        if row.shopify_variant_id:
            if gid is None:
                damage = spreadsheet_damage(row.shopify_variant_id)
                self.problem(line, (
                    f"Shopify variant id {row.shopify_variant_id!r} is damaged: {damage} — {_TEXT_HINT}"
                    if damage else
                    f"{row.shopify_variant_id!r} is not a Shopify variant id — give "
                    f"{VARIANT_GID_PREFIX}N or N"
                ))
                return None
            raw = self.variant_skus.get(gid)
            if raw is not None and shopify_key is not None and sku_key(raw) != shopify_key:
                self.problem(line, (
                    f"{SHOPIFY_ID} {gid} has SKU {raw!r} but {SHOPIFY_SKU} says "
                    f"{row.shopify_sku!r} — clear one of the two cells"
                ))
                return None
            return gid
        candidates = self.variants_by_key.get(shopify_key, [])  # type: ignore[arg-type]
        if len(candidates) == 1:
            return candidates[0].variant_id
        if candidates:
            self.problem(line, _ambiguous(f"Shopify SKU {row.shopify_sku!r}", "variants", SHOPIFY_ID,
                                          [f"{v.variant_id} ({_label(v)})" for v in candidates]))
            return None
        self.problem(line, self._unknown_code("Shopify SKU", row.shopify_sku, shopify_key or "",
                                              SHOPIFY_SKU, "not in the catalog cache",
                                              _UNKNOWN_VARIANT_HINT))
        return None

    def _unknown_code(self, what: str, raw: str, key: str, column: str, missing: str, hint: str) -> str:
        """The message for a SKU code that names nothing, saying how a spreadsheet broke it."""
        damage = spreadsheet_damage(raw)
        if damage:
            return f"{what} {raw!r} is {missing}, and {damage} — {_TEXT_HINT}"
        if key.isdigit():
            padded = self._padded(column).get(key.lstrip("0") or "0", [])
            if padded:
                shown = " / ".join(repr(c) for c in padded[:3])
                return (f"{what} {raw!r} is {missing}, but {shown} is — a spreadsheet dropped "
                        f"its leading zeros; {_TEXT_HINT}")
        return f"{what} {raw!r} is {missing} — {hint}"

    def _padded(self, column: str) -> dict[str, list[str]]:
        """Zero-padded numeric codes by their value without the zeros (read once, if needed)."""
        if column not in self._zero_padded:
            table: dict[str, list[str]] = {}
            for key, raw in self.store.zero_padded_codes(tiktok=column == TIKTOK_SKU):
                if key.isdigit():
                    table.setdefault(key.lstrip("0") or "0", []).append(raw)
            self._zero_padded[column] = table
        return self._zero_padded[column]


def _ambiguous(what: str, kind: str, id_column: str, described: list[str]) -> str:
    """The problem text for a code naming several items: the first five, and how many more."""
    more = f" and {len(described) - 5} more" if len(described) > 5 else ""
    return (f"{what} names {len(described)} {kind}: {', '.join(described[:5])}{more} — "
            f"give {id_column} instead")


def _as_gid(cell: str) -> str | None:
    """``variant_gid`` without the exception, with a short path for the usual full GID."""
    if cell.startswith(VARIANT_GID_PREFIX):
        number = cell[len(VARIANT_GID_PREFIX):]
        if number.isdigit() and number.isascii() and number[0] != "0":
            return cell
    try:
        return variant_gid(cell)
    except ValueError:
        return None


def _label(variant: VariantInfo) -> str:
    title = variant.product_title
    if variant.variant_title and variant.variant_title != "Default Title":
        title += f" / {variant.variant_title}"
    return title


# --- batched reads ------------------------------------------------------------------
# Read-only lookups the CSV check needs for a whole file at once. They return
# plain dicts and tuples: 100,000 frozen dataclasses would cost more than the
# queries. (Proposed as Store methods; kept here until the store owner moves them.)
