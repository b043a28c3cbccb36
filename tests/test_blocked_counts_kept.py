"""Each TikTok SKU's count of blocked orders is kept with it and stays current (issue 13).

`list-unlinked` shows and sorts by how many blocked orders hold each SKU; the
store keeps that count in ``tiktok_skus.blocked_orders`` rather than counting
per listing. These tests move orders in and out of ``blocked`` every way the
store does and compare with a count made now: each fails if the store stops
keeping the count on that path.
"""

from __future__ import annotations

import json
import shutil

from hypothesis import given, settings
from hypothesis import strategies as st

from ecomsend_cli.store import Store
from tests.factory import order, sku


def blocked(cli, *args: str) -> dict[str, int]:
    r = cli("list-unlinked", "--json", *args)
    assert r.exit_code == 0, r.stderr
    return {row["tiktok_sku_id"]: row["blocked_orders"] for row in json.loads(r.stdout)}


def _counted(store: Store) -> dict[str, int]:
    return dict(store.conn.execute(
        "SELECT t.sku_id, (SELECT count(*) FROM order_items i JOIN orders o "
        "ON o.tiktok_order_id = i.tiktok_order_id WHERE i.sku_id = t.sku_id AND o.state = 'blocked') "
        "FROM tiktok_skus t"
    ))


def _kept(store: Store) -> dict[str, int]:
    return {r.sku_id: r.blocked_orders for r in store.sku_rows(include_linked=True)}


A, B, C = sku("a", "A"), sku("b", "B"), sku("c", "C")


def test_orders_entering_and_leaving_blocked_move_the_counts(cli, store_path):
    with Store.open(store_path) as store:
        store.record_order(order("o1", [A, B]), state="blocked")
        store.record_order(order("o2", [B]), state="blocked")
        store.record_order(order("o3", [C]), state="pending")
    assert blocked(cli) == {"b": 2, "a": 1, "c": 0}
    with Store.open(store_path) as store:
        store.set_order_state("o1", "failed", reason="x")
        store.set_order_state("o3", "blocked", reason="needs c")
    assert blocked(cli) == {"b": 1, "c": 1, "a": 0}
    with Store.open(store_path) as store:
        # Pulled again, still blocked, now with other lines: a in, b out.
        store.record_order(order("o2", [A, C]), state="blocked")
    assert blocked(cli) == {"c": 2, "a": 1, "b": 0}


def test_the_listing_puts_the_most_blocked_first_by_the_kept_counts(cli, store_path):
    with Store.open(store_path) as store:
        store.record_order(order("o1", [sku("z", "Z", "Alpha"), sku("y", "Y", "Beta"), sku("x", "X", "Alpha")]),
                           state="pending")
        store.record_order(order("o2", [sku("y", "Y", "Beta")]), state="blocked")
    r = cli("list-unlinked", "--json")  # then by product title, then by id
    assert [row["tiktok_sku_id"] for row in json.loads(r.stdout)] == ["y", "x", "z"]
    with Store.open(store_path) as store:
        store.set_order_state("o1", "blocked")
        store.set_order_state("o2", "failed")
    r = cli("list-unlinked", "--json")
    assert [(row["tiktok_sku_id"], row["blocked_orders"]) for row in json.loads(r.stdout)] == [
        ("x", 1), ("z", 1), ("y", 1)]
    with Store.open(store_path) as store:
        store.set_order_state("o2", "blocked")
    assert [row["tiktok_sku_id"] for row in json.loads(cli("list-unlinked", "--json").stdout)] == ["y", "x", "z"]


def test_a_sync_run_that_creates_the_orders_leaves_no_count(cli, store_path):
    with Store.open(store_path) as store:
        store.record_order(order("o1", [A]), state="blocked")
        store.record_order(order("o2", [A, B]), state="blocked")
        store.set_order_state("o1", "synced", shopify_order_id="gid://shopify/Order/1", unless=())
        store.record_order(order("o2", [A, B]), state="pending")  # its SKUs were linked meanwhile
    assert blocked(cli) == {"a": 0, "b": 0}


def test_a_deleted_blocked_order_no_longer_counts(cli, store_path):
    with Store.open(store_path) as store:
        store.record_order(order("o1", [A, B]), state="blocked")
        store.record_order(order("o2", [A]), state="blocked")
        store.conn.execute("DELETE FROM orders WHERE tiktok_order_id = 'o1'")
        assert _kept(store) == _counted(store) == {"a": 1, "b": 0}


def test_an_item_moved_to_another_sku_or_order_moves_its_count(store_path):
    with Store.open(store_path) as store:
        store.record_order(order("o1", [A]), state="blocked")
        store.record_order(order("o2", [C]), state="pending")
        store.record_order(order("o3", [B]), state="pending")
        store.conn.execute("UPDATE order_items SET sku_id = 'b' WHERE tiktok_order_id = 'o1'")
        assert _kept(store) == _counted(store) == {"a": 0, "b": 1, "c": 0}
        store.conn.execute("UPDATE order_items SET tiktok_order_id = 'o2', position = 9 "
                           "WHERE tiktok_order_id = 'o1'")
        assert _kept(store) == _counted(store) == {"a": 0, "b": 0, "c": 0}


def test_a_store_from_before_the_column_gets_it_counted_on_open(cli, store_path):
    with Store.open(store_path) as store:
        store.record_order(order("o1", [A, B]), state="blocked")
        store.record_order(order("o2", [B]), state="blocked")
        for (name,) in store.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%blocked%'"
        ).fetchall():
            store.conn.execute(f"DROP TRIGGER {name}")
        store.conn.execute("ALTER TABLE tiktok_skus DROP COLUMN blocked_orders")
        store.conn.execute("DELETE FROM _migrations WHERE name = '013_sku_blocked_orders'")
    assert blocked(cli) == {"b": 2, "a": 1}
    with Store.open(store_path) as store:
        store.set_order_state("o2", "failed")
    assert blocked(cli) == {"a": 1, "b": 1}


# --- the kept counts against a count made now, after any sequence of writes -------------

_STATES = ["blocked", "pending", "failed", "synced", "waiting", "invalid"]
_pull = st.tuples(st.just("pull"), st.integers(1, 3), st.sets(st.sampled_from("abcd"), min_size=1),
                  st.sampled_from(_STATES))
_move = st.tuples(st.just("move"), st.integers(1, 3), st.none(), st.sampled_from(_STATES))


@settings(deadline=None)  # store I/O: the first example also migrates the template
@given(st.lists(st.one_of(_pull, _move), max_size=10))
def test_the_kept_counts_equal_a_count_after_any_writes(tmp_path_factory, empty_store_file, writes):
    path = tmp_path_factory.mktemp("blocked") / "store.db"
    shutil.copy(empty_store_file, path)
    with Store.open(path) as store:  # opened as every command opens it
        for kind, n, skus, state in writes:
            if kind == "pull":
                store.record_order(order(f"o{n}", [sku(s, s.upper()) for s in sorted(skus)]), state=state)
            else:
                store.set_order_state(f"o{n}", state, unless=())
            assert _kept(store) == _counted(store), (kind, n, skus, state)

