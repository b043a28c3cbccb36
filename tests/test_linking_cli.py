"""The linking commands of DESIGN §3–§4, driven through the real CLI on a real store."""

from __future__ import annotations

import csv
import io
import json

import pytest

from ecomsend_cli.errors import StoreError
from ecomsend_cli.linking import apply_autolink, propose_autolink
from ecomsend_cli.store import LinkChange, Store
from tests.factory import digest, history_of, links_of, order, sku, variant

V = "gid://shopify/ProductVariant/"


@pytest.fixture
def world(store_path):
    """A store with each case of §4.1: match, case/space, NFKC, ambiguous, empty, zeros, linked."""
    with Store.open(store_path) as store:
        store.replace_variants([
            variant(101, "AB-100", "Mug", "Red"),
            variant(102, "DUP-1", "Shirt", "S"),
            variant(103, "dup-1 ", "Shirt copy", "S"),
            variant(104, "0042", "Zero pad", "One"),
            variant(105, "", "No SKU", "One"),
            variant(106, "AB-300", "Bowl", "Blue"),
            variant(107, "CD-200", "Plate", "Big"),
            variant(108, "EF-500", "Cup", "Small"),
            variant(109, "GH-900", "Feed product", "Only"),
        ])
        skus = {
            "t1": sku("t1", "ab-100 ", "TT Mug", "Red"),
            "t2": sku("t2", "DUP-1", "TT Shirt", "S"),
            "t3": sku("t3", "", "TT no sku", "x"),
            "t4": sku("t4", "42", "TT zero", "x"),
            "t5": sku("t5", "ＡＢ-300", "TT Bowl", "Blue"),
            "t6": sku("t6", "\u00a0CD-200\t", "TT Plate", "Big"),
            "t7": sku("t7", "EF-500", "TT Cup", "Small"),
            "t8": sku("t8", "NOPE-1", "TT Feed", "Only", external="109"),
        }
        store.record_order(order("o1", [skus["t1"], skus["t2"]]), state="blocked")
        store.record_order(order("o2", [skus["t2"], skus["t3"], skus["t4"]]), state="blocked")
        store.record_order(order("o3", [skus["t5"], skus["t6"], skus["t7"], skus["t8"]]), state="blocked")
        store.apply_links([LinkChange("t7", V + "101")], source="manual", actor="alice")
    return store_path


# --- list-unlinked -------------------------------------------------------------------


def test_list_unlinked_json_fields_and_suggestions(cli, world):
    r = cli("list-unlinked", "--json")
    assert r.exit_code == 0, r.stderr
    rows = {row["tiktok_sku_id"]: row for row in json.loads(r.stdout)}
    assert set(rows) == {"t1", "t2", "t3", "t4", "t5", "t6", "t8"}  # t7 is linked
    assert set(rows["t1"]) == {
        "tiktok_sku_id", "tiktok_product_id", "product_title", "sku_name", "seller_sku",
        "blocked_orders", "linked", "link", "suggestion",
    }
    assert rows["t1"]["seller_sku"] == "ab-100 "  # raw code shown
    assert rows["t1"]["suggestion"] == {
        "status": "match", "shopify_variant_id": V + "101", "candidates": [V + "101"]}
    assert rows["t2"]["suggestion"]["status"] == "ambiguous"
    assert rows["t2"]["suggestion"]["candidates"] == [V + "102", V + "103"]
    assert rows["t2"]["blocked_orders"] == 2
    assert rows["t3"]["suggestion"]["status"] == "none"  # empty code
    assert rows["t4"]["suggestion"]["status"] == "none"  # 42 is not 0042
    assert rows["t5"]["suggestion"]["shopify_variant_id"] == V + "106"
    assert rows["t6"]["suggestion"]["shopify_variant_id"] == V + "107"
    assert rows["t1"]["linked"] is False and rows["t1"]["link"] is None


def test_list_unlinked_all_adds_linked_skus_with_link(cli, world):
    rows = {row["tiktok_sku_id"]: row for row in json.loads(cli("list-unlinked", "--all", "--json").stdout)}
    assert rows["t7"]["linked"] is True
    assert rows["t7"]["link"] == {"shopify_variant_id": V + "101", "source": "manual", "stale": None}


def test_list_unlinked_piped_is_tab_separated(cli, world):
    r = cli("list-unlinked")
    lines = r.stdout.splitlines()
    assert lines[0].split("\t")[:4] == ["TikTok SKU id", "Product", "SKU name", "Seller SKU"]
    by_id = {line.split("\t")[0]: line.split("\t") for line in lines[1:]}
    assert by_id["t2"][5] == "ambiguous (2)"
    assert by_id["t3"][5] == "no match"
    assert by_id["t1"][5].startswith("AB-100")
    assert "t7" not in by_id


def test_list_unlinked_csv_has_link_columns(cli, world):
    r = cli("list-unlinked", "--csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert list(rows[0])[:4] == ["tiktok_sku_id", "tiktok_seller_sku", "shopify_variant_id", "shopify_sku"]
    assert {row["tiktok_sku_id"] for row in rows} == {"t1", "t2", "t3", "t4", "t5", "t6", "t8"}


# --- autolink ---------------------------------------------------------------------------


def test_autolink_dry_run_lists_exactly_the_sku_equal_pairs_and_writes_nothing(cli, world):
    before = digest(world)
    r = cli("autolink", "--dry-run", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["dry_run"] is True
    assert {(x["tiktok_sku_id"], x["shopify_variant_id"]) for x in data["linked"]} == {
        ("t1", V + "101"), ("t5", V + "106"), ("t6", V + "107")}
    assert data["ambiguous"] == [{"tiktok_sku_id": "t2", "candidates": [V + "102", V + "103"]}]
    assert {x["tiktok_sku_id"] for x in data["unmatched"]} == {"t3", "t4"}
    assert data["feed"] == [{"tiktok_sku_id": "t8", "shopify_variant_id": V + "109"}]
    assert digest(world) == before


def test_autolink_dry_run_table_shows_both_sides(cli, world):
    before = digest(world)
    r = cli("autolink", "--dry-run")
    assert r.exit_code == 0
    pairs = [line.split("\t") for line in r.stdout.splitlines()[1:]]
    assert ["TT Mug", "Red", "ab-100 ", "Mug", "Red", "AB-100"] in pairs
    assert len(pairs) == 3
    assert "Dry run: would link 4 SKUs. Nothing was written." in r.stderr
    assert "Ambiguous" in r.stderr and "t2" in r.stderr
    assert digest(world) == before


def test_autolink_yes_links_pairs_and_feed_in_one_go_with_history(cli, world):
    r = cli("autolink", "--yes")
    assert r.exit_code == 0, r.stderr
    links = links_of(world)
    assert links["t1"] == (V + "101", "auto")
    assert links["t5"] == (V + "106", "auto")
    assert links["t6"] == (V + "107", "auto")
    assert links["t8"] == (V + "109", "feed")
    assert links["t7"] == (V + "101", "manual")  # already linked: untouched
    assert "t2" not in links and "t3" not in links and "t4" not in links
    rows = history_of(world)
    assert {(h.tiktok_sku_id, h.action, h.source, h.actor) for h in rows} >= {
        ("t1", "link", "auto", "tester"), ("t8", "link", "feed", "tester")}
    assert len(rows) == 5  # t7's manual link plus four new ones
    again = cli("autolink", "--yes", "--json")
    assert json.loads(again.stdout)["linked"] == []
    assert len(history_of(world)) == 5


def test_autolink_without_terminal_or_yes_fails_fast(cli, world):
    before = digest(world)
    r = cli("autolink")
    assert r.exit_code == 1
    assert "--yes" in r.stderr and "not a terminal" in r.stderr
    assert digest(world) == before


def test_autolink_json_needs_dry_run_or_yes(cli, world):
    r = cli("autolink", "--json")
    assert r.exit_code == 1 and "--dry-run or --yes" in r.stderr


def test_autolink_writes_all_or_nothing(world):
    with Store.open(world) as store:
        proposal = propose_autolink(store)
        assert len(proposal.plan.pairs) == 3
        # Another process links the last proposed SKU between plan and write.
        last = proposal.plan.pairs[-1][0]
        store.apply_links([LinkChange(last, V + "108")], source="manual", actor="bob")
        with pytest.raises(StoreError):
            apply_autolink(store, proposal.plan, actor="tester")
        assert {x.tiktok_sku_id for x in store.links()} == {"t7", last}


def _invisible_world(store_path):
    with Store.open(store_path) as store:
        store.replace_variants([variant(201, "\u200b", "Blank-looking", "A"),
                                variant(202, "TEE-1", "Tee", "One")])
        store.record_order(order("z1", [sku("z1", "\ufeff\u200d", "TT blank-looking", "B"),
                                         sku("z2", "TEE\u200b-1", "TT Tee", "One")]), state="blocked")


def test_autolink_ignores_invisible_format_characters(cli, store_path):
    _invisible_world(store_path)
    r = cli("autolink", "--dry-run", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    # Two blank-looking codes are empty: they match nothing. A zero-width space inside a code is ignored.
    assert [(x["tiktok_sku_id"], x["shopify_variant_id"]) for x in data["linked"]] == [("z2", V + "202")]
    assert data["unmatched"] == [{"tiktok_sku_id": "z1"}]


def test_a_store_keyed_by_the_old_rule_is_rekeyed_on_open(cli, store_path):
    _invisible_world(store_path)
    with Store.open(store_path) as store:
        # As ecomsend before the format-character rule stored them (NFKC, trim, casefold only).
        store.conn.execute("UPDATE shopify_variants SET sku_key = '\u200b' WHERE sku = '\u200b'")
        store.conn.execute("UPDATE tiktok_skus SET seller_sku_key = '\ufeff\u200d' WHERE sku_id = 'z1'")
        store.conn.execute("UPDATE tiktok_skus SET seller_sku_key = 'tee\u200b-1' WHERE sku_id = 'z2'")
        store.conn.execute("DELETE FROM _migrations WHERE name = '007_sku_keys_without_format_chars'")
    r = cli("autolink", "--dry-run", "--json")
    assert r.exit_code == 0, r.stderr
    assert [(x["tiktok_sku_id"], x["shopify_variant_id"]) for x in json.loads(r.stdout)["linked"]] == [
        ("z2", V + "202")]
    with Store.open(store_path) as store:
        keys = dict(store.conn.execute("SELECT sku_id, seller_sku_key FROM tiktok_skus"))
        assert keys == {"z1": None, "z2": "tee-1"}
        assert store.variants_by_sku("\u200b") == []


# --- link ------------------------------------------------------------------------------


def test_link_by_ids_and_skus(cli, world):
    r = cli("link", "t4", V + "104")
    assert r.exit_code == 0, r.stderr
    assert links_of(world)["t4"] == (V + "104", "manual")
    r = cli("link", "t3", "105")  # plain variant number
    assert r.exit_code == 0, r.stderr
    assert links_of(world)["t3"] == (V + "105", "manual")
    r = cli("link", "ＡＢ-300", "ab-300")  # unique seller SKU and unique Shopify SKU
    assert r.exit_code == 0, r.stderr
    assert links_of(world)["t5"] == (V + "106", "manual")


def test_replacing_a_link_needs_force(cli, world):
    before = digest(world)
    r = cli("link", "t7", V + "108")
    assert r.exit_code == 1
    assert "--force" in r.stderr and "already linked" in r.stderr
    assert digest(world) == before
    r = cli("link", "t7", V + "108", "--force")
    assert r.exit_code == 0, r.stderr
    assert links_of(world)["t7"] == (V + "108", "manual")
    last = history_of(world)[0]
    assert (last.action, last.old_variant_id, last.new_variant_id) == ("relink", V + "101", V + "108")


def test_link_unknown_and_ambiguous_arguments_list_candidates(cli, world):
    r = cli("link", "no-such", V + "101")
    assert r.exit_code == 1 and "no TikTok SKU" in r.stderr
    r = cli("link", "t4", "DUP-1")
    assert r.exit_code == 1
    assert V + "102" in r.stderr and V + "103" in r.stderr
    r = cli("link", "t4", V + "999")
    assert r.exit_code == 1 and "catalog refresh" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_ambiguous_tiktok_seller_sku_lists_candidates(cli, world, store_path):
    with Store.open(store_path) as store:
        store.upsert_tiktok_skus([sku("t9", "ab-100", "Other mug", "Blue")])
    r = cli("link", "AB-100", V + "101")
    assert r.exit_code == 1
    assert "t1" in r.stderr and "t9" in r.stderr


def test_link_without_shopify_needs_a_terminal(cli, world):
    r = cli("link", "t4")
    assert r.exit_code == 1 and "not a terminal" in r.stderr


# --- unlink, links, history ----------------------------------------------------------


def test_unlink(cli, world):
    r = cli("unlink", "t7")
    assert r.exit_code == 1 and "--yes" in r.stderr
    assert "t7" in links_of(world)
    r = cli("unlink", "t7", "--yes")
    assert r.exit_code == 0, r.stderr
    assert "t7" not in links_of(world)
    assert history_of(world)[0].action == "unlink"
    r = cli("unlink", "t7", "--yes")
    assert r.exit_code == 1 and "has no link" in r.stderr


def test_unlink_says_how_many_pending_orders_it_affects(cli, world):
    r = cli("unlink", "t7", "--yes")
    assert "1 pending order needs this SKU" in r.stderr


def test_links_json_export_and_history(cli, world):
    cli("autolink", "--yes")
    data = json.loads(cli("links", "--json").stdout)
    assert {x["tiktok_sku_id"] for x in data} == {"t1", "t5", "t6", "t7", "t8"}
    assert set(data[0]) == {"tiktok_sku_id", "shopify_variant_id", "source", "linked_at", "stale"}
    assert all(x["stale"] is None for x in data)
    exported = list(csv.DictReader(io.StringIO(cli("links", "export").stdout)))
    assert {(r["tiktok_sku_id"], r["shopify_variant_id"]) for r in exported} == {
        (x["tiktok_sku_id"], x["shopify_variant_id"]) for x in data}
    by_id = {r["tiktok_sku_id"]: r for r in exported}
    assert by_id["t1"]["shopify_sku"] == "AB-100"
    hist = json.loads(cli("history", "t1", "--json").stdout)
    assert [(h["action"], h["new_variant_id"], h["source"]) for h in hist] == [
        ("link", V + "101", "auto")]


def test_export_neutralises_formula_cells(cli, store_path):
    with Store.open(store_path) as store:
        store.replace_variants([variant(1, "=HYPERLINK(\"x\")", "Evil")])
        store.upsert_tiktok_skus([sku("t1", "+cmd", "@sum(1)", "-1")])
        store.apply_links([LinkChange("t1", V + "1")], source="manual", actor="x")
    rows = list(csv.DictReader(io.StringIO(cli("links", "export").stdout)))
    assert rows[0]["tiktok_seller_sku"] == "'+cmd"
    assert rows[0]["shopify_sku"] == "'=HYPERLINK(\"x\")"
    assert rows[0]["product_title"] == "'@sum(1)"


def test_a_link_to_a_variant_not_in_the_cache_is_listed_and_exported_all_the_same(cli, store_path):
    """The listing and the export read the links with their SKU and variant in one join: a link
    whose variant is not (or no longer) cached keeps its row, with the variant's cells empty."""
    with Store.open(store_path) as store:
        store.replace_variants([variant(1, "A-1", "Mug", "Red")])
        store.upsert_tiktok_skus([sku("t2", "B-2", "TT Plate", "Big"), sku("t1", "A-1", "TT Mug", "Red")])
        store.apply_links([LinkChange("t2", V + "2"), LinkChange("t1", V + "1")], source="manual", actor="x")
    lines = [line.split("\t") for line in cli("links").stdout.splitlines()]
    assert [row[:6] for row in lines[1:]] == [
        ["t1", "A-1", V + "1", "A-1", "Mug / Red", "manual"],
        ["t2", "B-2", V + "2", "", "", "manual"],
    ]
    exported = list(csv.DictReader(io.StringIO(cli("links", "export").stdout)))
    assert [(r["tiktok_sku_id"], r["tiktok_seller_sku"], r["shopify_variant_id"], r["shopify_sku"],
             r["product_title"], r["sku_name"], r["suggestion"]) for r in exported] == [
        ("t1", "A-1", V + "1", "A-1", "TT Mug", "Red", "manual"),
        ("t2", "B-2", V + "2", "", "TT Plate", "Big", "manual"),
    ]
