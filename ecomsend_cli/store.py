"""The link store: the one place that speaks SQL.

A SQLite file (WAL, foreign keys on) holding the TikTok SKUs seen in pulled
orders, the Shopify variant cache, links and their history, pulled orders with
their resolved items and sync state, sync cursors and refreshed API tokens.

The schema is built by the migrations in :data:`MIGRATIONS`, each recorded in
the ``_migrations`` table; a store written by a newer ecomsend (a migration we
do not know) is refused rather than guessed at.

Writes go through :meth:`Store.transaction` (``BEGIN IMMEDIATE`` … ``COMMIT``)
with plain ``executemany``: sqlite-utils' own writers commit as they go, which
would break the all-or-nothing rule of DESIGN §4.1.

A SQLite failure (busy, disk full, damaged file, no permission) becomes one
:class:`StoreError` saying what happened and what to do, in
:func:`store_error`: at :meth:`Store.open`, in :meth:`Store.transaction`, and
(for plain reads) in the CLI's last-resort handler. The store keeps API tokens,
so it stays private: see :meth:`Store.keep_private`.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sqlite3
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .bulk import paused_gc, prefetched, quick_gil_handoff
from .errors import StoreError
from .matching import sku_key
from .models import InvalidOrder, Link, OrderItem, PulledOrder, TikTokSku, Variant, VariantColumns
from .store_after import AfterCreation, migrate_after_creation, migrate_cancelled_index, migrate_send_clock

if TYPE_CHECKING:
    import sqlite_utils

Migration = Callable[["sqlite_utils.Database"], None]


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second, as stored everywhere."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --- migrations -------------------------------------------------------------


def _m001_initial(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE tiktok_skus (
            sku_id TEXT PRIMARY KEY,
            product_id TEXT NOT NULL DEFAULT '',
            product_title TEXT NOT NULL DEFAULT '',
            sku_name TEXT NOT NULL DEFAULT '',
            seller_sku TEXT NOT NULL DEFAULT '',
            seller_sku_key TEXT,
            external_sku_id TEXT NOT NULL DEFAULT '',
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX idx_tiktok_skus_key ON tiktok_skus(seller_sku_key)")
    db.execute(
        """CREATE TABLE shopify_variants (
            variant_id TEXT PRIMARY KEY,
            product_id TEXT NOT NULL,
            product_title TEXT NOT NULL DEFAULT '',
            variant_title TEXT NOT NULL DEFAULT '',
            sku TEXT NOT NULL DEFAULT '',
            sku_key TEXT,
            inventory_item_id TEXT,
            inventory_quantity INTEGER,
            status TEXT NOT NULL DEFAULT 'ACTIVE',
            updated_at TEXT
        )"""
    )
    db.execute("CREATE INDEX idx_shopify_variants_key ON shopify_variants(sku_key)")
    db.execute("CREATE INDEX idx_shopify_variants_product ON shopify_variants(product_id)")
    db.execute(
        """CREATE TABLE links (
            tiktok_sku_id TEXT PRIMARY KEY REFERENCES tiktok_skus(sku_id),
            shopify_variant_id TEXT NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('feed', 'auto', 'manual', 'csv')),
            linked_at TEXT NOT NULL,
            linked_by TEXT NOT NULL DEFAULT ''
        )"""
    )
    db.execute("CREATE INDEX idx_links_variant ON links(shopify_variant_id)")
    db.execute(
        """CREATE TABLE link_history (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            tiktok_sku_id TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('link', 'relink', 'unlink')),
            old_variant_id TEXT,
            new_variant_id TEXT,
            source TEXT NOT NULL,
            actor TEXT NOT NULL DEFAULT ''
        )"""
    )
    db.execute("CREATE INDEX idx_link_history_sku ON link_history(tiktok_sku_id)")
    # Orders pulled from TikTok. `state` is ours (DESIGN §5): pending, waiting
    # (UNPAID/ON_HOLD), blocked, creating, synced, failed, skipped.
    db.execute(
        """CREATE TABLE orders (
            tiktok_order_id TEXT PRIMARY KEY,
            tiktok_status TEXT NOT NULL,
            state TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            shopify_order_id TEXT,
            shopify_order_name TEXT,
            create_time INTEGER,
            update_time INTEGER,
            currency TEXT NOT NULL DEFAULT '',
            total_amount TEXT NOT NULL DEFAULT '',
            payload TEXT NOT NULL,  -- empty since migration 006: see order_payloads
            first_pulled_at TEXT NOT NULL,
            last_pulled_at TEXT NOT NULL,
            state_changed_at TEXT NOT NULL,
            synced_at TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            cancelled_after_sync INTEGER NOT NULL DEFAULT 0
        )"""
    )
    db.execute("CREATE INDEX idx_orders_state ON orders(state)")
    # One row per TikTok SKU an order needs, after resolving one-line-per-unit
    # and combined listings (DESIGN §5.2).
    db.execute(
        """CREATE TABLE order_items (
            tiktok_order_id TEXT NOT NULL REFERENCES orders(tiktok_order_id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            sku_id TEXT NOT NULL REFERENCES tiktok_skus(sku_id),
            quantity INTEGER NOT NULL,
            unit_price TEXT NOT NULL DEFAULT '0',
            title TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (tiktok_order_id, position)
        )"""
    )
    db.execute("CREATE INDEX idx_order_items_sku ON order_items(sku_id)")
    db.execute("CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT, updated_at TEXT NOT NULL)")
    db.execute(
        "CREATE TABLE tokens (name TEXT PRIMARY KEY, data TEXT NOT NULL, updated_at TEXT NOT NULL)"
    )


def _m002_product_checked(db: sqlite_utils.Database) -> None:
    # When we last read the TikTok product detail (the only place TikTok gives
    # external_sku_id, §4.2), so sync asks once per product, not every run.
    db.execute("ALTER TABLE tiktok_skus ADD COLUMN product_checked_at TEXT")


def _m003_unique_order_sku(db: sqlite_utils.Database) -> None:
    # An order holds each SKU once (resolution merges its units), so counting
    # an SKU's blocked orders needs no DISTINCT: 0.3 s saved on 100k SKUs.
    db.execute("CREATE UNIQUE INDEX idx_order_items_order_sku ON order_items(tiktok_order_id, sku_id)")


def _m004_drop_links_variant_index(db: sqlite_utils.Database) -> None:
    # No query looks links up by variant; keeping the index cost ~0.5 s per 100k
    # links imported from CSV. Add it back with the first query that needs it.
    db.execute("DROP INDEX IF EXISTS idx_links_variant")


def _m005_claims(db: sqlite_utils.Database) -> None:
    # The §5.4 claim: who holds an order in `creating` (a compare-and-set on
    # claim_id), when by a clock a wall-clock step cannot move (boot id and
    # CLOCK_BOOTTIME), and how many runs have looked it up in Shopify in vain.
    for column in ("claim_id TEXT", "claim_boot TEXT", "claim_clock REAL",
                   "absent_lookups INTEGER NOT NULL DEFAULT 0", "last_lookup_run TEXT"):
        db.execute(f"ALTER TABLE orders ADD COLUMN {column}")


def _m006_order_payloads(db: sqlite_utils.Database) -> None:
    # TikTok's payload (kilobytes an order) moves to a table of its own: scans of
    # orders by state then read small rows, not the payloads (issue 15: 100,000
    # blocked orders cost 500 MB of pages to list). orders.payload stays, empty:
    # dropping a column needs SQLite 3.35, which not every Python links.
    db.execute(
        """CREATE TABLE order_payloads (
            tiktok_order_id TEXT PRIMARY KEY REFERENCES orders(tiktok_order_id) ON DELETE CASCADE,
            payload TEXT NOT NULL
        )"""
    )
    db.execute("INSERT INTO order_payloads (tiktok_order_id, payload) SELECT tiktok_order_id, payload FROM orders")
    db.execute("UPDATE orders SET payload = ''")


def _m007_sku_keys_without_format_chars(db: sqlite_utils.Database) -> None:
    # sku_key now drops format characters (zero-width space, BOM, soft hyphen,
    # DESIGN §4.1): recompute the stored keys so old rows join by the new rule.
    # Only a code with a non-ASCII character can have changed.
    for table, id_col, raw_col, key_col in (("tiktok_skus", "sku_id", "seller_sku", "seller_sku_key"),
                                            ("shopify_variants", "variant_id", "sku", "sku_key")):
        rows = db.conn.execute(f"SELECT {id_col}, {raw_col}, {key_col} FROM {table}")  # streamed
        changed = [(key, row_id) for row_id, raw, old in rows
                   if not (raw or "").isascii() and (key := sku_key(raw)) != old]
        db.conn.executemany(f"UPDATE {table} SET {key_col} = ? WHERE {id_col} = ?", changed)


def _m008_link_variant_sku(db: sqlite_utils.Database) -> None:
    # The variant's SKU when the link was made: a link whose variant later
    # changes SKU in Shopify is stale (DESIGN §4.1). Existing links take the
    # SKU the cache holds now (NULL when the variant is not cached).
    db.execute("ALTER TABLE links ADD COLUMN variant_sku TEXT")
    db.execute("UPDATE links SET variant_sku = (SELECT v.sku FROM shopify_variants v "
               "WHERE v.variant_id = links.shopify_variant_id)")


def _m009_sent_input(db: sqlite_utils.Database) -> None:
    # What was sent to Shopify at the claim (§5.7): verify-orders compares Shopify's
    # lines with what we meant, even after links change.
    db.execute("ALTER TABLE order_payloads ADD COLUMN sent_input TEXT")


def _m011_link_batches(db: sqlite_utils.Database) -> None:
    # Each autolink run and CSV import is a batch: its history rows share an id, so
    # `unlink --batch ID` can revert it in one go. NULL for single changes.
    db.execute("ALTER TABLE link_history ADD COLUMN batch_id INTEGER")
    db.execute("CREATE INDEX idx_link_history_batch ON link_history(batch_id) WHERE batch_id IS NOT NULL")


# --- each TikTok SKU's candidates, kept current ----------------------------------
#
# ``tiktok_skus.candidate_ids`` holds the ids of the cached variants whose SKU key
# equals the SKU's seller SKU key (space-separated, in no particular order; NULL
# when there are none): the join that suggestions and auto-link read, kept with
# the row instead of done again over 100,000 SKUs per listing (issue 13).
# Classifying the candidates (match, ambiguous, none) stays in matching.py.
# Triggers keep it current whoever writes, so no write path can forget it;
# :meth:`Store.replace_variant_rows` swaps them for one set-based pass. A bulk writer
# must do the same, and drop them before it drops idx_shopify_variants_key: each
# firing would otherwise scan the whole table (and count in total_changes).

_CANDIDATES_OF_KEY = (
    "(SELECT group_concat(v.variant_id, ' ') FROM shopify_variants v WHERE v.sku_key = {key})"
)
_CANDIDATES_UPDATE = (
    "UPDATE tiktok_skus SET candidate_ids = " + _CANDIDATES_OF_KEY.format(key="tiktok_skus.seller_sku_key")
)
# A variant that appears, goes or changes its key touches the SKUs of the key it
# had and of the key it has. (A row replaced by INSERT OR REPLACE fires no delete
# trigger unless recursive triggers are on, so the store updates variants with
# ON CONFLICT DO UPDATE instead.)
_VARIANT_TRIGGERS = {
    "trg_variants_candidates_insert": (
        "AFTER INSERT ON shopify_variants WHEN NEW.sku_key IS NOT NULL BEGIN "
        f"{_CANDIDATES_UPDATE} WHERE seller_sku_key = NEW.sku_key; END"
    ),
    "trg_variants_candidates_delete": (
        "AFTER DELETE ON shopify_variants WHEN OLD.sku_key IS NOT NULL BEGIN "
        f"{_CANDIDATES_UPDATE} WHERE seller_sku_key = OLD.sku_key; END"
    ),
    "trg_variants_candidates_update": (
        "AFTER UPDATE OF variant_id, sku_key ON shopify_variants "
        "WHEN OLD.variant_id IS NOT NEW.variant_id OR OLD.sku_key IS NOT NEW.sku_key BEGIN "
        f"{_CANDIDATES_UPDATE} WHERE seller_sku_key IN (OLD.sku_key, NEW.sku_key); END"
    ),
}
_SKU_TRIGGERS = {
    "trg_skus_candidates_insert": (
        "AFTER INSERT ON tiktok_skus WHEN NEW.seller_sku_key IS NOT NULL BEGIN "
        f"{_CANDIDATES_UPDATE} WHERE sku_id = NEW.sku_id; END"
    ),
    "trg_skus_candidates_update": (
        "AFTER UPDATE OF seller_sku_key ON tiktok_skus "
        "WHEN OLD.seller_sku_key IS NOT NEW.seller_sku_key BEGIN "
        f"{_CANDIDATES_UPDATE} WHERE sku_id = NEW.sku_id; END"
    ),
}


def _create_triggers(conn: sqlite3.Connection, triggers: dict[str, str]) -> None:
    for name, body in triggers.items():
        conn.execute(f"CREATE TRIGGER IF NOT EXISTS {name} {body}")


def _drop_triggers(conn: sqlite3.Connection, triggers: dict[str, str]) -> None:
    for name in triggers:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")


def _m012_sku_candidates(db: sqlite_utils.Database) -> None:
    db.execute("ALTER TABLE tiktok_skus ADD COLUMN candidate_ids TEXT")
    db.execute(_CANDIDATES_UPDATE + " WHERE seller_sku_key IS NOT NULL")
    _create_triggers(db.conn, _VARIANT_TRIGGERS)
    _create_triggers(db.conn, _SKU_TRIGGERS)


# --- each TikTok SKU's count of blocked orders, kept current -------------------------
#
# ``tiktok_skus.blocked_orders``: how many orders in state ``blocked`` hold the SKU
# (an order holds a SKU once: idx_order_items_order_sku). list-unlinked sorts
# and shows it for every SKU; counting it per listing cost two index probes per
# SKU. Triggers move it by one as an order enters or leaves ``blocked`` and as a
# blocked order's items come and go (record_order rewrites them; a new order has
# no items yet, the foreign key sees to that), so whoever writes orders keeps it;
# a recount per change would cost as much as the listing for a SKU in 100,000
# orders.

_ORDER_SKUS = "sku_id IN (SELECT sku_id FROM order_items WHERE tiktok_order_id = {order}.tiktok_order_id)"
_ITEM_IN_BLOCKED = (
    "(SELECT state FROM orders WHERE tiktok_order_id = {item}.tiktok_order_id) = 'blocked'"
)
_BLOCKED_TRIGGERS = {
    "trg_orders_blocked_update": (
        "AFTER UPDATE OF state ON orders "
        "WHEN (OLD.state = 'blocked') <> (NEW.state = 'blocked') BEGIN "
        "UPDATE tiktok_skus SET blocked_orders = blocked_orders "
        "+ CASE WHEN NEW.state = 'blocked' THEN 1 ELSE -1 END "
        f"WHERE {_ORDER_SKUS.format(order='NEW')}; END"
    ),
    # A blocked order's items go first, while it is still blocked (their trigger counts
    # them down), rather than by the cascade, whose order with this trigger is SQLite's.
    "trg_orders_blocked_delete": (
        "BEFORE DELETE ON orders WHEN OLD.state = 'blocked' BEGIN "
        "DELETE FROM order_items WHERE tiktok_order_id = OLD.tiktok_order_id; END"
    ),
    "trg_items_blocked_insert": (
        f"AFTER INSERT ON order_items WHEN {_ITEM_IN_BLOCKED.format(item='NEW')} BEGIN "
        "UPDATE tiktok_skus SET blocked_orders = blocked_orders + 1 WHERE sku_id = NEW.sku_id; END"
    ),
    "trg_items_blocked_delete": (
        f"AFTER DELETE ON order_items WHEN {_ITEM_IN_BLOCKED.format(item='OLD')} BEGIN "
        "UPDATE tiktok_skus SET blocked_orders = blocked_orders - 1 WHERE sku_id = OLD.sku_id; END"
    ),
    "trg_items_blocked_update": (
        "AFTER UPDATE OF tiktok_order_id, sku_id ON order_items BEGIN "
        "UPDATE tiktok_skus SET blocked_orders = blocked_orders - 1 "
        f"WHERE sku_id = OLD.sku_id AND {_ITEM_IN_BLOCKED.format(item='OLD')}; "
        "UPDATE tiktok_skus SET blocked_orders = blocked_orders + 1 "
        f"WHERE sku_id = NEW.sku_id AND {_ITEM_IN_BLOCKED.format(item='NEW')}; END"
    ),
}


def _m013_sku_blocked_orders(db: sqlite_utils.Database) -> None:
    db.execute("ALTER TABLE tiktok_skus ADD COLUMN blocked_orders INTEGER NOT NULL DEFAULT 0")
    db.execute(
        "UPDATE tiktok_skus SET blocked_orders = (SELECT count(*) FROM order_items i "
        "CROSS JOIN orders o ON o.tiktok_order_id = i.tiktok_order_id "
        "WHERE i.sku_id = tiktok_skus.sku_id AND o.state = 'blocked')"
    )
    _create_triggers(db.conn, _BLOCKED_TRIGGERS)


def _m015_sku_work_indexes(db: sqlite_utils.Database) -> None:
    # What every sync-orders run asks of the TikTok SKUs, read from the few rows it
    # concerns instead of a join of every SKU with its link: the SKUs whose product
    # detail was never read (nearly none once read), and those carrying an
    # external_sku_id (feed links, §4.2). A shop's 100,000 linked SKUs cost a cron
    # run 0.08 s before, every few minutes.
    db.execute("CREATE INDEX idx_tiktok_skus_unchecked ON tiktok_skus(product_id) "
               "WHERE product_checked_at IS NULL AND product_id <> ''")
    db.execute("CREATE INDEX idx_tiktok_skus_external ON tiktok_skus(sku_id) WHERE external_sku_id <> ''")


MIGRATIONS: list[tuple[str, Migration]] = [
    ("001_initial", _m001_initial),
    ("002_product_checked", _m002_product_checked),
    ("003_unique_order_sku", _m003_unique_order_sku),
    ("004_drop_links_variant_index", _m004_drop_links_variant_index),
    ("005_claims", _m005_claims),
    ("006_order_payloads", _m006_order_payloads),
    ("007_sku_keys_without_format_chars", _m007_sku_keys_without_format_chars),
    ("008_link_variant_sku", _m008_link_variant_sku),
    ("009_sent_input", _m009_sent_input),
    ("010_after_creation", migrate_after_creation),
    ("011_link_batches", _m011_link_batches),
    ("012_sku_candidates", _m012_sku_candidates),
    ("013_sku_blocked_orders", _m013_sku_blocked_orders),
    ("014_orders_cancelled_index", migrate_cancelled_index),
    ("015_sku_work_indexes", _m015_sku_work_indexes),
    ("016_send_clock", migrate_send_clock),
]
SCHEMA_VERSION = len(MIGRATIONS)


def _id_list(joined: str | None) -> tuple[str, ...]:
    """Ids from a ``group_concat(id, ' ')``, sorted; most rows hold none or one."""
    if not joined:
        return ()
    if " " not in joined:
        return (joined,)
    return tuple(sorted(joined.split(" ")))


_CHUNK = 900  # below SQLite's old 999-variable limit
_SCAN_FROM = 5000  # fewer ids than this: IN-lists, whatever the table size


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    items = list(values)
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


_MAX_ROWS_PER_INSERT = 1000  # rows of one multi-row INSERT in a full refresh (fewer if SQLite allows fewer)
_STORED_FIELDS = 10  # a row as stored: Variant's fields with the SKU key after the SKU


def _insert_groups(batches: Iterable[Sequence[Sequence[Any]]], size: int) -> Iterator[tuple[int, tuple]]:
    """``(rows, parameters)`` per INSERT of :meth:`Store.replace_variant_rows`: the rows of
    ``batches`` (in ``Variant``'s field order) with each SKU's :func:`sku_key` after it, laid
    end to end, ``size`` rows to a group (the last may be short)."""
    key = sku_key
    pending: list[tuple] = []
    for batch in batches:
        pending.extend((r[0], r[1], r[2], r[3], r[4], key(r[4]), r[5], r[6], r[7], r[8]) for r in batch)
        if len(pending) < size:
            continue
        whole = len(pending) - len(pending) % size
        for start in range(0, whole, size):
            yield size, tuple(chain.from_iterable(pending[start:start + size]))
        del pending[:whole]
    if pending:
        yield len(pending), tuple(chain.from_iterable(pending))


def _batches(rows: Iterable[Any], size: int = 5000) -> Iterator[list[Any]]:
    """``rows`` in lists of ``size`` (one ``executemany`` each)."""
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class SkuInfo(NamedTuple):
    """A TikTok SKU as the CSV import shows it."""

    sku_id: str
    seller_sku: str
    product_title: str
    sku_name: str


class VariantInfo(NamedTuple):
    """A cached Shopify variant as the CSV import shows it."""

    variant_id: str
    sku: str
    product_title: str
    variant_title: str


# --- SQLite errors as the operator should read them ---------------------------

# Primary result codes (https://sqlite.org/rescode.html); Python gives the extended
# code in `sqlite_errorcode`, whose low byte is the primary one.
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_READONLY, _SQLITE_IOERR = 3, 5, 8, 10
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 13, 14, 26
_SQLITE_IOERR_READ = 266
_DAMAGED_HINT = (
    "restore it from a backup, or move it away to start an empty store (links and order states "
    "would be lost); `ecomsend doctor` checks it"
)


def store_error(exc: sqlite3.Error, path: Path, *, busy_timeout: float) -> StoreError:
    """The :class:`StoreError` an operator should read for a SQLite failure on the store at ``path``.

    ``busy_timeout`` is how long SQLite waited for another writer (it waits the
    whole of it before giving up), said in the message of a busy store.
    """
    code = getattr(exc, "sqlite_errorcode", None) or _code_from_text(str(exc))
    primary = code & 0xFF
    if primary == _SQLITE_BUSY:
        holders = lock_holders(path)
        who = ", ".join(f"pid {pid} ({cmd})" if cmd else f"pid {pid}" for pid, cmd in holders)
        return StoreError(
            f"the store {path} is busy: {who or 'another process'} is writing to it; "
            f"gave up after waiting {busy_timeout:g} s",
            hint="let it finish and run the command again, or wait longer: raise "
            "store_busy_timeout_seconds in the config",
        )
    if primary == _SQLITE_FULL or (primary == _SQLITE_IOERR and code != _SQLITE_IOERR_READ):
        full = "the disk is full" if primary == _SQLITE_FULL else "a write failed (disk full or a file-size limit?)"
        return StoreError(
            f"cannot write to the store {path}: {full}; the change was rolled back, nothing was half-written",
            hint=f"free some space on the disk that holds {path.parent}, then run the command again",
        )
    if primary == _SQLITE_CORRUPT or code == _SQLITE_IOERR_READ:
        return StoreError(f"the store file {path} is damaged ({exc})", hint=_DAMAGED_HINT)
    if primary == _SQLITE_NOTADB:
        return StoreError(
            f"{path} is not an ecomsend store (not a SQLite database)",
            hint="point --store at another file, or move this one away",
        )
    if primary in (_SQLITE_READONLY, _SQLITE_CANTOPEN, _SQLITE_PERM):
        return _access_error(path, primary == _SQLITE_READONLY, exc)
    return StoreError(
        f"the store {path} failed: {exc}",
        hint="run `ecomsend doctor`; if it finds nothing wrong, please report this as a bug",
    )


def _code_from_text(message: str) -> int:
    # Errors raised without a code (older Pythons, or raised by the module itself).
    for text, code in (("locked", _SQLITE_BUSY), ("malformed", _SQLITE_CORRUPT),
                       ("is full", _SQLITE_FULL), ("not a database", _SQLITE_NOTADB),
                       ("readonly", _SQLITE_READONLY), ("unable to open", _SQLITE_CANTOPEN)):
        if text in message:
            return code
    return 0


def _access_error(path: Path, writing: bool, exc: sqlite3.Error) -> StoreError:
    """Why the store cannot be opened or written, found by trying what SQLite needs."""
    folder = path.parent
    try:
        os.close(os.open(path, os.O_RDWR))
    except OSError as err:
        what = f"{path}: {err.strerror.lower() if err.strerror else err}"
        return StoreError(
            f"cannot {'write to' if writing else 'open'} the store {what}",
            hint=f"let this user read and write it (ls -l {path}; chmod u+rw {path}), "
            "or point --store elsewhere",
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        return StoreError(
            f"cannot use the store {path}: its folder {folder} is not writable, and SQLite needs "
            f"to create {path.name}-wal and {path.name}-shm beside it, even to read",
            hint=f"let this user write to {folder}, or point --store elsewhere",
        )
    return StoreError(
        f"cannot {'write to' if writing else 'open'} the store {path} ({exc})",
        hint=f"check that {path}, its -wal and -shm files and {folder} are writable by this user "
        "and not on a read-only mount",
    )


def lock_holders(path: Path) -> list[tuple[int, str]]:
    """``(pid, command)`` of other processes holding a write lock on the store.

    SQLite takes POSIX locks on the store file and, in WAL mode, on its ``-shm``
    file; Linux lists them by inode in ``/proc/locks``. Elsewhere, or when that
    cannot be read, the list is empty.
    """
    # Inodes only: /proc/locks gives the device of the superblock, which is not
    # always the st_dev that stat reports (overlayfs, btrfs subvolumes).
    inodes = set()
    for name in (path, _sibling(path, "-wal"), _sibling(path, "-shm")):
        try:
            inodes.add(os.stat(name).st_ino)
        except OSError:
            continue
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return []
    pids: list[int] = []
    for line in text.splitlines():
        # "1: POSIX  ADVISORY  WRITE 14209 fe:00:2211922 120 120"; a waiting lock has "->" after the id
        parts = line.split()
        if len(parts) < 6 or parts[1] == "->" or parts[3] != "WRITE":
            continue
        try:
            pid, inode = int(parts[4]), int(parts[5].rsplit(":", 1)[1])
        except (ValueError, IndexError):
            continue
        if inode in inodes and pid > 0 and pid != os.getpid() and pid not in pids:
            pids.append(pid)
    return [(pid, _command_of(pid)) for pid in pids]


_PLAIN_WORD = re.compile(r"[a-z][a-z-]{0,23}")


def _command_of(pid: int) -> str:
    """The program and its plain-word arguments (``python3 ecomsend sync-orders``).

    Paths are shortened to their last part and every other argument is left
    out: another program's command line may hold a secret.
    """
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    words = []
    for n, arg in enumerate(raw.decode("utf-8", "replace").split("\0")):
        name = arg.rsplit("/", 1)[-1] if n < 2 else arg
        if _PLAIN_WORD.fullmatch(name) or (n < 2 and re.fullmatch(r"[\w.-]{1,32}", name)):
            words.append(name)
    return " ".join(words[:6])


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _others_can_read(path: Path) -> bool:
    try:
        return bool(os.stat(path).st_mode & (stat.S_IRGRP | stat.S_IROTH))
    except OSError:
        return False


# --- the store --------------------------------------------------------------


class SkuRow(NamedTuple):
    """A TikTok SKU as ``list-unlinked`` shows it: flat, as listings hold 100,000s of them."""

    sku_id: str
    product_id: str
    product_title: str
    sku_name: str
    seller_sku: str
    external_sku_id: str
    blocked_orders: int
    link_variant_id: str | None
    link_source: str | None
    linked_at: str | None
    linked_by: str | None
    candidate_ids: str | None  # variant ids whose SKU key equals this SKU's (tiktok_skus.candidate_ids)

    @property
    def candidates(self) -> tuple[str, ...]:
        return _id_list(self.candidate_ids)

    @property
    def sku(self) -> TikTokSku:
        return TikTokSku(*self[:6])

    @property
    def link(self) -> Link | None:
        if self.link_variant_id is None:
            return None
        return Link(self.sku_id, self.link_variant_id, self.link_source or "",
                    self.linked_at or "", self.linked_by or "")


@dataclass(frozen=True)
class OrderRow:
    """A stored order with its resolved items, as the sync engine and `orders` read it."""

    tiktok_order_id: str
    tiktok_status: str
    state: str
    reason: str
    shopify_order_id: str | None
    shopify_order_name: str | None
    update_time: int | None
    state_changed_at: str
    attempts: int
    cancelled_after_sync: bool
    payload: dict
    items: tuple[OrderItem, ...]
    create_time: int | None = None
    claim_id: str | None = None
    claim_boot: str | None = None
    claim_clock: float | None = None
    absent_lookups: int = 0
    last_lookup_run: str | None = None

    @property
    def state_changed_epoch(self) -> float:
        return datetime.fromisoformat(self.state_changed_at.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class ClaimStamp:
    """Who claims an order and when (DESIGN §5.4).

    ``boot`` and ``clock`` come from a clock that a wall-clock step cannot
    move (the boot id and CLOCK_BOOTTIME on Linux); ``run_id`` names the run.
    """

    claim_id: str
    run_id: str
    boot: str | None
    clock: float


class Claimable(NamedTuple):
    """An order that may be claimed, without its payload: the sync engine streams 100,000s."""

    tiktok_order_id: str
    state: str
    reason: str
    attempts: int
    create_time: int | None
    missing: tuple[str, ...]  # its SKUs with no link, sorted
    skus: tuple[str, ...]  # all its SKUs, sorted


class CreatedOrder(NamedTuple):
    """An order ecomsend created in Shopify, as verify-orders compares it."""

    tiktok_order_id: str
    tiktok_status: str
    shopify_order_id: str
    shopify_order_name: str | None
    payload: dict | None
    sent_input: dict | None  # what the claim sent (None for orders sent before it was kept)
    line_map: dict | None = None  # TikTok line item id -> the variants it went to, at the claim


class OrderSummary(NamedTuple):
    """A stored order as ``orders`` lists it (no payload)."""

    tiktok_order_id: str
    tiktok_status: str
    state: str
    reason: str
    shopify_order_id: str | None
    shopify_order_name: str | None
    cancelled_after_sync: bool
    missing: tuple[str, ...]
    skus: tuple[str, ...] = ()  # all its SKUs, for blocked orders only (to tell stale links)


class OrderTimes(NamedTuple):
    """When things happened to a stored order (``orders show``), ISO 8601 UTC."""

    first_pulled_at: str
    last_pulled_at: str
    state_changed_at: str
    synced_at: str | None


# States an order may be claimed from (pending|blocked|failed -> creating, §5.4).
CLAIMABLE = ("pending", "blocked", "failed")
# States a pulled page never overwrites: the order is, or may be, in Shopify.
_KEPT_STATES = "('creating', 'synced')"


@dataclass(frozen=True)
class HistoryRow:
    id: int
    at: str
    tiktok_sku_id: str
    action: str
    old_variant_id: str | None
    new_variant_id: str | None
    source: str
    actor: str
    batch_id: int | None = None


class BatchRevert(NamedTuple):
    """What reverting a batch does: ``reverted`` ``{sku_id: (now, back to)}``, and ``kept``
    ``{sku_id: (the batch's link, the link now)}`` for links changed since the batch."""

    batch_id: int
    reverted: dict[str, tuple[str | None, str | None]]
    kept: dict[str, tuple[str | None, str | None]]


class LinkRow(NamedTuple):
    """A link with what the listings show of it: its TikTok SKU and, when cached, its variant."""

    tiktok_sku_id: str
    seller_sku: str
    tiktok_product_title: str
    sku_name: str
    shopify_variant_id: str
    source: str
    linked_at: str
    cached: bool  # the variant is in the catalog cache; the three below are "" when not
    variant_sku: str
    product_title: str
    variant_title: str


class LinkChange(NamedTuple):
    """One link to write; ``old`` is the variant it replaces, if any (a tuple: imports make 100,000s)."""

    tiktok_sku_id: str
    new: str
    old: str | None = None


class StaleLink(NamedTuple):
    """A link whose Shopify variant was deleted, or changed SKU, since it was made (DESIGN §4.1)."""

    tiktok_sku_id: str
    shopify_variant_id: str
    linked_sku: str | None  # the variant's SKU when linked; None when it was not cached then
    current_sku: str | None  # None: the variant is gone from the refreshed catalog

    @property
    def deleted(self) -> bool:
        return self.current_sku is None

    @property
    def problem(self) -> str:
        """What happened, in a few words (a table cell)."""
        if self.deleted:
            return "variant deleted in Shopify"
        return f"variant SKU changed {self.linked_sku!r} → {self.current_sku!r}"

    @property
    def reason(self) -> str:
        """What happened and the fix, in one line (an order's reason, a listing's ``stale`` field)."""
        sku, variant = self.tiktok_sku_id, self.shopify_variant_id
        unlink = f"or `ecomsend unlink {sku} --yes`"
        if self.deleted:
            was = f" ({self.linked_sku!r})" if self.linked_sku else ""
            return (f"stale link: linked variant {variant}{was} was deleted in Shopify: relink it to a variant "
                    f"that exists (`ecomsend list-unlinked --all --search {sku}`), {unlink}")
        return (f"stale link: the SKU of linked variant {variant} changed in Shopify from "
                f"{self.linked_sku!r} to {self.current_sku!r}: if it is still the right variant, "
                f"confirm it with `ecomsend link {sku} {variant} --force`; else relink it to "
                f"another variant, {unlink}")


CATALOG_REFRESHED_KEY = "catalog.refreshed_at"  # state row: when the last catalog refresh started
CREATED_KEY = "store.created_at"  # state row: ecomsend created this file (so it may chmod it)


class ToSend(NamedTuple):
    """What a claim sends (kept, for verify-orders) and where each TikTok line item goes (§6b)."""

    order_input: dict
    line_map: dict[str, list[str]]  # TikTok line item id -> the variant GIDs it needs


class Store(AfterCreation):
    """An open link store. Use :meth:`open`; close with :meth:`close` or ``with``.

    ``warnings`` collects what the operator should hear about the store (it is
    readable by others while holding tokens); the core never prints, the CLI does.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, *, busy_timeout: float = 10) -> None:
        self.path = path
        self.conn = conn
        self.busy_timeout = busy_timeout
        self.warnings: list[str] = []

    def error(self, exc: sqlite3.Error) -> StoreError:
        """``exc`` as the operator should read it (see :func:`store_error`)."""
        return store_error(exc, self.path, busy_timeout=self.busy_timeout)

    @property
    def db(self) -> sqlite_utils.Database:
        """The sqlite-utils view of the store, for migrations (imported on demand: it pulls
        in numpy when installed, a quarter second that commands need not pay)."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    def table_names(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    # -- opening ---------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, *, create_folder: bool = False, busy_timeout: float = 10) -> Store:
        """Open (and migrate) the store at ``path``.

        ``create_folder`` creates a missing parent folder (used for the
        default location); otherwise a missing folder is an error, so a
        mistyped ``--store`` does not silently create a new empty store.
        ``busy_timeout``: seconds to wait for another process's write
        transaction before giving up with a :class:`StoreError`.
        """
        path = Path(path).expanduser()
        folder = path.parent
        if not folder.is_dir():
            if create_folder:
                folder.mkdir(parents=True, exist_ok=True)
            else:
                raise StoreError(
                    f"store folder {folder} does not exist",
                    hint=f"create it (mkdir -p {folder}) or point --store elsewhere",
                )
        if path.is_dir():
            raise StoreError(f"store path {path} is a folder", hint="give a file path to --store")
        created = False
        if not path.exists():
            # The store keeps refreshed API tokens: private from the start (SQLite
            # gives its -wal and -shm files the same mode).
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                created = True
            except FileExistsError:
                pass  # another process created it a moment ago
            except OSError as exc:
                raise StoreError(
                    f"cannot create store {path}: {exc.strerror}",
                    hint=f"let this user write to {folder}, or point --store elsewhere",
                ) from None
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout)
        except sqlite3.Error as exc:
            raise store_error(exc, path, busy_timeout=busy_timeout) from None
        store = cls(path, conn, busy_timeout=busy_timeout)
        try:
            store._prepare(created=created)
            store.keep_private()
            store.check_links()
        except sqlite3.Error as exc:
            conn.close()
            raise store.error(exc) from None
        except StoreError:
            conn.close()
            raise
        return store

    def _prepare(self, *, created: bool = False) -> None:
        # Any read fails fast on a file that is not SQLite, before we write anything.
        tables = self.table_names()
        applied = self._applied_migrations(tables)
        known = [name for name, _ in MIGRATIONS]
        unknown = [name for name in applied if name not in known]
        if unknown:
            raise StoreError(
                f"{self.path} was written by a newer ecomsend (schema {len(applied)}, "
                f"this version knows {SCHEMA_VERSION})",
                hint="upgrade ecomsend (pip install -U ecomsend) or use another --store",
            )
        if tables and "_migrations" not in tables:
            raise StoreError(
                f"{self.path} is a SQLite database but not an ecomsend store",
                hint="point --store at another file",
            )
        pending = [n for n, _ in MIGRATIONS if n not in applied]
        if pending:
            self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        # Reads of large catalogs run faster memory-mapped (autolink on 250k
        # variants: 0.77 s against 0.99 s), and a 64 MB page cache (allocated only
        # as used) keeps index inserts of a 250k-variant refresh from thrashing:
        # 7 s -> 3 s when ids arrive unordered. The map is capped at 128 MB: every
        # page it touches (and the kernel's read-around) counts as the process's
        # memory, so a 500 MB store of orders must not be mapped whole (issue 15).
        self.conn.execute("PRAGMA mmap_size=134217728")
        self.conn.execute("PRAGMA cache_size=-65536")
        if pending:
            self._migrate()
        if created:
            # Only a file we made may be chmod-ed back to private (keep_private);
            # one the operator made, perhaps shared on purpose, only draws a warning.
            self.set_state(CREATED_KEY, now_iso())

    def keep_private(self) -> None:
        """Keep the store (and its -wal and -shm) unreadable by other users: it keeps API tokens.

        A file ecomsend created is chmod-ed back to 0600 (and says so); any
        other, once it holds a token, draws a warning in :attr:`warnings` with
        the command that fixes it. Called at open and after each saved token.
        """
        if os.name == "nt":
            return  # no Unix permission bits to read
        exposed = [p for p in (self.path, _sibling(self.path, "-wal"), _sibling(self.path, "-shm"))
                   if _others_can_read(p)]
        if not exposed:
            return
        if self.get_state(CREATED_KEY) is not None:
            try:
                for p in exposed:
                    os.chmod(p, 0o600)
                self._warn(f"{self.path} could be read by other users; ecomsend created it, so it made "
                           "it private again (chmod 600)")
                return
            except OSError:
                pass  # not ours to chmod after all (another owner): warn instead
        if self.conn.execute("SELECT 1 FROM tokens LIMIT 1").fetchone() is None:
            return
        self._warn(f"{self.path} holds API tokens and can be read by other users; "
                   f"run: chmod 600 {' '.join(str(p) for p in exposed)}")

    def check_links(self) -> None:
        """Warn when the store file has more than one name (hard links).

        SQLite names a database's -wal and -shm files after the name it was
        opened by, so two names for one file give two write-ahead logs and
        writes can be lost. ``sync-orders`` is safe (its lock belongs to the
        file), but other commands are not.
        """
        try:
            links = os.stat(self.path).st_nlink
        except OSError:
            return
        if links > 1:
            self._warn(f"{self.path} has {links} names (hard links); SQLite can lose writes when one "
                       "store is opened by two names: keep one name, use a symlink for the others")

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def quick_check(self) -> None:
        """Raise :class:`StoreError` if SQLite's ``PRAGMA quick_check`` finds the file damaged."""
        try:
            problems = [r[0] for r in self.conn.execute("PRAGMA quick_check(5)")]
        except sqlite3.Error as exc:
            raise self.error(exc) from None
        if problems != ["ok"]:
            raise StoreError(
                f"the store file {self.path} is damaged (quick_check: {'; '.join(problems)})",
                hint=_DAMAGED_HINT,
            )

    def _migrate(self) -> None:
        # One transaction for all: a second process opening a new store at the
        # same moment waits here, then finds the migrations applied.
        db = self.db
        with self.transaction():
            tables = self.table_names()
            if "_migrations" not in tables:
                self.conn.execute(
                    "CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
                )
            applied = set(self._applied_migrations(tables | {"_migrations"}))
            for name, migration in MIGRATIONS:
                if name in applied:
                    continue
                migration(db)
                self.conn.execute(
                    "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, now_iso())
                )

    def _applied_migrations(self, tables: set[str]) -> list[str]:
        if "_migrations" not in tables:
            return []
        return [r[0] for r in self.conn.execute("SELECT name FROM _migrations ORDER BY rowid")]

    @property
    def schema_version(self) -> int:
        return len(self._applied_migrations(self.table_names()))

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing: ``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any error."""
        if self.conn.in_transaction:  # nested: join the outer transaction
            yield self.conn
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")  # waits up to busy_timeout for another writer
        except sqlite3.Error as exc:
            raise self.error(exc) from None
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as exc:
            # A failed write (disk full, I/O error) may have rolled back already.
            if self.conn.in_transaction:
                try:
                    self.conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the error that brought us here is the one to report
            if isinstance(exc, sqlite3.Error):
                raise self.error(exc) from None
            raise

    # -- key/value state and tokens (TokenCache) ---------------------------------

    def get_state(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str | None) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (key, value, now_iso()),
            )

    def load_token(self, name: str) -> dict | None:
        row = self.conn.execute("SELECT data FROM tokens WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def save_token(self, name: str, data: dict) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO tokens (name, data, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET data = excluded.data, "
                "updated_at = excluded.updated_at",
                (name, json.dumps(data), now_iso()),
            )
        self.keep_private()

    def forget_token(self, name: str) -> bool:
        """Delete the token cache entry ``name`` (``ecomsend auth logout``); True if there was one."""
        with self.transaction():
            gone = self.conn.execute("DELETE FROM tokens WHERE name = ?", (name,)).rowcount
        return bool(gone)

    # -- Shopify variant cache --------------------------------------------------

    _VARIANT_COLS = (
        "variant_id, product_id, product_title, variant_title, sku, sku_key, "
        "inventory_item_id, inventory_quantity, status, updated_at"
    )

    @staticmethod
    def _variant_params(variants: Iterable[Variant]) -> Iterator[tuple]:
        for v in variants:
            yield (
                v.variant_id, v.product_id, v.product_title, v.variant_title, v.sku,
                sku_key(v.sku), v.inventory_item_id, v.inventory_quantity, v.status, v.updated_at,
            )

    def replace_variants(self, variants: Iterable[Variant]) -> int:
        """Replace the whole cache with ``variants``, in one transaction. Returns the count."""
        rows = ((v.variant_id, v.product_id, v.product_title, v.variant_title, v.sku, v.inventory_item_id,
                 v.inventory_quantity, v.status, v.updated_at) for v in variants)
        return self.replace_variant_rows(_batches(rows))

    def replace_variant_rows(self, batches: Iterable[Sequence[Sequence[Any]]]) -> int:
        """Replace the whole cache (a full refresh) with ``batches`` of rows in the field order
        of :class:`~ecomsend_cli.models.Variant`, in one transaction. Returns the count.

        Rows, not ``Variant`` objects: a bulk refresh of 250,000 variants spent
        0.5 s building objects only to take them apart here.

        A pipeline on two cores (issue 13: 250,000 variants, 2.2 s -> 1.7 s):
        ``batches`` is read by a thread of its own (:func:`~ecomsend_cli.bulk.prefetched`:
        the download, its parsing and the join run there) while this thread
        inserts the rows up to :data:`_MAX_ROWS_PER_INSERT` to a statement.
        SQLite releases the GIL while it runs a statement, so the two overlap;
        one row per statement handed the GIL back and forth 250,000 times. The
        SKU keys are :func:`~ecomsend_cli.matching.sku_key`'s, computed on the
        producing thread: the rule has one home.

        The SKU-key index is dropped and built again after the insert: one sort
        beats 250,000 random index inserts (3.1 s -> 2.2 s). The product index
        stays: a bulk file lists each product's variants together, products in
        order, so its inserts append and cost less than a rebuild after the
        insert, which nothing overlaps. The triggers that keep each TikTok SKU's
        candidates are dropped too: one pass over the SKUs afterwards beats a
        trigger per variant deleted and inserted.
        """
        conn = self.conn
        size = max(1, min(_MAX_ROWS_PER_INSERT,
                          conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // _STORED_FIELDS))
        insert = f"INSERT OR REPLACE INTO shopify_variants ({self._VARIANT_COLS}) VALUES "
        row = "(" + ",".join("?" * _STORED_FIELDS) + ")"
        statements: dict[int, str] = {}
        with self.transaction():
            _drop_triggers(conn, _VARIANT_TRIGGERS)
            conn.execute("DROP INDEX IF EXISTS idx_shopify_variants_key")
            conn.execute("DELETE FROM shopify_variants")
            with paused_gc(), quick_gil_handoff(), closing(prefetched(_insert_groups(batches, size))) as groups:
                for rows, params in groups:
                    sql = statements.get(rows)
                    if sql is None:
                        sql = statements[rows] = insert + ",".join([row] * rows)
                    conn.execute(sql, params)
            conn.execute("CREATE INDEX idx_shopify_variants_key ON shopify_variants(sku_key)")
            conn.execute(_CANDIDATES_UPDATE + " WHERE seller_sku_key IS NOT NULL OR candidate_ids IS NOT NULL")
            _create_triggers(conn, _VARIANT_TRIGGERS)
            # A variant listed twice is cached once (the last wins): count what the cache holds.
            return self.variant_count()

    def upsert_variants(self, variants: Iterable[Variant], *, product_ids: Sequence[str] = ()) -> int:
        """Insert or update variants (an incremental refresh). Returns the count.

        ``product_ids``: products fetched in full, whose cached variants not in
        ``variants`` were deleted in Shopify and are dropped here.
        """
        variants = list(variants)
        with self.transaction() as conn:
            if product_ids:
                keep = {v.variant_id for v in variants}
                for pid in product_ids:
                    for (vid,) in conn.execute(
                        "SELECT variant_id FROM shopify_variants WHERE product_id = ?", (pid,)
                    ).fetchall():
                        if vid not in keep:
                            conn.execute("DELETE FROM shopify_variants WHERE variant_id = ?", (vid,))
            # An update, not INSERT OR REPLACE: a replaced row fires no delete trigger, and
            # the SKUs of a variant's old SKU key must lose it as a candidate.
            conn.executemany(
                f"INSERT INTO shopify_variants ({self._VARIANT_COLS}) "
                "VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(variant_id) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in self._VARIANT_COLS.split(", ")[1:]),
                self._variant_params(variants),
            )
        return len(variants)

    @staticmethod
    def _variant(row: Sequence[Any]) -> Variant:
        return Variant(
            variant_id=row[0], product_id=row[1], product_title=row[2], variant_title=row[3],
            sku=row[4], inventory_item_id=row[6], inventory_quantity=row[7], status=row[8],
            updated_at=row[9],
        )

    def variant(self, variant_id: str) -> Variant | None:
        row = self.conn.execute(
            f"SELECT {self._VARIANT_COLS} FROM shopify_variants WHERE variant_id = ?",
            (variant_id,),
        ).fetchone()
        return self._variant(row) if row else None

    def variants(self, variant_ids: Iterable[str]) -> dict[str, Variant]:
        """The cached variants among ``variant_ids``, by id."""
        return {row[0]: self._variant(row) for row in self._select_in(
            f"SELECT {self._VARIANT_COLS} FROM shopify_variants WHERE variant_id IN ({{marks}})",
            dict.fromkeys(variant_ids),
        )}

    def variants_by_sku(self, code: str) -> list[Variant]:
        """Variants whose SKU equals ``code`` after normalisation (§4.1)."""
        key = sku_key(code)
        if key is None:
            return []
        rows = self.conn.execute(
            f"SELECT {self._VARIANT_COLS} FROM shopify_variants WHERE sku_key = ? "
            "ORDER BY variant_id",
            (key,),
        )
        return [self._variant(r) for r in rows]

    def iter_variants(self) -> Iterator[Variant]:
        for row in self.conn.execute(f"SELECT {self._VARIANT_COLS} FROM shopify_variants"):
            yield self._variant(row)

    def variant_search_columns(self) -> VariantColumns:
        """Every cached variant's id, SKU key and titles, column by column, for the picker's index.

        Each column is one string, a line per variant, joined by SQLite in one
        scan (so the lines of the columns stay in step): 250,000 Variant
        objects, or row tuples, took most of the picker's start-up and
        150 MB. Newlines inside titles become spaces.
        """
        count, *columns = self.conn.execute(
            "SELECT count(*), group_concat(variant_id, char(10)), group_concat(coalesce(sku_key, ''), char(10)), "
            "group_concat(replace(product_title, char(10), ' '), char(10)), "
            "group_concat(replace(variant_title, char(10), ' '), char(10)) FROM shopify_variants"
        ).fetchone()
        return VariantColumns(*(c or "" for c in columns), count=count)

    def variant_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM shopify_variants").fetchone()[0]

    # -- TikTok SKUs ------------------------------------------------------------

    _SKU_COLS = "sku_id, product_id, product_title, sku_name, seller_sku, external_sku_id"

    def upsert_tiktok_skus(self, skus: Iterable[TikTokSku]) -> None:
        """Record TikTok SKUs seen in orders; newer details replace older ones."""
        now = now_iso()
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO tiktok_skus (sku_id, product_id, product_title, sku_name, seller_sku, "
                "seller_sku_key, external_sku_id, first_seen, last_seen) "
                "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(sku_id) DO UPDATE SET "
                "product_id = excluded.product_id, product_title = excluded.product_title, "
                "sku_name = excluded.sku_name, seller_sku = excluded.seller_sku, "
                "seller_sku_key = excluded.seller_sku_key, "
                "external_sku_id = CASE WHEN excluded.external_sku_id <> '' "
                "THEN excluded.external_sku_id ELSE tiktok_skus.external_sku_id END, "
                "last_seen = excluded.last_seen",
                (
                    (s.sku_id, s.product_id, s.product_title, s.sku_name, s.seller_sku,
                     sku_key(s.seller_sku), s.external_sku_id, now, now)
                    for s in skus
                ),
            )

    @staticmethod
    def _sku(row: Sequence[Any]) -> TikTokSku:
        return TikTokSku(*row[:6])

    def tiktok_sku(self, sku_id: str) -> TikTokSku | None:
        row = self.conn.execute(
            f"SELECT {self._SKU_COLS} FROM tiktok_skus WHERE sku_id = ?", (sku_id,)
        ).fetchone()
        return self._sku(row) if row else None

    def tiktok_skus_by_seller_sku(self, code: str) -> list[TikTokSku]:
        key = sku_key(code)
        if key is None:
            return []
        rows = self.conn.execute(
            f"SELECT {self._SKU_COLS} FROM tiktok_skus WHERE seller_sku_key = ? ORDER BY sku_id",
            (key,),
        )
        return [self._sku(r) for r in rows]

    def tiktok_sku_ids(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT sku_id FROM tiktok_skus")}

    def external_sku_ids(self) -> list[tuple[str, str]]:
        """``(sku_id, external_sku_id)`` for unlinked SKUs that carry one."""
        return self.conn.execute(  # from idx_tiktok_skus_external: the SKUs that carry one
            "SELECT t.sku_id, t.external_sku_id FROM tiktok_skus t WHERE t.external_sku_id <> '' "
            "AND NOT EXISTS (SELECT 1 FROM links l WHERE l.tiktok_sku_id = t.sku_id)"
        ).fetchall()

    # -- candidates and listings ------------------------------------------------

    def autolink_candidates(self) -> Iterator[tuple[str, str, list[str]]]:
        """``(sku_id, seller_sku, [variant ids with an equal SKU key])`` for unlinked SKUs.

        The join on the stored normalised keys is kept with each SKU
        (``candidate_ids``, see :data:`_VARIANT_TRIGGERS`); empty codes have a
        NULL key and so join nothing (§4.1).
        """
        rows = self.conn.execute(
            "SELECT t.sku_id, t.seller_sku, t.candidate_ids FROM tiktok_skus t "
            "LEFT JOIN links l ON l.tiktok_sku_id = t.sku_id "
            "WHERE l.tiktok_sku_id IS NULL ORDER BY t.sku_id"
        )
        for sku_id, seller_sku, joined in rows:
            yield sku_id, seller_sku, _id_list(joined)

    def sku_rows(self, *, include_linked: bool = False, sku_ids: Sequence[str] = ()) -> list[SkuRow]:
        """TikTok SKUs with their blocked-order count, link and SKU-equal candidates."""
        where = [] if include_linked else ["l.tiktok_sku_id IS NULL"]
        params: list[Any] = []
        if sku_ids:
            where.append(f"t.sku_id IN ({','.join('?' * len(sku_ids))})")
            params.extend(sku_ids)
        sql = (
            "SELECT t.sku_id, t.product_id, t.product_title, t.sku_name, t.seller_sku, "
            "t.external_sku_id, "
            "t.blocked_orders AS blocked, "
            "l.shopify_variant_id, l.source, l.linked_at, l.linked_by, t.candidate_ids "
            "FROM tiktok_skus t LEFT JOIN links l ON l.tiktok_sku_id = t.sku_id "
            + (f"WHERE {' AND '.join(where)} " if where else "")
            + "ORDER BY blocked DESC, t.product_title, t.sku_id"
        )
        with paused_gc():
            return list(map(functools.partial(tuple.__new__, SkuRow), self.conn.execute(sql, params)))

    def search_variants(self, text: str, *, limit: int = 2000) -> list[Variant]:
        """Variants whose SKU or title contains ``text`` (case-insensitive), for the picker."""
        like = "%" + text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self.conn.execute(
            f"SELECT {self._VARIANT_COLS} FROM shopify_variants "
            "WHERE sku LIKE ? ESCAPE '\\' OR product_title LIKE ? ESCAPE '\\' "
            "OR variant_title LIKE ? ESCAPE '\\' LIMIT ?",
            (like, like, like, limit),
        )
        return [self._variant(r) for r in rows]

    # -- links ------------------------------------------------------------------

    def link(self, sku_id: str) -> Link | None:
        row = self.conn.execute(
            "SELECT tiktok_sku_id, shopify_variant_id, source, linked_at, linked_by "
            "FROM links WHERE tiktok_sku_id = ?",
            (sku_id,),
        ).fetchone()
        return Link(*row) if row else None

    def links(self) -> list[Link]:
        return [
            Link(*r)
            for r in self.conn.execute(
                "SELECT tiktok_sku_id, shopify_variant_id, source, linked_at, linked_by "
                "FROM links ORDER BY tiktok_sku_id"
            )
        ]

    def link_rows(self) -> Iterator[LinkRow]:
        """Every link with its SKU and variant, by TikTok SKU id: one join, streamed (a listing
        or an export of 100,000 links holds one row at a time, not three maps of them)."""
        for row in self.conn.execute(
            "SELECT l.tiktok_sku_id, coalesce(t.seller_sku, ''), coalesce(t.product_title, ''), "
            "coalesce(t.sku_name, ''), l.shopify_variant_id, l.source, l.linked_at, v.variant_id IS NOT NULL, "
            "coalesce(v.sku, ''), coalesce(v.product_title, ''), coalesce(v.variant_title, '') "
            "FROM links l LEFT JOIN tiktok_skus t ON t.sku_id = l.tiktok_sku_id "
            "LEFT JOIN shopify_variants v ON v.variant_id = l.shopify_variant_id ORDER BY l.tiktok_sku_id"
        ):
            yield LinkRow._make(row)

    def link_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM links").fetchone()[0]

    def linked_sku_ids(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT tiktok_sku_id FROM links")}

    def apply_links(self, changes: Iterable[LinkChange], *, source: str, actor: str,
                    batch: int | None = None) -> int:
        """Write links and their history rows in one transaction. Returns the count.

        Each change must state the link it replaces (``old``); if the store
        holds something else by the time we write (another process changed
        it), nothing is written and StoreError is raised. A change whose
        ``old`` equals its ``new`` writes the link again (the operator confirms
        a stale link whose variant changed SKU). Every link records the
        variant's SKU in the catalog cache now, to notice when it goes stale
        (:meth:`stale_links`). Batched: one read of the current links, the
        changes into a temporary table, then one ``INSERT … SELECT`` for the
        links (joined to the catalog for the variant's SKU) and one for the
        history (100,000 links in ~0.6 s). ``batch`` (from
        :meth:`new_batch_id`) marks the history rows of one autolink or import.
        """
        now = now_iso()
        with paused_gc(), self.transaction() as conn:
            changes = list(changes)
            current = self._pairs("links", "tiktok_sku_id", "shopify_variant_id",
                                  {c.tiktok_sku_id for c in changes})
            writes = []
            for sku_id, new, old in changes:
                held = current.get(sku_id)
                if held != old:
                    raise StoreError(
                        f"the link of TikTok SKU {sku_id} changed while this "
                        "command ran; nothing was written",
                        hint="run the command again",
                    )
                if held != new or old == new:
                    writes.append((sku_id, new, held))
                    current[sku_id] = new
            if not writes:
                return 0
            writes.sort(key=lambda w: w[0])  # B-tree inserts in key order: ~15 % faster; stable for repeats
            # A temporary table lives in this connection only and goes with the transaction.
            conn.execute("CREATE TEMP TABLE link_batch (seq INTEGER PRIMARY KEY, tiktok_sku_id TEXT NOT NULL, "
                         "new TEXT NOT NULL, old TEXT)")
            conn.executemany("INSERT INTO temp.link_batch (tiktok_sku_id, new, old) VALUES (?,?,?)", writes)
            conn.execute(
                "INSERT INTO links (tiktok_sku_id, shopify_variant_id, source, linked_at, linked_by, variant_sku) "
                "SELECT b.tiktok_sku_id, b.new, ?, ?, ?, v.sku FROM temp.link_batch b "
                "LEFT JOIN shopify_variants v ON v.variant_id = b.new WHERE true ORDER BY b.seq "
                "ON CONFLICT(tiktok_sku_id) DO UPDATE SET "
                "shopify_variant_id = excluded.shopify_variant_id, source = excluded.source, "
                "linked_at = excluded.linked_at, linked_by = excluded.linked_by, "
                "variant_sku = excluded.variant_sku",
                (source, now, actor),
            )
            conn.execute(
                "INSERT INTO link_history (at, tiktok_sku_id, action, old_variant_id, "
                "new_variant_id, source, actor, batch_id) "
                "SELECT ?, tiktok_sku_id, CASE WHEN old IS NULL THEN 'link' ELSE 'relink' END, old, new, ?, ?, ? "
                "FROM temp.link_batch ORDER BY seq",
                (now, source, actor, batch),
            )
            conn.execute("DROP TABLE temp.link_batch")
        return len(writes)

    def stale_links(self, sku_ids: Iterable[str] | None = None) -> dict[str, str]:
        """``{tiktok_sku_id: reason with the fix}`` for the stale links among ``sku_ids`` (None: all).

        The one test of DESIGN §4.1's stale rule, for the sync engine (an
        order needing a stale link is blocked with this reason) and the
        listings; :meth:`stale_link_details` gives the parts.
        """
        return {sku_id: stale.reason for sku_id, stale in self.stale_link_details(sku_ids).items()}

    def stale_link_details(self, sku_ids: Iterable[str] | None = None) -> dict[str, StaleLink]:
        """The stale links among ``sku_ids`` (None: all), by TikTok sku_id.

        A link is stale when its variant is absent from a catalog cache
        refreshed since the link was made (deleted in Shopify), or when the
        variant's cached SKU no longer equals, by :func:`sku_key`, the SKU it
        had when linked. A link to a variant that was not cached when it was
        made has no SKU to compare (only its deletion is noticed).
        """
        refreshed = self.get_state(CATALOG_REFRESHED_KEY)
        sql = (
            "SELECT l.tiktok_sku_id, l.shopify_variant_id, l.variant_sku, v.variant_id IS NOT NULL, v.sku "
            "FROM links l LEFT JOIN shopify_variants v ON v.variant_id = l.shopify_variant_id "
            "WHERE ((v.variant_id IS NULL AND l.linked_at <= ?) "
            "OR (v.variant_id IS NOT NULL AND l.variant_sku IS NOT NULL AND v.sku IS NOT l.variant_sku))"
        )
        # A cache never refreshed proves no deletion: no link is older than it.
        params = [refreshed or ""]
        wanted = None if sku_ids is None else set(sku_ids)
        if wanted is None:
            rows: Iterable[tuple] = self.conn.execute(sql, params)
        elif len(wanted) >= _SCAN_FROM:  # a good part of the links: one pass beats the IN-lists
            rows = (row for row in self.conn.execute(sql, params) if row[0] in wanted)
        else:
            rows = (row for chunk in _chunks(wanted) for row in self.conn.execute(
                sql + f" AND l.tiktok_sku_id IN ({','.join('?' * len(chunk))})", [*params, *chunk]))
        out: dict[str, StaleLink] = {}
        for sku_id, variant_id, linked_sku, cached, current_sku in rows:
            if cached and sku_key(current_sku) == sku_key(linked_sku):
                continue  # only case or invisible characters changed: the same code (§4.1)
            out[sku_id] = StaleLink(sku_id, variant_id, linked_sku, current_sku if cached else None)
        return out

    def remove_link(self, sku_id: str, *, actor: str) -> Link | None:
        """Remove a link, with a history row. Returns the removed link, or None."""
        with self.transaction() as conn:
            link = self.link(sku_id)
            if link is None:
                return None
            conn.execute("DELETE FROM links WHERE tiktok_sku_id = ?", (sku_id,))
            conn.execute(
                "INSERT INTO link_history (at, tiktok_sku_id, action, old_variant_id, "
                "new_variant_id, source, actor) VALUES (?,?,?,?,?,?,?)",
                (now_iso(), sku_id, "unlink", link.shopify_variant_id, None, link.source, actor),
            )
        return link

    def new_batch_id(self) -> int:
        """The next batch id; call it inside the transaction that writes the batch."""
        assert self.conn.in_transaction, "allocate a batch id inside the batch's transaction"
        return self.conn.execute("SELECT coalesce(max(batch_id), 0) + 1 FROM link_history "
                                 "WHERE batch_id IS NOT NULL").fetchone()[0]

    def batch_revert(self, batch_id: int, *, actor: str | None = None) -> BatchRevert | None:
        """Revert batch ``batch_id`` (None: no such batch); with ``actor`` None, only the plan.

        Each SKU the batch changed goes back to the link it had before, if its
        link is still as the batch left it; a link changed since (relinked,
        unlinked, linked again) is kept and listed in ``kept``: the later
        change was someone's decision. A restored link takes the source it had
        then. The revert is one transaction, one history row per change, and a
        batch of its own (so it can be reverted too).
        """
        rows = self.conn.execute(
            "SELECT tiktok_sku_id, old_variant_id, new_variant_id, id FROM link_history "
            "WHERE batch_id = ? ORDER BY id", (batch_id,)).fetchall()
        if not rows:
            return None
        before: dict[str, tuple[str | None, int]] = {}
        after: dict[str, str | None] = {}
        for sku_id, old, new, row_id in rows:
            before.setdefault(sku_id, (old, row_id))  # the first change in the batch: what it found
            after[sku_id] = new  # the last: what it left

        def plan() -> tuple[dict, dict]:
            held = self._pairs("links", "tiktok_sku_id", "shopify_variant_id", set(after))
            reverted = {k: (v, before[k][0]) for k, v in after.items() if held.get(k) == v}
            kept = {k: (v, held.get(k)) for k, v in after.items() if held.get(k) != v}
            return reverted, kept

        if actor is None:
            return BatchRevert(batch_id, *plan())
        now = now_iso()
        with paused_gc(), self.transaction() as conn:
            reverted, kept = plan()
            new_batch = self.new_batch_id()
            # Set-based, as apply_links: the changes into a temporary table, then one statement
            # each (a 100,000-link import is undone in a fraction of a second, not 300,000 calls).
            conn.execute("CREATE TEMP TABLE revert_batch (seq INTEGER PRIMARY KEY, sku TEXT NOT NULL, "
                         "cur TEXT, restore TEXT, before_row INTEGER NOT NULL, source TEXT)")
            conn.executemany(
                "INSERT INTO temp.revert_batch (sku, cur, restore, before_row) VALUES (?,?,?,?)",
                [(sku_id, current, restore, before[sku_id][1])
                 for sku_id, (current, restore) in sorted(reverted.items()) if current or restore])
            # The source each goes back with: an unlink records the source of the link it removes;
            # a restored link takes the source it had when the batch replaced it (else manual).
            conn.execute(
                "UPDATE temp.revert_batch SET source = CASE WHEN restore IS NULL "
                "THEN (SELECT l.source FROM links l WHERE l.tiktok_sku_id = revert_batch.sku) "
                "ELSE coalesce((SELECT h.source FROM link_history h WHERE h.tiktok_sku_id = revert_batch.sku "
                "AND h.new_variant_id = revert_batch.restore AND h.id < revert_batch.before_row "
                "ORDER BY h.id DESC LIMIT 1), 'manual') END")
            conn.execute("DELETE FROM links WHERE tiktok_sku_id IN "
                         "(SELECT sku FROM temp.revert_batch WHERE restore IS NULL)")
            conn.execute(
                "INSERT INTO links (tiktok_sku_id, shopify_variant_id, source, linked_at, linked_by, variant_sku) "
                "SELECT b.sku, b.restore, b.source, ?, ?, v.sku FROM temp.revert_batch b "
                "LEFT JOIN shopify_variants v ON v.variant_id = b.restore WHERE b.restore IS NOT NULL ORDER BY b.seq "
                "ON CONFLICT(tiktok_sku_id) DO UPDATE SET shopify_variant_id = excluded.shopify_variant_id, "
                "source = excluded.source, linked_at = excluded.linked_at, "
                "linked_by = excluded.linked_by, variant_sku = excluded.variant_sku",
                (now, actor))
            conn.execute(
                "INSERT INTO link_history (at, tiktok_sku_id, action, old_variant_id, new_variant_id, "
                "source, actor, batch_id) SELECT ?, sku, CASE WHEN restore IS NULL THEN 'unlink' "
                "WHEN cur IS NULL THEN 'link' ELSE 'relink' END, cur, restore, source, ?, ? "
                "FROM temp.revert_batch ORDER BY seq",
                (now, actor, new_batch))
            conn.execute("DROP TABLE temp.revert_batch")
        return BatchRevert(new_batch, reverted, kept)

    def complete_skus(self, prefix: str, *, linked: bool | None, limit: int = 50) -> list[tuple[str, str]]:
        """Shell completion: ``(value, "seller SKU · title")`` for TikTok SKUs whose sku_id or
        seller SKU starts with ``prefix``; unlinked first (``linked`` None), or only the linked."""
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where = {None: "", True: " AND l.tiktok_sku_id IS NOT NULL", False: " AND l.tiktok_sku_id IS NULL"}
        rows = self.conn.execute(
            "SELECT s.sku_id, s.seller_sku, s.product_title, s.sku_name, l.tiktok_sku_id IS NOT NULL "
            "FROM tiktok_skus s LEFT JOIN links l ON l.tiktok_sku_id = s.sku_id "
            "WHERE (s.sku_id LIKE ? ESCAPE '\\' OR s.seller_sku LIKE ? ESCAPE '\\')" + where[linked]
            + " ORDER BY 5, s.seller_sku, s.sku_id LIMIT ?", (pattern, pattern, limit)).fetchall()
        seen = [r[1] for r in rows]
        out = []
        for sku_id, seller_sku, title, name, is_linked in rows:
            # Complete what the operator started typing: the seller SKU, unless they typed an
            # id or the seller SKU names several SKUs (then only the id names one).
            by_seller = seller_sku and not (prefix and sku_id.startswith(prefix)) and seen.count(seller_sku) == 1
            value = seller_sku if by_seller else sku_id
            out.append((value, f"{seller_sku} · {title} / {name}" + (" (linked)" if is_linked else "")))
        return out

    def history(self, sku_id: str | None = None, *, limit: int | None = None) -> list[HistoryRow]:
        sql = (
            "SELECT id, at, tiktok_sku_id, action, old_variant_id, new_variant_id, source, actor, batch_id "
            "FROM link_history"
        )
        params: list[Any] = []
        if sku_id:
            sql += " WHERE tiktok_sku_id = ?"
            params.append(sku_id)
        sql += " ORDER BY id DESC"
        if limit:
            sql += " LIMIT ?"
            params.append(limit)
        return [HistoryRow(*r) for r in self.conn.execute(sql, params)]

    def pending_orders_for_sku(self, sku_id: str) -> int:
        """Orders not yet created in Shopify that need this SKU (what an unlink affects)."""
        return self.conn.execute(
            "SELECT count(DISTINCT i.tiktok_order_id) FROM order_items i "
            "JOIN orders o ON o.tiktok_order_id = i.tiktok_order_id "
            "WHERE i.sku_id = ? AND o.state IN ('pending', 'waiting', 'blocked', 'failed')",
            (sku_id,),
        ).fetchone()[0]

    # -- orders -------------------------------------------------------------------

    def record_order(self, order: PulledOrder, *, state: str, reason: str = "") -> None:
        """Insert or refresh a pulled order, its SKUs and its resolved items, in one transaction.

        ``state`` is decided by the caller (the sync rules live in sync.py),
        but an order that is or may be in Shopify (``creating``, ``synced``)
        keeps its state whatever the caller read before: another run may have
        claimed it since (§5.4).
        """
        now = now_iso()
        with self.transaction() as conn:
            self.upsert_tiktok_skus(order.skus)
            conn.execute(
                "INSERT INTO orders (tiktok_order_id, tiktok_status, state, reason, create_time, "
                "update_time, currency, total_amount, payload, first_pulled_at, last_pulled_at, "
                "state_changed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(tiktok_order_id) DO UPDATE SET tiktok_status = excluded.tiktok_status, "
                f"state = CASE WHEN orders.state IN {_KEPT_STATES} THEN orders.state ELSE excluded.state END, "
                f"reason = CASE WHEN orders.state IN {_KEPT_STATES} THEN orders.reason ELSE excluded.reason END, "
                "update_time = excluded.update_time, currency = excluded.currency, "
                "create_time = excluded.create_time, "
                "total_amount = excluded.total_amount, "
                "last_pulled_at = excluded.last_pulled_at, "
                f"state_changed_at = CASE WHEN orders.state = excluded.state OR orders.state IN {_KEPT_STATES} "
                "THEN orders.state_changed_at ELSE excluded.state_changed_at END",
                (order.tiktok_order_id, order.tiktok_status, state, reason, order.create_time,
                 order.update_time, order.currency, order.total_amount, "",
                 now, now, now),
            )
            self._save_payload(order.tiktok_order_id, json.dumps(order.payload))
            conn.execute("DELETE FROM order_items WHERE tiktok_order_id = ?", (order.tiktok_order_id,))
            conn.executemany(
                "INSERT INTO order_items (tiktok_order_id, position, sku_id, quantity, unit_price, "
                "title) VALUES (?,?,?,?,?,?)",
                [(order.tiktok_order_id, i, it.sku_id, it.quantity, it.unit_price, it.title)
                 for i, it in enumerate(order.items)],
            )

    def record_invalid(self, order: InvalidOrder) -> None:
        """Keep an unusable order (§5.1) as ``invalid`` with its reason, never to be sent.

        An order already ``creating`` or ``synced`` is left as it is: a broken
        later version of it changes nothing we did.
        """
        if order.tiktok_order_id is None:
            return
        payload = json.dumps(order.payload) if order.payload is not None else "null"
        status = order.payload.get("status") if isinstance(order.payload, dict) else None
        now = now_iso()
        with self.transaction() as conn:
            held = conn.execute("SELECT state FROM orders WHERE tiktok_order_id = ?",
                                (order.tiktok_order_id,)).fetchone()
            if held and held[0] in ("creating", "synced"):
                return
            conn.execute(
                "INSERT INTO orders (tiktok_order_id, tiktok_status, state, reason, update_time, "
                "payload, first_pulled_at, last_pulled_at, state_changed_at) "
                "VALUES (?,?,'invalid',?,?,?,?,?,?) "
                "ON CONFLICT(tiktok_order_id) DO UPDATE SET tiktok_status = excluded.tiktok_status, "
                "state = 'invalid', reason = excluded.reason, "
                "last_pulled_at = excluded.last_pulled_at, "
                "state_changed_at = CASE WHEN orders.state = 'invalid' THEN orders.state_changed_at "
                "ELSE excluded.state_changed_at END",
                (order.tiktok_order_id, status if isinstance(status, str) else "", order.reason,
                 order.update_time, "", now, now, now),
            )
            self._save_payload(order.tiktok_order_id, payload)
            conn.execute("DELETE FROM order_items WHERE tiktok_order_id = ?", (order.tiktok_order_id,))

    def _save_payload(self, order_id: str, payload: str) -> None:
        self.conn.execute(
            "INSERT INTO order_payloads (tiktok_order_id, payload) VALUES (?, ?) "
            "ON CONFLICT(tiktok_order_id) DO UPDATE SET payload = excluded.payload",
            (order_id, payload),
        )

    def record_orders(
        self,
        decided: Iterable[tuple[PulledOrder, str, str, bool]],
        *,
        invalid: Iterable[InvalidOrder] = (),
        cursor_key: str | None = None,
        cursor: int | None = None,
    ) -> None:
        """Store a page of pulled orders ``(order, state, reason, cancelled_after_sync)``
        and its unusable ones, and move the cursor, all in one transaction: the
        cursor never runs ahead of the data."""
        with self.transaction() as conn:
            for order, state, reason, cancelled_after in decided:
                self.record_order(order, state=state, reason=reason)
                if cancelled_after:
                    conn.execute(
                        "UPDATE orders SET cancelled_after_sync = 1 WHERE tiktok_order_id = ?",
                        (order.tiktok_order_id,),
                    )
            for bad in invalid:
                self.record_invalid(bad)
            if cursor_key is not None and cursor is not None:
                conn.execute(
                    "INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                    "updated_at = excluded.updated_at",
                    (cursor_key, str(cursor), now_iso()),
                )

    def order_states(self, order_ids: Sequence[str]) -> dict[str, tuple[str, str | None, str | None]]:
        """``{id: (state, shopify_order_id, shopify_order_name)}`` for the known ones."""
        return {row[0]: row[1:] for row in self._select_in(
            "SELECT tiktok_order_id, state, shopify_order_id, shopify_order_name FROM orders "
            "WHERE tiktok_order_id IN ({marks})",
            order_ids,
        )}

    def set_order_state(
        self,
        order_id: str,
        state: str,
        *,
        reason: str = "",
        shopify_order_id: str | None = None,
        shopify_order_name: str | None = None,
        attempt: bool = False,
        unless: Sequence[str] = ("creating", "synced"),
    ) -> bool:
        """Move one order to ``state`` and commit at once, unless it is in one of ``unless``.

        The default guard keeps a caller that read an old state from
        overwriting a claim another run made meanwhile (§5.4). Returns
        whether the row changed.
        """
        now = now_iso()
        guard = f" AND state NOT IN ({','.join('?' * len(unless))})" if unless else ""
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE orders SET state = ?, reason = ?, state_changed_at = ?, "
                "shopify_order_id = coalesce(?, shopify_order_id), "
                "shopify_order_name = coalesce(?, shopify_order_name), "
                "synced_at = CASE WHEN ? = 'synced' THEN ? ELSE synced_at END, "
                "attempts = attempts + ? WHERE tiktok_order_id = ?" + guard,
                (state, reason, now, shopify_order_id, shopify_order_name, state, now,
                 1 if attempt else 0, order_id, *unless),
            )
            return cursor.rowcount == 1

    # -- the claim of §5.4 ----------------------------------------------------------

    def claim_order(
        self,
        order_id: str,
        stamp: ClaimStamp,
        decide: Callable[[OrderRow, dict[str, str]], tuple[str, str, Any]],
    ) -> tuple[str, str, Any] | None:
        """Claim one order for sending, in one transaction (§5.4, and links current at send time).

        Reads the order and the links of its SKUs as they are now, asks
        ``decide(row, links)`` for ``(state, reason, value)``: ``creating``
        claims it (``value`` is what will be sent), any other state is
        recorded with its reason instead. The claim is a compare-and-set: it
        succeeds only from ``pending``, ``blocked`` or ``failed``; returns None
        when the order was not claimable any more (another run has it).
        """
        with self.transaction() as conn:
            rows = self._order_rows(
                "WHERE tiktok_order_id = ? AND state IN (" + ",".join("?" * len(CLAIMABLE)) + ")",
                [order_id, *CLAIMABLE],
            )
            if not rows:
                return None
            row = rows[0]
            links = self._pairs("links", "tiktok_sku_id", "shopify_variant_id", {i.sku_id for i in row.items})
            state, reason, value = decide(row, links)
            now = now_iso()
            if state == "creating":
                changed = conn.execute(
                    "UPDATE orders SET state = 'creating', reason = ?, state_changed_at = ?, "
                    "attempts = attempts + 1, claim_id = ?, claim_boot = ?, claim_clock = ?, "
                    "absent_lookups = 0, last_lookup_run = NULL "
                    "WHERE tiktok_order_id = ? AND state IN (" + ",".join("?" * len(CLAIMABLE)) + ")",
                    (reason, now, stamp.claim_id, stamp.boot, stamp.clock, order_id, *CLAIMABLE),
                ).rowcount
                if changed != 1:  # cannot happen inside BEGIN IMMEDIATE; never send unclaimed
                    return None
                conn.execute("UPDATE order_payloads SET sent_input = ?, line_map = ? WHERE tiktok_order_id = ?",
                             (json.dumps(value.order_input), json.dumps(value.line_map), order_id))
            elif state != row.state or reason != row.reason:
                conn.execute(
                    "UPDATE orders SET state = ?, reason = ?, state_changed_at = ? WHERE tiktok_order_id = ?",
                    (state, reason, now if state != row.state else row.state_changed_at, order_id),
                )
            return state, reason, value

    def finish_claim(
        self,
        order_id: str,
        claim_id: str,
        state: str,
        *,
        reason: str = "",
        shopify_order_id: str | None = None,
        shopify_order_name: str | None = None,
    ) -> bool:
        """Record the answer to a claimed send, if the claim is still ours (compare-and-set)."""
        now = now_iso()
        with self.transaction() as conn:
            return conn.execute(
                "UPDATE orders SET state = ?, reason = ?, state_changed_at = CASE WHEN state = ? "
                "THEN state_changed_at ELSE ? END, "
                "shopify_order_id = coalesce(?, shopify_order_id), "
                "shopify_order_name = coalesce(?, shopify_order_name), "
                "synced_at = CASE WHEN ? = 'synced' THEN ? ELSE synced_at END "
                "WHERE tiktok_order_id = ? AND state = 'creating' AND claim_id = ?",
                (state, reason, state, now, shopify_order_id, shopify_order_name, state, now,
                 order_id, claim_id),
            ).rowcount == 1

    def adopt_order(self, order_id: str, shopify_order_id: str, shopify_order_name: str | None,
                    *, reason: str) -> bool:
        """An order found in Shopify becomes ``synced`` with it, from any state but synced."""
        return self.set_order_state(order_id, "synced", reason=reason, shopify_order_id=shopify_order_id,
                                    shopify_order_name=shopify_order_name, unless=("synced", "invalid"))

    def record_lookup(self, order_id: str, claim_id: str | None, *, run_id: str, counted: bool,
                      rebase: ClaimStamp | None = None, release: bool = False, reason: str = "") -> None:
        """A lookup of a ``creating`` order found nothing in Shopify (§5.4).

        ``counted`` adds it to the order's absent lookups (once per run);
        ``rebase`` restarts the wait on this boot's clock; ``release`` gives
        the order back (``pending``) to be sent again. All only while the claim
        is the one that was looked up.
        """
        with self.transaction() as conn:
            if rebase is not None:
                conn.execute(
                    "UPDATE orders SET claim_boot = ?, claim_clock = ?, absent_lookups = 0 "
                    "WHERE tiktok_order_id = ? AND state = 'creating' AND claim_id IS ?",
                    (rebase.boot, rebase.clock, order_id, claim_id),
                )
            if counted:
                conn.execute(
                    "UPDATE orders SET absent_lookups = absent_lookups + 1, last_lookup_run = ? "
                    "WHERE tiktok_order_id = ? AND state = 'creating' AND claim_id IS ? "
                    "AND last_lookup_run IS NOT ?",
                    (run_id, order_id, claim_id, run_id),
                )
            if release:
                conn.execute(
                    "UPDATE orders SET state = 'pending', reason = ?, state_changed_at = ? "
                    "WHERE tiktok_order_id = ? AND state = 'creating' AND claim_id IS ?",
                    (reason, now_iso(), order_id, claim_id),
                )
            elif reason:
                conn.execute(
                    "UPDATE orders SET reason = ? WHERE tiktok_order_id = ? AND state = 'creating' "
                    "AND claim_id IS ?",
                    (reason, order_id, claim_id),
                )

    def claimable_orders(self, *, ids: Sequence[str] | None = None) -> Iterator[Claimable]:
        """Orders that may be claimed (oldest TikTok update first), each with its unlinked SKUs.

        Streamed and without payloads, so a store holding 100,000 blocked
        orders costs a row at a time (issue 15).
        """
        where = "o.state IN (" + ",".join("?" * len(CLAIMABLE)) + ")"
        params: list[Any] = list(CLAIMABLE)
        if ids is not None:
            where += f" AND o.tiktok_order_id IN ({','.join('?' * len(ids))})"
            params.extend(ids)
        rows = self.conn.execute(
            "SELECT o.tiktok_order_id, o.state, o.reason, o.attempts, o.create_time, "
            "(SELECT group_concat(i.sku_id, ' ') FROM order_items i "
            " LEFT JOIN links l ON l.tiktok_sku_id = i.sku_id "
            " WHERE i.tiktok_order_id = o.tiktok_order_id AND l.tiktok_sku_id IS NULL), "
            "(SELECT group_concat(i.sku_id, ' ') FROM order_items i WHERE i.tiktok_order_id = o.tiktok_order_id) "
            f"FROM orders o WHERE {where} ORDER BY o.update_time, o.tiktok_order_id",
            params,
        )
        for order_id, state, reason, attempts, create_time, missing, skus in rows:
            yield Claimable(order_id, state, reason, attempts, create_time, _id_list(missing), _id_list(skus))

    def order_listing(self, *, states: Sequence[str] | None = None, limit: int | None = None,
                      sku_ids: Sequence[str] | None = None) -> Iterator[OrderSummary]:
        """Stored orders for ``orders`` (oldest TikTok update first), streamed and without
        payloads; blocked ones with their unlinked SKUs and all their SKUs. ``sku_ids``: only
        the orders that need one of these TikTok SKUs."""
        where, params = [], []
        if states:
            where.append(f"o.state IN ({','.join('?' * len(states))})")
            params.extend(states)
        if sku_ids is not None:
            where.append("EXISTS (SELECT 1 FROM order_items s WHERE s.tiktok_order_id = o.tiktok_order_id "
                         f"AND s.sku_id IN ({','.join('?' * len(sku_ids))}))")
            params.extend(sku_ids)
        if limit:
            params.append(limit)
        rows = self.conn.execute(
            "SELECT o.tiktok_order_id, o.tiktok_status, o.state, o.reason, o.shopify_order_id, "
            "o.shopify_order_name, o.cancelled_after_sync, "
            "CASE WHEN o.state = 'blocked' THEN (SELECT group_concat(i.sku_id, ' ') FROM order_items i "
            " LEFT JOIN links l ON l.tiktok_sku_id = i.sku_id "
            " WHERE i.tiktok_order_id = o.tiktok_order_id AND l.tiktok_sku_id IS NULL) END, "
            "CASE WHEN o.state = 'blocked' THEN (SELECT group_concat(i.sku_id, ' ') FROM order_items i "
            " WHERE i.tiktok_order_id = o.tiktok_order_id) END "
            f"FROM orders o {('WHERE ' + ' AND '.join(where)) if where else ''} "
            "ORDER BY o.update_time, o.tiktok_order_id" + (" LIMIT ?" if limit else ""),
            params,
        )
        for r in rows:
            yield OrderSummary(*r[:6], bool(r[6]), _id_list(r[7]), _id_list(r[8]))

    def ready_order_count(self, stale_sku_ids: Iterable[str] = ()) -> int:
        """Blocked orders whose SKUs are all linked now, none of them by a stale link: the
        orders the next run creates (shown as ``ready``, never stored)."""
        stale = json.dumps(sorted(set(stale_sku_ids)))
        return self.conn.execute(
            "SELECT count(*) FROM orders o WHERE o.state = 'blocked' AND NOT EXISTS ("
            " SELECT 1 FROM order_items i LEFT JOIN links l ON l.tiktok_sku_id = i.sku_id "
            " WHERE i.tiktok_order_id = o.tiktok_order_id "
            " AND (l.tiktok_sku_id IS NULL OR i.sku_id IN (SELECT value FROM json_each(?))))",
            (stale,),
        ).fetchone()[0]

    def order_times(self, order_id: str) -> OrderTimes | None:
        """When an order was first and last pulled, reached its state, and was created in Shopify."""
        row = self.conn.execute(
            "SELECT first_pulled_at, last_pulled_at, state_changed_at, synced_at FROM orders "
            "WHERE tiktok_order_id = ?", (order_id,)).fetchone()
        return OrderTimes(*row) if row else None

    def history_of(self, sku_ids: Iterable[str]) -> list[HistoryRow]:
        """The link history of these TikTok SKUs, oldest first."""
        return sorted((HistoryRow(*r) for r in self._select_in(
            "SELECT id, at, tiktok_sku_id, action, old_variant_id, new_variant_id, source, actor "
            "FROM link_history WHERE tiktok_sku_id IN ({marks})", dict.fromkeys(sku_ids))),
            key=lambda h: h.id)

    def synced_orders(self, *, since: str | None = None) -> list[str]:
        """Ids of the orders ecomsend created in Shopify (synced since ``since``, ISO 8601), oldest first."""
        sql = "SELECT tiktok_order_id FROM orders WHERE state = 'synced' AND shopify_order_id IS NOT NULL"
        params: list[Any] = []
        if since:
            sql += " AND synced_at >= ?"
            params.append(since)
        return [r[0] for r in self.conn.execute(sql + " ORDER BY synced_at, tiktok_order_id", params)]

    def created_orders(self, order_ids: Sequence[str]) -> list[CreatedOrder]:
        """The payload, Shopify order and sent input of each of ``order_ids`` (for verify-orders)."""
        return [CreatedOrder(r[0], r[1], r[2], r[3], json.loads(r[4] or "null"), json.loads(r[5] or "null"),
                             json.loads(r[6] or "null"))
                for r in self._select_in(
                    "SELECT o.tiktok_order_id, o.tiktok_status, o.shopify_order_id, o.shopify_order_name, "
                    "p.payload, p.sent_input, p.line_map FROM orders o "
                    "LEFT JOIN order_payloads p ON p.tiktok_order_id = o.tiktok_order_id "
                    "WHERE o.tiktok_order_id IN ({marks}) ORDER BY o.synced_at, o.tiktok_order_id",
                    order_ids)]

    _ORDER_COLS = (
        "tiktok_order_id, tiktok_status, state, reason, shopify_order_id, shopify_order_name, "
        "update_time, state_changed_at, attempts, cancelled_after_sync, "
        "(SELECT p.payload FROM order_payloads p WHERE p.tiktok_order_id = orders.tiktok_order_id), "
        "create_time, "
        "claim_id, claim_boot, claim_clock, absent_lookups, last_lookup_run"
    )

    def _order_rows(self, where: str, params: Sequence[Any], suffix: str = "") -> list[OrderRow]:
        rows = self.conn.execute(f"SELECT {self._ORDER_COLS} FROM orders {where} {suffix}", params).fetchall()
        items: dict[str, list[OrderItem]] = {}
        for oid, sku_id, qty, price, title in self._select_in(
            "SELECT tiktok_order_id, sku_id, quantity, unit_price, title FROM order_items "
            "WHERE tiktok_order_id IN ({marks}) ORDER BY position",
            [r[0] for r in rows],
        ):
            items.setdefault(oid, []).append(OrderItem(sku_id, qty, price, title))
        return [
            OrderRow(*r[:9], bool(r[9]), json.loads(r[10] or "null"), tuple(items.get(r[0], ())), *r[11:])
            for r in rows
        ]

    def orders(
        self,
        *,
        states: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[OrderRow]:
        """Stored orders (oldest TikTok update first) with their items."""
        where, params = [], []
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            params.extend(states)
        if ids is not None:
            where.append(f"tiktok_order_id IN ({','.join('?' * len(ids))})")
            params.extend(ids)
        if limit:
            params.append(limit)
        return self._order_rows(
            (f"WHERE {' AND '.join(where)}" if where else ""), params,
            "ORDER BY update_time, tiktok_order_id" + (" LIMIT ?" if limit else ""),
        )

    def link_map(self) -> dict[str, str]:
        """``{tiktok_sku_id: shopify_variant_id}`` for every link."""
        return dict(self.conn.execute("SELECT tiktok_sku_id, shopify_variant_id FROM links"))

    def tiktok_skus(self, sku_ids: Iterable[str]) -> dict[str, TikTokSku]:
        return {row[0]: self._sku(row) for row in self._select_in(
            f"SELECT {self._SKU_COLS} FROM tiktok_skus WHERE sku_id IN ({{marks}})",
            dict.fromkeys(sku_ids),
        )}

    def order_counts(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT state, count(*) FROM orders GROUP BY state"))

    def blocked_before(self, first_pulled_before: str) -> tuple[int, dict[str, tuple[int, bool]]]:
        """Orders still blocked first pulled at or before ``first_pulled_before`` (ISO 8601):
        how many, and each SKU they hold as ``{sku_id: (orders, linked)}`` (for the alerts)."""
        where = "FROM orders o WHERE o.state = 'blocked' AND o.first_pulled_at <= ?"
        count = self.conn.execute(f"SELECT count(*) {where}", (first_pulled_before,)).fetchone()[0]
        if not count:
            return 0, {}
        rows = self.conn.execute(
            "SELECT i.sku_id, count(*), max(l.tiktok_sku_id IS NOT NULL) FROM orders o "
            "JOIN order_items i ON i.tiktok_order_id = o.tiktok_order_id "
            "LEFT JOIN links l ON l.tiktok_sku_id = i.sku_id "
            "WHERE o.state = 'blocked' AND o.first_pulled_at <= ? GROUP BY i.sku_id",
            (first_pulled_before,),
        )
        return count, {sku: (n, bool(linked)) for sku, n, linked in rows}

    def unchecked_products(self) -> list[str]:
        """TikTok product ids with an unlinked SKU whose product detail we never read."""
        return [r[0] for r in self.conn.execute(  # from idx_tiktok_skus_unchecked: the few never read
            "SELECT DISTINCT t.product_id FROM tiktok_skus t "
            "WHERE t.product_checked_at IS NULL AND t.product_id <> '' "
            "AND NOT EXISTS (SELECT 1 FROM links l WHERE l.tiktok_sku_id = t.sku_id) "
            "ORDER BY t.product_id"
        )]

    def record_product_detail(self, product_id: str, external_ids: dict[str, str]) -> None:
        """Keep the ``external_sku_id`` of each SKU of a product, and that we read it."""
        now = now_iso()
        with self.transaction() as conn:
            for sku_id, external in external_ids.items():
                conn.execute(
                    "UPDATE tiktok_skus SET external_sku_id = ? WHERE sku_id = ? AND ? <> ''",
                    (external, sku_id, external),
                )
            conn.execute(
                "UPDATE tiktok_skus SET product_checked_at = ? WHERE product_id = ?", (now, product_id)
            )

    # -- batched reads (IN-lists in chunks; the bulk import reads 100,000s of ids) --

    def _select_in(self, sql: str, values: Iterable[str]) -> Iterator[tuple]:
        """Rows of ``sql`` (with one ``{marks}`` placeholder list) for every chunk of ``values``."""
        for chunk in _chunks(values):
            yield from self.conn.execute(sql.format(marks=",".join("?" * len(chunk))), chunk)

    def _rows_in(self, table: str, id_col: str, columns: str, ids: Iterable[str]) -> Iterator[tuple]:
        """Rows (``id_col`` first, then ``columns``) of ``table`` whose id is among ``ids``.

        When the ids cover a good part of the table, one scan is cheaper than
        hundreds of IN-lists (the usual case: an export of everything, re-imported).
        """
        ids = ids if isinstance(ids, set | frozenset) else set(ids)
        if not ids:
            return iter(())
        conn = self.conn
        if len(ids) >= _SCAN_FROM:
            size = conn.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0] or 0
            if len(ids) * 3 >= size:
                return (row for row in conn.execute(f"SELECT {id_col}, {columns} FROM {table}")
                        if row[0] in ids)
        return self._select_in(f"SELECT {id_col}, {columns} FROM {table} WHERE {id_col} IN ({{marks}})", ids)

    def _pairs(self, table: str, id_col: str, value_col: str, ids: set[str]) -> dict[str, Any]:
        """``{id: value}`` for the ``ids`` present in ``table``."""
        return dict(self._rows_in(table, id_col, value_col, ids))

    def seller_skus_of(self, sku_ids: set[str]) -> dict[str, str]:
        """``{sku_id: raw seller SKU}`` for the known TikTok SKUs among ``sku_ids``."""
        return self._pairs("tiktok_skus", "sku_id", "seller_sku", sku_ids)

    def variant_skus_of(self, variant_ids: set[str]) -> dict[str, str]:
        """``{variant GID: raw SKU}`` for the cached variants among ``variant_ids``."""
        return self._pairs("shopify_variants", "variant_id", "sku", variant_ids)

    def known_variant_ids(self, variant_ids: set[str]) -> set[str]:
        """The cached variants among ``variant_ids``: read from the id index alone, no rows."""
        out: set[str] = set()
        for row in self._select_in("SELECT variant_id FROM shopify_variants WHERE variant_id IN ({marks})",
                                   variant_ids):
            out.add(row[0])
        return out

    def links_of(self, sku_ids: set[str]) -> dict[str, str]:
        """``{tiktok_sku_id: shopify_variant_id}`` for the linked SKUs among ``sku_ids``."""
        return self._pairs("links", "tiktok_sku_id", "shopify_variant_id", sku_ids)

    def tiktok_skus_by_seller_keys(self, keys: Iterable[str]) -> dict[str, list[SkuInfo]]:
        """TikTok SKUs whose normalised seller SKU is one of ``keys``, grouped by key, by sku_id."""
        return self._grouped("SELECT seller_sku_key, sku_id, seller_sku, product_title, sku_name FROM tiktok_skus "
                             "WHERE seller_sku_key IN ({marks})", keys, SkuInfo)

    def variants_by_sku_keys(self, keys: Iterable[str]) -> dict[str, list[VariantInfo]]:
        """Cached variants whose normalised SKU is one of ``keys``, grouped by key, by variant id."""
        return self._grouped("SELECT sku_key, variant_id, sku, product_title, variant_title FROM shopify_variants "
                             "WHERE sku_key IN ({marks})", keys, VariantInfo)

    def _grouped(self, sql: str, keys: Iterable[str], record: Any) -> dict[str, list[Any]]:
        # Sorted here, once: an ORDER BY in each IN-list query costs a third more (30,000 keys).
        out: dict[str, list[Any]] = {}
        make = tuple.__new__
        for row in sorted(self._select_in(sql, keys), key=lambda row: row[1]):
            out.setdefault(row[0], []).append(make(record, row[1:]))
        return out

    def sku_infos(self, sku_ids: Iterable[str]) -> dict[str, SkuInfo]:
        """Display details of the TikTok SKUs among ``sku_ids``."""
        return {row[0]: tuple.__new__(SkuInfo, row) for row in self._rows_in(
            "tiktok_skus", "sku_id", "seller_sku, product_title, sku_name", sku_ids)}

    def variant_infos(self, variant_ids: Iterable[str]) -> dict[str, VariantInfo]:
        """Display details of the cached variants among ``variant_ids``."""
        return {row[0]: tuple.__new__(VariantInfo, row) for row in self._rows_in(
            "shopify_variants", "variant_id", "sku, product_title, variant_title", variant_ids)}

    def zero_padded_codes(self, *, tiktok: bool) -> list[tuple[str, str]]:
        """``(key, raw code)`` of codes whose key starts with "0" (an index range, not a scan)."""
        sql = (
            "SELECT seller_sku_key, seller_sku FROM tiktok_skus "
            "WHERE seller_sku_key >= '0' AND seller_sku_key < '1'"
            if tiktok else
            "SELECT sku_key, sku FROM shopify_variants WHERE sku_key >= '0' AND sku_key < '1'"
        )
        return self.conn.execute(sql).fetchall()
