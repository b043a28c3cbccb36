"""Each TikTok SKU's candidates are kept with it and stay current (issue 13).

`list-unlinked` and `autolink` read ``tiktok_skus.candidate_ids`` (the cached
variants whose SKU key equals the SKU's) instead of joining 250,000 variants
per listing. These tests change the catalog and the SKUs every way the store
can, and check what the operator is shown against what the catalog says now:
each fails if the store stops keeping the column current on that path.
"""

from __future__ import annotations

import json
import shutil

from hypothesis import given, settings
from hypothesis import strategies as st

from ecomsend_cli.matching import classify
from ecomsend_cli.store import Store
from tests.factory import order, sku, variant

V = "gid://shopify/ProductVariant/"


def suggestions(cli, *args: str) -> dict[str, dict]:
    r = cli("list-unlinked", "--json", *args)
    assert r.exit_code == 0, r.stderr
    return {row["tiktok_sku_id"]: row["suggestion"] for row in json.loads(r.stdout)}


def proposed(cli) -> dict:
    r = cli("autolink", "--dry-run", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    return {
        "linked": {x["tiktok_sku_id"]: x["shopify_variant_id"] for x in data["linked"]},
        "ambiguous": {x["tiktok_sku_id"]: x["candidates"] for x in data["ambiguous"]},
        "unmatched": {x["tiktok_sku_id"] for x in data["unmatched"]},
    }


def match(vid: int) -> dict:
    return {"status": "match", "shopify_variant_id": f"{V}{vid}", "candidates": [f"{V}{vid}"]}


def ambiguous(*vids: int) -> dict:
    return {"status": "ambiguous", "shopify_variant_id": None, "candidates": [f"{V}{v}" for v in vids]}


NONE = {"status": "none", "shopify_variant_id": None, "candidates": []}


def _world(store_path) -> None:
    with Store.open(store_path) as store:
        store.replace_variants([variant(1, "A-1"), variant(2, "B-2"), variant(3, "b-2 ")])
        store.record_order(order("o1", [sku("t1", "a-1"), sku("t2", "B-2"), sku("t3", "C-3")]),
                           state="blocked")


def test_a_full_refresh_moves_every_suggestion(cli, store_path):
    _world(store_path)
    assert suggestions(cli) == {"t1": match(1), "t2": ambiguous(2, 3), "t3": NONE}
    with Store.open(store_path) as store:
        store.replace_variants([variant(2, "B-2"), variant(4, "c-3"), variant(5, "C-3")])
    assert suggestions(cli) == {"t1": NONE, "t2": match(2), "t3": ambiguous(4, 5)}
    assert proposed(cli) == {"linked": {"t2": V + "2"}, "ambiguous": {"t3": [V + "4", V + "5"]},
                             "unmatched": {"t1"}}


def test_an_incremental_refresh_moves_a_variant_from_one_code_to_another(cli, store_path):
    _world(store_path)
    with Store.open(store_path) as store:
        # Variant 3's SKU changed in Shopify: t2 keeps one candidate, t3 gains it.
        store.upsert_variants([variant(3, "C-3")])
    assert suggestions(cli) == {"t1": match(1), "t2": match(2), "t3": match(3)}
    assert proposed(cli)["linked"] == {"t1": V + "1", "t2": V + "2", "t3": V + "3"}


def test_an_incremental_refresh_that_drops_a_deleted_variant_drops_its_candidate(cli, store_path):
    _world(store_path)
    with Store.open(store_path) as store:
        # Product 0 fetched in full: variants 1 and 3 are gone from Shopify.
        store.upsert_variants([variant(2, "B-2")], product_ids=["gid://shopify/Product/0"])
    assert suggestions(cli) == {"t1": NONE, "t2": match(2), "t3": NONE}


def test_a_seller_sku_changed_on_tiktok_follows_on_the_next_pull(cli, store_path):
    _world(store_path)
    with Store.open(store_path) as store:
        store.record_order(order("o2", [sku("t1", "B-2"), sku("t3", "A-1"), sku("t4", "")]),
                           state="blocked")
    assert suggestions(cli) == {"t1": ambiguous(2, 3), "t2": ambiguous(2, 3), "t3": match(1), "t4": NONE}


def test_links_written_and_removed_show_the_current_suggestion(cli, store_path, tmp_path):
    _world(store_path)
    assert cli("link", "t1", V + "2").exit_code == 0
    assert suggestions(cli) == {"t2": ambiguous(2, 3), "t3": NONE}
    assert suggestions(cli, "--all")["t1"] == match(1)  # a link does not change what matches
    file = tmp_path / "links.csv"
    file.write_text(f"tiktok_sku_id,shopify_variant_id\nt3,{V}3\n")
    assert cli("link", "--csv", str(file)).exit_code == 0
    with Store.open(store_path) as store:
        store.upsert_variants([variant(6, "C-3")])  # a refresh after the import
    assert suggestions(cli) == {"t2": ambiguous(2, 3)}
    assert suggestions(cli, "--all")["t3"] == match(6)
    assert cli("unlink", "t1", "--yes").exit_code == 0
    assert cli("unlink", "t3", "--yes").exit_code == 0
    assert suggestions(cli) == {"t1": match(1), "t2": ambiguous(2, 3), "t3": match(6)}


def test_a_store_from_before_the_column_gets_it_filled_on_open(cli, store_path):
    _world(store_path)
    with Store.open(store_path) as store:
        for name in ("trg_variants_candidates_insert", "trg_variants_candidates_delete",
                     "trg_variants_candidates_update", "trg_skus_candidates_insert",
                     "trg_skus_candidates_update"):
            store.conn.execute(f"DROP TRIGGER {name}")
        store.conn.execute("ALTER TABLE tiktok_skus DROP COLUMN candidate_ids")
        store.conn.execute("DELETE FROM _migrations WHERE name = '012_sku_candidates'")
    assert suggestions(cli) == {"t1": match(1), "t2": ambiguous(2, 3), "t3": NONE}
    with Store.open(store_path) as store:
        store.upsert_variants([variant(7, "C-3")])  # and kept from then on
    assert suggestions(cli)["t3"] == match(7)


# --- the column against the join it stands for, after any sequence of writes ---------------

CODES = ["A", "a", " A ", "B", "b\u200b", "C", "", "\u200b"]
_pairs = st.lists(st.tuples(st.integers(1, 4), st.sampled_from(CODES)), min_size=1, max_size=4)
_write = st.tuples(st.sampled_from(["replace", "upsert", "drop", "pull"]), _pairs)


def _live(store: Store) -> dict[str, tuple]:
    """Every SKU's suggestion as matching.classify decides it from a join done now."""
    rows = store.conn.execute(
        "SELECT t.sku_id, t.seller_sku, group_concat(v.variant_id, ' ') FROM tiktok_skus t "
        "LEFT JOIN shopify_variants v ON v.sku_key = t.seller_sku_key GROUP BY t.sku_id"
    )
    return {s: classify(code, sorted(ids.split()) if ids else ()) for s, code, ids in rows}


@settings(deadline=None)  # store I/O: the first example also migrates the template
@given(_pairs, _pairs, st.lists(_write, max_size=6))
def test_the_kept_candidates_equal_the_join_after_any_writes(tmp_path_factory, empty_store_file,
                                                             catalog, pulled, writes):
    path = tmp_path_factory.mktemp("kept") / "store.db"
    shutil.copy(empty_store_file, path)
    # Opened as every command opens it: without the migrations' connection settings.
    with Store.open(path) as store:
        writes = [("replace", catalog), ("pull", pulled), *writes]
        for n, (kind, items) in enumerate(writes):
            variants = [variant(vid, code) for vid, code in dict(items).items()]
            if kind == "replace":
                store.replace_variants(variants)
            elif kind == "upsert":
                store.upsert_variants(variants)
            elif kind == "drop":  # product 0 holds variants 1-9: fetched in full, these are all it has
                store.upsert_variants(variants, product_ids=["gid://shopify/Product/0"])
            else:
                skus = [sku(f"t{i}", code) for i, code in dict(items).items()]
                store.record_order(order(f"o{n}", skus), state="blocked")
            kept = {r.sku_id: classify(r.seller_sku, r.candidates) for r in store.sku_rows(include_linked=True)}
            assert kept == _live(store), (kind, items)

