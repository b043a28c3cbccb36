"""The link CSV of DESIGN §6: the columns, writing them safely, reading them back.

One column set serves ``links export``, ``list-unlinked --csv`` and
``link --csv``, so an operator can export, fill in a spreadsheet and import.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TextIO

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
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """Stop a spreadsheet from running a cell as a formula (OWASP CSV injection).

    A leading apostrophe makes Excel, LibreOffice and Google Sheets show the
    text as typed; the importer strips it again.
    """
    if cell and cell.startswith(_FORMULA_START):
        return "'" + cell
    return cell


def write_csv(stream: TextIO, rows: Iterable[dict]) -> int:
    """Write rows (dicts keyed by :data:`COLUMNS`) with a header. Returns the row count."""
    writer = csv.writer(stream, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    n = 0
    for row in rows:
        writer.writerow([neutralise(str(row.get(c) or "")) for c in COLUMNS])
        n += 1
    return n
