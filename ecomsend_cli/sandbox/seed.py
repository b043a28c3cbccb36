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

Ids are fixed, times are relative to ``now`` (every order within the last
three days, so the first sync's 7-day window sees them all).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from .tiktok_sim import DISPLAY_STATUS

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

_BUYERS = [
    ("Avery", "Quinn", "41 Harbor Way", "San Jose", "California", "CA", "95110"),
    ("Jordan", "Lee", "900 Elm Street Apt 4", "Austin", "Texas", "TX", "73301"),
    ("Sam", "Rivera", "12 Birch Road", "Portland", "Oregon", "OR", "97201"),
    ("Robin", "Patel", "77 Lake Shore Dr", "Chicago", "Illinois", "IL", "60601"),
    ("Casey", "Nguyen", "5 Orchard Lane", "Brooklyn", "New York", "NY", "11201"),
]
_SHIPPING_FEE = Decimal("4.99")


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def _line_items(order_id: str, lines: list[tuple[str, int]], skus: dict[str, dict[str, Any]],
                display_status: str) -> list[dict[str, Any]]:
    items = []
    for sku_key, quantity in lines:
        sku = skus[sku_key]
        for _ in range(quantity):  # TikTok sends one line item per unit
            item: dict[str, Any] = {
                "id": f"{order_id}{len(items) + 1:02d}",
                "sku_id": sku["sku_id"],
                "product_id": sku["product_id"],
                "product_name": sku["product_name"],
                "sku_name": sku["sku_name"],
                "seller_sku": sku["seller_sku"],
                "sku_type": "NORMAL",
                "sku_image": "",
                "currency": "USD",
                "original_price": sku["price"],
                "sale_price": sku["price"],
                "platform_discount": "0",
                "seller_discount": "0",
                "display_status": display_status,
                "is_gift": False,
            }
            if sku_key == "bundle":
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
    return items


def _orders(now: int, skus: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    orders = []
    for number, (status, hours_ago, lines) in enumerate(_ORDERS, start=1):
        order_id = f"5800000000000{number:05d}"
        created = now - hours_ago * 3600
        # A few minutes of activity after creation (payment, status changes).
        updated = created + 600 + number * 7
        items = _line_items(order_id, lines, skus, DISPLAY_STATUS[status])
        sub_total = sum((Decimal(i["sale_price"]) for i in items), Decimal("0"))
        first, last, street, city, state, state_code, postal = _BUYERS[number % len(_BUYERS)]
        order: dict[str, Any] = {
            "id": order_id,
            "status": status,
            "create_time": created,
            "update_time": updated,
            "paid_time": None if status == "UNPAID" else created + 60,
            "user_id": f"70214368104682{number:05d}",
            "buyer_email": f"{first.lower()}.{last.lower()}@scs.tiktokw.us",
            "buyer_message": "",
            "commerce_platform": "TIKTOK_SHOP",
            "shipping_type": "TIKTOK",
            "fulfillment_type": "FULFILLMENT_BY_SELLER",
            "delivery_type": "HOME_DELIVERY",
            "delivery_option_name": "Standard shipping",
            "payment_method_name": "CCDC",
            "is_cod": False,
            "is_on_hold_order": status == "ON_HOLD",
            "is_sample_order": False,
            "is_replacement_order": False,
            "payment": {
                "currency": "USD",
                "original_total_product_price": str(sub_total),
                "sub_total": str(sub_total),
                "original_shipping_fee": str(_SHIPPING_FEE),
                "shipping_fee": str(_SHIPPING_FEE),
                "seller_discount": "0",
                "platform_discount": "0",
                "tax": "0",
                "total_amount": str(sub_total + _SHIPPING_FEE),
            },
            "recipient_address": {
                "name": f"{first} {last}",
                "first_name": first,
                "last_name": last,
                "phone_number": "(+1)555-***-0100",
                "address_line1": street,
                "address_line2": "",
                "address_detail": "",
                "postal_code": postal,
                "region_code": "US",
                "full_address": f"{street}, {city}, {state_code} {postal}",
                "district_info": [
                    {"address_level": "L0", "address_level_name": "Country", "address_name": "United States"},
                    {"address_level": "L1", "address_level_name": "State", "address_name": state},
                    {"address_level": "L3", "address_level_name": "City", "address_name": city},
                ],
            },
            "line_items": items,
        }
        if status == "CANCELLED":
            order.update(cancel_reason="No longer needed", cancel_time=updated,
                         cancellation_initiator="BUYER")
        orders.append(order)
    return orders


def demo_seed(now: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """The demo data: ``shopify_products``, ``tiktok_products``, ``tiktok_orders``.

    ``now`` (Unix seconds, default the current time) anchors every timestamp,
    so tests can pin it.
    """
    now = int(time.time()) if now is None else int(now)
    tiktok_products, skus = _tiktok_catalog(now)
    return {
        "shopify_products": _shopify_products(now),
        "tiktok_products": tiktok_products,
        "tiktok_orders": _orders(now, skus),
    }
