"""Building 100,000s of objects at once: the cyclic garbage collector paused meanwhile.

A listing or an import of 100,000 rows allocates a million tuples, dicts and
strings that hold no reference cycles. Python's cyclic collector runs every
few hundred allocations and, every so often, walks every live object again:
on such a batch that is a fifth of the time (list-unlinked --json, issue 13)
or a quarter of a CSV plan's. Reference counting still frees everything as
usual; only the search for cycles waits until the batch is built.

And handing 100,000s of rows from Python to SQLite on two cores:
:func:`prefetched` runs the producing half (a download, its parsing) in a
thread of its own while the caller's thread writes, and
:func:`quick_gil_handoff` keeps the writer from waiting on the GIL after each
statement.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from queue import Empty, Queue
from typing import TypeVar

T = TypeVar("T")


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


@contextmanager
def quick_gil_handoff(interval: float = 0.0005) -> Iterator[None]:
    """Hand the GIL between threads every ``interval`` seconds (Python's default: 5 ms) in the block.

    A thread that comes back from C code which released the GIL (SQLite
    stepping a statement) waits for a busy Python thread to hand it over:
    up to the whole interval, each time. A full catalog refresh fed from a
    parsing thread (250 statements of 1,000 rows) took 2.4 s with 5 ms, 1.7 s
    with 0.5 ms, when the download was already in memory.
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, interval))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


_DONE = object()


def prefetched(items: Iterable[T], *, depth: int = 8, name: str = "ecomsend-prefetch") -> Iterator[T]:
    """``items``, produced by a thread of their own up to ``depth`` ahead of the consumer.

    For a pipeline whose two halves can overlap on two cores: a download
    parsed in Python feeding SQLite, which releases the GIL while it steps.
    An exception in the producer is raised in the consumer, at the item where
    it happened; a consumer that stops early (an error, ``close()``) stops
    the producer at its next item, and ``items`` is closed in its own thread.
    """
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if stop.is_set():
                    break
                queue.put((item, None))
            else:
                queue.put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            queue.put((_DONE, exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item, error = queue.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        # Make room for the producer's pending put: it then sees ``stop`` and closes ``items``.
        # Not joined: it may be inside a network read that ends only at its deadline.
        while True:
            try:
                queue.get_nowait()
            except Empty:
                break
