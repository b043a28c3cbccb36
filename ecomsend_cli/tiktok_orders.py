"""TikTok order payloads (DESIGN §5.1, §5.2): checked at the door, then resolved.

A TikTok order is outside data: it is checked field by field before anything
uses it. :func:`parse_order` returns either a :class:`~ecomsend_cli.models.PulledOrder`
(the order as we understand it: status, times, the SKUs seen in it, and the
items it needs after resolution) or an :class:`~ecomsend_cli.models.InvalidOrder`
naming what is wrong — no id, no line items, an amount that is not a plain
number in the currency's minor units, a count that is not a whole number, a
time that is not a Unix time, a field of the wrong type. An invalid order is
stored as ``invalid``, never sent, and never stops the rest of its page.

**Resolve** (§5.2): TikTok sends one line item per unit, so the quantity of a
SKU is the number of its line items. A line with ``combined_listing_skus``
needs each component SKU × its ``sku_count`` instead of its own SKU.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from decimal import ROUND_DOWN, Decimal
from typing import Any

from .models import InvalidOrder, OrderItem, PulledOrder, TikTokSku
from .money import AmountError, check_currency, parse_amount

# A payload larger than this is not an order we can trust to store or resend:
# room for MAX_LINE_ITEMS lines at TikTok's ~1-2 KB a line, and then some.
MAX_PAYLOAD_BYTES = 32_000_000
MAX_LINE_ITEMS = 10_000  # one per unit; no real order is larger
MAX_SKU_COUNT = 10_000
MAX_TEXT = 2_000  # titles, SKU names, seller SKUs: longer text is cut, not refused
_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
_MONEY_FIELDS_LINE = ("sale_price", "original_price", "seller_discount", "platform_discount")
_MONEY_FIELDS_PAYMENT = (
    "total_amount", "sub_total", "shipping_fee", "original_shipping_fee", "original_total_product_price",
    "seller_discount", "platform_discount", "shipping_fee_seller_discount", "shipping_fee_cofunded_discount",
    "shipping_fee_platform_discount", "shipping_fee_tax", "product_tax", "tax", "retail_delivery_fee",
    "small_order_fee", "buyer_service_fee", "handling_fee", "item_insurance_fee", "shipping_insurance_fee",
)


class _Invalid(ValueError):
    """Raised inside the checks; becomes an InvalidOrder."""


def order_id_of(payload: Any) -> str | None:
    """The order's id if it has a usable one (used to report an otherwise broken order)."""
    if not isinstance(payload, dict):
        return None
    value = payload.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text if _ID.fullmatch(text) else None


def parse_order(payload: Any) -> PulledOrder | InvalidOrder:
    """A checked TikTok order payload, or the reason it cannot be used."""
    order_id = order_id_of(payload)
    try:
        if not isinstance(payload, dict):
            raise _Invalid(f"the order is {type(payload).__name__}, not an object")
        if order_id is None:
            raise _Invalid("the order has no usable id" if payload.get("id") in (None, "")
                           else f"the order id {_show(payload.get('id'))} is not an id")
        if len(json.dumps(payload, separators=(",", ":"))) > MAX_PAYLOAD_BYTES:
            raise _Invalid(f"the order is larger than {MAX_PAYLOAD_BYTES // 1_000_000} MB")
        status = payload.get("status")
        if not isinstance(status, str) or not status.strip():
            raise _Invalid(f"status is {_show(status)}, not a TikTok order status")
        update_time = _unix_time(payload, "update_time", required=True)
        create_time = _unix_time(payload, "create_time", required=False)
        payment = payload.get("payment")
        if payment is None:
            payment = {}
        if not isinstance(payment, dict):
            raise _Invalid(f"payment is {type(payment).__name__}, not an object")
        currency = _currency(payment.get("currency"), "payment.currency", default="USD")
        for name in _MONEY_FIELDS_PAYMENT:
            if payment.get(name) not in (None, ""):
                _amount(payment[name], currency, f"payment.{name}")
        items, skus = _resolve(payload, currency)
    except _Invalid as exc:
        update = payload.get("update_time") if isinstance(payload, dict) else None
        keep = isinstance(payload, dict) and len(json.dumps(payload)) <= MAX_PAYLOAD_BYTES
        return InvalidOrder(order_id, str(exc), payload if keep else None,
                            update if isinstance(update, int) and not isinstance(update, bool) else None)
    return PulledOrder(
        tiktok_order_id=order_id,
        tiktok_status=status.strip(),
        create_time=create_time,
        update_time=update_time,
        currency=currency,
        total_amount=str(payment.get("total_amount") or "0"),
        payload=payload,
        items=items,
        skus=skus,
    )


def _resolve(order: dict, currency: str) -> tuple[tuple[OrderItem, ...], tuple[TikTokSku, ...]]:
    """The SKUs an order needs, with quantities, and the TikTok SKUs seen in it (§5.2).

    A combined listing's price is shared evenly over its component units.
    """
    lines = order.get("line_items")
    if not isinstance(lines, list) or not lines:
        raise _Invalid("the order has no line items" if not lines
                       else f"line_items is {type(lines).__name__}, not a list")
    if len(lines) > MAX_LINE_ITEMS:
        raise _Invalid(f"the order has {len(lines)} line items, more than {MAX_LINE_ITEMS}")
    quantities: OrderedDict[str, list] = OrderedDict()  # sku_id -> [qty, total price, title]
    skus: dict[str, TikTokSku] = {}
    for n, line in enumerate(lines):
        where = f"line_items[{n}]"
        if not isinstance(line, dict):
            raise _Invalid(f"{where} is {type(line).__name__}, not an object")
        line_currency = _currency(line.get("currency"), f"{where}.currency", default=currency)
        if line_currency != currency:
            raise _Invalid(f"{where}.currency {line_currency} differs from the order's {currency}")
        for name in _MONEY_FIELDS_LINE:
            if line.get(name) not in (None, ""):
                _amount(line[name], currency, f"{where}.{name}")
        price = _amount(line.get("sale_price") or "0", currency, f"{where}.sale_price")
        title = _text(line.get("product_name"))
        components = line.get("combined_listing_skus") or []
        if not isinstance(components, list):
            raise _Invalid(f"{where}.combined_listing_skus is {type(components).__name__}, not a list")
        if components:
            counted = []
            for m, part in enumerate(components):
                at = f"{where}.combined_listing_skus[{m}]"
                if not isinstance(part, dict):
                    raise _Invalid(f"{at} is {type(part).__name__}, not an object")
                counted.append((part, _sku_id(part.get("sku_id"), f"{at}.sku_id"),
                                _count(part.get("sku_count", 1), f"{at}.sku_count")))
            units = sum(c for _, _, c in counted)
            for part, sku_id, count in counted:
                entry = quantities.setdefault(sku_id, [0, Decimal(0), title])
                entry[0] += count
                entry[1] += price * count / units
                skus.setdefault(sku_id, TikTokSku(
                    sku_id=sku_id, product_id=_text(part.get("product_id")), product_title=title,
                    sku_name=f"{_text(line.get('sku_name'))} (combined listing part)".strip(),
                    seller_sku=_text(part.get("seller_sku")),
                ))
            continue
        sku_id = _sku_id(line.get("sku_id"), f"{where}.sku_id")
        entry = quantities.setdefault(sku_id, [0, Decimal(0), title])
        entry[0] += 1
        entry[1] += price
        skus[sku_id] = TikTokSku(
            sku_id=sku_id, product_id=_text(line.get("product_id")), product_title=title,
            sku_name=_text(line.get("sku_name")), seller_sku=_text(line.get("seller_sku")),
        )
    items = tuple(
        OrderItem(sku_id, qty, _unit_price(total, qty), title)
        for sku_id, (qty, total, title) in quantities.items()
    )
    return items, tuple(skus.values())


# --- field checks -------------------------------------------------------------------------------


def _unix_time(payload: dict, name: str, *, required: bool) -> int:
    value = payload.get(name)
    if value in (None, "") and not required:
        return 0
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**41:
        raise _Invalid(f"{name} is {_show(value)}, not a Unix time")
    return value


def _amount(value: Any, currency: str, field: str) -> Decimal:
    try:
        return parse_amount(value, currency, field=field)
    except AmountError as exc:
        raise _Invalid(str(exc)) from None


def _currency(value: Any, field: str, *, default: str) -> str:
    if value in (None, ""):
        return default
    try:
        return check_currency(value)
    except AmountError:
        raise _Invalid(f"{field} is {_show(value)}, not a three-letter currency code") from None


def _sku_id(value: Any, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Invalid(f"{field} is {_show(value)}, not a SKU id")
    text = str(value).strip()
    if not _ID.fullmatch(text):
        raise _Invalid(f"{field} is {_show(value)}, not a SKU id")
    return text


def _count(value: Any, field: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SKU_COUNT:
        raise _Invalid(f"{field} is {_show(value)}, not a whole number from 1 to {MAX_SKU_COUNT}")
    return value


def _text(value: Any) -> str:
    """A display field (title, name, seller SKU): any scalar as text, cut to a sane length."""
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)[:MAX_TEXT]


def _unit_price(total: Decimal, quantity: int) -> str:
    return str((total / quantity).quantize(Decimal("0.01"), rounding=ROUND_DOWN))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
