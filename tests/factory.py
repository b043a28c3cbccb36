"""Builders for store contents, written through the store's own API."""

from __future__ import annotations

import hashlib
from itertools import count

from ecomsend_cli.models import OrderItem, PulledOrder, TikTokSku, Variant
from ecomsend_cli.store import Store

_ids = count(1000)


def variant(vid: int, sku: str, product: str = "Product", title: str = "Default Title",
            qty: int = 10) -> Variant:
    return Variant(
        variant_id=f"gid://shopify/ProductVariant/{vid}",
        product_id=f"gid://shopify/Product/{vid // 10}",
        product_title=product,
        variant_title=title,
        sku=sku,
        inventory_item_id=f"gid://shopify/InventoryItem/{vid}",
        inventory_quantity=qty,
    )


def sku(sku_id: str, seller_sku: str, product: str = "TikTok product", name: str = "Default",
        external: str = "") -> TikTokSku:
    return TikTokSku(sku_id=sku_id, product_id="p" + sku_id, product_title=product,
                     sku_name=name, seller_sku=seller_sku, external_sku_id=external)


def order(order_id: str, skus: list[TikTokSku], status: str = "AWAITING_SHIPMENT") -> PulledOrder:
    return PulledOrder(
        tiktok_order_id=order_id, tiktok_status=status, create_time=1_700_000_000,
        update_time=1_700_000_000, currency="USD", total_amount="10.00", payload={"id": order_id},
        items=tuple(OrderItem(s.sku_id, 1, "10.00", s.product_title) for s in skus),
        skus=tuple(skus),
    )


def digest(path) -> str:
    """The store file's bytes, hashed: equal digests mean nothing was written."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def links_of(path) -> dict[str, tuple[str, str]]:
    with Store.open(path) as store:
        return {x.tiktok_sku_id: (x.shopify_variant_id, x.source) for x in store.links()}


def history_of(path):
    with Store.open(path) as store:
        return store.history()


def repriced(order: dict, lines: list[dict]) -> dict:
    """``order`` with ``lines`` (one dict per unit) and its payment's item figures redone to match,
    by TikTok's arithmetic; shipping and fees kept. Taxes stay added or included as they were."""
    from decimal import Decimal

    def total(name: str) -> Decimal:
        return sum((Decimal(str(x.get(name) or 0)) for x in lines if x.get("display_status") != "CANCELLED"),
                   Decimal(0))

    payment = dict(order["payment"])
    before = Decimal(payment["sub_total"]) + Decimal(payment["shipping_fee"]) + sum(
        Decimal(str(payment.get(f) or 0)) for f in ("retail_delivery_fee", "small_order_fee", "buyer_service_fee",
                                                       "handling_fee", "item_insurance_fee", "shipping_insurance_fee"))
    included = before == Decimal(payment["total_amount"])
    product_tax = sum((Decimal(str(t["tax_amount"])) for x in lines if x.get("display_status") != "CANCELLED"
                       for t in x.get("item_tax") or []), Decimal(0))
    sub_total = total("sale_price")
    payment.update(original_total_product_price=str(total("original_price")),
                   seller_discount=str(total("seller_discount")), platform_discount=str(total("platform_discount")),
                   sub_total=str(sub_total), product_tax=str(product_tax),
                   tax=str(product_tax + Decimal(payment.get("shipping_fee_tax") or 0)))
    fees = before - Decimal(order["payment"]["sub_total"]) - Decimal(payment["shipping_fee"])
    payment["total_amount"] = str(sub_total + Decimal(payment["shipping_fee"]) + fees
                                  + (0 if included else Decimal(payment["tax"])))
    return {**order, "line_items": lines, "payment": payment}
