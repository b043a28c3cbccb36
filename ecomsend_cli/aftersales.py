"""Phase 3 of sync-orders: cancellations and returns from TikTok into Shopify (DESIGN §6b.3–§6b.5).

* **Whole-order cancellations** (§6b.3): a synced order TikTok cancelled
  (status CANCELLED, or a cancellation record covering every line) is
  cancelled in Shopify — ``orderCancel`` with restock, the refund recorded,
  no customer notice, a staff note with TikTok's reason — unless Shopify has
  already fulfilled some of it: then it is reported for the operator ("shipped
  in Shopify, cancelled on TikTok: handle the return"). ``orderCancel`` is
  asynchronous, so it is confirmed by reading the order's ``cancelledAt``;
  "already cancelled" means done.
* **Line cancellations**: a completed cancellation record for some lines is a
  ``refundCreate`` of those units with ``restockType: CANCEL`` and the amount
  TikTok refunded.
* **Returns** (§6b.4): a return TikTok completed (the buyer refunded) is one
  ``refundCreate``: its lines restocked as RETURN when goods came back and
  ``aftersales.restock`` is on, else NO_RESTOCK; one REFUND transaction for
  TikTok's ``refund_total`` with the order's SALE as parent, the shipping
  part as the shipping refund. Units given back (returned or cancelled) also
  give back their platform-funded discount, which TikTok takes back from the
  seller (its statements' ``platform_discount_refund``): a second REFUND, of
  the platform SALE (``TikTok Shop platform discount``). A REPLACEMENT pays nothing back (the buyer
  gets a new unit, a TikTok order of its own): noted, never a refund.
* **Exactly once** (§6b.5): every write is recorded as an intent first;
  ``refundCreate`` carries an idempotency key derived from TikTok's own id
  (``tiktok-cancel-<id>``, ``tiktok-return-<id>``), so resending after an
  unclear answer can never refund twice; as Shopify forgets keys after about
  a day, the order's refunds are read first (each names its key in its note).
  A cancellation is looked up (the order's ``cancelledAt``) before it is sent
  again.

Each search keeps its own cursor, moved as in §5.1 (never past the run).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from .errors import ApiError, AuthError, NetworkError, OutcomeUnknownError
from .money import AmountError, check_currency, parse_amount
from .order_input import PLATFORM_GATEWAY
from .run import Checkpoints, PhaseReport
from .store import Store
from .store_after import AfterSale, CreatedLines
from .text import terminal_safe
from .tracking import ShopifyOrder, normalise, read_orders

CANCEL_CURSOR = "aftersales.cancellations.cursor"
RETURN_CURSOR = "aftersales.returns.cursor"
OVERLAP_SECONDS = 15 * 60
# TikTok's statuses of a cancellation or a return that is final and refunded. TikTok's
# documents spell the cancelled states both ``…_CANCEL`` and ``…_CANCELLED``.
CANCEL_DONE = ("CANCELLATION_REQUEST_COMPLETE", "CANCELLATION_REQUEST_SUCCESS")
RETURN_DONE = ("RETURN_OR_REFUND_REQUEST_COMPLETE",)
GOODS_BACK = ("RETURN_AND_REFUND",)  # return types where the goods come back
# A return type that pays nothing back: the buyer gets a new unit (TikTok's replacement order, §5.8).
REPLACEMENT = "REPLACEMENT"
# TikTok's ids are digits; anything else would make an idempotency key (and a store key) of its text.
_TIKTOK_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
Event = Callable[..., None]


class TikTokAftersales(Protocol):
    def search_cancellations(self, *, update_time_ge: int, update_time_lt: int | None = None,
                             page_size: int = 50) -> Iterable[list[dict]]: ...

    def search_returns(self, *, update_time_ge: int, update_time_lt: int | None = None,
                       page_size: int = 50) -> Iterable[list[dict]]: ...


class ShopifyAftersales(Protocol):
    def order_fulfillments(self, order_ids: list[str], *, line_items: bool = True,
                           known_fulfillments: Iterable[str] = ()) -> dict[str, Any]: ...

    def order_cancel(self, order_id: str, *, reason: str, staff_note: str, restock: bool = True,
                     refund: bool = True, notify_customer: bool = False) -> Any: ...

    def order_transactions(self, order_id: str) -> list[dict]: ...

    def order_refunds(self, order_id: str) -> list[dict]: ...

    def refund_create(self, order_id: str, *, idempotency_key: str, line_items: list[tuple[str, int, str]],
                      shipping_amount: Decimal | None, transactions: list[dict], note: str,
                      notify: bool = False, currency: str | None = None) -> Any: ...

    def shop_info(self) -> dict: ...


@dataclass
class Outcome:
    tiktok_order_id: str
    what: str  # cancelled | refunded | reported | failed | unconfirmed | requested | noted
    detail: str
    key: str = ""

    def as_json(self) -> dict:
        return {"tiktok_order_id": self.tiktok_order_id, "what": self.what, "detail": self.detail, "key": self.key}


@dataclass
class AftersalesReport(PhaseReport):
    problem: ApiError | None = None

    def as_json(self) -> dict:
        return {"cancelled": self.count("cancelled"), "refunded": self.count("refunded"),
                "reported": self.count("reported"), "failed": self.count("failed"),
                "unconfirmed": self.count("unconfirmed") + self.count("requested"),
                "outcomes": [o.as_json() for o in self.outcomes if o.what != "noted"]}


# --- TikTok's records ----------------------------------------------------------------------------


def _first(record: dict, *names: str) -> Any:
    for name in names:
        if record.get(name) not in (None, ""):
            return record[name]
    return None


def record_id(record: dict, kind: str) -> str | None:
    value = _first(record, "cancel_id", "cancellation_id", "id") if kind == "cancel" else \
        _first(record, "return_id", "id")
    return str(value) if value is not None else None


def _brief(value: Any) -> str:
    """Outside text for a reason: what a terminal acts on removed, at most 40 characters, quoted."""
    text = " ".join(terminal_safe(str(value)).split()) if value is not None else ""
    return repr(text if len(text) <= 40 else text[:39] + "…")


def record_lines(record: dict) -> list[str]:
    """The TikTok line item ids a cancellation or return covers."""
    lines = _first(record, "cancel_line_items", "return_line_items", "line_items") or []
    return [str(_first(x, "order_line_item_id", "line_item_id", "id")) for x in lines
            if isinstance(x, dict) and _first(x, "order_line_item_id", "line_item_id", "id") is not None]


def return_type(record: dict) -> str:
    """TikTok's ``return_type`` as its constants spell it, whatever the case or padding it came in."""
    return str(record.get("return_type") or "").strip().upper()


def is_replacement(record: dict) -> bool:
    """Whether a return is a replacement: nothing refunded, the unit stays sold (never a Shopify refund)."""
    return return_type(record) == REPLACEMENT


def refund_total(record: dict, order_currency: str = "") -> tuple[Decimal, Decimal, str]:
    """``(total, shipping part, currency)`` TikTok refunded the buyer for this record.

    Checked as an order's amounts are (§5.7, :func:`~ecomsend_cli.money.parse_amount`): a
    plain non-negative number with the currency's decimals; a refund with no currency is in
    ``order_currency``. AmountError (naming the field) when TikTok's figures cannot be used.
    """
    money = record.get("refund_amount")
    if not isinstance(money, dict):
        raise AmountError("TikTok's record has no refund_amount")
    currency = check_currency(money["currency"]) if money.get("currency") not in (None, "") else order_currency
    if not currency:
        raise AmountError("TikTok's refund_amount names no currency")
    total = parse_amount(_first(money, "refund_total", "total"), currency, field="refund_total")
    shipping = _first(money, "refund_shipping_fee", "shipping_fee")
    shipping = parse_amount(shipping, currency, field="refund_shipping_fee") if shipping is not None else Decimal(0)
    if shipping > total:
        raise AmountError(f"refund_shipping_fee {shipping} is more than refund_total {total}")
    return total, shipping, currency


def platform_share(payload: dict, lines: Iterable[str], currency: str) -> Decimal:
    """The platform-funded discount TikTok's order gave ``lines`` (TikTok line item ids): what TikTok
    takes back from the seller when it refunds them. AmountError when a figure is unusable."""
    wanted = set(lines)
    total = Decimal(0)
    for item in payload.get("line_items") or []:
        if isinstance(item, dict) and str(item.get("id")) in wanted \
                and item.get("platform_discount") not in (None, ""):
            total += parse_amount(item["platform_discount"], currency, field="line_items.platform_discount")
    return total


# --- the phase -----------------------------------------------------------------------------------


class AftersalesPhase:
    """Phase 3 of one sync-orders run (see the module docstring)."""

    def __init__(self, store: Store, tiktok: TikTokAftersales, shopify: ShopifyAftersales, *, restock: bool,
                 initial_days: int = 7, on_event: Event | None = None, clock: Callable[[], float] = time.time,
                 crash_at: str | None = None) -> None:
        self.store = store
        self.tiktok = tiktok
        self.shopify = shopify
        self.restock = restock
        self.initial_days = initial_days
        self.on_event = on_event or (lambda kind, **data: None)
        self.clock = clock
        self.checkpoint = Checkpoints(crash_at)
        self.started = int(clock())
        self.report = AftersalesReport()
        self._orders: dict[str, ShopifyOrder] = {}
        self._shop_currency: str | None = None

    def run(self) -> AftersalesReport:
        for order_id in self.store.cancelled_on_tiktok():
            self.store.record_aftersale(f"tiktok-order-cancel-{order_id}", order_id, "order_cancel", {})
        for kind, cursor, search in (("cancel", CANCEL_CURSOR, self.tiktok.search_cancellations),
                                     ("return", RETURN_CURSOR, self.tiktok.search_returns)):
            try:
                self._pull(kind, cursor, search)
            except (NetworkError, AuthError):
                raise  # TikTok cannot be reached: the run ends here (run.py)
            except ApiError as exc:
                # A search TikTok refuses (a region without returns, a garbled page) stops neither the
                # other search nor what was noted, cancellations above all; the run ends with the error.
                self.report.problem = self.report.problem or exc
        # An order's line cancellations before its cancellation: theirs are refunded first, the
        # cancellation then gives back what is left (the other way, Shopify refuses the lines).
        pending = sorted(self.store.open_aftersales(), key=lambda sale: sale.kind == "order_cancel")
        if not pending:
            return self.report
        created = self.store.created_lines({s.tiktok_order_id for s in pending})
        self._orders = read_orders(self.shopify, created.values())
        self.on_event("aftersales_started", total=len(pending))
        for sale in pending:
            order = created.get(sale.tiktok_order_id)
            if order is None:
                self._not_in_shopify(sale)
            elif sale.kind == "order_cancel":
                self._cancel_order(sale, order)
            else:
                self._refund(sale, order)
        return self.report

    def _pull(self, kind: str, cursor_key: str, search: Callable[..., Iterable[list[dict]]]) -> None:
        stored = self.store.get_state(cursor_key)
        start = min(int(stored), self.started) - OVERLAP_SECONDS if stored and stored.isdigit() \
            else self.started - self.initial_days * 86400
        newest = int(stored) if stored and stored.isdigit() else 0
        for page in search(update_time_ge=start):
            for record in page:
                if not isinstance(record, dict):
                    continue
                self._note(kind, record)
                update = record.get("update_time")
                if isinstance(update, int) and not isinstance(update, bool):
                    newest = max(newest, update)
            self.store.set_state(cursor_key, str(min(newest, self.started)))

    def _note(self, kind: str, record: dict) -> None:
        """Keep a finished TikTok cancellation or return to bring into Shopify (once)."""
        status = str(_first(record, "cancel_status" if kind == "cancel" else "return_status", "status") or "")
        if status not in (CANCEL_DONE if kind == "cancel" else RETURN_DONE):
            return
        order_id = str(record.get("order_id") or "")
        rid = record_id(record, kind)
        if not (rid and _TIKTOK_ID.fullmatch(rid) and _TIKTOK_ID.fullmatch(order_id)):
            return self._unusable(kind, record)
        if kind == "cancel":
            live = self._live_lines(order_id)
            if not record_lines(record) or (live and set(live) <= set(record_lines(record))):
                # Every line: the whole order is cancelled, never also refunded line by line.
                if not self.store.record_aftersale(f"tiktok-order-cancel-{order_id}", order_id, "order_cancel",
                                                   record):
                    return
            else:
                self.store.record_aftersale(f"tiktok-cancel-{rid}", order_id, "line_cancel", record,
                                            **self._amount_of(record))
            return
        self.store.record_aftersale(f"tiktok-return-{rid}", order_id, "return", record, **self._amount_of(record))

    def _unusable(self, kind: str, record: dict) -> None:
        """A finished record without usable ids (its own, its order's) cannot be brought in exactly
        once, nor tied to an order: reported once, under a key made from its content."""
        order_id = str(record.get("order_id") or "")
        order_id = order_id if _TIKTOK_ID.fullmatch(order_id) else ""
        noun = "cancellation" if kind == "cancel" else "return"
        digest = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:24]
        why = (f"TikTok sent a finished {noun} without a usable id of its own or of its order "
               f"({_brief(record_id(record, kind))}, order {_brief(record.get('order_id'))}): "
               "find it in TikTok Seller Center and bring it into Shopify by hand")
        key = f"tiktok-{kind}-unusable-{digest}"
        if self.store.record_aftersale(key, order_id, "return" if kind == "return" else "line_cancel", record,
                                       state="reported", reason=why):
            self.report.outcomes.append(Outcome(order_id, "reported", why, key))

    @staticmethod
    def _amount_of(record: dict) -> dict[str, str | None]:
        """The amount to show beside a noted record; an unusable one is reported when it is brought in."""
        try:
            total, _, currency = refund_total(record)
        except AmountError:
            return {"amount": None, "currency": None}
        return {"amount": str(total), "currency": currency}

    def _live_lines(self, order_id: str) -> list[str]:
        """The order's TikTok line items at creation, less those cancelled one by one since: a later
        cancellation of all the others is the whole order's, never refunded line by line too."""
        created = self.store.created_lines([order_id]).get(order_id)
        if created is None:
            return []
        gone = {line for sale in self.store.aftersales_of([order_id]).get(order_id, [])
                if sale.kind == "line_cancel" for line in record_lines(sale.record)}
        return [line for line in created.line_map if line not in gone]

    def _not_in_shopify(self, sale: AfterSale) -> None:
        state = self.store.order_states([sale.tiktok_order_id]).get(sale.tiktok_order_id)
        if state and state[0] == "creating":
            return  # may be in Shopify: decided once its creation is confirmed
        why = ("not in Shopify: a cancellation before the order was created leaves the cancelled lines out"
               if sale.kind != "return" else "not in Shopify: nothing to refund there")
        self.store.finish_aftersale(sale.key, "done", reason=why)
        self.report.outcomes.append(Outcome(sale.tiktok_order_id, "noted", why, sale.key))

    # -- §6b.3: whole orders -------------------------------------------------------------------

    def _cancel_order(self, sale: AfterSale, order: CreatedLines) -> None:
        order_id = sale.tiktok_order_id
        shopify = self._orders.get(order.shopify_order_id)
        if shopify is None:
            return self._failed(sale, "the Shopify order could not be read (deleted?)")
        if shopify.cancelled:
            self.store.finish_aftersale(sale.key, "done", reason="cancelled in Shopify")
            self.report.outcomes.append(Outcome(order_id, "cancelled", f"Shopify order {order.shopify_order_id}",
                                                sale.key))
            return
        if any(f.status == "SUCCESS" for f in shopify.fulfillments):
            why = "shipped in Shopify, cancelled on TikTok: handle the return"
            if sale.state != "reported":
                self.store.finish_aftersale(sale.key, "reported", reason=why)
            self.report.outcomes.append(Outcome(order_id, "reported", why, sale.key))
            return
        if sale.state == "requested":
            self.report.outcomes.append(Outcome(order_id, "requested", "Shopify is cancelling it", sale.key))
            return
        # An unconfirmed earlier attempt ("sending") was looked up above: not cancelled, so send again.
        if sale.state != "sending" and not self.store.claim_aftersale(sale.key, sale.state):
            return  # claimed by another run
        reason, initiator = self._cancel_words(sale.record, order.payload)
        self.checkpoint("before_cancel")
        try:
            result = self.shopify.order_cancel(
                order.shopify_order_id, reason="CUSTOMER" if initiator == "BUYER" else "OTHER",
                staff_note=f"Cancelled on TikTok Shop: {reason}"[:255], restock=True, refund=True,
                notify_customer=False)
        except OutcomeUnknownError as exc:
            self.report.outcomes.append(Outcome(order_id, "unconfirmed", exc.message, sale.key))
            return
        except ApiError as exc:
            return self._failed(sale, f"Shopify refused to cancel it: {exc}")
        self.checkpoint("after_cancel")
        if getattr(result, "already_cancelled", False):
            self.store.finish_aftersale(sale.key, "done", reason="already cancelled in Shopify")
            self.report.outcomes.append(Outcome(order_id, "cancelled", "already cancelled in Shopify", sale.key))
            return
        errors = getattr(result, "user_errors", None) or []
        if errors:
            return self._failed(sale, "Shopify refused to cancel it: " + "; ".join(
                str(e.get("message")) for e in errors))
        job = getattr(result, "job_id", None)
        confirmed = self._cancelled_now(order.shopify_order_id)
        self.store.finish_aftersale(sale.key, "done" if confirmed else "requested", shopify_ref=job,
                                    reason="" if confirmed else "Shopify is cancelling it (an asynchronous job)")
        self.report.outcomes.append(Outcome(order_id, "cancelled" if confirmed else "requested",
                                            f"Shopify order {order.shopify_order_id}, restocked", sale.key))

    def _cancelled_now(self, shopify_order_id: str) -> bool:
        """Read the order once more: Shopify's job usually finishes within the second."""
        for delay in (0.1, 0.3):
            time.sleep(delay)
            found = self.shopify.order_fulfillments([shopify_order_id], line_items=False).get(shopify_order_id)
            if found is not None and normalise(found).cancelled:
                return True
        return False

    @staticmethod
    def _cancel_words(record: dict, payload: dict) -> tuple[str, str]:
        reason = str(_first(record, "cancel_reason_text", "cancel_reason", "reason") or payload.get("cancel_reason")
                     or "no reason given")
        reason = " ".join(terminal_safe(reason).split())[:200] or "no reason given"  # one line, for a person
        initiator = str(_first(record, "cancellation_initiator", "cancel_initiator", "role")
                        or payload.get("cancellation_initiator") or "").upper()
        return reason, initiator

    # -- §6b.3 lines, §6b.4 returns -----------------------------------------------------------

    def _refund(self, sale: AfterSale, order: CreatedLines) -> None:
        order_id = sale.tiktok_order_id
        shopify = self._orders.get(order.shopify_order_id)
        if shopify is None:
            return self._failed(sale, "the Shopify order could not be read (deleted?)")
        if sale.kind == "line_cancel":
            sent = [line for line in record_lines(sale.record) if line in order.line_map]
            why = ("cancelled in Shopify: its refund gave back what was left, these lines too" if shopify.cancelled
                   else "cancelled on TikTok before the order was created: never in Shopify"
                   if order.line_map and not sent else "")
            if why:
                self.store.finish_aftersale(sale.key, "done", reason=why)
                self.report.outcomes.append(Outcome(order_id, "noted", why, sale.key))
                return
        order_currency = str((order.payload.get("payment") or {}).get("currency") or "").strip().upper()
        if sale.kind == "return" and is_replacement(sale.record):
            # A refund of the unit with no money would take it off the order and leave the buyer
            # owed its price; the new unit comes as its own TikTok order. One that paid money back
            # (or whose money cannot be read) is no plain replacement: never dropped, never guessed.
            try:
                paid, _, paid_in = refund_total(sale.record, order_currency)
            except AmountError as exc:
                return self._reported(sale, f"TikTok's replacement names a refund that cannot be read ({exc}): "
                                            "check it in TikTok Seller Center, refund it in Shopify by hand")
            if paid:
                return self._reported(sale, f"TikTok calls it a replacement, yet paid {paid} {paid_in} back: "
                                            "refund it in Shopify by hand")
            why = "a replacement on TikTok, not a refund: nothing was paid back, the unit stays sold"
            self.store.finish_aftersale(sale.key, "done", reason=why)
            self.report.outcomes.append(Outcome(order_id, "noted", why, sale.key))
            return
        goods_back = sale.kind == "return" and return_type(sale.record) in GOODS_BACK
        restock = "CANCEL" if sale.kind == "line_cancel" else ("RETURN" if goods_back and self.restock
                                                              else "NO_RESTOCK")
        try:
            total, shipping, currency = refund_total(sale.record, order_currency)
            if order_currency and currency != order_currency:
                raise AmountError(f"TikTok refunded in {currency}, but the order is in {order_currency}")
            # A unit TikTok refunds in parts goes back once, with the first part: its quantity
            # and its platform discount; a later part is the buyer's money only.
            given = self._given_back(sale)
            units = [line for line in record_lines(sale.record) if line not in given]
            platform = platform_share(order.payload, units, currency)
        except AmountError as exc:  # never a guess at the money, never retried: TikTok's record stays as it is
            return self._reported(sale, f"TikTok's refund cannot be brought into Shopify ({exc}): "
                                        "refund it in Shopify by hand")
        lines = self._shopify_lines(units, order, shopify)
        if lines is None:  # TikTok's record and what was sent never change: reported once, not retried
            return self._reported(sale, "its TikTok lines could not be matched to the Shopify order's lines: "
                                        "refund it in Shopify by hand")
        if sale.kind == "line_cancel" and self._shipped_in_shopify(sale, order, shopify):
            # CANCEL restocks units that never left: for shipped ones it would count stock that is gone.
            return self._reported(sale, "shipped in Shopify, cancelled on TikTok: handle the return")
        if sale.state == "sending" and self._made_before(sale, order, f"{total} {currency}"):
            return
        # After an unclear answer ("sending") the same idempotency key is sent again: never twice refunded.
        if sale.state != "sending" and not self.store.claim_aftersale(sale.key, sale.state):
            return
        try:
            transactions = self._refund_transactions(order.shopify_order_id, total, platform)
            shop_currency = self._shop()
            self.checkpoint("before_refund")
            result = self.shopify.refund_create(
                order.shopify_order_id, idempotency_key=sale.key,
                line_items=[(gid, qty, restock) for gid, qty in lines.items()],
                shipping_amount=shipping if shipping > 0 else None, transactions=transactions,
                note=f"Refunded on TikTok Shop ({sale.key})", notify=False,
                currency=currency if currency != shop_currency else None)
        except OutcomeUnknownError as exc:
            self.report.outcomes.append(Outcome(order_id, "unconfirmed", exc.message, sale.key))
            return
        except ApiError as exc:
            return self._failed(sale, f"Shopify refused the refund: {exc}")
        self.checkpoint("after_refund")
        errors = getattr(result, "user_errors", None) or []
        if errors:
            return self._failed(sale, "Shopify refused the refund: " + "; ".join(
                str(e.get("message")) for e in errors))
        self.store.finish_aftersale(sale.key, "done", shopify_ref=getattr(result, "refund_id", None))
        taken_back = sum((t["amount"] for t in transactions if t["gateway"] == PLATFORM_GATEWAY), Decimal(0))
        back = f" (and {taken_back} of TikTok's platform discount)" if taken_back else ""
        self.report.outcomes.append(Outcome(order_id, "refunded", f"{total} {currency}{back}, "
                                            f"{sum(lines.values())} item(s) {restock.lower()}", sale.key))

    def _given_back(self, sale: AfterSale) -> set[str]:
        """The TikTok line items an earlier refund of the order brought into Shopify already."""
        return {line for earlier in self._others_done(sale)
                if earlier.kind != "order_cancel" and not earlier.reason for line in record_lines(earlier.record)}

    def _others_done(self, sale: AfterSale) -> list[AfterSale]:
        """The order's other cancellations and returns already brought into Shopify (or noted)."""
        return [earlier for earlier in self.store.aftersales_of([sale.tiktok_order_id]).get(sale.tiktok_order_id, [])
                if earlier.key != sale.key and earlier.state == "done"]

    def _shopify_lines(self, tiktok_lines: list[str], order: CreatedLines,
                       shopify: ShopifyOrder) -> dict[str, int] | None:
        """``{Shopify line GID: quantity}`` for the TikTok line items, through the variants they went to."""
        need: Counter[str] = Counter()
        for line in tiktok_lines:
            if line not in order.line_map:
                return None
            need.update(order.line_map[line])
        out: dict[str, int] = {}
        for variant, quantity in need.items():
            gid = next((g for g, v, _ in shopify.lines if v == variant), None)
            if gid is None:
                return None
            out[gid] = out.get(gid, 0) + quantity
        return out

    def _made_before(self, sale: AfterSale, order: CreatedLines, amount: str) -> bool:
        """Whether the refund of an unclear earlier attempt is in Shopify (found by its note), or may
        be (the refunds could not be read): Shopify forgets idempotency keys after about a day,
        so a retry after that could refund twice."""
        try:
            found = next((r for r in self.shopify.order_refunds(order.shopify_order_id)
                          if f"({sale.key})" in str(r.get("note") or "")), None)
        except ApiError as exc:
            self.report.outcomes.append(Outcome(sale.tiktok_order_id, "unconfirmed",
                                                f"{exc.message}; looked up again on the next run", sale.key))
            return True
        if found is None:
            return False
        self.store.finish_aftersale(sale.key, "done", shopify_ref=found.get("id"))
        self.report.outcomes.append(Outcome(sale.tiktok_order_id, "refunded",
                                            f"{amount} (found in Shopify after an unclear answer)", sale.key))
        return True

    def _shipped_in_shopify(self, sale: AfterSale, order: CreatedLines, shopify: ShopifyOrder) -> bool:
        """Whether Shopify fulfilled units this line cancellation would give back as never shipped."""
        need = Counter(v for line in record_lines(sale.record) for v in order.line_map.get(line, ()))
        left: Counter[str] = Counter()
        for _, variant, quantity in shopify.lines:
            if variant:
                left[variant] += quantity
        for fulfillment in shopify.fulfillments:
            for variant, quantity in fulfillment.lines if fulfillment.status == "SUCCESS" else ():
                left[variant] -= quantity
        for earlier in self._others_done(sale):
            if earlier.kind == "line_cancel":
                left.subtract(Counter(v for line in record_lines(earlier.record) for v in order.line_map.get(line, ())))
        return any(n > left[v] for v, n in need.items())

    def _refund_transactions(self, shopify_order_id: str, total: Decimal, platform: Decimal) -> list[dict]:
        """The buyer's refund from the buyer's SALE; the platform discount TikTok takes back from its own."""
        if total <= 0 and platform <= 0:
            return []
        sales = [t for t in self.shopify.order_transactions(shopify_order_id)
                 if t.get("kind") == "SALE" and t.get("status") == "SUCCESS"]
        if not sales:
            return []  # cash on delivery not collected: nothing was paid to refund
        buyer = next((t for t in sales if t.get("gateway") != PLATFORM_GATEWAY), sales[0])
        tiktok = next((t for t in sales if t.get("gateway") == PLATFORM_GATEWAY), None)
        out = []
        for amount, parent in ((total, buyer), (platform, tiktok)):
            if amount > 0 and parent is not None:
                out.append({"amount": amount, "gateway": parent.get("gateway") or "TikTok Shop",
                            "parent_id": parent["id"]})
        return out

    def _shop(self) -> str:
        if self._shop_currency is None:
            self._shop_currency = str(self.shopify.shop_info().get("currency_code") or "")
        return self._shop_currency

    def _reported(self, sale: AfterSale, why: str) -> None:
        self.store.finish_aftersale(sale.key, "reported", reason=why)
        self.report.outcomes.append(Outcome(sale.tiktok_order_id, "reported", why, sale.key))

    def _failed(self, sale: AfterSale, why: str) -> None:
        self.store.finish_aftersale(sale.key, "failed", reason=why)
        self.report.outcomes.append(Outcome(sale.tiktok_order_id, "failed", why, sale.key))
