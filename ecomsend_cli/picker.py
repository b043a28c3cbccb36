"""The manual picker's ranking (DESIGN §3 `link`): which catalog variants a search text means.

An operator types part of a SKU or a title, often with a typo, and expects the
right variant at the top while they type, on a catalog of 250,000 variants.
:class:`VariantIndex` holds only what the ranking reads (ids, SKU keys,
titles) in flat lists, built once per picker session from plain SQL rows, and
ranks with rapidfuzz, whose scorers run in C (difflib's SequenceMatcher took
seconds at that size, so the old picker first narrowed the catalog with SQL
``LIKE`` and could not forgive a typo).

The order of the ranking, best first:

1. the SKU equals the text (DESIGN §4.1 normalisation);
2. the SKU starts with the text, then contains it (shorter SKUs first);
3. the title contains the text;
4. fuzzy similarity of the SKU (a typo in a code) and of the title (words in
   any order, a typo in a word), the title weighed a little lower.

The picker ranks again at every key, so a query must cost well under 100 ms.
Only the SKUs (short) get a full fuzzy scan. A fuzzy scan of 250,000 long
titles cost more than the whole budget, so titles are reached through their
words instead: each word of the text, or the catalog words closest to it (a
typo), names the products whose titles hold it, and only their variants get
the costlier word-aware title score. Products are indexed once per distinct
product title (a catalog has several variants per product), which also keeps
the index cheap to build. A text of one or two characters (the first keys
typed) matches by prefix only: a fuzzy score of so short a text means nothing.

No I/O, no printing: the interactive part lives in ``cli/pick.py``.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import accumulate
from typing import NamedTuple

from rapidfuzz import fuzz, process

from .matching import sku_key
from .models import VariantColumns

# Fuzzy scores (0-100) below these mean "not this": showing them only pushes noise up.
SKU_CUTOFF = 60.0
TITLE_CUTOFF = 60.0
# A title match is a weaker signal than a SKU match of the same strength.
TITLE_WEIGHT = 0.9
# A word of the text with a typo stands for catalog words at least this similar (fuzz.ratio).
WORD_CUTOFF = 70.0
# A title holding every word of the text (some through a typo): its fuzzy score (0-100).
WORD_SCORE = 80.0
# Texts shorter than this match by prefix only (the first keys the operator types).
FUZZY_MIN_LEN = 3
# At most this many variants reached through title words get the word-aware title score.
TITLE_CANDIDATES = 2000


class Ranked(NamedTuple):
    """One ranked choice: its score (higher is better) and its position in the index."""

    score: float
    index: int


class VariantIndex:
    """The catalog as the picker ranks it: ``ids[i]``, ``skus[i]`` and ``titles[i]`` describe one variant."""

    def __init__(self, rows: Iterable[tuple[str, str | None, str, str]]) -> None:
        """Build from ``(variant_id, sku, product_title, variant_title)`` rows (SKUs as typed)."""
        rows = list(rows)
        self._build(VariantColumns(
            _joined([r[0] for r in rows]), _joined([sku_key(r[1]) or "" for r in rows]),
            _joined([r[2] or "" for r in rows]), _joined([r[3] or "" for r in rows]), len(rows),
        ))

    @classmethod
    def from_columns(cls, columns: VariantColumns) -> VariantIndex:
        """Build from the catalog's columns (``Store.variant_search_columns()``)."""
        index = cls.__new__(cls)
        index._build(columns)
        return index

    def _build(self, columns: VariantColumns) -> None:
        # Each column arrives as one newline-joined string and is cut once: no row objects
        # (250,000 tuples of 4 strings cost 150 MB and most of the start-up), and the strings
        # of a list lie next to each other in memory, which makes rapidfuzz's scans over them
        # 2-3 times faster than over strings scattered among others.
        n = columns.count
        self.ids: list[str] = _cut(columns.ids, n)
        # Substring search runs as str.find over one string per field, in C, not a Python loop.
        self._sku_blob = f"\n{columns.sku_keys}\n" if n else "\n"
        self.skus: list[str] = _cut(columns.sku_keys, n)  # "" for a variant without a SKU
        self._sku_starts = _starts(self.skus)
        products = _cut(columns.product_titles.casefold(), n)
        variant_titles = _cut(columns.variant_titles.casefold(), n)
        self.titles: list[str] = list(map("{} {}".format, products, variant_titles))
        self._title_blob, self._title_starts = _blob(self.titles)
        # Words only variant titles hold ("black", "xl") are known too: no typo to look up.
        variant_words = " ".join(dict.fromkeys(variant_titles)).split()
        del variant_titles
        # Distinct product titles, each with its variants (grouped by a stable sort, in C):
        # title words lead to products, products to their variants.
        distinct = list(dict.fromkeys(products))
        number = {title: p for p, title in enumerate(distinct)}
        codes = list(map(number.__getitem__, products))
        del products, number
        self._by_product = array("i", sorted(range(n), key=codes.__getitem__))
        counts = Counter(codes)
        del codes
        self._product_offsets = array("i", accumulate(map(counts.__getitem__, range(len(distinct))), initial=0))
        self._products = distinct
        self._product_blob, self._product_starts = _blob(distinct)
        self._words = _cut("\n".join(set(self._product_blob.split())), -1)
        self._known = set(self._words).union(variant_words)

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

        skus, sku_blob, sku_starts = self.skus, self._sku_blob, self._sku_starts
        for i in _find_all(sku_blob, sku_starts, needle + "\n", prefix=True):
            offer(i, 300.0)
        # Prefixes first, so a common text still finds them all within the cap. One or two
        # characters start thousands of SKUs: a screenful of them is what the operator needs.
        short = len(needle) < FUZZY_MIN_LEN
        for i in _find_all(sku_blob, sku_starts, needle, prefix=True, cap=limit * 20 if short else 5000):
            offer(i, 200.0 + 100.0 * len(needle) / len(skus[i]))
        if short:
            # A word of a title starting with the text (the title's first word or a later one).
            for i in _find_all(self._title_blob, self._title_starts, needle, prefix=True, cap=limit * 20):
                offer(i, 100.0 + 100.0 * len(needle) / max(len(self.titles[i]), 1))
            for i in _find_all(self._title_blob, self._title_starts, " " + needle, cap=limit * 20):
                offer(i, 100.0 + 100.0 * len(needle) / max(len(self.titles[i]), 1))
            return self._best(scores, limit)
        for i in _find_all(sku_blob, sku_starts, needle):
            offer(i, 150.0 + 100.0 * len(needle) / len(skus[i]))
        for i in _find_all(self._title_blob, self._title_starts, needle):
            offer(i, 100.0 + 100.0 * len(needle) / max(len(self.titles[i]), 1))
        # Fuzzy scores stay below 100, under every exact kind above.
        want = max(limit * 10, 200)
        for _, score, i in process.extract(needle, skus, scorer=fuzz.ratio, processor=None,
                                           limit=want, score_cutoff=SKU_CUTOFF):
            offer(i, score * 0.99)
        # Not WRatio: its partial token-set part gives 85 to any title sharing one word with
        # the text ("travle mug navy" put an Insulated Mug first). The title holding all the
        # words in any order (token_set_ratio) or the text with a typo inside it (partial_ratio,
        # weighed lower as WRatio does) wins.
        # A title holding every word of the text, some only as the catalog word nearest a typo
        # ("mug zicn": Zinc Mug), scores WORD_SCORE whatever its length, which the scorers
        # below punish; holding half of them, half that.
        title_scores = self._title_candidates(needle)
        titles = {i: self.titles[i] for i in title_scores}
        for scorer, weight in ((fuzz.token_set_ratio, 1.0), (fuzz.token_sort_ratio, 1.0), (fuzz.partial_ratio, 0.9)):
            for _, score, i in process.extract(needle, titles, scorer=scorer, processor=None, limit=None,
                                               score_cutoff=TITLE_CUTOFF / TITLE_WEIGHT / weight):
                title_scores[i] = max(score * weight, title_scores.get(i, 0.0))
        for i, score in title_scores.items():
            sku_score = fuzz.ratio(needle, skus[i], score_cutoff=SKU_CUTOFF) if skus[i] else 0.0
            best = max(sku_score, score * TITLE_WEIGHT if score * TITLE_WEIGHT >= TITLE_CUTOFF else 0.0)
            if best:
                offer(i, best * 0.99)
        return self._best(scores, limit)

    def _title_candidates(self, needle: str) -> dict[int, float]:
        """Variants whose product title holds the words of ``needle`` (or words close to them), most words first.

        Each with its word score: :data:`WORD_SCORE` times the share of the words its title holds.
        """
        per_word: list[tuple[list[str], list[int]]] = []
        words = {w for w in needle.split() if len(w) >= FUZZY_MIN_LEN}
        for word in sorted(words):
            if word in self._known:
                similar = [word]
            else:  # a typo: the catalog words nearest to it stand for it
                similar = [w for w, _, _ in process.extract(word, self._words, scorer=fuzz.ratio, processor=None,
                                                             limit=5, score_cutoff=WORD_CUTOFF)]
            products: list[int] = []
            for w in similar:
                products.extend(_find_all(self._product_blob, self._product_starts, w, cap=TITLE_CANDIDATES))
            per_word.append((similar, products))
        # Rarest word first: a common word's products are capped and may miss the one wanted,
        # so the words each product holds are counted on its title, not from the capped lists.
        order = dict.fromkeys(p for _, products in sorted(per_word, key=lambda x: len(x[1])) for p in products)
        hits = {p: sum(any(w in self._products[p] for w in similar) for similar, _ in per_word) for p in order}
        if not hits:  # words of variant titles only ("red xl"): the variants that hold one
            return {i: 0.0 for word in sorted(words & self._known)
                    for i in _find_all(self._title_blob, self._title_starts, word, cap=TITLE_CANDIDATES)}
        found: dict[int, float] = {}
        for p in sorted(hits, key=hits.__getitem__, reverse=True):  # stable: rarest word first among equals
            held = hits[p]
            score = WORD_SCORE * held / len(words)
            found.update(dict.fromkeys(self._by_product[self._product_offsets[p]:self._product_offsets[p + 1]], score))
            if len(found) >= TITLE_CANDIDATES:
                break
        return found

    def _best(self, scores: dict[int, float], limit: int) -> list[Ranked]:
        best = heapq.nsmallest(limit, scores.items(),
                               key=lambda item: (-item[1], self.skus[item[0]], self.ids[item[0]]))
        return [Ranked(score, i) for i, score in best]


def _blob(values: Sequence[str]) -> tuple[str, list[int]]:
    """All values, each after a newline and the last one followed by one, and where each starts.

    The newline before each value lets :func:`_find_all` search for a prefix
    (``"\\n" + text``) or a whole value (``"\\n" + text + "\\n"``).
    """
    starts = list(accumulate(map((1).__add__, map(len, values)), initial=1))
    return ("\n" + "\n".join(values) + "\n" if values else "\n"), starts[:-1]


def _joined(values: list[str]) -> str:
    """``values`` on lines of their own, a newline inside one made a space."""
    return "\n".join(v.replace("\n", " ") for v in values)


def _cut(column: str, count: int) -> list[str]:
    """The ``count`` lines of ``column`` (-1: however many); none for an empty catalog."""
    values = column.split("\n") if count else []
    if count > 0 and len(values) != count:
        raise ValueError(f"catalog column has {len(values)} lines, expected {count}")
    return values


def _starts(values: Sequence[str]) -> array:
    """Where each value starts in its :func:`_blob`."""
    starts = array("q", accumulate(map((1).__add__, map(len, values)), initial=1))
    starts.pop()  # where a value after the last would start
    return starts


def _blob(values: Sequence[str]) -> tuple[str, array]:
    """All values, each after a newline and the last one followed by one, and where each starts.

    The newline before each value lets :func:`_find_all` search for a prefix
    (``"\\n" + text``) or a whole value (``"\\n" + text + "\\n"``).
    """
    return ("\n" + "\n".join(values) + "\n" if values else "\n"), _starts(values)


def _find_all(blob: str, starts: Sequence[int], needle: str, *, prefix: bool = False,
              cap: int = 5000) -> list[int]:
    """Indexes of the values that contain ``needle`` (or start with it), at most ``cap`` of them.

    The cap bounds the time of a common text, which most values contain.
    """
    found: list[int] = []
    if prefix:
        needle = "\n" + needle
    at = blob.find(needle)
    while at != -1 and len(found) < cap:
        # A prefix match starts at the newline before its value.
        i = bisect_right(starts, at + 1 if prefix else at) - 1
        found.append(i)
        # Next search from the start of the following value: one hit per value.
        nxt = starts[i + 1] - 1 if i + 1 < len(starts) else len(blob)
        at = blob.find(needle, nxt)
    return found


def index_catalog(columns: VariantColumns) -> VariantIndex:
    """The index of the cached catalog, from ``Store.variant_search_columns()``."""
    return VariantIndex.from_columns(columns)
