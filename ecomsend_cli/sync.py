"""Order sync (DESIGN §5): pull TikTok orders, resolve their SKUs, create Shopify orders once.

The rules of §5 live here and only here:

* **Pull** — orders updated since (cursor − overlap), or the last
  ``initial_days`` on a first run, every page followed; each page and the
  cursor commit together, so a crash loses nothing and repeats little. The
  cursor never moves past the time of the run. Payloads are checked by
  :mod:`.tiktok_orders`; an unusable one becomes ``invalid`` and the rest of
  its page goes on.
* **State** — :func:`next_state` decides what a pulled order becomes from its
  TikTok status and what we already did with it.
* **Create** — :mod:`.order_input` maps a TikTok order onto
  ``OrderCreateOrderInput`` (money, kinds and people, §5.7 and §5.8).
* **Exactly once** (§5.4):

  - one run per store *file* (:class:`SyncLock` locks the file itself, so a
    symlink, a hard link or a bind mount cannot start a second run);
  - before an order is first sent, Shopify is searched for its
    ``sourceIdentifier`` (batched); a match is adopted, never created again;
  - the claim ``pending|blocked|failed → creating`` is a compare-and-set
    committed before the call, with the links read in the same transaction;
  - only an order id or well-formed ``userErrors`` are final answers;
    anything else leaves the order ``creating`` (outcome unknown);
  - a ``creating`` order is looked up on every run and sent again only when
    absent from two lookups on different runs, the first at least
    ``reconcile_wait`` after the claim by a clock a wall-clock step cannot
    move (:func:`steady_clock`).

The engine never prints; progress goes to an ``on_event`` callback.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .config import SyncConfig
from .errors import ApiError, EcomsendError, NetworkError, OutcomeUnknownError, PagingError
from .models import InvalidOrder, PulledOrder
from .order_input import OrderRefused, Shop, build_order_input, line_map, skip_reason
from .run import Checkpoints, SyncLock
from .store import CLAIMABLE, Claimable, ClaimStamp, OrderRow, Store, ToSend
from .tiktok_orders import parse_order

# Our states. `waiting`: UNPAID/ON_HOLD; `creating`: orderCreate may be in flight;
# `invalid`: TikTok's payload cannot be used (§5.1), never sent. `held` is shown
# in a run's report only: an order the run would not send and that needs the
# operator (it keeps its stored state).
PENDING, WAITING, BLOCKED, CREATING, SYNCED, FAILED, SKIPPED, INVALID = (
    "pending", "waiting", "blocked", "creating", "synced", "failed", "skipped", "invalid",
)
STATES = (PENDING, WAITING, BLOCKED, CREATING, SYNCED, FAILED, SKIPPED, INVALID)
HELD = "held"
# Shown, never stored: a blocked order whose SKUs are all linked now (and none stale);
# the next run sends it (see :func:`current_state`).
READY = "ready"
HOLD_STATUSES = ("UNPAID", "ON_HOLD")
CURSOR_KEY = "sync.cursor"
HOLDER_KEY = "sync.holder"
LOOKUP_BATCH = 50  # sourceIdentifiers per orders search (§5.4)
# orderCreate calls in a row that got no answer within the deadline before the
# run stops sending (issue 15): Shopify is unreachable, do not feed it the queue.
STOP_AFTER_DEADLINE_MISSES = 3
# Without read_all_orders Shopify's search hides orders older than 60 days; a day of margin.
SEARCH_WINDOW_SECONDS = 59 * 86400

Event = Callable[..., None]


class TikTokOrders(Protocol):
    def search_orders(self, *, update_time_ge: int, update_time_lt: int | None = None,
                      page_size: int = 50) -> Iterable[list[dict]]: ...

    def get_orders(self, ids: list[str]) -> list[dict]: ...

    def get_product(self, product_id: str) -> dict: ...

    def external_orders(self, order_id: str, platform: str = "SHOPIFY") -> list[dict]: ...


class ShopifyOrders(Protocol):
    def orders_by_source_identifiers(self, tiktok_order_ids: list[str]) -> dict[str, list[dict]]: ...

    def order_create(self, order: dict, *, inventory_behaviour: str) -> Any: ...

    def access_scopes(self) -> set[str]: ...

    def shop_info(self) -> dict: ...

    def order_fulfillments(self, order_ids: list[str]) -> dict[str, Any]: ...


# --- clocks and the lock ------------------------------------------------------------------


def steady_clock() -> tuple[str, float]:
    """``(boot, seconds)`` from a clock that a wall-clock step cannot move.

    On Linux: the kernel's boot id and CLOCK_BOOTTIME (which also counts time
    suspended), comparable between processes of one boot. Where the platform
    has neither, the wall clock is the fallback (``boot`` is ``"wall"``) and
    a clock step can then shorten the §5.4 wait.
    """
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return boot, time.clock_gettime(time.CLOCK_BOOTTIME)
    except (OSError, AttributeError):
        return "wall", time.time()


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


# --- the engine -------------------------------------------------------------------------------


@dataclass
class SyncOptions:
    dry_run: bool = False
    since: int | None = None  # unix time; overrides the cursor for this run
    order_id: str | None = None  # sync just this order
    limit: int | None = None  # create at most this many orders
    reconcile_wait: float = 60.0  # how long Shopify's search index may lag a new order
    page_size: int = 50


@dataclass(slots=True)
class OrderOutcome:
    tiktok_order_id: str | None  # None: an invalid payload without a usable id
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
    adopted: int = 0  # found in Shopify before the first send (§5.4)
    lookups: int = 0  # orders searches made
    orders: dict[str, OrderOutcome] = field(default_factory=dict)
    unidentified: list[OrderOutcome] = field(default_factory=list)  # invalid, no usable id
    cancelled_after_sync: list[OrderOutcome] = field(default_factory=list)
    missing_skus: dict[str, dict] = field(default_factory=dict)  # sku_id -> details, order count
    dry_run: bool = False
    # What ended the run early or cut its pull short (issue 15): the run still
    # created what was safe to create, and ends with exit 1 and this message.
    problem: EcomsendError | None = None

    def count(self, state: str) -> int:
        extra = len(self.unidentified) if state == INVALID else 0
        return extra + sum(1 for o in self.orders.values() if o.state == state)

    @property
    def unconfirmed(self) -> int:
        return self.count(CREATING)

    @property
    def needs_attention(self) -> bool:
        """Blocked, failed or invalid orders remain (exit code 3)."""
        return bool(self.count(BLOCKED) or self.count(FAILED) or self.count(INVALID) or self.count(HELD))

    def as_json(self) -> dict:
        return {
            "synced": self.count(SYNCED),
            "blocked": self.count(BLOCKED),
            "failed": self.count(FAILED),
            "skipped": self.count(SKIPPED),
            "waiting": self.count(WAITING),
            "invalid": self.count(INVALID),
            "held": self.count(HELD),
            "unconfirmed": self.unconfirmed,
            "pulled": self.pulled,
            "created": self.created,
            "adopted": self.adopted,
            "dry_run": self.dry_run,
            "orders": [o.as_json() for o in [*self.orders.values(), *self.unidentified]],
            "cancelled_after_sync": [o.as_json() for o in self.cancelled_after_sync],
            "missing_skus": list(self.missing_skus.values()),
            **({"error": {"message": self.problem.message, "hint": self.problem.hint,
                          "exit_code": self.problem.exit_code}} if self.problem else {}),
        }


class Syncer:
    """One run of sync-orders over an open store and the two clients."""

    def __init__(self, store: Store, tiktok: TikTokOrders, shopify: ShopifyOrders | None,
                 config: SyncConfig, options: SyncOptions, *, on_event: Event | None = None,
                 clock: Callable[[], float] = time.time,
                 steady: Callable[[], tuple[str, float]] = steady_clock,
                 crash_at: str | None = None,
                 refresh_catalog: Callable[[], None] | None = None) -> None:
        self.store = store
        self.tiktok = tiktok
        self.shopify = shopify
        self.config = config
        self.options = options
        self.on_event = on_event or (lambda kind, **data: None)
        self.clock = clock
        self.steady = steady
        self.checkpoint = Checkpoints(crash_at)
        self.refresh_catalog = refresh_catalog
        self.run_id = uuid.uuid4().hex
        self.started = int(clock())
        self.report = SyncReport(dry_run=options.dry_run)
        self._preview: dict[str, tuple[PulledOrder | None, str, str]] = {}  # dry run: nothing written
        self._scopes: set[str] | None = None
        self._misses = 0  # orderCreate calls in a row that hit the deadline
        self._shop = Shop(currency="USD")  # read from Shopify before the first claim
        self._shop_label = ""

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
        try:
            for page in pages:
                parsed = [parse_order(o) for o in page]
                self._store_page([o for o in parsed if isinstance(o, PulledOrder)],
                                 [o for o in parsed if isinstance(o, InvalidOrder)])
                self.report.pulled += len(parsed)
                self.on_event("pulled", count=self.report.pulled)
        except PagingError as exc:
            # The pages stored so far are good: create what is safe, then end with the error.
            self.report.problem = exc
            self.on_event("pull_stopped", reason=str(exc))

    def _window_start(self) -> int:
        if self.options.since is not None:
            return int(self.options.since)
        cursor = self.store.get_state(CURSOR_KEY)
        if cursor is None or not cursor.strip().lstrip("-").isdigit():
            return self.started - self.config.initial_days * 86400
        # A cursor ahead of now (an old version's, or a clock that was fast)
        # must not skip the orders in between (§5.1).
        return min(int(cursor), self.started) - self.config.overlap_minutes * 60

    def _store_page(self, orders: list[PulledOrder], invalid: list[InvalidOrder]) -> None:
        known = self.store.order_states([o.tiktok_order_id for o in orders])
        decided = []
        for order in orders:
            current = known.get(order.tiktok_order_id)
            state, reason = next_state(current[0] if current else None, order.tiktok_status,
                                       self.config.statuses)
            if state in (PENDING, WAITING):
                skip = skip_reason(order.payload, self.config)  # order kinds (§5.8)
                if skip:
                    state, reason = SKIPPED, skip
            cancelled_after = current is not None and current[0] == SYNCED and order.tiktok_status == "CANCELLED"
            decided.append((order, state, reason, cancelled_after))
            if cancelled_after:
                self.report.cancelled_after_sync.append(OrderOutcome(
                    order.tiktok_order_id, SYNCED, current[1], current[2],
                    "cancelled on TikTok after it was synced: " + (
                        "the aftersales phase cancels it in Shopify (or reports it if already shipped)"
                        if self.config.aftersales else "cancel the Shopify order by hand (sync.aftersales is off)")))
        for bad in invalid:
            outcome = OrderOutcome(bad.tiktok_order_id, INVALID,
                                   reason=f"TikTok's order cannot be used: {bad.reason}")
            if bad.tiktok_order_id is None:
                self.report.unidentified.append(outcome)
            else:
                self.report.orders[bad.tiktok_order_id] = outcome
            self.on_event("invalid", order_id=bad.tiktok_order_id, reason=bad.reason)
        if self.options.dry_run:
            for order, state, reason, _ in decided:
                self._preview[order.tiktok_order_id] = (order, state, reason)
            return
        stored = self.store.get_state(CURSOR_KEY)
        newest = max([o.update_time for o in orders] + [int(stored) if stored and stored.isdigit() else 0])
        # Never past the time of the run: one order dated in the future must not
        # make every later run start after the orders still to come (§5.1).
        cursor = min(newest, self.started)
        self.store.record_orders(decided, invalid=invalid,
                                 cursor_key=None if self.options.order_id else CURSOR_KEY, cursor=cursor)

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
            skus = detail.get("skus") if isinstance(detail, dict) else None
            self.store.record_product_detail(product_id, {
                str(sku.get("id")): str(sku.get("external_sku_id") or "")
                for sku in (skus if isinstance(skus, list) else []) if isinstance(sku, dict)
            })
        externals = self.store.external_sku_ids()
        if externals and self.refresh_catalog is not None:
            cached = self.store.variants(
                variant_gid(e) for _, e in externals if e.strip().isdigit() or e.startswith("gid://"))
            if len(cached) < len({e for _, e in externals}):
                self.refresh_catalog()  # a variant we have not cached yet may be the one
        pairs = propose_feed_links(self.store, externals)  # a catalog refresh changes neither side
        if pairs:
            apply_feed_links(self.store, pairs, actor="sync-orders")
            self.on_event("feed_linked", count=len(pairs))

    def _scope(self) -> list[str] | None:
        return [self.options.order_id] if self.options.order_id else None

    def _resolve_preview(self) -> None:
        links = self.store.link_map()
        rows = {r.tiktok_order_id: r for r in self.store.orders(states=CLAIMABLE, ids=self._scope())}
        for order_id, row in rows.items():
            if order_id not in self._preview:
                self._preview[order_id] = (None, row.state, row.reason)
        for order_id, (order, state, reason) in self._preview.items():
            if state not in CLAIMABLE:
                self.report.orders[order_id] = OrderOutcome(order_id, state, reason=reason)
                continue
            items = order.items if order is not None else rows[order_id].items
            missing = sorted({i.sku_id for i in items if i.sku_id not in links})
            if missing:
                reason = _blocked_reason(missing, seller_skus=self.store.seller_skus_of(set(missing)))
                self.report.orders[order_id] = OrderOutcome(
                    order_id, BLOCKED, reason=reason, missing_sku_ids=missing)
            else:
                self.report.orders[order_id] = OrderOutcome(order_id, PENDING,
                                                            reason="would be created (dry run)")

    # -- §5.4: looking orders up in Shopify -----------------------------------------------------

    def _lookup(self, order_ids: list[str], *, batch: int = LOOKUP_BATCH) -> dict[str, dict]:
        """The Shopify order of each id found by ``sourceIdentifier``, ``batch`` ids per search."""
        found: dict[str, dict] = {}
        for start in range(0, len(order_ids), batch):
            chunk = order_ids[start:start + batch]
            self.report.lookups += 1
            for order_id, matches in self.shopify.orders_by_source_identifiers(chunk).items():
                if matches:
                    found[order_id] = matches[0]
        return found

    def _adopt(self, order_id: str, match: dict, reason: str) -> None:
        self.store.adopt_order(order_id, match["id"], match.get("name"), reason=reason)
        self.store.record_created(order_id, ())
        self.report.orders[order_id] = OrderOutcome(order_id, SYNCED, match["id"], match.get("name"), reason)
        self.on_event("created", order_id=order_id, state=SYNCED)

    def _searchable(self, create_time: int | None) -> bool:
        """Whether Shopify's search can see an order placed then: within 60 days, or
        read_all_orders granted (asked once a run, only when an old order needs it)."""
        if not create_time or self.started - create_time < SEARCH_WINDOW_SECONDS:
            return True
        if self._scopes is None:
            self._scopes = self.shopify.access_scopes()
        return "read_all_orders" in self._scopes

    def _reconcile(self) -> None:
        """Orders left ``creating`` by a crash or an unclear answer: look them up first (§5.4)."""
        stuck = self.store.orders(states=(CREATING,), ids=self._scope())
        if not stuck or self.shopify is None:
            return
        self.on_event("reconcile_started", total=len(stuck))
        # One search per order: a re-send hangs on "not found", so these use the
        # plainest search Shopify documents, with no OR that a store's search
        # might read differently. They are few (crashes and lost answers only).
        found = self._lookup([row.tiktok_order_id for row in stuck], batch=1)
        boot, now = self.steady()
        wait_for = self.options.reconcile_wait
        for row in stuck:
            order_id = row.tiktok_order_id
            if order_id in found:
                self._adopt(order_id, found[order_id], "found in Shopify after an unconfirmed send")
                self.report.reconciled += 1
                continue
            if row.claim_boot != boot or row.claim_clock is None or now < row.claim_clock:
                # Claimed under another boot, by an older version, or ahead of our clock (a wall
                # clock stepped back, where there is no boot clock): that time cannot be compared
                # with ours, so the wait starts again now, neither cut short nor stretched.
                reason = (f"sent to Shopify, not found yet; the machine restarted or its clock went back "
                          f"since, so the {wait_for:.0f} s wait starts again before it may be sent again")
                self.store.record_lookup(order_id, row.claim_id, run_id=self.run_id, counted=False,
                                         rebase=ClaimStamp(row.claim_id or "", self.run_id, boot, now),
                                         reason=reason)
                self.report.orders[order_id] = OrderOutcome(order_id, CREATING, reason=reason)
                continue
            elapsed = now - row.claim_clock
            if elapsed < wait_for:
                reason = (f"sent to Shopify {elapsed:.0f} s ago, not found yet; Shopify's search may "
                          f"lag up to {wait_for:.0f} s, a later run checks again")
                self.store.record_lookup(order_id, row.claim_id, run_id=self.run_id, counted=False,
                                         reason=reason)
                self.report.orders[order_id] = OrderOutcome(order_id, CREATING, reason=reason)
                continue
            if not self._searchable(row.create_time):
                reason = ("sent to Shopify, not found: the order is older than 60 days, which Shopify's "
                          "search hides without the read_all_orders scope, so it is not sent again; "
                          "grant read_all_orders to the app, or check Shopify for source identifier "
                          f"{order_id}")
                self.store.record_lookup(order_id, row.claim_id, run_id=self.run_id, counted=False,
                                         reason=reason)
                self.report.orders[order_id] = OrderOutcome(order_id, CREATING, reason=reason)
                continue
            absent = row.absent_lookups + (0 if row.last_lookup_run == self.run_id else 1)
            release = absent >= 2
            reason = ("not found in Shopify by two lookups on different runs: never created, "
                      "sent again" if release else
                      "sent to Shopify, not found by one lookup; sent again only if the next run "
                      "does not find it either")
            self.store.record_lookup(order_id, row.claim_id, run_id=self.run_id, counted=True,
                                     release=release, reason=reason)
            if not release:
                self.report.orders[order_id] = OrderOutcome(order_id, CREATING, reason=reason)

    def _create(self) -> None:
        if self.shopify is None:
            return
        ready = []
        # Without payloads: 100,000 blocked orders cost a small row each, not their
        # JSON (issue 15); the payload of each order is read when it is claimed. Read
        # whole before writing: a read left open across our writes would fail them
        # (SQLITE_BUSY_SNAPSHOT) once another process, say `ecomsend link`, commits.
        rows = list(self.store.claimable_orders(ids=self._scope()))
        # Links whose variant was deleted or re-SKU-ed (§4.1), among those these orders need
        # only: a run with nothing to create does not test a shop's 100,000 links.
        stale = self.store.stale_links({s for row in rows for s in row.skus})
        seller_skus = self.store.seller_skus_of({s for row in rows for s in row.missing})  # one read
        for row in rows:
            blocked_by = sorted({*row.missing, *(s for s in row.skus if s in stale)})
            if blocked_by:
                reason = _blocked_reason(row.missing, {s: stale[s] for s in row.skus if s in stale},
                                         seller_skus)
                if row.state != BLOCKED or row.reason != reason:
                    self.store.set_order_state(row.tiktok_order_id, BLOCKED, reason=reason)
                self.report.orders[row.tiktok_order_id] = OrderOutcome(
                    row.tiktok_order_id, BLOCKED, reason=reason, missing_sku_ids=blocked_by)
            else:
                ready.append(row)
        if self.options.limit is not None:
            ready = ready[: self.options.limit]
        if not ready:
            return
        create = self.shopify.order_create  # builds a lazy client now, before any order is claimed
        # What every order input needs of the shop, read once and outside any claim.
        self._shop = Shop(currency=self.shopify.shop_info()["currency_code"] or "USD")
        cipher = getattr(self.tiktok, "resolve_shop_cipher", None)
        self._shop_label = cipher() if callable(cipher) else ""
        self.on_event("create_started", total=len(ready))
        workers = max(1, self.config.concurrency)
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="orderCreate")
        in_flight: dict[Future, tuple[str, str]] = {}
        to_send = self._not_yet_in_shopify(ready)
        taken = 0
        try:
            while True:
                while len(in_flight) < workers and self._misses < STOP_AFTER_DEADLINE_MISSES:
                    row = next(to_send, None)
                    if row is None:
                        break
                    taken += 1
                    claimed = self._claim(row.tiktok_order_id)
                    if claimed is None:
                        continue
                    claim_id, order_input = claimed
                    self.checkpoint("after_mark")
                    future = pool.submit(create, order_input,
                                         inventory_behaviour=self.config.inventory_behaviour)
                    in_flight[future] = (row.tiktok_order_id, claim_id)
                if not in_flight:
                    break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    order_id, claim_id = in_flight.pop(future)
                    self._finish(order_id, claim_id, future)
        finally:
            pool.shutdown(wait=True)
        if self._misses >= STOP_AFTER_DEADLINE_MISSES:
            left = len(ready) - taken - self.report.adopted
            self.report.problem = NetworkError(
                f"Shopify gave no answer within the deadline to {self._misses} orderCreate calls in a "
                f"row; stopped sending, {left} order(s) left for the next run",
                hint="check shopify.shop, the network and Shopify's status; the unanswered orders are "
                "looked up before anything is sent again",
                code="deadline",
            )

    def _not_yet_in_shopify(self, ready: list[Claimable]) -> Iterator[Claimable]:
        """``ready`` less the orders Shopify already holds (adopted), looked up a batch at a time.

        A store that is new or restored from an old backup, or a shop another
        connector also fed, must not get a second order (§5.4). Orders sent
        before are looked up too: in a restored store a ``failed`` (or
        released) order may have been created since the backup was taken,
        and an attempt count says nothing about what Shopify holds now.
        """
        for start in range(0, len(ready), LOOKUP_BATCH):
            chunk = ready[start:start + LOOKUP_BATCH]
            found = self._lookup([row.tiktok_order_id for row in chunk])
            first = [row for row in chunk if row.tiktok_order_id not in found and row.attempts == 0]
            referenced, unsure = self._referenced([row.tiktok_order_id for row in first])
            found.update(referenced)
            for row in chunk:
                match = found.get(row.tiktok_order_id)
                if match is not None:
                    self._adopt(row.tiktok_order_id, match, "already in Shopify before it was first sent")
                    self.report.adopted += 1
                    continue
                if row.tiktok_order_id in unsure and not self._searchable(row.create_time):
                    # Neither Shopify's search (60 days without read_all_orders) nor
                    # TikTok's reference can say whether a lost or restored store
                    # created it already.
                    reason = ("placed over 60 days ago, and TikTok's order reference could not be read: "
                              "Shopify's search shows such orders only to apps with read_all_orders, so "
                              "whether it already exists cannot be checked; grant read_all_orders and the "
                              f"next run checks and creates it ({unsure[row.tiktok_order_id]})")
                    self.store.set_order_state(row.tiktok_order_id, row.state, reason=reason)
                    self.report.orders[row.tiktok_order_id] = OrderOutcome(row.tiktok_order_id, HELD,
                                                                           reason=reason)
                    continue
                yield row

    def _referenced(self, order_ids: list[str]) -> tuple[dict[str, dict], dict[str, str]]:
        """Orders TikTok's external order reference says are in Shopify already (§6b.2), and the
        orders whose reference could not be read, with why.

        Written after every creation, the reference survives a lost store and
        sees orders older than Shopify's 60-day search. A reference naming a
        Shopify order that no longer exists is not trusted.
        """
        if not order_ids:
            return {}, {}
        named: dict[str, str] = {}
        unsure: dict[str, str] = {}
        workers = max(1, min(self.config.concurrency, len(order_ids)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reference") as pool:
            answers = dict(zip(order_ids, pool.map(self._reference_of, order_ids), strict=True))
        for order_id, (number, trouble) in answers.items():
            if number:
                named[order_id] = f"gid://shopify/Order/{number}"
            elif trouble:
                unsure[order_id] = trouble
        if not named:
            return {}, unsure
        existing = self.shopify.order_fulfillments(list(named.values()))
        return ({order_id: {"id": gid, "name": None} for order_id, gid in named.items() if gid in existing},
                unsure)

    def _reference_of(self, order_id: str) -> tuple[str | None, str | None]:
        try:
            refs = self.tiktok.external_orders(order_id)
        except NetworkError:
            raise  # TikTok cannot be reached: the run ends, nothing is sent blind
        except ApiError as exc:
            return None, str(exc)
        for ref in refs:
            number = str(ref.get("id") or "")
            if str(ref.get("platform") or "SHOPIFY").upper() == "SHOPIFY" and number.isdigit():
                return number, None
        return None, None

    def _claim(self, order_id: str) -> tuple[str, dict] | None:
        """Claim an order (compare-and-set, committed) and build its input from the links of now."""
        self.checkpoint("before_mark")
        boot, now = self.steady()
        stamp = ClaimStamp(uuid.uuid4().hex, self.run_id, boot, now)
        result = self.store.claim_order(order_id, stamp, self._decide)
        if result is None:
            self.report.orders[order_id] = OrderOutcome(
                order_id, CREATING, reason="claimed by another run meanwhile; not sent by this one")
            return None
        state, reason, value = result
        if state == CREATING:
            return stamp.claim_id, value.order_input
        self.report.orders[order_id] = OrderOutcome(order_id, state, reason=reason,
                                                    missing_sku_ids=list(value or []))
        self.on_event("created", order_id=order_id, state=state)
        return None

    def _decide(self, row: OrderRow, links: dict[str, str]) -> tuple[str, str, Any]:
        """Inside the claim's transaction: blocked by a SKU unlinked meanwhile, or the input to send."""
        # TikTok's status as stored now: an order released after an unconfirmed
        # send, or pending since, may have been cancelled (or held) meanwhile.
        state, reason = next_state(None, row.tiktok_status, self.config.statuses)
        if state != PENDING:
            return state, reason, None
        reason = skip_reason(row.payload, self.config)
        if reason:
            return SKIPPED, reason, None
        missing = sorted({i.sku_id for i in row.items if i.sku_id not in links})
        stale = self.store.stale_links(i.sku_id for i in row.items if i.sku_id in links)
        if missing or stale:
            return (BLOCKED, _blocked_reason(missing, stale, self.store.seller_skus_of(set(missing))),
                    sorted({*missing, *stale}))
        try:
            order_input = build_order_input(row.payload, links, self.config, self._shop,
                                            order_id=row.tiktok_order_id, shop_label=self._shop_label)
        except OrderRefused as exc:
            return exc.state, exc.message, None
        return CREATING, "sent to Shopify; waiting for the answer", ToSend(order_input,
                                                                         line_map(row.payload, links))

    def _finish(self, order_id: str, claim_id: str, future: Future) -> None:
        try:
            result = future.result()
            self._misses = 0
        except OutcomeUnknownError as exc:
            self._misses = self._misses + 1 if exc.code == "deadline" else 0
            reason = f"{exc.message}; the next run looks it up in Shopify before anything is sent again"
            self.store.finish_claim(order_id, claim_id, CREATING, reason=reason)
            self.report.orders[order_id] = OrderOutcome(order_id, CREATING, reason=reason)
            self.on_event("created", order_id=order_id, state=CREATING)
            return
        except ApiError as exc:
            # Refused before it ran (the client raises OutcomeUnknownError otherwise).
            self._misses = 0
            self.store.finish_claim(order_id, claim_id, FAILED, reason=str(exc))
            self.report.orders[order_id] = OrderOutcome(order_id, FAILED, reason=str(exc))
            self.on_event("created", order_id=order_id, state=FAILED)
            return
        self.checkpoint("after_answer")
        if result.ok:
            self.checkpoint("before_commit")
            self.store.finish_claim(order_id, claim_id, SYNCED, shopify_order_id=result.order_id,
                                    shopify_order_name=result.order_name)
            self.store.record_created(order_id, getattr(result, "line_items", ()))
            self.report.created += 1
            self.report.orders[order_id] = OrderOutcome(order_id, SYNCED, result.order_id,
                                                        result.order_name)
            self.on_event("created", order_id=order_id, state=SYNCED)
        else:
            reason = "Shopify refused: " + "; ".join(
                f"{e.get('code') or 'ERROR'}: {e.get('message')}" for e in result.user_errors)
            self.store.finish_claim(order_id, claim_id, FAILED, reason=reason)
            self.report.orders[order_id] = OrderOutcome(order_id, FAILED, reason=reason)
            self.on_event("created", order_id=order_id, state=FAILED)

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


def _blocked_reason(missing: Iterable[str], stale: dict[str, str] | None = None,
                    seller_skus: dict[str, str] | None = None) -> str:
    """Why an order waits: its unlinked SKUs (each with its seller SKU, what the operator
    knows it by), and the stale links it needs (with their fixes)."""
    missing = list(missing)
    parts = []
    if missing:
        named = [f"{s} ({seller_skus[s]})" if (seller_skus or {}).get(s) else s for s in missing[:5]]
        parts.append(f"{len(missing)} unlinked SKU{'' if len(missing) == 1 else 's'}: {', '.join(named)}"
                     + (" …" if len(missing) > 5 else ""))
    for reason in list((stale or {}).values())[:3]:
        parts.append(reason)
    return "; ".join(parts)


def current_state(state: str, reason: str, missing: Sequence[str], stale: dict[str, str],
                  seller_skus: dict[str, str] | None = None) -> tuple[str, str]:
    """An order's state and reason as of now, for the listings (nothing is written).

    A stored ``blocked`` was true at the last run; links made since change it.
    ``missing`` are the order's SKUs with no link now, ``stale`` its stale
    links (sku_id -> reason): with neither, the order is :data:`READY` (the next
    run creates it); else its reason names what blocks it now, by the same rule
    the run uses (:func:`_blocked_reason`), with ``seller_skus`` beside the ids.
    """
    if state != BLOCKED:
        return state, reason
    if not missing and not stale:
        return READY, "all SKUs linked now: the next `ecomsend sync-orders` sends it to Shopify"
    return BLOCKED, _blocked_reason(missing, stale, seller_skus)


def run_sync(store: Store, tiktok: TikTokOrders, shopify: ShopifyOrders | None, config: SyncConfig,
             options: SyncOptions, *, on_event: Event | None = None, crash_at: str | None = None,
             refresh_catalog: Callable[[], None] | None = None) -> SyncReport:
    """Run the orders phase alone under the lock of the store file (exit 75 when another run holds it).

    ``sync-orders`` runs every phase through :func:`ecomsend_cli.run.run_phases`.
    """
    with SyncLock(store, record_holder=not options.dry_run):
        return Syncer(store, tiktok, shopify, config, options, on_event=on_event,
                      crash_at=crash_at, refresh_catalog=refresh_catalog).run()
