"""The picker's ranking (picker.py) over a real store: what comes first for what an operator types.

The index reaches titles through their words (no fuzzy scan of every title),
so these pin the cases that path must still find: a typo in a title word, a
word from the middle of a title, words only the variant title holds, a rare
word among thousands of variants sharing a common one, and the short texts
that match by prefix only.
"""

from __future__ import annotations

import pytest

from ecomsend_cli.picker import TITLE_CANDIDATES, VariantIndex, index_catalog
from ecomsend_cli.store import Store
from tests.factory import variant

NOUNS = ["Tee", "Hoodie", "Mug", "Scarf", "Beanie", "Poster", "Notebook", "Candle"]
ADJECTIVES = ["Classic", "Insulated", "Organic", "Vintage", "Travel", "Wool", "Ceramic", "Studio"]
COLOURS = ["Black", "White", "Navy", "Forest"]
SIZES = ["S", "M", "L"]


def catalog() -> list:
    """64 products (every adjective with every noun), each in 12 colour/size variants."""
    found, vid = [], 1
    for adjective in ADJECTIVES:
        for noun in NOUNS:
            for colour in COLOURS:
                for size in SIZES:
                    code = f"{noun[:3].upper()}-{adjective[:3].upper()}-{colour[:3].upper()}-{size}"
                    found.append(variant(vid, code, f"{adjective} {noun}", f"{colour} / {size}"))
                    vid += 1
    return found


@pytest.fixture
def index(store_path):
    with Store.open(store_path) as store:
        store.replace_variants(catalog())
        return index_catalog(store.variant_search_columns())


def first(index: VariantIndex, text: str, n: int = 1) -> list[str]:
    return [index.skus[r.index] for r in index.rank(text)[:n]]


def test_the_index_reads_every_variant_of_the_store_in_step(index):
    assert len(index) == 8 * 8 * 4 * 3
    i = index.skus.index("mug-tra-nav-m")
    assert index.titles[i] == "travel mug navy / m"
    assert index.ids[i].startswith("gid://shopify/ProductVariant/")


def test_exact_sku_first_then_its_longer_neighbours(index):
    assert first(index, "MUG-TRA-NAV-M") == ["mug-tra-nav-m"]
    assert all(s.startswith("mug-tra-nav") for s in first(index, "mug-tra-nav", 3))


def test_a_sku_typo_finds_the_variant(index):
    assert first(index, "mgu-tra-nav-m") == ["mug-tra-nav-m"]


def test_typos_in_title_words_find_the_product(index):
    # Neither word is in the catalog: each stands for its nearest catalog words.
    ranked = first(index, "insluated candel", 12)
    assert ranked[0].startswith("can-ins-")
    assert sorted(ranked) == sorted(f"can-ins-{c[:3].lower()}-{s.lower()}" for c in COLOURS for s in SIZES)


def test_a_word_from_the_middle_of_a_title_with_words_in_any_order(index):
    assert first(index, "navy travel mug m") == ["mug-tra-nav-m"]
    assert first(index, "mug navy m travle") == ["mug-tra-nav-m"]
    # A title holding every word beats one sharing a single word (WRatio put a Travel Beanie,
    # an Insulated Mug, first).
    assert first(index, "mug travel")[0].startswith("mug-tra-")
    assert first(index, "travle mug navy")[0].startswith("mug-tra-nav-")


def test_words_only_the_variant_title_holds(store_path):
    with Store.open(store_path) as store:
        store.replace_variants([variant(1, "H1", "Hoodie", "Red / S"), variant(2, "H2", "Hoodie", "Navy / XL"),
                                variant(3, "H3", "Hoodie", "Navy / S")])
        index = index_catalog(store.variant_search_columns())
    assert first(index, "xl navy") == ["h2"]


def test_a_rare_word_beside_a_common_one_past_the_candidate_cap(store_path):
    # More "mug" variants than the title path scores: the product holding both words comes first.
    mugs = [variant(i, f"M{i}", f"Mug {i:06d}", "Default Title") for i in range(1, TITLE_CANDIDATES + 500)]
    with Store.open(store_path) as store:
        store.replace_variants([*mugs, variant(9_999, "ZZ-1", "Zinc Mug 777777", "Default Title")])
        index = index_catalog(store.variant_search_columns())
    assert first(index, "mug zicn") == ["zz-1"]


def test_one_or_two_characters_match_by_prefix_only(index):
    ranked = [index.skus[r.index] for r in index.rank("ca")]
    assert ranked and all(s.startswith("can-") for s in ranked)  # no fuzzy "ca" lookalikes
    titles = [index.titles[r.index] for r in index.rank("fo")]
    assert titles and all(" fo" in t or t.startswith("fo") for t in titles)  # "forest", a later word


def test_rows_with_raw_skus_and_odd_titles(store_path):
    index = VariantIndex([("a", " Mug-Red ", "Mug\nLarge", "Red"), ("b", None, "Plain Mug", "Default Title")])
    assert first(index, "MUG-RED") == ["mug-red"]  # the SKU normalised (DESIGN §4.1)
    assert index.titles == ["mug large red", "plain mug default title"]  # a newline would split a value
    assert [index.ids[r.index] for r in index.rank("plain mug")] == ["b"]


def test_an_empty_catalog_ranks_nothing(store_path):
    with Store.open(store_path) as store:
        index = index_catalog(store.variant_search_columns())
    assert len(index) == 0 and index.rank("mug") == [] and index.rank("m") == []


def test_exact_sku_first_then_prefix_and_never_an_unrelated_variant():
    # The manual picker's order, also the example a refused picker names (one ranking rule).
    variants = [
        variant(1, "MUG-RED-L", "Mug", "Red / L"),
        variant(2, "MUG-RED", "Mug", "Red"),
        variant(3, "TEE-1", "Red mug tee", "S"),
        variant(4, "ZZZ", "Unrelated", "X"),
    ]
    small = VariantIndex((v.variant_id, v.sku, v.product_title, v.variant_title) for v in variants)
    ranked = [small.ids[r.index][-1] for r in small.rank("mug-red")]
    assert ranked[:2] == ["2", "1"]
    assert "4" not in ranked
