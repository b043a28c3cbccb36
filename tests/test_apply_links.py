"""`Store.apply_links` writes a batch through one temporary table (issue 13), as it wrote it before.

Every write of links is one transaction with a history row per change
(STYLE §4); these tests hold the batch path to that: SKUs recorded from the
catalog at write time, history in SKU order, a SKU named twice written twice in
order, and a change whose ``old`` no longer holds writing nothing at all.
"""

from __future__ import annotations

import pytest

from ecomsend_cli.errors import StoreError
from ecomsend_cli.store import LinkChange, Store
from tests.factory import order, sku, variant

V = "gid://shopify/ProductVariant/"


@pytest.fixture
def store(store_path):
    with Store.open(store_path) as store:
        store.replace_variants([variant(1, "A-1"), variant(2, "B-2")])
        store.record_order(order("o1", [sku(f"t{n}", f"x{n}") for n in range(1, 5)]), state="blocked")
        yield store


def _links(store: Store) -> list[tuple]:
    return store.conn.execute(
        "SELECT tiktok_sku_id, shopify_variant_id, source, linked_by, variant_sku FROM links ORDER BY 1"
    ).fetchall()


def _history(store: Store) -> list[tuple]:
    return [(h.tiktok_sku_id, h.action, h.old_variant_id, h.new_variant_id, h.source, h.actor)
            for h in reversed(store.history())]


def test_a_batch_writes_links_with_their_cached_sku_and_one_history_row_each_in_sku_order(store):
    written = store.apply_links([LinkChange("t3", V + "9"), LinkChange("t1", V + "1"), LinkChange("t2", V + "2")],
                                source="csv", actor="ann")
    assert written == 3
    assert _links(store) == [("t1", V + "1", "csv", "ann", "A-1"), ("t2", V + "2", "csv", "ann", "B-2"),
                             ("t3", V + "9", "csv", "ann", None)]  # 9 is not cached: no SKU to record
    assert _history(store) == [("t1", "link", None, V + "1", "csv", "ann"), ("t2", "link", None, V + "2", "csv", "ann"),
                               ("t3", "link", None, V + "9", "csv", "ann")]
    again = store.apply_links([LinkChange("t1", V + "2", V + "1"), LinkChange("t2", V + "2", V + "2"),
                               LinkChange("t3", V + "9", V + "9")], source="manual", actor="bob")
    assert again == 3  # a relink, and two links confirmed (written again, as a stale link is)
    assert _links(store)[0] == ("t1", V + "2", "manual", "bob", "B-2")
    assert _history(store)[3:] == [("t1", "relink", V + "1", V + "2", "manual", "bob"),
                                   ("t2", "relink", V + "2", V + "2", "manual", "bob"),
                                   ("t3", "relink", V + "9", V + "9", "manual", "bob")]


def test_a_sku_named_twice_in_a_batch_is_written_twice_in_order(store):
    assert store.apply_links([LinkChange("t4", V + "1"), LinkChange("t4", V + "2", V + "1")],
                             source="auto", actor="x") == 2
    assert _links(store) == [("t4", V + "2", "auto", "x", "B-2")]
    assert [h[:4] for h in _history(store)] == [("t4", "link", None, V + "1"), ("t4", "relink", V + "1", V + "2")]


def test_a_change_whose_old_link_no_longer_holds_writes_nothing(store):
    store.apply_links([LinkChange("t2", V + "2")], source="manual", actor="x")
    before = (_links(store), _history(store))
    with pytest.raises(StoreError, match="link of TikTok SKU t2 changed while this command ran"):
        store.apply_links([LinkChange("t1", V + "1"), LinkChange("t2", V + "1")], source="csv", actor="y")
    assert (_links(store), _history(store)) == before
    # And the next batch on the same connection is written as usual.
    assert store.apply_links([LinkChange("t1", V + "1")], source="csv", actor="y") == 1


def test_a_batch_the_database_refuses_leaves_nothing_behind(store):
    with pytest.raises(StoreError):
        store.apply_links([LinkChange("t1", V + "1"), LinkChange("no-such-sku", V + "2")], source="csv", actor="y")
    assert _links(store) == [] and _history(store) == []
    assert store.apply_links([LinkChange("t1", V + "1")], source="csv", actor="y") == 1
