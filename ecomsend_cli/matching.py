"""The linking rules of DESIGN §4.1–§4.2, as pure functions (no I/O).

* :func:`sku_key` is the one normalisation of a SKU code: NFKC, format
  characters (Unicode category Cf: zero-width spaces and joiners, BOM, soft
  hyphen) removed, surrounding white space (tabs, no-break spaces) trimmed,
  case folded, leading zeros kept. An empty code (also one that normalises to
  empty) has no key (``None``) and so matches nothing; the store keeps these
  keys in indexed columns, where SQL's ``NULL <> NULL`` carries the rule into
  every join. A change to this rule needs a store migration that recomputes
  the stored keys.
* :func:`classify` decides, from the variants whose key equals a TikTok SKU's,
  whether that SKU is a match, ambiguous, or has none.
* :func:`plan_autolink` turns candidates into the popup's three lists, never
  touching a SKU that already has a link.
* :func:`feed_links` finds TikTok SKUs published from Shopify (``external_sku_id``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from .models import variant_gid

MATCH = "match"
AMBIGUOUS = "ambiguous"
NONE = "none"


def sku_key(code: str | None) -> str | None:
    """The comparison key of a SKU code, or None for an empty code (DESIGN §4.1).

    Format characters are invisible where codes are typed and pasted (a
    zero-width space copied from a web page, a BOM from a spreadsheet), so two
    codes that look the same must not differ by them, and a code made only of
    them is empty. ``str.strip()`` with no argument removes every Unicode white
    space, including tabs and no-break spaces (which NFKC also turns into spaces).
    """
    if code is None:
        return None
    if code.isascii():  # the usual case: NFKC changes nothing and there is no Cf character
        return code.strip().casefold() or None
    text = unicodedata.normalize("NFKC", code)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return text.strip().casefold() or None


class Suggestion(NamedTuple):
    """What auto-link would do for one TikTok SKU (a tuple: built 100,000s of times)."""

    status: str  # MATCH, AMBIGUOUS or NONE
    shopify_variant_id: str | None = None
    candidates: tuple[str, ...] = ()

    def as_json(self) -> dict:
        return {
            "status": self.status,
            "shopify_variant_id": self.shopify_variant_id,
            "candidates": list(self.candidates),
        }


def classify(seller_sku: str | None, candidates: Sequence[str]) -> Suggestion:
    """Classify a TikTok SKU given the ids of the variants whose key equals its key.

    An empty code matches nothing, whatever ``candidates`` holds; two or more
    candidates make it ambiguous (never auto-linked).
    """
    if not candidates or sku_key(seller_sku) is None:
        return _NO_MATCH
    if len(candidates) == 1:
        return Suggestion(MATCH, candidates[0], tuple(candidates))
    unique = tuple(dict.fromkeys(candidates))
    if len(unique) == 1:
        return Suggestion(MATCH, unique[0], unique)
    return Suggestion(AMBIGUOUS, None, unique)


_NO_MATCH = Suggestion(NONE)


@dataclass
class AutolinkPlan:
    """The popup: pairs to link, and the SKUs listed apart."""

    pairs: list[tuple[str, str]] = field(default_factory=list)  # (tiktok_sku_id, variant_id)
    ambiguous: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)


def plan_autolink(
    rows: Iterable[tuple[str, str | None, Sequence[str]]],
    linked: Iterable[str] | Mapping[str, object] = (),
) -> AutolinkPlan:
    """Plan auto-link from ``(tiktok_sku_id, seller_sku, candidate_variant_ids)`` rows.

    SKUs in ``linked`` are skipped entirely: auto-link never touches a SKU that
    already has a link.
    """
    already = linked if isinstance(linked, Mapping) else set(linked)
    plan = AutolinkPlan()
    for sku_id, seller_sku, candidates in rows:
        if sku_id in already:
            continue
        suggestion = classify(seller_sku, candidates)
        if suggestion.status == MATCH:
            plan.pairs.append((sku_id, suggestion.shopify_variant_id))  # type: ignore[arg-type]
        elif suggestion.status == AMBIGUOUS:
            plan.ambiguous.append((sku_id, suggestion.candidates))
        else:
            plan.unmatched.append(sku_id)
    return plan


def feed_links(
    skus: Iterable[tuple[str, str | None]],
    known_variants: Iterable[str] | Mapping[str, object],
    linked: Iterable[str] | Mapping[str, object] = (),
) -> list[tuple[str, str]]:
    """``(tiktok_sku_id, variant_id)`` for SKUs whose ``external_sku_id`` names a known variant.

    ``skus`` yields ``(tiktok_sku_id, external_sku_id)``. Such a SKU was
    published to TikTok by the Shopify feed, so it gets a ``feed`` link; SKUs
    already linked are left alone.
    """
    known = known_variants if isinstance(known_variants, Mapping) else set(known_variants)
    already = linked if isinstance(linked, Mapping) else set(linked)
    out = []
    for sku_id, external in skus:
        if not external or sku_id in already:
            continue
        try:
            gid = variant_gid(external)
        except ValueError:
            continue
        if gid in known:
            out.append((sku_id, gid))
    return out
