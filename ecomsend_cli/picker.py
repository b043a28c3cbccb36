"""The manual picker's ranking (DESIGN §3 `link`): which catalog variants a search text means.

An operator types part of a SKU or a title, often with a typo, and expects the
right variant at the top while they type, on a catalog of 250,000 variants.
:class:`VariantIndex` holds only what the ranking reads (ids, SKU keys,
titles) in flat lists, built once per picker session, and ranks with
rapidfuzz, whose scorers run in C over the whole list (difflib's
SequenceMatcher took seconds at that size, so the old picker first narrowed
the catalog with SQL ``LIKE`` and could not forgive a typo).

The order of the ranking, best first:

1. the SKU equals the text (DESIGN §4.1 normalisation);
2. the SKU starts with the text, then contains it (shorter SKUs first);
3. the title contains the text;
4. fuzzy similarity of the SKU (a typo in a code) and of the title (words in
   any order, a typo in a word), the title weighed a little lower.

No I/O, no printing: the interactive part lives in ``cli/pick.py``.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from rapidfuzz import fuzz, process

from .matching import sku_key
from .models import Variant

# Fuzzy scores (0-100) below these mean "not this": showing them only pushes noise up.
SKU_CUTOFF = 60.0
TITLE_CUTOFF = 60.0
# A title match is a weaker signal than a SKU match of the same strength.
TITLE_WEIGHT = 0.9


class Ranked(NamedTuple):
    """One ranked choice: its score (higher is better) and its position in the index."""

    score: float
    index: int


class VariantIndex:
    """The catalog as the picker ranks it: ``ids[i]``, ``skus[i]`` and ``titles[i]`` describe one variant."""

    def __init__(self, rows: Iterable[tuple[str, str | None, str]]) -> None:
        """Build from ``(variant_id, sku, title)`` rows (the title: "product title variant title")."""
        self.ids: list[str] = []
        self.skus: list[str] = []  # normalised keys; "" for a variant without a SKU
        self.titles: list[str] = []  # casefolded
        self._by_key: dict[str, list[int]] = {}
        for variant_id, sku, title in rows:
            key = sku_key(sku) or ""
            if key:
                self._by_key.setdefault(key, []).append(len(self.ids))
            self.ids.append(variant_id)
            self.skus.append(key)
            self.titles.append(title.casefold())
        # One string per field: substring search runs as str.find in C, not a Python loop.
        self._sku_blob, self._sku_starts = _blob(self.skus)
        self._title_blob, self._title_starts = _blob(self.titles)

    def __len__(self) -> int:
        return len(self.ids)

    def rank(self, query: str, *, limit: int = 15) -> list[Ranked]:
        """The best ``limit`` variants for ``query``, best first (ties: SKU, then id)."""
        needle = sku_key(query) or ""
        if not needle or "\n" in needle:
            return []
        scores: dict[int, float] = {}

        def offer(i: int, score: float) -> None:
            if score > scores.get(i, -1.0):
                scores[i] = score

        for i in self._by_key.get(needle, ()):
            offer(i, 300.0)
        # Prefixes first (a value starts after a newline), so a common text still finds them all.
        for i in _find_all(self._sku_blob, self._sku_starts, needle, prefix=True):
            offer(i, 200.0 + 100.0 * len(needle) / len(self.skus[i]))
        for i in _find_all(self._sku_blob, self._sku_starts, needle):
            offer(i, 150.0 + 100.0 * len(needle) / len(self.skus[i]))
        for i in _find_all(self._title_blob, self._title_starts, needle):
            offer(i, 100.0 + 100.0 * len(needle) / max(len(self.titles[i]), 1))
        # Fuzzy scores stay below 100, under every exact kind above. Two stages keep a query
        # under 100 ms on 250,000 variants: a cheap scorer (ratio, bit-parallel) and exact word
        # hits gather candidates; only those get the costlier word-aware title score.
        want = max(limit * 10, 200)
        candidates = {i for _, _, i in process.extract(needle, self.skus, scorer=fuzz.ratio, processor=None,
                                                      limit=want, score_cutoff=SKU_CUTOFF)}
        candidates.update(i for _, _, i in process.extract(needle, self.titles, scorer=fuzz.ratio,
                                                          processor=None, limit=want))
        for word in {w for w in needle.split() if len(w) >= 3}:
            candidates.update(_find_all(self._title_blob, self._title_starts, word, cap=2000))
            candidates.update(_find_all(self._sku_blob, self._sku_starts, word, cap=2000))
        for i in candidates:
            sku_score = fuzz.ratio(needle, self.skus[i]) if self.skus[i] else 0.0
            title_score = fuzz.WRatio(needle, self.titles[i]) * TITLE_WEIGHT
            score = max(sku_score if sku_score >= SKU_CUTOFF else 0.0,
                        title_score if title_score >= TITLE_CUTOFF else 0.0)
            if score:
                offer(i, score * 0.99)
        best = heapq.nsmallest(limit, scores.items(),
                               key=lambda item: (-item[1], self.skus[item[0]], self.ids[item[0]]))
        return [Ranked(score, i) for i, score in best]


def _blob(values: Sequence[str]) -> tuple[str, list[int]]:
    """All values joined by newlines, and where each starts (for :func:`_find_all`)."""
    starts = []
    at = 0
    for value in values:
        starts.append(at)
        at += len(value) + 1
    return "\n".join(values), starts


def _find_all(blob: str, starts: list[int], needle: str, *, prefix: bool = False,
              cap: int = 5000) -> list[int]:
    """Indexes of the values that contain ``needle`` (or start with it), at most ``cap`` of them.

    The cap bounds the time of a one-letter text, which every value contains.
    """
    found: list[int] = []
    if prefix:
        needle = "\n" + needle
        blob = "\n" + blob  # the first value starts after a newline too
    at = blob.find(needle)
    while at != -1 and len(found) < cap:
        i = bisect_right(starts, at) - 1
        found.append(i)
        # Next search from the start of the following value: one hit per value.
        nxt = starts[i + 1] if i + 1 < len(starts) else len(blob)
        at = blob.find(needle, nxt)
    return found


def index_catalog(variants: Iterable[Variant]) -> VariantIndex:
    """The index of the cached catalog (``store.iter_variants()``); the Variant objects are not kept."""
    return VariantIndex(
        (v.variant_id, v.sku, f"{v.product_title} {v.variant_title}") for v in variants
    )
