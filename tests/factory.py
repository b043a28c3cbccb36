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
