"""The TikTok simulator's orders after creation: shipping, external references, cancellations, returns.

:class:`OrderLife` is the part of :class:`~ecomsend_cli.sandbox.tiktok_sim.TikTokSimulator`
that serves DESIGN §6b's TikTok calls and the operator actions that make an
order's life happen on TikTok (the simulator's module docstring lists the
endpoints, operation names and controls). It keeps its state in the
simulator's SQLite file, beside the orders:

* ``delivery_options`` — each delivery option and the shipping providers it
  accepts (``{id, name, shipping_providers: [{id, name}]}``);
* ``packages`` — which order each package belongs to. The package itself
  lives on the order's lines, as TikTok serves it: ``package_id``,
  ``package_status`` (TO_FULFILL, PROCESSING, FULFILLING, COMPLETED,
  CANCELLED), ``tracking_number``, ``shipping_provider_id``,
  ``shipping_provider_name``, ``rts_time`` (when it shipped); the order
  carries ``packages [{id}]``, ``tracking_number``, ``shipping_provider``,
  ``shipping_provider_id`` and ``rts_time``;
* ``external_orders`` — one reference per (order, platform);
* ``cancellations`` and ``returns`` — the records return_refund search serves.

What TikTok documents is followed (field names, statuses, the Add External
Order References ``errors`` list with its code ``36020001``, the error
``21008106`` "This interface cannot be used in this region or this business
type"). What it does not document is designed here and marked so:

* **error codes** of fulfillment refusals: 21011001 (the order's status does
  not allow shipping), 21011002 (a line that cannot go in the package: not in
  the order, cancelled, already shipped, or already in a package), 21011003
  (the package is not in a state for this call), 21011004 (the provider is
  not offered for the order's delivery option), 21011005 (tracking changed
  more than 72 h after shipping); 36020002 and 36020003 for an unknown
  platform or ``origin_id`` in an external reference. All answer HTTP 400
  with the usual envelope; unknown ids are the common 36009004;
* **statuses**: an order whose live lines are all in shipped packages is
  AWAITING_COLLECTION (packages PROCESSING) until the carrier collects
  (:meth:`OrderLife.update_package` with ``package_status: FULFILLING`` →
  IN_TRANSIT, ``COMPLETED`` → DELIVERED); some shipped, some not:
  PARTIALLY_SHIPPING. Line ``display_status`` follows its package (TO_SHIP,
  SHIPPED, DELIVERED), as the simulator's other status moves do;
* Mark Package As Shipped with no ``order_line_item_ids`` ships every line
  not cancelled and not in a package; a line already in a package (markets
  that get one at order time) is refused: Ship Package ships it. Ship
  Package ships every line of the package, and only as a self-shipment
  (``self_shipment`` required) of an order TikTok does not ship itself
  (``shipping_type: TIKTOK`` or FBT: 21008106);
* an external reference added again for the same platform replaces the
  previous one; adding one does not move the order's ``update_time``;
* refunds: a line's ``refund_amount`` is its ``sale_price`` plus its
  ``item_tax`` where taxes are added to prices (US), its ``sale_price``
  (tax inside, still reported in ``refund_tax``) where they are included
  (VAT), with no shipping; a whole-order cancellation refunds what the
  buyer paid (``payment.total_amount``: ``refund_subtotal`` = ``sub_total``,
  ``refund_shipping_fee`` = ``shipping_fee``, ``refund_tax`` = ``tax``, and
  ``retail_delivery_fee`` where the order has one), and lines cancelled
  before it (never paid) carry a zero refund. Cancelling one line takes its
  amounts out of the order's ``payment``, which covers the live lines.
* cancellations are recorded complete (CANCELLATION_REQUEST_COMPLETE);
  :meth:`OrderLife.set_cancellation_status` and
  :meth:`OrderLife.set_return_status` set any status, including both
  spellings TikTok's docs use (``…_CANCEL`` and ``…_CANCELLED``). A return
  leaves its order's status and ``update_time`` alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from ..money import minor

DISPLAY_STATUS = {
    "UNPAID": "UNPAID",
    "ON_HOLD": "ON_HOLD",
    "AWAITING_SHIPMENT": "TO_SHIP",
    "AWAITING_COLLECTION": "TO_SHIP",
    "PARTIALLY_SHIPPING": "TO_SHIP",
    "IN_TRANSIT": "SHIPPED",
    "DELIVERED": "DELIVERED",
    "COMPLETED": "COMPLETED",
    "CANCELLED": "CANCELLED",
}
PACKAGE_STATUSES = ("TO_FULFILL", "PROCESSING", "FULFILLING", "COMPLETED", "CANCELLED")
SHIPPED = ("PROCESSING", "FULFILLING", "COMPLETED")
# A line's display_status by its package's status (a line in no package: TO_SHIP).
_LINE_DISPLAY = {"TO_FULFILL": "TO_SHIP", "PROCESSING": "TO_SHIP", "FULFILLING": "SHIPPED",
                 "COMPLETED": "DELIVERED"}
UPDATE_WINDOW_S = 72 * 3600
SHIPPABLE = ("AWAITING_SHIPMENT", "PARTIALLY_SHIPPING")
INITIATORS = ("BUYER", "SELLER", "SYSTEM")
CANCEL_STATUSES = ("CANCELLATION_REQUEST_PENDING", "CANCELLATION_REQUEST_SUCCESS", "CANCELLATION_REQUEST_CANCEL",
                   "CANCELLATION_REQUEST_CANCELLED", "CANCELLATION_REQUEST_COMPLETE")
RETURN_TYPES = ("REFUND", "RETURN_AND_REFUND", "REPLACEMENT")
RETURN_STATUSES = (
    "RETURN_OR_REFUND_REQUEST_PENDING", "REFUND_OR_RETURN_REQUEST_REJECT", "AWAITING_BUYER_SHIP",
    "BUYER_SHIPPED_ITEM", "REJECT_RECEIVE_PACKAGE", "RETURN_OR_REFUND_REQUEST_SUCCESS",
    "RETURN_OR_REFUND_REQUEST_CANCEL", "RETURN_OR_REFUND_REQUEST_CANCELLED", "RETURN_OR_REFUND_REQUEST_COMPLETE",
    "REPLACEMENT_REQUEST_PENDING", "REPLACEMENT_REQUEST_REJECT", "REPLACEMENT_REQUEST_REFUND_SUCCESS",
    "REPLACEMENT_REQUEST_CANCEL", "REPLACEMENT_REQUEST_COMPLETE",
)
# A return in one of these no longer holds its lines (another return may take them).
_RETURN_CLOSED = ("REFUND_OR_RETURN_REQUEST_REJECT", "REJECT_RECEIVE_PACKAGE", "RETURN_OR_REFUND_REQUEST_CANCEL",
                  "RETURN_OR_REFUND_REQUEST_CANCELLED", "REPLACEMENT_REQUEST_REJECT", "REPLACEMENT_REQUEST_CANCEL")
EXTERNAL_PLATFORMS = ("SHOPIFY", "WOOCOMMERCE", "MAGENTO", "BIGCOMMERCE", "AMAZON", "COMMERCETOOLS",
                      "ERP_SYSTEM", "OTHER")
MAX_EXTERNAL_ORDERS = 100
MAX_AFTERSALES_PAGE = 50
_FEES = ("retail_delivery_fee", "small_order_fee", "buyer_service_fee", "handling_fee", "item_insurance_fee",
         "shipping_insurance_fee")

CODE_INVALID = 36009004
CODE_BUSINESS_TYPE = 21008106
CODE_ORDER_STATE = 21011001
CODE_LINE = 21011002
CODE_PACKAGE_STATE = 21011003
CODE_PROVIDER = 21011004
CODE_UPDATE_WINDOW = 21011005
CODE_EXTERNAL_ORDER = "36020001"
CODE_EXTERNAL_PLATFORM = "36020002"
CODE_EXTERNAL_LINE = "36020003"

SCHEMA = """
CREATE TABLE IF NOT EXISTS delivery_options (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS packages (id TEXT PRIMARY KEY, order_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS external_orders (
    order_id TEXT NOT NULL, platform TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (order_id, platform));
CREATE TABLE IF NOT EXISTS cancellations (
    id TEXT PRIMARY KEY, order_id TEXT NOT NULL, type TEXT NOT NULL, status TEXT NOT NULL,
    create_time INTEGER NOT NULL, update_time INTEGER NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS cancellations_by_update ON cancellations (update_time, id);
CREATE TABLE IF NOT EXISTS returns (
    id TEXT PRIMARY KEY, order_id TEXT NOT NULL, type TEXT NOT NULL, status TEXT NOT NULL,
    create_time INTEGER NOT NULL, update_time INTEGER NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS returns_by_update ON returns (update_time, id);
"""

# TikTok-like 19-digit ids: a prefix per kind and a counter kept in the state file.
_ID_PREFIX = {"package": "1153", "cancel": "4035", "cancel_line": "4036", "return": "4037", "return_line": "4038"}

_PROVIDERS_PATH = re.compile(r"^/logistics/202309/delivery_options/([^/]+)/shipping_providers$")
_MARK_SHIPPED_PATH = re.compile(r"^/fulfillment/202309/orders/([^/]+)/packages$")
_SHIP_PATH = re.compile(r"^/fulfillment/202309/packages/([^/]+)/ship$")
_SHIPPING_INFO_PATH = re.compile(r"^/fulfillment/202309/packages/([^/]+)/shipping_info/update$")
_EXTERNAL_GET_PATH = re.compile(r"^/order/202406/orders/([^/]+)/external_orders$")
ROUTES: tuple[tuple[str, re.Pattern[str] | str, str], ...] = (
    ("GET", _PROVIDERS_PATH, "shipping_providers.get"),
    ("POST", _MARK_SHIPPED_PATH, "packages.create"),
    ("POST", _SHIP_PATH, "packages.ship"),
    ("POST", _SHIPPING_INFO_PATH, "shipping_info.update"),
    ("POST", "/order/202406/orders/external_orders", "external_orders.add"),
    ("GET", _EXTERNAL_GET_PATH, "external_orders.get"),
    ("POST", "/return_refund/202309/cancellations/search", "cancellations.search"),
    ("POST", "/return_refund/202309/returns/search", "returns.search"),
)
OPS = tuple(op for _, _, op in ROUTES)


class ApiFailure(Exception):
    """An envelope error to answer with."""

    def __init__(self, status: int, code: int | str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def route(method: str, path: str) -> str | None:
    """The operation name of one of this module's API paths, or None."""
    for verb, pattern, op in ROUTES:
        if verb == method and (pattern == path if isinstance(pattern, str) else pattern.match(path)):
            return op
    return None


def _path_id(pattern: re.Pattern[str], path: str) -> str:
    match = pattern.match(path)
    return match.group(1) if match else ""


# -- money --------------------------------------------------------------------------------------

def _dec(value: Any) -> Decimal:
    if value is None or value == "" or isinstance(value, bool):
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)


def _amount(value: Decimal, currency: str) -> str:
    """TikTok's text for an amount: the currency's decimals, a bare ``0`` for nothing."""
    return "0" if value == 0 else str(value.quantize(minor(currency)))


def _line_tax(line: dict[str, Any]) -> Decimal:
    return sum((_dec(t.get("tax_amount")) for t in line.get("item_tax") or [] if isinstance(t, dict)), Decimal(0))


def _currency(order: dict[str, Any]) -> str:
    payment = order.get("payment") or {}
    lines = order.get("line_items") or [{}]
    return str(payment.get("currency") or lines[0].get("currency") or "USD")


def _taxes_added(order: dict[str, Any]) -> bool:
    """Whether the order's taxes come on top of its prices (US) rather than inside them (VAT)."""
    pay = order.get("payment") or {}
    before_tax = _dec(pay.get("sub_total")) + _dec(pay.get("shipping_fee")) + sum(
        (_dec(pay.get(fee)) for fee in _FEES), Decimal(0))
    return _dec(pay.get("tax")) > 0 and before_tax + _dec(pay.get("tax")) == _dec(pay.get("total_amount"))


def _refund(currency: str, subtotal: Decimal, shipping: Decimal, tax: Decimal, added: bool,
            **extra: Decimal) -> dict[str, str]:
    total = subtotal + shipping + (tax if added else 0) + sum(extra.values(), Decimal(0))
    out = {"currency": currency, "refund_total": _amount(total, currency),
           "refund_subtotal": _amount(subtotal, currency), "refund_shipping_fee": _amount(shipping, currency),
           "refund_tax": _amount(tax, currency)}
    out.update({name: _amount(value, currency) for name, value in extra.items()})
    return out


def _line_refund(order: dict[str, Any], line: dict[str, Any], paid: bool = True) -> dict[str, str]:
    currency = _currency(order)
    if not paid:
        return _refund(currency, Decimal(0), Decimal(0), Decimal(0), True)
    return _refund(currency, _dec(line.get("sale_price")), Decimal(0), _line_tax(line), _taxes_added(order))


def _line_summary(line: dict[str, Any]) -> dict[str, Any]:
    keep = ("sku_id", "sku_name", "product_name", "seller_sku")
    return {"order_line_item_id": line["id"], **{k: line[k] for k in keep if k in line}}


class OrderLife:
    """Mixin of :class:`~ecomsend_cli.sandbox.tiktok_sim.TikTokSimulator` (see the module docstring).

    It uses the simulator's ``_db``, ``_db_lock``, ``_write``, ``_now``, ``_meta``,
    ``_body``, ``_encode_token`` and ``_faulty_page``.
    """

    _db: Any
    _db_lock: Any
    _write: Callable[[Callable[[], Any]], Any]
    _now: Callable[[], int]
    _meta: Callable[[str], str | None]
    _body: Callable[[Any], dict[str, Any]]
    _encode_token: Callable[[dict[str, Any]], str]
    _faulty_page: Callable[..., tuple[list[Any], str, int]]

    # -- state ---------------------------------------------------------------------------------
    def _next_id(self, kind: str) -> str:
        key = f"seq_{kind}"
        number = int(self._meta(key) or 0) + 1
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, str(number)))
        return f"{_ID_PREFIX[kind]}{number:015d}"

    def _order_row(self, order_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT data FROM orders WHERE id = ?", (str(order_id),)).fetchone()
        return json.loads(row[0]) if row else None

    def _api_order(self, order_id: str) -> dict[str, Any]:
        order = self._order_row(order_id)
        if order is None:
            raise ApiFailure(400, CODE_INVALID, f"Invalid order_id: order {order_id} does not exist.")
        return order

    def _operator_order(self, order_id: str) -> dict[str, Any]:
        order = self._order_row(order_id)
        if order is None:
            raise KeyError(f"no order {order_id}")
        return order

    def _save_order(self, order: dict[str, Any], *, bump: bool = True) -> None:
        if bump:
            order["update_time"] = max(self._now(), int(order.get("update_time") or 0) + 1)
        self._db.execute("UPDATE orders SET update_time = ?, status = ?, data = ? WHERE id = ?",
                         (int(order["update_time"]), order["status"], json.dumps(order), order["id"]))

    def _index_packages(self, order: dict[str, Any]) -> None:
        """Record which order each package on the order's lines belongs to."""
        for package_id in {str(li["package_id"]) for li in order.get("line_items") or [] if li.get("package_id")}:
            self._db.execute("INSERT OR REPLACE INTO packages (id, order_id) VALUES (?, ?)",
                             (package_id, order["id"]))

    def _store_delivery_options(self, options: list[dict[str, Any]]) -> list[str]:
        ids = []
        for option in options:
            option = json.loads(json.dumps(option))
            if not option.get("id"):
                raise ValueError("every delivery option needs an id")
            option["id"] = str(option["id"])
            providers = option.setdefault("shipping_providers", [])
            if not all(isinstance(p, dict) and p.get("id") and p.get("name") for p in providers):
                raise ValueError("every shipping provider needs an id and a name")
            for provider in providers:
                provider["id"] = str(provider["id"])
            self._db.execute("INSERT OR REPLACE INTO delivery_options (id, data) VALUES (?, ?)",
                             (option["id"], json.dumps(option)))
            ids.append(option["id"])
        return ids

    def _providers_of(self, delivery_option_id: str) -> list[dict[str, Any]] | None:
        row = self._db.execute("SELECT data FROM delivery_options WHERE id = ?",
                               (str(delivery_option_id),)).fetchone()
        return json.loads(row[0])["shipping_providers"] if row else None

    # -- operator controls (methods) ---------------------------------------------------------------
    def add_delivery_options(self, options: list[dict[str, Any]]) -> list[str]:
        """Add or replace delivery options ``{id, name, shipping_providers: [{id, name}]}``."""
        return self._write(lambda: self._store_delivery_options(options))

    def package(self, package_id: str) -> dict[str, Any] | None:
        """A package as its lines tell it: id, order_id, line_item_ids, status, tracking, provider, rts_time."""
        with self._db_lock:
            row = self._db.execute("SELECT order_id FROM packages WHERE id = ?", (str(package_id),)).fetchone()
            order = self._order_row(row[0]) if row else None
        if order is None:
            return None
        return self._package_view(order, str(package_id))

    @staticmethod
    def _package_view(order: dict[str, Any], package_id: str) -> dict[str, Any]:
        lines = [li for li in order.get("line_items") or [] if str(li.get("package_id") or "") == package_id]
        first = lines[0] if lines else {}
        return {
            "id": package_id, "order_id": order["id"], "line_item_ids": [li["id"] for li in lines],
            **{k: first.get(k) for k in ("package_status", "tracking_number", "shipping_provider_id",
                                         "shipping_provider_name", "rts_time")},
        }

    def update_package(self, package_id: str, **changes: Any) -> dict[str, Any]:
        """Move a package on as the carrier or the clock would: ``package_status`` (FULFILLING:
        collected, COMPLETED: delivered, ...) and/or ``rts_time`` (when it shipped, e.g. 73 h
        ago to test the 72 h rule). The order's status follows; its ``update_time`` moves."""
        unknown = set(changes) - {"package_status", "rts_time"}
        if unknown:
            raise ValueError(f"a package change takes package_status and rts_time, not {', '.join(sorted(unknown))}")
        if "package_status" in changes and changes["package_status"] not in PACKAGE_STATUSES:
            raise ValueError(f"package_status must be one of {', '.join(PACKAGE_STATUSES)}")

        def apply() -> dict[str, Any]:
            row = self._db.execute("SELECT order_id FROM packages WHERE id = ?", (str(package_id),)).fetchone()
            if row is None:
                raise KeyError(f"no package {package_id}")
            order = self._operator_order(row[0])
            for line in order["line_items"]:
                if str(line.get("package_id") or "") == str(package_id):
                    if "rts_time" in changes:
                        line["rts_time"] = int(changes["rts_time"])
                    if "package_status" in changes:
                        line["package_status"] = changes["package_status"]
            if "rts_time" in changes:
                order["rts_time"] = min(int(li["rts_time"]) for li in order["line_items"] if li.get("rts_time"))
            self._restatus(order)
            self._save_order(order)
            return self._package_view(order, str(package_id))

        return self._write(apply)

    def external_orders_of(self, order_id: str) -> list[dict[str, Any]]:
        """The external references stored on an order (any platform)."""
        with self._db_lock:
            rows = self._db.execute("SELECT data FROM external_orders WHERE order_id = ? ORDER BY platform",
                                    (str(order_id),)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def cancellations(self, order_id: str | None = None) -> list[dict[str, Any]]:
        """Every cancellation record (of one order), oldest first."""
        return self._records("cancellations", order_id)

    def returns(self, order_id: str | None = None) -> list[dict[str, Any]]:
        """Every return record (of one order), oldest first."""
        return self._records("returns", order_id)

    def _records(self, table: str, order_id: str | None) -> list[dict[str, Any]]:
        sql = f"SELECT data FROM {table}" + (" WHERE order_id = ?" if order_id else "") + " ORDER BY create_time, id"
        with self._db_lock:
            rows = self._db.execute(sql, (str(order_id),) if order_id else ()).fetchall()
        return [json.loads(r[0]) for r in rows]

    def cancel_order(self, order_id: str, *, initiator: str = "BUYER", reason: str | None = None,
                     reason_text: str | None = None) -> dict[str, Any]:
        """Cancel a whole order on TikTok; returns its cancellation record.

        The order becomes CANCELLED (``cancel_time``, ``cancel_reason``,
        ``cancellation_initiator``), every line ``display_status: CANCELLED``
        (with ``cancel_user``/``cancel_reason`` where it was live), packages
        CANCELLED; the record covers every line not in an earlier cancellation
        and refunds what the buyer paid. Refused (ValueError) once the order is
        in transit, delivered, completed or already cancelled.
        """
        if initiator not in INITIATORS:
            raise ValueError(f"initiator must be one of {', '.join(INITIATORS)}")
        text = reason_text or {"BUYER": "No longer needed", "SELLER": "Out of stock",
                               "SYSTEM": "Payment was not completed in time"}[initiator]

        def apply() -> dict[str, Any]:
            order = self._operator_order(order_id)
            if order["status"] in ("CANCELLED", "IN_TRANSIT", "DELIVERED", "COMPLETED"):
                raise ValueError(f"order {order_id} is {order['status']}: it cannot be cancelled")
            now = self._now()
            covered = {li["order_line_item_id"] for c in self.cancellations(order["id"])
                       for li in c.get("cancel_line_items") or []}
            record_lines = []
            for line in order["line_items"]:
                paid = line.get("display_status") != "CANCELLED"
                if paid:
                    line.update(cancel_user=initiator, cancel_reason=text)
                line["display_status"] = "CANCELLED"
                if line.get("package_id"):
                    line["package_status"] = "CANCELLED"
                if line["id"] not in covered:
                    record_lines.append((line, paid))
            order.update(status="CANCELLED", cancel_time=now, cancel_reason=text, cancellation_initiator=initiator)
            pay, currency = order.get("payment") or {}, _currency(order)
            extra = {"retail_delivery_fee": _dec(pay["retail_delivery_fee"])} if "retail_delivery_fee" in pay else {}
            refund = _refund(currency, _dec(pay.get("sub_total")), _dec(pay.get("shipping_fee")),
                             _dec(pay.get("tax")), _taxes_added(order), **extra)
            refund["refund_total"] = _amount(_dec(pay.get("total_amount")), currency)  # what the buyer paid
            self._save_order(order)
            return self._store_cancellation(order, initiator, reason, text, refund, record_lines, now)

        return self._write(apply)

    def cancel_line(self, order_id: str, line_item_id: str, *, initiator: str = "SELLER",
                    reason: str | None = None, reason_text: str | None = None) -> dict[str, Any]:
        """Cancel one line item (one unit) of a live order; returns its cancellation record.

        The line becomes ``display_status: CANCELLED``; its amounts leave the
        order's ``payment``; the record refunds the line (sale price, and its tax
        where taxes are added). Refused (ValueError) for a shipped or already
        cancelled line, and for the last live line (cancel the order instead).
        """
        if initiator not in INITIATORS:
            raise ValueError(f"initiator must be one of {', '.join(INITIATORS)}")
        text = reason_text or "Item out of stock"

        def apply() -> dict[str, Any]:
            order = self._operator_order(order_id)
            if order["status"] in ("CANCELLED", "IN_TRANSIT", "DELIVERED", "COMPLETED"):
                raise ValueError(f"order {order_id} is {order['status']}: its lines cannot be cancelled")
            line = next((li for li in order["line_items"] if li["id"] == str(line_item_id)), None)
            if line is None:
                raise KeyError(f"order {order_id} has no line item {line_item_id}")
            live = [li for li in order["line_items"] if li.get("display_status") != "CANCELLED"]
            if line not in live:
                raise ValueError(f"line item {line_item_id} is already cancelled")
            if line.get("package_status") in SHIPPED:
                raise ValueError(f"line item {line_item_id} has shipped: it cannot be cancelled")
            if len(live) == 1:
                raise ValueError(f"line item {line_item_id} is the order's last live line: cancel the order")
            now = self._now()
            refund = _line_refund(order, line)
            self._take_out_of_payment(order, line, _dec(refund["refund_total"]))
            line.update(display_status="CANCELLED", cancel_user=initiator, cancel_reason=text)
            self._restatus(order)
            self._save_order(order)
            return self._store_cancellation(order, initiator, reason, text, refund, [(line, True)], now)

        return self._write(apply)

    @staticmethod
    def _take_out_of_payment(order: dict[str, Any], line: dict[str, Any], paid: Decimal) -> None:
        """TikTok's payment covers the live lines: a cancelled line's amounts leave it."""
        pay, currency = order.get("payment"), _currency(order)
        if not isinstance(pay, dict):
            return
        tax = _line_tax(line)
        for name, value in (("original_total_product_price", _dec(line.get("original_price"))),
                            ("seller_discount", _dec(line.get("seller_discount"))),
                            ("platform_discount", _dec(line.get("platform_discount"))),
                            ("sub_total", _dec(line.get("sale_price"))),
                            ("product_tax", tax), ("tax", tax), ("total_amount", paid)):
            if name in pay:
                pay[name] = _amount(max(Decimal(0), _dec(pay[name]) - value), currency)

    def _store_cancellation(self, order: dict[str, Any], initiator: str, reason: str | None, text: str,
                            refund: dict[str, str], lines: list[tuple[dict[str, Any], bool]],
                            now: int) -> dict[str, Any]:
        record = {
            "cancel_id": self._next_id("cancel"),
            "order_id": order["id"],
            "cancel_type": "BUYER_CANCEL" if initiator == "BUYER" else "CANCEL",
            "cancel_status": "CANCELLATION_REQUEST_COMPLETE",
            "role": initiator,
            "cancel_reason": reason or "ecom_order_cancel_reason_" + text.lower().replace(" ", "_"),
            "cancel_reason_text": text,
            "create_time": now,
            "update_time": now,
            "refund_amount": refund,
            "cancel_line_items": [
                {"cancel_line_item_id": self._next_id("cancel_line"), **_line_summary(line),
                 "refund_amount": _line_refund(order, line, paid)}
                for line, paid in lines
            ],
            "seller_next_action_response": [],
        }
        self._put_record("cancellations", record["cancel_id"], record, record["cancel_type"],
                         record["cancel_status"])
        return record

    def _put_record(self, table: str, record_id: str, record: dict[str, Any], kind: str, status: str) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO {table} (id, order_id, type, status, create_time, update_time, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (record_id, record["order_id"], kind, status, int(record["create_time"]), int(record["update_time"]),
             json.dumps(record)))

    def complete_return(self, order_id: str, line_item_ids: list[str] | None = None, *,
                        return_type: str = "RETURN_AND_REFUND",
                        status: str = "RETURN_OR_REFUND_REQUEST_COMPLETE", role: str = "BUYER",
                        reason: str | None = None, reason_text: str | None = None,
                        refund_shipping: bool = False) -> dict[str, Any]:
        """A return (or refund) of shipped lines, by default complete (the buyer refunded).

        ``line_item_ids`` default: every shipped line not in an open return.
        ``return_type``: REFUND (refund only), RETURN_AND_REFUND or REPLACEMENT
        (nothing refunded). ``refund_shipping`` also refunds the order's
        shipping and its tax. The order itself is left as it is.
        """
        if return_type not in RETURN_TYPES:
            raise ValueError(f"return_type must be one of {', '.join(RETURN_TYPES)}")
        if status not in RETURN_STATUSES:
            raise ValueError(f"unknown return status {status!r}")
        text = reason_text or ("Item damaged" if return_type != "REFUND" else "Package not received")

        def apply() -> dict[str, Any]:
            order = self._operator_order(order_id)
            delivered = order["status"] in ("IN_TRANSIT", "DELIVERED", "COMPLETED")
            open_lines = {li["order_line_item_id"] for r in self.returns(order["id"])
                          if r.get("return_status") not in _RETURN_CLOSED for li in r.get("return_line_items") or []}
            shipped = [li for li in order["line_items"] if li.get("display_status") != "CANCELLED"
                       and (delivered or li.get("package_status") in SHIPPED)]
            by_id = {li["id"]: li for li in shipped}
            wanted = [str(i) for i in line_item_ids] if line_item_ids else [
                li["id"] for li in shipped if li["id"] not in open_lines]
            if not wanted:
                raise ValueError(f"order {order_id} has no shipped line to return")
            for line_id in wanted:
                if line_id not in by_id:
                    raise ValueError(f"line item {line_id} of order {order_id} has not shipped (or is cancelled)")
                if line_id in open_lines:
                    raise ValueError(f"line item {line_id} is already in a return")
            lines = [by_id[i] for i in wanted]
            currency, added, pay = _currency(order), _taxes_added(order), order.get("payment") or {}
            refunded = return_type != "REPLACEMENT"
            subtotal = sum((_dec(li.get("sale_price")) for li in lines), Decimal(0)) if refunded else Decimal(0)
            tax = sum((_line_tax(li) for li in lines), Decimal(0)) if refunded else Decimal(0)
            shipping = _dec(pay.get("shipping_fee")) if refunded and refund_shipping else Decimal(0)
            if shipping:
                tax += _dec(pay.get("shipping_fee_tax"))
            now = self._now()
            record = {
                "return_id": self._next_id("return"),
                "order_id": order["id"],
                "return_type": return_type,
                "return_status": status,
                "role": role,
                "return_reason": reason or "ecom_return_reason_" + text.lower().replace(" ", "_"),
                "return_reason_text": text,
                "create_time": now,
                "update_time": now,
                "refund_amount": _refund(currency, subtotal, shipping, tax, added),
                "return_line_items": [
                    {"return_line_item_id": self._next_id("return_line"), **_line_summary(li),
                     "refund_amount": _line_refund(order, li, refunded)}
                    for li in lines
                ],
                "shipment_type": "PLATFORM" if return_type != "REFUND" else "",
                "handover_method": "DROP_OFF" if return_type != "REFUND" else "",
                "can_buyer_keep_item": return_type == "REFUND",
                "seller_next_action_response": [],
            }
            self._put_record("returns", record["return_id"], record, return_type, status)
            return record

        return self._write(apply)

    def set_return_status(self, return_id: str, status: str) -> dict[str, Any]:
        """Move a return to ``status`` (any of TikTok's, both spellings); its ``update_time`` moves."""
        if status not in RETURN_STATUSES:
            raise ValueError(f"unknown return status {status!r}")
        return self._set_status("returns", "return_status", return_id, status)

    def set_cancellation_status(self, cancel_id: str, status: str) -> dict[str, Any]:
        """Move a cancellation record to ``status``; its ``update_time`` moves."""
        if status not in CANCEL_STATUSES:
            raise ValueError(f"unknown cancellation status {status!r}")
        return self._set_status("cancellations", "cancel_status", cancel_id, status)

    def _set_status(self, table: str, field: str, record_id: str, status: str) -> dict[str, Any]:
        def apply() -> dict[str, Any]:
            row = self._db.execute(f"SELECT data, type FROM {table} WHERE id = ?", (str(record_id),)).fetchone()
            if row is None:
                raise KeyError(f"no record {record_id} in {table}")
            record = json.loads(row[0])
            record[field] = status
            record["update_time"] = max(self._now(), int(record["update_time"]) + 1)
            self._put_record(table, str(record_id), record, row[1], status)
            return record

        return self._write(apply)

    # -- shipping rules ----------------------------------------------------------------------------
    @staticmethod
    def _restatus(order: dict[str, Any]) -> None:
        """The order's status and its lines' display_status, from where its packages are."""
        if order.get("status") in ("UNPAID", "ON_HOLD", "CANCELLED", "COMPLETED"):
            return
        live = [li for li in order["line_items"] if li.get("display_status") != "CANCELLED"]
        if not live:
            return
        for line in live:
            line["display_status"] = _LINE_DISPLAY.get(line.get("package_status") or "", "TO_SHIP")
        shipped = [li.get("package_status") for li in live if li.get("package_status") in SHIPPED]
        if not shipped:
            status = "AWAITING_SHIPMENT"
        elif len(shipped) < len(live):
            status = "PARTIALLY_SHIPPING"
        elif all(s == "COMPLETED" for s in shipped):
            status = "DELIVERED"
        elif all(s in ("FULFILLING", "COMPLETED") for s in shipped):
            status = "IN_TRANSIT"
        else:
            status = "AWAITING_COLLECTION"
        order["status"] = status

    def _check_self_shipment(self, order: dict[str, Any]) -> None:
        if order.get("fulfillment_type") == "FULFILLMENT_BY_TIKTOK" or order.get("shipping_type") == "TIKTOK":
            raise ApiFailure(400, CODE_BUSINESS_TYPE, "This interface cannot be used in this region or this "
                             "business type. Please don't use the api.")

    def _check_shippable(self, order: dict[str, Any]) -> None:
        self._check_self_shipment(order)
        if order.get("status") not in SHIPPABLE:
            raise ApiFailure(400, CODE_ORDER_STATE, f"The order status {order.get('status')} does not allow "
                             "shipping.")

    def _provider(self, order: dict[str, Any], provider_id: Any, tracking: Any) -> dict[str, Any]:
        if not isinstance(tracking, str) or not tracking.strip():
            raise ApiFailure(400, CODE_INVALID, "Invalid tracking_number: it is required.")
        option = str(order.get("delivery_option_id") or "")
        providers = self._providers_of(option) or []
        found = next((p for p in providers if p["id"] == str(provider_id or "")), None)
        if found is None:
            raise ApiFailure(400, CODE_PROVIDER, f"Invalid shipping_provider_id {provider_id}: it is not offered "
                             f"for delivery option {option or '(none)'}.")
        return found

    def _ship(self, order: dict[str, Any], lines: list[dict[str, Any]], package_id: str, tracking: str,
              provider: dict[str, Any]) -> None:
        now = self._now()
        for line in lines:
            line.update(package_id=package_id, package_status="PROCESSING", tracking_number=tracking.strip(),
                        shipping_provider_id=provider["id"], shipping_provider_name=provider["name"], rts_time=now)
        self._mark_order_shipping(order, tracking.strip(), provider)
        order.setdefault("rts_time", now)
        self._restatus(order)

    @staticmethod
    def _mark_order_shipping(order: dict[str, Any], tracking: str, provider: dict[str, Any]) -> None:
        packages = order.setdefault("packages", [])
        for line in order["line_items"]:
            package_id = line.get("package_id")
            if package_id and {"id": str(package_id)} not in packages:
                packages.append({"id": str(package_id)})
        order.update(tracking_number=tracking, shipping_provider=provider["name"],
                     shipping_provider_id=provider["id"])

    # -- endpoints -----------------------------------------------------------------------------------
    def life_handlers(self) -> dict[str, Callable[[Any], Any]]:
        """The API operation handlers of this module, by operation name."""
        return {
            "shipping_providers.get": self._shipping_providers,
            "packages.create": self._mark_shipped,
            "packages.ship": self._ship_package,
            "shipping_info.update": self._update_shipping_info,
            "external_orders.add": self._external_orders_add,
            "external_orders.get": self._external_orders_get,
            "cancellations.search": lambda req: self._aftersales_search(
                req, "cancellations", "cancellations", "cancel_ids", "cancel_status", "cancel_types"),
            "returns.search": lambda req: self._aftersales_search(
                req, "returns", "return_orders", "return_ids", "return_status", "return_types"),
        }

    def _shipping_providers(self, req: Any) -> dict[str, Any]:
        option = _path_id(_PROVIDERS_PATH, req.path)
        with self._db_lock:
            providers = self._providers_of(option)
        if providers is None:
            raise ApiFailure(400, CODE_INVALID, f"Invalid delivery_option_id: {option} does not exist.")
        return {"shipping_providers": [{"id": p["id"], "name": p["name"]} for p in providers]}

    def _mark_shipped(self, req: Any) -> dict[str, Any]:
        order_id = _path_id(_MARK_SHIPPED_PATH, req.path)
        body = self._body(req)
        ids = body.get("order_line_item_ids")
        if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)
                                or len(set(ids)) != len(ids)):
            raise ApiFailure(400, CODE_INVALID, "Invalid order_line_item_ids: a list of distinct line item ids.")

        def apply() -> dict[str, Any]:
            order = self._api_order(order_id)
            self._check_shippable(order)
            provider = self._provider(order, body.get("shipping_provider_id"), body.get("tracking_number"))
            by_id = {li["id"]: li for li in order["line_items"]}
            chosen = ids or [li["id"] for li in order["line_items"]
                             if li.get("display_status") != "CANCELLED" and not li.get("package_id")]
            if not chosen:
                raise ApiFailure(400, CODE_LINE, "No line item of the order is left to ship.")
            for line_id in chosen:
                line = by_id.get(line_id)
                if line is None:
                    raise ApiFailure(400, CODE_LINE, f"Line item {line_id} does not belong to order {order_id}.")
                if line.get("display_status") == "CANCELLED":
                    raise ApiFailure(400, CODE_LINE, f"Line item {line_id} is cancelled and cannot be shipped.")
                if line.get("package_status") in SHIPPED:
                    raise ApiFailure(400, CODE_LINE, f"Line item {line_id} has already shipped in package "
                                     f"{line.get('package_id')}.")
                if line.get("package_id"):
                    raise ApiFailure(400, CODE_LINE, f"Line item {line_id} belongs to package "
                                     f"{line['package_id']}: ship it with Ship Package.")
            package_id = self._next_id("package")
            self._ship(order, [by_id[i] for i in chosen], package_id, body["tracking_number"], provider)
            self._save_order(order)
            self._index_packages(order)
            return {"order_id": order_id, "order_line_item_ids": chosen, "package_id": package_id}

        return self._write(apply)

    def _package_order(self, package_id: str) -> dict[str, Any]:
        row = self._db.execute("SELECT order_id FROM packages WHERE id = ?", (package_id,)).fetchone()
        order = self._order_row(row[0]) if row else None
        if order is None:
            raise ApiFailure(400, CODE_INVALID, f"Invalid package_id: package {package_id} does not exist.")
        return order

    def _ship_package(self, req: Any) -> dict[str, Any]:
        package_id = _path_id(_SHIP_PATH, req.path)
        body = self._body(req)

        def apply() -> dict[str, Any]:
            order = self._package_order(package_id)
            lines = [li for li in order["line_items"] if str(li.get("package_id") or "") == package_id]
            self._check_self_shipment(order)
            if any(li.get("package_status") != "TO_FULFILL" for li in lines):
                raise ApiFailure(400, CODE_PACKAGE_STATE, f"Package {package_id} has already been shipped or "
                                 "cancelled.")
            self._check_shippable(order)
            shipment = body.get("self_shipment")
            if not isinstance(shipment, dict):
                raise ApiFailure(400, CODE_INVALID, "Invalid self_shipment: it is required for a package the "
                                 "seller ships.")
            provider = self._provider(order, shipment.get("shipping_provider_id"), shipment.get("tracking_number"))
            self._ship(order, lines, package_id, shipment["tracking_number"], provider)
            self._save_order(order)
            return {}

        return self._write(apply)

    def _update_shipping_info(self, req: Any) -> dict[str, Any]:
        package_id = _path_id(_SHIPPING_INFO_PATH, req.path)
        body = self._body(req)

        def apply() -> dict[str, Any]:
            order = self._package_order(package_id)
            lines = [li for li in order["line_items"] if str(li.get("package_id") or "") == package_id]
            self._check_self_shipment(order)
            status = lines[0].get("package_status") if lines else None
            if status not in ("PROCESSING", "FULFILLING"):
                raise ApiFailure(400, CODE_PACKAGE_STATE, f"Package {package_id} is {status}: its shipping "
                                 "information cannot be updated.")
            shipped_at = min(int(li.get("rts_time") or 0) for li in lines)
            if self._now() - shipped_at > UPDATE_WINDOW_S:
                raise ApiFailure(400, CODE_UPDATE_WINDOW, "Shipping information can only be updated within 72 "
                                 "hours after the package was shipped.")
            provider = self._provider(order, body.get("shipping_provider_id"), body.get("tracking_number"))
            tracking = body["tracking_number"].strip()
            for line in lines:
                line.update(tracking_number=tracking, shipping_provider_id=provider["id"],
                            shipping_provider_name=provider["name"])
            self._mark_order_shipping(order, tracking, provider)
            self._save_order(order)
            return {}

        return self._write(apply)

    def _external_orders_add(self, req: Any) -> dict[str, Any]:
        body = self._body(req)
        orders = body.get("orders")
        if not isinstance(orders, list) or not 1 <= len(orders) <= MAX_EXTERNAL_ORDERS:
            raise ApiFailure(400, CODE_INVALID, f"Invalid orders: a list of 1 to {MAX_EXTERNAL_ORDERS} orders.")
        if not all(isinstance(o, dict) and isinstance(o.get("external_order"), dict) for o in orders):
            raise ApiFailure(400, CODE_INVALID, "Invalid orders: each needs an id and an external_order.")

        def apply() -> dict[str, Any]:
            errors = []
            for entry in orders:
                reference = entry["external_order"]
                detail = {"order_id": str(entry.get("id") or ""),
                          "external_order": {"id": str(reference.get("id") or ""),
                                             "platform": str(reference.get("platform") or "")}}
                order = self._order_row(detail["order_id"])
                lines = reference.get("line_items") or []
                if order is None:
                    errors.append({"code": CODE_EXTERNAL_ORDER, "message": "Invalid order_id", "detail": detail})
                    continue
                if detail["external_order"]["platform"] not in EXTERNAL_PLATFORMS or not reference.get("id"):
                    errors.append({"code": CODE_EXTERNAL_PLATFORM, "message": "Invalid external order id or "
                                   "platform", "detail": detail})
                    continue
                own = {li["id"] for li in order["line_items"]}
                if not isinstance(lines, list) or not all(
                        isinstance(li, dict) and li.get("id") and str(li.get("origin_id")) in own for li in lines):
                    errors.append({"code": CODE_EXTERNAL_LINE, "message": "Invalid line_items: each origin_id "
                                   "must be a line item of the order", "detail": detail})
                    continue
                stored = {"id": detail["external_order"]["id"], "platform": detail["external_order"]["platform"],
                          "line_items": [{"id": str(li["id"]), "origin_id": str(li["origin_id"])} for li in lines]}
                self._db.execute("INSERT OR REPLACE INTO external_orders (order_id, platform, data) VALUES (?, ?, ?)",
                                 (order["id"], stored["platform"], json.dumps(stored)))
            return {"errors": errors}

        return self._write(apply)

    def _external_orders_get(self, req: Any) -> dict[str, Any]:
        order_id = _path_id(_EXTERNAL_GET_PATH, req.path)
        with self._db_lock:
            self._api_order(order_id)
        platform = req.query.get("platform") or ""
        references = [r for r in self.external_orders_of(order_id) if not platform or r["platform"] == platform]
        return {"external_orders": references}

    def _aftersales_search(self, req: Any, table: str, key: str, ids_key: str, status_key: str,
                           types_key: str) -> dict[str, Any]:
        try:
            size = int(req.query.get("page_size", "10"))
        except ValueError:
            raise ApiFailure(400, CODE_INVALID, "Invalid page_size: it must be a number.") from None
        if not 1 <= size <= MAX_AFTERSALES_PAGE:
            raise ApiFailure(400, CODE_INVALID, f"Invalid page_size: must be between 1 and {MAX_AFTERSALES_PAGE}.")
        body = self._body(req)
        where, args = [], []
        for name, column in (("order_ids", "order_id"), (ids_key, "id"), (status_key, "status"),
                             (types_key, "type")):
            values = body.get(name)
            if values:
                if not isinstance(values, list):
                    raise ApiFailure(400, CODE_INVALID, f"Invalid {name}: a list is expected.")
                where.append(f"{column} IN ({','.join('?' * len(values))})")
                args += [str(v) for v in values]
        records, token, total = self._search_page(req, body, table, where, args, size, "ASC", lambda r: r)
        return {key: records, "next_page_token": token, "total_count": total}
