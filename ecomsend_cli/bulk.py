"""Building 100,000s of objects at once: the cyclic garbage collector paused meanwhile.

A listing or an import of 100,000 rows allocates a million tuples, dicts and
strings that hold no reference cycles. Python's cyclic collector runs every
few hundred allocations and, every so often, walks every live object again:
on such a batch that is a fifth of the time (list-unlinked --json, issue 13)
or a quarter of a CSV plan's. Reference counting still frees everything as
usual; only the search for cycles waits until the batch is built.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for the ``with`` block (nested blocks are fine)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
