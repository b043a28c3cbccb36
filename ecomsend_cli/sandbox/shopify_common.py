"""What the two halves of the Shopify simulator share (:mod:`.shopify_sim`, :mod:`.shopify_life`).

GIDs and times as Shopify writes them, amounts as its GraphQL answers them,
and an order's money worked out from what the state file keeps of it (its
``orderCreate`` input, operator edits, cancellation and refunds).
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from .shopify_money import (
    ZERO,
    Bag,
    LineMoney,
    OrderInputError,
    OrderMoney,
    TransactionMoney,
    cancel_money,
    edit_money,
    order_money,
    refund_money,
)


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def parse_gid(value: Any, kind: str | None = None) -> tuple[str, int] | None:
    """``(kind, number)`` of a GID (of ``kind`` when given), or None."""
    match = re.fullmatch(r"gid://shopify/(\w+)/(\d+)", str(value or ""))
    if not match or (kind is not None and match.group(1) != kind):
        return None
    return match.group(1), int(match.group(2))


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).isoformat().replace("+00:00", "Z")


def money_value(amount: Any, currency: str) -> dict[str, str]:
    return {"amount": decimal_text(amount), "currencyCode": currency}


def decimal_text(amount: Any) -> str:
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        value = Decimal(0)
    text = format(value.normalize(), "f")
    return text if "." in text else text + ".0"


def bag(amount: Bag, money: OrderMoney) -> dict[str, Any]:
    """A ``MoneyBag`` of ``amount`` in the order's shop and presentment currencies."""
    return {"shopMoney": money_value(amount.shop, money.currency),
            "presentmentMoney": money_value(amount.presentment, money.presentment_currency)}


def location_node(row: tuple) -> dict[str, Any]:
    lid, name, is_default, online = row
    return {
        "__typename": "Location", "id": gid("Location", lid), "legacyResourceId": str(lid),
        "name": name, "isActive": True, "fulfillsOnlineOrders": bool(online),
        "shipsInventory": bool(is_default), "isFulfillmentService": False,
    }


@lru_cache(maxsize=4096)
def order_money_of(text: str, edits: str | None, cancelled: str | None, currency: str,
                   refunds: str | None = None) -> OrderMoney:
    """An order's money from its stored input, operator edits, refunds and cancellation (pure, so cached).

    ``refunds`` is the order's refunds as :mod:`.shopify_life` stores them
    (a JSON list; each refund's ``lines`` name line places, its
    ``transactions`` their parent's place among the order's transactions).
    """
    order = json.loads(text)
    try:
        money = order_money(order, shop_currency=currency)
    except OrderInputError:
        money = legacy_money(order, currency)
    for edit in json.loads(edits or "[]"):
        price = edit.get("price")
        money = edit_money(
            money, int(edit["line"]), quantity=edit.get("quantity"),
            unit_price=Bag(Decimal(price[0]), Decimal(price[1])) if price else None,
        )
    for refund in json.loads(refunds or "[]"):
        units: dict[int, int] = {}
        for line in refund.get("lines") or []:
            units[int(line["line"])] = units.get(int(line["line"]), 0) + int(line["quantity"])
        shipping = refund.get("shipping") or ["0", "0"]
        money = refund_money(
            money, units=units, shipping=Bag(Decimal(shipping[0]), Decimal(shipping[1])),
            transactions=[TransactionMoney(kind=t["kind"], status=t["status"], gateway=t.get("gateway"),
                                           amount=Bag(Decimal(t["amount"][0]), Decimal(t["amount"][1])),
                                           parent=t.get("parent"))
                          for t in refund.get("transactions") or []],
        )
    return cancel_money(money) if cancelled else money


def legacy_money(order: dict[str, Any], currency: str) -> OrderMoney:
    """The money of an order stored by an older simulator, which checked no amounts: lines only."""
    lines = []
    for index, line in enumerate(order.get("lineItems") or []):
        amount = ((line.get("priceSet") or {}).get("shopMoney") or {}).get("amount") or 0
        try:
            price = Decimal(str(amount))
        except InvalidOperation:
            price = Decimal(0)
        quantity = max(1, int(line.get("quantity") or 1))
        lines.append(LineMoney(index, quantity, quantity, Bag(price, price), ZERO, ()))
    money = OrderMoney(currency, currency, False, tuple(lines), (), (), None,
                       str(order.get("financialStatus") or "PENDING"), ZERO)
    return dataclasses.replace(money, original_total=money.total)
