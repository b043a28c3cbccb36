"""The interactive picker of `ecomsend link` (DESIGN §3): type to search, a number to choose.

Each key is read as it is typed (the terminal in cbreak mode, no echo, no
signals): the list is ranked again as the text changes (``picker.py`` keeps
that under 100 ms on 250,000 variants), Enter keeps the results and clears
the line, a number and Enter chooses (a number outside the list is refused,
not searched), Esc, Ctrl-C, Ctrl-D or ``q`` cancel. On the way out pending
input is flushed and the terminal restored, so no escape byte or typed-ahead
key reaches the next prompt.
"""

from __future__ import annotations

import os
import select
import sys
import termios
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import Aborted
from ..output import Column, Output
from ..text import terminal_safe

ESC, CTRL_C, CTRL_D = "\x1b", "\x03", "\x04"
BACKSPACE = ("\x7f", "\x08")


class _Keys:
    """Keys from the terminal on stdin, one at a time, while in a ``with`` block."""

    def __enter__(self) -> _Keys:
        self.fd = sys.stdin.fileno()
        self.saved = termios.tcgetattr(self.fd)
        mode = termios.tcgetattr(self.fd)
        mode[3] &= ~(termios.ICANON | termios.ECHO | termios.ISIG)  # Ctrl-C arrives as a key: we cancel
        mode[6][termios.VMIN], mode[6][termios.VTIME] = 1, 0
        termios.tcsetattr(self.fd, termios.TCSADRAIN, mode)
        return self

    def __exit__(self, *exc: object) -> None:
        termios.tcflush(self.fd, termios.TCIFLUSH)  # nothing half-read is left for the shell
        termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)

    def pending(self, timeout: float = 0.0) -> bool:
        return bool(select.select([self.fd], [], [], timeout)[0])

    def read(self) -> str | None:
        """One key: a character, ESC, a control character, "" for an ignored sequence, None at end of input."""
        first = os.read(self.fd, 1)
        if not first:
            return None
        if first == b"\x1b":
            if self.pending(0.05):  # an arrow or function key: its sequence follows at once
                os.read(self.fd, 16)
                return ""
            return ESC
        data = first
        need = 1 if first[0] >= 0xC0 else 0
        need += 1 if first[0] >= 0xE0 else 0
        need += 1 if first[0] >= 0xF0 else 0
        for _ in range(need):
            data += os.read(self.fd, 1)
        return data.decode("utf-8", "replace")


def choose(out: Output, *, query: str, search: Callable[[str], Sequence[Any]], columns: Sequence[Column],
           row: Callable[[Any], list], what: str) -> Any:
    """Show ``search(query)`` numbered, let the operator search again or choose; the chosen item.

    Raises Aborted when cancelled.
    """
    out.require_terminal(what)
    results = list(search(query))
    buffer, message, drawn = "", "", 0
    with _Keys() as keys:
        while True:
            drawn = _draw(out, drawn, query, results, columns, row, buffer, message)
            key = keys.read()
            message = ""
            if key in (None, ESC, CTRL_C, CTRL_D):
                sys.stderr.write("\n")
                raise Aborted("Nothing changed.")
            if key in ("\r", "\n"):
                text = buffer.strip()
                buffer = ""
                if text.lower() == "q":
                    sys.stderr.write("\n")
                    raise Aborted("Nothing changed.")
                if text and not text.isdigit() and text != query:  # typed faster than it ranked
                    query, results = text, list(search(text))
                    continue
                if text.isdigit():
                    n = int(text)
                    if 1 <= n <= len(results):
                        sys.stderr.write("\n")
                        return results[n - 1]
                    message = (f"No row {n}: choose 1–{len(results)}, or type words to search."
                               if results else f"No row {n}: nothing is listed; type words to search.")
                continue
            if key in BACKSPACE:
                buffer = buffer[:-1]
            elif key and key.isprintable():
                buffer += key
            else:
                continue
            text = buffer.strip()
            # Search as the text changes; a number is a choice, not a search. Keys already
            # typed are read first, so a fast typist is not slowed by a ranking per key.
            if text and not text.isdigit() and text.lower() != "q" and not keys.pending():
                query, results = text, list(search(text))


def _draw(out: Output, drawn: int, query: str, results: Sequence[Any], columns: Sequence[Column],
          row: Callable[[Any], list], buffer: str, message: str) -> int:
    """Redraw the list and the prompt in place; the number of lines above the prompt."""
    with out.err.capture() as capture:
        if results:
            out.table(columns, [[i, *row(item)] for i, item in enumerate(results, 1)], to_stderr=True,
                      hidden_hint="widen the terminal")
        else:
            out.info(f"Nothing matches {query!r}.")
        if message:
            out.info(message)
    block = capture.get()
    shown = query if len(query) <= 30 else query[:29] + "…"  # one line, or the redraw would drift
    prompt = f"Search: {shown} · number + Enter to choose · Esc or q to quit › "
    erase = f"\r\x1b[{drawn}A\x1b[J" if drawn else "\r\x1b[J"
    # The search text may be a seller SKU from TikTok: inert like everything Output prints.
    sys.stderr.write(erase + block + terminal_safe(prompt + buffer))
    sys.stderr.flush()
    return block.count("\n")
