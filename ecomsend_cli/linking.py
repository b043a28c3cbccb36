"""Link operations over the store: resolve arguments, plan and apply link changes.

The rules themselves live in :mod:`matching`; this module reads the store,
applies those rules and writes through :meth:`Store.apply_links`, so every
write is one transaction with a history row per change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import AmbiguousError, LinkExistsError, NotFoundError
from .matching import AutolinkPlan, feed_links, plan_autolink
from .models import VARIANT_GID_PREFIX, Link, TikTokSku, Variant, variant_gid
from .store import LinkChange, Store


def resolve_tiktok(store: Store, arg: str) -> TikTokSku:
    """A TikTok SKU from its ``sku_id`` or a seller SKU naming exactly one."""
    sku = store.tiktok_sku(arg.strip())
    if sku is not None:
        return sku
    return _exactly_one(
        store.tiktok_skus_by_seller_sku(arg),
        missing=NotFoundError(
            f"no TikTok SKU with id or seller SKU {arg!r} in pulled orders",
            hint="see `ecomsend list-unlinked --all` for known SKUs",
        ),
        what=f"seller SKU {arg!r}", kind="TikTok SKUs", hint="give the sku_id instead",
        describe=lambda s: (s.sku_id, f"{s.product_title} / {s.sku_name}"),
    )


def resolve_shopify(store: Store, arg: str) -> Variant:
    """A cached Shopify variant from a GID, a plain number, or a SKU naming exactly one."""
    text = arg.strip()
    if text.startswith(VARIANT_GID_PREFIX) or text.isdigit():
        gid = variant_gid(text)
        variant = store.variant(gid)
        if variant is not None:
            return variant
        if text.startswith(VARIANT_GID_PREFIX):
            raise NotFoundError(
                f"no Shopify variant {gid} in the catalog cache",
                hint="check the id, or run `ecomsend catalog refresh`",
            )
    return _exactly_one(
        store.variants_by_sku(text),
        missing=NotFoundError(
            f"no Shopify variant with id or SKU {arg!r} in the catalog cache",
            hint="check the SKU, or run `ecomsend catalog refresh`",
        ),
        what=f"Shopify SKU {arg!r}", kind="variants", hint="give the variant id instead",
        describe=lambda v: (v.variant_id, f"{v.product_title} / {v.variant_title}"),
    )


def _exactly_one(matches: list, *, missing: NotFoundError, what: str, kind: str, hint: str,
                 describe: Callable[[Any], tuple[str, str]]) -> Any:
    """The one match; else ``missing``, or AmbiguousError listing the candidates (DESIGN §3)."""
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise missing
    described = [describe(m) for m in matches]
    listing = ", ".join(f"{key} ({label})" for key, label in described[:10])
    raise AmbiguousError(f"{what} names {len(matches)} {kind}: {listing}",
                         [key for key, _ in described], hint=hint)


@dataclass
class AutolinkProposal:
    """What the popup shows: pairs with both sides' details, and the rest listed apart."""

    plan: AutolinkPlan
    skus: dict[str, TikTokSku]
    variants: dict[str, Variant]


def propose_autolink(store: Store) -> AutolinkProposal:
    """SKU-equal pairs for every unlinked TikTok SKU (§4.1); writes nothing."""
    plan = plan_autolink(store.autolink_candidates(), store.linked_sku_ids())
    return AutolinkProposal(plan=plan, skus={}, variants={})


def describe(store: Store, proposal: AutolinkProposal) -> AutolinkProposal:
    """Fill in product titles etc. for display (only needed on a terminal or in tables)."""
    sku_ids = [s for s, _ in proposal.plan.pairs] + [s for s, _ in proposal.plan.ambiguous]
    sku_ids += proposal.plan.unmatched
    proposal.skus = {s: store.tiktok_sku(s) for s in sku_ids}  # type: ignore[misc]
    variant_ids = [v for _, v in proposal.plan.pairs]
    for _, candidates in proposal.plan.ambiguous:
        variant_ids.extend(candidates)
    proposal.variants = store.variants(variant_ids)
    return proposal


def apply_autolink(store: Store, plan: AutolinkPlan, *, actor: str, batch: int | None = None) -> int:
    """Write every proposed pair in one transaction, or none (§4.1)."""
    changes = [LinkChange(sku_id, variant_id, None) for sku_id, variant_id in plan.pairs]
    return store.apply_links(changes, source="auto", actor=actor, batch=batch)


def propose_feed_links(store: Store, rows: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """Unlinked SKUs whose ``external_sku_id`` names a cached variant (§4.2); ``rows``: what
    :meth:`Store.external_sku_ids` says now, if the caller has just read it."""
    rows = store.external_sku_ids() if rows is None else rows
    if not rows:
        return []
    known = store.variants(variant_gid(e) for _, e in rows if _is_id(e))
    return feed_links(rows, known, store.linked_sku_ids())


def apply_feed_links(store: Store, pairs: list[tuple[str, str]], *, actor: str,
                     batch: int | None = None) -> int:
    changes = [LinkChange(sku_id, variant_id, None) for sku_id, variant_id in pairs]
    return store.apply_links(changes, source="feed", actor=actor, batch=batch)


def _is_id(value: str) -> bool:
    try:
        variant_gid(value)
    except ValueError:
        return False
    return True


def plan_manual_link(store: Store, sku: TikTokSku, variant: Variant, *, force: bool) -> LinkChange | None:
    """The change a manual link makes; None if it is already so.

    Linking a SKU again to the variant it is linked to confirms a stale link
    (the variant's SKU changed in Shopify, §4.1): the link is written again
    with the variant's current SKU. Raises LinkExistsError when it would
    replace another link and ``force`` is not given (the CLI asks for
    confirmation instead, on a terminal).
    """
    current: Link | None = store.link(sku.sku_id)
    if current and current.shopify_variant_id == variant.variant_id:
        if sku.sku_id in store.stale_links([sku.sku_id]):
            return LinkChange(sku.sku_id, variant.variant_id, variant.variant_id)
        return None
    if current and not force:
        raise LinkExistsError(
            f"TikTok SKU {sku.sku_id} ({sku.seller_sku!r}) is already linked to "
            f"{current.shopify_variant_id} ({current.source})",
            hint=f"`ecomsend link {sku.sku_id} {variant.variant_id.rsplit('/', 1)[-1]} --force` "
            "replaces the link",
        )
    return LinkChange(sku.sku_id, variant.variant_id, current.shopify_variant_id if current else None)
