"""A full catalog refresh (``Store.replace_variant_rows``) as a pipeline (issue 13).

The rows are produced (downloaded, parsed, joined) by a thread of their own
while the store's thread inserts them, several hundred to a statement. These
tests hold the pipeline to the store's rules: the keys are
:func:`~ecomsend_cli.matching.sku_key`'s (computed by it, on the producing thread), the
cache is replaced whole or not at all, and a failure on either side stops
the other.
"""

from __future__ import annotations

import gc
import sqlite3
import threading

import pytest

from ecomsend_cli import store as store_module
from ecomsend_cli.errors import StoreError
from ecomsend_cli.matching import sku_key
from ecomsend_cli.store import Store
from tests.factory import variant

WAIT = 10.0  # seconds: only a deadline against hanging on a broken pipeline, never a measure


def row(number: int, code: object, product: object = "Tee") -> tuple:
    """A variant row in ``Variant``'s field order."""
    return (f"gid://shopify/ProductVariant/{number}", f"gid://shopify/Product/{number // 10}", product,
            "Default Title", code, f"gid://shopify/InventoryItem/{number}", 3, "ACTIVE", None)


# Awkward codes: Python's ASCII white space (\x1c-\x1f count too), a NUL, and the
# non-ASCII rules (NFKC, format characters, casefold, Unicode white space).
CODES = [
    "AB-100", "ab-100", "  AB-100  ", "\tAB-100\n", "\x0bAB\x0c", "\rab\r\n", "\x1cAB\x1d\x1e\x1f",
    "A B", "A\tB", "", " ", "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f ", "A\x00B", "\x00", "\x7fAB", "\x01AB",
    "Zz", "[AB]_@`{~}", "\u200bAB-100", "\ufeffab-100", "\u00a0AB\u00a0", "\u2003AB", "\x85AB\x85",
    "ＡＢ-１００", "Straße", "ǅ", "İ", "\u00adAB", "\u200b", "\u3000", "ÀB", "e\u0301",
]


def test_the_keys_a_full_refresh_stores_are_sku_keys(store_path):
    with Store.open(store_path) as store:
        store.replace_variant_rows([[row(i, code) for i, code in enumerate(CODES)]])
        stored = dict(store.conn.execute("SELECT sku, sku_key FROM shopify_variants").fetchall())
    assert len(stored) == len(set(CODES))
    assert {code: stored[code] for code in CODES} == {code: sku_key(code) for code in CODES}


def test_rows_are_produced_in_a_thread_of_their_own_and_all_arrive_whatever_the_batching(store_path):
    """2,503 rows in uneven batches, SQLite allowing 95 parameters a statement (as builds with a
    low limit do): every row lands once, in statements of 9 rows and a shorter last one."""
    producers = set()

    def batches():
        producers.add(threading.get_ident())
        numbers = iter(range(1, 2504))
        size = 1
        while chunk := [row(n, f"SKU-{n}") for _, n in zip(range(size), numbers, strict=False)]:
            yield chunk
            size = size * 3 % 701 + 1

    with Store.open(store_path) as store:
        store.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 95)
        assert store.replace_variant_rows(batches()) == 2503
        ids = [r[0] for r in store.conn.execute("SELECT variant_id FROM shopify_variants")]
        assert store.variants_by_sku(" sku-2503 ")[0].variant_id == "gid://shopify/ProductVariant/2503"
    assert sorted(ids) == sorted(f"gid://shopify/ProductVariant/{n}" for n in range(1, 2504))
    assert producers and threading.get_ident() not in producers


def test_a_failed_insert_stops_the_producer_and_keeps_the_old_cache(store_path):
    """The producer would go on for ever; the insert fails on its second batch (a value SQLite
    cannot take), and the producer is stopped and its source closed."""
    closed = threading.Event()

    def endless():
        try:
            yield [row(1, "NEW-1")]
            yield [row(2, "NEW-2", product={"not": "text"})]
            number = 3
            while True:
                yield [row(number, f"NEW-{number}")]
                number += 1
        finally:
            closed.set()

    with Store.open(store_path) as store:
        store.replace_variants([variant(1, "OLD-1"), variant(2, "OLD-2")])
        with pytest.raises((StoreError, sqlite3.Error)):
            store.replace_variant_rows(endless())
        assert closed.wait(WAIT)
        assert sorted(v.sku for v in store.iter_variants()) == ["OLD-1", "OLD-2"]
        assert not store.conn.in_transaction
        store.replace_variant_rows([[row(5, "AFTER")]])  # the store is usable at once
        assert [v.sku for v in store.iter_variants()] == ["AFTER"]


def test_a_failed_download_raises_its_own_error_and_keeps_the_old_cache(store_path):
    class Broken(Exception):
        pass

    def broken():
        yield [row(1, "NEW-1")]
        raise Broken("the download broke halfway")

    with Store.open(store_path) as store:
        store.replace_variants([variant(1, "OLD-1")])
        with pytest.raises(Broken, match="halfway"):
            store.replace_variant_rows(broken())
        assert [v.sku for v in store.iter_variants()] == ["OLD-1"]
        assert store.variants_by_sku("old-1")[0].variant_id == "gid://shopify/ProductVariant/1"


def test_each_key_is_sku_keys_computed_on_the_producing_thread(monkeypatch, store_path):
    """The rule has one home (matching.sku_key): the pipeline calls it for every code, on the
    thread that produces the rows, not the one that waits on SQLite."""
    callers = []
    real = store_module.sku_key

    def spying(code):
        callers.append(threading.get_ident())
        return real(code)

    monkeypatch.setattr(store_module, "sku_key", spying)
    with Store.open(store_path) as store:
        store.replace_variant_rows([[row(1, "\u200bAB"), row(2, "plain")]])
        assert len(callers) == 2 and threading.get_ident() not in callers
        assert store.variants_by_sku("ab")[0].variant_id == "gid://shopify/ProductVariant/1"


def test_the_cyclic_collector_waits_while_the_rows_are_produced_and_comes_back(store_path):
    """The parsed download is 100,000s of dicts and tuples without cycles (see bulk.paused_gc)."""
    seen = []

    def batches():
        for start in range(0, 3000, 1000):
            seen.append(gc.isenabled())
            yield [row(n, f"S-{n}") for n in range(start, start + 1000)]

    assert gc.isenabled()
    with Store.open(store_path) as store:
        assert store.replace_variant_rows(batches()) == 3000
    assert seen == [False, False, False]
    assert gc.isenabled()


def test_a_variant_listed_twice_is_cached_once_and_counted_once(store_path):
    with Store.open(store_path) as store:
        written = store.replace_variant_rows([[row(1, "FIRST"), row(2, "TWO")], [row(1, "AGAIN")]])
        assert written == store.variant_count() == 2
        assert [v.sku for v in store.variants_by_sku("again")] == ["AGAIN"]  # the last one wins
