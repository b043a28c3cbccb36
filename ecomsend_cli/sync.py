"""Order sync (DESIGN §5): pull TikTok orders, resolve their SKUs, create Shopify orders once.

The rules of §5 live here and only here:

* **Pull** — orders updated since (cursor − overlap), or the last
  ``initial_days`` on a first run, every page followed; each page and the
  cursor commit together, so a crash loses nothing and repeats little.
* **State** — :func:`next_state` decides what a pulled order becomes from its
  TikTok status and what we already did with it.
* **Resolve** — :func:`resolve_items`: one TikTok line item per unit, combined
  listings expanded into their component SKUs × ``sku_count``.
* **Create** — :func:`build_order_input` maps a TikTok order onto
  ``OrderCreateOrderInput``.
* **Exactly once** — an order is marked ``creating`` (committed) before
  ``orderCreate`` is sent. An order found ``creating`` later is looked up by
  ``source_identifier`` first and only created again once it is certainly
  absent: not found, and marked longer ago than Shopify's search index can lag.

The engine never prints; progress goes to an ``on_event`` callback.
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol

from .config import SyncConfig
from .errors import ApiError, EcomsendError, LockHeldError, OutcomeUnknownError
from .models import OrderItem, PulledOrder, TikTokSku
from .store import Store

# Our states. `waiting`: UNPAID/ON_HOLD; `creating`: orderCreate may be in flight.
PENDING, WAITING, BLOCKED, CREATING, SYNCED, FAILED, SKIPPED = (
    "pending", "waiting", "blocked", "creating", "synced", "failed", "skipped",
)
STATES = (PENDING, WAITING, BLOCKED, CREATING, SYNCED, FAILED, SKIPPED)
HOLD_STATUSES = ("UNPAID", "ON_HOLD")
CURSOR_KEY = "sync.cursor"

Event = Callable[..., None]


class TikTokOrders(Protocol):
    def search_orders(self, *, update_time_ge: int, update_time_lt: int | None = None,
                      page_size: int = 50) -> Iterable[list[dict]]: ...

    def get_orders(self, ids: list[str]) -> list[dict]: ...

    def get_product(self, product_id: str) -> dict: ...


class ShopifyOrders(Protocol):
    def orders_by_source_identifier(self, tiktok_order_id: str) -> list[dict]: ...

    def order_create(self, order: dict, *, inventory_behaviour: str) -> Any: ...


# --- the lock ------------------------------------------------------------------------------


class SyncLock:
    """One ``sync-orders`` at a time: an exclusive ``flock`` on ``<store>.lock``.

    The kernel drops the lock when its holder dies, however it dies, so a lock
    file left by a killed run never blocks the next one.
    """

    def __init__(self, store_path: Path) -> None:
        self.path = Path(str(store_path) + ".lock")
        self._fd: int | None = None

    def __enter__(self) -> SyncLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise LockHeldError(
                f"another sync-orders is running (pid {holder}, lock {self.path})",
                hint="let it finish; this run did nothing",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None


# --- rules ------------------------------------------------------------------------------------


def next_state(current: str | None, tiktok_status: str, statuses: Iterable[str]) -> tuple[str, str]:
    """``(state, reason)`` for a pulled order, given what we had (``current``) and its status.

    Orders we created, or may have created (``creating``), keep that state
    whatever TikTok says now.
    """
    if current in (SYNCED, CREATING):
        return current, ""
    if tiktok_status == "CANCELLED":
        return SKIPPED, "cancelled on TikTok before it was synced"
    if tiktok_status in HOLD_STATUSES:
        return WAITING, f"{tiktok_status}: created once TikTok releases it"
    if tiktok_status in statuses:
        return PENDING, ""
    return SKIPPED, f"status {tiktok_status} is not in sync.statuses"


def resolve_items(order: dict) -> tuple[tuple[OrderItem, ...], tuple[TikTokSku, ...]]:
    """The SKUs an order needs, with quantities, and the TikTok SKUs seen in it (§5.2).

    TikTok sends one line item per unit: the quantity of a SKU is the number
    of its line items. A line with ``combined_listing_skus`` needs each
    component SKU × its ``sku_count`` instead of the line's own SKU; the line's
    price is shared evenly over the component units.
    """
    quantities: OrderedDict[str, list] = OrderedDict()  # sku_id -> [qty, total price, title]
    skus: dict[str, TikTokSku] = {}
    for line in order.get("line_items") or []:
        price = _decimal(line.get("sale_price"))
        components = line.get("combined_listing_skus") or []
        if components:
            units = sum(max(int(c.get("sku_count") or 1), 1) for c in components)
            for c in components:
                count = max(int(c.get("sku_count") or 1), 1)
                sku_id = str(c["sku_id"])
                entry = quantities.setdefault(sku_id, [0, Decimal(0), line.get("product_name") or ""])
                entry[0] += count
                entry[1] += price * count / units
                skus.setdefault(sku_id, TikTokSku(
                    sku_id=sku_id, product_id=str(c.get("product_id") or ""),
                    product_title=line.get("product_name") or "",
                    sku_name=f"{line.get('sku_name') or ''} (combined listing part)".strip(),
                    seller_sku=c.get("seller_sku") or "",
                ))
            continue
        sku_id = str(line.get("sku_id") or "")
        if not sku_id:
            continue
        entry = quantities.setdefault(sku_id, [0, Decimal(0), line.get("product_name") or ""])
        entry[0] += 1
        entry[1] += price
        skus[sku_id] = TikTokSku(
            sku_id=sku_id, product_id=str(line.get("product_id") or ""),
            product_title=line.get("product_name") or "", sku_name=line.get("sku_name") or "",
            seller_sku=line.get("seller_sku") or "",
        )
    items = tuple(
        OrderItem(sku_id, qty, _money(total / qty), title)
        for sku_id, (qty, total, title) in quantities.items()
    )
    return items, tuple(skus.values())


def parse_order(order: dict) -> PulledOrder:
    """A TikTok order payload as a :class:`PulledOrder`."""
    items, skus = resolve_items(order)
    payment = order.get("payment") or {}
    return PulledOrder(
        tiktok_order_id=str(order["id"]),
        tiktok_status=str(order.get("status") or ""),
        create_time=int(order.get("create_time") or 0),
        update_time=int(order.get("update_time") or 0),
        currency=str(payment.get("currency") or ""),
        total_amount=str(payment.get("total_amount") or "0"),
        payload=order,
        items=items,
        skus=skus,
    )


def build_order_input(order: dict, items: Iterable[OrderItem], links: dict[str, str],
                      config: SyncConfig) -> dict:
    """``OrderCreateOrderInput`` for a TikTok order whose SKUs are all linked (§5.3)."""
    payment = order.get("payment") or {}
    currency = str(payment.get("currency") or "USD")

    def money(amount: Any) -> dict:
        return {"shopMoney": {"amount": _money(_decimal(amount)), "currencyCode": currency}}

    line_items = [
        {"variantId": links[item.sku_id], "quantity": item.quantity, "priceSet": money(item.unit_price)}
        for item in items
    ]
    data: dict[str, Any] = {
        "currency": currency,
        "lineItems": line_items,
        "financialStatus": "PAID",
        "sourceName": config.source_name,
        "sourceIdentifier": str(order["id"]),
        "tags": list(config.tags),
        "note": f"TikTok Shop order {order['id']}",
        "transactions": [
            {"kind": "SALE", "status": "SUCCESS", "gateway": "TikTok Shop",
             "amountSet": money(payment.get("total_amount") or 0)}
        ],
        "shippingLines": [
            {"title": order.get("delivery_option_name") or "TikTok Shop shipping",
             "code": "tiktok", "source": "tiktok", "priceSet": money(payment.get("shipping_fee") or 0)}
        ],
    }
    email = (order.get("buyer_email") or "").strip()
    if email:
        data["email"] = email
    if order.get("create_time"):
        data["processedAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(order["create_time"])))
    address = _address(order.get("recipient_address") or {})
    if address:
        data["shippingAddress"] = address
    return data


def _address(addr: dict) -> dict:
    districts = {d.get("address_level"): d.get("address_name") for d in addr.get("district_info") or []}
    first, last = addr.get("first_name") or "", addr.get("last_name") or ""
    if not (first or last) and addr.get("name"):
        first, _, last = str(addr["name"]).partition(" ")
    out = {
        "firstName": first,
        "lastName": last,
        "address1": addr.get("address_line1") or addr.get("address_detail") or "",
        "address2": addr.get("address_line2") or "",
        "city": districts.get("L3") or districts.get("L2") or "",
        "zip": addr.get("postal_code") or "",
        "countryCode": (addr.get("region_code") or "").upper(),
    }
    province = districts.get("L1") or ""
    if province and len(province) <= 3 and province.isalpha():
        out["provinceCode"] = province.upper()
    return {k: v for k, v in out.items() if v}


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value if value not in (None, "") else "0"))
    except InvalidOperation:
        return Decimal(0)


def _money(value: Decimal | str) -> str:
    return str(_decimal(value).quantize(Decimal("0.01"), rounding=ROUND_DOWN))


# --- the engine -------------------------------------------------------------------------------


@dataclass
class SyncOptions:
    dry_run: bool = False
    since: int | None = None  # unix time; overrides the cursor for this run
    order_id: str | None = None  # sync just this order
    limit: int | None = None  # create at most this many orders
    reconcile_wait: float = 60.0  # how long Shopify's search index may lag a new order
    page_size: int = 50


@dataclass
class OrderOutcome:
    tiktok_order_id: str
    state: str
    shopify_order_id: str | None = None
    shopify_order_name: str | None = None
    reason: str = ""
    missing_sku_ids: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "tiktok_order_id": self.tiktok_order_id,
            "state": self.state,
            "shopify_order_id": self.shopify_order_id,
            "shopify_order_name": self.shopify_order_name,
            "reason": self.reason,
            "missing_sku_ids": self.missing_sku_ids,
        }


@dataclass
class SyncReport:
    pulled: int = 0
    created: int = 0
    reconciled: int = 0
    orders: dict[str, OrderOutcome] = field(default_factory=dict)
    cancelled_after_sync: list[OrderOutcome] = field(default_factory=list)
    missing_skus: dict[str, dict] = field(default_factory=dict)  # sku_id -> details, order count
    dry_run: bool = False

    def count(self, state: str) -> int:
        return sum(1 for o in self.orders.values() if o.state == state)

    @property
    def unconfirmed(self) -> int:
        return self.count(CREATING)

    @property
    def needs_attention(self) -> bool:
        """Blocked or failed orders remain (exit code 3)."""
        return bool(self.count(BLOCKED) or self.count(FAILED))

    def as_json(self) -> dict:
        return {
            "synced": self.count(SYNCED),
            "blocked": self.count(BLOCKED),
            "failed": self.count(FAILED),
            "skipped": self.count(SKIPPED),
            "waiting": self.count(WAITING),
            "unconfirmed": self.unconfirmed,
            "pulled": self.pulled,
            "created": self.created,
            "dry_run": self.dry_run,
            "orders": [o.as_json() for o in self.orders.values()],
            "cancelled_after_sync": [o.as_json() for o in self.cancelled_after_sync],
            "missing_skus": list(self.missing_skus.values()),
        }


class Syncer:
    """One run of sync-orders over an open store and the two clients."""

    def __init__(self, store: Store, tiktok: TikTokOrders, shopify: ShopifyOrders | None,
                 config: SyncConfig, options: SyncOptions, *, on_event: Event | None = None,
                 clock: Callable[[], float] = time.time, crash_at: str | None = None,
                 refresh_catalog: Callable[[], None] | None = None) -> None:
        self.store = store
        self.tiktok = tiktok
        self.shopify = shopify
        self.config = config
        self.options = options
        self.on_event = on_event or (lambda kind, **data: None)
        self.clock = clock
        self.crash_at = crash_at
        self.refresh_catalog = refresh_catalog
        self.report = SyncReport(dry_run=options.dry_run)
        self._preview: dict[str, tuple[PulledOrder, str, str]] = {}  # dry run: nothing is written

    # -- pull ---------------------------------------------------------------------------------

    def pull(self) -> None:
        """Fetch orders from TikTok and store them, page by page with the cursor."""
        if self.options.order_id:
            found = self.tiktok.get_orders([self.options.order_id])
            if not found:
                raise EcomsendError(f"TikTok has no order {self.options.order_id}",
                                    hint="check the order id")
            pages: Iterable[list[dict]] = [found]
        else:
            pages = self.tiktok.search_orders(update_time_ge=self._window_start(),
                                              page_size=self.options.page_size)
        self.on_event("pull_started")
        for page in pages:
            parsed = [parse_order(o) for o in page]
            self._store_page(parsed)
            self.report.pulled += len(parsed)
            self.on_event("pulled", count=self.report.pulled)

    def _window_start(self) -> int:
        if self.options.since is not None:
            return int(self.options.since)
        cursor = self.store.get_state(CURSOR_KEY)
        if cursor is None:
            return int(self.clock()) - self.config.initial_days * 86400
        return int(cursor) - self.config.overlap_minutes * 60

    def _store_page(self, orders: list[PulledOrder]) -> None:
        known = self.store.order_states([o.tiktok_order_id for o in orders])
        decided = []
        for order in orders:
            current = known.get(order.tiktok_order_id)
            state, reason = next_state(current[0] if current else None, order.tiktok_status,
                                       self.config.statuses)
            cancelled_after = current is not None and current[0] == SYNCED and order.tiktok_status == "CANCELLED"
            decided.append((order, state, reason, cancelled_after))
            if cancelled_after:
                self.report.cancelled_after_sync.append(OrderOutcome(
                    order.tiktok_order_id, SYNCED, current[1], current[2],
                    "cancelled on TikTok after it was synced: cancel the Shopify order by hand"))
        if self.options.dry_run:
            for order, state, reason, _ in decided:
                self._preview[order.tiktok_order_id] = (order, state, reason)
            return
        cursor = max([o.update_time for o in orders] + [int(self.store.get_state(CURSOR_KEY) or 0)])
        self.store.record_orders(decided, cursor_key=None if self.options.order_id else CURSOR_KEY,
                                 cursor=cursor)

    # -- resolve and create -----------------------------------------------------------------------

    def run(self) -> SyncReport:
        self.pull()
        if self.options.dry_run:
            self._resolve_preview()
        else:
            self._apply_feed_links()
            self._reconcile()
            self._create()
        self._collect_missing()
        return self.report

    def _apply_feed_links(self) -> None:
        """Link SKUs published from Shopify (§4.2): read each new product's detail once."""
        from .linking import apply_feed_links, propose_feed_links
        from .models import variant_gid

        for product_id in self.store.unchecked_products():
            try:
                detail = self.tiktok.get_product(product_id)
            except ApiError as exc:  # a deleted product must not stop the sync
                self.on_event("product_unreadable", product_id=product_id, reason=str(exc))
                continue
            self.store.record_product_detail(product_id, {
                str(sku.get("id")): str(sku.get("external_sku_id") or "")
                for sku in detail.get("skus") or []
            })
        externals = self.store.external_sku_ids()
        if externals and self.refresh_catalog is not None:
            cached = self.store.variants(
                variant_gid(e) for _, e in externals if e.strip().isdigit() or e.startswith("gid://"))
            if len(cached) < len({e for _, e in externals}):
                self.refresh_catalog()  # a variant we have not cached yet may be the one
        pairs = propose_feed_links(self.store)
        if pairs:
            apply_feed_links(self.store, pairs, actor="sync-orders")
            self.on_event("feed_linked", count=len(pairs))

    def _scope(self) -> list[str] | None:
        return [self.options.order_id] if self.options.order_id else None

    def _resolve_preview(self) -> None:
        links = self.store.link_map()
        rows = {r.tiktok_order_id: r for r in self.store.orders(states=(PENDING, BLOCKED, FAILED),
                                                                  ids=self._scope())}
        for order_id, row in rows.items():
            if order_id not in self._preview:
                self._preview[order_id] = (None, row.state, row.reason)  # type: ignore[assignment]
        for order_id, (order, state, reason) in self._preview.items():
            if state not in (PENDING, BLOCKED, FAILED):
                self.report.orders[order_id] = OrderOutcome(order_id, state, reason=reason)
                continue
            items = order.items if order is not None else rows[order_id].items
            missing = sorted({i.sku_id for i in items if i.sku_id not in links})
            if missing:
                self.report.orders[order_id] = OrderOutcome(
                    order_id, BLOCKED, reason=_blocked_reason(missing), missing_sku_ids=missing)
            else:
                self.report.orders[order_id] = OrderOutcome(order_id, PENDING,
                                                            reason="would be created (dry run)")

    def _reconcile(self) -> None:
        """Orders left ``creating`` by a crash or a lost answer: find them before anything else."""
        stuck = self.store.orders(states=(CREATING,), ids=self._scope())
        if not stuck or self.shopify is None:
            return
        self.on_event("reconcile_started", total=len(stuck))
        now = self.clock()
        for row in stuck:
            found = self.shopify.orders_by_source_identifier(row.tiktok_order_id)
            if found:
                first = found[0]
                self.store.set_order_state(row.tiktok_order_id, SYNCED, shopify_order_id=first["id"],
                                           shopify_order_name=first.get("name"))
                self.report.reconciled += 1
                self.report.orders[row.tiktok_order_id] = OrderOutcome(
                    row.tiktok_order_id, SYNCED, first["id"], first.get("name"),
                    "found in Shopify after an interrupted run")
            elif now - row.state_changed_epoch >= self.options.reconcile_wait:
                # Absent, and marked longer ago than the search index lags: never created.
                self.store.set_order_state(row.tiktok_order_id, PENDING,
                                           reason="not found in Shopify after an interrupted run")
            else:
                self.report.orders[row.tiktok_order_id] = OrderOutcome(
                    row.tiktok_order_id, CREATING,
                    reason="sent to Shopify, not yet confirmed; the next run checks again")

    def _create(self) -> None:
        if self.shopify is None:
            return
        links = self.store.link_map()
        ready = []
        for row in self.store.orders(states=(PENDING, BLOCKED, FAILED), ids=self._scope()):
            missing = sorted({i.sku_id for i in row.items if i.sku_id not in links})
            if missing:
                reason = _blocked_reason(missing)
                if row.state != BLOCKED or row.reason != reason:
                    self.store.set_order_state(row.tiktok_order_id, BLOCKED, reason=reason)
                self.report.orders[row.tiktok_order_id] = OrderOutcome(
                    row.tiktok_order_id, BLOCKED, reason=reason, missing_sku_ids=missing)
            else:
                ready.append(row)
        if self.options.limit is not None:
            ready = ready[: self.options.limit]
        if not ready:
            return
        create = self.shopify.order_create  # builds a lazy client now, before any order is marked
        self.on_event("create_started", total=len(ready))
        pool = ThreadPoolExecutor(max_workers=max(1, self.config.concurrency),
                                  thread_name_prefix="orderCreate")
        in_flight: dict[Future, Any] = {}
        queue = list(reversed(ready))
        try:
            while queue or in_flight:
                while queue and len(in_flight) < max(1, self.config.concurrency):
                    row = queue.pop()
                    order_input = build_order_input(row.payload, row.items, links, self.config)
                    self._checkpoint("before_mark")
                    self.store.set_order_state(row.tiktok_order_id, CREATING, attempt=True)
                    self._checkpoint("after_mark")
                    future = pool.submit(create, order_input,
                                         inventory_behaviour=self.config.inventory_behaviour)
                    in_flight[future] = row
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    self._finish(in_flight.pop(future), future)
        finally:
            pool.shutdown(wait=True)

    def _finish(self, row: Any, future: Future) -> None:
        order_id = row.tiktok_order_id
        try:
            result = future.result()
        except OutcomeUnknownError as exc:
            self.report.orders[order_id] = OrderOutcome(
                order_id, CREATING, reason=f"{exc.message}; the next run checks Shopify before retrying")
            self.on_event("created", order_id=order_id, state=CREATING)
            return
        except ApiError as exc:
            # Known not to have been created (the client raises OutcomeUnknownError otherwise).
            self.store.set_order_state(order_id, FAILED, reason=str(exc))
            self.report.orders[order_id] = OrderOutcome(order_id, FAILED, reason=str(exc))
            self.on_event("created", order_id=order_id, state=FAILED)
            return
        self._checkpoint("after_answer")
        if result.ok:
            self._checkpoint("before_commit")
            self.store.set_order_state(order_id, SYNCED, shopify_order_id=result.order_id,
                                       shopify_order_name=result.order_name)
            self.report.created += 1
            self.report.orders[order_id] = OrderOutcome(order_id, SYNCED, result.order_id,
                                                        result.order_name)
            self.on_event("created", order_id=order_id, state=SYNCED)
        else:
            reason = "; ".join(
                f"{e.get('code') or 'ERROR'}: {e.get('message')}" for e in result.user_errors
            ) or "Shopify created no order and gave no reason"
            self.store.set_order_state(order_id, FAILED, reason=f"Shopify refused: {reason}")
            self.report.orders[order_id] = OrderOutcome(order_id, FAILED,
                                                        reason=f"Shopify refused: {reason}")
            self.on_event("created", order_id=order_id, state=FAILED)

    def _checkpoint(self, name: str) -> None:
        """Test hook for the crash tests: die here (``name`` or ``name:N``, the Nth time)."""
        if not self.crash_at:
            return
        target, _, nth = self.crash_at.partition(":")
        if target != name:
            return
        self._hits = getattr(self, "_hits", 0) + 1
        if self._hits >= int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)

    def _collect_missing(self) -> None:
        ids = sorted({s for o in self.report.orders.values() for s in o.missing_sku_ids})
        details = self.store.tiktok_skus(ids) if ids else {}
        for outcome in self.report.orders.values():
            for sku_id in outcome.missing_sku_ids:
                entry = self.report.missing_skus.setdefault(sku_id, {
                    "tiktok_sku_id": sku_id,
                    "seller_sku": details[sku_id].seller_sku if sku_id in details else "",
                    "product_title": details[sku_id].product_title if sku_id in details else "",
                    "sku_name": details[sku_id].sku_name if sku_id in details else "",
                    "blocked_orders": 0,
                })
                entry["blocked_orders"] += 1


def _blocked_reason(missing: list[str]) -> str:
    return f"{len(missing)} unlinked SKU(s): {', '.join(missing[:5])}" + (" …" if len(missing) > 5 else "")


def run_sync(store: Store, tiktok: TikTokOrders, shopify: ShopifyOrders | None, config: SyncConfig,
             options: SyncOptions, *, on_event: Event | None = None, crash_at: str | None = None,
             refresh_catalog: Callable[[], None] | None = None) -> SyncReport:
    """Run one sync under the lock beside the store (exit 75 when another run holds it)."""
    with SyncLock(store.path):
        return Syncer(store, tiktok, shopify, config, options, on_event=on_event,
                      crash_at=crash_at, refresh_catalog=refresh_catalog).run()
