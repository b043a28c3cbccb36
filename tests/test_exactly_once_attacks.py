"""Attacks on exactly once (DESIGN §5.4) that the first build of issue 9 did not hold.

Each test drives the real CLI against the sandbox simulators over HTTP (or the
Shopify client over ``httpx.MockTransport``) and counts the orders Shopify
really holds.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections import Counter

import pytest

from ecomsend_cli.store import Store
from tests.factory import repriced

TEMPLATE = "580000000000000001"  # a paid order whose SKUs auto-link


def shopify_counts(sandbox) -> Counter:
    return Counter(o["source_identifier"] for o in sandbox.shopify.orders())


def states(store_path) -> dict[str, str]:
    with Store.open(store_path) as store:
        return {o.tiktok_order_id: o.state for o in store.orders()}


def set_sync(sandbox, **keys) -> None:
    import yaml

    data = yaml.safe_load(sandbox.config_file.read_text())
    data.setdefault("sync", {}).update(keys)
    sandbox.config_file.write_text(yaml.safe_dump(data))


def ready(sandbox, sb_cli) -> None:
    """A first sync, every SKU of the demo linked, and all the demo's orders created (stock
    ignored, so no order stays failed to be re-sent by every later run)."""
    sb_cli("sync-orders")
    assert sb_cli("autolink", "--yes").exit_code == 0
    assert sb_cli("link", "STK-1", "STK-001").exit_code == 0
    set_sync(sandbox, inventory_behaviour="DECREMENT_IGNORING_POLICY")
    assert sb_cli("sync-orders").exit_code in (0, 3)
    assert "failed" not in states(sandbox.store_path).values()


def add_orders(sandbox, count: int, start: int, **changes) -> list[str]:
    base = sandbox.tiktok.order(TEMPLATE)
    orders = []
    for i in range(count):
        order = json.loads(json.dumps(base))
        order["id"] = f"56{start + i:016d}"
        order["update_time"] = int(time.time())
        for n, line in enumerate(order["line_items"]):
            line["id"] = f"{order['id']}{n}"
        order.update(changes)
        orders.append(order)
    return sandbox.tiktok.add_orders(orders)


def created_answer(order_id: str) -> dict:
    """The data part of a successful orderCreate answer (what Shopify did is the simulator's)."""
    return {"orderCreate": {"order": {"id": "gid://shopify/Order/999999", "name": "#9999",
                                      "sourceIdentifier": order_id}, "userErrors": []}}


# --- orderCreate answers that the client takes for "refused before it ran" ----------------------


def test_shopifys_documented_internal_error_is_not_retried_blind(sandbox, sb_cli):
    """Shopify's documented INTERNAL_SERVER_ERROR body (no ``data``, no ``path``) can follow a
    committed write. The client must not re-send orderCreate after it."""
    ready(sandbox, sb_cli)
    ids = add_orders(sandbox, 1, 100)
    body = {"errors": [{"message": "Internal error. Looks like something went wrong on our end.\n"
                                   "Request ID: 1b355a21 (include this in support requests).",
                        "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": "1b355a21"}}]}
    sandbox.shopify.set_faults(fail_next=[{"op": "orderCreate", "kind": "answer", "body": body}])
    r = sb_cli("sync-orders", "--order", ids[0], "--json")
    assert r.exit_code in (0, 3), r.stderr
    assert shopify_counts(sandbox)[ids[0]] == 1
    assert states(sandbox.store_path)[ids[0]] in ("creating", "synced")


def test_an_access_denied_field_beside_a_created_order_is_not_a_refusal(sandbox, sb_cli):
    """A field-level ACCESS_DENIED (it has a ``path``) comes from a mutation that ran: here the
    order is in ``data``. It must not become ``failed`` (re-sent blind on the next run)."""
    ready(sandbox, sb_cli)
    ids = add_orders(sandbox, 1, 200)
    body = {"data": created_answer(ids[0]),
            "errors": [{"message": "Access denied for name field.", "path": ["orderCreate", "order", "name"],
                        "extensions": {"code": "ACCESS_DENIED"}}]}
    sandbox.shopify.set_faults(fail_next=[{"op": "orderCreate", "kind": "answer", "body": body}])
    sb_cli("sync-orders", "--order", ids[0])
    assert states(sandbox.store_path)[ids[0]] != "failed"
    sb_cli("sync-orders", "--order", ids[0])
    assert shopify_counts(sandbox)[ids[0]] == 1


def test_throttled_beside_a_created_order_is_not_retried(sandbox, sb_cli):
    ready(sandbox, sb_cli)
    ids = add_orders(sandbox, 1, 300)
    body = {"data": created_answer(ids[0]),
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]}
    sandbox.shopify.set_faults(fail_next=[{"op": "orderCreate", "kind": "answer", "body": body}])
    sb_cli("sync-orders", "--order", ids[0])
    assert shopify_counts(sandbox)[ids[0]] == 1


# --- a store restored from a backup ------------------------------------------------------------


def backup(path, to) -> None:
    src, dst = sqlite3.connect(path), sqlite3.connect(to)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()


def restore(backup_path, path) -> None:
    for suffix in ("-wal", "-shm"):
        if os.path.exists(str(path) + suffix):
            os.remove(str(path) + suffix)
    shutil.copyfile(backup_path, path)


def test_a_restored_store_looks_up_a_failed_order_before_sending_it_again(sandbox, sb_cli, tmp_path):
    """Run 1: Shopify refuses the order (a real userError) → failed. A nightly backup.
    Run 2: the stock is back, the order is created. The disk dies; the backup is restored.
    Run 3 sees ``failed`` (attempts 1) and sends it again without a lookup: a second order."""
    ready(sandbox, sb_cli)
    ids = add_orders(sandbox, 1, 400)
    refused = {"data": {"orderCreate": {"order": None, "userErrors": [
        {"field": ["order", "lineItems", "0"], "message": "Not enough stock", "code": "INVENTORY_CLAIM_FAILED"}]}}}
    sandbox.shopify.set_faults(fail_next=[{"op": "orderCreate", "kind": "answer", "handled": False,
                                           "body": refused}])
    sb_cli("sync-orders", "--order", ids[0])
    assert states(sandbox.store_path)[ids[0]] == "failed"
    backup(sandbox.store_path, tmp_path / "nightly.db")
    sb_cli("sync-orders", "--order", ids[0])
    assert shopify_counts(sandbox)[ids[0]] == 1
    restore(tmp_path / "nightly.db", sandbox.store_path)
    sb_cli("sync-orders", "--order", ids[0])
    assert shopify_counts(sandbox)[ids[0]] == 1
    assert states(sandbox.store_path)[ids[0]] == "synced"


# --- hostile TikTok ids -----------------------------------------------------------------------


def test_an_order_id_with_spaces_is_found_again_after_a_lost_answer(sandbox, sb_cli):
    """TikTok's id ' 56…' is stored and looked up stripped: it must be sent stripped as the
    sourceIdentifier too, or no lookup ever finds it and a lost answer means a second order."""
    ready(sandbox, sb_cli)
    set_sync(sandbox, reconcile_wait_seconds=0)
    base = sandbox.tiktok.order(TEMPLATE)
    order = json.loads(json.dumps(base))
    order.update({"id": " 5600000000000000500", "update_time": int(time.time())})
    for n, line in enumerate(order["line_items"]):
        line["id"] = f"56000000000000005000{n}"
    sandbox.tiktok.add_orders([order])
    sandbox.shopify.set_faults(fail_next=[{"op": "orderCreate", "kind": "lost_response"}])
    for _ in range(4):
        r = sb_cli("sync-orders", "--json")
        assert r.exit_code in (0, 3), r.stderr
    assert shopify_counts(sandbox)["5600000000000000500"] == 1
    assert states(sandbox.store_path)["5600000000000000500"] == "synced"


# --- strange cost extensions ----------------------------------------------------------------


@pytest.mark.parametrize("extensions", [
    "oops",
    {"cost": "oops"},
    {"cost": {"requestedQueryCost": "x", "actualQueryCost": 10,
              "throttleStatus": {"maximumAvailable": 2000, "currentlyAvailable": 1990, "restoreRate": 100}}},
    {"cost": {"requestedQueryCost": 10, "actualQueryCost": 10,
              "throttleStatus": {"maximumAvailable": "lots", "currentlyAvailable": 1990, "restoreRate": 100}}},
    {"cost": {"requestedQueryCost": 10, "actualQueryCost": 10, "throttleStatus": "full"}},
])
def test_a_strange_cost_extension_is_not_a_traceback(sandbox, sb_cli, extensions):
    """``extensions`` beside a created order: the client reads it before the order."""
    ready(sandbox, sb_cli)
    ids = add_orders(sandbox, 1, 600)
    body = {"data": created_answer(ids[0]), "extensions": extensions}
    sandbox.shopify.set_faults(fail_next=[{"op": "orderCreate", "kind": "answer", "body": body}])
    r = sb_cli("sync-orders", "--order", ids[0])  # in-process: a traceback fails the test
    assert r.exit_code in (0, 1, 3)
    assert shopify_counts(sandbox)[ids[0]] == 1


def test_an_error_whose_extensions_is_not_an_object_is_not_a_traceback(sandbox, sb_cli):
    ready(sandbox, sb_cli)
    ids = add_orders(sandbox, 1, 650)
    body = {"errors": [{"message": "Something went wrong", "extensions": "oops"}]}
    sandbox.shopify.set_faults(fail_next=[{"op": "orderCreate", "kind": "answer", "body": body}])
    r = sb_cli("sync-orders", "--order", ids[0])  # in-process: a traceback fails the test
    assert r.exit_code in (0, 1, 3)
    assert states(sandbox.store_path)[ids[0]] == "creating"  # unknown: it may have run
    sb_cli("sync-orders", "--order", ids[0])
    assert shopify_counts(sandbox)[ids[0]] == 1


@pytest.mark.parametrize("status", [
    {"maximumAvailable": 2000, "currentlyAvailable": -1e9, "restoreRate": 100},
    {"maximumAvailable": 2000, "currentlyAvailable": 0, "restoreRate": 1e-9},
])
def test_one_strange_throttle_status_does_not_stall_the_client_for_ever(status):
    import httpx

    from tests.test_shopify_client import SHOP_DATA, FakeTime, Script, make_client, ok

    class Stalled(Exception):
        pass

    time_ = FakeTime()
    real_sleep = time_.sleep

    def sleep(seconds: float) -> None:
        real_sleep(seconds)
        if sum(time_.sleeps) > 3600:
            raise Stalled(f"waited {sum(time_.sleeps):.0f} s and counting")

    time_.sleep = sleep
    strange = httpx.Response(200, json={"data": SHOP_DATA, "extensions": {"cost": {
        "requestedQueryCost": 2, "actualQueryCost": 2, "throttleStatus": status}}})
    script = Script(strange, ok(SHOP_DATA), time=time_)
    client = make_client(script, time_)
    client.shop_info()
    client.shop_info()  # a well-formed answer would set the figures right, if the call were made
    assert len(script.graphql_requests) == 2


# --- the 60-day search window -------------------------------------------------------------------


def test_a_fresh_store_does_not_resend_an_old_order_the_search_cannot_see(sandbox, sb_cli, tmp_path):
    ready(sandbox, sb_cli)
    now = int(time.time())
    # Created 70 days ago, updated yesterday (COMPLETED after the return window, say).
    ids = add_orders(sandbox, 1, 800, create_time=now - 70 * 86400, update_time=now - 86400,
                     status="COMPLETED")
    sb_cli("sync-orders", "--order", ids[0])
    assert shopify_counts(sandbox)[ids[0]] == 1
    sandbox.shopify.access_scopes = tuple(s for s in sandbox.shopify.access_scopes if s != "read_all_orders")
    fresh = tmp_path / "restored.db"  # a lost store, or one restored from an old backup
    run = lambda *a: sb_cli("--store", str(fresh), *a)  # noqa: E731
    run("sync-orders")
    assert run("autolink", "--yes").exit_code == 0
    assert run("link", "STK-1", "STK-001").exit_code == 0
    run("sync-orders")
    assert shopify_counts(sandbox)[ids[0]] == 1


# --- config text ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shop", ["https://my]shop.myshopify.com", "[::1", "my-shop.myshopify.com]"])
def test_a_bracket_in_the_shop_address_is_one_line(cli, tmp_path, shop):
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"shopify": {"shop": shop, "access_token": "shpat_x"}}))
    os.chmod(config, 0o600)
    r = cli("--config", str(config), "config", "show")
    assert r.exit_code == 1
    assert r.stderr.startswith("error: ") and "'shopify.shop' is not a usable URL" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    doctor = cli("--config", str(config), "doctor")
    assert doctor.exit_code == 1 and "'shopify.shop' is not a usable URL" in doctor.stdout


# --- an unconfirmed order cancelled on TikTok meanwhile --------------------------------------------


def test_an_unconfirmed_order_cancelled_meanwhile_is_not_created_on_release(sandbox, sb_cli):
    ready(sandbox, sb_cli)
    set_sync(sandbox, reconcile_wait_seconds=0)
    ids = add_orders(sandbox, 1, 900)
    # The connection drops before Shopify handles it: never created, outcome unknown to us.
    sandbox.shopify.set_faults(fail_next=[{"op": "orderCreate", "kind": "drop"}])
    sb_cli("sync-orders", "--order", ids[0])
    assert states(sandbox.store_path)[ids[0]] == "creating" and shopify_counts(sandbox)[ids[0]] == 0
    sandbox.tiktok.update_order(ids[0], status="CANCELLED")  # the buyer cancels
    for _ in range(3):
        sb_cli("sync-orders")
    assert shopify_counts(sandbox)[ids[0]] == 0
    assert states(sandbox.store_path)[ids[0]] == "skipped"


# --- a large order ----------------------------------------------------------------------------------


def test_an_order_of_a_thousand_units_is_created_not_invalid(sandbox, sb_cli):
    ready(sandbox, sb_cli)
    base = sandbox.tiktok.order(TEMPLATE)
    line = dict(base["line_items"][0])
    line.pop("id", None)
    # Pad the line to the ~1 KB a real TikTok line item weighs (fixture: 1053 bytes).
    line["sku_image"] = "https://p16-oec-va.example/" + "x" * 700
    priced = repriced(base, [dict(line, id=f"L{n}") for n in range(1000)])  # the payment covers 1000 units
    ids = add_orders(sandbox, 1, 1000, line_items=priced["line_items"], payment=priced["payment"])
    r = sb_cli("sync-orders", "--order", ids[0], "--json")
    outcome = json.loads(r.stdout)["orders"][0]
    assert outcome["state"] == "synced", outcome["reason"]
    assert shopify_counts(sandbox)[ids[0]] == 1
