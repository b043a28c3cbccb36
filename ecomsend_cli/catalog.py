"""The local cache of the Shopify catalog: when to refresh it and how (DESIGN §4.3).

A full refresh downloads every variant through one bulk operation and
replaces the cache in one transaction, so a failed download leaves the old
cache whole. An incremental refresh asks Shopify only for what changed since
the last refresh (minus an overlap, because Shopify's search index lags):

* variants updated since then (new variants, SKU or stock edits), and
* every variant of the products updated since then, fetched in full, so
  product title/status changes reach all their variants and variants deleted
  from those products leave the cache.

Deleted products are only noticed by a full refresh; ``catalog refresh
--full`` (or a cache with no refresh time yet) does one.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from .models import Variant
from .shopify_records import Refusals
from .store import CATALOG_REFRESHED_KEY
from .text import plural

STATE_KEY = CATALOG_REFRESHED_KEY
FULL = "full"
INCREMENTAL = "incremental"
# Shopify's search index trails writes by seconds to minutes; asking again for
# a few minutes already seen costs little and misses nothing.
OVERLAP = timedelta(minutes=5)
_PRODUCT_CHUNK = 50  # product ids per productVariants search


class CatalogStore(Protocol):
    """What the refresh needs from :class:`ecomsend_cli.store.Store`."""

    def get_state(self, key: str) -> str | None: ...

    def set_state(self, key: str, value: str | None) -> None: ...

    def replace_variant_rows(self, batches: Iterable[Sequence[Sequence[Any]]]) -> int: ...

    def upsert_variants(self, variants: Iterable[Variant], *, product_ids: list[str]) -> int: ...


class CatalogClient(Protocol):
    """What the refresh needs from :class:`ecomsend_cli.shopify.ShopifyClient`."""

    def bulk_variant_rows(
        self, *, poll_interval: float = ..., refused: Refusals | None = None
    ) -> Iterable[list[tuple]]: ...

    def iter_variants(
        self, updated_since: str | None = None, *, product_ids: Iterable[str] = (),
        refused: Refusals | None = None,
    ) -> Iterable[Variant]: ...

    def changed_product_ids(self, updated_since: str) -> Iterable[str]: ...


@dataclass(frozen=True)
class CatalogRefreshResult:
    """What a refresh did: ``mode`` is ``full`` or ``incremental``."""

    mode: str
    variants: int  # variants written to the cache
    products: int  # products fetched in full (incremental only)
    seconds: float
    refreshed_at: str  # ISO 8601, UTC: when this refresh started
    refused: int = 0  # records Shopify sent not shaped as documented, left out of the cache
    refused_examples: tuple[str, ...] = ()  # the first few reasons

    def refused_warning(self) -> str | None:
        """The line that tells the operator what was left out, or None."""
        if not self.refused:
            return None
        n = self.refused
        return (f"{plural(n, 'catalog record')} from Shopify {'was' if n == 1 else 'were'} not "
                f"shaped as documented and left out of the cache (first: {self.refused_examples[0]}); "
                "the rest was refreshed — if it persists, check shopify.api_version")

    def as_json(self) -> dict:
        return {
            "mode": self.mode,
            "variants": self.variants,
            "products": self.products,
            "seconds": round(self.seconds, 3),
            "refreshed_at": self.refreshed_at,
            "refused": self.refused,
            "refused_examples": list(self.refused_examples),
        }


def refresh_catalog(
    store: CatalogStore,
    client: CatalogClient,
    *,
    full: bool = False,
    now: datetime | None = None,
    poll_interval: float = 2.0,
) -> CatalogRefreshResult:
    """Refresh the variant cache; full when asked or when it was never refreshed.

    The time recorded is when the refresh started, so a change made during
    the refresh is picked up by the next one.
    """
    started = _utc(now)
    clock = time.perf_counter()
    last = _parse(store.get_state(STATE_KEY))
    refused = Refusals()
    if full or last is None:
        count = store.replace_variant_rows(client.bulk_variant_rows(poll_interval=poll_interval, refused=refused))
        mode, products = FULL, 0
    else:
        since = _iso(last - OVERLAP)
        product_ids = list(dict.fromkeys(client.changed_product_ids(since)))
        found: dict[str, Variant] = {}
        for variant in client.iter_variants(updated_since=since, refused=refused):
            found[variant.variant_id] = variant
        for start in range(0, len(product_ids), _PRODUCT_CHUNK):
            chunk = product_ids[start:start + _PRODUCT_CHUNK]
            for variant in client.iter_variants(product_ids=chunk, refused=refused):
                found[variant.variant_id] = variant
        count = store.upsert_variants(found.values(), product_ids=product_ids)
        mode, products = INCREMENTAL, len(product_ids)
    refreshed_at = _iso(started)
    store.set_state(STATE_KEY, refreshed_at)
    return CatalogRefreshResult(
        mode=mode,
        variants=count,
        products=products,
        seconds=time.perf_counter() - clock,
        refreshed_at=refreshed_at,
        refused=refused.count,
        refused_examples=tuple(refused.examples),
    )


def catalog_age(store: CatalogStore, now: datetime | None = None) -> timedelta | None:
    """How long ago the last refresh started; None when the cache was never refreshed."""
    last = _parse(store.get_state(STATE_KEY))
    return None if last is None else _utc(now) - last


def catalog_is_stale(store: CatalogStore, max_age_minutes: int, now: datetime | None = None) -> bool:
    """True when the cache was never refreshed or is older than ``max_age_minutes``."""
    age = catalog_age(store, now)
    return age is None or age >= timedelta(minutes=max_age_minutes)


def _utc(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return _utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None  # an unreadable time means "never": the next refresh is full
