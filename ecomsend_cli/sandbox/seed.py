"""The demo story the sandbox stores start with: one shop on each side (DESIGN §8).

:func:`demo_seed` returns the Shopify catalog, the TikTok products and the
TikTok orders, built so that each linking and sync case of DESIGN §4–§5 shows
up once:

* SKU-equal pairs that auto-link (the tee, tote, mug, phone cases, candles);
* an **ambiguous** SKU: ``MUG-TRAVEL`` is on two Shopify variants;
* case and space variants: TikTok ``ab-100 `` and ``case-ip16`` against
  Shopify ``AB-100`` and ``CASE-IP16``;
* **empty** SKUs on both sides (TikTok's mystery box, Shopify's gift card);
* leading zeros kept: TikTok ``STK-1`` does not match Shopify ``STK-001``;
* a TikTok SKU with no Shopify variant at all (``SCARF-WOOL``);
* a duplicated TikTok ``seller_sku`` (two TikTok SKUs ``CNDL-LAV``);
* a product published from Shopify: the TikTok hoodie's SKUs carry
  ``external_sku_id`` = the Shopify variant's numeric id (a ``feed`` link);
* a **combined listing** (tee + tote bundle) whose order lines carry
  ``combined_listing_skus``;
* multi-unit lines, sent by TikTok as one line item per unit;
* every TikTok order status, two cancelled orders, and a zero-stock
  ``DENY`` variant whose order Shopify refuses (``INVENTORY_CLAIM_FAILED``).

**Money** (DESIGN §5.7). Every order carries TikTok's complete money fields
(API 202309), consistent to the minor unit of its currency:

* per line item (one per unit): ``sale_price = original_price −
  seller_discount − platform_discount``; ``item_tax`` is computed on the
  sale price, per unit, rounded half-up;
* ``payment`` covers the live line items (all of them in a wholly cancelled
  order, the others when TikTok cancelled single lines):
  ``original_total_product_price``, ``seller_discount``,
  ``platform_discount`` and ``sub_total`` are the sums over those lines;
  ``shipping_fee = original_shipping_fee − shipping_fee_seller_discount −
  shipping_fee_platform_discount``; ``product_tax`` = Σ ``item_tax``;
  ``tax = product_tax + shipping_fee_tax``;
* US orders are priced before tax (``total_amount = sub_total + shipping_fee
  + fees + tax``); the UK, German and Japanese ones include VAT or
  consumption tax (``total_amount = sub_total + shipping_fee + fees``), the
  tax still reported in ``item_tax`` and ``shipping_fee_tax``;
* order-level coupons are spread over the units by largest remainder, as
  TikTok reports them per line item.

The first 26 orders (``5800000000000000NN``, NN = 01–26) tell the linking
story above; the buyer's state sets their sales tax (Oregon: none; New York
and Texas also tax shipping). The orders after them show one kind of money
or order each:

======================  =========================================================
TikTok order id         what it shows
======================  =========================================================
580000000000000027      US (Colorado): item tax, shipping tax, retail delivery fee
580000000000000028      UK, GBP, VAT included; post town Reading in L3 (and post_town)
580000000000000029      seller and platform discounts on items and on shipping
580000000000000030      JPY (no minor units), consumption tax included, a coupon split
580000000000000031      EUR in a USD shop (Germany, VAT included)
580000000000000032      one unit cancelled by TikTok in a live order
580000000000000033      fulfilled by TikTok (FBT)
580000000000000034      a free sample (is_sample_order)
580000000000000035      cash on delivery (is_cod)
580000000000000036      a replacement (is_replacement_order) of order 21
======================  =========================================================

Every kind above links with the demo's SKUs (auto-link, or the one hand link
``STK-1`` → ``STK-001``) and has stock. The Shopify shop's currency is
:data:`SHOP_CURRENCY`; :data:`EXCHANGE_RATES` holds the rate (shop currency
per unit) for each other currency the orders use, for ``sync.exchange_rates``.

Addresses name their levels in ``district_info`` as TikTok does per market:
US L1 state (``iso_code`` ``US-CO`` …), L2 county, L3 city (the county is
never the city's name); UK L1 nation, L2 county, L3 post town (also in
``post_town``); Germany and Japan L1 state or prefecture, L2 city.

Ids are fixed, times are relative to ``now`` (every order within the last
three days, so the first sync's 7-day window sees them all).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

from ..money import minor_units
from .tiktok_sim import DISPLAY_STATUS

SHOP_CURRENCY = "USD"
# Shop currency (USD) per unit of each other currency the demo orders use.
EXCHANGE_RATES = {"GBP": "1.27", "EUR": "1.08", "JPY": "0.0067"}
# The buyer-paid fees TikTok counts into total_amount, by their payment field name.
FEE_FIELDS = ("retail_delivery_fee", "small_order_fee", "buyer_service_fee", "handling_fee",
              "item_insurance_fee", "shipping_insurance_fee")

_WAREHOUSE = "7068517275539719942"
_TT_PRODUCT = "17296000000000{:05d}"
_TT_SKU = "17296000000010{:05d}"

# Shopify catalog: (product id, title, status, [(variant id, title, sku, price, qty, policy)])
_SHOPIFY = [
    (9001, "Classic Tee", "ACTIVE", [
        (44011, "Black / S", "TEE-BLK-S", "19.00", 25, "DENY"),
        (44012, "Black / M", "TEE-BLK-M", "19.00", 30, "DENY"),
        (44013, "Black / L", "TEE-BLK-L", "19.00", 12, "DENY"),
    ]),
    (9002, "Canvas Tote", "ACTIVE", [(44021, "Natural", "TOTE-NAT", "24.00", 40, "DENY")]),
    (9003, "Ceramic Mug", "ACTIVE", [(44031, "11 oz", "MUG-11OZ", "14.00", 50, "DENY")]),
    (9004, "Travel Mug", "ACTIVE", [(44041, "Steel", "MUG-TRAVEL", "29.00", 15, "DENY")]),
    (9005, "Travel Mug (old listing)", "DRAFT", [(44051, "Steel", "MUG-TRAVEL", "27.00", 0, "DENY")]),
    (9006, "Water Bottle", "ACTIVE", [(44061, "750 ml", "AB-100", "22.00", 20, "DENY")]),
    (9007, "Phone Case", "ACTIVE", [
        (44071, "iPhone 15", "CASE-IP15", "18.00", 18, "DENY"),
        (44072, "iPhone 16", "CASE-IP16", "18.00", 22, "DENY"),
    ]),
    (9008, "Gift Card", "ACTIVE", [(44081, "$25", "", "25.00", 0, "CONTINUE")]),
    (9009, "Sticker Pack", "ACTIVE", [(44091, "Assorted", "STK-001", "6.00", 100, "DENY")]),
    (9010, "Hoodie", "ACTIVE", [
        (44101, "Grey / M", "HOOD-GRY-M", "49.00", 10, "DENY"),
        (44102, "Grey / L", "HOOD-GRY-L", "49.00", 8, "DENY"),
    ]),
    (9011, "Wool Socks 3-pack", "ACTIVE", [(44111, "One size", "SOCK-3PK", "16.00", 0, "DENY")]),
    (9012, "Beanie", "ARCHIVED", [(44121, "Red", "BEAN-RED", "21.00", 5, "DENY")]),
    (9013, "Scented Candle", "ACTIVE", [
        (44131, "Lavender", "CNDL-LAV", "26.00", 30, "DENY"),
        (44132, "Cedar", "CNDL-CED", "26.00", 0, "CONTINUE"),
    ]),
]

# TikTok products: (key, title, [(sku key, attributes, seller_sku, price, external_sku_id)])
_TIKTOK = [
    (1, "Classic Tee", [
        ("tee-s", [("Color", "Black"), ("Size", "S")], "TEE-BLK-S", "19.99", None),
        ("tee-m", [("Color", "Black"), ("Size", "M")], "TEE-BLK-M", "19.99", None),
        ("tee-l", [("Color", "Black"), ("Size", "L")], "TEE-BLK-L", "19.99", None),
    ]),
    (2, "Canvas Tote Bag", [("tote", [("Color", "Natural")], "TOTE-NAT", "24.99", None)]),
    (3, "Ceramic Mug 11oz", [("mug", [("Size", "11 oz")], "MUG-11OZ", "14.99", None)]),
    (4, "Insulated Travel Mug", [("travel-mug", [("Color", "Steel")], "MUG-TRAVEL", "29.99", None)]),
    (5, "Water Bottle 750ml", [("bottle", [("Size", "750 ml")], "ab-100 ", "22.99", None)]),
    (6, "Phone Case", [
        ("case-15", [("Model", "iPhone 15")], "CASE-IP15", "18.99", None),
        ("case-16", [("Model", "iPhone 16")], "case-ip16", "18.99", None),
    ]),
    (7, "Mystery Box", [("mystery", [("Size", "Standard")], "", "15.00", None)]),
    (8, "Sticker Pack", [("sticker", [("Pack", "Assorted")], "STK-1", "6.50", None)]),
    (9, "Tee + Tote Bundle", [("bundle", [("Size", "M")], "BNDL-TEE-TOTE", "39.99", None)]),
    (10, "Cozy Hoodie", [
        ("hoodie-m", [("Color", "Grey"), ("Size", "M")], "HOODIE-M", "49.99", "44101"),
        ("hoodie-l", [("Color", "Grey"), ("Size", "L")], "HOODIE-L", "49.99", "44102"),
    ]),
    (11, "Wool Socks (3 pairs)", [("socks", [("Size", "One size")], "SOCK-3PK", "16.99", None)]),
    (12, "Wool Scarf", [("scarf", [("Color", "Oat")], "SCARF-WOOL", "32.00", None)]),
    (13, "Scented Candle", [
        ("candle-lav", [("Scent", "Lavender")], "CNDL-LAV", "26.99", None),
        ("candle-ced", [("Scent", "Cedar")], "CNDL-CED", "26.99", None),
    ]),
    (14, "Lavender Candle (gift wrapped)", [
        ("candle-gift", [("Scent", "Lavender")], "CNDL-LAV", "29.99", None),
    ]),
]

# The bundle's components: (sku key, count)
_BUNDLE = [("tee-m", 1), ("tote", 1)]

# TikTok's FBT warehouse (the seller's own is _WAREHOUSE).
_FBT_WAREHOUSE = "7068517275539700001"
_STANDARD = ("7091146663229654785", "Standard shipping")
_EXPRESS = ("7091146663229654786", "Express shipping")
# Carriers TikTok accepts per delivery option (Get Shipping Providers). USPS's id and TikTok's own
# virtual carrier are those of TikTok's documentation samples; the others are made up alike.
_USPS = {"id": "7117858858072016686", "name": "USPS"}
_UPS = {"id": "7117858858072016687", "name": "UPS"}
_FEDEX = {"id": "7117858858072016688", "name": "FedEx"}
_DHL = {"id": "7117858858072016689", "name": "DHL eCommerce"}
_TT_VIRTUAL = {"id": "6617675021119438849", "name": "TT Virtual express"}
DELIVERY_OPTIONS = [
    {"id": _STANDARD[0], "name": _STANDARD[1], "shipping_providers": [_USPS, _UPS, _FEDEX, _DHL, _TT_VIRTUAL]},
    {"id": _EXPRESS[0], "name": _EXPRESS[1], "shipping_providers": [_USPS, _UPS, _FEDEX]},
]
# Orders TikTok ships with its own label (shipping_type TIKTOK): no tracking is pushed for them.
_TIKTOK_SHIPPED = {29}
# Markets whose lines are in a package from the start (US and UK sellers get one only when shipping).
_PACKAGED_AT_ORDER_TIME = {30}
# Where each status leaves the order's packages (those that have shipped carry tracking).
_PACKAGE_STATUS = {"AWAITING_COLLECTION": "PROCESSING", "PARTIALLY_SHIPPING": "PROCESSING",
                   "IN_TRANSIT": "FULFILLING", "DELIVERED": "COMPLETED", "COMPLETED": "COMPLETED"}


@dataclass(frozen=True)
class _Line:
    """``qty`` units of one TikTok SKU; discounts are per unit, ``price`` in the order's currency."""

    sku: str
    qty: int = 1
    price: str | None = None  # default: the TikTok SKU's (USD) price
    seller: str = "0"
    platform: str = "0"
    cancelled: int = 0  # how many of the units TikTok cancelled


@dataclass(frozen=True)
class _Place:
    """A recipient: name, street, and the district levels TikTok sends for the market."""

    first: str
    last: str
    street: str
    postal: str
    region: str  # region_code
    levels: tuple[tuple[str, str, str, str], ...]  # (level, level name, name, iso_code or "")
    phone: str
    tax_rate: str = "0"
    shipping_taxed: bool = False
    street2: str = ""
    post_town: str = ""

    def city(self) -> str:
        return next(name for _, kind, name, _ in self.levels if kind in ("City", "Post town"))


def _us(first: str, last: str, street: str, city: str, county: str, state: str, iso: str, postal: str,
        tax_rate: str, shipping_taxed: bool = False, street2: str = "") -> _Place:
    return _Place(first, last, street, postal, "US", (
        ("L0", "Country", "United States", "US"),
        ("L1", "State", state, iso),
        ("L2", "County", county, ""),
        ("L3", "City", city, ""),
    ), "(+1)555-***-0100", tax_rate, shipping_taxed, street2)


@dataclass(frozen=True)
class _Money:
    """How an order is priced: currency, tax, shipping and its discounts, fees, coupons."""

    currency: str = "USD"
    taxes_included: bool = False  # VAT-style prices (UK, EU, JP) rather than US sales tax
    shipping: str = "4.99"
    shipping_seller: str = "0"
    shipping_platform: str = "0"
    fees: dict[str, str] = field(default_factory=dict)
    coupon_seller: str = "0"  # order-level, spread over the live units
    coupon_platform: str = "0"


# The linking story's buyers; the state sets the sales tax (and whether shipping is taxed).
_BUYERS = [
    _us("Avery", "Quinn", "41 Harbor Way", "San Jose", "Santa Clara County", "California", "US-CA",
        "95110", "0.09375"),
    _us("Jordan", "Lee", "900 Elm Street", "Austin", "Travis County", "Texas", "US-TX", "78701",
        "0.0825", True, street2="Apt 4"),
    _us("Sam", "Rivera", "12 Birch Road", "Portland", "Multnomah County", "Oregon", "US-OR", "97201", "0"),
    _us("Robin", "Patel", "77 Lake Shore Dr", "Chicago", "Cook County", "Illinois", "US-IL", "60601",
        "0.1025"),
    _us("Casey", "Nguyen", "5 Orchard Lane", "Brooklyn", "Kings County", "New York", "US-NY", "11201",
        "0.08875", True),
]

# Orders: (status, hours ago, [(sku key, quantity)]) — the story, one case per line.
_ORDERS = [
    ("AWAITING_SHIPMENT", 70, [("tee-m", 1)]),                     # plain auto-link
    ("AWAITING_SHIPMENT", 66, [("tee-s", 2), ("tote", 1)]),        # multi-unit + two SKUs
    ("AWAITING_COLLECTION", 60, [("mug", 3)]),                     # three line items, one SKU
    ("PARTIALLY_SHIPPING", 55, [("case-15", 1), ("case-16", 1)]),  # case-folded match
    ("IN_TRANSIT", 50, [("bottle", 1)]),                           # "ab-100 " vs "AB-100"
    ("DELIVERED", 47, [("tee-l", 1), ("mug", 1)]),
    ("COMPLETED", 45, [("candle-lav", 2)]),
    ("UNPAID", 40, [("tee-m", 1)]),                                # waits
    ("ON_HOLD", 38, [("tote", 1)]),                                # waits
    ("CANCELLED", 36, [("mug", 1)]),                               # skipped
    ("AWAITING_SHIPMENT", 33, [("travel-mug", 1)]),                # ambiguous: blocked
    ("AWAITING_SHIPMENT", 30, [("mystery", 1)]),                   # empty SKU: blocked
    ("AWAITING_SHIPMENT", 28, [("sticker", 4)]),                   # STK-1 vs STK-001: blocked
    ("AWAITING_SHIPMENT", 26, [("scarf", 1), ("tee-m", 1)]),       # no variant: blocked
    ("AWAITING_SHIPMENT", 24, [("bundle", 1)]),                    # combined listing
    ("IN_TRANSIT", 22, [("hoodie-m", 1)]),                         # feed link
    ("AWAITING_SHIPMENT", 20, [("hoodie-l", 2)]),                  # feed link
    ("AWAITING_SHIPMENT", 18, [("socks", 1)]),                     # no stock, DENY: fails
    ("DELIVERED", 16, [("candle-ced", 1)]),                        # no stock, CONTINUE: fine
    ("AWAITING_SHIPMENT", 14, [("candle-gift", 1)]),               # duplicated seller_sku
    ("COMPLETED", 12, [("case-16", 1), ("tee-s", 1)]),
    ("AWAITING_SHIPMENT", 10, [("tote", 5)]),
    ("AWAITING_COLLECTION", 8, [("bundle", 2)]),
    ("CANCELLED", 6, [("scarf", 1)]),                              # cancelled + unlinked: skipped
    ("AWAITING_SHIPMENT", 4, [("sticker", 1), ("mug", 1)]),        # blocked by one line
    ("DELIVERED", 2, [("bottle", 2)]),
]


@dataclass(frozen=True)
class _Kind:
    """One order of the kinds table (module docstring): its number, story and how it is priced."""

    number: int
    kind: str
    status: str
    hours_ago: int
    lines: tuple[_Line, ...]
    place: _Place
    money: _Money = field(default_factory=_Money)
    extra: dict[str, Any] = field(default_factory=dict)  # order fields that make the kind


_KINDS = [
    _Kind(27, "US (Colorado): item tax, shipping tax, retail delivery fee", "AWAITING_SHIPMENT", 58,
          (_Line("mug", 2), _Line("tote")),
          _us("Morgan", "Blake", "1550 Garrison St", "Lakewood", "Jefferson County", "Colorado", "US-CO",
              "80215", "0.075", True),
          _Money(shipping="5.99", fees={"retail_delivery_fee": "0.28"}),
          {"buyer_message": "Please leave it at the side door."}),
    _Kind(28, "UK, GBP, VAT included; post town Reading in L3 (and post_town)", "AWAITING_SHIPMENT", 52,
          (_Line("candle-lav", price="21.99"), _Line("case-15", price="15.99")),
          _Place("Olivia", "Hughes", "14 Market Place", "RG1 2EQ", "GB", (
              ("L0", "Country", "United Kingdom", "GB"),
              ("L1", "Nation", "England", "GB-ENG"),
              ("L2", "County", "Berkshire", ""),
              ("L3", "Post town", "Reading", ""),
          ), "(+44)7700-***-123", "0.20", True, post_town="Reading"),
          _Money(currency="GBP", taxes_included=True, shipping="3.49")),
    _Kind(29, "seller and platform discounts on items and on shipping", "AWAITING_COLLECTION", 44,
          (_Line("bottle", 2, seller="3.00", platform="2.00"), _Line("tote", platform="1.50")),
          _us("Riley", "Chen", "2200 Westheimer Rd", "Houston", "Harris County", "Texas", "US-TX", "77098",
              "0.0825", True),
          _Money(shipping="6.99", shipping_seller="2.00", shipping_platform="3.00", coupon_seller="5.00"),
          {"delivery_option": _EXPRESS}),
    _Kind(30, "JPY (no minor units), consumption tax included, a coupon split", "AWAITING_SHIPMENT", 42,
          (_Line("mug", 3, price="2200"),),
          _Place("Yui", "Sato", "1-2-3 Jingumae", "150-0001", "JP", (
              ("L0", "Country", "Japan", "JP"),
              ("L1", "Prefecture", "Tokyo", "JP-13"),
              ("L2", "City", "Shibuya-ku", ""),
          ), "(+81)90-****-5678", "0.10", True),
          _Money(currency="JPY", taxes_included=True, shipping="550", coupon_seller="500")),
    _Kind(31, "EUR in a USD shop (Germany, VAT included)", "IN_TRANSIT", 34,
          (_Line("candle-lav", price="24.99"), _Line("sticker", 2, price="5.99")),
          _Place("Lena", "Schmidt", "Marienplatz 8", "80331", "DE", (
              ("L0", "Country", "Germany", "DE"),
              ("L1", "State", "Bayern", "DE-BY"),
              ("L2", "City", "München", ""),
          ), "(+49)151-****-2345", "0.19", True),
          _Money(currency="EUR", taxes_included=True, shipping="4.90")),
    _Kind(32, "one unit cancelled by TikTok in a live order", "AWAITING_SHIPMENT", 29,
          (_Line("mug", 2, cancelled=1), _Line("case-16")),
          _us("Taylor", "Brooks", "820 Davis St", "Evanston", "Cook County", "Illinois", "US-IL", "60201",
              "0.1025")),
    _Kind(33, "fulfilled by TikTok (FBT)", "IN_TRANSIT", 21,
          (_Line("mug"), _Line("tote")),
          _us("Jamie", "Ortiz", "300 S 4th St", "Las Vegas", "Clark County", "Nevada", "US-NV", "89101",
              "0.08375"),
          _Money(shipping="5.99", shipping_platform="5.99"),
          {"fulfillment_type": "FULFILLMENT_BY_TIKTOK", "warehouse_id": _FBT_WAREHOUSE}),
    _Kind(34, "a free sample (is_sample_order)", "AWAITING_SHIPMENT", 15,
          (_Line("candle-lav", seller="26.99"),),
          _us("Alex", "Kim", "75 Peachtree Pl", "Atlanta", "Fulton County", "Georgia", "US-GA", "30309",
              "0.089"),
          _Money(shipping_seller="4.99"),
          {"is_sample_order": True}),
    _Kind(35, "cash on delivery (is_cod)", "AWAITING_SHIPMENT", 9,
          (_Line("case-15"), _Line("bottle")),
          _us("Drew", "Hayes", "60 E Rio Salado Pkwy", "Tempe", "Maricopa County", "Arizona", "US-AZ",
              "85281", "0.081"),
          extra={"is_cod": True, "payment_method_name": "Cash on delivery", "paid_time": None}),
    _Kind(36, "a replacement (is_replacement_order) of order 21", "AWAITING_SHIPMENT", 3,
          (_Line("case-16", seller="18.99"),),
          _BUYERS[21 % len(_BUYERS)],  # the buyer of the order it replaces
          _Money(shipping_seller="4.99"),
          {"is_replacement_order": True, "replaced_order_id": "580000000000000021"}),
]


def _order_id(number: int) -> str:
    return f"5800000000000{number:05d}"


# The kinds table, id -> what the order shows (the module docstring lists the same).
DEMO_KINDS = {_order_id(k.number): k.kind for k in _KINDS}


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Stock the merchant keeps at TikTok's warehouse (the Shopify simulator's second
# location): what an FBT order takes when sync.fbt_location_id names it (§5.8).
_FBT_STOCK = {44021: 10, 44031: 10}  # the tote and the 11 oz mug of order 33


def _shopify_products(now: int) -> list[dict[str, Any]]:
    products = []
    for index, (pid, title, status, variants) in enumerate(_SHOPIFY):
        products.append({
            "id": pid,
            "title": title,
            "status": status,
            "updated_at": _iso(now - 30 * 86400 + index * 3600),
            "variants": [
                {
                    "id": vid,
                    "title": vtitle,
                    "sku": sku,
                    "price": price,
                    "inventory_item_id": vid + 11000,
                    "inventory_quantity": qty,
                    "inventory_policy": policy,
                    **({"location_quantities": {"TikTok FBT warehouse": _FBT_STOCK[vid]}}
                       if vid in _FBT_STOCK else {}),
                }
                for vid, vtitle, sku, price, qty, policy in variants
            ],
        })
    return products


def _tiktok_catalog(now: int) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The TikTok products (detail shape) and, per sku key, what an order line needs."""
    products: list[dict[str, Any]] = []
    skus: dict[str, dict[str, Any]] = {}
    sku_number = 0
    for key, title, sku_rows in _TIKTOK:
        product_id = _TT_PRODUCT.format(key)
        product_skus = []
        for sku_key, attributes, seller_sku, price, external in sku_rows:
            sku_number += 1
            sku_id = _TT_SKU.format(sku_number)
            sku: dict[str, Any] = {
                "id": sku_id,
                "seller_sku": seller_sku,
                "sales_attributes": [
                    {"id": str(100000 + i), "name": name, "value_id": str(200000 + sku_number * 10 + i),
                     "value_name": value}
                    for i, (name, value) in enumerate(attributes)
                ],
                "price": {"currency": "USD", "sale_price": price, "tax_exclusive_price": price},
                "inventory": [{"quantity": 50, "warehouse_id": _WAREHOUSE}],
            }
            if external:
                sku["external_sku_id"] = external
            product_skus.append(sku)
            skus[sku_key] = {
                "sku_id": sku_id,
                "product_id": product_id,
                "product_name": title,
                "sku_name": ", ".join(value for _, value in attributes),
                "seller_sku": seller_sku,
                "price": price,
            }
        products.append({
            "id": product_id,
            "title": title,
            "status": "ACTIVATE",
            "create_time": now - 60 * 86400 + key * 3600,
            "update_time": now - 20 * 86400 + key * 3600,
            "sales_regions": ["US"],
            "skus": product_skus,
        })
    return products, skus


def _amount(value: Decimal, currency: str) -> str:
    """TikTok's text for an amount: the currency's decimals, a bare ``0`` for nothing."""
    if value == 0:
        return "0"
    return str(value.quantize(Decimal(1).scaleb(-minor_units(currency))))


def _split(total: Decimal, weights: list[Decimal], unit: Decimal) -> list[Decimal]:
    """``total`` in shares proportional to ``weights``, by largest remainder in ``unit`` steps."""
    whole = sum(weights, Decimal(0))
    if total == 0 or whole == 0:
        return [Decimal(0)] * len(weights)
    exact = [total * w / whole for w in weights]
    shares = [e.quantize(unit, rounding=ROUND_DOWN) for e in exact]
    left = int((total - sum(shares, Decimal(0))) / unit)
    for i in sorted(range(len(exact)), key=lambda i: (shares[i] - exact[i], i))[:left]:
        shares[i] += unit
    return shares


def _tax(base: Decimal, rate: Decimal, included: bool, unit: Decimal) -> Decimal:
    """The tax on ``base``: added on top (US sales tax) or the part of it that is tax (VAT)."""
    exact = base * rate / (1 + rate) if included else base * rate
    return exact.quantize(unit, rounding=ROUND_HALF_UP)


def _line_items(order_id: str, lines: list[_Line], skus: dict[str, dict[str, Any]], display_status: str,
                place: _Place, money: _Money) -> list[dict[str, Any]]:
    """TikTok's line items, one per unit, with their prices, discounts and ``item_tax``."""
    currency = money.currency
    unit = Decimal(1).scaleb(-minor_units(currency))
    rate = Decimal(place.tax_rate)
    items: list[dict[str, Any]] = []
    for line in lines:
        sku = skus[line.sku]
        for n in range(line.qty):  # TikTok sends one line item per unit
            item: dict[str, Any] = {
                "id": f"{order_id}{len(items) + 1:02d}",
                "sku_id": sku["sku_id"],
                "product_id": sku["product_id"],
                "product_name": sku["product_name"],
                "sku_name": sku["sku_name"],
                "seller_sku": sku["seller_sku"],
                "sku_type": "NORMAL",
                "sku_image": "",
                "currency": currency,
                "original_price": Decimal(line.price or sku["price"]),
                "seller_discount": Decimal(line.seller),
                "platform_discount": Decimal(line.platform),
                "display_status": display_status,
                "is_gift": False,
            }
            if n < line.cancelled:
                item.update(display_status="CANCELLED", cancel_user="SYSTEM", cancel_reason="Item unavailable")
            if line.sku == "bundle":
                item["combined_listing_skus"] = [
                    {
                        "sku_id": skus[part]["sku_id"],
                        "product_id": skus[part]["product_id"],
                        "seller_sku": skus[part]["seller_sku"],
                        "sku_count": count,
                    }
                    for part, count in _BUNDLE
                ]
            items.append(item)
    # Order-level coupons land on the live units, as TikTok reports them per line item.
    live = _live(items, display_status)
    for name, coupon in (("seller_discount", money.coupon_seller), ("platform_discount", money.coupon_platform)):
        weights = [i["original_price"] - i["seller_discount"] - i["platform_discount"] for i in live]
        for item, share in zip(live, _split(Decimal(coupon), weights, unit), strict=True):
            item[name] += share
    for item in items:
        sale = item["original_price"] - item["seller_discount"] - item["platform_discount"]
        if sale < 0:
            raise ValueError(f"demo line {item['id']} is discounted below zero")
        tax = _tax(sale, rate, money.taxes_included, unit)
        item["sale_price"] = sale
        item["item_tax"] = [{"tax_type": "SALES_TAX", "tax_rate": place.tax_rate, "tax_amount": tax}] if tax else []
    return items


def _live(items: list[dict[str, Any]], order_display_status: str) -> list[dict[str, Any]]:
    """The line items the payment covers: all in a cancelled order, else those not cancelled."""
    if order_display_status == "CANCELLED":
        return items
    return [i for i in items if i["display_status"] != "CANCELLED"]


def _payment(items: list[dict[str, Any]], place: _Place, money: _Money) -> dict[str, Decimal | str]:
    """TikTok's ``payment`` for the live ``items`` (the relations of the module docstring)."""
    currency = money.currency
    unit = Decimal(1).scaleb(-minor_units(currency))

    def total(name: str) -> Decimal:
        return sum((i[name] for i in items), Decimal(0))

    shipping = Decimal(money.shipping) - Decimal(money.shipping_seller) - Decimal(money.shipping_platform)
    shipping_tax = (_tax(shipping, Decimal(place.tax_rate), money.taxes_included, unit)
                    if place.shipping_taxed else Decimal(0))
    product_tax = sum((t["tax_amount"] for i in items for t in i["item_tax"]), Decimal(0))
    # TikTok sends the fees of the market: the retail delivery fee on every US order (0 outside
    # Colorado and Minnesota), the others where they apply.
    names = [n for n in FEE_FIELDS if n in money.fees or (n == "retail_delivery_fee" and place.region == "US")]
    fees = {name: Decimal(money.fees.get(name, "0")) for name in names}
    tax = product_tax + shipping_tax
    total_amount = total("sale_price") + shipping + sum(fees.values(), Decimal(0))
    if not money.taxes_included:
        total_amount += tax
    return {
        "currency": currency,
        "original_total_product_price": total("original_price"),
        "seller_discount": total("seller_discount"),
        "platform_discount": total("platform_discount"),
        "sub_total": total("sale_price"),
        "original_shipping_fee": Decimal(money.shipping),
        "shipping_fee_seller_discount": Decimal(money.shipping_seller),
        "shipping_fee_platform_discount": Decimal(money.shipping_platform),
        "shipping_fee": shipping,
        "shipping_fee_tax": shipping_tax,
        "product_tax": product_tax,
        "tax": tax,
        **fees,
        "total_amount": total_amount,
    }


def _as_text(value: Any, currency: str) -> Any:
    """Every Decimal in ``value`` as TikTok's amount text."""
    if isinstance(value, Decimal):
        return _amount(value, currency)
    if isinstance(value, dict):
        return {k: _as_text(v, currency) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_text(v, currency) for v in value]
    return value


def _address(place: _Place) -> dict[str, Any]:
    lines = ", ".join(part for part in (place.street, place.street2) if part)
    state = next((iso.split("-")[-1] for _, kind, _, iso in place.levels if kind == "State" and iso), "")
    address: dict[str, Any] = {
        "name": f"{place.first} {place.last}",
        "first_name": place.first,
        "last_name": place.last,
        "phone_number": place.phone,
        "address_line1": place.street,
        "address_line2": place.street2,
        "address_line3": "",
        "address_line4": "",
        "address_detail": "",
        "postal_code": place.postal,
        "region_code": place.region,
        "full_address": f"{lines}, {place.city()}, {' '.join(p for p in (state, place.postal) if p)}",
        "district_info": [
            {"address_level": level, "address_level_name": kind, "address_name": name,
             **({"iso_code": iso} if iso else {})}
            for level, kind, name, iso in place.levels
        ],
    }
    if place.post_town:
        address["post_town"] = place.post_town
    return address


def _order(number: int, status: str, hours_ago: int, lines: list[_Line], place: _Place, money: _Money,
           now: int, skus: dict[str, dict[str, Any]], extra: dict[str, Any]) -> dict[str, Any]:
    order_id = _order_id(number)
    created = now - hours_ago * 3600
    # A few minutes of activity after creation (payment, status changes).
    updated = created + 600 + number * 7
    extra = dict(extra)
    option_id, option_name = extra.pop("delivery_option", _STANDARD)
    items = _line_items(order_id, lines, skus, DISPLAY_STATUS[status], place, money)
    payment = _payment(_live(items, DISPLAY_STATUS[status]), place, money)
    order: dict[str, Any] = {
        "id": order_id,
        "status": status,
        "create_time": created,
        "update_time": updated,
        "paid_time": None if status == "UNPAID" else created + 60,
        "user_id": f"70214368104682{number:05d}",
        "buyer_email": f"{place.first.lower()}.{place.last.lower()}@scs.tiktokw.us",
        "buyer_message": "",
        "commerce_platform": "TIKTOK_SHOP",
        "shipping_type": "TIKTOK" if number in _TIKTOK_SHIPPED else "SELLER",
        "fulfillment_type": "FULFILLMENT_BY_SELLER",
        "warehouse_id": _WAREHOUSE,
        "delivery_type": "HOME_DELIVERY",
        "delivery_option_id": option_id,
        "delivery_option_name": option_name,
        "payment_method_name": "CCDC",
        "is_cod": False,
        "is_on_hold_order": status == "ON_HOLD",
        "is_sample_order": False,
        "is_replacement_order": False,
        "payment": payment,
        "recipient_address": _address(place),
        "line_items": items,
        **extra,
    }
    if status == "CANCELLED":
        order.update(cancel_reason="No longer needed", cancel_time=updated,
                     cancellation_initiator="BUYER")
    _packages(order, number, created + 3600)
    return _as_text(order, money.currency)


def _packages(order: dict[str, Any], number: int, shipped_at: int) -> None:
    """The package of an order that has shipped (the first live line only, while PARTIALLY_SHIPPING),
    or of one whose market packs at order time; tracking on the lines and the order, as TikTok serves it."""
    status = order["status"]
    live = [i for i in order["line_items"] if i["display_status"] != "CANCELLED"]
    package_status = _PACKAGE_STATUS.get(status)
    if package_status is None and number in _PACKAGED_AT_ORDER_TIME:
        package_status = "TO_FULFILL"
    if package_status is None:
        return
    package_id = f"115200000000{number:05d}01"
    lines = live[:1] if status == "PARTIALLY_SHIPPING" else live
    for line in lines:
        line.update(package_id=package_id, package_status=package_status)
    order["packages"] = [{"id": package_id}]
    if package_status == "TO_FULFILL":
        return
    tracking = f"94001118992230{number:05d}01"
    for line in lines:
        line.update(tracking_number=tracking, shipping_provider_id=_USPS["id"],
                    shipping_provider_name=_USPS["name"], rts_time=shipped_at)
    order.update(tracking_number=tracking, shipping_provider=_USPS["name"], shipping_provider_id=_USPS["id"],
                 rts_time=shipped_at)


def _orders(now: int, skus: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    orders = []
    for number, (status, hours_ago, lines) in enumerate(_ORDERS, start=1):
        place = _BUYERS[number % len(_BUYERS)]
        orders.append(_order(number, status, hours_ago, [_Line(sku, qty) for sku, qty in lines], place,
                             _Money(), now, skus, {}))
    for kind in _KINDS:
        orders.append(_order(kind.number, kind.status, kind.hours_ago, list(kind.lines), kind.place,
                             kind.money, now, skus, kind.extra))
    return orders


def demo_seed(now: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """The demo data: ``shopify_products``, ``tiktok_products``, ``tiktok_orders``,
    ``tiktok_delivery_options`` (each with the shipping providers TikTok accepts for it).

    ``now`` (Unix seconds, default the current time) anchors every timestamp,
    so tests can pin it.
    """
    now = int(time.time()) if now is None else int(now)
    tiktok_products, skus = _tiktok_catalog(now)
    return {
        "shopify_products": _shopify_products(now),
        "tiktok_products": tiktok_products,
        "tiktok_orders": _orders(now, skus),
        "tiktok_delivery_options": copy.deepcopy(DELIVERY_OPTIONS),
    }
