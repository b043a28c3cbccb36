"""The Shopify simulator after ``orderCreate``: fulfillments, ``orderCancel``, ``refundCreate`` (DESIGN §6b, §8).

:class:`OrderLife` is mixed into :class:`~.shopify_sim.ShopifySimulator`; it
owns the state an order gathers after creation and the GraphQL objects that
show it. What Shopify documents or was seen to answer, and what is designed
here where it is silent:

Fulfillments (operator actions, as a merchant fulfils in the admin)
    :meth:`~OrderLife.fulfil` fulfils an order wholly or some lines, some
    units, as one SUCCESS fulfillment from a location (default: where the
    order's stock was claimed) with ``trackingInfo`` (company, number, url).
    Stock is not touched (it left ``available`` when the order claimed it).
    :meth:`~OrderLife.update_tracking` changes a fulfillment's tracking, as
    ``fulfillmentTrackingInfoUpdate`` does (the whole ``trackingInfo`` is
    replaced; captured by airhorns/shopify-draft-proxy, 2025-01). Designed:
    such an edit does not move the fulfillment's ``updatedAt``, the case
    DESIGN §6b.1 tells clients not to rely on. ``displayFulfillmentStatus``
    follows: UNFULFILLED, PARTIALLY_FULFILLED, FULFILLED (units refunded or
    fulfilled count as done).

``orderCancel`` (asynchronous)
    The answer is a ``job { id done: false }`` (the id a UUID:
    ``gid://shopify/Job/810c0b1a-…``), and the order is cancelled when the
    job runs: on the next request the simulator serves after
    ``job_delay_seconds`` (default 0), or :meth:`~OrderLife.run_jobs`. Refused
    at once, as ``orderCancelUserErrors`` with a null job: an unknown order
    (NOT_FOUND), a staff note over 255 characters ("Staff note is too long.
    Maximum length is 255 characters.", INVALID, captured), an order already
    cancelled ("Cannot cancel an order that has already been canceled",
    field ``orderId``, INVALID, captured), and — Shopify refuses to cancel
    fulfilled or partly fulfilled orders (changelog 2018-03-01; the
    mutation's docs: "no outstanding fulfillments that can't be cancelled";
    its wording is not published) — an order with a SUCCESS fulfillment.
    A job that finds the order fulfilled or cancelled meanwhile ends done
    without cancelling: API 2026-07 reports no job errors, so only
    ``cancelledAt`` tells. Running the job sets ``cancelledAt`` and
    ``cancelReason``; with ``restock`` it puts the unfulfilled units back where
    they were claimed (only when the order claimed stock: not for BYPASS);
    with ``refundMethod: {originalPaymentMethodsRefund: true}`` it records one
    refund giving back what is left of every successful SALE and CAPTURE, to
    its gateway (captured: REFUND 20.0 of a 20.0 SALE, totalRefunded 20.0,
    status REFUNDED, outstanding 0.0). ``job(id:)`` answers ``done``; for an
    id it never queued it answers done, as Shopify was seen to (captured,
    "arbitrary, never-enqueued Job GIDs").

``refundCreate`` with ``@idempotent(key:)``
    Without the directive (or with a blank key) the field is null and the
    answer carries the error Shopify gives since 2026-04 ("The @idempotent
    directive is required for this mutation but was not provided.", code
    BAD_REQUEST, path ``refundCreate``: third-party captures; Shopify's
    changelog says only "will result in an error at runtime"). A key seen
    before, within ``idempotency_retention_seconds`` (default a day), with the
    same input answers the same refund and changes nothing; with another
    input it is the userError "The same idempotency key cannot be used with
    different operation parameters." (Shopify's wording for its idempotent
    mutations). Only a refund that was made keeps its key: a refused one
    may be sent again. Checked (userErrors; refused whole): line items of
    the order, quantity at most the units not yet refunded (none once
    cancelled), restock type not LEGACY_RESTOCK ("not accepted when creating
    new refunds"), a known location; transactions of kind REFUND ("Kind
    authorization is not a valid transaction", captured) whose ``parentId`` is
    a successful SALE or CAPTURE of the order ("Transactions require a
    parent_id associated with the order", captured), never more than is left
    of the parent unless ``allowOverRefunding``; shipping at most what is left
    of it. Designed wording where Shopify's is unknown. A REFUND takes its
    parent's gateway, whatever gateway was given (captured). Lines with
    RETURN or CANCEL go back to stock at ``locationId`` or where the order
    claimed them (tracked variants only); NO_RESTOCK does not. The money
    follows :func:`.shopify_money.refund_money`.

State: fulfillments (with ``updated_at``, ``tracking``) and their lines,
each order's refunds (JSON beside its edits), jobs and idempotency keys,
all in the state file, so a restarted simulator keeps them.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from graphql import GraphQLError

from .shopify_common import bag, gid, iso, location_node, order_money_of, parse_gid
from .shopify_money import ZERO, Bag, OrderMoney, minor_units, total

REFUND_ID_BASE = 1_020_000_000_000
FULFILLMENT_LINE_ID_BASE = 14_500_000_000_000
STAFF_NOTE_MAX = 255
# Shopify's answers, captured from a live 2026-04 shop (airhorns/shopify-draft-proxy).
ALREADY_CANCELLED = "Cannot cancel an order that has already been canceled"
STAFF_NOTE_TOO_LONG = "Staff note is too long. Maximum length is 255 characters."
MISSING_PARENT = "Transactions require a parent_id associated with the order"
# Shopify's wording for its idempotent mutations (their IDEMPOTENCY_* codes' descriptions).
KEY_MISMATCH = "The same idempotency key cannot be used with different operation parameters."
# As third parties saw it since 2026-04.
IDEMPOTENT_REQUIRED = "The @idempotent directive is required for this mutation but was not provided."
# Designed: Shopify publishes no wording for these.
FULFILLED_REFUSAL = ("Cannot cancel an order that has been fulfilled or partially fulfilled; "
                     "cancel its fulfillments first")
_JOB = re.compile(r"gid://shopify/Job/([A-Za-z0-9-]+)")
_SETTLED = ("SALE", "CAPTURE")
_RESTOCKING = ("RETURN", "CANCEL")

# Tables and columns this module adds to the simulator's state file.
LIFE_SQL = """
CREATE TABLE IF NOT EXISTS fulfillment_lines (
    id INTEGER PRIMARY KEY, fulfillment_id INTEGER NOT NULL, line_item_id INTEGER NOT NULL,
    quantity INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS fulfillment_lines_fulfillment ON fulfillment_lines(fulfillment_id);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, order_id INTEGER NOT NULL, params TEXT NOT NULL,
    done INTEGER NOT NULL, created_epoch REAL NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, order_id INTEGER NOT NULL,
    refund_id INTEGER NOT NULL, created_epoch REAL NOT NULL);
"""
LIFE_COLUMNS = (
    ("orders", "refunds", "TEXT"),
    ("orders", "cancel_reason", "TEXT"),
    ("orders", "cancel_note", "TEXT"),
    ("orders", "updated_at", "TEXT"),
    ("orders", "location_id", "INTEGER"),
    ("fulfillments", "updated_at", "TEXT"),
    ("fulfillments", "tracking", "TEXT"),
)


@dataclass
class OrderFacts:
    """What one order is now: its money, lines and how much of each is fulfilled."""

    oid: int
    number: int
    name: str
    behaviour: str
    cancelled: str | None
    refunds: list[dict[str, Any]]
    money: OrderMoney
    claim_location: int
    lines: list[tuple[int, int | None]]  # (line id, variant id) in order: a line's place is its index
    fulfilled: dict[int, int] = field(default_factory=dict)  # line id -> units in SUCCESS fulfillments
    has_fulfillments: bool = False

    def place(self, line_id: int) -> int | None:
        for place, (lid, _) in enumerate(self.lines):
            if lid == line_id:
                return place
        return None

    def refundable(self, place: int) -> int:
        """Units of the line not yet refunded (none once the order is cancelled)."""
        if self.cancelled or place >= len(self.money.lines):
            return 0
        return self.money.lines[place].current_quantity - self.money.refunded_quantity(place)

    def unfulfilled(self, place: int) -> int:
        lid = self.lines[place][0]
        return max(0, self.refundable(place) - self.fulfilled.get(lid, 0))


class OrderLife:
    """Fulfillments, cancellations and refunds of the simulator's orders (see the module docstring)."""

    # Provided by ShopifySimulator.
    _db: sqlite3.Connection
    _db_lock: threading.RLock
    clock: Callable[[], float]
    faults: Any
    order_by_id: Callable[[int], dict[str, Any] | None]
    _line_place: Callable[[int, Any], int]
    _line_nodes: Callable[[int], list[dict[str, Any]]]
    _memory_connection: Callable[[list[tuple[int, dict[str, Any]]], dict[str, Any]], dict[str, Any]]
    _meta: Callable[[str], str | None]
    _set_meta: Callable[[str, str], None]

    # -- reading an order's state ------------------------------------------------------------

    def _default_location(self) -> int:
        return int(self._db.execute("SELECT id FROM locations WHERE is_default = 1").fetchone()[0])

    def order_facts(self, oid: int) -> OrderFacts | None:
        """The order's state now (None: no such order). Caller holds the lock."""
        row = self._db.execute(
            "SELECT id, number, name, currency, input, edits, cancelled_at, refunds, "
            "inventory_behaviour, location_id FROM orders WHERE id = ?", (oid,),
        ).fetchone()
        if row is None:
            return None
        oid, number, name, currency, text, edits, cancelled, refunds, behaviour, location = row
        money = order_money_of(text, edits, cancelled, currency, refunds)
        lines = [(lid, vid) for lid, vid in self._db.execute(
            "SELECT id, variant_id FROM line_items WHERE order_id = ? ORDER BY id", (oid,))]
        if location is None:  # an order stored before locations were kept: where it was fulfilled, or the default
            wanted = parse_gid((json.loads(text).get("fulfillment") or {}).get("locationId"), "Location")
            location = wanted[1] if wanted else self._default_location()
        facts = OrderFacts(oid, number, name, behaviour, cancelled, json.loads(refunds or "[]"), money,
                           int(location), lines)
        success = [fid for (fid,) in self._db.execute(
            "SELECT id FROM fulfillments WHERE order_id = ? AND status = 'SUCCESS'", (oid,))]
        facts.has_fulfillments = bool(success)
        for fid in success:
            for _, lid, quantity in self._fulfillment_lines(fid, facts):
                facts.fulfilled[lid] = facts.fulfilled.get(lid, 0) + quantity
        return facts

    def _fulfillment_lines(self, fid: int, facts: OrderFacts) -> list[tuple[int, int, int]]:
        """``[(fulfillment line id, line id, units)]`` of a fulfillment.

        One stored without lines (an order created fulfilled by an older
        simulator) fulfilled every unit; its line ids are made from its own.
        """
        rows = self._db.execute(
            "SELECT id, line_item_id, quantity FROM fulfillment_lines WHERE fulfillment_id = ? ORDER BY id",
            (fid,),
        ).fetchall()
        if rows:
            return [(int(i), int(lid), int(units)) for i, lid, units in rows]
        return [(fid * 1000 + place + 1, lid, facts.money.lines[place].current_quantity)
                for place, (lid, _) in enumerate(facts.lines) if place < len(facts.money.lines)]

    def display_fulfillment_status(self, facts: OrderFacts, given: str | None) -> str:
        """``displayFulfillmentStatus``: from the fulfillments, else as ``orderCreate`` was told."""
        if not facts.has_fulfillments:
            return {"FULFILLED": "FULFILLED", "PARTIAL": "PARTIALLY_FULFILLED",
                    "RESTOCKED": "RESTOCKED"}.get(str(given), "UNFULFILLED")
        left = sum(facts.unfulfilled(place) for place in range(len(facts.lines)))
        return "FULFILLED" if left == 0 else "PARTIALLY_FULFILLED"

    def _order_id(self, number: int) -> int:
        row = self._db.execute("SELECT id FROM orders WHERE number = ?", (number,)).fetchone()
        if row is None:
            raise ValueError(f"no order number {number}")
        return int(row[0])

    def _location_id(self, value: Any) -> int:
        """A location by GID, number or name; ValueError naming the ones there are."""
        rows = self._db.execute("SELECT id, name FROM locations ORDER BY id").fetchall()
        parsed = parse_gid(value, "Location")
        for lid, name in rows:
            if (parsed and parsed[1] == lid) or value == lid or str(value) in (str(lid), name):
                return int(lid)
        raise ValueError(f"no location {value!r}; use one of {[gid('Location', lid) for lid, _ in rows]}")

    def _restock(self, vid: int | None, location: int, quantity: int) -> bool:
        """Put ``quantity`` units of a tracked variant back at ``location``; False when not tracked."""
        if vid is None or quantity <= 0:
            return False
        row = self._db.execute("SELECT tracked FROM variants WHERE id = ?", (vid,)).fetchone()
        if row is None or not row[0]:
            return False
        self._db.execute("UPDATE variants SET inventory_quantity = inventory_quantity + ? WHERE id = ?",
                         (quantity, vid))
        if location != self._default_location():
            self._db.execute(
                "INSERT INTO inventory_levels VALUES (?, ?, ?) ON CONFLICT(variant_id, location_id) "
                "DO UPDATE SET quantity = quantity + excluded.quantity", (vid, location, quantity))
        return True

    def _in_transaction(self, work: Callable[[], Any]) -> Any:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            result = work()
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return result

    # -- fulfillments (operator actions) ----------------------------------------------------------

    def fulfil(self, number: int, lines: list | None = None, *, tracking_number: str | None = None,
               company: str | None = None, url: str | None = None,
               location: Any = None) -> dict[str, Any]:
        """Fulfil order ``number`` as a merchant does in the admin: one SUCCESS fulfillment.

        ``lines``: None for every unit not yet fulfilled, else ``[(line, units)]``
        or ``[{"line": ..., "quantity": ...}]`` where a line is its 0-based place
        or its LineItem GID. ``location`` (GID, number or name) defaults to where
        the order claimed its stock. Returns the fulfillment as
        :meth:`fulfillment_view` shows it; ValueError for an impossible one.
        """
        with self._db_lock:
            oid = self._order_id(number)
            facts = self.order_facts(oid)
            assert facts is not None
            if facts.cancelled:
                raise ValueError(f"order {number} is cancelled")
            wanted: dict[int, int] = {}
            if lines is None:
                wanted = {place: facts.unfulfilled(place) for place in range(len(facts.lines))
                          if facts.unfulfilled(place) > 0}
            else:
                for entry in lines:
                    ref, units = ((entry.get("line"), entry.get("quantity")) if isinstance(entry, dict)
                                  else tuple(entry))
                    place = self._line_place(oid, ref)
                    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
                        raise ValueError(f"quantity {units!r} of line {ref!r} is not a positive whole number")
                    wanted[place] = wanted.get(place, 0) + units
                for place, units in wanted.items():
                    if units > facts.unfulfilled(place):
                        raise ValueError(f"line {place} has {facts.unfulfilled(place)} unit(s) left to fulfil, "
                                         f"not {units}")
            if not wanted:
                raise ValueError(f"order {number} has nothing left to fulfil")
            where = facts.claim_location if location is None else self._location_id(location)
            now = iso(self.clock())
            tracking = ([{"company": company, "number": tracking_number, "url": url}]
                        if tracking_number or company else [])

            def insert() -> int:
                fid = (self._db.execute("SELECT MAX(id) FROM fulfillments").fetchone()[0]
                       or 4_800_000_000_000) + 1
                self._db.execute(
                    "INSERT INTO fulfillments (id, order_id, location_id, status, quantity, created_at, "
                    "updated_at, tracking) VALUES (?, ?, ?, 'SUCCESS', ?, ?, ?, ?)",
                    (fid, oid, where, sum(wanted.values()), now, now, json.dumps(tracking)))
                self._insert_fulfillment_lines(fid, [(facts.lines[p][0], u) for p, u in sorted(wanted.items())])
                self._db.execute("UPDATE orders SET updated_at = ? WHERE id = ?", (now, oid))
                return fid

            fid = self._in_transaction(insert)
        return self.fulfillment_view(fid)

    def _insert_fulfillment_lines(self, fid: int, lines: list[tuple[int, int]]) -> None:
        last = self._db.execute("SELECT MAX(id) FROM fulfillment_lines").fetchone()[0] or FULFILLMENT_LINE_ID_BASE
        self._db.executemany("INSERT INTO fulfillment_lines VALUES (?, ?, ?, ?)",
                             [(last + n, fid, lid, units) for n, (lid, units) in enumerate(lines, 1)])

    def update_tracking(self, fulfillment: Any, *, tracking_number: str, company: str | None = None,
                        url: str | None = None) -> dict[str, Any]:
        """Change a fulfillment's tracking as a merchant does (``fulfillmentTrackingInfoUpdate``).

        ``fulfillment`` is its GID or number; ``company`` None keeps the
        company. ``updatedAt`` is left as it was (see the module docstring).
        """
        parsed = parse_gid(fulfillment, "Fulfillment")
        fid = parsed[1] if parsed else int(fulfillment)
        with self._db_lock:
            row = self._db.execute("SELECT tracking FROM fulfillments WHERE id = ?", (fid,)).fetchone()
            if row is None:
                raise ValueError(f"no fulfillment {fulfillment}")
            old = json.loads(row[0] or "[]")
            kept = company if company is not None else (old[0].get("company") if old else None)
            self._db.execute("UPDATE fulfillments SET tracking = ? WHERE id = ?",
                             (json.dumps([{"company": kept, "number": tracking_number, "url": url}]), fid))
        return self.fulfillment_view(fid)

    def fulfillment_view(self, fid: int) -> dict[str, Any]:
        """A fulfillment for tests: ``id``, ``order_number``, ``status``, ``location``, ``tracking``,
        ``lines: [{line_id, variant_id, quantity}]``, ``created_at``, ``updated_at``."""
        with self._db_lock:
            row = self._db.execute(
                "SELECT f.id, f.order_id, o.number, f.status, f.location_id, f.created_at, f.updated_at, "
                "f.tracking FROM fulfillments f JOIN orders o ON o.id = f.order_id WHERE f.id = ?", (fid,),
            ).fetchone()
            if row is None:
                raise ValueError(f"no fulfillment {fid}")
            facts = self.order_facts(row[1])
            assert facts is not None
            variants = dict(facts.lines)
            lines = self._fulfillment_lines(fid, facts)
        return {
            "id": gid("Fulfillment", row[0]), "order_number": row[2], "status": row[3],
            "location": gid("Location", row[4]), "created_at": row[5], "updated_at": row[6] or row[5],
            "tracking": json.loads(row[7] or "[]"),
            "lines": [{"line_id": gid("LineItem", lid),
                       "variant_id": gid("ProductVariant", variants[lid]) if variants.get(lid) else None,
                       "quantity": units} for _, lid, units in lines],
        }

    def fulfillment_nodes(self, oid: int, order_name: str, first: int | None = None) -> list[dict[str, Any]]:
        """``Order.fulfillments``: the order's fulfillments as GraphQL objects, oldest first."""
        with self._db_lock:
            ids = [fid for (fid,) in self._db.execute(
                "SELECT id FROM fulfillments WHERE order_id = ? ORDER BY id", (oid,))]
        return [self.fulfillment_node(fid, f"{order_name}.{n}") for n, fid in enumerate(ids[:first], 1)]

    def fulfillment_node(self, fid: int, name: str | None = None) -> dict[str, Any] | None:
        """One fulfillment as GraphQL serves it (for ``Order.fulfillments`` and ``node``)."""
        with self._db_lock:
            row = self._db.execute(
                "SELECT f.id, f.order_id, f.status, f.quantity, f.created_at, f.updated_at, f.tracking, "
                "l.id, l.name, l.is_default, l.fulfills_online_orders, o.name FROM fulfillments f "
                "JOIN locations l ON l.id = f.location_id JOIN orders o ON o.id = f.order_id WHERE f.id = ?",
                (fid,),
            ).fetchone()
            if row is None:
                return None
            (fid, oid, status, quantity, created, updated, tracking, lid, lname, is_default, online,
             order_name) = row
            if name is None:
                ids = [i for (i,) in self._db.execute(
                    "SELECT id FROM fulfillments WHERE order_id = ? ORDER BY id", (oid,))]
                name = f"{order_name}.{ids.index(fid) + 1}"
            facts = self.order_facts(oid)
            assert facts is not None
            items = [
                (n, {"__typename": "FulfillmentLineItem", "id": gid("FulfillmentLineItem", item),
                     "quantity": units, "lineItem": (lambda info, lid=lid: self.line_item_node(lid))})
                for n, (item, lid, units) in enumerate(self._fulfillment_lines(fid, facts), 1)
            ]
        infos = [{"company": t.get("company"), "number": t.get("number"), "url": t.get("url")}
                 for t in json.loads(tracking or "[]")]
        return {
            "__typename": "Fulfillment", "id": gid("Fulfillment", fid), "name": name, "status": status,
            "totalQuantity": quantity, "createdAt": created, "updatedAt": updated or created,
            "location": location_node((lid, lname, is_default, online)),
            "trackingInfo": lambda info, first=None: infos[:first],
            "fulfillmentLineItems": lambda info, **args: self._memory_connection(
                items, args),
        }

    # -- orderCancel and its job ----------------------------------------------------------------

    def order_cancel(self, order_id: str, *, reason: str, restock: bool,
                     refund_method: dict[str, Any] | None, staff_note: str | None) -> dict[str, Any]:
        """``orderCancel``: checked at once, then queued as a job (see the module docstring)."""
        parsed = parse_gid(order_id, "Order")

        def refused(field: str, message: str, code: str) -> dict[str, Any]:
            return {"job": None,
                    "orderCancelUserErrors": [{"field": [field], "message": message, "code": code}]}

        with self._db_lock:
            facts = self.order_facts(parsed[1]) if parsed else None
            if facts is None:
                return refused("orderId", "Order does not exist", "NOT_FOUND")
            if staff_note is not None and len(staff_note) > STAFF_NOTE_MAX:
                return refused("staffNote", STAFF_NOTE_TOO_LONG, "INVALID")
            if facts.cancelled:
                return refused("orderId", ALREADY_CANCELLED, "INVALID")
            if facts.has_fulfillments:
                return refused("orderId", FULFILLED_REFUSAL, "INVALID")
            job = str(uuid.uuid4())
            params = {"reason": reason, "restock": bool(restock), "note": staff_note,
                      "refund": (refund_method or {}).get("originalPaymentMethodsRefund") is True}
            self._db.execute("INSERT INTO jobs VALUES (?, 'orderCancel', ?, ?, 0, ?)",
                             (job, facts.oid, json.dumps(params), self.clock()))
        return {"job": {"__typename": "Job", "id": f"gid://shopify/Job/{job}", "done": False},
                "orderCancelUserErrors": []}

    def job(self, job_id: str) -> dict[str, Any] | None:
        """``job(id:)``: whether it ran; an id never queued answers done, as Shopify's does."""
        match = _JOB.fullmatch(str(job_id))
        if match is None:
            return None
        with self._db_lock:
            row = self._db.execute("SELECT done FROM jobs WHERE id = ?", (match.group(1),)).fetchone()
        return {"__typename": "Job", "id": job_id, "done": bool(row[0]) if row else True}

    def run_jobs(self, *, force: bool = False) -> int:
        """Run the queued jobs that are due (all of them with ``force``); returns how many ran."""
        delay = float(self.faults.get("job_delay_seconds"))
        ran = 0
        with self._db_lock:
            due = self._db.execute(
                "SELECT id, order_id, params FROM jobs WHERE done = 0 AND (? OR created_epoch + ? <= ?) "
                "ORDER BY created_epoch", (1 if force else 0, delay, self.clock()),
            ).fetchall()
            for job, oid, params in due:
                def work(job: str = job, oid: int = oid, params: str = params) -> None:
                    self._cancel_now(oid, json.loads(params))
                    self._db.execute("UPDATE jobs SET done = 1 WHERE id = ?", (job,))

                self._in_transaction(work)
                ran += 1
        return ran

    def _cancel_now(self, oid: int, params: dict[str, Any]) -> None:
        """The cancel job's work, in the caller's transaction."""
        facts = self.order_facts(oid)
        if facts is None or facts.cancelled or facts.has_fulfillments:
            return  # Shopify's job fails without a word in 2026-07: only cancelledAt tells
        now = iso(self.clock())
        restock = bool(params.get("restock"))
        restocked: dict[int, bool] = {}
        if restock and facts.behaviour != "BYPASS":
            for place, (_, vid) in enumerate(facts.lines):
                restocked[place] = self._restock(vid, facts.claim_location, facts.unfulfilled(place))
        refunds = facts.refunds
        if params.get("refund"):
            lines = [{"line": place, "line_id": lid, "quantity": facts.refundable(place),
                      "restock_type": "CANCEL" if restock else "NO_RESTOCK",
                      "location": facts.claim_location if restock else None,
                      "restocked": restocked.get(place, False)}
                     for place, (lid, _) in enumerate(facts.lines) if facts.refundable(place) > 0]
            transactions = []
            for index, parent in enumerate(facts.money.transactions):
                if parent.kind in _SETTLED and parent.status == "SUCCESS":
                    left = parent.amount - self._refunded_from(facts.money, index)
                    if left.shop > 0 or left.presentment > 0:
                        transactions.append({"kind": "REFUND", "status": "SUCCESS", "gateway": parent.gateway,
                                             "parent": index, "amount": [str(left.shop), str(left.presentment)]})
            refunds = refunds + [self._refund_record(facts, lines, transactions, ZERO_SHIPPING,
                                                     params.get("note"), None, now)]
        self._db.execute(
            "UPDATE orders SET cancelled_at = ?, cancel_reason = ?, cancel_note = ?, refunds = ?, "
            "updated_at = ? WHERE id = ?",
            (now, params.get("reason") or "OTHER", params.get("note"), json.dumps(refunds), now, oid))

    @staticmethod
    def _refunded_from(money: OrderMoney, parent: int) -> Bag:
        return total([t.amount for t in money.transactions
                      if t.kind == "REFUND" and t.status == "SUCCESS" and t.parent == parent])

    def _refund_record(self, facts: OrderFacts, lines: list[dict[str, Any]], transactions: list[dict[str, Any]],
                       shipping: list[str], note: str | None, key: str | None, now: str) -> dict[str, Any]:
        """A refund as the order keeps it; its transactions numbered after the order's others."""
        seq = int(self._meta("refund_seq") or 0) + 1
        self._set_meta("refund_seq", str(seq))
        first = len(facts.money.transactions)
        return {"id": REFUND_ID_BASE + seq, "created_at": now, "note": note, "key": key, "lines": lines,
                "shipping": shipping,
                "transactions": [dict(t, n=first + k) for k, t in enumerate(transactions)]}

    # -- refundCreate ----------------------------------------------------------------------------

    def refund_create(self, refund: dict[str, Any], key: str | None) -> dict[str, Any]:
        """``refundCreate`` under its idempotency key (see the module docstring)."""
        if key is None or not str(key).strip():
            raise GraphQLError(IDEMPOTENT_REQUIRED, extensions={"code": "BAD_REQUEST"})
        parsed = parse_gid(refund.get("orderId"), "Order")
        fingerprint = json.dumps(refund, sort_keys=True, default=str)
        with self._db_lock:
            facts = self.order_facts(parsed[1]) if parsed else None
            if facts is None:
                return {"refund": None, "order": None,
                        "userErrors": [{"field": ["orderId"], "message": "Order does not exist"}]}
            now = self.clock()
            seen = self._db.execute(
                "SELECT fingerprint, order_id, refund_id, created_epoch FROM idempotency_keys WHERE key = ?",
                (key,),
            ).fetchone()
            if seen and now - seen[3] < float(self.faults.get("idempotency_retention_seconds")):
                if seen[0] != fingerprint:
                    return {"refund": None, "order": self.order_by_id(facts.oid),
                            "userErrors": [{"field": None, "message": KEY_MISMATCH}]}
                return {"refund": self.refund_node(seen[1], seen[2]),
                        "order": self.order_by_id(seen[1]), "userErrors": []}
            errors: list[dict[str, Any]] = []
            lines = self._refund_lines(facts, refund.get("refundLineItems") or [], errors)
            transactions = self._refund_transactions(facts, refund, errors)
            shipping = self._refund_shipping(facts, refund.get("shipping"), errors)
            if errors:
                return {"refund": None, "order": self.order_by_id(facts.oid),
                        "userErrors": errors}

            def record() -> int:
                for line in lines:
                    if line["restock_type"] in _RESTOCKING:
                        line["restocked"] = self._restock(facts.lines[line["line"]][1], line["location"],
                                                          line["quantity"])
                made = self._refund_record(facts, lines, transactions, shipping, refund.get("note"), key,
                                           iso(now))
                self._db.execute("UPDATE orders SET refunds = ?, updated_at = ? WHERE id = ?",
                                 (json.dumps([*facts.refunds, made]), iso(now), facts.oid))
                self._db.execute("INSERT OR REPLACE INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
                                 (key, fingerprint, facts.oid, made["id"], now))
                return int(made["id"])

            rid = self._in_transaction(record)
        return {"refund": self.refund_node(facts.oid, rid), "order": self.order_by_id(facts.oid),
                "userErrors": []}

    def _refund_lines(self, facts: OrderFacts, items: list[dict[str, Any]],
                      errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        asked: dict[int, int] = {}
        for i, item in enumerate(items):
            where = ["refundLineItems", str(i)]
            parsed = parse_gid(item.get("lineItemId"), "LineItem")
            place = facts.place(parsed[1]) if parsed else None
            if place is None:
                errors.append({"field": [*where, "lineItemId"], "message": "Line item does not exist"})
                continue
            quantity = int(item.get("quantity") or 0)
            restock = item.get("restockType") or "NO_RESTOCK"
            if restock == "LEGACY_RESTOCK":
                errors.append({"field": [*where, "restockType"],
                               "message": "Restock type LEGACY_RESTOCK is not accepted when creating new refunds"})
                continue
            if quantity < 1:
                errors.append({"field": [*where, "quantity"], "message": "Quantity must be greater than 0"})
                continue
            asked[place] = asked.get(place, 0) + quantity
            if asked[place] > facts.refundable(place):
                errors.append({"field": [*where, "quantity"],
                               "message": f"Quantity cannot exceed the {facts.refundable(place)} unit(s) of this "
                                          "line item that can still be refunded"})
                continue
            location = None
            if restock in _RESTOCKING:
                location = facts.claim_location
                if item.get("locationId") is not None:
                    try:
                        location = self._location_id(item["locationId"])
                    except ValueError:
                        errors.append({"field": [*where, "locationId"], "message": "Location does not exist"})
                        continue
            lines.append({"line": place, "line_id": facts.lines[place][0], "quantity": quantity,
                          "restock_type": restock, "location": location, "restocked": False})
        return lines

    def _refund_transactions(self, facts: OrderFacts, refund: dict[str, Any],
                             errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
        money = facts.money
        multi = money.currency != money.presentment_currency
        currency = refund.get("currency")
        if multi and currency != money.presentment_currency:
            errors.append({"field": ["currency"],
                           "message": f"Currency must be the order's presentment currency "
                                      f"({money.presentment_currency})"})
            return []
        out: list[dict[str, Any]] = []
        taken: dict[int, Bag] = {}
        for i, transaction in enumerate(refund.get("transactions") or []):
            kind = str(transaction.get("kind") or "")
            if kind != "REFUND":
                errors.append({"field": None, "message": f"Kind {kind.lower()} is not a valid transaction"})
                continue
            parsed = parse_gid(transaction.get("parentId"), "OrderTransaction")
            index = parsed[1] - facts.oid * 100 if parsed else -1
            parent = money.transactions[index] if 0 <= index < len(money.transactions) else None
            if parent is None or parent.kind not in _SETTLED or parent.status != "SUCCESS":
                errors.append({"field": ["transactions"], "message": MISSING_PARENT})
                continue
            amount = _amount(transaction.get("amount"), money.presentment_currency)
            if amount is None or amount <= 0:
                errors.append({"field": ["transactions", str(i), "amount"],
                               "message": "Amount must be a positive amount with at most "
                                          f"{minor_units(money.presentment_currency)} decimals"})
                continue
            shop = amount if not multi else _round(amount * parent.amount.shop / parent.amount.presentment,
                                                    money.currency)
            part = Bag(shop, amount)
            left = parent.amount - self._refunded_from(money, index) - taken.get(index, ZERO)
            if part.presentment > left.presentment and not refund.get("allowOverRefunding"):
                errors.append({"field": ["transactions"],
                               "message": f"Amount can't be greater than the {left.presentment} "
                                          f"{money.presentment_currency} left to refund of its parent transaction"})
                continue
            taken[index] = taken.get(index, ZERO) + part
            out.append({"kind": "REFUND", "status": "SUCCESS", "gateway": parent.gateway, "parent": index,
                        "amount": [str(part.shop), str(part.presentment)]})
        if out and len(money.transactions) + len(out) > 99:
            errors.append({"field": ["transactions"], "message": "The order has too many transactions"})
        return out

    def _refund_shipping(self, facts: OrderFacts, shipping: dict[str, Any] | None,
                         errors: list[dict[str, Any]]) -> list[str]:
        money = facts.money
        if not shipping:
            return list(ZERO_SHIPPING)
        paid = total([s.discounted_price + (s.tax if not money.taxes_included else ZERO)
                      for s in money.shipping_lines])
        left = paid - money.refunded_shipping
        if shipping.get("fullRefund"):
            return [str(left.shop), str(left.presentment)]
        if shipping.get("amount") is None:
            return list(ZERO_SHIPPING)
        amount = _amount(shipping.get("amount"), money.presentment_currency)
        if amount is None or amount < 0 or amount > left.presentment:
            errors.append({"field": ["shipping", "amount"],
                           "message": f"Shipping refund can't be greater than the {left.presentment} "
                                      f"{money.presentment_currency} of shipping left to refund"})
            return list(ZERO_SHIPPING)
        shop = amount if left.presentment == left.shop else _round(
            amount * left.shop / left.presentment, money.currency) if left.presentment else Decimal(0)
        return [str(shop), str(amount)]

    # -- refunds as GraphQL serves them -----------------------------------------------------------

    def _refund_view(self, facts: OrderFacts, record: dict[str, Any]) -> dict[str, Any]:
        """A refund for tests: ``id``, ``created_at``, ``note``, ``amount`` (shop money, its
        transactions), ``shipping``, ``lines: [{line_id, quantity, restock_type, location, restocked}]``."""
        money = facts.money
        amount = total([money.transactions[int(t["n"])].amount for t in record["transactions"]])
        return {
            "id": gid("Refund", int(record["id"])), "created_at": record["created_at"], "note": record.get("note"),
            "amount": str(amount.shop), "shipping": record["shipping"][0],
            "lines": [{"line_id": gid("LineItem", int(line["line_id"])), "quantity": line["quantity"],
                       "restock_type": line["restock_type"],
                       "location": gid("Location", line["location"]) if line.get("location") else None,
                       "restocked": bool(line.get("restocked"))} for line in record["lines"]],
        }

    def refund_nodes(self, oid: int, first: int | None = None) -> list[dict[str, Any]]:
        """``Order.refunds``: oldest first."""
        with self._db_lock:
            facts = self.order_facts(oid)
        if facts is None:
            return []
        return [self._refund_node(facts, r) for r in facts.refunds[:first]]

    def refund_node(self, oid: int, rid: int) -> dict[str, Any] | None:
        with self._db_lock:
            facts = self.order_facts(oid)
        record = next((r for r in facts.refunds if r["id"] == rid), None) if facts else None
        return self._refund_node(facts, record) if facts and record else None

    def _refund_node(self, facts: OrderFacts, record: dict[str, Any]) -> dict[str, Any]:
        money = facts.money
        rid = int(record["id"])
        transactions = [(int(t["n"]), self.transaction_node(facts, int(t["n"]))) for t in record["transactions"]]
        refunded = total([money.transactions[int(t["n"])].amount for t in record["transactions"]])
        with self._db_lock:
            locations = {row[0]: row for row in self._db.execute(
                "SELECT id, name, is_default, fulfills_online_orders FROM locations")}
        items = [
            (k, {"__typename": "RefundLineItem", "id": gid("RefundLineItem", rid * 100 + k),
                 "lineItem": (lambda info, lid=line["line_id"]: self.line_item_node(lid)),
                 "location": location_node(locations[line["location"]]) if line.get("location") in locations
                 else None,
                 "quantity": line["quantity"], "restockType": line["restock_type"],
                 "restocked": bool(line.get("restocked")),
                 "priceSet": bag(money.lines[line["line"]].unit_price, money)})
            for k, line in enumerate(record["lines"], 1)
        ]
        return {
            "__typename": "Refund", "id": gid("Refund", rid), "createdAt": record["created_at"],
            "processedAt": record["created_at"], "updatedAt": record["created_at"], "note": record.get("note"),
            "totalRefundedSet": bag(refunded, money),
            "refundLineItems": lambda info, **args: self._memory_connection(items, args),
            "transactions": lambda info, **args: self._memory_connection(
                transactions, args),
            "order": lambda info: self.order_by_id(facts.oid),
        }

    def transaction_node(self, facts: OrderFacts, n: int) -> dict[str, Any]:
        """The order's ``n``-th transaction (its input ones first, then refunds')."""
        money = facts.money
        t = money.transactions[n]
        created = next((r["created_at"] for r in facts.refunds for x in r["transactions"] if int(x["n"]) == n),
                       None)
        with self._db_lock:
            processed = self._db.execute("SELECT processed_at FROM orders WHERE id = ?",
                                         (facts.oid,)).fetchone()[0]
        return {
            "__typename": "OrderTransaction", "id": gid("OrderTransaction", facts.oid * 100 + n),
            "kind": t.kind, "status": t.status, "gateway": t.gateway, "test": t.test,
            "createdAt": created or processed, "processedAt": created or processed,
            "amountSet": bag(t.amount, money),
            "parentTransaction": (lambda info: self.transaction_node(facts, t.parent))
            if t.parent is not None else None,
        }

    def transaction_nodes(self, oid: int, first: int | None = None) -> list[dict[str, Any]]:
        """``Order.transactions``: every transaction, oldest first."""
        with self._db_lock:
            facts = self.order_facts(oid)
        if facts is None:
            return []
        return [self.transaction_node(facts, n) for n in range(len(facts.money.transactions))][:first]

    def line_item_node(self, lid: int) -> dict[str, Any] | None:
        """One line item as ``lineItems`` serves it (for fulfillment and refund lines)."""
        with self._db_lock:
            row = self._db.execute("SELECT order_id FROM line_items WHERE id = ?", (lid,)).fetchone()
        if row is None:
            return None
        return next((node for node in self._line_nodes(row[0]) if node["id"] == gid("LineItem", lid)),
                    None)


ZERO_SHIPPING = ("0", "0")


def _amount(value: Any, currency: str) -> Decimal | None:
    """A Money input as a Decimal with at most the currency's decimals (None: not one)."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    places = Decimal(1).scaleb(-minor_units(currency))
    if not amount.is_finite() or amount != amount.quantize(places, rounding=ROUND_HALF_UP):
        return None
    return amount


def _round(value: Decimal, currency: str) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)
