"""Records that cross module boundaries: catalog variants, TikTok SKUs, links.

Plain frozen dataclasses, no behaviour beyond small derived properties, so the
store, the matching rules, the API clients and the CLI agree on one shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

VARIANT_GID_PREFIX = "gid://shopify/ProductVariant/"
PRODUCT_GID_PREFIX = "gid://shopify/Product/"
LINK_SOURCES = ("feed", "auto", "manual", "csv")


def variant_gid(value: str | int) -> str:
    """A full variant GID from a GID or a plain number; raises ValueError otherwise."""
    text = str(value).strip()
    if text.startswith(VARIANT_GID_PREFIX):
        number = text[len(VARIANT_GID_PREFIX):]
    else:
        number = text
    if not number.isascii() or not number.isdigit():
        raise ValueError(f"not a Shopify variant id: {value!r}")
    return VARIANT_GID_PREFIX + str(int(number))


@dataclass(frozen=True)
class Variant:
    """One Shopify product variant as cached locally (DESIGN §4.3)."""

    variant_id: str  # full GID
    product_id: str  # full GID
    product_title: str
    variant_title: str
    sku: str  # raw, as Shopify has it
    inventory_item_id: str | None = None
    inventory_quantity: int | None = None
    status: str = "ACTIVE"  # product status: ACTIVE / DRAFT / ARCHIVED
    updated_at: str | None = None  # product updatedAt, ISO 8601


class VariantColumns(NamedTuple):
    """The cached catalog column by column (the picker's index): each value on a line of its own."""

    ids: str
    sku_keys: str  # DESIGN §4.1 keys; an empty line for a variant without a SKU
    product_titles: str
    variant_titles: str
    count: int


@dataclass(frozen=True)
class TikTokSku:
    """One TikTok SKU seen in a pulled order (or in product data)."""

    sku_id: str
    product_id: str = ""
    product_title: str = ""
    sku_name: str = ""
    seller_sku: str = ""  # raw: may be empty, duplicated or padded with spaces
    external_sku_id: str = ""  # set when the product was published from Shopify


@dataclass(frozen=True)
class Link:
    tiktok_sku_id: str
    shopify_variant_id: str
    source: str  # one of LINK_SOURCES
    linked_at: str
    linked_by: str = ""


class TokenCache(Protocol):
    """Where API clients keep refreshed tokens (the store implements it).

    ``name`` is e.g. ``"shopify"`` or ``"tiktok"``; ``data`` a JSON-able dict.
    """

    def load_token(self, name: str) -> dict | None: ...

    def save_token(self, name: str, data: dict) -> None: ...


class MemoryTokenCache:
    """A TokenCache in memory, for tests and for commands that run without a store."""

    def __init__(self) -> None:
        self._data: dict[str, dict] = {}

    def load_token(self, name: str) -> dict | None:
        return self._data.get(name)

    def save_token(self, name: str, data: dict) -> None:
        self._data[name] = dict(data)


@dataclass(frozen=True)
class OrderItem:
    """One TikTok SKU an order needs, after resolving units and combined listings (§5.2)."""

    sku_id: str
    quantity: int
    unit_price: str = "0"
    title: str = ""


@dataclass(frozen=True)
class PulledOrder:
    """A TikTok order as pulled: its raw payload, the SKUs seen in it, its resolved items."""

    tiktok_order_id: str
    tiktok_status: str
    create_time: int
    update_time: int
    currency: str
    total_amount: str
    payload: dict
    items: tuple[OrderItem, ...]
    skus: tuple[TikTokSku, ...]


@dataclass(frozen=True)
class InvalidOrder:
    """A TikTok order payload that cannot be used (DESIGN §5.1): never sent, reported with ``reason``.

    ``tiktok_order_id`` is None when the payload has no usable id (it is then
    reported but cannot be stored); ``payload`` is None when it is not an object.
    """

    tiktok_order_id: str | None
    reason: str
    payload: dict | None = None
    update_time: int | None = None
