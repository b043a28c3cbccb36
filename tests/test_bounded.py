"""Bounded, current and consistent (issue 15): paging that never ends, answers that trickle or
never come, links changed while orders are being sent, amounts no currency has.

The runs that could hang on yesterday's code run as subprocesses with a
timeout, so a regression fails instead of holding the suite.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections import Counter

import pytest
import yaml

from ecomsend_cli.store import Store
from tests.conftest import python_cmd

TEMPLATE = "580000000000000001"  # a paid order whose SKUs auto-link


def shopify_counts(sandbox) -> Counter:
    return Counter(o["source_identifier"] for o in sandbox.shopify.orders())


def states(store_path) -> dict[str, str]:
    with Store.open(store_path) as store:
        return {o.tiktok_order_id: o.state for o in store.orders()}


def with_settings(sandbox, **top) -> None:
    data = yaml.safe_load(sandbox.config_file.read_text())
    data.update(top)
    sandbox.config_file.write_text(yaml.safe_dump(data))


def run(sandbox, *args, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run(python_cmd("--config", str(sandbox.config_file), *args), capture_output=True,
                          text=True, timeout=timeout, env={**os.environ})


def prepared(sandbox, sb_cli, count: int = 0, start: int = 0, **changes) -> list[str]:
    assert sb_cli("sync-orders").exit_code == 3
    assert sb_cli("autolink", "--yes").exit_code == 0
    assert sb_cli("link", "STK-1", "STK-001").exit_code == 0
    assert sb_cli("sync-orders").exit_code in (0, 3)
    return add_orders(sandbox, count, start, **changes) if count else []


def add_orders(sandbox, count: int, start: int, *, template: str = TEMPLATE, **changes) -> list[str]:
    base = sandbox.tiktok.order(template)
    orders = []
    for i in range(count):
        order = json.loads(json.dumps(base))
        order["id"] = f"57{start + i:016d}"
        order["update_time"] = int(time.time())
        for n, line in enumerate(order["line_items"]):
            line["id"] = f"{order['id']}{n}"
        order.update(changes)
        orders.append(order)
    return sandbox.tiktok.add_orders(orders)


# --- item 1: remote paging is bounded --------------------------------------------------------------


@pytest.mark.parametrize(("fault", "says"), [
    ("endless", "kept sending pages with no new order"),
    ("repeat_last", "sent a page token it had sent before"),
    ("cycle", "sent a page token it had sent before"),
])
def test_paging_that_never_ends_stops_and_what_was_pulled_is_created(sandbox, sb_cli, fault, says):
    prepared(sandbox, sb_cli)
    new = add_orders(sandbox, 3, 100)
    sandbox.tiktok.set_faults(paging_fault=fault)
    out = run(sandbox, "sync-orders", "--json")
    assert out.returncode == 1, out.stderr
    assert says in out.stderr and "the orders pulled before it are kept and synced" in out.stderr
    report = json.loads(out.stdout)  # the run's report is still printed, with the error in it
    assert says in report["error"]["message"] and report["error"]["exit_code"] == 1
    counts = shopify_counts(sandbox)
    assert all(counts[i] == 1 for i in new)  # pulled before the paging broke: created
    sandbox.tiktok.set_faults(paging_fault=None)  # the lock was released: the next run works
    assert run(sandbox, "sync-orders").returncode in (0, 3)


def test_pages_beyond_what_total_count_makes_plausible_stop(sandbox, sb_cli):
    prepared(sandbox, sb_cli)
    page = {"code": 0, "message": "Success", "request_id": "R", "data": {
        "orders": [sandbox.tiktok.order(TEMPLATE)], "next_page_token": "", "total_count": 1}}
    plan = []
    for n in range(15):  # each page one new order and a new token, though TikTok counted 1 order
        body = json.loads(json.dumps(page))
        body["data"]["orders"][0]["id"] = f"58800000000000{n:04d}"
        body["data"]["next_page_token"] = f"token-{n}"
        plan.append({"op": "orders.search", "kind": "answer", "handled": False, "body": body})
    sandbox.tiktok.set_faults(fail_next=plan)
    out = run(sandbox, "sync-orders")
    assert out.returncode == 1
    assert "than its count of 1 makes plausible" in out.stderr


# --- item 2: every call has a total deadline ------------------------------------------------------


def test_a_trickled_answer_to_order_create_is_unknown_and_looked_up(sandbox, sb_cli):
    ids = prepared(sandbox, sb_cli, 1, 200)
    with_settings(sandbox, network_deadline_seconds=2)
    sandbox.shopify.set_faults(fail_next=[{"op": "orderCreate", "kind": "trickle", "bytes_per_second": 20}])
    out = run(sandbox, "sync-orders", "--order", ids[0], "--json")
    report = json.loads(out.stdout)
    outcome = report["orders"][0]
    assert outcome["state"] == "creating", out.stderr  # never "failed": it may have been created
    assert "no answer within the 2 s deadline" in outcome["reason"]
    assert shopify_counts(sandbox)[ids[0]] == 1
    run(sandbox, "sync-orders", "--order", ids[0])
    assert states(sandbox.store_path)[ids[0]] == "synced"
    assert shopify_counts(sandbox)[ids[0]] == 1


def test_a_black_holed_shopify_stops_the_run_with_exit_1(sandbox, sb_cli):
    prepared(sandbox, sb_cli, 8, 300)
    with_settings(sandbox, network_deadline_seconds=1)
    sandbox.shopify.set_faults(fail_next=[{"op": "orderCreate", "kind": "hang", "handled": False,
                                           "count": 100}])
    out = run(sandbox, "sync-orders", "--json", timeout=120)
    assert out.returncode == 1, out.stderr
    report = json.loads(out.stdout)
    assert re.search(r"no answer within the deadline to [3-9] orderCreate calls in a row",
                     report["error"]["message"])
    assert report["unconfirmed"] >= 3 and report["failed"] == 0
    assert "stopped sending" in out.stderr


def test_a_tiktok_that_never_answers_ends_the_run(sandbox, sb_cli):
    with_settings(sandbox, network_deadline_seconds=1)
    sandbox.tiktok.set_faults(fail_next=[{"op": "orders.search", "kind": "hang", "handled": False,
                                          "count": 20}])
    out = run(sandbox, "sync-orders")
    assert out.returncode == 1
    assert "no answer within the 1 s deadline" in out.stderr


# --- item 3: links are read at the moment of sending ----------------------------------------------


def test_an_unlink_during_a_run_is_honoured_for_every_order_not_yet_sent(sandbox, sb_cli):
    ids = prepared(sandbox, sb_cli, 6, 400)
    data = yaml.safe_load(sandbox.config_file.read_text())
    data["sync"] = {**(data.get("sync") or {}), "concurrency": 1}
    sandbox.config_file.write_text(yaml.safe_dump(data))
    # Every create takes 2 s, the lookups do not: the test sees the order in flight and the
    # unlink lands long before the next claim, however busy the machine. (A slow first create
    # alone was not enough: another ready order may go first and take it.)
    sandbox.shopify.set_faults(latency_ms=50, fail_next=[{"op": "orderCreate", "kind": "latency",
                                                          "latency_ms": 2000, "count": 10}])
    sku = sandbox.tiktok.order(TEMPLATE)["line_items"][0]["sku_id"]
    proc = subprocess.Popen(python_cmd("--config", str(sandbox.config_file), "sync-orders", "--json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not any(states(sandbox.store_path).get(i) == "creating" for i in ids):
        assert time.monotonic() < deadline, "no order was ever claimed"
        time.sleep(0.02)
    started = time.monotonic()
    unlinked = sb_cli("unlink", sku, "--yes")  # while the first order is in flight
    assert unlinked.exit_code == 0, unlinked.stderr
    took = time.monotonic() - started
    out, err = proc.communicate(timeout=60)
    after = states(sandbox.store_path)
    sent = [i for i in ids if shopify_counts(sandbox)[i]]
    assert len(sent) == 1, (sent, f"the unlink took {took:.1f} s", err)  # only the order in flight went out
    assert all(after[i] == "blocked" for i in ids if i not in sent)
    report = json.loads(out)
    blocked = [o for o in report["orders"] if o["tiktok_order_id"] in ids and o["state"] == "blocked"]
    assert blocked and all(sku in o["missing_sku_ids"] for o in blocked)


# --- item 8: numbers are validated ----------------------------------------------------------------


@pytest.mark.parametrize(("field", "value", "says"), [
    ("sale_price", "1e30", "'1e30', not a plain non-negative amount"),
    ("sale_price", "Infinity", "'Infinity', not a plain non-negative amount"),
    ("sale_price", "NaN", "'NaN', not a plain non-negative amount"),
    ("sale_price", "-5.00", "'-5.00', not a plain non-negative amount"),
    ("sale_price", "12.345", "with more decimals than USD has (2)"),
    ("original_price", 10**13, "larger than any real amount"),
])
def test_an_impossible_amount_makes_the_order_invalid(sandbox, sb_cli, field, value, says):
    prepared(sandbox, sb_cli)
    order = json.loads(json.dumps(sandbox.tiktok.order(TEMPLATE)))
    order.update(id="5770000000000000001", update_time=int(time.time()))
    order["line_items"][0][field] = value
    sandbox.tiktok.set_faults(fail_next=[{"op": "orders.search", "kind": "answer", "handled": False, "body": {
        "code": 0, "message": "Success", "request_id": "R",
        "data": {"orders": [order], "next_page_token": "", "total_count": 1}}}])
    r = sb_cli("sync-orders", "--json")
    assert r.exit_code == 3
    outcome = next(o for o in json.loads(r.stdout)["orders"] if o["tiktok_order_id"] == order["id"])
    assert outcome["state"] == "invalid" and says in outcome["reason"]
    assert shopify_counts(sandbox)[order["id"]] == 0


def test_a_yen_order_with_decimals_is_invalid_and_one_without_is_fine():
    from ecomsend_cli.models import InvalidOrder
    from ecomsend_cli.tiktok_orders import parse_order

    order = {"id": "1", "status": "AWAITING_SHIPMENT", "update_time": 1,
             "payment": {"currency": "JPY", "total_amount": "1500"},
             "line_items": [{"sku_id": "9", "sale_price": "1500", "currency": "JPY"}]}
    assert not isinstance(parse_order(order), InvalidOrder)
    order["line_items"][0]["sale_price"] = "1500.5"
    bad = parse_order(order)
    assert isinstance(bad, InvalidOrder) and "more decimals than JPY has (0)" in bad.reason


def test_orders_lists_a_large_history_as_a_stream(tmp_path, cli):
    """`orders --json` streams: a store of blocked orders lists every one of them (item 4)."""
    from tests.factory import order, sku

    path = tmp_path / "store.db"
    with Store.open(path) as store:
        skus = [sku("1", "A")]
        store.record_orders([(order(f"O{n:05d}", skus), "blocked", "1 unlinked SKU(s): 1", False)
                             for n in range(3000)])
    r = cli("orders", "--state", "blocked", "--json", store=path)
    listed = json.loads(r.stdout)
    assert len(listed) == 3000 and listed[0]["missing_sku_ids"] == ["1"]


def test_sync_summary_shows_a_bounded_table(sandbox, sb_cli):
    prepared(sandbox, sb_cli)
    base = sandbox.tiktok.order("580000000000000002")
    orders = []
    for n in range(60):  # 60 orders blocked by a SKU that matches nothing
        o = json.loads(json.dumps(base))
        o["id"] = f"5660000000000{n:05d}"
        o["update_time"] = int(time.time())
        o["line_items"] = [{**base["line_items"][0], "sku_id": "9990000000000000001",
                            "seller_sku": "NOPE", "id": f"{o['id']}1"}]
        orders.append(o)
    sandbox.tiktok.add_orders(orders)
    r = sb_cli("sync-orders")
    assert r.exit_code == 3
    assert len(r.stdout.strip().splitlines()) == 1 + 50  # the header and 50 orders
    assert re.search(r"… and \d+ more: `ecomsend [^`]*orders --state blocked`", r.stderr)
