"""A TikTok Shop Open API simulator on loopback, state in SQLite (DESIGN §8).

It serves, on one port, the parts of the Open API ecomsend uses and the auth
host's token refresh, checking requests as the real service does:

* ``GET  /authorization/202309/shops`` (no shop_cipher needed)
* ``POST /order/202309/orders/search`` — query ``page_size`` (1–100),
  ``page_token``, ``sort_field`` (``update_time``|``create_time``),
  ``sort_order`` (``ASC``|``DESC``); body filters ``update_time_ge``,
  ``update_time_lt``, ``create_time_ge``, ``create_time_lt``,
  ``order_status``. Answers ``{orders, next_page_token, total_count}``; page
  tokens are opaque, bound to the filter, and the order is stable (sort field,
  then id), so an order updated mid-listing shows up again later, as on TikTok.
* ``GET  /order/202309/orders?ids=a,b`` (at most 50 ids)
* ``POST /product/202309/products/search`` — ``page_size``, ``page_token``;
  body ``status`` (default ALL). Search results carry no ``external_sku_id``.
* ``GET  /product/202309/products/{id}`` — detail, with ``external_sku_id``.
* After creation (DESIGN §6b; rules, designed codes and statuses in
  :mod:`~ecomsend_cli.sandbox.tiktok_life`):
  ``GET /logistics/202309/delivery_options/{id}/shipping_providers``
  (``{shipping_providers: [{id, name}]}``);
  ``POST /fulfillment/202309/orders/{order_id}/packages`` (Mark Package As
  Shipped: ``order_line_item_ids``, ``tracking_number``,
  ``shipping_provider_id`` → ``{order_id, order_line_item_ids, package_id}``);
  ``POST /fulfillment/202309/packages/{package_id}/ship`` (``self_shipment``);
  ``POST /fulfillment/202309/packages/{package_id}/shipping_info/update``
  (within 72 h of shipping);
  ``POST /order/202406/orders/external_orders`` (``{orders: [{id,
  external_order: {id, platform, line_items: [{id, origin_id}]}}]}`` →
  ``{errors: [...]}``) and ``GET /order/202406/orders/{id}/external_orders?platform=``;
  ``POST /return_refund/202309/cancellations/search`` (``cancellations``) and
  ``POST /return_refund/202309/returns/search`` (``return_orders``) — query
  ``page_size`` (1–50), ``page_token``, ``sort_field`` (``create_time``
  default | ``update_time``), ``sort_order`` (``ASC`` default | ``DESC``); body
  ``update_time_ge/lt``, ``create_time_ge/lt``, ``order_ids``,
  ``cancel_ids``/``return_ids``, ``cancel_status``/``return_status``,
  ``cancel_types``/``return_types``; answers with ``next_page_token`` and
  ``total_count``.
* ``GET  /api/v2/token/refresh?app_key&app_secret&refresh_token&grant_type=refresh_token``
  — a new access token and a new refresh token (``*_expire_in`` are absolute
  Unix times); the old refresh token is then invalid (36004005); the old
  access token lives until its own expiry.
* The authorization step (:mod:`~ecomsend_cli.sandbox.tiktok_auth`): the
  seller's page ``GET /_sandbox/authorize?service_id=…`` (a one-time code) and
  ``GET /api/v2/token/get?app_key&app_secret&auth_code&grant_type=authorized_code``
  (the first token pair; a wrong, expired or reused code refused).

Every API request is checked in the real order: rate limit (36009002, HTTP
429, past ``rate_limit`` requests per ``rate_limit_window_ms``), ``app_key``
(36009004), ``timestamp`` within ``timestamp_window`` seconds (36009004), the
``sign`` (106001, computed exactly as :func:`ecomsend_cli.tiktok.sign`), the
``x-tts-access-token`` header (36009004 when absent, 105001 when unknown or
superseded, 105002 when expired), then ``shop_cipher`` on shop-scoped paths
(106013). Answers use the documented envelope ``{code, message, request_id,
data}`` and an ``X-Tt-Logid`` header.

Orders are kept in TikTok's shape, one line item per unit: a seeded or added
line with ``"quantity": 3`` is stored and served as three line items.
Combined-listing lines keep their ``combined_listing_skus``. As on TikTok,
an order's ``recipient_address`` is left out of API answers while the order
is UNPAID or ON_HOLD, and a status change moves every line's
``display_status`` except a line TikTok cancelled on its own (in a live order).

Options (``TikTokSimulator(state_path, **options)``): ``products``,
``orders`` and ``delivery_options`` (``[{id, name, shipping_providers:
[{id, name}]}]``; seeded only when the state file is new — a restarted simulator
keeps its state), ``app_key``, ``app_secret``, ``access_token``,
``refresh_token``, ``shop_cipher`` (else generated once and kept in the
state file), ``access_token_ttl`` / ``refresh_token_ttl`` / ``auth_code_ttl`` (seconds),
``extra_shops`` (more authorised shops, ``[{id, name, region, cipher}]``, listed after the
sandbox shop; the API serves the sandbox shop's cipher only),
``timestamp_window`` (seconds, default 300), ``rate_limit`` (requests per
window, 0 = off), ``rate_limit_window_ms`` (default 1000), ``clock``
(a ``time.time`` stand-in), ``fault_seed``, and any fault key of
:mod:`ecomsend_cli.sandbox._http` as initial faults.

Fault operation names (for ``fail_next``): ``shops``, ``orders.search``,
``orders.get``, ``products.search``, ``products.get``, ``token.refresh``, ``token.get``,
``shipping_providers.get``, ``packages.create`` (Mark Package As Shipped),
``packages.ship``, ``shipping_info.update``, ``external_orders.add``,
``external_orders.get``, ``cancellations.search``, ``returns.search``. Every
fault kind works on each of them (``handled: true`` writes commit first).

The fault knob ``paging_fault`` (default null) makes the searches
(``orders.search``, ``products.search``, ``cancellations.search``,
``returns.search``) page badly once their real pages
run out, each answer still a well-formed envelope (code 0) with the real
``total_count``:

* ``"endless"`` — the last real page carries a next_page_token, and every
  page after it answers no orders with a brand-new token, forever;
* ``"repeat_last"`` — the last real page's next_page_token is the token the
  client just sent (asking with it again serves that page again, with the
  same token); for a listing of one page, a token that serves it again;
* ``"cycle"`` — the last real page leads to token A; A serves the first
  page again with token B, B serves it with token A, and so on.

Tokens stay bound to their filter; turning the knob off ends a fault's
listing at its next page.

Test-control endpoints, on the same port (JSON in, JSON out):

* ``POST /_sandbox/faults`` — body: fault keys (see ``_http``); ``GET`` reads them.
* ``GET  /_sandbox/requests[?op=NAME]`` — the API requests served so far.
* ``GET  /_sandbox/credentials`` — ``app_key``, ``app_secret``, the current
  ``access_token`` and ``refresh_token``, ``shop_cipher``, ``service_id``.
* ``GET  /_sandbox/authorize``, ``POST /_sandbox/auth_codes/expire`` — see
  :mod:`~ecomsend_cli.sandbox.tiktok_auth`.
* ``POST /_sandbox/orders`` — body ``{"orders": [...]}``: add or replace
  orders (``quantity`` on a line is expanded); answers ``{"ids": [...]}``.
* ``GET  /_sandbox/orders/{id}`` — the stored order.
* ``POST /_sandbox/orders/{id}`` — body: fields to change, e.g.
  ``{"status": "CANCELLED"}``; ``update_time`` moves forward (now, and at
  least one second past the previous value) unless the body sets it.
* ``POST /_sandbox/products`` — body ``{"products": [...]}``: add or replace.
* ``POST /_sandbox/tokens/expire`` — body ``{"access": true, "refresh":
  false}`` (the defaults): expire the access tokens (and/or refresh tokens) now.
* ``GET  /_sandbox/state`` — counts of orders and products.
* ``POST /_sandbox/delivery_options`` — body ``{"delivery_options": [...]}``: add or replace.
* ``GET|POST /_sandbox/packages/{id}`` — a package (id, order_id,
  line_item_ids, package_status, tracking, rts_time); POST ``{"package_status":
  "FULFILLING"}`` (collected: IN_TRANSIT) or ``"COMPLETED"`` (delivered), and/or
  ``{"rts_time": ...}`` (when it shipped: the 72 h rule).
* ``POST /_sandbox/orders/{id}/cancel`` — body ``{"initiator": BUYER|SELLER|SYSTEM,
  "reason", "reason_text"}``: the whole order cancelled; answers the cancellation record.
* ``POST /_sandbox/orders/{id}/line_items/{line_id}/cancel`` — same body: one line (unit).
* ``POST /_sandbox/orders/{id}/returns`` — body ``{"line_item_ids", "return_type":
  REFUND|RETURN_AND_REFUND|REPLACEMENT, "status" (default
  RETURN_OR_REFUND_REQUEST_COMPLETE), "role", "reason", "reason_text",
  "refund_shipping"}``: answers the return record.
* ``POST /_sandbox/returns/{id}``, ``POST /_sandbox/cancellations/{id}`` — body
  ``{"status": ...}``: a record's new status (its ``update_time`` moves).
* ``GET  /_sandbox/cancellations[?order_id=]``, ``GET /_sandbox/returns[?order_id=]``,
  ``GET /_sandbox/orders/{id}/external_orders`` — what is stored.

The same controls exist as methods: :meth:`TikTokSimulator.add_orders`,
:meth:`~TikTokSimulator.update_order`, :meth:`~TikTokSimulator.order`,
:meth:`~TikTokSimulator.add_products`, :meth:`~TikTokSimulator.expire_access_token`,
:meth:`~TikTokSimulator.expire_refresh_token`, :meth:`~TikTokSimulator.set_faults`,
:meth:`~TikTokSimulator.ops`, and for an order's life
:meth:`~TikTokSimulator.add_delivery_options`, :meth:`~TikTokSimulator.package`,
:meth:`~TikTokSimulator.update_package`, :meth:`~TikTokSimulator.cancel_order`,
:meth:`~TikTokSimulator.cancel_line`, :meth:`~TikTokSimulator.complete_return`,
:meth:`~TikTokSimulator.set_return_status`,
:meth:`~TikTokSimulator.set_cancellation_status`,
:meth:`~TikTokSimulator.cancellations`, :meth:`~TikTokSimulator.returns`,
:meth:`~TikTokSimulator.external_orders_of`. ``update_order(status="CANCELLED")``
still cancels without a cancellation record; :meth:`~TikTokSimulator.cancel_order`
is what TikTok does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..tiktok import sign
from ._http import BASE_FAULT_DEFAULTS, Reply, Request, Simulator
from .tiktok_auth import SCHEMA as AUTH_SCHEMA
from .tiktok_auth import Authorization
from .tiktok_life import DISPLAY_STATUS, OPS, SCHEMA, ApiFailure, OrderLife, route

PAGING_FAULTS = ("endless", "repeat_last", "cycle")

API_OPS = {
    ("GET", "/authorization/202309/shops"): "shops",
    ("POST", "/order/202309/orders/search"): "orders.search",
    ("GET", "/order/202309/orders"): "orders.get",
    ("POST", "/product/202309/products/search"): "products.search",
    ("GET", "/api/v2/token/refresh"): "token.refresh",
    ("GET", "/api/v2/token/get"): "token.get",
}
_PRODUCT_DETAIL = re.compile(r"^/product/202309/products/([^/]+)$")
_SHOP_SCOPED = {"orders.search", "orders.get", "products.search", "products.get", *OPS}
ORDER_STATUSES = tuple(DISPLAY_STATUS)
ADDRESS_WITHHELD = ("UNPAID", "ON_HOLD")  # "recipient_address is not available under" these
MAX_PAGE_SIZE = 100
MAX_DETAIL_IDS = 50

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, kind TEXT NOT NULL, issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS products (id TEXT PRIMARY KEY, update_time INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY, create_time INTEGER NOT NULL, update_time INTEGER NOT NULL,
    status TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS orders_by_update ON orders (update_time, id);
CREATE INDEX IF NOT EXISTS orders_by_create ON orders (create_time, id);
""" + SCHEMA + AUTH_SCHEMA


_ApiFailure = ApiFailure


def _as_served(order: dict[str, Any]) -> dict[str, Any]:
    """An order as the API answers it: TikTok withholds the recipient address of an order
    that is UNPAID or ON_HOLD (it is stored, and served once the order moves on)."""
    if order.get("status") in ADDRESS_WITHHELD:
        order.pop("recipient_address", None)
    return order


def expand_line_items(order_id: str, lines: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """TikTok sends one line item per unit: a line with ``quantity: n`` becomes n lines."""
    out: list[dict[str, Any]] = []
    for index, line in enumerate(lines):
        line = dict(line)
        quantity = int(line.pop("quantity", 1) or 1)
        base_id = str(line.get("id") or f"{order_id}{index + 1:03d}")
        for unit in range(quantity):
            item = dict(line)
            item["id"] = base_id if unit == 0 else f"{base_id}-{unit + 1}"
            out.append(item)
    return out


class TikTokSimulator(Authorization, OrderLife, Simulator):
    """The TikTok Shop simulator (see the module docstring)."""

    extra_fault_defaults = {"rate_limit": 0, "rate_limit_window_ms": 1000, "paging_fault": None}
    no_random_lost_response = frozenset({"token.refresh", "token.get"})

    def __init__(
        self,
        state_path: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        products: list[dict[str, Any]] | None = None,
        orders: list[dict[str, Any]] | None = None,
        delivery_options: list[dict[str, Any]] | None = None,
        app_key: str | None = None,
        app_secret: str | None = None,
        access_token: str | None = None,
        refresh_token: str | None = None,
        shop_cipher: str | None = None,
        access_token_ttl: int = 7 * 86400,
        refresh_token_ttl: int = 365 * 86400,
        auth_code_ttl: int = 600,
        extra_shops: list[dict[str, Any]] | None = None,
        timestamp_window: int = 300,
        clock: Callable[[], float] = time.time,
        fault_seed: int | None = None,
        **faults: Any,
    ) -> None:
        unknown = set(faults) - set(BASE_FAULT_DEFAULTS) - set(self.extra_fault_defaults) - {"fail_next", "seed"}
        if unknown:
            raise TypeError(f"unknown TikTokSimulator option(s): {', '.join(sorted(unknown))}")
        super().__init__(host=host, port=port, fault_seed=fault_seed)
        if faults:
            self.set_faults(**faults)
        self.state_path = Path(state_path)
        self.access_token_ttl = access_token_ttl
        self.refresh_token_ttl = refresh_token_ttl
        self.auth_code_ttl = auth_code_ttl
        self.extra_shops = [dict(x) for x in extra_shops or []]
        self.timestamp_window = timestamp_window
        self.clock = clock
        self._db_lock = threading.RLock()
        self._recent: deque[float] = deque()
        self._rate_lock = threading.Lock()
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = self._connect()
        self._init_state(
            products=products or [], orders=orders or [], delivery_options=delivery_options or [],
            app_key=app_key, app_secret=app_secret,
            access_token=access_token, refresh_token=refresh_token, shop_cipher=shop_cipher,
        )

    # -- state -----------------------------------------------------------------
    def _now(self) -> int:
        return int(self.clock())

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _init_state(self, *, products: list[dict[str, Any]], orders: list[dict[str, Any]],
                    delivery_options: list[dict[str, Any]], app_key: str | None, app_secret: str | None,
                    access_token: str | None, refresh_token: str | None, shop_cipher: str | None) -> None:
        with self._db_lock:
            if self._meta("created_at") is not None:
                return
            now = self._now()
            meta = {
                "created_at": str(now),
                "app_key": app_key or secrets.token_hex(7)[:13],
                "app_secret": app_secret or secrets.token_hex(20),
                "shop_cipher": shop_cipher or "ROW_" + secrets.token_urlsafe(24),
                "shop_id": str(7494000000000000000 + secrets.randbelow(10**15)),
                "open_id": secrets.token_urlsafe(24),
                "service_id": str(7_400_000_000_000_000_000 + secrets.randbelow(10**17)),
            }
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
                self._issue("access", access_token, now, self.access_token_ttl)
                self._issue("refresh", refresh_token, now, self.refresh_token_ttl)
                self._store_products(products, now)
                self._store_orders(orders, now)
                self._store_delivery_options(delivery_options)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _issue(self, kind: str, token: str | None, now: int, ttl: int) -> tuple[str, int]:
        prefix = "ROW_" if kind == "access" else "ROW_R"
        token = token or prefix + secrets.token_urlsafe(32)
        expires = now + ttl
        self._db.execute(
            "INSERT INTO tokens (token, kind, issued_at, expires_at) VALUES (?, ?, ?, ?)",
            (token, kind, now, expires),
        )
        return token, expires

    def _current_token(self, kind: str) -> str:
        row = self._db.execute(
            "SELECT token FROM tokens WHERE kind = ? AND revoked = 0 ORDER BY issued_at DESC, rowid DESC LIMIT 1",
            (kind,),
        ).fetchone()
        return row[0] if row else ""

    @property
    def credentials(self) -> dict[str, str]:
        """What a client needs: app key and secret, the current tokens, the shop cipher."""
        with self._db_lock:
            return {
                "app_key": self._meta("app_key") or "",
                "app_secret": self._meta("app_secret") or "",
                "access_token": self._current_token("access"),
                "refresh_token": self._current_token("refresh"),
                "shop_cipher": self._meta("shop_cipher") or "",
                "service_id": self.service_id,
            }

    def _store_products(self, products: Iterable[dict[str, Any]], now: int) -> list[str]:
        ids = []
        for product in products:
            product = json.loads(json.dumps(product))  # a private copy
            if not product.get("id"):
                raise ValueError("every product needs an id")
            product["id"] = str(product["id"])
            product.setdefault("status", "ACTIVATE")
            product.setdefault("create_time", now)
            product.setdefault("update_time", now)
            for sku in product.get("skus") or []:
                sku["id"] = str(sku["id"])
                sku.setdefault("seller_sku", "")
            self._db.execute(
                "INSERT OR REPLACE INTO products (id, update_time, data) VALUES (?, ?, ?)",
                (product["id"], int(product["update_time"]), json.dumps(product)),
            )
            ids.append(product["id"])
        return ids

    def _store_orders(self, orders: Iterable[dict[str, Any]], now: int) -> list[str]:
        ids = []
        for order in orders:
            order = json.loads(json.dumps(order))
            if not order.get("id"):
                raise ValueError("every order needs an id")
            order["id"] = str(order["id"])
            order.setdefault("status", "AWAITING_SHIPMENT")
            if order["status"] not in ORDER_STATUSES:
                raise ValueError(f"unknown order status {order['status']!r}")
            order.setdefault("create_time", now)
            order.setdefault("update_time", max(now, int(order["create_time"])))
            order["line_items"] = expand_line_items(order["id"], order.get("line_items") or [])
            for line in order["line_items"]:
                line.setdefault("display_status", DISPLAY_STATUS[order["status"]])
            self._db.execute(
                "INSERT OR REPLACE INTO orders (id, create_time, update_time, status, data) "
                "VALUES (?, ?, ?, ?, ?)",
                (order["id"], int(order["create_time"]), int(order["update_time"]),
                 order["status"], json.dumps(order)),
            )
            self._index_packages(order)
            ids.append(order["id"])
        return ids

    def _write(self, fn: Callable[[], Any]) -> Any:
        with self._db_lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = fn()
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return result

    # -- test controls (methods) -------------------------------------------------
    def add_orders(self, orders: list[dict[str, Any]]) -> list[str]:
        """Add or replace orders (TikTok shape; ``quantity`` on a line is expanded)."""
        return self._write(lambda: self._store_orders(orders, self._now()))

    def add_products(self, products: list[dict[str, Any]]) -> list[str]:
        """Add or replace products (product-detail shape)."""
        return self._write(lambda: self._store_products(products, self._now()))

    def order(self, order_id: str) -> dict[str, Any] | None:
        """The stored order, or None."""
        with self._db_lock:
            row = self._db.execute("SELECT data FROM orders WHERE id = ?", (str(order_id),)).fetchone()
        return json.loads(row[0]) if row else None

    def update_order(self, order_id: str, **changes: Any) -> dict[str, Any]:
        """Change an order as the seller or buyer would (e.g. ``status="CANCELLED"``).

        ``update_time`` moves forward (now, and past the previous value) unless given.
        """
        def apply() -> dict[str, Any]:
            row = self._db.execute("SELECT data FROM orders WHERE id = ?", (str(order_id),)).fetchone()
            if row is None:
                raise KeyError(f"no order {order_id}")
            order = json.loads(row[0])
            now = self._now()
            status = changes.get("status", order["status"])
            if status not in ORDER_STATUSES:
                raise ValueError(f"unknown order status {status!r}")
            was_cancelled = order["status"] == "CANCELLED"
            order.update(changes)
            if "status" in changes:
                for line in order.get("line_items") or []:
                    # A line TikTok cancelled on its own stays cancelled while its order moves on.
                    if line.get("display_status") != "CANCELLED" or was_cancelled or status == "CANCELLED":
                        line["display_status"] = DISPLAY_STATUS[status]
                if status == "CANCELLED":
                    order.setdefault("cancel_time", now)
                    order.setdefault("cancel_reason", "Buyer changed their mind")
                    order.setdefault("cancellation_initiator", "BUYER")
            if "update_time" not in changes:
                order["update_time"] = max(now, int(order["update_time"]) + 1)
            if "line_items" in changes:
                order["line_items"] = expand_line_items(order["id"], order["line_items"])
            self._db.execute(
                "UPDATE orders SET update_time = ?, status = ?, data = ? WHERE id = ?",
                (int(order["update_time"]), order["status"], json.dumps(order), order["id"]),
            )
            self._index_packages(order)
            return order

        return self._write(apply)

    def set_faults(self, **faults: Any) -> None:
        """Merge fault settings into the plan (``_http`` keys, ``rate_limit*``, ``paging_fault``)."""
        if faults.get("paging_fault") not in (None, *PAGING_FAULTS):
            raise ValueError(f"paging_fault must be null or one of {', '.join(PAGING_FAULTS)}")
        super().set_faults(**faults)

    def expire_access_token(self) -> None:
        """Make every access token issued so far expired, as of now."""
        self._write(lambda: self._db.execute(
            "UPDATE tokens SET expires_at = ? WHERE kind = 'access' AND expires_at > ?",
            (self._now() - 1, self._now() - 1)))

    def expire_refresh_token(self) -> None:
        """Make every refresh token issued so far expired, as of now."""
        self._write(lambda: self._db.execute(
            "UPDATE tokens SET expires_at = ? WHERE kind = 'refresh' AND expires_at > ?",
            (self._now() - 1, self._now() - 1)))

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.state_path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(_SCHEMA)
        return db

    def start(self) -> TikTokSimulator:
        """Serve in a background thread (again, after a stop: an outage); returns self."""
        with self._db_lock:
            if self._db is None:
                self._db = self._connect()
        super().start()
        return self

    def close(self) -> None:
        with self._db_lock:
            if self._db is not None:
                self._db.close()
                self._db = None  # type: ignore[assignment]

    # -- Simulator hooks -------------------------------------------------------------
    def operation(self, req: Request) -> str | None:
        op = API_OPS.get((req.method, req.path))
        if op is None and req.method == "GET" and _PRODUCT_DETAIL.match(req.path):
            op = "products.get"
        return op or route(req.method, req.path)

    def _request_id(self) -> str:
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(self.clock()))
        return stamp + secrets.token_hex(10).upper()

    def _envelope(self, status: int, code: int, message: str, data: Any = None) -> Reply:
        request_id = self._request_id()
        return Reply(
            status,
            {"code": code, "message": message, "request_id": request_id, "data": data},
            {"X-Tt-Logid": request_id},
        )

    def error_reply(self, req: Request, status: int) -> Reply:
        return self._envelope(status, 36009003, "Internal error. Please try again. If the issue "
                              "persists after multiple attempts, please contact platform support.")

    def throttled_reply(self, req: Request) -> Reply:
        return self._envelope(429, 36009002, "Too many requests. You've made too many requests "
                              "in a short period of time.")

    def handle(self, req: Request) -> Reply:
        op = self.operation(req)
        try:
            if op is None:
                raise _ApiFailure(404, 36009004, f"Invalid path: {req.method} {req.path} is not an API")
            if op == "token.refresh":
                return self._envelope(200, 0, "success", self._refresh(req))
            if op == "token.get":
                return self._envelope(200, 0, "success", self.token_get(req))
            self._check_rate()
            self._check_request(req, op)
            data = {
                "shops": self._shops,
                "orders.search": self._orders_search,
                "orders.get": self._orders_get,
                "products.search": self._products_search,
                "products.get": self._product_get,
                **self.life_handlers(),
            }[op](req)
            return self._envelope(200, 0, "Success", data)
        except _ApiFailure as failure:
            return self._envelope(failure.status, failure.code, failure.message)

    # -- checks ------------------------------------------------------------------------
    def _check_rate(self) -> None:
        limit = int(self.faults.get("rate_limit") or 0)
        if limit <= 0:
            return
        window = float(self.faults.get("rate_limit_window_ms")) / 1000.0
        now = time.monotonic()
        with self._rate_lock:
            while self._recent and self._recent[0] <= now - window:
                self._recent.popleft()
            if len(self._recent) >= limit:
                raise _ApiFailure(429, 36009002, "Too many requests. You've made too many "
                                  "requests in a short period of time.")
            self._recent.append(now)

    def _check_request(self, req: Request, op: str) -> None:
        creds = self.credentials
        if req.query.get("app_key") != creds["app_key"]:
            raise _ApiFailure(401, 36009004, "Invalid credentials. Invalid app_key query parameter.")
        try:
            timestamp = int(req.query.get("timestamp", ""))
        except ValueError:
            raise _ApiFailure(401, 36009004, "Invalid timestamp. The timestamp query parameter "
                              "is missing or not a Unix time.") from None
        if abs(self._now() - timestamp) > self.timestamp_window:
            raise _ApiFailure(401, 36009004, "Invalid timestamp. The value of the timestamp query "
                              "parameter must not be earlier than 5 minutes before the current time.")
        expected = sign(creds["app_secret"], req.path, req.query, req.body,
                        req.headers.get("content-type", "application/json"))
        if not hmac.compare_digest(req.query.get("sign", ""), expected):
            raise _ApiFailure(401, 106001, "Invalid credentials. The 'sign' query parameter is invalid.")
        token = req.headers.get("x-tts-access-token", "")
        if not token:
            raise _ApiFailure(401, 36009004, "Invalid credentials. The 'x-tts-access-token' header is invalid.")
        with self._db_lock:
            row = self._db.execute(
                "SELECT expires_at, revoked FROM tokens WHERE token = ? AND kind = 'access'", (token,)
            ).fetchone()
        if row is None or row[1]:
            raise _ApiFailure(401, 105001, "Invalid credentials. The access token is invalid.")
        if row[0] <= self._now():
            raise _ApiFailure(401, 105002, "Expired credentials. The access token has expired; "
                              "refresh it with the refresh token.")
        if op in _SHOP_SCOPED:
            cipher = req.query.get("shop_cipher", "")
            if not cipher:
                raise _ApiFailure(400, 106013, "Missing identifier. The shop_cipher query parameter is required.")
            if cipher != creds["shop_cipher"]:
                raise _ApiFailure(403, 106013, "Invalid identifier. The shop_cipher does not belong "
                                  "to a shop authorised for this app.")

    def _refresh(self, req: Request) -> dict[str, Any]:
        q = req.query
        self.check_app_secret(q, "refresh_token")
        old = q.get("refresh_token", "")

        def rotate() -> dict[str, Any]:
            row = self._db.execute(
                "SELECT expires_at, revoked FROM tokens WHERE token = ? AND kind = 'refresh'", (old,)
            ).fetchone()
            now = self._now()
            if row is None or row[1]:
                raise _ApiFailure(401, 36004005, "can not find related auth record")
            if row[0] <= now:
                raise _ApiFailure(401, 36004001, "rt has expired")
            self._db.execute("UPDATE tokens SET revoked = 1 WHERE token = ?", (old,))
            access, access_exp = self._issue("access", None, now, self.access_token_ttl)
            refresh, refresh_exp = self._issue("refresh", None, now, self.refresh_token_ttl)
            return {
                "access_token": access,
                "access_token_expire_in": access_exp,
                "refresh_token": refresh,
                "refresh_token_expire_in": refresh_exp,
                "open_id": self._meta("open_id"),
                "seller_name": "Sandbox Shop",
                "seller_base_region": "US",
                "user_type": 0,
                "granted_scopes": ["seller.authorization.info", "seller.order.info", "seller.product.basic"],
            }

        return self._write(rotate)

    # -- endpoints --------------------------------------------------------------------
    def _shops(self, req: Request) -> dict[str, Any]:
        creds = self.credentials
        return {"shops": [{
            "id": self._meta("shop_id"),
            "name": "ecomsend sandbox shop",
            "region": "US",
            "seller_type": "LOCAL",
            "cipher": creds["shop_cipher"],
            "code": "USSANDBOX1",
        }, *self.extra_shops]}

    @staticmethod
    def _page_size(req: Request) -> int:
        try:
            size = int(req.query.get("page_size", ""))
        except ValueError:
            raise _ApiFailure(400, 36009004, "Invalid page_size: it is required and must be a number.") from None
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise _ApiFailure(400, 36009004, f"Invalid page_size: must be between 1 and {MAX_PAGE_SIZE}.")
        return size

    @staticmethod
    def _encode_token(payload: dict[str, Any]) -> str:
        raw = json.dumps(payload, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def _decode_token(token: str, scope: str) -> dict[str, Any]:
        try:
            payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (ValueError, TypeError):
            payload = None
        if not isinstance(payload, dict) or payload.get("s") != scope:
            raise _ApiFailure(400, 36009004, "Invalid page_token: it does not belong to this query.")
        return payload

    def _body(self, req: Request) -> dict[str, Any]:
        try:
            body = req.json()
        except ValueError:
            raise _ApiFailure(400, 36009004, "Invalid request body: not JSON.") from None
        if not isinstance(body, dict):
            raise _ApiFailure(400, 36009004, "Invalid request body: expected a JSON object.")
        return body

    def _orders_search(self, req: Request) -> dict[str, Any]:
        size = self._page_size(req)
        body = self._body(req)
        where, args = [], []
        if body.get("order_status"):
            where.append("status = ?")
            args.append(str(body["order_status"]))
        orders, token, total = self._search_page(req, body, "orders", where, args, size, "DESC", _as_served)
        return {"orders": orders, "next_page_token": token, "total_count": total}

    def _search_page(self, req: Request, body: dict[str, Any], table: str, where: list[str], args: list[Any],
                     size: int, default_order: str, shape: Callable[[Any], Any]) -> tuple[list[Any], str, int]:
        """One page of a search of ``table`` (orders, cancellations, returns) as TikTok pages them.

        ``where``/``args`` are the search's own filters; the time windows of the
        body, the sort (``sort_field``, ``sort_order``, ``default_order`` when
        absent) and the keyset page token are common to every search. Each
        row's stored JSON goes through ``shape``; the paging faults apply.
        """
        field = req.query.get("sort_field") or "create_time"
        if field not in ("create_time", "update_time"):
            raise _ApiFailure(400, 36009004, "Invalid sort_field: use create_time or update_time.")
        direction = (req.query.get("sort_order") or default_order).upper()
        if direction not in ("ASC", "DESC"):
            raise _ApiFailure(400, 36009004, "Invalid sort_order: use ASC or DESC.")
        where, args = list(where), list(args)
        for key, column, op in (
            ("update_time_ge", "update_time", ">="), ("update_time_lt", "update_time", "<"),
            ("create_time_ge", "create_time", ">="), ("create_time_lt", "create_time", "<"),
        ):
            if body.get(key) is not None:
                where.insert(0, f"{column} {op} ?")
                args.insert(0, int(body[key]))
        filter_sql = " AND ".join(where) or "1"
        scope = hashlib.sha256(json.dumps([table, filter_sql, args, field, direction]).encode()).hexdigest()[:16]

        def serve(cursor: dict[str, Any] | None) -> tuple[list[Any], str, int]:
            page_where, page_args = [filter_sql], list(args)
            if cursor is not None:
                cmp = ">" if direction == "ASC" else "<"
                page_where.append(f"({field} {cmp} ? OR ({field} = ? AND id {cmp} ?))")
                page_args += [cursor["v"], cursor["v"], cursor["i"]]
            with self._db_lock:
                total = self._db.execute(f"SELECT COUNT(*) FROM {table} WHERE {filter_sql}", args).fetchone()[0]
                rows = self._db.execute(
                    f"SELECT id, {field}, data FROM {table} WHERE {' AND '.join(page_where)} "
                    f"ORDER BY {field} {direction}, id {direction} LIMIT ?",
                    [*page_args, size + 1],
                ).fetchall()
            more = len(rows) > size
            rows = rows[:size]
            token = self._encode_token({"s": scope, "v": rows[-1][1], "i": rows[-1][0]}) if more else ""
            return [shape(json.loads(r[2])) for r in rows], token, total

        return self._faulty_page(req, scope, serve)

    def _faulty_page(
        self, req: Request, scope: str,
        serve: Callable[[dict[str, Any] | None], tuple[list[Any], str, int]],
    ) -> tuple[list[Any], str, int]:
        """One page of a search, as ``paging_fault`` bends it (see the module docstring).

        ``serve(cursor)`` is the real listing: the items after ``cursor`` (None:
        the first page), the real next token and the total count. The fault's
        own tokens carry a marker instead of a cursor: ``x`` (endless, a count),
        ``c`` (cycle, 0 for A, 1 for B) or ``r`` (repeat of a one-page listing).
        """
        fault = self.faults.get("paging_fault")
        sent = req.query.get("page_token") or ""
        cursor = self._decode_token(sent, scope) if sent else None
        if cursor is not None and "x" in cursor:
            _, _, total = serve(None)
            if fault != "endless":
                return [], "", total
            # A nonce as well as a count: every token is one never seen before.
            token = self._encode_token({"s": scope, "x": int(cursor["x"]) + 1, "n": secrets.token_hex(4)})
            return [], token, total
        if cursor is not None and "c" in cursor and fault == "cycle":
            items, _, total = serve(None)
            return items, self._encode_token({"s": scope, "c": 1 - int(cursor["c"])}), total
        if cursor is not None and ("c" in cursor or "r" in cursor):
            cursor = None  # the fault's tokens start over from the first page
        items, token, total = serve(cursor)
        if token:
            return items, token, total
        if fault == "endless":
            token = self._encode_token({"s": scope, "x": 1, "n": secrets.token_hex(4)})
        elif fault == "repeat_last":
            token = sent or self._encode_token({"s": scope, "r": 1})
        elif fault == "cycle":
            token = self._encode_token({"s": scope, "c": 0})
        return items, token, total

    def _orders_get(self, req: Request) -> dict[str, Any]:
        ids = [i for i in (req.query.get("ids") or "").split(",") if i]
        if not ids:
            raise _ApiFailure(400, 36009004, "Invalid ids: at least one order id is required.")
        if len(ids) > MAX_DETAIL_IDS:
            raise _ApiFailure(400, 36009004, f"Invalid ids: at most {MAX_DETAIL_IDS} order ids per call.")
        with self._db_lock:
            rows = self._db.execute(
                f"SELECT id, data FROM orders WHERE id IN ({','.join('?' * len(ids))})", ids
            ).fetchall()
        found = {r[0]: _as_served(json.loads(r[1])) for r in rows}
        return {"orders": [found[i] for i in ids if i in found]}

    def _products_search(self, req: Request) -> dict[str, Any]:
        size = self._page_size(req)
        body = self._body(req)
        status = str(body.get("status") or "ALL")
        scope = "products:" + status

        def serve(cursor: dict[str, Any] | None) -> tuple[list[Any], str, int]:
            after = cursor["i"] if cursor is not None else ""
            with self._db_lock:
                rows = self._db.execute("SELECT id, data FROM products ORDER BY id").fetchall()
            products = [json.loads(r[1]) for r in rows]
            if status != "ALL":
                products = [p for p in products if p.get("status") == status]
            total = len(products)
            products = [p for p in products if p["id"] > after] if after else products
            page, more = products[:size], len(products) > size
            token = self._encode_token({"s": scope, "i": page[-1]["id"]}) if more else ""
            return [self._search_shape(p) for p in page], token, total

        products, token, total = self._faulty_page(req, scope, serve)
        return {"products": products, "next_page_token": token, "total_count": total}

    @staticmethod
    def _search_shape(product: dict[str, Any]) -> dict[str, Any]:
        """Search results are a summary: no ``external_sku_id`` (DESIGN §4.2)."""
        keep = ("id", "title", "status", "create_time", "update_time", "sales_regions")
        out = {k: product[k] for k in keep if k in product}
        out["skus"] = [
            {k: v for k, v in sku.items() if k in ("id", "seller_sku", "price", "inventory")}
            for sku in product.get("skus") or []
        ]
        return out

    def _product_get(self, req: Request) -> dict[str, Any]:
        match = _PRODUCT_DETAIL.match(req.path)
        product_id = match.group(1) if match else ""
        with self._db_lock:
            row = self._db.execute("SELECT data FROM products WHERE id = ?", (product_id,)).fetchone()
        if row is None:
            raise _ApiFailure(404, 36009004, f"Invalid product_id: product {product_id} does not exist.")
        return json.loads(row[0])

    # -- control endpoints --------------------------------------------------------------
    def control(self, req: Request) -> Reply | None:
        path, method = req.path, req.method
        if path == "/_sandbox/credentials" and method == "GET":
            return Reply(200, self.credentials)
        reply = self.auth_control(req)
        if reply is not None:
            return reply
        if path == "/_sandbox/state" and method == "GET":
            with self._db_lock:
                orders = self._db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
                products = self._db.execute("SELECT COUNT(*) FROM products").fetchone()[0]
            return Reply(200, {"orders": orders, "products": products})
        if path == "/_sandbox/orders" and method == "POST":
            return Reply(200, {"ids": self.add_orders(list(req.json().get("orders") or []))})
        if path == "/_sandbox/products" and method == "POST":
            return Reply(200, {"ids": self.add_products(list(req.json().get("products") or []))})
        if path == "/_sandbox/tokens/expire" and method == "POST":
            body = req.json()
            if body.get("access", True):
                self.expire_access_token()
            if body.get("refresh", False):
                self.expire_refresh_token()
            return Reply(200, {"expired": True})
        reply = self._life_control(req)
        if reply is not None:
            return reply
        if path.startswith("/_sandbox/orders/"):
            order_id = path.rsplit("/", 1)[1]
            if method == "GET":
                order = self.order(order_id)
                return Reply(200, order) if order else Reply(404, {"error": f"no order {order_id}"})
            if method == "POST":
                return Reply(200, self.update_order(order_id, **req.json()))
        return None

    def _life_control(self, req: Request) -> Reply | None:
        """The operator controls of an order's life after creation (module docstring)."""
        path, method = req.path, req.method
        body = req.json() if method == "POST" else {}
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        parts = path.strip("/").split("/")[1:]  # after "_sandbox"
        if parts == ["delivery_options"] and method == "POST":
            return Reply(200, {"ids": self.add_delivery_options(list(body.get("delivery_options") or []))})
        if parts in (["cancellations"], ["returns"]) and method == "GET":
            records = (self.cancellations if parts[0] == "cancellations" else self.returns)(
                req.query.get("order_id") or None)
            return Reply(200, {parts[0]: records})
        if len(parts) == 2 and parts[0] == "packages":
            if method == "GET":
                package = self.package(parts[1])
                return Reply(200, package) if package else Reply(404, {"error": f"no package {parts[1]}"})
            return Reply(200, self.update_package(parts[1], **body))
        if len(parts) == 2 and parts[0] in ("cancellations", "returns") and method == "POST":
            setter = self.set_cancellation_status if parts[0] == "cancellations" else self.set_return_status
            return Reply(200, setter(parts[1], str(body.get("status") or "")))
        if len(parts) >= 3 and parts[0] == "orders":
            order_id = parts[1]
            if parts[2:] == ["cancel"] and method == "POST":
                return Reply(200, self.cancel_order(order_id, **body))
            if len(parts) == 5 and parts[2] == "line_items" and parts[4] == "cancel" and method == "POST":
                return Reply(200, self.cancel_line(order_id, parts[3], **body))
            if parts[2:] == ["returns"] and method == "POST":
                return Reply(200, self.complete_return(order_id, **body))
            if parts[2:] == ["external_orders"] and method == "GET":
                return Reply(200, {"external_orders": self.external_orders_of(order_id)})
        return None
