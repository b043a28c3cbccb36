"""verify-orders (DESIGN §3, §5.7): read back the Shopify orders ecomsend created and compare.

An accountant's check, order by order, in the buyer's (presentment) currency:

* total = TikTok's ``total_amount`` + the platform-funded discounts (what the
  seller is owed in all);
* total tax = ``product_tax + shipping_fee_tax``;
* discounts = the seller-funded item discount;
* outstanding = 0 (the total for cash on delivery);
* currencies: presentment = TikTok's, shop = the shop's;
* quantities of each variant = what was sent (or, for orders sent before that
  was kept, what the links give now);
* cancelled on TikTok ⇔ cancelled in Shopify.

Expected figures come from TikTok's own numbers, not from the input we built,
so a mistake in building it shows up here. Orders are read in batches with
``nodes(ids:)``; the engine never prints.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from .money import AmountError, parse_amount, text
from .order_input import order_units
from .store import CreatedOrder, Store

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
        for order in orders:
            report.checked += 1
            report.differences.extend(compare(order, found.get(order.shopify_order_id), shop_currency, links))
        if on_event:
            on_event("verified", count=report.checked, total=len(ids))
    return report


def compare(order: CreatedOrder, shopify: dict | None, shop_currency: str,
            links: dict[str, str]) -> list[Difference]:
    """Every difference between one TikTok order and the Shopify order created for it."""
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
    try:
        expected = _expected_money(payload, currency)
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
    wanted = _expected_quantities(order, links)
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


def _expected_money(payload: dict, currency: str) -> dict[str, Decimal]:
    payment = payload.get("payment") or {}

    def amount(name: str) -> Decimal:
        value = payment.get(name)
        return Decimal(0) if value in (None, "") else parse_amount(value, currency, field=f"payment.{name}")

    def from_lines(name: str, per_unit: Callable[[Any], Decimal]) -> Decimal:
        # An item figure the payment leaves out is the lines' sum, as the order was built
        # (order_input checks it against the payment only when the payment gives it).
        if payment.get(name) not in (None, ""):
            return amount(name)
        units = order_units(payload, currency, _amount_reader(currency))
        return sum((per_unit(u) for u in units), Decimal(0))

    platform = from_lines("platform_discount", lambda u: u.platform_discount) \
        + amount("shipping_fee_platform_discount")
    total = amount("total_amount") + platform
    return {
        "total": total,
        "total tax": from_lines("product_tax", lambda u: sum((t[2] for t in u.taxes), Decimal(0)))
        + amount("shipping_fee_tax"),
        "discounts": from_lines("seller_discount", lambda u: u.seller_discount),
        "outstanding": total if payload.get("is_cod") is True else Decimal(0),
    }


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

