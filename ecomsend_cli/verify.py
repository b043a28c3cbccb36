"""verify-orders (DESIGN §3, §5.7): read back the Shopify orders ecomsend created and compare.

An accountant's check, order by order, in the buyer's (presentment) currency:

* total = TikTok's ``total_amount`` + the platform-funded discounts (what the
  seller is owed in all);
* total tax = ``product_tax + shipping_fee_tax``;
* discounts = the seller-funded item discount;
* outstanding = 0 (the total for cash on delivery);
* refunded = what TikTok paid back: the ``refund_total`` of its line
  cancellations and returns (replacements pay nothing back) and the
  platform-funded discount of their units, which TikTok takes back, or, for an order
  TikTok cancelled, all that was paid (not checked for cash on delivery, where
  Shopify received nothing to refund);
* currencies: presentment = TikTok's, shop = the shop's;
* quantities of each variant = what was sent (or, for orders sent before that
  was kept, what the links give now), less what TikTok cancelled and what its
  returns brought into Shopify refunded (Shopify's ``currentQuantity``);
* cancelled on TikTok ⇔ cancelled in Shopify.

Shopify's totals are the order's before any refund, TikTok's ``payment`` covers
the lines still live: the lines TikTok cancelled after the order was created
are added back to it (their prices, taxes and discounts) before comparing.

Expected figures come from TikTok's own numbers, not from the input we built,
so a mistake in building it shows up here. Orders are read in batches with
``nodes(ids:)``; the engine never prints.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from .aftersales import is_replacement, platform_share, record_lines, refund_total
from .money import AmountError, parse_amount, text
from .order_input import FEES, order_units
from .store import CreatedOrder, Store
from .store_after import AfterSale

CHUNK = 200  # orders loaded from the store at a time


class ShopifyReader(Protocol):
    def orders_for_verify(self, order_ids: list[str]) -> dict[str, dict]: ...

    def shop_info(self) -> dict: ...


@dataclass(frozen=True)
class Difference:
    tiktok_order_id: str
    shopify_order_id: str
    shopify_order_name: str | None
    field: str
    tiktok: str
    shopify: str

    def as_json(self) -> dict:
        return {"tiktok_order_id": self.tiktok_order_id, "shopify_order_id": self.shopify_order_id,
                "shopify_order_name": self.shopify_order_name, "field": self.field,
                "tiktok": self.tiktok, "shopify": self.shopify}


@dataclass
class VerifyReport:
    checked: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def differing(self) -> int:
        return len({d.tiktok_order_id for d in self.differences})

    def as_json(self) -> dict:
        return {"checked": self.checked, "differing": self.differing,
                "differences": [d.as_json() for d in self.differences]}


def verify_orders(store: Store, shopify: ShopifyReader, *, since: str | None,
                  on_event: Callable[..., None] | None = None) -> VerifyReport:
    """Compare every order created since ``since`` (ISO 8601) with its TikTok order."""
    report = VerifyReport()
    ids = store.synced_orders(since=since)
    shop_currency = str(shopify.shop_info().get("currency_code") or "") if ids else ""
    links = store.link_map() if ids else {}
    for start in range(0, len(ids), CHUNK):
        orders = store.created_orders(ids[start:start + CHUNK])
        found = shopify.orders_for_verify([o.shopify_order_id for o in orders])
        sales = store.aftersales_of([o.tiktok_order_id for o in orders])
        for order in orders:
            report.checked += 1
            report.differences.extend(compare(order, found.get(order.shopify_order_id), shop_currency, links,
                                              sales.get(order.tiktok_order_id, ())))
        if on_event:
            on_event("verified", count=report.checked, total=len(ids))
    return report


def compare(order: CreatedOrder, shopify: dict | None, shop_currency: str,
            links: dict[str, str], aftersales: Iterable[AfterSale] = ()) -> list[Difference]:
    """Every difference between one TikTok order and the Shopify order created for it
    (``aftersales``: its cancellations and returns brought into Shopify)."""
    out: list[Difference] = []

    def differ(what: str, tiktok: Any, theirs: Any) -> None:
        out.append(Difference(order.tiktok_order_id, order.shopify_order_id, order.shopify_order_name,
                              what, str(tiktok), str(theirs)))

    if shopify is None:
        differ("order", "created", "not found in Shopify (deleted?)")
        return out
    payload = order.payload or {}
    payment = payload.get("payment") or {}
    currency = str(payment.get("currency") or "USD")
    sent = order.line_map if isinstance(order.line_map, dict) else {}
    aftersales = list(aftersales)
    # Lines TikTok cancelled after creation left its payment (not Shopify's totals): the live
    # order's cancelled lines, and those a line cancellation took before the whole order went.
    cancelled = {str(x.get("id")) for x in payload.get("line_items") or [] if isinstance(x, dict)
                 and str(x.get("display_status") or "").upper() == "CANCELLED"} \
        if str(order.tiktok_status).upper() != "CANCELLED" else set()
    cancelled |= {line for s in aftersales if s.kind == "line_cancel" for line in record_lines(s.record)}
    returned = Counter(v for line in {line for s in aftersales if s.kind == "return" and s.state == "done"
                                      and not is_replacement(s.record) for line in record_lines(s.record)}
                       for v in sent.get(line, ()))  # a unit refunded in parts came back once
    try:
        expected = _expected_money(payload, currency, cancelled & set(sent))
    except (AmountError, KeyError, ValueError) as exc:
        differ("tiktok amounts", f"unusable ({exc})", "-")
        return out
    if shopify.get("presentmentCurrencyCode") != currency:
        differ("presentment currency", currency, shopify.get("presentmentCurrencyCode"))
    if shop_currency and shopify.get("currencyCode") != shop_currency:
        differ("shop currency", shop_currency, shopify.get("currencyCode"))
    for name, key in (("total", "totalPriceSet"), ("total tax", "totalTaxSet"),
                      ("discounts", "totalDiscountsSet"), ("outstanding", "totalOutstandingSet")):
        theirs = _presented(shopify.get(key), currency)
        if theirs is None or theirs != expected[name]:
            differ(name, f"{text(expected[name], currency)} {currency}",
                   f"{text(theirs, currency)} {currency}" if theirs is not None else "absent")
    if payload.get("is_cod") is not True:
        try:
            paid_back = expected["total"] if str(order.tiktok_status).upper() == "CANCELLED" \
                else _refunded_on_tiktok(payload, aftersales, sent, currency)
        except AmountError as exc:
            differ("refunded", f"unknown (TikTok's refund: {exc})", "-")
        else:
            theirs = _presented(shopify.get("totalRefundedSet"), currency)
            if theirs is None or theirs != paid_back:
                differ("refunded", f"{text(paid_back, currency)} {currency}",
                       f"{text(theirs, currency)} {currency}" if theirs is not None else "absent")
    wanted = _expected_quantities(order, links) - returned
    have: Counter[str] = Counter()
    for line in shopify.get("lineItems") or []:
        variant = (line.get("variant") or {}).get("id") or "(no variant)"
        quantity = line.get("currentQuantity", line.get("quantity"))
        have[variant] += quantity if isinstance(quantity, int) else 0
    for variant in sorted(set(wanted) | set(have)):
        if wanted.get(variant, 0) != have.get(variant, 0):
            differ(f"quantity of {variant}", wanted.get(variant, 0), have.get(variant, 0))
    tiktok_cancelled = str(order.tiktok_status).upper() == "CANCELLED"
    if tiktok_cancelled != bool(shopify.get("cancelledAt")):
        differ("cancelled", "yes" if tiktok_cancelled else "no",
               f"yes ({shopify.get('cancelledAt')})" if shopify.get("cancelledAt") else "no")
    return out


def _refunded_on_tiktok(payload: dict, aftersales: list[AfterSale], sent: dict, currency: str) -> Decimal:
    """What TikTok paid back for the order's lines in Shopify: its line cancellations and returns (a
    cancellation of lines never sent never reached Shopify); AmountError when a figure is unusable."""
    total = Decimal(0)
    given: set[str] = set()  # a unit refunded in parts gives its platform discount back once
    for sale in aftersales:
        if sale.kind == "order_cancel" or not all(line in sent for line in record_lines(sale.record)):
            continue
        amount, _, theirs = refund_total(sale.record, currency)
        if theirs != currency:
            raise AmountError(f"in {theirs}, but the order is in {currency}")
        if is_replacement(sale.record):  # pays nothing back, its unit stays sold: any money TikTok paid counts
            total += amount
            continue
        units = [line for line in record_lines(sale.record) if line not in given]
        given.update(units)
        total += amount + platform_share(payload, units, currency)
    return total


def _expected_money(payload: dict, currency: str, cancelled_since: set[str] = frozenset()) -> dict[str, Decimal]:
    """Shopify's totals as TikTok's figures make them; ``cancelled_since``: line items TikTok
    cancelled after the order was created, whose amounts its payment no longer holds."""
    payment = payload.get("payment") or {}

    def amount(name: str) -> Decimal:
        value = payment.get(name)
        return Decimal(0) if value in (None, "") else parse_amount(value, currency, field=f"payment.{name}")

    back = _cancelled_amounts(payload, currency, cancelled_since)

    def from_lines(name: str, per_unit: Callable[[Any], Decimal]) -> Decimal:
        # An item figure the payment leaves out is the lines' sum, as the order was built
        # (order_input checks it against the payment only when the payment gives it).
        if payment.get(name) not in (None, ""):
            return amount(name)
        units = order_units(payload, currency, _amount_reader(currency))
        return sum((per_unit(u) for u in units), Decimal(0))

    platform = from_lines("platform_discount", lambda u: u.platform_discount) \
        + amount("shipping_fee_platform_discount") + back["platform_discount"]
    fees = sum((amount(name) for name in FEES), Decimal(0))
    taxes_added = amount("sub_total") + amount("shipping_fee") + fees + amount("tax") == amount("total_amount")
    total = amount("total_amount") + platform + back["sale_price"] + (back["tax"] if taxes_added else 0)
    return {
        "total": total,
        "total tax": from_lines("product_tax", lambda u: sum((t[2] for t in u.taxes), Decimal(0)))
        + amount("shipping_fee_tax") + back["tax"],
        "discounts": from_lines("seller_discount", lambda u: u.seller_discount) + back["seller_discount"],
        "outstanding": total if payload.get("is_cod") is True else Decimal(0),
    }


def _cancelled_amounts(payload: dict, currency: str, lines: set[str]) -> dict[str, Decimal]:
    """What TikTok's payment held for ``lines`` before it cancelled them (TikTok's own line figures)."""
    back = dict.fromkeys(("sale_price", "seller_discount", "platform_discount", "tax"), Decimal(0))
    for item in payload.get("line_items") or []:
        if not isinstance(item, dict) or str(item.get("id")) not in lines:
            continue
        for name in ("sale_price", "seller_discount", "platform_discount"):
            if item.get(name) not in (None, ""):
                back[name] += parse_amount(item[name], currency, field=f"line_items.{name}")
        for tax in item.get("item_tax") or []:
            if isinstance(tax, dict) and tax.get("tax_amount") not in (None, ""):
                back["tax"] += parse_amount(tax["tax_amount"], currency, field="line_items.item_tax")
    return back


def _amount_reader(currency: str) -> Callable[[dict, str, str], Decimal]:
    def amount(source: dict, name: str, where: str) -> Decimal:
        value = source.get(name)
        return Decimal(0) if value in (None, "") else parse_amount(value, currency, field=f"{where}.{name}")

    return amount


def _expected_quantities(order: CreatedOrder, links: dict[str, str]) -> Counter[str]:
    """What Shopify should hold of each variant: TikTok's line items as they are now (a unit TikTok
    cancelled since is no longer due), through the variants each went to when it was sent."""
    payload = order.payload or {}
    if isinstance(order.line_map, dict) and order.line_map:
        counts: Counter[str] = Counter()
        for line in payload.get("line_items") or []:
            if isinstance(line, dict) and str(line.get("display_status") or "").upper() != "CANCELLED":
                counts.update(order.line_map.get(str(line.get("id")), ()))
        return counts
    sent = order.sent_input
    if isinstance(sent, dict) and isinstance(sent.get("lineItems"), list):
        counts: Counter[str] = Counter()
        for line in sent["lineItems"]:
            counts[str(line.get("variantId"))] += int(line.get("quantity") or 0)
        return counts
    payload = order.payload or {}
    currency = str((payload.get("payment") or {}).get("currency") or "USD")
    return Counter(links.get(u.sku_id, f"(TikTok SKU {u.sku_id}, unlinked now)")
                   for u in order_units(payload, currency, _amount_reader(currency)))


def _presented(money_bag: Any, currency: str) -> Decimal | None:
    """The amount of a MoneyBag in ``currency`` (presentment money, or shop money in that currency)."""
    if not isinstance(money_bag, dict):
        return None
    for key in ("presentmentMoney", "shopMoney"):
        money = money_bag.get(key)
        if isinstance(money, dict) and money.get("currencyCode") == currency:
            try:
                return Decimal(str(money.get("amount")))
            except InvalidOperation:
                return None
    return None

