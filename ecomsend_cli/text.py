"""Outside text made safe to show (issue 9): what a terminal would act on is removed.

Titles, SKU names, Shopify's messages and CSV cells come from outside; an ESC
or BEL in them could retitle a window, clear the screen or rewrite a cron log,
and a right-to-left override could reorder what the operator reads. Output
passes everything it prints through :func:`terminal_safe`; a CSV export uses
it for the columns a person reads but no import needs.
"""

from __future__ import annotations

import re

# What a terminal acts on instead of showing: the control characters (Unicode
# category Cc: C0, DEL and C1) other than tab and newline, and the bidirectional
# embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069).
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """``text`` without the characters a terminal would act on rather than show.

    Removes control characters except tab and newline (C0, DEL, C1) and the
    bidirectional embedding, override and isolate characters.
    """
    # Every character removed is one str.isprintable() rejects: the usual text skips the regex.
    if text.isprintable():
        return text
    return UNSAFE.sub("", text)


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 SKU``, ``3 SKUs``: a count and its noun, singular or plural."""
    return f"{n} {word if n == 1 else many or word + 's'}"
