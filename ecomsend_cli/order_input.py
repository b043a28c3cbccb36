"""A TikTok order as Shopify's ``OrderCreateOrderInput``, faithful to the cent (DESIGN §5.7, §5.8).

The rules of §5.7 and §5.8 live here and only here:

* **Kinds** (§5.8, :func:`skip_reason`): TikTok-fulfilled orders are skipped
  unless ``sync.fbt_location_id`` is set (then created already fulfilled from
  that location); sample orders follow ``sync.samples``; an order whose lines
  are all cancelled is skipped.
* **Lines**: one TikTok line item is one unit. Units are priced at
  ``original_price`` (Shopify's price is the price before discounts); a
  combined listing's prices, discounts and taxes are shared over its component
  units by largest remainder. Units of one variant at one price become one
  Shopify line with their quantity and their ``item_tax`` as tax lines.
  Lines TikTok cancelled are left out.
* **Discounts**: the seller-funded item discount is one fixed discount code
  (``TIKTOK-SELLER-DISCOUNT``); the platform-funded discounts (items and
  shipping), which TikTok pays the seller, are a second SALE transaction.
* **Shipping and fees**: one shipping line at ``original_shipping_fee −
  shipping_fee_seller_discount`` (the co-funded one included) taxed ``shipping_fee_tax``; each buyer-paid
  fee TikTok counts into ``total_amount`` its own shipping line.
* **Taxes**: added or included, decided from the numbers (``sub_total +
  shipping_fee + fees + tax = total_amount`` → added; without ``tax`` →
  included). If neither holds to the cent, or the lines do not make up the
  payment's figures, the order is ``failed`` with both sums: never a silently
  wrong order.
* **Currency**: ``currency`` is the shop's, ``presentmentCurrency`` TikTok's;
  shop money is converted with ``sync.exchange_rates`` when they differ.
* **People**: email, shipping address (province from ISO 3166-2 codes, the
  city level the region uses, never a US county), phone, the buyer's message
  as the note, the TikTok order id and shop as custom attributes.

The result satisfies the §5.7 invariant: Shopify's total = ``total_amount`` +
platform-funded discounts, outstanding 0 (but COD), total tax =
``product_tax + shipping_fee_tax``, Σ quantities = units not cancelled.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .config import SyncConfig
from .errors import EcomsendError
from .money import AmountError, check_currency, convert, parse_amount, split, text

SELLER_DISCOUNT_CODE = "TIKTOK-SELLER-DISCOUNT"
GATEWAY = "TikTok Shop"
PLATFORM_GATEWAY = "TikTok Shop platform discount"
FBT = "FULFILLMENT_BY_TIKTOK"
# Buyer-paid fees TikTok counts into total_amount, each its own shipping line (§5.7).
FEES = OrderedDict([
    ("retail_delivery_fee", "Retail delivery fee"),
    ("small_order_fee", "Small order fee"),
    ("buyer_service_fee", "Buyer service fee"),
    ("handling_fee", "Handling fee"),
    ("item_insurance_fee", "Item insurance fee"),
    ("shipping_insurance_fee", "Shipping insurance fee"),
])
ZERO = Decimal(0)
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


class OrderRefused(EcomsendError):
    """This order cannot (``failed``) or must not (``skipped``) be created; ``state`` says which."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state


@dataclass(frozen=True)
class Shop:
    """What the order input needs to know of the Shopify shop (read once a run)."""

    currency: str


@dataclass
class Unit:
    """One unit of one TikTok SKU, as the order sold it."""

    sku_id: str
    original: Decimal
    seller_discount: Decimal
    platform_discount: Decimal
    taxes: list[tuple[str, Decimal, Decimal]] = field(default_factory=list)  # (title, rate, amount)


def skip_reason(order: dict, config: SyncConfig) -> str | None:
    """Why an order of this kind is not created in Shopify at all (§5.8), or None."""
    if order.get("fulfillment_type") == FBT and not config.fbt_location_id:
        return ("fulfilled by TikTok (FBT): it ships from TikTok's warehouse, not yours, so Shopify's "
                "stock is not touched; set sync.fbt_location_id to record such orders in Shopify")
    if order.get("is_sample_order") is True and config.samples == "skip":
        return "a TikTok sample order, and sync.samples is skip"
    lines = [x for x in order.get("line_items") or [] if isinstance(x, dict)]
    if lines and all(_cancelled(x) for x in lines):
        return "every line was cancelled on TikTok"
    return None


def build_order_input(order: dict, links: dict[str, str], config: SyncConfig, shop: Shop,
                      *, order_id: str, shop_label: str = "") -> dict:
    """``OrderCreateOrderInput`` for a TikTok order whose SKUs are all linked (§5.3, §5.7, §5.8).

    Raises :class:`OrderRefused` when it must not be created (``skipped``) or
    cannot be created faithfully (``failed``, with the reason and the sums).
    """
    reason = skip_reason(order, config)
    if reason:
        raise OrderRefused("skipped", reason)
    payment = order.get("payment") or {}
    currency = check_currency(payment.get("currency") or "USD")

    def amount(source: dict, name: str, where: str) -> Decimal:
        value = source.get(name)
        return ZERO if value in (None, "") else parse_amount(value, currency, field=f"{where}.{name}")

    try:
        units = order_units(order, currency, amount)
        pay = {name: amount(payment, name, "payment") for name in (
            "sub_total", "seller_discount", "platform_discount", "original_shipping_fee", "shipping_fee",
            "shipping_fee_seller_discount", "shipping_fee_cofunded_discount", "shipping_fee_platform_discount",
            "shipping_fee_tax", "product_tax", "tax", "total_amount", *FEES)}
    except AmountError as exc:  # checked at the door already; a changed config may still meet one
        raise OrderRefused("failed", f"TikTok's amounts cannot be used: {exc}") from None
    if payment.get("total_amount") in (None, ""):
        raise OrderRefused("failed", "TikTok's payment has no total_amount")
    # Co-Funded Free Shipping (US, UK): the seller's shipping discount comes here instead of
    # shipping_fee_seller_discount (then 0); TikTok may reimburse part of it later, but the
    # buyer was charged the shipping net of it, like any seller discount on shipping.
    pay["shipping_fee_seller_discount"] += pay.pop("shipping_fee_cofunded_discount")

    sums = _check_sums(units, pay, payment, currency)
    rate = _rate(currency, shop.currency, config)

    def to_shop(value: Decimal) -> Decimal:
        return value if rate is None else convert(value, rate, shop.currency)

    def money(value: Decimal, shop_value: Decimal | None = None) -> dict:
        """A MoneyBag: TikTok's amount as presentment money, converted (or given) as shop money."""
        presented = {"amount": text(value, currency), "currencyCode": currency}
        theirs = to_shop(value) if shop_value is None else shop_value
        return {"shopMoney": {"amount": text(theirs, shop.currency), "currencyCode": shop.currency},
                "presentmentMoney": presented}

    line_items = _line_items(units, links, money)
    shipping_lines = _shipping_lines(order, pay, money)
    data: dict[str, Any] = {
        "currency": shop.currency,
        "presentmentCurrency": currency,
        "lineItems": line_items,
        "taxesIncluded": sums.taxes_included,
        "shippingLines": shipping_lines,
        "sourceName": config.source_name,
        "sourceIdentifier": order_id,
        "tags": _tags(order, config),
        "customAttributes": [{"key": "TikTok order id", "value": order_id}]
        + ([{"key": "TikTok shop", "value": shop_label}] if shop_label else []),
    }
    # Shop money is converted part by part; the parts that must add up in shop
    # money too (the discount within its lines, the payments to the total) are
    # derived from the converted parts, so rounding never leaves a cent
    # outstanding or a discount larger than its lines.
    lines_shop = sum((_shop(x["priceSet"]) * x["quantity"] for x in line_items), ZERO)
    seller_shop = min(to_shop(sums.seller), lines_shop)
    taxes_shop = sum((_shop(t["priceSet"]) for x in [*line_items, *shipping_lines] for t in x.get("taxLines", [])),
                     ZERO)
    total_shop = lines_shop - seller_shop + sum((_shop(x["priceSet"]) for x in shipping_lines), ZERO) \
        + (ZERO if sums.taxes_included else taxes_shop)
    if sums.seller > 0:
        data["discountCode"] = {"itemFixedDiscountCode": {"code": SELLER_DISCOUNT_CODE,
                                                          "amountSet": money(sums.seller, seller_shop)}}
    if order.get("is_cod") is True:
        data["financialStatus"] = "PENDING"  # the buyer pays the carrier: nothing received yet
    else:
        data["financialStatus"] = "PAID"
        platform_shop = min(to_shop(sums.platform), total_shop)
        data["transactions"] = [{"kind": "SALE", "status": "SUCCESS", "gateway": GATEWAY,
                                 "amountSet": money(pay["total_amount"], total_shop - platform_shop)}]
        if sums.platform > 0:  # TikTok pays the seller what its own promotions took off
            data["transactions"].append({"kind": "SALE", "status": "SUCCESS", "gateway": PLATFORM_GATEWAY,
                                         "amountSet": money(sums.platform, platform_shop)})
    if order.get("fulfillment_type") == FBT and config.fbt_location_id:
        data["fulfillment"] = {"locationId": config.fbt_location_id, "notifyCustomer": False}
    note = _note(order)
    if note:
        data["note"] = note
    email = order.get("buyer_email")
    if isinstance(email, str) and email.strip():
        data["email"] = email.strip()
    create_time = order.get("create_time")
    if isinstance(create_time, int) and create_time > 0:
        data["processedAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(create_time))
    address = shipping_address(order.get("recipient_address") or {})
    if address:
        data["shippingAddress"] = address
        # The order's phone becomes the new customer's, which Shopify keeps in E.164 and
        # unique: TikTok's masked numbers ("(+1)213-***-1234") stay on the address only.
        if _E164.fullmatch(address.get("phone", "")):
            data["phone"] = address["phone"]
    return data


# --- units and lines ----------------------------------------------------------------------------


def line_map(order: dict, links: dict[str, str]) -> dict[str, list[str]]:
    """Each live TikTok line item → the variant GIDs it needs (a combined listing: its parts × counts).

    Tracking ships a TikTok line item when Shopify fulfilled all of them (§6b.1);
    a refund finds its Shopify lines through them (§6b.3, §6b.4).
    """
    out: dict[str, list[str]] = {}
    for line in order.get("line_items") or []:
        if not isinstance(line, dict) or _cancelled(line) or not line.get("id"):
            continue
        parts = line.get("combined_listing_skus") or []
        if parts:
            out[str(line["id"])] = [links[str(p["sku_id"]).strip()] for p in parts
                                    for _ in range(int(p.get("sku_count") or 1))]
        else:
            out[str(line["id"])] = [links[str(line["sku_id"]).strip()]]
    return out


def _shop(money_bag: dict) -> Decimal:
    return Decimal(money_bag["shopMoney"]["amount"])


def _cancelled(line: dict) -> bool:
    return str(line.get("display_status") or "").upper() == "CANCELLED"


def order_units(order: dict, currency: str, amount: Any) -> list[Unit]:
    """Every unit of the lines not cancelled; a combined listing shared over its components.

    ``amount(source, name, where)`` reads one amount of ``source`` (checked).
    """
    units: list[Unit] = []
    for n, line in enumerate(order.get("line_items") or []):
        if not isinstance(line, dict) or _cancelled(line):
            continue
        where = f"line_items[{n}]"
        sale = amount(line, "sale_price", where)
        seller = amount(line, "seller_discount", where)
        platform = amount(line, "platform_discount", where)
        original = amount(line, "original_price", where) if line.get("original_price") not in (None, "") \
            else sale + seller + platform
        taxes = [(str(t.get("tax_type") or "Tax"), _rate_of(t), amount(t, "tax_amount", f"{where}.item_tax"))
                 for t in line.get("item_tax") or [] if isinstance(t, dict)]
        parts = line.get("combined_listing_skus") or []
        if not parts:
            units.append(Unit(str(line["sku_id"]).strip(), original, seller, platform, taxes))
            continue
        ids = [str(p["sku_id"]).strip() for p in parts for _ in range(int(p.get("sku_count") or 1))]
        weights = [Decimal(1)] * len(ids)
        shares = {name: split(value, weights, currency) for name, value in
                  (("original", original), ("seller", seller), ("platform", platform))}
        tax_shares = [split(t[2], weights, currency) for t in taxes]
        for i, sku_id in enumerate(ids):
            units.append(Unit(sku_id, shares["original"][i], shares["seller"][i], shares["platform"][i],
                               [(t[0], t[1], tax_shares[k][i]) for k, t in enumerate(taxes)]))
    return units


def _rate_of(tax: dict) -> Decimal:
    try:
        rate = Decimal(str(tax.get("tax_rate") or "0"))
    except ArithmeticError:
        return ZERO
    return rate if rate.is_finite() and 0 <= rate < 10 else ZERO


def _line_items(units: list[Unit], links: dict[str, str], money: Any) -> list[dict]:
    """One Shopify line per (variant, unit price), with the quantity and the summed tax lines."""
    groups: OrderedDict[tuple[str, Decimal], list[Unit]] = OrderedDict()
    for unit in units:
        groups.setdefault((links[unit.sku_id], unit.original), []).append(unit)
    lines = []
    for (variant, price), members in groups.items():
        taxes: OrderedDict[tuple[str, Decimal], Decimal] = OrderedDict()
        for unit in members:
            for title, rate, value in unit.taxes:
                taxes[(title, rate)] = taxes.get((title, rate), ZERO) + value
        line: dict[str, Any] = {"variantId": variant, "quantity": len(members), "priceSet": money(price),
                                "requiresShipping": True}
        if taxes:
            line["taxLines"] = [{"title": title, "rate": str(rate), "priceSet": money(value)}
                                for (title, rate), value in taxes.items()]
        lines.append(line)
    return lines


def _shipping_lines(order: dict, pay: dict[str, Decimal], money: Any) -> list[dict]:
    charged = pay["original_shipping_fee"] - pay["shipping_fee_seller_discount"]
    shipping: dict[str, Any] = {
        "title": str(order.get("delivery_option_name") or "TikTok Shop shipping")[:255],
        "code": "tiktok", "source": "tiktok", "priceSet": money(charged),
    }
    if pay["shipping_fee_tax"] > 0:
        rate = (pay["shipping_fee_tax"] / charged).quantize(Decimal("0.0001")) if charged > 0 else ZERO
        shipping["taxLines"] = [{"title": "Shipping tax", "rate": str(rate),
                                 "priceSet": money(pay["shipping_fee_tax"])}]
    lines = [shipping]
    for name, title in FEES.items():
        if pay[name] > 0:
            lines.append({"title": title, "code": name, "source": "tiktok", "priceSet": money(pay[name])})
    return lines


# --- the sums of §5.7 ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sums:
    taxes_included: bool
    seller: Decimal  # the seller-funded item discount: the discount code
    platform: Decimal  # the platform-funded discounts, items and shipping: TikTok's transaction


def _check_sums(units: list[Unit], pay: dict[str, Decimal], payment: dict, currency: str) -> _Sums:
    """The lines must make up the payment's figures, and the payment must add up to its total."""
    def refuse(what: str, ours: Decimal, theirs: Decimal) -> OrderRefused:
        return OrderRefused("failed", f"amounts do not add up: {what}: {text(ours, currency)} from the lines, "
                                      f"{text(theirs, currency)} in TikTok's payment")

    seller = sum((u.seller_discount for u in units), ZERO)
    platform_items = sum((u.platform_discount for u in units), ZERO)
    originals = sum((u.original for u in units), ZERO)
    item_tax = sum((t[2] for u in units for t in u.taxes), ZERO)
    sub_total = originals - seller - platform_items
    if payment.get("sub_total") not in (None, "") and sub_total != pay["sub_total"]:
        raise refuse("item prices less discounts (sub_total)", sub_total, pay["sub_total"])
    for name, ours in (("seller_discount", seller), ("platform_discount", platform_items),
                       ("product_tax", item_tax)):
        if payment.get(name) not in (None, "") and ours != pay[name]:
            raise refuse(name, ours, pay[name])
    shipping = pay["original_shipping_fee"] - pay["shipping_fee_seller_discount"] \
        - pay["shipping_fee_platform_discount"]
    if payment.get("original_shipping_fee") in (None, ""):
        pay["original_shipping_fee"] = pay["shipping_fee"] + pay["shipping_fee_seller_discount"] \
            + pay["shipping_fee_platform_discount"]
    elif shipping != pay["shipping_fee"]:
        raise refuse("shipping fee less its discounts", shipping, pay["shipping_fee"])
    tax = item_tax + pay["shipping_fee_tax"]
    if payment.get("tax") not in (None, "") and tax != pay["tax"]:
        raise refuse("product_tax + shipping_fee_tax (tax)", tax, pay["tax"])
    fees = sum((pay[name] for name in FEES), ZERO)
    before_tax = sub_total + pay["shipping_fee"] + fees
    if before_tax + tax == pay["total_amount"]:
        included = False
    elif before_tax == pay["total_amount"]:
        included = True
    else:
        raise OrderRefused("failed", (
            f"amounts do not add up: sub_total + shipping_fee + fees = {text(before_tax, currency)}, "
            f"+ tax = {text(before_tax + tax, currency)}, but total_amount is "
            f"{text(pay['total_amount'], currency)} {currency}"))
    return _Sums(included, seller, platform_items + pay["shipping_fee_platform_discount"])


def _rate(currency: str, shop_currency: str, config: SyncConfig) -> Decimal | None:
    """None when the currencies are one; the shop-currency value of one unit otherwise."""
    if currency == shop_currency:
        return None
    rate = config.exchange_rates.get(currency)
    if rate is None:
        raise OrderRefused("failed", (
            f"the order is in {currency} and the shop in {shop_currency}, with no rate: set "
            f"sync.exchange_rates.{currency} (how many {shop_currency} one {currency} is worth)"))
    return Decimal(str(rate))


# --- people and kinds ------------------------------------------------------------------------


def _tags(order: dict, config: SyncConfig) -> list[str]:
    tags = list(config.tags)
    if order.get("is_sample_order") is True:
        tags.append("tiktok-sample")
    if order.get("is_replacement_order") is True:
        tags.append("tiktok-replacement")
    if order.get("fulfillment_type") == FBT:
        tags.append("tiktok-fbt")
    return tags


def _note(order: dict) -> str:
    parts = []
    message = order.get("buyer_message")
    if isinstance(message, str) and message.strip():
        parts.append(f"Buyer's message: {message.strip()}")
    if order.get("is_replacement_order") is True:
        replaced = order.get("replaced_order_id")
        parts.append(f"Replacement for TikTok order {replaced}" if replaced else "A TikTok replacement order")
    return "\n".join(parts)[:5000]


_ISO_3166_2 = re.compile(r"([A-Z]{2})-([A-Z0-9]{1,3})")
# Countries whose Shopify zone code is the whole ISO 3166-2 code (Tōkyō JP-13, Bangkok
# TH-10: Shopify/worldwide data/regions/*.yml); elsewhere it is the part after the dash.
_ZONE_CODE_IS_ISO = frozenset({"JP", "TH"})
_CITY_LABELS = ("post town", "city", "town", "municipality", "suburb")


def shipping_address(addr: dict) -> dict:
    """Shopify's ``MailingAddressInput`` from TikTok's ``recipient_address`` (§5.7)."""
    if not isinstance(addr, dict):
        return {}
    levels = [d for d in addr.get("district_info") or [] if isinstance(d, dict)]
    country = str(addr.get("region_code") or "").strip().upper()
    first, last = str(addr.get("first_name") or ""), str(addr.get("last_name") or "")
    if not (first or last) and addr.get("name"):
        first, _, last = str(addr["name"]).strip().partition(" ")
    out = {
        "firstName": first,
        "lastName": last,
        "address1": str(addr.get("address_line1") or addr.get("address_detail") or ""),
        "address2": str(addr.get("address_line2") or ""),
        # TikTok gives UK addresses their post town as its own field too (§5.7: UK post town).
        "city": str(addr.get("post_town") or "").strip() or _city(levels, country),
        "provinceCode": _province(levels, country),
        "zip": str(addr.get("postal_code") or ""),
        "countryCode": country if re.fullmatch(r"[A-Z]{2}", country) else "",
        "phone": str(addr.get("phone_number") or ""),
    }
    return {k: v.strip() for k, v in out.items() if isinstance(v, str) and v.strip()}


def _level(levels: list[dict], code: str) -> dict | None:
    return next((d for d in levels if str(d.get("address_level") or "").upper() == code), None)


def _province(levels: list[dict], country: str) -> str:
    """The ISO 3166-2 subdivision code TikTok gives (``US-CA`` → ``CA``), else a short L1 code."""
    for d in levels:
        match = _ISO_3166_2.fullmatch(str(d.get("iso_code") or "").strip().upper())
        if match and (not country or match.group(1) == country):
            return match.group(0) if match.group(1) in _ZONE_CODE_IS_ISO else match.group(2)
    first = _level(levels, "L1")
    name = str((first or {}).get("address_name") or "").strip()
    return name.upper() if re.fullmatch(r"[A-Za-z]{2,3}", name) else ""


def _city(levels: list[dict], country: str) -> str:
    """The level the region uses as its city: named so (city, post town, town), never a county."""
    for label in _CITY_LABELS:
        for d in levels:
            if label in str(d.get("address_level_name") or "").lower():
                return str(d.get("address_name") or "")
    # No level is named: the usual depth (US: L3, as L2 is the county).
    for code in (("L3",) if country == "US" else ("L3", "L2")):
        d = _level(levels, code)
        if d and "county" not in str(d.get("address_level_name") or "").lower():
            return str(d.get("address_name") or "")
    return ""
