"""Exactly once under attack (DESIGN §5.4): other paths to the store, clock steps, strange answers,
a lost store, unusable TikTok payloads, a cursor dated in the future.

Every test runs the real CLI (in-process or as a subprocess) against the
sandbox simulators over HTTP and counts the orders Shopify really holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from ecomsend_cli.store import Store
from tests.conftest import python_cmd

TEMPLATE = "580000000000000001"  # a paid order whose SKUs auto-link


def shopify_counts(sandbox) -> Counter:
    return Counter(o["source_identifier"] for o in sandbox.shopify.orders())


def states(store_path) -> dict[str, str]:
    with Store.open(store_path) as store:
        return {o.tiktok_order_id: o.state for o in store.orders()}


def link_everything(sb_cli) -> None:
    assert sb_cli("autolink", "--yes").exit_code == 0
    assert sb_cli("link", "STK-1", "STK-001").exit_code == 0


def cli_run(sandbox, *args, env=None, shim: list[str] | None = None, timeout=60):
    cmd = [sys.executable, "-m", "tests.clockstep", *shim] if shim else python_cmd()
    cmd += ["--config", str(sandbox.config_file), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def add_orders(sandbox, count: int, start: int, *, template: str = TEMPLATE, **changes) -> list[str]:
    base = sandbox.tiktok.order(template)
    orders = []
    for i in range(count):
        order = json.loads(json.dumps(base))
        order["id"] = f"59{start + i:016d}"
        order["update_time"] = int(time.time())
        for n, line in enumerate(order["line_items"]):
            line["id"] = f"{order['id']}{n}"
        order.update(changes)
        orders.append(order)
    return sandbox.tiktok.add_orders(orders)


# --- one run per store file, whatever names it --------------------------------------------------


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_a_second_name_for_the_store_meets_the_same_lock(sandbox, sb_cli, tmp_path, kind):
    from ecomsend_cli.sync import SyncLock

    sb_cli("sync-orders")
    link_everything(sb_cli)
    other = tmp_path / f"other-name-{kind}.db"
    (os.symlink if kind == "symlink" else os.link)(sandbox.store_path, other)
    before = shopify_counts(sandbox)
    with Store.open(sandbox.store_path) as store, SyncLock(store):
        out = cli_run(sandbox, "--store", str(other), "sync-orders")
    assert out.returncode == 75, out.stderr
    assert "another sync-orders is running" in out.stderr and f"pid {os.getpid()}" in out.stderr
    assert shopify_counts(sandbox) == before  # nothing was created through the other name
    if kind == "hardlink":  # SQLite itself can lose writes through two names: say so
        assert "has 2 names (hard links)" in out.stderr


def test_the_claim_is_a_compare_and_set_even_without_the_lock(sandbox, sb_cli, tmp_path):
    """Two runs that both got past the lock (say, across two machines' views of a share)
    still cannot both send one order: the claim pending → creating is atomic."""
    from ecomsend_cli.config import load_config
    from ecomsend_cli.shopify import ShopifyClient
    from ecomsend_cli.sync import Syncer, SyncOptions
    from ecomsend_cli.tiktok import TikTokClient

    sb_cli("sync-orders")
    link_everything(sb_cli)
    add_orders(sandbox, 12, 100)
    sandbox.shopify.set_faults(latency_ms=40)
    alias = tmp_path / "alias.db"
    os.symlink(sandbox.store_path, alias)
    config = load_config(sandbox.config_file, env={})
    reports, errors = [], []
    barrier = threading.Barrier(2)

    def one_run(path):
        try:
            with Store.open(path) as store:
                tiktok, shopify = TikTokClient(config.tiktok, store), ShopifyClient(config.shopify, store)
                barrier.wait()
                reports.append(Syncer(store, tiktok, shopify, config.sync, SyncOptions()).run())
                tiktok.close()
                shopify.close()
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=one_run, args=(p,)) for p in (sandbox.store_path, alias)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    counts = shopify_counts(sandbox)
    assert counts and max(counts.values()) == 1, [k for k, v in counts.items() if v > 1]
    assert sum(r.created for r in reports) == len(counts) - 2  # 2 feed-linked orders came first


def test_a_page_pulled_meanwhile_never_undoes_a_claim(tmp_path):
    from tests.factory import order, sku

    with Store.open(tmp_path / "s.db") as store:
        o = order("T1", [sku("1", "A")])
        store.record_order(o, state="pending")
        assert store.set_order_state("T1", "creating")  # another run claimed it
        store.record_order(o, state="pending")  # this run had read "pending" before that
        assert store.orders()[0].state == "creating"


# --- a wall clock that steps forward does not shorten the wait -----------------------------------


def test_a_forward_clock_step_does_not_resend_an_unconfirmed_order(sandbox, sb_cli):
    sb_cli("sync-orders")
    link_everything(sb_cli)
    ids = add_orders(sandbox, 1, 200)
    # The order is created but the answer is lost, and the search index lags.
    sandbox.shopify.set_faults(index_lag_seconds=3600,
                               fail_next=[{"op": "orderCreate", "kind": "lost_response"}])
    # This run's clock is 4 minutes slow (TikTok still accepts its signatures)...
    first = cli_run(sandbox, "sync-orders", "--order", ids[0], "--json", shim=["-240"])
    assert json.loads(first.stdout)["orders"][0]["state"] == "creating", first.stderr
    # ...then NTP steps it right: 240 s pass on the wall clock in a moment, more
    # than the 60 s reconcile wait. Two runs follow at once.
    for _ in range(2):
        stepped = cli_run(sandbox, "sync-orders", "--order", ids[0], "--json")
        assert stepped.returncode in (0, 3), stepped.stderr
        assert shopify_counts(sandbox)[ids[0]] == 1
        assert states(sandbox.store_path)[ids[0]] == "creating"
    sandbox.shopify.set_faults(index_lag_seconds=0)
    cli_run(sandbox, "sync-orders", "--order", ids[0])
    assert shopify_counts(sandbox)[ids[0]] == 1
    assert states(sandbox.store_path)[ids[0]] == "synced"


# --- the cursor never runs ahead of the run ------------------------------------------------------


def test_an_order_dated_in_the_future_does_not_hide_later_orders(sandbox, sb_cli):
    sb_cli("sync-orders")
    link_everything(sb_cli)
    far = int(time.time()) + 10 * 365 * 86400
    add_orders(sandbox, 1, 300, update_time=far)
    r = sb_cli("sync-orders", "--json")
    assert r.exit_code in (0, 3), r.stderr
    with Store.open(sandbox.store_path) as store:
        assert int(store.get_state("sync.cursor")) <= time.time() + 1
    later = add_orders(sandbox, 1, 301)
    sb_cli("sync-orders")
    assert states(sandbox.store_path)[later[0]] == "synced"
    assert shopify_counts(sandbox)[later[0]] == 1


def test_a_cursor_left_in_the_future_heals_and_doctor_flags_it(sandbox, sb_cli):
    sb_cli("sync-orders")
    link_everything(sb_cli)
    with Store.open(sandbox.store_path) as store:  # as an old version or a fast clock left it
        store.set_state("sync.cursor", str(int(time.time()) + 86400))
    doctor = sb_cli("doctor", "--json")
    checks = {c["check"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert doctor.exit_code == 1 and not checks["sync cursor"]["ok"]
    assert "ahead of this computer's clock" in checks["sync cursor"]["detail"]
    later = add_orders(sandbox, 1, 400)
    sb_cli("sync-orders")
    assert states(sandbox.store_path)[later[0]] == "synced"
    with Store.open(sandbox.store_path) as store:
        assert int(store.get_state("sync.cursor")) <= time.time() + 1


# --- unusable TikTok payloads --------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "reason"), [
    ({"line_items": "x"}, "line_items is str"),
    ({"update_time": "yesterday"}, "update_time is 'yesterday'"),
    ({"line_items": [{"sku_id": "1729592969712207012", "sale_price": "NaN"}]}, "sale_price is 'NaN'"),
    ({"line_items": [{"combined_listing_skus": [{"sku_id": "17", "sku_count": "x"}]}]}, "sku_count is 'x'"),
    ({"payment": {"currency": "USD", "total_amount": "1e30"}}, "total_amount is '1e30'"),
    ({"line_items": []}, "no line items"),
])
def test_an_unusable_order_is_invalid_and_the_rest_of_its_page_syncs(changes, reason):
    from ecomsend_cli.models import InvalidOrder
    from ecomsend_cli.tiktok_orders import parse_order

    good = {"id": "1", "status": "AWAITING_SHIPMENT", "update_time": 1, "line_items": [
        {"sku_id": "5", "sale_price": "1.50"}], "payment": {"currency": "USD", "total_amount": "1.50"}}
    assert not isinstance(parse_order(good), InvalidOrder)
    bad = parse_order({**good, **changes})
    assert isinstance(bad, InvalidOrder) and reason in bad.reason and bad.tiktok_order_id == "1"
    assert parse_order({**good, "id": None}).tiktok_order_id is None


def tiktok_page(orders, token: str = "") -> dict:
    return {"code": 0, "message": "Success", "request_id": "RID-test",
            "data": {"orders": orders, "next_page_token": token, "total_count": len(orders)}}


def test_unusable_orders_on_a_page_become_invalid_and_the_rest_syncs(sandbox, sb_cli):
    sb_cli("sync-orders")
    link_everything(sb_cli)
    base = sandbox.tiktok.order(TEMPLATE)
    now = int(time.time())

    def variant(order_id, **changes):
        order = json.loads(json.dumps(base))
        order.update({"id": order_id, "update_time": now, **changes})
        return order

    good = variant("5990000000000000001")
    page = [
        variant(None),  # no id: it would have been sent as sourceIdentifier "None"
        variant("5990000000000000002", line_items="x"),
        variant("5990000000000000003", update_time="yesterday"),
        variant("5990000000000000004", line_items=[{**base["line_items"][0], "sale_price": "NaN"}]),
        good,
    ]
    sandbox.tiktok.set_faults(fail_next=[{"op": "orders.search", "kind": "answer", "handled": False,
                                          "body": tiktok_page(page)}])
    r = sb_cli("sync-orders", "--json")
    assert r.exit_code == 3, r.stderr
    report = json.loads(r.stdout)
    by_id = {o["tiktok_order_id"]: o for o in report["orders"]}
    assert report["invalid"] == 4
    assert by_id["5990000000000000001"]["state"] == "synced"
    assert "line_items is str" in by_id["5990000000000000002"]["reason"]
    assert "update_time is 'yesterday'" in by_id["5990000000000000003"]["reason"]
    assert "sale_price is 'NaN'" in by_id["5990000000000000004"]["reason"]
    assert "no usable id" in by_id[None]["reason"]
    sources = shopify_counts(sandbox)
    assert sources["5990000000000000001"] == 1 and "None" not in sources
    assert not any(k.startswith("5990000000000000") and k != "5990000000000000001" for k in sources)
    listed = sb_cli("orders", "--state", "invalid", "--json")
    assert {o["tiktok_order_id"] for o in json.loads(listed.stdout)} == {
        "5990000000000000002", "5990000000000000003", "5990000000000000004"}
    again = sb_cli("sync-orders", "--json")  # invalid orders are never sent, on any run
    assert all(k == "5990000000000000001" for k in shopify_counts(sandbox) if k.startswith("59900"))
    assert again.exit_code in (0, 3)


@pytest.mark.parametrize("data", [{"orders": {"id": "1"}}, {"orders": "none"}, ["a", "list"]])
def test_a_broken_page_is_one_clear_error(sandbox, sb_cli, data):
    sandbox.tiktok.set_faults(fail_next=[{"op": "orders.search", "kind": "answer", "handled": False,
                                          "body": {"code": 0, "message": "Success", "request_id": "R",
                                                   "data": data}}])
    r = sb_cli("sync-orders")
    assert r.exit_code == 1
    assert r.stderr.startswith("error: TikTok /order/202309/orders/search answered with")
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_fresh_store_adopts_what_the_shop_already_holds(sandbox, sb_cli, tmp_path):
    sb_cli("sync-orders")
    link_everything(sb_cli)
    sb_cli("sync-orders")
    held = shopify_counts(sandbox)
    fresh = tmp_path / "restored.db"  # a lost store, or one restored from an old backup
    run = lambda *a: sb_cli("--store", str(fresh), *a)  # noqa: E731
    run("sync-orders")
    assert run("autolink", "--yes").exit_code == 0
    assert run("link", "STK-1", "STK-001").exit_code == 0
    report = json.loads(run("sync-orders", "--json").stdout)
    assert report["created"] == 0 and report["adopted"] > 10
    assert shopify_counts(sandbox) == held


def test_a_link_committed_while_the_run_sorts_orders_does_not_fail_it(sandbox, sb_cli, monkeypatch):
    """Another process (say `ecomsend link`) commits while sync-orders walks its orders: a read
    held open across the run's own writes would make them fail (SQLite's BUSY_SNAPSHOT)."""
    import sqlite3

    sb_cli("sync-orders")  # blocked orders, their reasons stored
    with Store.open(sandbox.store_path) as store:
        store.conn.execute("UPDATE orders SET reason = 'old reason' WHERE state = 'blocked'")
    real = Store.set_order_state
    other = sqlite3.connect(sandbox.store_path, isolation_level=None)

    def with_a_concurrent_commit(self, *args, **kwargs):
        other.execute("BEGIN IMMEDIATE")  # another process writes and commits meanwhile
        other.execute("INSERT OR REPLACE INTO state (key, value, updated_at) "
                      "VALUES ('test.concurrent', hex(randomblob(8)), 'now')")
        other.execute("COMMIT")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Store, "set_order_state", with_a_concurrent_commit)
    r = sb_cli("sync-orders", "--json")
    other.close()
    assert r.exit_code == 3, r.stderr
    assert "busy" not in r.stderr
    assert all(o["reason"] != "old reason" for o in json.loads(r.stdout)["orders"] if o["state"] == "blocked")
