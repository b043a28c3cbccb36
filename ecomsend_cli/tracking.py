"""Phase 2 of sync-orders: what goes back to TikTok (DESIGN §6b.1, §6b.2).

* **The reference** (§6b.2): once an order is in Shopify, TikTok's order gets
  an external order reference naming the Shopify order and, for each TikTok
  line item, the Shopify line it became. Retried on later runs until done;
  it never blocks anything. An unconfirmed one is read back as a push is (below).
* **Tracking** (§6b.1): the fulfillments of the Shopify orders not fully
  shipped on TikTok (and of those pushed in the last 72 h, for tracking
  edits) are read by order id in batches. A fulfillment with status SUCCESS
  and a tracking number is pushed to TikTok once:

  - its lines become TikTok line items: each fulfilled (variant, quantity)
    takes that many TikTok line items of the order still to ship whose SKU
    went to that variant (one line item is one unit); a combined listing's
    line item ships when all its parts have been fulfilled, possibly over
    several fulfillments (:func:`assign_lines`);
  - the carrier is matched to one of TikTok's providers for the order's
    delivery option, case and punctuation aside, after the
    ``tracking.carriers`` overrides (:func:`match_provider`); no match, or
    two (TikTok may list "USPS" and "U.S.P.S."), is a failed push that names
    TikTok's providers — never a guess;
  - a tracking number no carrier issues (control characters, over
    :data:`MAX_TRACKING_NUMBER` characters), or an id in TikTok's order that
    is not one, fails that push with the reason; it never stops the run;
  - lines TikTok already put in a package are shipped with that package;
    the others get a package made and shipped;
  - the intent is committed before the call; an unclear answer (or a run
    killed meanwhile) leaves the push unconfirmed, and a later run reads the
    TikTok order before sending anything again — but only once
    ``reconcile_wait`` has passed since it was sent, by the clock of §5.4
    (:func:`~.sync.steady_clock`, which a wall-clock step cannot move). A
    request in flight when its run died or gave up may be handled by TikTok a
    moment later; a run started at once would read the order before that and
    push again. Until then it is neither read back nor sent again;
  - a tracking number changed in Shopify after the push is updated on TikTok
    within its 72 hours, and reported after.

  Orders TikTok ships itself (``shipping_type: TIKTOK``, FBT) and orders
  cancelled on TikTok are not pushed; the reason is shown.
"""

from __future__ import annotations

import math
import queue
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from .errors import ApiError, AuthError, NetworkError, OutcomeUnknownError
from .order_input import FBT
from .run import Checkpoints, PhaseReport
from .store import Store
from .store_after import CreatedLines, Shipment
from .sync import steady_clock
from .text import terminal_safe

if TYPE_CHECKING:  # type hints only: a run that reads nothing from Shopify skips the module
    from .shopify_records import OrderFulfillments

CHUNK = 250  # orders a chunk: what one Shopify read of their fulfillments holds
EDIT_WINDOW_HOURS = 72  # TikTok lets a package's tracking be changed this long after shipping
# Designed (TikTok documents no limit): carriers' numbers run to about 40 characters.
MAX_TRACKING_NUMBER = 64
SHIPPED_PACKAGE_STATES = ("SHIPPED", "IN_TRANSIT", "DELIVERED", "COMPLETED", "PROCESSING")
Event = Callable[..., None]


class TikTokShipping(Protocol):
    def shipping_providers(self, delivery_option_id: str) -> list[dict]: ...

    def create_package_and_ship(self, order_id: str, line_item_ids: list[str], tracking_number: str,
                                shipping_provider_id: str) -> str: ...

    def ship_package(self, package_id: str, tracking_number: str, shipping_provider_id: str) -> None: ...

    def update_shipping_info(self, package_id: str, tracking_number: str, shipping_provider_id: str) -> None: ...

    def get_orders(self, ids: list[str]) -> list[dict]: ...

    def add_external_order(self, order_id: str, shopify_order_id: str,
                           line_items: list[tuple[str, str]]) -> None: ...

    def external_orders(self, order_id: str, platform: str = "SHOPIFY") -> list[dict]: ...


class ShopifyFulfillments(Protocol):
    def order_fulfillments(self, order_ids: list[str], *, line_items: bool = True,
                           known_fulfillments: Iterable[str] = ()) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Fulfilled:
    """One Shopify fulfillment, as tracking needs it."""

    id: str
    status: str
    created_at: str
    tracking_number: str
    company: str
    lines: tuple[tuple[str, int], ...]  # (variant GID, quantity)


@dataclass(frozen=True)
class ShopifyOrder:
    """A Shopify order's lines and fulfillments (normalised from the client's answer)."""

    id: str
    cancelled: bool
    lines: tuple[tuple[str, str | None, int], ...]  # (line GID, variant GID, quantity)
    fulfillments: tuple[Fulfilled, ...]


@dataclass
class Outcome:
    tiktok_order_id: str
    what: str  # pushed | updated | failed | reported | unconfirmed | skipped | referenced
    detail: str
    fulfillment_id: str | None = None

    def as_json(self) -> dict:
        return {"tiktok_order_id": self.tiktok_order_id, "what": self.what, "detail": self.detail,
                "fulfillment_id": self.fulfillment_id}


@dataclass
class TrackingReport(PhaseReport):
    def as_json(self) -> dict:
        return {"pushed": self.count("pushed"), "updated": self.count("updated"), "failed": self.count("failed"),
                "reported": self.count("reported"), "unconfirmed": self.count("unconfirmed"),
                "referenced": self.count("referenced"),
                "outcomes": [o.as_json() for o in self.outcomes if o.what != "skipped"]}


# --- rules ---------------------------------------------------------------------------------------


def not_pushed_reason(order: dict, tiktok_status: str) -> str | None:
    """Why this order's tracking is not ours to push to TikTok, or None."""
    if str(order.get("shipping_type") or "").upper() == "TIKTOK":
        return "TikTok ships it with its own label (shipping_type TIKTOK): nothing to push"
    if order.get("fulfillment_type") == FBT:
        return "fulfilled by TikTok (FBT): TikTok ships it"
    if tiktok_status.upper() == "CANCELLED":
        return "cancelled on TikTok"
    return None


def _key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.casefold())


def provider_candidates(company: str, providers: Sequence[dict], overrides: dict[str, str]) -> list[dict]:
    """TikTok's providers that Shopify's carrier ``company`` may be: the one an override names (by
    Shopify's name, to a TikTok provider's name or id), else those of equal names, case and
    punctuation aside (TikTok may list two: "USPS" and "U.S.P.S.")."""
    wanted = company
    for shopify_name, tiktok in overrides.items():
        if _key(shopify_name) == _key(company):
            wanted = tiktok
            break
    for provider in providers:
        if str(provider.get("id")) == str(wanted).strip():
            return [provider]
    found = {str(p.get("id")): p for p in providers if _key(str(p.get("name") or "")) == _key(wanted) and _key(wanted)}
    return list(found.values())


def match_provider(company: str, providers: Sequence[dict], overrides: dict[str, str]) -> dict | None:
    """TikTok's provider for Shopify's carrier ``company`` (:func:`provider_candidates`), or None
    when there is none or more than one: never a guess."""
    found = provider_candidates(company, providers, overrides)
    return found[0] if len(found) == 1 else None


def tracking_problem(number: str) -> str | None:
    """Why Shopify's tracking number is not one to give TikTok (its buyer reads it), or None."""
    if not number.isprintable():
        return "holds control or invisible characters"
    if len(number) > MAX_TRACKING_NUMBER:
        return f"is {len(number)} characters long"
    return None


def assign_lines(line_map: dict[str, list[str]], fulfillments: Sequence[Fulfilled],
                 committed: dict[str, Sequence[str]], shipped_on_tiktok: Iterable[str]) -> dict[str, list[str]]:
    """Which TikTok line items each fulfillment not yet pushed ships (§6b.1).

    ``line_map``: each live TikTok line item → the variants it needs (a
    combined listing: its parts × counts). ``committed``: the line items
    already pushed (or being pushed) with a fulfillment, by fulfillment id.
    ``shipped_on_tiktok``: line items TikTok shows shipped some other way.
    Fulfillments are taken oldest first; what each fulfils adds to what is
    available, a line item is assigned to the first fulfillment by which all
    its variants are available, and what is left carries over to the next.
    """
    taken = {line for lines in committed.values() for line in lines} | set(shipped_on_tiktok)
    waiting = [line for line in line_map if line not in taken]
    available: Counter[str] = Counter()
    out: dict[str, list[str]] = {}
    for fulfillment in sorted(fulfillments, key=lambda f: (f.created_at, f.id)):
        for variant, quantity in fulfillment.lines:
            available[variant] += quantity
        for line in committed.get(fulfillment.id, ()):
            available.subtract(Counter(line_map.get(line, ())))
        if fulfillment.id in committed:
            continue
        mine = []
        for line in list(waiting):
            need = Counter(line_map[line])
            if all(available[v] >= n for v, n in need.items()):
                available.subtract(need)
                mine.append(line)
                waiting.remove(line)
        out[fulfillment.id] = mine
    return out


def reference_lines(line_map: dict[str, list[str]], shopify_lines: Sequence[tuple[str, str | None, int]]
                    ) -> list[tuple[str, str]]:
    """``(Shopify line numeric id, TikTok line item id)`` pairs for TikTok's external order (§6b.2)."""
    by_variant: dict[str, str] = {}
    for line_gid, variant, _ in shopify_lines:
        if variant and variant not in by_variant:
            by_variant[variant] = line_gid.rsplit("/", 1)[-1]
    pairs = []
    for tiktok_line, variants in line_map.items():
        for shopify_line in dict.fromkeys(by_variant[v] for v in variants if v in by_variant):
            pairs.append((shopify_line, tiktok_line))
    return pairs


# --- the phase -----------------------------------------------------------------------------------


class TrackingPhase:
    """Phase 2 of one sync-orders run (see the module docstring)."""

    def __init__(self, store: Store, tiktok: TikTokShipping, shopify: ShopifyFulfillments,
                 carriers: dict[str, str], *, on_event: Event | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), crash_at: str | None = None,
                 workers: int = 4, reconcile_wait: float = 60.0,
                 steady: Callable[[], tuple[str, float]] = steady_clock) -> None:
        self.store = store
        # How long an unconfirmed push or reference is left before it is read back from TikTok:
        # the one knob of §5.4 (sync.reconcile_wait_seconds), which covers any unconfirmed send.
        # Its default (60 s) is ample for a request in flight to be handled.
        self.reconcile_wait = reconcile_wait
        self.steady = steady
        self._steady = steady()  # read again at each chunk: a run over many orders takes a while
        self.workers = max(1, workers)
        # Pushes claimed and waiting to be sent, by order: one order's go one after another.
        self._planned: dict[str, list[tuple[Fulfilled, list[str], dict, str | None]]] = {}
        self._not_ours: set[str] = set()  # orders found this run not to be ours to push
        self.tiktok = tiktok
        self.shopify = shopify
        self.carriers = carriers
        self.on_event = on_event or (lambda kind, **data: None)
        self.clock = clock
        self.checkpoint = Checkpoints(crash_at)
        self.report = TrackingReport()
        self._providers: dict[str, list[dict] | ApiError] = {}
        self._orders: dict[str, ShopifyOrder] = {}

    def run(self, *, references_only: bool = False) -> TrackingReport:
        """Write the references still to write, then push tracking (unless ``references_only``:
        tracking is off, but references also guard against a lost store, §5.4).

        Orders go in chunks of one Shopify read: a chunk's pushes to TikTok
        take the time Shopify's bucket needs to refill for the next chunk's
        reads, so the two budgets are spent side by side, not one after the other.
        """
        references = set(self.store.references_to_write())
        tracked = set() if references_only else set(self.store.tracking_orders(edit_window_hours=EDIT_WINDOW_HOURS))
        order_ids = sorted(tracked | references)
        if not order_ids:
            return self.report
        self.on_event("tracking_started", total=len(order_ids))
        for start in range(0, len(order_ids), CHUNK):
            chunk = order_ids[start:start + CHUNK]
            self._steady = self.steady()
            created = self.store.created_lines(chunk)
            shipments = self.store.shipments(chunk)
            known = [s.fulfillment_id for held in shipments.values() for s in held
                     if s.state in ("pushed", "pushing", "reported") and s.fulfilled]
            self._orders = read_orders(self.shopify, created.values(), known)
            for order_id in chunk:
                if order_id in references and order_id in created:
                    self._reference(created[order_id])
            if references_only:
                continue
            mine = [o for o in chunk if o in tracked and o in created]
            # TikTok is asked only for the orders with an unconfirmed push whose wait has passed.
            due = [o for o in mine if any(s.state == "pushing" and self._due(s.claim_boot, s.claim_clock)
                                          for s in shipments.get(o, ()))]
            on_tiktok = {str(o.get("id")): o for o in self.tiktok.get_orders(due)} if due else {}
            for order_id in mine:
                self._track(created[order_id], shipments.get(order_id, []), on_tiktok.get(order_id))
            self._send_planned(created)
            after = self.store.shipments(mine)  # what this chunk's pushes left, read once
            for order_id in mine:
                if order_id not in self._not_ours:
                    self._close(created[order_id], after.get(order_id, []))
        return self.report

    def _send_planned(self, created: dict[str, CreatedLines]) -> None:
        """Send the claimed pushes, orders side by side (``workers`` at a time), each order's in turn;
        every answer is recorded here, on the store's thread."""
        planned, self._planned = self._planned, {}
        if not planned:
            return

        # A push's wait counts from when it leaves, not from its claim: one order's pushes, and the
        # orders past ``workers``, go in turn, maybe longer than the wait after the chunk's claims.
        # A worker asks the store's thread to stamp each push just before it sends it.
        leaving: queue.SimpleQueue[tuple[str, str | None, threading.Event | None]] = queue.SimpleQueue()
        stopping = threading.Event()

        def stamped(order_id: str, fulfillment_id: str) -> bool:
            ready = threading.Event()
            leaving.put((order_id, fulfillment_id, ready))
            while not ready.wait(0.2):
                if stopping.is_set():
                    return False  # the run is ending: nothing more leaves
            return True

        def send(order_id: str) -> list[tuple[str | BaseException | None]]:
            try:
                return sends(order_id)
            finally:
                leaving.put((order_id, None, None))  # this order's sends are over

        def sends(order_id: str) -> list[tuple[str | BaseException | None]]:
            answers: list = []
            for fulfillment, lines, provider, package in planned[order_id]:
                if not stamped(order_id, fulfillment.id):
                    break
                try:
                    if package:
                        self.tiktok.ship_package(package, fulfillment.tracking_number, str(provider["id"]))
                        answers.append(package)
                    else:
                        answers.append(self.tiktok.create_package_and_ship(
                            order_id, lines, fulfillment.tracking_number, str(provider["id"])))
                except (ApiError, ValueError) as exc:  # ValueError: refused by the client, not sent
                    answers.append(exc)
                except Exception as exc:  # a bug: left "pushing" (looked up next run), raised after
                    answers.append(exc)
            return answers

        workers = min(self.workers, len(planned))
        over: set[str] = set()

        def until_over(order_id: str) -> None:
            """Stamp the pushes leaving (any order's) until ``order_id``'s sends are over."""
            while order_id not in over:
                sender, fulfillment_id, ready = leaving.get()
                if ready is None:
                    over.add(sender)
                    continue
                self.store.finish_shipment(str(fulfillment_id), "pushing", sent=self.steady())
                ready.set()

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tracking") as pool:
            futures = {order_id: pool.submit(send, order_id) for order_id in planned}
            bug: BaseException | None = None
            for order_id, future in futures.items():
                try:
                    until_over(order_id)
                except BaseException:
                    stopping.set()
                    raise
                for (fulfillment, lines, provider, _), answer in zip(planned[order_id], future.result(),
                                                                      strict=True):
                    if isinstance(answer, BaseException) and not isinstance(answer, (ApiError, ValueError)):
                        bug = bug or answer  # left "pushing": looked up on TikTok next run
                        continue
                    self._record_push(created[order_id], fulfillment, lines, provider, answer)
            if bug is not None:
                raise bug

    # -- §6b.2 -----------------------------------------------------------------------------------

    def _reference(self, order: CreatedLines) -> None:
        order_id = order.tiktok_order_id
        shopify = self._orders.get(order.shopify_order_id)
        if shopify is None:
            return  # not readable in Shopify now (deleted?): tracking reports it
        number = order.shopify_order_id.rsplit("/", 1)[-1]
        if order.reference_state == "sending":
            waiting = self._still_waiting(
                f"the reference to Shopify order {number}", order.reference_boot, order.reference_clock,
                lambda sent: self.store.set_reference(order_id, "sending", None, sent=sent))
            if waiting:
                self.report.outcomes.append(Outcome(order_id, "unconfirmed", waiting))
                return
            # Unconfirmed, its wait passed: does TikTok have it?
            try:
                held = self.tiktok.external_orders(order_id)
            except ApiError as exc:  # still unsure: read back again next run, never written blind
                why = f"{exc.message}; TikTok is asked for it again on the next run"
                self.store.set_reference(order_id, "sending", why)
                self.report.outcomes.append(Outcome(order_id, "unconfirmed", f"reference: {why}"))
                return
            if any(str(ref.get("id")) == number for ref in held):
                self.store.set_reference(order_id, "done")
                self.report.outcomes.append(Outcome(order_id, "referenced", f"Shopify order {number}"))
                return
        try:
            lines = reference_lines(order.line_map, order.shopify_lines or shopify.lines)
            self.store.set_reference(order_id, "sending", sent=self.steady())
            self.checkpoint("reference_sent")
            self.tiktok.add_external_order(order_id, number, lines)
        except OutcomeUnknownError as exc:
            # Stays "sending", its wait counted from now (the request left before): a later run
            # asks TikTok before writing it again.
            why = f"{exc.message}; TikTok is asked for it once {self.reconcile_wait:.0f} s have passed"
            self.store.set_reference(order_id, "sending", why, sent=self.steady())
            self.report.outcomes.append(Outcome(order_id, "unconfirmed", f"reference: {why}"))
            return
        except ApiError as exc:
            self.store.set_reference(order_id, "failed", str(exc))  # tried again next run
            return
        self.store.set_reference(order_id, "done")
        self.report.outcomes.append(Outcome(order_id, "referenced", f"Shopify order {number}"))

    # -- §6b.1 -----------------------------------------------------------------------------------

    def _track(self, order: CreatedLines, shipments: list[Shipment], on_tiktok: dict | None) -> None:
        order_id = order.tiktok_order_id
        if order.ship_state not in ("open", None) and not shipments:
            return
        reason = not_pushed_reason(order.payload, order.tiktok_status)
        if reason and order.ship_state == "open":
            self.store.set_ship_state(order_id, "none", reason)
            self._not_ours.add(order_id)
            self.report.outcomes.append(Outcome(order_id, "skipped", reason))
            return
        shopify = self._orders.get(order.shopify_order_id)
        if shopify is None:
            self.report.outcomes.append(Outcome(order_id, "failed", f"Shopify order {order.shopify_order_id} "
                                                "could not be read (deleted?): its tracking cannot be pushed"))
            return
        # Pushes whose answer never came: TikTok's order says whether they happened, once their
        # wait has passed; until then they stay unconfirmed, their lines held.
        unsure = [s for s in shipments if s.state == "pushing"]
        for shipment in unsure:
            waiting = self._still_waiting(
                f"tracking {shipment.tracking_number}", shipment.claim_boot, shipment.claim_clock,
                lambda sent, s=shipment: self.store.finish_shipment(s.fulfillment_id, "pushing", reason=s.reason,
                                                                  sent=sent))
            if waiting:
                self.report.outcomes.append(Outcome(order_id, "unconfirmed", waiting, shipment.fulfillment_id))
            else:
                self._settle_unsure(order_id, shipment, on_tiktok)
        if unsure:  # settled: read what they became
            shipments = self.store.shipments([order_id]).get(order_id, [])
        by_fulfillment = {s.fulfillment_id: s for s in shipments}
        committed = {s.fulfillment_id: s.line_item_ids for s in shipments if s.state in ("pushed", "pushing")}
        shipped_elsewhere = self._shipped_on_tiktok(order.payload, committed)
        # Lines TikTok cancelled since the order was created are not to ship (TikTok refuses them).
        cancelled = _cancelled_on_tiktok(order.payload)
        # A fulfillment pushed before is not read again: what it held was kept at its push.
        ready = [replace(f, lines=by_fulfillment[f.id].fulfilled) if f.id in by_fulfillment and not f.lines else f
                 for f in shopify.fulfillments if f.status == "SUCCESS" and f.tracking_number]
        assigned = assign_lines(order.line_map, ready, committed, [*shipped_elsewhere, *cancelled])
        for fulfillment in ready:
            held = by_fulfillment.get(fulfillment.id)
            if held is not None and held.state in ("pushed", "pushing", "reported"):
                if held.state == "pushed" and fulfillment.tracking_number != held.tracking_number:
                    self._update_tracking(order, held, fulfillment)
                continue
            lines = assigned.get(fulfillment.id, [])
            if lines:  # else nothing of it is left to ship on TikTok (a part of a bundle, say)
                self._push(order, fulfillment, lines)

    def _close(self, order: CreatedLines, shipments: list[Shipment]) -> None:
        """An order whose every TikTok line item is shipped (by us or otherwise) is done."""
        done = {line for s in shipments if s.state == "pushed" for line in s.line_item_ids}
        committed = {s.fulfillment_id: s.line_item_ids for s in shipments if s.state in ("pushed", "pushing")}
        shipped_elsewhere = self._shipped_on_tiktok(order.payload, committed)
        cancelled = _cancelled_on_tiktok(order.payload)
        if order.ship_state == "open" and order.line_map and \
                set(order.line_map) <= done | set(shipped_elsewhere) | set(cancelled):
            self.store.set_ship_state(order.tiktok_order_id, "done")

    def _shipped_on_tiktok(self, payload: dict, committed: dict[str, Sequence[str]]) -> list[str]:
        """Line items TikTok showed shipped when the order was last pulled, not by us."""
        ours = {line for lines in committed.values() for line in lines}
        return [str(x.get("id")) for x in payload.get("line_items") or []
                if isinstance(x, dict) and str(x.get("id")) not in ours
                and str(x.get("package_status") or "").upper() in SHIPPED_PACKAGE_STATES]

    def _provider(self, order: CreatedLines, company: str) -> tuple[dict | None, str]:
        option = str(order.payload.get("delivery_option_id") or "")
        if not option:
            return None, "TikTok's order names no delivery option, so its carriers cannot be listed"
        if option not in self._providers:
            try:
                self._providers[option] = self.tiktok.shipping_providers(option)
            except ValueError:  # refused by the client before sending: it would change the call
                return None, f"TikTok's order names a delivery option that is not a TikTok id ({_shown(option)})"
            except (NetworkError, AuthError):
                raise  # TikTok cannot be reached: the run ends here (run.py)
            except ApiError as exc:  # this order's option only: the other orders' pushes go on
                self._providers[option] = exc
        providers = self._providers[option]
        if isinstance(providers, ApiError):
            return None, f"TikTok would not list the carriers of the order's delivery option: {providers}"
        found = provider_candidates(company, providers, self.carriers)
        if len(found) > 1:
            names = ", ".join(f"{p.get('name')} (id {p.get('id')})" for p in found)
            return None, (f"carrier {_shown(company)} may be any of TikTok's {names} for this order: add "
                          f"tracking.carriers: {{{_shown(company)}: <the id of one>}} to the config")
        if not found:
            names = ", ".join(str(p.get("name")) for p in providers) or "none"
            return None, (f"carrier {_shown(company)} is not one of TikTok's for this order ({names}): add "
                          f"tracking.carriers: {{{_shown(company)}: <one of those>}} to the config")
        return found[0], ""

    def _push(self, order: CreatedLines, fulfillment: Fulfilled, lines: list[str]) -> None:
        order_id = order.tiktok_order_id
        problem = tracking_problem(fulfillment.tracking_number)
        provider, why = (None, f"Shopify's tracking number {_shown(fulfillment.tracking_number)} {problem}: "
                         "correct it in Shopify") if problem else self._provider(order, fulfillment.company)
        if provider is None:
            self.store.record_failed_shipment(
                fulfillment.id, order_id, lines, reason=why, carrier=_shown(fulfillment.company, quote=False),
                tracking_number=_shown(fulfillment.tracking_number, quote=False) if problem
                else fulfillment.tracking_number)
            self.report.outcomes.append(Outcome(order_id, "failed", why, fulfillment.id))
            return
        packages = {str(x.get("package_id")) for x in order.payload.get("line_items") or []
                    if isinstance(x, dict) and str(x.get("id")) in lines and x.get("package_id")}
        package = next(iter(packages)) if len(packages) == 1 else None
        if not self.store.claim_shipment(fulfillment.id, order_id, lines,
                                         tracking_number=fulfillment.tracking_number, carrier=fulfillment.company,
                                         provider_id=str(provider["id"]), provider_name=str(provider.get("name")),
                                         package_id=package, fulfilled=fulfillment.lines, sent=self.steady()):
            return  # claimed meanwhile
        self.checkpoint("before_push")
        self._planned.setdefault(order_id, []).append((fulfillment, lines, provider, package))

    def _record_push(self, order: CreatedLines, fulfillment: Fulfilled, lines: list[str], provider: dict,
                     answer: str | ApiError | ValueError) -> None:
        """TikTok's answer to one push: shipped (its package), refused, or unknown."""
        order_id = order.tiktok_order_id
        if isinstance(answer, OutcomeUnknownError):
            # Its wait counts from now, not from the claim: the request left in between.
            self.store.finish_shipment(
                fulfillment.id, "pushing", sent=self.steady(),
                reason=f"{answer.message}; TikTok's order is read once {self.reconcile_wait:.0f} s have passed")
            self.report.outcomes.append(Outcome(order_id, "unconfirmed", answer.message, fulfillment.id))
            return
        if isinstance(answer, ApiError):
            self.store.finish_shipment(fulfillment.id, "failed", reason=f"TikTok refused: {answer}")
            self.report.outcomes.append(Outcome(order_id, "failed", f"TikTok refused: {answer}", fulfillment.id))
            return
        if isinstance(answer, ValueError):  # refused by the client before sending: an unusable id
            why = f"not sent: TikTok's order holds an unusable id ({_shown(str(answer), quote=False)})"
            self.store.finish_shipment(fulfillment.id, "failed", reason=why)
            self.report.outcomes.append(Outcome(order_id, "failed", why, fulfillment.id))
            return
        self.checkpoint("after_push")
        self.store.finish_shipment(fulfillment.id, "pushed", package_id=answer, pushed=True)
        self.report.outcomes.append(Outcome(
            order_id, "pushed", f"{fulfillment.tracking_number} via {provider.get('name')}, "
            f"{len(lines)} item(s)", fulfillment.id))
        self.on_event("pushed", order_id=order_id)

    def _elapsed(self, boot: str | None, clock: float | None) -> float | None:
        """Seconds since an unconfirmed send was stamped, by this chunk's steady clock; None when
        the stamp cannot be compared with it (made under another boot, by an older version, or
        ahead of it: a wall clock stepped back, where there is no boot clock to use)."""
        now_boot, now = self._steady
        return now - clock if boot == now_boot and clock is not None and now >= clock else None

    def _due(self, boot: str | None, clock: float | None) -> bool:
        """Whether an unconfirmed send may be read back from TikTok now: its wait has passed."""
        elapsed = self._elapsed(boot, clock)
        return (0.0 if elapsed is None else elapsed) >= self.reconcile_wait

    def _still_waiting(self, what: str, boot: str | None, clock: float | None,
                       restamp: Callable[[tuple[str, float]], None]) -> str | None:
        """Why an unconfirmed send is neither read back nor sent again this run, or None once it may be.

        A stamp this boot's clock cannot read is ``restamp``-ed now: the wait starts again (§5.4).
        """
        if self._due(boot, clock):
            return None
        wait = self.reconcile_wait
        elapsed = self._elapsed(boot, clock)
        if elapsed is None:
            restamp(self._steady)
            return (f"{what} sent to TikTok, answer not seen; the machine restarted or its clock went back "
                    f"since (or an older ecomsend sent it), so the {wait:.0f} s wait starts again before a "
                    "later run checks it")
        return (f"{what} sent to TikTok {math.floor(elapsed)} s ago, answer not seen; a later run checks it "
                f"({math.ceil(wait - elapsed)} s of the {wait:.0f} s wait left)")

    def _settle_unsure(self, order_id: str, shipment: Shipment, on_tiktok: dict | None) -> None:
        """An unconfirmed push: TikTok's order shows it shipped (done) or not (tried again)."""
        if on_tiktok is None:
            return  # TikTok did not answer for it this run: stays unconfirmed
        lines = {str(x.get("id")): x for x in on_tiktok.get("line_items") or [] if isinstance(x, dict)}
        mine = [lines[i] for i in shipment.line_item_ids if i in lines]
        if mine and all(str(x.get("tracking_number") or "") == shipment.tracking_number for x in mine):
            package = next((str(x["package_id"]) for x in mine if x.get("package_id")), shipment.package_id)
            self.store.finish_shipment(shipment.fulfillment_id, "pushed", package_id=package, pushed=True)
            self.report.outcomes.append(Outcome(order_id, "pushed", f"{shipment.tracking_number} (confirmed on "
                                                "TikTok after an unclear answer)", shipment.fulfillment_id))
        else:
            self.store.finish_shipment(shipment.fulfillment_id, "failed",
                                       reason="TikTok does not show it shipped: pushed again")

    def _update_tracking(self, order: CreatedLines, held: Shipment, fulfillment: Fulfilled) -> None:
        order_id = order.tiktok_order_id
        pushed = datetime.fromisoformat((held.pushed_at or held.updated_at).replace("Z", "+00:00"))
        hours = (self.clock() - pushed).total_seconds() / 3600
        if hours >= EDIT_WINDOW_HOURS:
            why = (f"tracking changed in Shopify ({held.tracking_number} → {fulfillment.tracking_number}) "
                   f"{hours:.0f} h after it was pushed: TikTok allows changes for {EDIT_WINDOW_HOURS} h; "
                   "change it in TikTok Seller Center")
            self.store.finish_shipment(held.fulfillment_id, "reported", reason=why)
            self.report.outcomes.append(Outcome(order_id, "reported", why, held.fulfillment_id))
            return
        problem = tracking_problem(fulfillment.tracking_number)
        provider, why = (None, f"Shopify's tracking number {_shown(fulfillment.tracking_number)} {problem}: "
                         "correct it in Shopify") if problem else self._provider(order, fulfillment.company)
        if provider is None or not held.package_id:
            why = why or "the package TikTok made for it is unknown"
            self.report.outcomes.append(Outcome(order_id, "failed", f"tracking update: {why}", held.fulfillment_id))
            return
        try:
            self.tiktok.update_shipping_info(held.package_id, fulfillment.tracking_number, str(provider["id"]))
        except (ApiError, ValueError) as exc:  # unknown, refused, or not sent: the next run compares again
            self.report.outcomes.append(Outcome(order_id, "failed", f"tracking update: {_shown(str(exc), quote=False)}",
                                                held.fulfillment_id))
            return
        self.store.finish_shipment(held.fulfillment_id, "pushed", tracking_number=fulfillment.tracking_number,
                                   provider_id=str(provider["id"]), provider_name=str(provider.get("name")))
        self.report.outcomes.append(Outcome(order_id, "updated", f"{held.tracking_number} → "
                                            f"{fulfillment.tracking_number}", held.fulfillment_id))


def _cancelled_on_tiktok(payload: dict) -> list[str]:
    """TikTok line items cancelled since the order was created: not to ship (TikTok refuses them)."""
    return [str(x.get("id")) for x in payload.get("line_items") or []
            if isinstance(x, dict) and str(x.get("display_status") or "").upper() == "CANCELLED"]


def _shown(text: str, *, quote: bool = True) -> str:
    """Outside text as a reason may hold it: what a terminal acts on removed, at most 200 characters."""
    safe = terminal_safe(text).replace("\n", " ").replace("\t", " ")
    safe = safe if len(safe) <= 200 else safe[:199] + "…"
    return repr(safe) if quote else safe


def normalise(order: OrderFulfillments) -> ShopifyOrder:
    """The Shopify client's record of an order as the phases read it: the first tracking
    number of each fulfillment, the variant lines (none when they were not read)."""
    fulfillments = []
    for f in order.fulfillments:
        first = f.tracking[0] if f.tracking else None
        lines = tuple((variant, quantity) for _, variant, quantity in f.lines or () if variant)
        fulfillments.append(Fulfilled(f.id, f.status or "", f.created_at or "",
                                      ((first.number if first else "") or "").strip(),
                                      ((first.company if first else "") or "").strip(), lines))
    lines = tuple((line, variant, quantity) for line, variant, quantity, _ in order.line_items or ())
    return ShopifyOrder(order.order_id, bool(order.cancelled_at), lines, tuple(fulfillments))


def read_orders(shopify: ShopifyFulfillments, created: Iterable[CreatedLines],
                known_fulfillments: Iterable[str] = ()) -> dict[str, ShopifyOrder]:
    """The Shopify orders of ``created``, read in batches: their line items only for the orders
    whose lines were not kept at creation (adopted ones), the lines of known fulfillments not at all."""
    created = list(created)
    known = list(known_fulfillments)
    out: dict[str, ShopifyOrder] = {}
    for with_lines in (False, True):
        ids = [c.shopify_order_id for c in created if bool(not c.shopify_lines) == with_lines]
        if ids:
            found = shopify.order_fulfillments(ids, line_items=with_lines, known_fulfillments=known)
            out.update({gid: normalise(order) for gid, order in found.items()})
    for c in created:  # the lines kept at creation stand in for the ones not read
        order = out.get(c.shopify_order_id)
        if order is not None and not order.lines:
            out[c.shopify_order_id] = replace(order, lines=tuple(c.shopify_lines))
    return out
