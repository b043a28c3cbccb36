"""A Shopify Admin GraphQL API simulator on loopback, state in SQLite (DESIGN §8).

It serves, on one port:

* ``POST /admin/api/{version}/graphql.json`` — GraphQL over the schema of
  :mod:`.shopify_schema` (a subset of the real 2026-07 schema), executed with
  graphql-core. ``X-Shopify-Access-Token`` must be the static token or a
  client-credentials token that has not expired, else HTTP 401.
  Implemented root fields: ``productVariants``, ``products``, ``product``,
  ``productVariant``, ``orders``, ``order``, ``node``, ``nodes`` (at most 250
  ids; an unknown id is null), ``locations``, ``location`` (no id: the
  default one), ``shop``, ``currentAppInstallation``, ``bulkOperation``,
  ``currentBulkOperation``, ``job``; mutations ``orderCreate``,
  ``bulkOperationRunQuery``, ``orderCancel`` and ``refundCreate`` (with
  ``@idempotent(key:)``; see :mod:`.shopify_life` for both and for
  fulfillments). Connections take
  ``first``/``after`` (at most 250; ``last``/``before`` are refused) and
  ``reverse``; they are ordered by id.
* ``POST /admin/oauth/access_token`` — the client-credentials grant (form or
  JSON body ``client_id``, ``client_secret``, ``grant_type=client_credentials``),
  answering ``{access_token, scope, expires_in}``; bad credentials get 401
  ``{"error": "invalid_client"}``.
* ``GET /bulk-results/{id}.jsonl`` — a finished bulk operation's file (the
  ``url`` of the operation; no token needed, like Shopify's signed links),
  honouring ``Range: bytes=N-``.

As Shopify does, it prices every query (see :mod:`.shopify_cost`), refuses
one costing more than ``max_query_cost``, and meters calls with a leaky
bucket of ``bucket_size`` points restored at ``restore_rate`` per second,
answering ``THROTTLED`` with ``extensions.cost`` exactly shaped like Shopify's.

Search (``query:`` argument, Shopify's syntax ``field:value``,
``field:>value``, quoted values, ``AND`` implied or written, ``OR`` — which
binds tighter than ``AND``, as Shopify documents — ``-``/``NOT`` and
parentheses; see :func:`parse_search_tree`): ``productVariants`` knows ``sku`` (near
matches too — case-insensitive prefix, as the real search is not exact),
``updated_at``, ``product_id``, ``product_ids``, ``id``, ``product_status``,
``title`` and free text; ``products`` knows ``updated_at``, ``status``,
``id``, ``title``, ``sku``; ``orders`` knows ``source_identifier``, ``name``,
``id``. Unknown filters are ignored, as Shopify ignores them. An order is
found by ``orders`` only ``index_lag_seconds`` after its creation, and orders
processed more than 60 days ago are hidden without the ``read_all_orders`` scope.

``orderCreate`` prices the order as Shopify does (:mod:`.shopify_money`:
taxes added or included, one discount code spread over the lines, shipping
lines and their taxes, shop and presentment money, transactions, the
outstanding balance, the financial status) and answers what Shopify refuses
there as ``userErrors``; a line given without ``priceSet`` costs its
variant's price. It claims inventory per ``options.inventoryBehaviour``:
``BYPASS`` (the default) takes nothing, ``DECREMENT_IGNORING_POLICY`` always
decrements, ``DECREMENT_OBEYING_POLICY`` refuses with ``INVENTORY_CLAIM_FAILED``
when a tracked variant with policy ``DENY`` lacks stock. Stock is claimed at
``fulfillment.locationId`` when given — the order is then created fulfilled
(one ``SUCCESS`` fulfillment of every line from that location) — else at the
default location. Unknown variants and locations are ``INVALID`` user
errors. The order and its inventory change are one transaction, committed
before the answer is sent — so an injected ``lost_response`` leaves the order
in place (DESIGN §5.4).

Orders serve, besides ids, names and times: ``currencyCode``,
``presentmentCurrencyCode``, ``taxesIncluded``, ``subtotalPriceSet``,
``currentSubtotalPriceSet``, ``totalPriceSet``, ``currentTotalPriceSet``,
``originalTotalPriceSet``, ``totalTaxSet``, ``currentTotalTaxSet``,
``totalDiscountsSet``, ``currentTotalDiscountsSet``, ``totalShippingPriceSet``,
``totalReceivedSet``, ``totalOutstandingSet``, ``subtotalLineItemsQuantity``,
``currentSubtotalLineItemsQuantity``, ``displayFinancialStatus``,
``displayFulfillmentStatus``, ``fullyPaid``, ``requiresShipping``,
``cancelledAt``, ``cancelReason``, ``discountCode``, ``discountCodes``,
``email``, ``phone``, ``note``, ``tags`` (sorted, as Shopify answers them),
``customAttributes``, ``shippingAddress``, ``billingAddress``, ``taxLines``,
``lineItems`` (with ``quantity``, ``currentQuantity``, ``unfulfilledQuantity``,
``requiresShipping``, ``originalUnitPriceSet``, ``originalTotalSet``,
``discountedTotalSet``, ``totalDiscountSet``, ``discountAllocations``,
``taxLines``), ``shippingLines``, ``transactions`` (with ``parentTransaction``),
``fulfillments`` (with ``trackingInfo``, ``fulfillmentLineItems``, ``updatedAt``),
``refunds``, ``totalRefundedSet`` and ``netPaymentSet``; the ``current*``
fields leave refunded units out (:mod:`.shopify_money`).

Locations: a new state file has two, ``Shop location`` (the default; it holds
the seeded ``inventory_quantity``) and ``TikTok FBT warehouse``; a seeded
variant may put stock at the others with ``location_quantities: {location id
or name: quantity}``. A variant's ``inventoryQuantity`` is its total over
locations.

Trial and development stores create at most five orders a minute: with
``trial_order_limit_per_minute`` = N (0, the default, is off) an
``orderCreate`` request arriving when N orders were created in the last 60
seconds (by ``clock``) is refused whole, before anything is done, with HTTP
429 and ``{"errors": "Exceeded order API rate limit, please try again in a
minute. Upgrade to a paid account to remove this limit."}`` and no
``Retry-After`` — the answer Shopify's REST API gives (ShopifySharp #726,
shopify-api-ruby #899); the GraphQL answer is not documented.

``bulkOperationRunQuery`` accepts a query rooted at ``products`` (with a
nested ``variants`` connection) or ``productVariants`` (see :mod:`.shopify_bulk`);
it completes in a background thread after at least ``bulk_delay_seconds`` and
writes JSONL (children carry ``__parentId``) into a folder beside the state
file; a simulator restarted mid-operation marks it ``FAILED``.

Options (``ShopifySimulator(state_path, **options)``): ``products`` (seed
format of the contract; seeded only into a new state file — a restarted
simulator keeps its catalog, orders and inventory), ``access_token``,
``client_id``, ``client_secret`` (else generated once and kept in the state
file), ``access_scopes``, ``shop_name``, ``currency``, ``clock`` (a
``time.time`` stand-in for token expiry, order times and index lag),
``fault_seed``, and any fault key as its initial value.

Fault keys (``set_faults`` / ``POST /_sandbox/faults``): those of
:mod:`._http` (``latency_ms``, ``error_rate``, ``drop_rate``,
``lost_response_rate``, ``truncate_rate``, ``error_status``, ``seed``,
``fail_next``, ``reset``) plus ``bucket_size`` (default 2000),
``restore_rate`` (100), ``max_query_cost`` (1000), ``index_lag_seconds`` (0),
``token_lifetime_seconds`` (86399), ``bulk_delay_seconds`` (0),
``retry_after_seconds`` (1, the ``Retry-After`` of an injected 429),
``trial_order_limit_per_minute`` (0: off), ``job_delay_seconds`` (0: an
``orderCancel`` job runs before the next request is served),
``idempotency_retention_seconds`` (86400: how long ``refundCreate`` keys are kept).
Operation names for ``fail_next``: the first root field of the GraphQL
document (``orderCreate``, ``productVariants``, ``orders``, ``nodes``,
``orderCancel``, ``refundCreate``, ``job``, ``bulkOperationRunQuery``,
``bulkOperation``, ``shop``, …), ``token`` and
``bulk_download``; kind ``rate_limit`` answers HTTP 429 with ``Retry-After``.

Test-control endpoints (JSON):

* ``POST /_sandbox/faults``, ``GET /_sandbox/faults``, ``GET /_sandbox/requests[?op=]``
* ``GET  /_sandbox/orders`` — every order: ``id``, ``number``, ``name``,
  ``source_identifier``, ``source_name``, ``created_at``, ``updated_at``,
  ``inventory_behaviour``, ``currency``, ``presentment_currency``,
  ``taxes_included``, ``total``, ``current_total``, ``total_tax``,
  ``total_discounts``, ``outstanding``, ``received``, ``refunded`` (shop
  money, decimal strings), ``financial_status``, ``cancelled_at``,
  ``cancel_reason``, ``display_fulfillment_status``, ``fulfillment_location``,
  ``lines: [{id, variant_id, sku, title, quantity, current_quantity, price,
  fulfilled}]``, ``fulfillments`` (as :meth:`~ShopifySimulator.fulfillment_view`
  shows them) and ``refunds: [{id, created_at, note, amount, shipping, lines:
  [{line_id, quantity, restock_type, location, restocked}]}]``. Queued jobs run first.
* ``POST /_sandbox/orders/{number}/fulfil`` — a merchant fulfils
  (:meth:`~ShopifySimulator.fulfil`): ``{"lines": [{"line": position or
  LineItem GID, "quantity": n}] (absent: every unit left), "tracking_number",
  "company", "url", "location"}``; answers the fulfillment, 400 when impossible.
* ``POST /_sandbox/fulfillments/{id}/tracking`` — a merchant edits the tracking
  (:meth:`~ShopifySimulator.update_tracking`): ``{"tracking_number", "company", "url"}``.
* ``POST /_sandbox/jobs/run`` — run the queued jobs that are due (``{"force":
  true}``: all of them); answers ``{"ran": n}``.
* ``POST /_sandbox/orders/{number}/edit`` — a merchant's change to an order
  (:meth:`~ShopifySimulator.edit_order`): ``{"cancel": true}``, or ``{"line":
  position or LineItem GID`` with one of ``"quantity": n``, ``"remove":
  true``, ``"price": "9.99"`` (and ``"presentment_price"`` when the
  currencies differ)``}``; the money is recomputed, stock is not touched.
  Answers the order as listed above; 400 for an impossible edit.
* ``GET  /_sandbox/inventory`` — every variant: ``variant_id``, ``sku``,
  ``inventory_quantity`` (the total), ``inventory_policy``, ``locations``
  (``{location GID: quantity}``).
* ``POST /_sandbox/products`` — body ``{"products": [...]}`` (seed format): add or replace.
* ``POST /_sandbox/tokens/expire`` — expire every client-credentials token now.
* ``GET  /_sandbox/credentials`` — ``access_token``, ``client_id``, ``client_secret``.
* ``GET  /_sandbox/state`` — counts, the bucket's ``throttleStatus``, and ``stats``
  (answers ``throttled``, ``max_cost_exceeded``, ``unauthorized``,
  ``order_rate_limited``; also the
  :attr:`ShopifySimulator.stats` counter).

The same as methods: :meth:`~ShopifySimulator.orders`,
:meth:`~ShopifySimulator.edit_order`, :meth:`~ShopifySimulator.fulfil`,
:meth:`~ShopifySimulator.update_tracking`, :meth:`~ShopifySimulator.run_jobs`,
:meth:`~ShopifySimulator.inventory`, :meth:`~ShopifySimulator.add_products`,
:meth:`~ShopifySimulator.expire_tokens`, :meth:`~ShopifySimulator.set_faults`,
:meth:`~ShopifySimulator.ops`.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    validate,
)
from graphql.execution.values import get_directive_values

from ._http import Reply, Request, Simulator
from .shopify_bulk import BulkPlan
from .shopify_common import bag as _bag
from .shopify_common import decimal_text as _decimal_text
from .shopify_common import gid, iso, order_money_of, parse_gid
from .shopify_common import location_node as _location
from .shopify_cost import LeakyBucket, operation_cost, selected_fields
from .shopify_life import LIFE_COLUMNS, LIFE_SQL, OrderFacts, OrderLife
from .shopify_money import (
    ZERO,
    Bag,
    LineMoney,
    OrderInputError,
    OrderMoney,
    TaxLineMoney,
    minor_units,
    order_money,
)
from .shopify_schema import simulator_schema

GRAPHQL_PATH = re.compile(r"^/admin/api/(\d{4}-\d{2}|unstable)/graphql\.json$")
BULK_PATH = re.compile(r"^/bulk-results/(\d+)\.jsonl$")
TOKEN_PATH = "/admin/oauth/access_token"
MAX_PAGE = 250
DEFAULT_SCOPES = (
    "read_all_orders",
    "read_fulfillments",
    "read_inventory",
    "read_orders",
    "read_products",
    "write_fulfillments",
    "write_inventory",
    "write_orders",
)
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
THROTTLED_DOCS = "https://shopify.dev/api/usage/rate-limits"
ORDER_ID_BASE = 5_100_000_000_000
LINE_ITEM_ID_BASE = 13_900_000_000_000
FULFILLMENT_ID_BASE = 4_800_000_000_000
# The two locations of a new state file: the shop's own (stock as seeded) and TikTok's.
LOCATIONS = ((71_000_000_001, "Shop location", True, True),
             (71_000_000_002, "TikTok FBT warehouse", False, False))
TRIAL_ORDER_LIMIT = ("Exceeded order API rate limit, please try again in a minute. "
                     "Upgrade to a paid account to remove this limit.")
EDIT_PATH = re.compile(r"^/_sandbox/orders/(\d+)/edit$")
FULFIL_PATH = re.compile(r"^/_sandbox/orders/(\d+)/fulfil$")
TRACKING_PATH = re.compile(r"^/_sandbox/fulfillments/(\d+)/tracking$")
MAX_NODES = 250
# Columns added after the first state files were written: (table, column, type).
_ADDED_COLUMNS = (
    ("orders", "cancelled_at", "TEXT"),
    ("orders", "edits", "TEXT"),
)

_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS products (
    id INTEGER PRIMARY KEY, title TEXT NOT NULL, handle TEXT NOT NULL, status TEXT NOT NULL,
    vendor TEXT NOT NULL, product_type TEXT NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS variants (
    id INTEGER PRIMARY KEY, product_id INTEGER NOT NULL, position INTEGER NOT NULL,
    title TEXT NOT NULL, sku TEXT, sku_norm TEXT, barcode TEXT, price TEXT NOT NULL,
    inventory_item_id INTEGER NOT NULL, inventory_quantity INTEGER NOT NULL,
    inventory_policy TEXT NOT NULL, tracked INTEGER NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY, number INTEGER NOT NULL, name TEXT NOT NULL,
    source_identifier TEXT, source_name TEXT, email TEXT, phone TEXT, note TEXT,
    tags TEXT NOT NULL, test INTEGER NOT NULL, currency TEXT NOT NULL,
    financial_status TEXT, inventory_behaviour TEXT NOT NULL, total TEXT NOT NULL,
    created_epoch REAL NOT NULL, created_at TEXT NOT NULL, processed_at TEXT NOT NULL,
    input TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS line_items (
    id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, variant_id INTEGER, product_id INTEGER,
    title TEXT NOT NULL, variant_title TEXT, sku TEXT, quantity INTEGER NOT NULL,
    price TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS locations (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, is_default INTEGER NOT NULL,
    fulfills_online_orders INTEGER NOT NULL);
-- Stock held at a location other than the default one; variants.inventory_quantity is the
-- total, so the default location holds the total less these.
CREATE TABLE IF NOT EXISTS inventory_levels (
    variant_id INTEGER NOT NULL, location_id INTEGER NOT NULL, quantity INTEGER NOT NULL,
    PRIMARY KEY (variant_id, location_id));
CREATE TABLE IF NOT EXISTS fulfillments (
    id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, location_id INTEGER NOT NULL,
    status TEXT NOT NULL, quantity INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS bulk_operations (
    id INTEGER PRIMARY KEY, status TEXT NOT NULL, query TEXT NOT NULL,
    created_at TEXT NOT NULL, completed_at TEXT, error_code TEXT,
    object_count INTEGER NOT NULL DEFAULT 0, root_object_count INTEGER NOT NULL DEFAULT 0,
    file_size INTEGER, file TEXT);
"""

# Built after the seed is loaded: one index build beats 250,000 index updates.
_INDEX_SQL = """
CREATE INDEX IF NOT EXISTS products_updated ON products(updated_at);
CREATE INDEX IF NOT EXISTS variants_product ON variants(product_id, position);
CREATE INDEX IF NOT EXISTS variants_sku ON variants(sku_norm);
CREATE INDEX IF NOT EXISTS variants_updated ON variants(updated_at);
CREATE INDEX IF NOT EXISTS orders_source ON orders(source_identifier);
CREATE INDEX IF NOT EXISTS line_items_order ON line_items(order_id);
CREATE INDEX IF NOT EXISTS fulfillments_order ON fulfillments(order_id);
"""

_VARIANT_COLUMNS = (
    "v.id, v.product_id, v.position, v.title, v.sku, v.barcode, v.price, v.inventory_item_id, "
    "v.inventory_quantity, v.inventory_policy, v.tracked, v.created_at, v.updated_at"
)
_PRODUCT_COLUMNS = (
    "p.id, p.title, p.handle, p.status, p.vendor, p.product_type, p.created_at, p.updated_at"
)


@lru_cache(maxsize=4096)
def normalise_time(value: str) -> str | None:
    """An ISO 8601 text as the stored UTC form (``2026-01-02T03:04:05Z``), or None."""
    text = str(value).strip().strip("'\"")
    if re.fullmatch(r"\d{4}", text):
        text += "-01-01"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


SearchTerm = tuple[str | None, str, str]  # (field or None, comparator, value)
# A parsed query: ("term", SearchTerm) | ("not", node) | ("and", [nodes]) | ("or", [nodes]).
SearchNode = tuple[str, Any]

_TOKEN = re.compile(
    r"""\s*(?:(?P<open>\()|(?P<close>\))|(?P<neg>-)?"""
    r"""(?:(?P<field>[A-Za-z_]+):(?P<op>>=|<=|>|<|=)?)?"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|(?:\\.|[^\s()\\])+))"""
)


def _tokens(query: str) -> Iterator[tuple[str, Any]]:
    """Lexemes: ``("(", None)``, ``(")", None)``, ``("AND"|"OR"|"NOT", None)``, ``("term", (neg, term))``."""
    pos = 0
    while pos < len(query):
        match = _TOKEN.match(query, pos)
        if match is None:
            if query[pos:].strip() == "":
                return
            pos += 1  # a stray character (say a lone backslash): skipped
            continue
        pos = match.end()
        if match.group("open"):
            yield "(", None
            continue
        if match.group("close"):
            yield ")", None
            continue
        raw, field = match.group("value"), match.group("field")
        quoted = raw[0] in "\"'" and len(raw) >= 2 and raw[-1] == raw[0]
        if field is None and not match.group("neg") and not quoted and raw in ("AND", "OR", "NOT"):
            yield raw, None
            continue
        # Shopify escapes special characters with a backslash, quoted or not.
        value = re.sub(r"\\(.)", r"\1", raw[1:-1] if quoted else raw)
        term = (field.lower() if field else None, match.group("op") or "=", value)
        yield "term", (bool(match.group("neg")), term)


def parse_search_tree(query: str | None) -> SearchNode | None:
    """Shopify search syntax as a tree (None for an empty query).

    Terms are ``field:value``, ``field:>value`` (``<``, ``<=``, ``>=``) or free
    text, values quoted or not; ``-`` or ``NOT`` negates a term or a
    parenthesised group; ``AND`` is implied between terms. As Shopify
    documents it (``bob OR norman AND Shopify`` is ``(bob OR norman) AND
    Shopify``), ``OR`` binds tighter than ``AND``. Malformed input is read
    leniently: a dangling connective is dropped, a missing ``)`` is implied.
    """
    tokens = list(_tokens(query or ""))
    pos = 0

    def peek() -> str | None:
        return tokens[pos][0] if pos < len(tokens) else None

    def conjunction(inner: bool) -> SearchNode | None:
        nonlocal pos
        parts: list[SearchNode] = []
        while pos < len(tokens):
            kind = peek()
            if kind == ")":
                if inner:
                    break
                pos += 1  # an unmatched ")": dropped
                continue
            if kind in ("AND", "OR"):
                pos += 1  # AND is implied anyway; a leading or doubled OR has nothing before it
                continue
            node = disjunction()
            if node is not None:
                parts.append(node)
        return None if not parts else parts[0] if len(parts) == 1 else ("and", parts)

    def disjunction() -> SearchNode | None:
        nonlocal pos
        parts = [unary()]
        while peek() == "OR":
            pos += 1
            if peek() in (None, ")", "AND", "OR"):
                break
            parts.append(unary())
        kept = [part for part in parts if part is not None]
        return None if not kept else kept[0] if len(kept) == 1 else ("or", kept)

    def unary() -> SearchNode | None:
        nonlocal pos
        kind, data = tokens[pos]
        pos += 1
        if kind == "NOT":
            if peek() in (None, ")", "AND", "OR"):
                return ("term", (None, "=", "NOT"))  # a bare NOT is only a word
            inner = unary()
            return ("not", inner) if inner is not None else None
        if kind == "(":
            inner = conjunction(inner=True)
            if peek() == ")":
                pos += 1
            return inner
        negated, term = data
        return ("not", ("term", term)) if negated else ("term", term)

    return conjunction(inner=False)


def parse_search(query: str | None) -> list[SearchTerm]:
    """Every term of a query in order, connectives and grouping left out.

    ``[(field or None, comparator, value), ...]``; quoted values are unquoted.
    :func:`parse_search_tree` keeps the structure.
    """
    terms: list[SearchTerm] = []

    def walk(node: SearchNode) -> None:
        kind, data = node
        if kind == "term":
            terms.append(data)
        elif kind == "not":
            walk(data)
        else:
            for child in data:
                walk(child)

    tree = parse_search_tree(query)
    if tree is not None:
        walk(tree)
    return terms


def compile_search(
    query: str | None, leaf: Callable[[str | None, str, str], tuple[str, list[Any]] | None]
) -> tuple[list[str], list[Any]]:
    """A query as SQL: ``([condition], params)``, or ``([], [])`` when nothing filters.

    ``leaf(field, comparator, value)`` turns one term into ``(sql, params)``,
    or None for a filter Shopify does not know, which it ignores: such a term
    matches everything, also under ``NOT`` and inside ``OR``.
    """

    def build(node: SearchNode) -> tuple[str, list[Any]] | None:
        kind, data = node
        if kind == "term":
            return leaf(*data)
        if kind == "not":
            inner = build(data)
            # COALESCE: a NULL column compared is no match, and so NOT of it is one.
            return None if inner is None else (f"NOT COALESCE(({inner[0]}), 0)", inner[1])
        built = [build(child) for child in data]
        if kind == "or" and any(part is None for part in built):
            return None
        kept = [part for part in built if part is not None]
        if not kept:
            return None
        return balanced(" AND " if kind == "and" else " OR ", kept)

    def balanced(joiner: str, parts: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
        # Halves, not a flat chain: SQLite refuses expressions over 1000 deep,
        # and a lookup may OR together a thousand identifiers.
        if len(parts) == 1:
            return parts[0]
        (left, left_params), (right, right_params) = (
            balanced(joiner, parts[: len(parts) // 2]), balanced(joiner, parts[len(parts) // 2:]))
        return f"({left}){joiner}({right})", left_params + right_params

    tree = parse_search_tree(query)
    built = build(tree) if tree is not None else None
    if built is None:
        return [], []
    return [f"({built[0]})"], list(built[1])


def _sql_compare(op: str) -> str:
    return {">": ">", ">=": ">=", "<": "<", "<=": "<=", "=": "="}[op]


@lru_cache(maxsize=256)
def _parse_document(text: str) -> DocumentNode:
    return parse(text)


@lru_cache(maxsize=256)
def _document_problems(text: str) -> tuple[dict[str, Any], ...]:
    """The validation errors of a parsed document against the simulator's (fixed) schema.

    Cached by text: a client sends the same few documents thousands of times,
    and validating one costs more than running it.
    """
    return tuple(p.formatted for p in validate(simulator_schema(), _parse_document(text)))


def _user_error(field: list[str], message: str, code: str) -> dict[str, Any]:
    return {"field": field, "message": message, "code": code}


def _edit_amount(value: Any, currency: str) -> Decimal:
    """An operator's price: a plain non-negative amount with at most the currency's decimals."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"price {value!r} is not an amount") from None
    places = Decimal(1).scaleb(-minor_units(currency))
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(places):
        raise ValueError(f"price {value!r} is not a non-negative amount in {currency}")
    return amount


def _tax_lines(taxes: Iterable[TaxLineMoney], money: OrderMoney) -> list[dict[str, Any]]:
    return [
        {"title": t.title, "rate": float(t.rate), "ratePercentage": float(t.rate * 100),
         "priceSet": _bag(t.amount, money), "channelLiable": t.channel_liable}
        for t in taxes
    ]


def _order_tax_lines(money: OrderMoney) -> list[dict[str, Any]]:
    """``Order.taxLines``: every line and shipping tax line, summed per title and rate."""
    summed: dict[tuple[str, Decimal], TaxLineMoney] = {}
    for taxes in [line.tax_lines for line in money.lines] + [s.tax_lines for s in money.shipping_lines]:
        for tax in taxes:
            key = (tax.title, tax.rate)
            summed[key] = (TaxLineMoney(tax.title, tax.rate, summed[key].amount + tax.amount,
                                        tax.channel_liable) if key in summed else tax)
    return _tax_lines(summed.values(), money)


def _address(value: dict[str, Any] | None, number: int) -> dict[str, Any] | None:
    """A ``MailingAddressInput`` as the ``MailingAddress`` Shopify answers with."""
    if not value:
        return None
    names = [value.get("firstName"), value.get("lastName")]
    return {
        "__typename": "MailingAddress", "id": gid("MailingAddress", number),
        "firstName": value.get("firstName"), "lastName": value.get("lastName"),
        "name": " ".join(str(n) for n in names if n) or None, "company": value.get("company"),
        "address1": value.get("address1"), "address2": value.get("address2"),
        "city": value.get("city"), "provinceCode": value.get("provinceCode"),
        "zip": value.get("zip"), "countryCodeV2": value.get("countryCode"),
        "phone": value.get("phone"),
    }


def _control_body(req: Request, allowed: set[str]) -> dict[str, Any]:
    """A control endpoint's JSON object body, its keys among ``allowed`` (ValueError: a 400)."""
    body = req.json()
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    unknown = set(body) - allowed
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}; use {', '.join(sorted(allowed))}")
    return body


class ShopifySimulator(OrderLife, Simulator):
    """The Shopify simulator (see the module docstring for what it serves)."""

    extra_fault_defaults = {
        "bucket_size": 2000,
        "restore_rate": 100,
        "max_query_cost": 1000,
        "index_lag_seconds": 0.0,
        "token_lifetime_seconds": 86399,
        "bulk_delay_seconds": 0.0,
        "retry_after_seconds": 1.0,
        "trial_order_limit_per_minute": 0,
        "job_delay_seconds": 0.0,
        "idempotency_retention_seconds": 86400.0,
    }
    api_version = "2026-07"

    def __init__(
        self,
        state_path: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        products: Iterable[dict] | None = None,
        fault_seed: int | None = None,
        access_token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        access_scopes: Iterable[str] = DEFAULT_SCOPES,
        shop_name: str = "ecomsend sandbox",
        currency: str = "USD",
        clock: Callable[[], float] = time.time,
        **faults: Any,
    ) -> None:
        super().__init__(host=host, port=port, fault_seed=fault_seed)
        self.state_path = Path(state_path)
        self.bulk_folder = self.state_path.with_name(self.state_path.stem + "-bulk")
        self.access_scopes = tuple(access_scopes)
        self.shop_name = shop_name
        self.currency = currency
        self.clock = clock
        self.schema = simulator_schema()
        if faults:
            self.set_faults(**faults)
        self.bucket = LeakyBucket(self.faults.get("bucket_size"), self.faults.get("restore_rate"))
        self._db_lock = threading.RLock()
        self._db = sqlite3.connect(self.state_path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._closed = threading.Event()
        # Answers that are not faults but still worth counting in tests.
        self.stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self._order_limit_lock = threading.Lock()
        with self._db_lock:
            self._db.executescript(_SCHEMA_SQL)
            self._migrate()
            self._db.executescript(LIFE_SQL)
            new = self._meta("created") is None
            for key, given, prefix in (
                ("access_token", access_token, "shpat_sandbox_"),
                ("client_id", client_id, "sandbox-client-"),
                ("client_secret", client_secret, "shpss_sandbox_"),
            ):
                if given or self._meta(key) is None:
                    self._set_meta(key, given or prefix + secrets.token_hex(12))
            # A bulk operation cut off by a previous stop will never finish.
            self._db.execute(
                "UPDATE bulk_operations SET status = 'FAILED', error_code = 'INTERNAL_SERVER_ERROR' "
                "WHERE status IN ('CREATED', 'RUNNING')"
            )
            if new:
                self._set_meta("created", iso(self.clock()))
                if products is not None:
                    self._store_products(products, replace=False)
            self._db.executescript(_INDEX_SQL)
        self._root = _Root(self)

    # -- state -------------------------------------------------------------------

    def _migrate(self) -> None:
        """Bring a state file written by an older simulator up to date (orders and stock kept)."""
        for table, column, kind in _ADDED_COLUMNS + LIFE_COLUMNS:
            present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        if self._db.execute("SELECT COUNT(*) FROM locations").fetchone()[0] == 0:
            self._db.executemany("INSERT INTO locations VALUES (?,?,?,?)", LOCATIONS)

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @property
    def credentials(self) -> dict[str, str]:
        """The static ``access_token`` and the app's ``client_id`` / ``client_secret``."""
        with self._db_lock:
            return {
                "access_token": self._meta("access_token") or "",
                "client_id": self._meta("client_id") or "",
                "client_secret": self._meta("client_secret") or "",
            }

    def _store_products(self, products: Iterable[dict], *, replace: bool = True) -> int:
        """Insert or replace products (seed format) in one transaction; returns the variant count.

        ``replace`` drops a product's variants missing from its new list (not needed,
        and slow for 250,000 variants, when seeding a new file). A variant's
        ``inventory_quantity`` is held at the default location; its optional
        ``location_quantities`` (``{location id or name: quantity}``) at the others.
        """
        now = iso(self.clock())
        product_rows: list[tuple] = []
        variant_rows: list[tuple] = []
        level_rows: list[tuple] = []
        count = 0
        locations = {str(name): lid for lid, name in
                     self._db.execute("SELECT id, name FROM locations WHERE is_default = 0")}
        locations.update({gid("Location", lid): lid for lid in list(locations.values())})

        def flush() -> None:
            self._db.executemany(
                "INSERT OR REPLACE INTO products VALUES (?,?,?,?,?,?,?,?)", product_rows
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO variants VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                variant_rows,
            )
            self._db.executemany("INSERT OR REPLACE INTO inventory_levels VALUES (?,?,?)",
                                 level_rows)
            product_rows.clear()
            variant_rows.clear()
            level_rows.clear()

        with self._db_lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for product in products:
                    pid = int(product["id"])
                    updated = normalise_time(product.get("updated_at") or now) or now
                    created = normalise_time(product.get("created_at") or updated) or updated
                    title = str(product.get("title") or "")
                    product_rows.append((
                        pid, title,
                        product.get("handle") or re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-"),
                        str(product.get("status") or "ACTIVE"), str(product.get("vendor") or ""),
                        str(product.get("product_type") or ""), created, updated,
                    ))
                    variants = product.get("variants") or []
                    if replace and variants:
                        ids = [int(v["id"]) for v in variants]
                        marks = ",".join("?" * len(ids))
                        self._db.execute(
                            "DELETE FROM inventory_levels WHERE variant_id IN "
                            f"(SELECT id FROM variants WHERE product_id = ?) OR variant_id IN ({marks})",
                            (pid, *ids),
                        )
                        self._db.execute(
                            f"DELETE FROM variants WHERE product_id = ? AND id NOT IN ({marks})",
                            (pid, *ids),
                        )
                    for position, variant in enumerate(variants, 1):
                        sku = variant.get("sku")
                        v_updated = normalise_time(variant.get("updated_at") or updated) or updated
                        elsewhere = 0
                        for where, quantity in (variant.get("location_quantities") or {}).items():
                            if str(where) not in locations:
                                raise ValueError(f"variant {variant['id']}: no location {where!r}; "
                                                 f"use one of {sorted(locations)}")
                            level_rows.append((int(variant["id"]), locations[str(where)],
                                               int(quantity)))
                            elsewhere += int(quantity)
                        variant_rows.append((
                            int(variant["id"]), pid, position,
                            str(variant.get("title") or "Default Title"),
                            sku, (sku or "").strip().lower() or None, variant.get("barcode"),
                            str(variant.get("price") or "0.00"),
                            int(variant.get("inventory_item_id") or variant["id"]),
                            int(variant.get("inventory_quantity") or 0) + elsewhere,
                            str(variant.get("inventory_policy") or "DENY"),
                            1 if variant.get("tracked", True) else 0, created, v_updated,
                        ))
                        count += 1
                    if len(variant_rows) >= 20_000:
                        flush()
                flush()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return count

    def add_products(self, products: Iterable[dict]) -> int:
        """Add or replace products (seed format); returns how many variants were written."""
        return self._store_products(products)

    def expire_tokens(self) -> None:
        """Expire every token issued by the client-credentials grant."""
        with self._db_lock:
            self._db.execute("UPDATE tokens SET expires_at = ?", (self.clock() - 1,))

    def orders(self) -> list[dict[str, Any]]:
        """Every order with its lines, money, fulfillments and refunds, for tests (no index lag, no 60-day rule).

        Amounts are decimal strings in shop money (``currency``); the lines
        show their ``id`` (LineItem GID), the quantity ordered, the
        ``current_quantity`` left after edits and refunds, and the units
        ``fulfilled``; ``tags`` are the order's, sorted. Queued jobs run first.
        """
        self.run_jobs()
        with self._db_lock:
            orders = self._db.execute(
                "SELECT id, number, name, source_identifier, source_name, created_at, "
                "inventory_behaviour, input, cancel_reason, updated_at FROM orders ORDER BY id"
            ).fetchall()
            lines = self._db.execute(
                "SELECT order_id, id, variant_id, sku, title, quantity FROM line_items ORDER BY id"
            ).fetchall()
            fulfilled = dict(self._db.execute(
                "SELECT order_id, location_id FROM fulfillments ORDER BY id DESC"))
            fulfillments: dict[int, list[int]] = {}
            for oid, fid in self._db.execute("SELECT order_id, id FROM fulfillments ORDER BY id"):
                fulfillments.setdefault(oid, []).append(fid)
            facts = {row[0]: self.order_facts(row[0]) for row in orders}
        by_order: dict[int, list[dict[str, Any]]] = {}
        for order_id, lid, variant_id, sku, title, quantity in lines:
            by_order.setdefault(order_id, []).append({
                "id": gid("LineItem", lid),
                "variant_id": gid("ProductVariant", variant_id) if variant_id else None,
                "sku": sku, "title": title, "quantity": quantity,
            })
        out = []
        for oid, number, name, source, source_name, created, behaviour, text, reason, updated in orders:
            fact = facts[oid]
            assert fact is not None
            money = fact.money
            lines_out = by_order.get(oid, [])
            for place, (line, line_money) in enumerate(zip(lines_out, money.current_lines, strict=False)):
                line["current_quantity"] = 0 if money.cancelled else line_money.current_quantity
                line["price"] = _decimal_text(line_money.unit_price.shop)
                line["fulfilled"] = fact.fulfilled.get(fact.lines[place][0], 0)
            given = json.loads(text) if text else {}
            out.append({
                "id": gid("Order", oid), "number": number, "name": name,
                "source_identifier": source, "source_name": source_name, "created_at": created,
                "updated_at": updated or created,
                "inventory_behaviour": behaviour, "currency": money.currency,
                "presentment_currency": money.presentment_currency,
                "taxes_included": money.taxes_included,
                "total": _decimal_text(money.total.shop),
                "current_total": _decimal_text(money.current_total.shop),
                "total_tax": _decimal_text(money.total_tax.shop),
                "total_discounts": _decimal_text(money.total_discounts.shop),
                "outstanding": _decimal_text(money.outstanding.shop),
                "received": _decimal_text(money.received.shop),
                "refunded": _decimal_text(money.refunded.shop),
                "financial_status": money.display_financial_status, "cancelled_at": fact.cancelled,
                "cancel_reason": (reason or "OTHER") if fact.cancelled else None,
                "display_fulfillment_status": self.display_fulfillment_status(
                    fact, given.get("fulfillmentStatus")),
                "fulfillment_location": gid("Location", fulfilled[oid]) if oid in fulfilled else None,
                "tags": sorted(given.get("tags") or []),
                "lines": lines_out,
                "fulfillments": [self.fulfillment_view(fid) for fid in fulfillments.get(oid, [])],
                "refunds": [self._refund_view(fact, record) for record in fact.refunds],
            })
        return out

    def inventory(self) -> list[dict[str, Any]]:
        """Every variant's SKU, total stock, stock per location and inventory policy.

        ``inventory_quantity`` is the total over locations; ``locations`` maps
        each location's GID to the quantity held there. Queued jobs run first.
        """
        self.run_jobs()
        with self._db_lock:
            rows = self._db.execute(
                "SELECT id, sku, inventory_quantity, inventory_policy FROM variants ORDER BY id"
            ).fetchall()
            levels = self._db.execute(
                "SELECT variant_id, location_id, quantity FROM inventory_levels"
            ).fetchall()
            locations = self._db.execute(
                "SELECT id, is_default FROM locations ORDER BY id"
            ).fetchall()
        default = next(lid for lid, is_default in locations if is_default)
        elsewhere: dict[int, dict[int, int]] = {}
        for vid, lid, quantity in levels:
            elsewhere.setdefault(vid, {})[lid] = quantity
        out = []
        for vid, sku, qty, policy in rows:
            held = elsewhere.get(vid, {})
            by_location = {gid("Location", lid): held.get(lid, 0) for lid, _ in locations}
            by_location[gid("Location", default)] = qty - sum(held.values())
            out.append({"variant_id": gid("ProductVariant", vid), "sku": sku,
                        "inventory_quantity": qty, "inventory_policy": policy,
                        "locations": by_location})
        return out

    def edit_order(self, number: int, *, line: int | str | None = None, quantity: int | None = None,
                   price: str | None = None, presentment_price: str | None = None,
                   remove: bool = False, cancel: bool = False) -> dict[str, Any]:
        """An operator's change to order ``number`` (e.g. 1001), as a merchant makes in the admin.

        One change per call: ``cancel``; or, for ``line`` (0-based position or
        LineItem GID), a new ``quantity``, ``remove`` (quantity 0), or a new
        unit ``price`` (shop money; ``presentment_price`` too when the
        presentment currency differs). The order's money is recomputed
        (:func:`.shopify_money.edit_money`); stock is not touched. Returns the
        order as :meth:`orders` lists it; ValueError for an impossible edit.
        """
        with self._db_lock:
            row = self._db.execute(
                "SELECT id, currency, input, edits, cancelled_at, refunds FROM orders WHERE number = ?",
                (number,),
            ).fetchone()
            if row is None:
                raise ValueError(f"no order number {number}")
            oid, currency, text, edits_text, cancelled, refunds = row
            if cancelled:
                raise ValueError(f"order {number} is cancelled")
            if cancel:
                if line is not None or quantity is not None or price is not None or remove:
                    raise ValueError("cancel takes no other change")
                self._db.execute("UPDATE orders SET cancelled_at = ? WHERE id = ?",
                                 (iso(self.clock()), oid))
                return next(o for o in self.orders() if o["id"] == gid("Order", oid))
            money = order_money_of(text, edits_text, None, currency)
            place = self._line_place(oid, line)
            changes = [quantity is not None, price is not None, bool(remove)]
            if sum(changes) != 1:
                raise ValueError("give exactly one of quantity, price, remove (or cancel)")
            edit: dict[str, Any] = {"line": place}
            if price is not None:
                if money.presentment_currency != money.currency and presentment_price is None:
                    raise ValueError(f"presentment_price ({money.presentment_currency}) is needed "
                                     "too: the order's presentment currency is not its currency")
                shop = _edit_amount(price, money.currency)
                other = (shop if presentment_price is None
                         else _edit_amount(presentment_price, money.presentment_currency))
                edit["price"] = [str(shop), str(other)]
            else:
                edit["quantity"] = 0 if remove else int(quantity or 0)
            edits = [*json.loads(edits_text or "[]"), edit]
            order_money_of(text, json.dumps(edits), None, currency, refunds)  # ValueError if impossible
            self._db.execute("UPDATE orders SET edits = ? WHERE id = ?", (json.dumps(edits), oid))
        return next(o for o in self.orders() if o["id"] == gid("Order", oid))

    def _line_place(self, oid: int, line: int | str | None) -> int:
        ids = [lid for (lid,) in self._db.execute(
            "SELECT id FROM line_items WHERE order_id = ? ORDER BY id", (oid,))]
        if isinstance(line, str):
            parsed = parse_gid(line, "LineItem")
            if parsed is None or parsed[1] not in ids:
                raise ValueError(f"the order has no line {line}")
            return ids.index(parsed[1])
        if not isinstance(line, int) or isinstance(line, bool) or not 0 <= line < len(ids):
            raise ValueError(f"line must be a position 0..{len(ids) - 1} or a LineItem GID")
        return line

    def close(self) -> None:
        self._closed.set()
        with self._db_lock:
            self._db.close()

    # -- HTTP hooks ----------------------------------------------------------------

    def operation(self, req: Request) -> str | None:
        if req.path == TOKEN_PATH:
            return "token"
        if BULK_PATH.match(req.path):
            return "bulk_download"
        if GRAPHQL_PATH.match(req.path):
            try:
                document = _parse_document(json.loads(req.body)["query"])
            except (ValueError, KeyError, TypeError, GraphQLError):
                return None
            for definition in document.definitions:
                if isinstance(definition, OperationDefinitionNode):
                    for field, _ in selected_fields(definition.selection_set, {}):
                        return field.name.value
        return None

    def error_reply(self, req: Request, status: int) -> Reply:
        return Reply(status, {"errors": "Internal Server Error"})

    def throttled_reply(self, req: Request) -> Reply:
        retry_after = float(self.faults.get("retry_after_seconds"))
        return Reply(
            429,
            {"errors": "Exceeded rate limit"},
            headers={"Retry-After": f"{retry_after:g}"},
        )

    def handle(self, req: Request) -> Reply:
        if req.method == "POST" and GRAPHQL_PATH.match(req.path):
            return self._graphql(req)
        if req.method == "POST" and req.path == TOKEN_PATH:
            return self._token(req)
        match = BULK_PATH.match(req.path)
        if req.method == "GET" and match:
            return self._bulk_file(int(match.group(1)), req)
        return Reply(404, {"errors": "Not Found"})

    def control(self, req: Request) -> Reply | None:
        if req.path == "/_sandbox/orders" and req.method == "GET":
            return Reply(200, {"orders": self.orders()})
        edit = EDIT_PATH.match(req.path)
        if edit and req.method == "POST":
            body = req.json()
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            unknown = set(body) - {"line", "quantity", "price", "presentment_price", "remove",
                                   "cancel"}
            if unknown:
                raise ValueError(f"unknown edit keys: {', '.join(sorted(unknown))}")
            return Reply(200, self.edit_order(int(edit.group(1)), **body))
        fulfil = FULFIL_PATH.match(req.path)
        if fulfil and req.method == "POST":
            body = _control_body(req, {"lines", "tracking_number", "company", "url", "location"})
            return Reply(200, self.fulfil(int(fulfil.group(1)), body.pop("lines", None), **body))
        tracking = TRACKING_PATH.match(req.path)
        if tracking and req.method == "POST":
            body = _control_body(req, {"tracking_number", "company", "url"})
            if not isinstance(body.get("tracking_number"), str) or not body["tracking_number"]:
                raise ValueError("the body needs a tracking_number")
            return Reply(200, self.update_tracking(int(tracking.group(1)), **body))
        if req.path == "/_sandbox/jobs/run" and req.method == "POST":
            body = _control_body(req, {"force"}) if req.body else {}
            return Reply(200, {"ran": self.run_jobs(force=bool(body.get("force")))})
        if req.path == "/_sandbox/inventory" and req.method == "GET":
            return Reply(200, {"variants": self.inventory()})
        if req.path == "/_sandbox/products" and req.method == "POST":
            products = req.json().get("products")
            if not isinstance(products, list):
                raise ValueError("the body needs {\"products\": [...]}")
            return Reply(200, {"variants": self.add_products(products)})
        if req.path == "/_sandbox/tokens/expire" and req.method == "POST":
            self.expire_tokens()
            return Reply(200, {"expired": True})
        if req.path == "/_sandbox/credentials" and req.method == "GET":
            return Reply(200, self.credentials)
        if req.path == "/_sandbox/state" and req.method == "GET":
            with self._db_lock:
                counts = {
                    table: self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                    for table in ("products", "variants", "orders", "bulk_operations")
                }
            self._configure_bucket()
            return Reply(200, {**counts, "throttleStatus": self.bucket.status(),
                               "stats": dict(self.stats)})
        return None

    # -- authentication ---------------------------------------------------------------

    def _token(self, req: Request) -> Reply:
        if req.headers.get("content-type", "").startswith("application/json"):
            try:
                form = req.json()
            except ValueError:
                form = {}
        else:
            form = dict(parse_qsl(req.body.decode("utf-8", "replace")))
        if not isinstance(form, dict):
            form = {}
        if form.get("grant_type") != "client_credentials":
            return Reply(400, {"error": "unsupported_grant_type",
                               "error_description": "grant_type must be client_credentials"})
        creds = self.credentials
        if form.get("client_id") != creds["client_id"] or not secrets.compare_digest(
            str(form.get("client_secret", "")), creds["client_secret"]
        ):
            return Reply(401, {"error": "invalid_client",
                               "error_description": "Client authentication failed."})
        lifetime = int(self.faults.get("token_lifetime_seconds"))
        token = "shpat_" + secrets.token_hex(16)
        with self._db_lock:
            self._db.execute(
                "INSERT INTO tokens (token, expires_at) VALUES (?, ?)", (token, self.clock() + lifetime)
            )
        return Reply(200, {"access_token": token, "scope": ",".join(self.access_scopes),
                           "expires_in": lifetime})

    def _token_valid(self, token: str | None) -> bool:
        if not token:
            return False
        with self._db_lock:
            if secrets.compare_digest(token, self._meta("access_token") or ""):
                return True
            row = self._db.execute(
                "SELECT expires_at FROM tokens WHERE token = ?", (token,)
            ).fetchone()
        return row is not None and row[0] > self.clock()

    # -- GraphQL ------------------------------------------------------------------------

    def _configure_bucket(self) -> None:
        self.bucket.configure(self.faults.get("bucket_size"), self.faults.get("restore_rate"))

    def _graphql(self, req: Request) -> Reply:
        if not self._token_valid(req.headers.get("x-shopify-access-token")):
            self._count("unauthorized")
            return Reply(401, {"errors": INVALID_TOKEN})
        self.run_jobs()  # queued orderCancel jobs complete before the next request is served
        try:
            body = req.json()
            text = body["query"]
            variables = body.get("variables") or {}
            operation_name = body.get("operationName")
            if not isinstance(text, str) or not isinstance(variables, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return Reply(400, {"errors": {"query": "Required parameter missing or invalid"}})
        try:
            document = _parse_document(text)
        except GraphQLError as exc:
            return Reply(200, {"errors": [exc.formatted]})
        problems = _document_problems(text)
        if problems:
            return Reply(200, {"errors": list(problems)})
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        operation = next(
            (o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)),
            None,
        )
        if operation is None:
            return Reply(200, {"errors": [{"message": "An operation name is required"}]})
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        limit = int(self.faults.get("trial_order_limit_per_minute") or 0)
        if limit > 0 and operation.operation == OperationType.MUTATION and any(
            field.name.value == "orderCreate"
            for field, _ in selected_fields(operation.selection_set, fragments)
        ):
            # Checked and executed under one lock: two requests at once cannot both
            # take the last order of the minute.
            with self._order_limit_lock:
                with self._db_lock:
                    recent = self._db.execute(
                        "SELECT COUNT(*) FROM orders WHERE created_epoch > ?", (self.clock() - 60,)
                    ).fetchone()[0]
                if recent >= limit:
                    self._count("order_rate_limited")
                    return Reply(429, {"errors": TRIAL_ORDER_LIMIT})
                return self._execute(document, operation, fragments, variables, operation_name)
        return self._execute(document, operation, fragments, variables, operation_name)

    def _execute(self, document: DocumentNode, operation: OperationDefinitionNode,
                 fragments: dict[str, FragmentDefinitionNode], variables: dict[str, Any],
                 operation_name: str | None) -> Reply:
        """Price, meter and run one valid operation."""
        self._configure_bucket()
        requested = operation_cost(self.schema, operation, fragments, variables)
        limit = int(self.faults.get("max_query_cost"))
        if requested > limit:
            self._count("max_cost_exceeded")
            return Reply(200, {
                "errors": [{
                    "message": (
                        f"Query cost is {requested}, which exceeds the single query max cost "
                        f"limit ({limit}).\n\nSee https://shopify.dev/concepts/about-apis/rate-limits "
                        "for more information on how the\ncost of a query is calculated.\n\n"
                        "To query larger amounts of data with fewer limits, bulk operations "
                        "should be used instead.\nSee "
                        "https://shopify.dev/api/usage/bulk-operations/queries for usage details.\n"
                    ),
                    "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested,
                                   "maxCost": limit},
                }],
                "extensions": {"cost": self._cost(requested, None)},
            })
        if not self.bucket.take(requested):
            self._count("throttled")
            return Reply(200, {
                "errors": [{
                    "message": "Throttled",
                    "extensions": {"code": "THROTTLED", "documentation": THROTTLED_DOCS},
                }],
                "extensions": {"cost": self._cost(requested, None)},
            })
        result = execute(
            self.schema, document, root_value=self._root, variable_values=variables,
            operation_name=operation_name, context_value=self,
        )
        actual = requested
        if result.data is not None:
            actual = min(requested, operation_cost(self.schema, operation, fragments, variables,
                                                   result.data))
        self.bucket.give_back(requested - actual)
        payload: dict[str, Any] = {}
        if result.errors:
            payload["errors"] = [e.formatted for e in result.errors]
        payload["data"] = result.data
        payload["extensions"] = {"cost": self._cost(requested, actual)}
        return Reply(200, payload)

    def _count(self, what: str) -> None:
        with self._stats_lock:
            self.stats[what] += 1

    def _cost(self, requested: int, actual: int | None) -> dict[str, Any]:
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": self.bucket.status(),
        }

    # -- records as GraphQL objects ------------------------------------------------------

    def _product(self, row: tuple) -> dict[str, Any]:
        pid, title, handle, status, vendor, product_type, created, updated = row
        product: dict[str, Any] = {
            "__typename": "Product", "id": gid("Product", pid), "legacyResourceId": str(pid),
            "title": title, "handle": handle, "status": status, "vendor": vendor,
            "productType": product_type, "tags": [], "createdAt": created, "updatedAt": updated,
        }
        product["totalInventory"] = lambda info: self._total_inventory(pid)
        product["variants"] = lambda info, **args: self._variant_connection(
            args, extra=(["v.product_id = ?"], [pid])
        )
        return product

    def _variant(self, row: tuple, product: dict[str, Any]) -> dict[str, Any]:
        (vid, _pid, position, title, sku, barcode, price, item_id, quantity, policy, tracked,
         created, updated) = row
        return {
            "__typename": "ProductVariant", "id": gid("ProductVariant", vid),
            "legacyResourceId": str(vid), "title": title,
            "displayName": f"{product['title']} - {title}", "sku": sku, "barcode": barcode,
            "price": price, "position": position, "taxable": True,
            "inventoryQuantity": quantity if tracked else None, "inventoryPolicy": policy,
            "inventoryItem": {
                "__typename": "InventoryItem", "id": gid("InventoryItem", item_id),
                "legacyResourceId": str(item_id), "sku": sku, "tracked": bool(tracked),
                "createdAt": created, "updatedAt": updated,
            },
            "product": product, "createdAt": created, "updatedAt": updated,
        }

    def _total_inventory(self, pid: int) -> int:
        with self._db_lock:
            row = self._db.execute(
                "SELECT COALESCE(SUM(inventory_quantity), 0) FROM variants WHERE product_id = ?",
                (pid,),
            ).fetchone()
        return int(row[0])

    def _order(self, row: tuple) -> dict[str, Any]:
        (oid, _number, name, source, source_name, email, phone, note, tags, test, _currency,
         _financial, _behaviour, _total, _epoch, created, processed, text, _edits, cancelled,
         _refunds, cancel_reason, updated, _location_id) = row
        with self._db_lock:
            facts = self.order_facts(oid)
        assert facts is not None
        money = facts.money
        given = json.loads(text)

        def bag(amount: Bag) -> dict[str, Any]:
            return _bag(amount, money)

        code = [money.discount_code] if money.discount_code is not None else []
        return {
            "__typename": "Order", "id": gid("Order", oid), "legacyResourceId": str(oid),
            "name": name, "email": email, "phone": phone, "note": note,
            "tags": sorted(json.loads(tags)),  # Shopify answers tags sorted (captured answer)
            "test": bool(test), "sourceIdentifier": source, "sourceName": source_name,
            "currencyCode": money.currency, "presentmentCurrencyCode": money.presentment_currency,
            "taxesIncluded": money.taxes_included,
            "displayFinancialStatus": money.display_financial_status,
            "displayFulfillmentStatus": self.display_fulfillment_status(facts, given.get("fulfillmentStatus")),
            "fullyPaid": money.outstanding.shop <= 0,
            "requiresShipping": any(line.requires_shipping and line.current_quantity
                                    for line in money.current_lines) and not cancelled,
            "cancelledAt": cancelled, "cancelReason": (cancel_reason or "OTHER") if cancelled else None,
            "createdAt": created, "processedAt": processed, "updatedAt": updated or created,
            "discountCode": code[0] if code else None, "discountCodes": code,
            "customAttributes": [{"key": str(a.get("key")), "value": a.get("value")}
                                 for a in given.get("customAttributes") or []],
            "shippingAddress": _address(given.get("shippingAddress"), oid * 10 + 1),
            "billingAddress": _address(given.get("billingAddress"), oid * 10 + 2),
            "subtotalLineItemsQuantity": money.quantity,
            "currentSubtotalLineItemsQuantity": money.current_quantity,
            "subtotalPriceSet": bag(money.subtotal),
            "currentSubtotalPriceSet": bag(money.current_subtotal),
            "totalPriceSet": bag(money.total),
            "currentTotalPriceSet": bag(money.current_total),
            "originalTotalPriceSet": bag(money.original_total),
            "totalTaxSet": bag(money.total_tax),
            "currentTotalTaxSet": bag(money.current_total_tax),
            "totalDiscountsSet": bag(money.total_discounts),
            "currentTotalDiscountsSet": bag(money.current_total_discounts),
            "totalShippingPriceSet": bag(money.shipping),
            "totalReceivedSet": bag(money.received),
            "totalRefundedSet": bag(money.refunded),
            "netPaymentSet": bag(money.net_payment),
            "totalOutstandingSet": bag(money.outstanding),
            "taxLines": _order_tax_lines(money),
            "lineItems": lambda info, **args: self._memory_connection(
                [(int(node["legacyId"]), node) for node in self._line_nodes(oid, facts)], args),
            "shippingLines": lambda info, **args: self._shipping_lines(oid, money, args),
            "transactions": lambda info, first=None, **_: self.transaction_nodes(oid, first),
            "fulfillments": lambda info, first=None, **_: self.fulfillment_nodes(oid, name, first),
            "refunds": lambda info, first=None, **_: self.refund_nodes(oid, first),
        }

    _ORDER_COLUMNS = (
        "id, number, name, source_identifier, source_name, email, phone, note, tags, test, "
        "currency, financial_status, inventory_behaviour, total, created_epoch, created_at, "
        "processed_at, input, edits, cancelled_at, refunds, cancel_reason, updated_at, location_id"
    )

    # -- connections -------------------------------------------------------------------

    @staticmethod
    def _page_args(args: dict[str, Any]) -> tuple[int, int | None, bool]:
        if args.get("last") is not None or args.get("before") is not None:
            raise GraphQLError("The sandbox supports first/after pagination only")
        first = args.get("first")
        if first is None:
            raise GraphQLError("you must provide one of first or last")
        if first < 0 or first > MAX_PAGE:
            raise GraphQLError(f"The first argument must be between 0 and {MAX_PAGE}")
        after = None
        if args.get("after"):
            try:
                after = int(json.loads(base64.b64decode(args["after"]))["last_id"])
            except (ValueError, KeyError, TypeError):
                raise GraphQLError("Invalid cursor for current pagination sort.") from None
        return first, after, bool(args.get("reverse"))

    @staticmethod
    def _cursor(last_id: int) -> str:
        return base64.b64encode(json.dumps({"last_id": last_id}).encode()).decode()

    def _page(
        self, sql_from: str, id_column: str, conditions: list[str], params: list[Any],
        args: dict[str, Any], columns: str,
    ) -> tuple[list[tuple], bool]:
        first, after, reverse = self._page_args(args)
        conditions = list(conditions)
        params = list(params)
        if after is not None:
            conditions.append(f"{id_column} {'<' if reverse else '>'} ?")
            params.append(after)
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        order = "DESC" if reverse else "ASC"
        with self._db_lock:
            rows = self._db.execute(
                f"SELECT {columns} FROM {sql_from}{where} ORDER BY {id_column} {order} LIMIT ?",
                (*params, first + 1),
            ).fetchall()
        return rows[:first], len(rows) > first

    def _connection(self, nodes: list[dict[str, Any]], ids: list[int], more: bool,
                    args: dict[str, Any]) -> dict[str, Any]:
        edges = [{"cursor": self._cursor(i), "node": n} for i, n in zip(ids, nodes, strict=True)]
        return {
            "edges": edges,
            "nodes": nodes,
            "pageInfo": {
                "hasNextPage": more,
                "hasPreviousPage": bool(args.get("after")),
                "startCursor": edges[0]["cursor"] if edges else None,
                "endCursor": edges[-1]["cursor"] if edges else None,
            },
        }

    def _variant_filters(self, query: str | None) -> tuple[list[str], list[Any]]:
        def leaf(field: str | None, op: str, value: str) -> tuple[str, list[Any]] | None:
            if field == "sku":
                # Shopify's search is tokenised, not exact: a case-insensitive
                # prefix stands in for its near matches.
                key = value.strip().lower()
                return "v.sku_norm >= ? AND v.sku_norm < ?", [key, key + "\U0010ffff"]
            if field == "updated_at":
                moment = normalise_time(value)
                return (f"v.updated_at {_sql_compare(op)} ?", [moment]) if moment else None
            if field == "product_id" and value.isdigit():
                return "v.product_id = ?", [int(value)]
            if field == "product_ids":
                ids = [int(x) for x in value.split(",") if x.strip().isdigit()]
                return f"v.product_id IN ({','.join('?' * len(ids)) or 'NULL'})", ids
            if field == "id" and value.isdigit():
                return f"v.id {_sql_compare(op)} ?", [int(value)]
            if field == "product_status":
                statuses = [s.strip().upper() for s in value.split(",") if s.strip()]
                return f"p.status IN ({','.join('?' * len(statuses)) or 'NULL'})", statuses
            if field == "title":
                return "v.title LIKE ?", [f"%{value}%"]
            if field is None:
                return ("(v.sku_norm LIKE ? OR p.title LIKE ? OR v.title LIKE ?)",
                        [f"%{value.lower()}%", f"%{value}%", f"%{value}%"])
            return None

        return compile_search(query, leaf)

    def _variant_connection(
        self, args: dict[str, Any], extra: tuple[list[str], list[Any]] = ([], [])
    ) -> dict[str, Any]:
        conditions, params = self._variant_filters(args.get("query"))
        rows, more = self._page(
            "variants v JOIN products p ON p.id = v.product_id", "v.id",
            extra[0] + conditions, extra[1] + params, args,
            f"{_VARIANT_COLUMNS}, {_PRODUCT_COLUMNS}",
        )
        products: dict[int, dict[str, Any]] = {}
        nodes = []
        for row in rows:
            pid = row[1]
            if pid not in products:
                products[pid] = self._product(row[13:])
            nodes.append(self._variant(row[:13], products[pid]))
        return self._connection(nodes, [r[0] for r in rows], more, args)

    def _product_filters(self, query: str | None) -> tuple[list[str], list[Any]]:
        def leaf(field: str | None, op: str, value: str) -> tuple[str, list[Any]] | None:
            if field == "updated_at":
                moment = normalise_time(value)
                return (f"p.updated_at {_sql_compare(op)} ?", [moment]) if moment else None
            if field == "status":
                statuses = [s.strip().upper() for s in value.split(",") if s.strip()]
                return f"p.status IN ({','.join('?' * len(statuses)) or 'NULL'})", statuses
            if field == "id" and value.isdigit():
                return f"p.id {_sql_compare(op)} ?", [int(value)]
            if field == "title" or field is None:
                return "p.title LIKE ?", [f"%{value}%"]
            if field == "sku":
                key = value.strip().lower()
                return ("EXISTS (SELECT 1 FROM variants v WHERE v.product_id = p.id "
                        "AND v.sku_norm >= ? AND v.sku_norm < ?)", [key, key + "\U0010ffff"])
            return None

        return compile_search(query, leaf)

    def _product_connection(self, args: dict[str, Any]) -> dict[str, Any]:
        conditions, params = self._product_filters(args.get("query"))
        rows, more = self._page("products p", "p.id", conditions, params, args, _PRODUCT_COLUMNS)
        return self._connection([self._product(r) for r in rows], [r[0] for r in rows], more, args)

    def _order_filters(self, query: str | None) -> tuple[list[str], list[Any]]:
        lag = float(self.faults.get("index_lag_seconds"))
        # Orders reach the search index only some time after creation.
        conditions = ["created_epoch <= ?"]
        params: list[Any] = [self.clock() - lag]
        if "read_all_orders" not in self.access_scopes:
            conditions.append("processed_at >= ?")
            params.append(iso(self.clock() - 60 * 86400))

        def leaf(field: str | None, _op: str, value: str) -> tuple[str, list[Any]] | None:
            if field == "source_identifier":
                return "LOWER(source_identifier) = LOWER(?)", [value]
            if field == "name":
                return "name = ? OR name = ?", [value, "#" + value.lstrip("#")]
            if field == "id" and value.isdigit():
                return "id = ?", [int(value)]
            return None

        # The index lag and the 60-day rule hold for each order, whatever the query says.
        query_conditions, query_params = compile_search(query, leaf)
        return conditions + query_conditions, params + query_params

    def _order_connection(self, args: dict[str, Any]) -> dict[str, Any]:
        conditions, params = self._order_filters(args.get("query"))
        rows, more = self._page("orders", "id", conditions, params, args, self._ORDER_COLUMNS)
        return self._connection([self._order(r) for r in rows], [r[0] for r in rows], more, args)

    def _line_nodes(self, oid: int, facts: OrderFacts | None = None) -> list[dict[str, Any]]:
        """The order's line items as GraphQL serves them, in order (``legacyId``: the id, for paging)."""
        with self._db_lock:
            facts = facts or self.order_facts(oid)
            rows = self._db.execute(
                "SELECT id, variant_id, product_id, title, variant_title, sku, quantity, price FROM line_items "
                "WHERE order_id = ? ORDER BY id", (oid,),
            ).fetchall()
        assert facts is not None
        money = facts.money
        current_lines = money.current_lines
        nodes = []
        # A line's money is found by its place in the order (ids are given in input order).
        for place, (lid, vid, pid, title, variant_title, sku, quantity, price) in enumerate(rows):
            if place < len(money.lines):
                line, now = money.lines[place], current_lines[place]
            else:
                line = now = LineMoney(place, quantity, quantity, Bag(Decimal(price), Decimal(price)), ZERO, ())
            current = 0 if money.cancelled else now.current_quantity
            nodes.append({
                "__typename": "LineItem", "id": gid("LineItem", lid), "legacyId": lid, "title": title,
                "name": f"{title} - {variant_title}" if variant_title else title,
                "quantity": line.quantity, "currentQuantity": current, "sku": sku,
                "variantTitle": variant_title, "vendor": None, "taxable": line.taxable,
                "requiresShipping": line.requires_shipping,
                "unfulfilledQuantity": facts.unfulfilled(place) if place < len(money.lines) else 0,
                "variant": (lambda info, vid=vid: self.variant_by_id(vid)) if vid else None,
                "product": (lambda info, pid=pid: self.product_by_id(pid)) if pid else None,
                "originalUnitPriceSet": _bag(line.unit_price, money),
                "originalTotalSet": _bag(line.original_total, money),
                "discountedTotalSet": lambda info, withCodeDiscounts=False, line=line: _bag(
                    line.discounted_total if withCodeDiscounts else line.original_total, money),
                "totalDiscountSet": _bag(line.discount, money),
                "discountAllocations": [{"allocatedAmountSet": _bag(line.discount, money)}]
                if line.discount != ZERO else [],
                "taxLines": lambda info, first=None, line=line: _tax_lines(line.tax_lines[:first], money),
            })
        return nodes

    def _memory_connection(self, items: list[tuple[int, dict[str, Any]]], args: dict[str, Any]) -> dict[str, Any]:
        """A connection over ``(key, node)`` pairs already in memory, paged by key as ``_page`` pages ids."""
        first, after, reverse = self._page_args(args)
        ordered = sorted(items, key=lambda item: item[0], reverse=reverse)
        if after is not None:
            ordered = [item for item in ordered if (item[0] < after if reverse else item[0] > after)]
        page = ordered[:first]
        return self._connection([node for _, node in page], [key for key, _ in page], len(ordered) > first, args)

    def _shipping_lines(self, oid: int, money: OrderMoney, args: dict[str, Any]) -> dict[str, Any]:
        first, after, reverse = self._page_args(args)
        ordered = sorted(money.shipping_lines, key=lambda s: s.index, reverse=reverse)
        if after is not None:
            ordered = [s for s in ordered if (s.index < after - 1 if reverse else s.index > after - 1)]
        page = ordered[:first]
        nodes = [
            {"id": gid("ShippingLine", oid * 100 + s.index), "title": s.title, "code": s.code,
             "source": s.source, "custom": True, "isRemoved": False, "originalPriceSet": _bag(s.price, money),
             "discountedPriceSet": _bag(s.discounted_price, money),
             "taxLines": _tax_lines(s.tax_lines, money),
             "discountAllocations": [{"allocatedAmountSet": _bag(s.discount, money)}]
             if s.discount != ZERO else []}
            for s in page
        ]
        return self._connection(nodes, [s.index + 1 for s in page], len(ordered) > first, args)

    # -- single objects ------------------------------------------------------------------

    def variant_by_id(self, vid: int) -> dict[str, Any] | None:
        with self._db_lock:
            row = self._db.execute(
                f"SELECT {_VARIANT_COLUMNS}, {_PRODUCT_COLUMNS} FROM variants v "
                "JOIN products p ON p.id = v.product_id WHERE v.id = ?",
                (vid,),
            ).fetchone()
        return self._variant(row[:13], self._product(row[13:])) if row else None

    def product_by_id(self, pid: int) -> dict[str, Any] | None:
        with self._db_lock:
            row = self._db.execute(
                f"SELECT {_PRODUCT_COLUMNS} FROM products p WHERE p.id = ?", (pid,)
            ).fetchone()
        return self._product(row) if row else None

    def order_by_id(self, oid: int) -> dict[str, Any] | None:
        with self._db_lock:
            row = self._db.execute(
                f"SELECT {self._ORDER_COLUMNS} FROM orders WHERE id = ?", (oid,)
            ).fetchone()
        return self._order(row) if row else None

    def bulk_operation(self, number: int | None = None) -> dict[str, Any] | None:
        """A bulk operation as GraphQL sees it (the latest one when ``number`` is None)."""
        with self._db_lock:
            if number is None:
                row = self._db.execute(
                    "SELECT id, status, query, created_at, completed_at, error_code, "
                    "object_count, root_object_count, file_size, file FROM bulk_operations "
                    "ORDER BY id DESC LIMIT 1"
                ).fetchone()
            else:
                row = self._db.execute(
                    "SELECT id, status, query, created_at, completed_at, error_code, "
                    "object_count, root_object_count, file_size, file FROM bulk_operations "
                    "WHERE id = ?",
                    (number,),
                ).fetchone()
        if row is None:
            return None
        bid, status, query, created, completed, error, objects, roots, size, file = row
        return {
            "__typename": "BulkOperation", "id": gid("BulkOperation", bid), "status": status,
            "type": "QUERY", "query": query, "createdAt": created, "completedAt": completed,
            "errorCode": error, "objectCount": str(objects), "rootObjectCount": str(roots),
            "fileSize": str(size) if size is not None else None,
            "url": f"{self.url}/bulk-results/{bid}.jsonl" if (file and objects) else None,
            "partialDataUrl": None,
        }

    def node(self, value: str) -> dict[str, Any] | None:
        parsed = parse_gid(value)
        if parsed is None:
            raise GraphQLError(f"Invalid global id '{value}'")
        kind, number = parsed
        if kind == "ProductVariant":
            return self.variant_by_id(number)
        if kind == "Product":
            return self.product_by_id(number)
        if kind == "Order":
            return self.order_by_id(number)
        if kind == "BulkOperation":
            return self.bulk_operation(number)
        if kind == "Location":
            return self.location(number)
        if kind == "Fulfillment":
            return self.fulfillment_node(number)
        return None

    def nodes(self, values: list[str]) -> list[dict[str, Any] | None]:
        """``nodes(ids:)``: each id's object or null, in the order asked."""
        if len(values) > MAX_NODES:
            raise GraphQLError(f"The ids argument may hold at most {MAX_NODES} ids")
        return [self.node(value) for value in values]

    def location(self, number: int | None = None) -> dict[str, Any] | None:
        """A location by id; without one, the shop's primary (default) location."""
        with self._db_lock:
            row = self._db.execute(
                "SELECT id, name, is_default, fulfills_online_orders FROM locations WHERE "
                + ("id = ?" if number is not None else "is_default = 1"),
                (number,) if number is not None else (),
            ).fetchone()
        return _location(row) if row else None

    def _location_connection(self, args: dict[str, Any]) -> dict[str, Any]:
        rows, more = self._page("locations", "id", [], [], args,
                                "id, name, is_default, fulfills_online_orders")
        return self._connection([_location(r) for r in rows], [r[0] for r in rows], more, args)

    def shop(self) -> dict[str, Any]:
        created = self._meta("created") or iso(self.clock())
        return {
            "__typename": "Shop", "id": gid("Shop", 1), "name": self.shop_name,
            "email": "owner@ecomsend-sandbox.example", "contactEmail": "owner@ecomsend-sandbox.example",
            "myshopifyDomain": "ecomsend-sandbox.myshopify.com", "currencyCode": self.currency,
            "ianaTimezone": "UTC", "createdAt": created, "updatedAt": created,
            # A development store, as a Dev Dashboard app is first installed on.
            "plan": {"displayName": "Development", "publicDisplayName": "Development",
                     "partnerDevelopment": True, "shopifyPlus": False},
        }

    # -- orderCreate ----------------------------------------------------------------------

    def order_create(self, order: dict[str, Any], options: dict[str, Any] | None) -> dict[str, Any]:
        """``orderCreate``: checked, priced (:mod:`.shopify_money`), stock claimed, stored at once."""
        behaviour = (options or {}).get("inventoryBehaviour") or "BYPASS"
        lines = order.get("lineItems") or []
        errors: list[dict[str, Any]] = []
        if not lines:
            errors.append(_user_error(["order", "lineItems"], "Line items can't be blank", "INVALID"))
        with self._db_lock:
            resolved: list[tuple[int, dict[str, Any], tuple | None]] = []
            effective = dict(order, lineItems=[dict(line) for line in lines])
            for index, line in enumerate(effective["lineItems"]):
                where = ["order", "lineItems", str(index)]
                row = None
                if line.get("variantId"):
                    parsed = parse_gid(line["variantId"], "ProductVariant")
                    if parsed:
                        row = self._db.execute(
                            "SELECT v.id, v.product_id, v.title, v.sku, v.price, "
                            "v.inventory_quantity, v.inventory_policy, v.tracked, p.title "
                            "FROM variants v JOIN products p ON p.id = v.product_id WHERE v.id = ?",
                            (parsed[1],),
                        ).fetchone()
                    if row is None:
                        errors.append(_user_error(
                            where + ["variantId"],
                            f"Product variant {line['variantId']} does not exist", "INVALID",
                        ))
                    elif not line.get("priceSet"):
                        # Shopify prices a line given without priceSet at the variant's price.
                        price = {"amount": row[4], "currencyCode": self.currency}
                        line["priceSet"] = {"shopMoney": price}
                elif not line.get("title"):
                    errors.append(_user_error(where, "Line item must have a title or a variant",
                                              "INVALID"))
                resolved.append((index, line, row))
            location = self._fulfillment_location(order, errors)
            try:
                money = order_money(effective, shop_currency=self.currency)
            except OrderInputError as exc:
                errors.extend(exc.user_errors)
                money = None
            if errors or money is None:
                return {"order": None, "userErrors": errors}
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = self._insert_order(effective, behaviour, money, resolved, location)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if result["userErrors"]:
                self._db.execute("ROLLBACK")
            else:
                self._db.execute("COMMIT")
            return result

    def _fulfillment_location(self, order: dict[str, Any], errors: list[dict[str, Any]]
                              ) -> tuple[int, bool]:
        """``(location id, fulfilled)``: ``fulfillment.locationId``'s location, else the default one."""
        wanted = (order.get("fulfillment") or {}).get("locationId")
        if wanted is None:
            return self._default_location(), False
        parsed = parse_gid(wanted, "Location")
        row = self._db.execute(
            "SELECT id FROM locations WHERE id = ?", (parsed[1] if parsed else -1,)
        ).fetchone()
        if row is None:
            errors.append(_user_error(["order", "fulfillment", "locationId"],
                                      f"Location {wanted} does not exist", "INVALID"))
            return self._default_location(), False
        return int(row[0]), True

    def _default_location(self) -> int:
        return int(self._db.execute("SELECT id FROM locations WHERE is_default = 1").fetchone()[0])

    def _stock_at(self, vid: int, location: int, total: int) -> int:
        """What ``location`` holds of a variant (the default location: the total less the rest)."""
        if location == self._default_location():
            elsewhere = self._db.execute(
                "SELECT COALESCE(SUM(quantity), 0) FROM inventory_levels WHERE variant_id = ?", (vid,)
            ).fetchone()[0]
            return total - int(elsewhere)
        row = self._db.execute(
            "SELECT quantity FROM inventory_levels WHERE variant_id = ? AND location_id = ?",
            (vid, location),
        ).fetchone()
        return int(row[0]) if row else 0

    def _insert_order(self, order: dict[str, Any], behaviour: str, money: OrderMoney,
                      resolved: list[tuple[int, dict[str, Any], tuple | None]],
                      location: tuple[int, bool]) -> dict[str, Any]:
        where_from, fulfilled = location
        if behaviour != "BYPASS":
            needed: dict[int, int] = {}
            first_line: dict[int, int] = {}
            for index, line, row in resolved:
                if row is not None:
                    needed[row[0]] = needed.get(row[0], 0) + line["quantity"]
                    first_line.setdefault(row[0], index)
            rows = {row[0]: row for _, _, row in resolved if row is not None}
            if behaviour == "DECREMENT_OBEYING_POLICY":
                errors = []
                for vid, quantity in needed.items():
                    _, _, title, sku, _, total, policy, tracked, product_title = rows[vid]
                    stock = self._stock_at(vid, where_from, total)
                    if tracked and policy == "DENY" and stock < quantity:
                        errors.append(_user_error(
                            ["order", "lineItems", str(first_line[vid])],
                            f"Unable to claim inventory: only {stock} of {product_title} - "
                            f"{title} ({sku or 'no SKU'}) available, {quantity} requested",
                            "INVENTORY_CLAIM_FAILED",
                        ))
                if errors:
                    return {"order": None, "userErrors": errors}
            default = where_from == self._default_location()
            for vid, quantity in needed.items():
                if not rows[vid][7]:  # only tracked variants have stock to claim
                    continue
                self._db.execute(
                    "UPDATE variants SET inventory_quantity = inventory_quantity - ? WHERE id = ?",
                    (quantity, vid),
                )
                if not default:
                    self._db.execute(
                        "INSERT INTO inventory_levels VALUES (?, ?, ?) ON CONFLICT(variant_id, "
                        "location_id) DO UPDATE SET quantity = quantity + excluded.quantity",
                        (vid, where_from, -quantity),
                    )
        now = self.clock()
        created = iso(now)
        processed = normalise_time(order.get("processedAt") or created) or created
        if processed > created:  # 2026-07 clamps future times to now
            processed = created
        last = self._db.execute("SELECT MAX(id), MAX(number) FROM orders").fetchone()
        oid = (last[0] or ORDER_ID_BASE) + 1
        number = (last[1] or 1000) + 1
        name = order.get("name") or f"#{number}"
        line_rows = []
        last_line = self._db.execute("SELECT MAX(id) FROM line_items").fetchone()[0]
        next_line = (last_line or LINE_ITEM_ID_BASE) + 1
        for index, line, row in resolved:
            line_rows.append((
                next_line, oid, row[0] if row else None, row[1] if row else None,
                line.get("title") or (row[8] if row else ""),
                line.get("variantTitle") or (row[2] if row else None),
                line.get("sku") or (row[3] if row else None), line["quantity"],
                str(money.lines[index].unit_price.shop),
            ))
            next_line += 1
        self._db.execute(
            f"INSERT INTO orders ({self._ORDER_COLUMNS}) VALUES "
            "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (oid, number, name, order.get("sourceIdentifier"), order.get("sourceName"),
             order.get("email"), order.get("phone"), order.get("note"),
             json.dumps(list(order.get("tags") or [])), 1 if order.get("test") else 0,
             money.currency, money.financial_status, behaviour, str(money.total.shop), now,
             created, processed, json.dumps(order, default=str), None, None, None, None, created,
             where_from),
        )
        self._db.executemany("INSERT INTO line_items VALUES (?,?,?,?,?,?,?,?,?)", line_rows)
        if fulfilled:
            fid = (self._db.execute("SELECT MAX(id) FROM fulfillments").fetchone()[0]
                   or FULFILLMENT_ID_BASE) + 1
            self._db.execute(
                "INSERT INTO fulfillments (id, order_id, location_id, status, quantity, created_at, "
                "updated_at, tracking) VALUES (?, ?, ?, 'SUCCESS', ?, ?, ?, ?)",
                (fid, oid, where_from, money.quantity, created, created, json.dumps(
                    [{"company": order["fulfillment"].get("trackingCompany"),
                      "number": order["fulfillment"].get("trackingNumber"), "url": None}]
                    if order["fulfillment"].get("trackingNumber") else [])),
            )
            self._insert_fulfillment_lines(fid, [(row[0], row[7]) for row in line_rows])
        row = self._db.execute(
            f"SELECT {self._ORDER_COLUMNS} FROM orders WHERE id = ?", (oid,)
        ).fetchone()
        return {"order": self._order(row), "userErrors": []}

    # -- bulk operations ---------------------------------------------------------------------

    def bulk_run_query(self, query: str) -> dict[str, Any]:
        try:
            document = parse(query)
        except GraphQLError as exc:
            return self._bulk_refused(f"Invalid bulk query: {exc.message}")
        problems = validate(self.schema, document)
        if problems:
            return self._bulk_refused(f"Invalid bulk query: {problems[0].message}")
        try:
            plan = BulkPlan.compile(self.schema, document)
        except ValueError as exc:
            return self._bulk_refused(str(exc))
        with self._db_lock:
            cursor = self._db.execute(
                "INSERT INTO bulk_operations (status, query, created_at) VALUES ('CREATED', ?, ?)",
                (query, iso(self.clock())),
            )
            number = int(cursor.lastrowid or 0)
        threading.Thread(
            target=self._run_bulk, args=(number, plan), name=f"bulk-{number}", daemon=True
        ).start()
        return {"bulkOperation": self.bulk_operation(number), "userErrors": []}

    def variant_records(self, db: sqlite3.Connection, query: str | None) -> Iterator[dict[str, Any]]:
        """Every variant matching ``query`` as a GraphQL record, by id (for bulk operations)."""
        conditions, params = self._variant_filters(query)
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        products: dict[int, dict[str, Any]] = {}
        rows = db.execute(
            f"SELECT {_VARIANT_COLUMNS}, {_PRODUCT_COLUMNS} FROM variants v "
            f"JOIN products p ON p.id = v.product_id{where} ORDER BY v.id",
            params,
        )
        for row in rows:
            product = products.get(row[1])
            if product is None:
                if len(products) > 10_000:  # variants of one product are mostly adjacent
                    products.clear()
                product = products[row[1]] = self._product(row[13:])
            yield self._variant(row[:13], product)

    def product_records(
        self, db: sqlite3.Connection, query: str | None, *, with_variants: bool
    ) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Every product matching ``query`` with its variants (if asked), by id (for bulk operations)."""
        conditions, params = self._product_filters(query)
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        product_rows = db.execute(
            f"SELECT {_PRODUCT_COLUMNS} FROM products p{where} ORDER BY p.id", params
        )
        variant_rows: Iterator[tuple] = iter(())
        if with_variants:
            variant_rows = db.execute(
                f"SELECT {_VARIANT_COLUMNS} FROM variants v ORDER BY v.product_id, v.position, v.id"
            )
        pending = next(variant_rows, None)
        for product_row in product_rows:
            product = self._product(product_row)
            variants = []
            pid = product_row[0]
            # Merge join: both sides are ordered by product id.
            while pending is not None and pending[1] < pid:
                pending = next(variant_rows, None)
            while pending is not None and pending[1] == pid:
                variants.append(self._variant(pending, product))
                pending = next(variant_rows, None)
            yield product, variants

    @staticmethod
    def _bulk_refused(message: str) -> dict[str, Any]:
        return {"bulkOperation": None, "userErrors": [_user_error(["query"], message, "INVALID")]}

    def _run_bulk(self, number: int, plan: BulkPlan) -> None:
        started = time.monotonic()
        try:
            with self._db_lock:
                self._db.execute("UPDATE bulk_operations SET status = 'RUNNING' WHERE id = ?",
                                 (number,))
            self.bulk_folder.mkdir(parents=True, exist_ok=True)
            path = self.bulk_folder / f"{number}.jsonl"
            # A connection of its own: the file is written from one consistent
            # snapshot without holding the lock the API needs.
            reader = sqlite3.connect(self.state_path)
            try:
                with reader, path.open("w", encoding="utf-8") as out:
                    reader.execute("BEGIN")
                    objects, roots = plan.write(self, reader, out)
            finally:
                reader.close()
            delay = float(self.faults.get("bulk_delay_seconds")) - (time.monotonic() - started)
            if delay > 0 and self._closed.wait(delay):
                return
            with self._db_lock:
                self._db.execute(
                    "UPDATE bulk_operations SET status = 'COMPLETED', completed_at = ?, "
                    "object_count = ?, root_object_count = ?, file_size = ?, file = ? WHERE id = ?",
                    (iso(self.clock()), objects, roots, path.stat().st_size, str(path), number),
                )
        except Exception as exc:  # a failed operation is reported, never hangs a poller
            self.last_exception = exc
            if self._closed.is_set():
                return
            with self._db_lock:
                self._db.execute(
                    "UPDATE bulk_operations SET status = 'FAILED', "
                    "error_code = 'INTERNAL_SERVER_ERROR', completed_at = ? WHERE id = ?",
                    (iso(self.clock()), number),
                )

    def _bulk_file(self, number: int, req: Request) -> Reply:
        with self._db_lock:
            row = self._db.execute(
                "SELECT file FROM bulk_operations WHERE id = ? AND status = 'COMPLETED'", (number,)
            ).fetchone()
        if not row or not row[0] or not Path(row[0]).is_file():
            return Reply(404, b"Not Found", headers={"Content-Type": "text/plain"})
        data = Path(row[0]).read_bytes()
        headers = {"Content-Type": "application/jsonl", "Accept-Ranges": "bytes"}
        match = re.fullmatch(r"bytes=(\d+)-", req.headers.get("range", ""))
        if match:
            start = int(match.group(1))
            if start >= len(data) and data:
                return Reply(416, b"", headers={"Content-Range": f"bytes */{len(data)}"})
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            return Reply(206, data[start:], headers=headers)
        return Reply(200, data, headers=headers)


class _Root:
    """The GraphQL root value: one method per implemented root field."""

    def __init__(self, sim: ShopifySimulator) -> None:
        self._sim = sim

    def productVariants(self, info: Any, **args: Any) -> dict[str, Any]:
        return self._sim._variant_connection(args)

    def products(self, info: Any, **args: Any) -> dict[str, Any]:
        return self._sim._product_connection(args)

    def orders(self, info: Any, **args: Any) -> dict[str, Any]:
        return self._sim._order_connection(args)

    def product(self, info: Any, id: str) -> dict[str, Any] | None:
        parsed = parse_gid(id, "Product")
        return self._sim.product_by_id(parsed[1]) if parsed else None

    def productVariant(self, info: Any, id: str) -> dict[str, Any] | None:
        parsed = parse_gid(id, "ProductVariant")
        return self._sim.variant_by_id(parsed[1]) if parsed else None

    def order(self, info: Any, id: str) -> dict[str, Any] | None:
        parsed = parse_gid(id, "Order")
        return self._sim.order_by_id(parsed[1]) if parsed else None

    def node(self, info: Any, id: str) -> dict[str, Any] | None:
        return self._sim.node(id)

    def nodes(self, info: Any, ids: list[str]) -> list[dict[str, Any] | None]:
        return self._sim.nodes(ids)

    def location(self, info: Any, id: str | None = None) -> dict[str, Any] | None:
        if id is None:
            return self._sim.location()
        parsed = parse_gid(id, "Location")
        return self._sim.location(parsed[1]) if parsed else None

    def locations(self, info: Any, **args: Any) -> dict[str, Any]:
        return self._sim._location_connection(args)

    def bulkOperation(self, info: Any, id: str) -> dict[str, Any] | None:
        parsed = parse_gid(id, "BulkOperation")
        return self._sim.bulk_operation(parsed[1]) if parsed else None

    def currentBulkOperation(self, info: Any, type: str = "QUERY") -> dict[str, Any] | None:
        return self._sim.bulk_operation() if type == "QUERY" else None

    def shop(self, info: Any) -> dict[str, Any]:
        return self._sim.shop()

    def currentAppInstallation(self, info: Any) -> dict[str, Any]:
        return {
            "__typename": "AppInstallation",
            "id": gid("AppInstallation", 1),
            "accessScopes": [{"handle": h, "description": ""} for h in self._sim.access_scopes],
        }

    def orderCreate(self, info: Any, order: dict[str, Any], options: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
        return self._sim.order_create(order, options)

    def bulkOperationRunQuery(self, info: Any, query: str, groupObjects: bool = False
                              ) -> dict[str, Any]:
        return self._sim.bulk_run_query(query)

    def job(self, info: Any, id: str) -> dict[str, Any] | None:
        return self._sim.job(id)

    def orderCancel(self, info: Any, orderId: str, restock: bool, reason: str,
                    refundMethod: dict[str, Any] | None = None, notifyCustomer: bool = False,
                    staffNote: str | None = None) -> dict[str, Any]:
        return self._sim.order_cancel(orderId, reason=reason, restock=restock, refund_method=refundMethod,
                                      staff_note=staffNote)

    def refundCreate(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        # The key rides on a directive of this very field (@idempotent(key:)), not on an argument.
        directive = self._sim.schema.get_directive("idempotent")
        assert directive is not None
        values = get_directive_values(directive, info.field_nodes[0], info.variable_values)
        return self._sim.refund_create(input, (values or {}).get("key"))
