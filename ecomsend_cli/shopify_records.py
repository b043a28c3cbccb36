"""What Shopify answers to the after-creation calls (DESIGN §6b), checked at the boundary.

The records :class:`~ecomsend_cli.shopify.ShopifyClient` returns for
fulfillments, ``orderCancel``, ``refundCreate``, transactions and refunds,
and the functions that build them from Shopify's answers (and the refund
input from the caller's). A read answered in a shape Shopify does not
document raises :class:`~ecomsend_cli.errors.ApiError` (nothing was
written, a retry is harmless); a bad refund input raises
:class:`~ecomsend_cli.errors.InputError` before anything is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import ApiError, InputError

RESTOCK_TYPES = ("RETURN", "CANCEL", "NO_RESTOCK")


MAX_ID_DIGITS = 20  # Shopify's ids are 64-bit integers: 19 digits at most


def is_gid(value: Any, kind: str) -> bool:
    prefix = f"gid://shopify/{kind}/"
    # ASCII digits only: str.isdigit() also takes "²" or "١", which no Shopify id holds.
    return (isinstance(value, str) and value.startswith(prefix) and value.isascii()
            and len(value) <= len(prefix) + MAX_ID_DIGITS and value[len(prefix):].isdigit())


@dataclass(frozen=True)
class Tracking:
    """One ``trackingInfo`` entry of a fulfillment (Shopify may give several numbers)."""

    company: str | None
    number: str | None
    url: str | None


@dataclass(frozen=True)
class Fulfillment:
    """A Shopify fulfillment (a shipment) of an order.

    ``lines`` are ``(line GID, variant GID or None, quantity)``; None when
    they were not read (a fulfillment the caller said it knows, or one whose
    status is not SUCCESS).
    """

    id: str
    status: str  # SUCCESS, CANCELLED, ERROR, FAILURE, PENDING, OPEN
    created_at: str | None
    updated_at: str | None
    tracking: list[Tracking]
    location_id: str | None
    lines: list[tuple[str, str | None, int]] | None


@dataclass(frozen=True)
class OrderFulfillments:
    """An order as the after-creation phases read it (DESIGN §6b.1, §6b.3).

    ``line_items`` are ``(line GID, variant GID or None, quantity,
    current_quantity)`` — quantity counts refunded and removed units,
    current_quantity does not; None when not asked for.
    """

    order_id: str
    cancelled_at: str | None
    display_fulfillment_status: str  # UNFULFILLED, PARTIALLY_FULFILLED, FULFILLED, RESTOCKED, ...
    line_items: list[tuple[str, str | None, int, int]] | None
    fulfillments: list[Fulfillment]


@dataclass(frozen=True)
class CancelResult:
    """The answer to ``orderCancel``: a job, "already cancelled", or Shopify's userErrors.

    A job is not the cancellation: Shopify runs it later, and a job that fails
    is not reported in API 2026-07 (``Job.done`` only says it ran). Confirm
    by reading the order's ``cancelledAt``.
    """

    job_id: str | None
    job_done: bool = False
    already_cancelled: bool = False
    user_errors: list[dict] = field(default_factory=list)  # each {field, message, code}

    @property
    def ok(self) -> bool:
        """The cancellation is queued or was done before."""
        return self.job_id is not None or self.already_cancelled


@dataclass(frozen=True)
class RefundResult:
    """The answer to ``refundCreate``: the refund (the same one for a repeated key) or userErrors."""

    refund_id: str | None
    created_at: str | None = None
    total_refunded: Decimal | None = None  # shop money
    currency: str | None = None
    user_errors: list[dict] = field(default_factory=list)  # each {field, message}

    @property
    def ok(self) -> bool:
        return self.refund_id is not None and not self.user_errors


# --- the catalog: each record checked, an unusable one left out with its reason ----------------

MAX_CATALOG_TEXT = 1000  # characters: far beyond any real title or SKU, a bound on what is stored


class RecordRefused(ValueError):
    """A catalog record not shaped as documented: left out, with this reason."""


class Refusals:
    """The records a catalog read left out: how many, and the first few reasons (bounded)."""

    KEPT = 5

    def __init__(self) -> None:
        self.count = 0
        self.examples: list[str] = []

    def add(self, reason: str) -> None:
        self.count += 1
        if len(self.examples) < self.KEPT:
            # Bounded here, whatever the reason quotes: an id's digits have no length bound.
            self.examples.append(_clip(reason, 200))


def catalog_product(node: Any) -> tuple[str, str, str, str | None]:
    """``(id, title, status, updatedAt)`` of a product record. Raises RecordRefused."""
    pid = node.get("id") if type(node) is dict else None
    if not is_gid(pid, "Product"):
        raise RecordRefused(f"a product record without a Product id: {_sample(node)}")
    title, status, updated = (_text(node, key, pid) for key in ("title", "status", "updatedAt"))
    return pid, title or "", status or "", updated


def _text(node: dict, key: str, gid: str) -> str | None:
    value = node.get(key)
    if value is not None and (type(value) is not str or len(value) > MAX_CATALOG_TEXT):
        raise _not_text("product", gid, key)
    return value


def catalog_variant(node: Any, product: tuple) -> tuple:
    """A variant record as a row in ``Variant``'s field order, joined to ``product`` (as
    :func:`catalog_product` gives it). Raises RecordRefused.

    A full refresh reads 250,000s of variants: the checks cost about 1 µs each,
    0.25 s of such a refresh.
    """
    try:
        vid, title, sku = node["id"], node.get("title"), node.get("sku")
        item, quantity = node.get("inventoryItem"), node.get("inventoryQuantity")
    except (TypeError, KeyError, AttributeError):
        raise RecordRefused(f"a variant record without a ProductVariant id: {_sample(node)}") from None
    if not is_gid(vid, "ProductVariant"):
        raise RecordRefused(f"a variant record without a ProductVariant id: {_sample(node)}")
    if title is None:
        title = ""
    elif type(title) is not str or len(title) > MAX_CATALOG_TEXT:
        raise _not_text("variant", vid, "title")
    if sku is None:
        sku = ""
    elif type(sku) is not str or len(sku) > MAX_CATALOG_TEXT:
        raise _not_text("variant", vid, "sku")
    if item is not None:
        item = item.get("id") if type(item) is dict else False
        if item is not None and not is_gid(item, "InventoryItem"):
            raise RecordRefused(f"variant {vid!r} has an inventoryItem without an InventoryItem id")
    if quantity is not None and (type(quantity) is not int or not -10**12 < quantity < 10**12):
        raise RecordRefused(f"variant {vid!r} has an inventoryQuantity that is not a whole number")
    return vid, product[0], product[1], title, sku, item, quantity, product[2], product[3]


def _not_text(what: str, gid: str, key: str) -> RecordRefused:
    return RecordRefused(f"{what} {gid!r} has a {key} that is not text of at most {MAX_CATALOG_TEXT:,} characters")


def _sample(node: Any) -> str:
    """A short, printable look at a refused record."""
    return _clip(repr(node), 80)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


# orderCreate's lines are read leniently: the writes' callers never see these fail after a
# known success.

_SHAPE_HINT = "run again; if it persists, check shopify.api_version"


def shape_error(what: str) -> ApiError:
    return ApiError(f"Shopify's answer held {what} not shaped as documented", hint=_SHAPE_HINT)


def optional_str(value: Any, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise shape_error(what)


def count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise shape_error(what)
    return value


def variant_id(line: dict, what: str) -> str | None:
    variant = line.get("variant")
    if variant is None:
        return None  # a custom line, or a variant deleted since
    if not isinstance(variant, dict) or not is_gid(variant.get("id"), "ProductVariant"):
        raise shape_error(what)
    return variant["id"]


def created_lines(connection: Any) -> tuple[list[tuple[str, str | None, int]], bool]:
    """orderCreate's line items, and whether they are all there (never raises: the order exists)."""
    try:
        nodes, cursor = connection_page(connection, "order line items", cursor_needed=False)
        lines = []
        for node in nodes:
            if not isinstance(node, dict) or not is_gid(node.get("id"), "LineItem"):
                raise shape_error("order line items")
            lines.append((node["id"], variant_id(node, "order line items"),
                          count(node.get("quantity"), "order line items")))
    except ApiError:
        return [], False
    return lines, cursor is None


def connection_page(connection: Any, what: str, *, cursor_needed: bool = True,
                    after: str | None = None) -> tuple[list, str | None]:
    """A connection's nodes and the cursor of the next page (None: no more). ``after``: the
    cursor this page was asked with; a next cursor equal to it would ask for the same page
    for ever, and is a shape error."""
    if not isinstance(connection, dict) or not isinstance(connection.get("nodes"), list):
        raise shape_error(what)
    info = connection.get("pageInfo") or {}
    if not isinstance(info, dict):
        raise shape_error(what)
    if info.get("hasNextPage") is not True:
        return connection["nodes"], None
    cursor = info.get("endCursor")
    if not cursor_needed:
        return connection["nodes"], "more"
    if not isinstance(cursor, str) or not cursor or cursor == after:
        raise shape_error(what)
    return connection["nodes"], cursor


def order_line(node: Any) -> tuple[str, str | None, int, int]:
    if not isinstance(node, dict) or not is_gid(node.get("id"), "LineItem"):
        raise shape_error("order line items")
    return (node["id"], variant_id(node, "order line items"), count(node.get("quantity"), "order line items"),
            count(node.get("currentQuantity"), "order line items"))


def fulfillment_line(node: Any) -> tuple[str, str | None, int]:
    line = node.get("lineItem") if isinstance(node, dict) else None
    if not isinstance(line, dict) or not is_gid(line.get("id"), "LineItem"):
        raise shape_error("fulfillment lines")
    return line["id"], variant_id(line, "fulfillment lines"), count(node.get("quantity"), "fulfillment lines")


def fulfillment_order(node: Any, with_lines: bool) -> dict:
    """One order of an ORDER_FULFILLMENTS read, checked, as a dict (lines of fulfillments not read yet)."""
    if not isinstance(node, dict) or not is_gid(node.get("id"), "Order"):
        raise shape_error("an order")
    status = node.get("displayFulfillmentStatus")
    fulfillments = node.get("fulfillments")
    if not isinstance(status, str) or not isinstance(fulfillments, list):
        raise shape_error("an order's fulfillments")
    order: dict[str, Any] = {
        "id": node["id"], "cancelled_at": optional_str(node.get("cancelledAt"), "cancelledAt"),
        "display_fulfillment_status": status, "line_items": [], "next_lines": None,
        "fulfillments": [fulfillment_record(f) for f in fulfillments],
    }
    if with_lines:
        page, cursor = connection_page(node.get("lineItems"), "order line items")
        order["line_items"] = [order_line(line) for line in page]
        order["next_lines"] = cursor
    return order


def fulfillment_record(node: Any) -> dict:
    if not isinstance(node, dict) or not is_gid(node.get("id"), "Fulfillment"):
        raise shape_error("a fulfillment")
    status = node.get("status")
    tracking = node.get("trackingInfo")
    if not isinstance(status, str) or not isinstance(tracking, list):
        raise shape_error("a fulfillment")
    infos = []
    for info in tracking:
        if not isinstance(info, dict):
            raise shape_error("tracking")
        infos.append(Tracking(company=optional_str(info.get("company"), "tracking"),
                              number=optional_str(info.get("number"), "tracking"),
                              url=optional_str(info.get("url"), "tracking")))
    location = node.get("location")
    if location is not None and (not isinstance(location, dict) or not is_gid(location.get("id"), "Location")):
        raise shape_error("a fulfillment's location")
    return {"id": node["id"], "status": status,
            "created_at": optional_str(node.get("createdAt"), "createdAt"),
            "updated_at": optional_str(node.get("updatedAt"), "updatedAt"),
            "tracking": infos, "location_id": location["id"] if location else None, "lines": None}


def user_errors(errors: Any, *, coded: bool = False) -> list[dict] | None:
    """Well-formed userErrors as ``[{field, message(, code)}]``; None when they are not well formed."""
    if not isinstance(errors, list) or not all(
        isinstance(e, dict) and isinstance(e.get("message"), str) and e["message"].strip() for e in errors
    ):
        return None
    out = []
    for e in errors[:20]:
        error = {"field": e.get("field") if isinstance(e.get("field"), list) else None,
                 "message": e["message"][:500]}
        if coded:
            error["code"] = e.get("code") if isinstance(e.get("code"), str) else None
        out.append(error)
    return out


def is_job(value: Any) -> bool:
    # Job ids are not numbers (gid://shopify/Job/810c0b1a-d0fe-4ce1-9be0-2c3c781a9787).
    return isinstance(value, str) and re.fullmatch(r"gid://shopify/Job/[A-Za-z0-9-]+", value) is not None


def money_of(bag: Any, side: str) -> tuple[Decimal, str]:
    money = bag.get(side) if isinstance(bag, dict) else None
    if not isinstance(money, dict) or not isinstance(money.get("currencyCode"), str):
        raise shape_error("an amount")
    try:
        amount = Decimal(str(money.get("amount")))
    except InvalidOperation:
        raise shape_error("an amount") from None
    if not amount.is_finite():
        raise shape_error("an amount")
    return amount, money["currencyCode"]


def transaction_record(node: Any) -> dict:
    if not isinstance(node, dict) or not is_gid(node.get("id"), "OrderTransaction"):
        raise shape_error("a transaction")
    parent = node.get("parentTransaction")
    if parent is not None and (not isinstance(parent, dict) or not is_gid(parent.get("id"), "OrderTransaction")):
        raise shape_error("a transaction's parent")
    kind, status = node.get("kind"), node.get("status")
    if not isinstance(kind, str) or not isinstance(status, str):
        raise shape_error("a transaction")
    amount, currency = money_of(node.get("amountSet"), "shopMoney")
    presentment, presentment_currency = money_of(node.get("amountSet"), "presentmentMoney")
    return {"id": node["id"], "kind": kind, "status": status,
            "gateway": optional_str(node.get("gateway"), "a transaction's gateway"),
            "parent_id": parent["id"] if parent else None, "amount": amount, "currency": currency,
            "presentment_amount": presentment, "presentment_currency": presentment_currency}


def refund_record(node: Any) -> dict:
    if not isinstance(node, dict) or not is_gid(node.get("id"), "Refund"):
        raise shape_error("a refund")
    total, currency = money_of(node.get("totalRefundedSet"), "shopMoney")
    lines_page, _ = connection_page(node.get("refundLineItems"), "refund lines", cursor_needed=False)
    transactions_page, _ = connection_page(node.get("transactions"), "refund transactions", cursor_needed=False)
    lines = []
    for item in lines_page:
        line = item.get("lineItem") if isinstance(item, dict) else None
        restock = item.get("restockType") if isinstance(item, dict) else None
        location = item.get("location") if isinstance(item, dict) else None
        if not isinstance(line, dict) or not is_gid(line.get("id"), "LineItem") or not isinstance(restock, str):
            raise shape_error("refund lines")
        if location is not None and (not isinstance(location, dict) or not is_gid(location.get("id"), "Location")):
            raise shape_error("refund lines")
        lines.append((line["id"], count(item.get("quantity"), "refund lines"), restock,
                      location["id"] if location else None))
    return {"id": node["id"], "created_at": optional_str(node.get("createdAt"), "createdAt"),
            "note": optional_str(node.get("note"), "a refund's note"), "total_refunded": total,
            "currency": currency, "line_items": lines,
            "transactions": [transaction_record(t) for t in transactions_page]}


def money_text(value: Any, what: str) -> str:
    """An amount for Shopify's Money scalar: a finite, non-negative decimal, as text."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InputError(f"{what} {value!r} is not an amount") from None
    if not amount.is_finite() or amount < 0:
        raise InputError(f"{what} {value!r} is not a non-negative amount")
    return format(amount, "f")


def refund_line_input(item: Any) -> dict:
    if not isinstance(item, tuple | list) or len(item) not in (3, 4):
        raise InputError(f"refund line {item!r} is not (line id, quantity, restock type[, location id])")
    line_id, quantity, restock = item[0], item[1], item[2]
    if not is_gid(line_id, "LineItem"):
        raise InputError(f"{line_id!r} is not a Shopify line item id")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise InputError(f"refund quantity {quantity!r} of {line_id} is not a positive whole number")
    if restock not in RESTOCK_TYPES:
        raise InputError(f"unknown restock type {restock!r}", hint=f"use one of {', '.join(RESTOCK_TYPES)}")
    line = {"lineItemId": line_id, "quantity": quantity, "restockType": restock}
    if len(item) == 4 and item[3] is not None:
        if not is_gid(item[3], "Location"):
            raise InputError(f"{item[3]!r} is not a Shopify location id")
        line["locationId"] = item[3]
    return line


def refund_transaction_input(order_id: str, transaction: Any) -> dict:
    if not isinstance(transaction, dict):
        raise InputError(f"refund transaction {transaction!r} is not a dict")
    parent, gateway = transaction.get("parent_id"), transaction.get("gateway")
    if not is_gid(parent, "OrderTransaction"):
        raise InputError(f"refund transaction parent {parent!r} is not a Shopify transaction id",
                         hint="give the SALE it refunds (order_transactions)")
    if not isinstance(gateway, str) or not gateway:
        raise InputError("a refund transaction needs the gateway of its parent")
    amount = money_text(transaction.get("amount"), "refund amount")
    if Decimal(amount) == 0:
        raise InputError("a refund transaction of 0 refunds nothing")
    return {"orderId": order_id, "parentId": parent, "gateway": gateway,
            "kind": transaction.get("kind") or "REFUND", "amount": amount}
