"""The store's half for an order's life after creation (DESIGN §6b): its SQL, and only that.

:class:`AfterCreation` is mixed into :class:`~ecomsend_cli.store.Store`: the
tables of migration 010 — the Shopify lines of each created order and how its
TikTok line items map onto them, the tracking pushed to TikTok per Shopify
fulfillment (``shipments``), the TikTok reference to the Shopify order, and
the cancellations and refunds brought into Shopify (``aftersales``). Each
write that goes to a remote system is recorded first as an intent
(``sending``/``pushing``), as §5.4 does for orders; the rules live in
``tracking.py`` and ``aftersales.py``. An unconfirmed push or reference keeps
when it was sent by a clock a wall-clock step cannot move (migration 016), as
an unconfirmed order does: it is read back only once the wait has passed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite_utils


FOLLOW_DAYS = 14  # orders synced before the upgrade whose shipping and references are still followed


def migrate_after_creation(db: sqlite_utils.Database) -> None:
    """Migration 010: what an order's life after creation needs (DESIGN §6b)."""
    # At the claim: which variant each TikTok line item went to; from orderCreate's
    # answer: the Shopify line items (GID, variant, quantity). Tracking maps
    # fulfilled lines back to TikTok line items with them, refunds the other way.
    db.execute("ALTER TABLE order_payloads ADD COLUMN line_map TEXT")
    db.execute("ALTER TABLE order_payloads ADD COLUMN shopify_lines TEXT")
    # The TikTok reference to the Shopify order (§6b.2): pending, sending, done, failed.
    db.execute("ALTER TABLE orders ADD COLUMN reference_state TEXT")
    db.execute("ALTER TABLE orders ADD COLUMN reference_reason TEXT NOT NULL DEFAULT ''")
    # Tracking (§6b.1): open (lines to ship on TikTok), done (all shipped), none (not ours to push).
    db.execute("ALTER TABLE orders ADD COLUMN ship_state TEXT")
    db.execute("ALTER TABLE orders ADD COLUMN ship_reason TEXT NOT NULL DEFAULT ''")
    db.execute("CREATE INDEX idx_orders_ship_state ON orders(ship_state)")
    db.execute("CREATE INDEX idx_orders_reference_state ON orders(reference_state)")
    db.execute(
        """CREATE TABLE shipments (
            fulfillment_id TEXT PRIMARY KEY,
            tiktok_order_id TEXT NOT NULL REFERENCES orders(tiktok_order_id) ON DELETE CASCADE,
            state TEXT NOT NULL,
            line_item_ids TEXT NOT NULL,
            tracking_number TEXT NOT NULL DEFAULT '',
            carrier TEXT NOT NULL DEFAULT '',
            provider_id TEXT NOT NULL DEFAULT '',
            provider_name TEXT NOT NULL DEFAULT '',
            package_id TEXT,
            reason TEXT NOT NULL DEFAULT '',
            attempts INTEGER NOT NULL DEFAULT 0,
            pushed_at TEXT,
            updated_at TEXT NOT NULL,
            fulfilled TEXT NOT NULL DEFAULT '[]'
        )"""
    )
    db.execute("CREATE INDEX idx_shipments_order ON shipments(tiktok_order_id)")
    db.execute(
        """CREATE TABLE aftersales (
            key TEXT PRIMARY KEY,
            tiktok_order_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            state TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            record TEXT NOT NULL,
            amount TEXT,
            currency TEXT,
            shopify_ref TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX idx_aftersales_order ON aftersales(tiktok_order_id)")
    db.execute("CREATE INDEX idx_aftersales_state ON aftersales(state)")
    # Orders created before this version: the recent ones' life is followed from now on. Older
    # ones have shipped or been cancelled long since; reading a whole history from Shopify
    # on the first run after the upgrade would spend minutes of its budget for nothing.
    since = (datetime.now(UTC) - timedelta(days=FOLLOW_DAYS)).strftime("%Y-%m-%dT%H:%M:%S")
    db.execute("UPDATE orders SET reference_state = 'pending', ship_state = 'open' "
               "WHERE state = 'synced' AND shopify_order_id IS NOT NULL AND synced_at >= ?", [since])


def migrate_cancelled_index(db: sqlite_utils.Database) -> None:
    """Migration 014: an index of the orders TikTok cancelled, for :meth:`AfterCreation.cancelled_on_tiktok`.

    Every run looks for synced orders TikTok has since cancelled (§6b.3). Without
    it the check read every order row: a run with nothing to do over 50,000
    synced orders spent 23 ms and 120 MB of mapped store on it. Partial, so it
    holds only the few cancelled orders.
    """
    db.execute("CREATE INDEX idx_orders_cancelled ON orders(tiktok_order_id) WHERE tiktok_status = 'CANCELLED'")


def migrate_send_clock(db: sqlite_utils.Database) -> None:
    """Migration 016: when an unconfirmed push (``shipments``) or reference (``orders``) was sent.

    By the clock of §5.4's claims (``sync.steady_clock``: the boot id and
    CLOCK_BOOTTIME), so a wall-clock step cannot shorten or lengthen the wait
    before it is read back from TikTok. Rows sent before this version have
    none: the next run stamps them and they wait from then.
    """
    db.execute("ALTER TABLE shipments ADD COLUMN claim_boot TEXT")
    db.execute("ALTER TABLE shipments ADD COLUMN claim_clock REAL")
    db.execute("ALTER TABLE orders ADD COLUMN reference_boot TEXT")
    db.execute("ALTER TABLE orders ADD COLUMN reference_clock REAL")


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class CreatedLines:
    """A created order as the after-creation phases need it."""

    tiktok_order_id: str
    tiktok_status: str
    shopify_order_id: str
    payload: dict
    line_map: dict[str, list[str]]  # TikTok line item id -> the variant GIDs it needed (at the claim)
    shopify_lines: list[tuple[str, str | None, int]]  # (line GID, variant GID, quantity)
    ship_state: str | None
    reference_state: str | None
    # When the reference was last sent (``sending``), by the steady clock: (boot id, seconds).
    reference_boot: str | None = None
    reference_clock: float | None = None


@dataclass(frozen=True)
class Shipment:
    """Tracking pushed (or being pushed) to TikTok for one Shopify fulfillment."""

    fulfillment_id: str
    tiktok_order_id: str
    state: str  # pushing | pushed | failed | reported
    line_item_ids: tuple[str, ...]
    tracking_number: str
    carrier: str
    provider_id: str
    provider_name: str
    package_id: str | None
    reason: str
    attempts: int
    pushed_at: str | None
    updated_at: str
    # What the Shopify fulfillment held, ``(variant GID, quantity)``: a later fulfillment may
    # complete a combined listing with what this one left over, without reading it again.
    fulfilled: tuple[tuple[str, int], ...] = ()
    # When the push was claimed (or its answer given up on), by the steady clock: (boot id, seconds).
    claim_boot: str | None = None
    claim_clock: float | None = None


@dataclass(frozen=True)
class AfterSale:
    """A TikTok cancellation or refund brought into Shopify (or reported)."""

    key: str
    tiktok_order_id: str
    kind: str  # order_cancel | line_cancel | return
    state: str  # pending | sending | requested | done | reported | failed
    reason: str
    record: dict
    amount: str | None
    currency: str | None
    shopify_ref: str | None
    attempts: int
    updated_at: str


class AfterCreation:
    """Store methods for §6b (mixed into Store: uses its ``conn``, ``transaction`` and ``_select_in``)."""

    conn: sqlite3.Connection

    # -- what was created --------------------------------------------------------------

    def record_created(self, order_id: str, shopify_lines: Sequence[tuple[str, str | None, int]]) -> None:
        """The order is in Shopify: keep its lines, and follow its life (reference, tracking)."""
        with self.transaction() as conn:  # type: ignore[attr-defined]
            conn.execute("UPDATE order_payloads SET shopify_lines = ? WHERE tiktok_order_id = ?",
                         (json.dumps([list(x) for x in shopify_lines]), order_id))
            conn.execute(
                "UPDATE orders SET reference_state = coalesce(reference_state, 'pending'), "
                "ship_state = coalesce(ship_state, 'open') WHERE tiktok_order_id = ?", (order_id,))

    def created_lines(self, order_ids: Iterable[str]) -> dict[str, CreatedLines]:
        """:class:`CreatedLines` of each of ``order_ids`` that is in Shopify."""
        out = {}
        for row in self._select_in(  # type: ignore[attr-defined]
            "SELECT o.tiktok_order_id, o.tiktok_status, o.shopify_order_id, p.payload, p.line_map, "
            "p.shopify_lines, o.ship_state, o.reference_state, o.reference_boot, o.reference_clock FROM orders o "
            "JOIN order_payloads p ON p.tiktok_order_id = o.tiktok_order_id "
            "WHERE o.shopify_order_id IS NOT NULL AND o.tiktok_order_id IN ({marks})",
            list(dict.fromkeys(order_ids)),
        ):
            out[row[0]] = CreatedLines(
                row[0], row[1], row[2], json.loads(row[3] or "null") or {}, json.loads(row[4] or "null") or {},
                [tuple(x) for x in json.loads(row[5] or "null") or []], *row[6:10])
        return out

    # -- the TikTok reference (§6b.2) --------------------------------------------------------

    def references_to_write(self) -> list[str]:
        """Orders whose TikTok reference to the Shopify order is still to write (or unconfirmed)."""
        return [r[0] for r in self.conn.execute(
            "SELECT tiktok_order_id FROM orders WHERE reference_state IN ('pending', 'sending', 'failed') "
            "ORDER BY synced_at, tiktok_order_id")]

    def life_states(self, order_ids: Iterable[str]) -> dict[str, tuple[str | None, str, str | None, str]]:
        """``{order: (reference_state, reference_reason, ship_state, ship_reason)}`` for ``order_ids``."""
        return {row[0]: tuple(row[1:]) for row in self._select_in(  # type: ignore[attr-defined]
            "SELECT tiktok_order_id, reference_state, reference_reason, ship_state, ship_reason FROM orders "
            "WHERE tiktok_order_id IN ({marks})", list(dict.fromkeys(order_ids)))}

    def set_reference(self, order_id: str, state: str, reason: str | None = "", *,
                      sent: tuple[str, float] | None = None) -> None:
        """The reference's state and why (None: the reason kept); ``sent`` (boot id, steady seconds)
        stamps when it was sent (kept otherwise)."""
        boot, clock = sent if sent is not None else (None, None)
        with self.transaction() as conn:  # type: ignore[attr-defined]
            conn.execute("UPDATE orders SET reference_state = ?, reference_reason = coalesce(?, reference_reason), "
                         "reference_boot = coalesce(?, reference_boot), reference_clock = coalesce(?, reference_clock) "
                         "WHERE tiktok_order_id = ?", (state, reason, boot, clock, order_id))

    # -- tracking (§6b.1) ----------------------------------------------------------------------

    def tracking_orders(self, *, edit_window_hours: int = 72) -> list[str]:
        """Orders to read fulfillments for: lines still to ship on TikTok, or a push recent
        enough that a tracking number changed in Shopify can still be corrected on TikTok."""
        since = (datetime.now(UTC) - timedelta(hours=edit_window_hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return [r[0] for r in self.conn.execute(
            "SELECT tiktok_order_id FROM orders WHERE ship_state = 'open' "
            "UNION SELECT DISTINCT tiktok_order_id FROM shipments WHERE pushed_at >= ? "
            "ORDER BY 1", (since,))]

    def set_ship_state(self, order_id: str, state: str, reason: str = "") -> None:
        with self.transaction() as conn:  # type: ignore[attr-defined]
            conn.execute("UPDATE orders SET ship_state = ?, ship_reason = ? WHERE tiktok_order_id = ?",
                         (state, reason, order_id))

    _SHIPMENT_COLS = ("fulfillment_id, tiktok_order_id, state, line_item_ids, tracking_number, carrier, "
                      "provider_id, provider_name, package_id, reason, attempts, pushed_at, updated_at, fulfilled, "
                      "claim_boot, claim_clock")

    @staticmethod
    def _shipment(row: Sequence[Any]) -> Shipment:
        fulfilled = tuple((str(v), int(q)) for v, q in json.loads(row[13] or "[]"))
        return Shipment(row[0], row[1], row[2], tuple(json.loads(row[3])), *row[4:13], fulfilled, *row[14:16])

    def shipments(self, order_ids: Iterable[str]) -> dict[str, list[Shipment]]:
        """The shipments of each of ``order_ids`` (oldest first)."""
        return self._by_order(f"SELECT {self._SHIPMENT_COLS} FROM shipments WHERE tiktok_order_id IN ({{marks}}) "
                              "ORDER BY updated_at, fulfillment_id", order_ids, self._shipment)

    def _by_order(self, sql: str, order_ids: Iterable[str], make: Any) -> dict[str, list[Any]]:
        """The rows of ``sql`` (``{marks}`` for ``order_ids``) made into records, grouped by order."""
        out: dict[str, list[Any]] = {}
        for row in self._select_in(sql, list(dict.fromkeys(order_ids))):  # type: ignore[attr-defined]
            record = make(row)
            out.setdefault(record.tiktok_order_id, []).append(record)
        return out

    def claim_shipment(self, fulfillment_id: str, order_id: str, line_item_ids: Sequence[str], *,
                       tracking_number: str, carrier: str, provider_id: str, provider_name: str,
                       package_id: str | None = None, fulfilled: Sequence[tuple[str, int]] = (),
                       state: str = "pushing", sent: tuple[str, float] | None = None) -> bool:
        """Record the intent to push (committed before the call): a new fulfillment, or a failed one
        tried again, stamped ``sent`` (boot id, steady seconds). A compare-and-set: False when it is
        already being pushed or was pushed."""
        boot, clock = sent if sent is not None else (None, None)
        now = _now()
        with self.transaction() as conn:  # type: ignore[attr-defined]
            held = conn.execute("SELECT state FROM shipments WHERE fulfillment_id = ?", (fulfillment_id,)).fetchone()
            if held and held[0] not in ("failed",):
                return False
            conn.execute(
                "INSERT INTO shipments (fulfillment_id, tiktok_order_id, state, line_item_ids, tracking_number, "
                "carrier, provider_id, provider_name, package_id, attempts, updated_at, fulfilled, claim_boot, "
                "claim_clock) VALUES (?,?,?,?,?,?,?,?,?,1,?,?,?,?) "
                "ON CONFLICT(fulfillment_id) DO UPDATE SET state = excluded.state, "
                "line_item_ids = excluded.line_item_ids, tracking_number = excluded.tracking_number, "
                "fulfilled = excluded.fulfilled, "
                "carrier = excluded.carrier, provider_id = excluded.provider_id, "
                "provider_name = excluded.provider_name, package_id = excluded.package_id, reason = '', "
                "attempts = shipments.attempts + 1, updated_at = excluded.updated_at, "
                "claim_boot = excluded.claim_boot, claim_clock = excluded.claim_clock",
                (fulfillment_id, order_id, state, json.dumps(list(line_item_ids)), tracking_number, carrier,
                 provider_id, provider_name, package_id, now, json.dumps([list(x) for x in fulfilled]), boot, clock),
            )
            return True

    def finish_shipment(self, fulfillment_id: str, state: str, *, reason: str = "",
                        package_id: str | None = None, tracking_number: str | None = None,
                        provider_id: str | None = None, provider_name: str | None = None,
                        pushed: bool = False, sent: tuple[str, float] | None = None) -> None:
        """The answer to a push (or an update of its tracking), or what stands in its way; ``sent``
        (boot id, steady seconds) stamps anew when an unconfirmed push counts as sent (kept otherwise)."""
        now = _now()
        boot, clock = sent if sent is not None else (None, None)
        with self.transaction() as conn:  # type: ignore[attr-defined]
            conn.execute(
                "UPDATE shipments SET state = ?, reason = ?, package_id = coalesce(?, package_id), "
                "tracking_number = coalesce(?, tracking_number), provider_id = coalesce(?, provider_id), "
                "provider_name = coalesce(?, provider_name), "
                "pushed_at = CASE WHEN ? THEN ? ELSE pushed_at END, updated_at = ?, "
                "claim_boot = coalesce(?, claim_boot), claim_clock = coalesce(?, claim_clock) "
                "WHERE fulfillment_id = ?",
                (state, reason, package_id, tracking_number, provider_id, provider_name, pushed, now, now,
                 boot, clock, fulfillment_id),
            )

    def record_failed_shipment(self, fulfillment_id: str, order_id: str, line_item_ids: Sequence[str], *,
                               tracking_number: str, carrier: str, reason: str, state: str = "failed") -> None:
        """A fulfillment that cannot be pushed (unknown carrier, lines not found…): why, to show it."""
        now = _now()
        with self.transaction() as conn:  # type: ignore[attr-defined]
            conn.execute(
                "INSERT INTO shipments (fulfillment_id, tiktok_order_id, state, line_item_ids, tracking_number, "
                "carrier, reason, updated_at) VALUES (?,?,?,?,?,?,?,?) "
                "ON CONFLICT(fulfillment_id) DO UPDATE SET state = excluded.state, reason = excluded.reason, "
                "tracking_number = excluded.tracking_number, carrier = excluded.carrier, "
                "updated_at = excluded.updated_at WHERE shipments.state IN ('failed', 'reported')",
                (fulfillment_id, order_id, state, json.dumps(list(line_item_ids)), tracking_number, carrier,
                 reason, now),
            )

    # -- cancellations and refunds (§6b.3, §6b.4) ----------------------------------------------

    _AFTERSALE_COLS = ("key, tiktok_order_id, kind, state, reason, record, amount, currency, shopify_ref, "
                       "attempts, updated_at")

    @staticmethod
    def _aftersale(row: Sequence[Any]) -> AfterSale:
        return AfterSale(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), *row[6:])

    def record_aftersale(self, key: str, order_id: str, kind: str, record: dict, *,
                         amount: str | None = None, currency: str | None = None,
                         state: str = "pending", reason: str = "") -> bool:
        """Note a TikTok cancellation or return to bring into Shopify (or, ``state`` reported, one
        that cannot be); False if already noted."""
        now = _now()
        with self.transaction() as conn:  # type: ignore[attr-defined]
            return conn.execute(
                "INSERT INTO aftersales (key, tiktok_order_id, kind, state, reason, record, amount, currency, "
                "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(key) DO NOTHING",
                (key, order_id, kind, state, reason, json.dumps(record), amount, currency, now, now),
            ).rowcount == 1

    def cancelled_on_tiktok(self) -> list[str]:
        """Orders in Shopify that TikTok has since cancelled, whose cancellation is not noted yet
        (read through the partial index of migration 014: never every order)."""
        return [r[0] for r in self.conn.execute(
            "SELECT o.tiktok_order_id FROM orders o WHERE o.shopify_order_id IS NOT NULL "
            "AND o.tiktok_status = 'CANCELLED' AND NOT EXISTS (SELECT 1 FROM aftersales a "
            "WHERE a.key = 'tiktok-order-cancel-' || o.tiktok_order_id) ORDER BY o.tiktok_order_id")]

    def open_aftersales(self) -> list[AfterSale]:
        """Cancellations and refunds not done yet (oldest first)."""
        return [self._aftersale(r) for r in self.conn.execute(
            f"SELECT {self._AFTERSALE_COLS} FROM aftersales "
            "WHERE state IN ('pending', 'sending', 'requested', 'failed') ORDER BY created_at, key")]

    def aftersales_of(self, order_ids: Iterable[str]) -> dict[str, list[AfterSale]]:
        """The cancellations and refunds of each of ``order_ids`` (oldest first)."""
        return self._by_order(f"SELECT {self._AFTERSALE_COLS} FROM aftersales WHERE tiktok_order_id IN ({{marks}}) "
                              "ORDER BY created_at, key", order_ids, self._aftersale)

    def claim_aftersale(self, key: str, expected: str) -> bool:
        """Compare-and-set ``expected`` → ``sending`` (committed before the call)."""
        with self.transaction() as conn:  # type: ignore[attr-defined]
            return conn.execute(
                "UPDATE aftersales SET state = 'sending', attempts = attempts + 1, updated_at = ? "
                "WHERE key = ? AND state = ?", (_now(), key, expected)).rowcount == 1

    def finish_aftersale(self, key: str, state: str, *, reason: str = "", shopify_ref: str | None = None) -> None:
        with self.transaction() as conn:  # type: ignore[attr-defined]
            conn.execute(
                "UPDATE aftersales SET state = ?, reason = ?, shopify_ref = coalesce(?, shopify_ref), "
                "updated_at = ? WHERE key = ?", (state, reason, shopify_ref, _now(), key))
