"""An order's life after creation (DESIGN §6b), end to end: the real CLI against both simulators
over HTTP on 127.0.0.1 — the TikTok reference, tracking pushed back to TikTok (split shipments,
combined listings, carriers, tracking edits), cancellations and returns brought into Shopify,
and how `orders` shows it all."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

import yaml

from ecomsend_cli.store import Store


def oid(number: int) -> str:
    return f"5800000000000{number:05d}"


def line(number: int, index: int) -> str:
    return f"{oid(number)}{index:02d}"


def sync(sb_cli, *args: str, codes: tuple[int, ...] = (0, 3)) -> dict:
    r = sb_cli("sync-orders", "--json", *args)
    assert r.exit_code in codes, (r.exit_code, r.stderr, r.stdout[-2000:])
    return json.loads(r.stdout)




def shopify_number(synced: dict, order: int) -> int:
    return synced[oid(order)]["number"]


def place(synced: dict, order: int, sku: str) -> int:
    """The 0-based place of the Shopify line of ``sku`` in the Shopify order of TikTok order ``order``."""
    return next(i for i, x in enumerate(synced[oid(order)]["lines"]) if x["sku"] == sku)


def tiktok_lines(sandbox, order: int) -> dict[str, dict]:
    return {x["id"]: x for x in sandbox.tiktok.order(oid(order))["line_items"]}


def pushes(sandbox) -> list[dict]:
    return [e for e in sandbox.tiktok.ops() if e["op"] in ("packages.create", "packages.ship")
            and e["status"] == 200]


def set_config(sandbox, **sections) -> None:
    config = yaml.safe_load(sandbox.config_file.read_text())
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    sandbox.config_file.write_text(yaml.safe_dump(config))


# -- §6b.2 the reference ---------------------------------------------------------------------------


def test_each_created_order_gets_its_shopify_reference_on_tiktok_once(sandbox, sb_cli, synced):
    refs = sandbox.tiktok.external_orders_of(oid(2))
    assert len(refs) == 1
    assert refs[0]["id"] == synced[oid(2)]["id"].rsplit("/", 1)[-1]
    # Every TikTok line item names the Shopify line it became (two units of one variant: one line).
    by_tiktok = {x["origin_id"]: x["id"] for x in refs[0]["line_items"]}
    shopify_line = {x["sku"]: x["id"].rsplit("/", 1)[-1] for x in synced[oid(2)]["lines"]}
    assert by_tiktok == {line(2, 1): shopify_line["TEE-BLK-S"], line(2, 2): shopify_line["TEE-BLK-S"],
                         line(2, 3): shopify_line["TOTE-NAT"]}
    writes = Counter(e["op"] for e in sandbox.tiktok.ops() if e["op"] == "external_orders.add")
    sync(sb_cli)
    assert Counter(e["op"] for e in sandbox.tiktok.ops() if e["op"] == "external_orders.add") == writes
    assert writes["external_orders.add"] == len(synced)


# -- §6b.1 tracking -----------------------------------------------------------------------------------


def test_a_split_shipment_becomes_two_tiktok_packages_with_the_right_lines(sandbox, sb_cli, synced):
    number = shopify_number(synced, 2)
    sandbox.shopify.fulfil(number, [(place(synced, 2, "TEE-BLK-S"), 2)], tracking_number="9400111",
                           company="USPS")
    sandbox.shopify.fulfil(number, [(place(synced, 2, "TOTE-NAT"), 1)], tracking_number="1Z999",
                           company="UPS")
    report = sync(sb_cli)
    assert report["tracking"]["pushed"] == 2 and report["tracking"]["failed"] == 0
    lines = tiktok_lines(sandbox, 2)
    tees = {lines[line(2, 1)]["package_id"], lines[line(2, 2)]["package_id"]}
    assert len(tees) == 1 and None not in tees
    assert lines[line(2, 3)]["package_id"] not in tees | {None}
    assert [lines[line(2, i)]["tracking_number"] for i in (1, 2, 3)] == ["9400111", "9400111", "1Z999"]
    assert sandbox.tiktok.order(oid(2))["status"] == "AWAITING_COLLECTION" or \
        sandbox.tiktok.order(oid(2))["status"] in ("IN_TRANSIT", "SHIPPED")
    made = pushes(sandbox)
    assert len(made) == 2
    # Nothing is pushed twice: the next run finds both done.
    again = sync(sb_cli)
    assert again["tracking"]["pushed"] == 0 and len(pushes(sandbox)) == 2
    shown = json.loads(sb_cli("orders", "--json").stdout)
    mine = next(o for o in shown if o["tiktok_order_id"] == oid(2))
    assert sorted(s["tracking_number"] for s in mine["shipments"]) == ["1Z999", "9400111"]
    assert {s["state"] for s in mine["shipments"]} == {"pushed"}


def test_a_combined_listing_ships_only_when_all_its_parts_have(sandbox, sb_cli, synced):
    # Order 15: one TikTok line item, a combined listing of TEE-BLK-M and TOTE-NAT.
    number = shopify_number(synced, 15)
    sandbox.shopify.fulfil(number, [(place(synced, 15, "TEE-BLK-M"), 1)], tracking_number="TEE-1",
                           company="USPS")
    report = sync(sb_cli)
    assert report["tracking"]["pushed"] == 0
    assert tiktok_lines(sandbox, 15)[line(15, 1)].get("tracking_number") in (None, "")
    sandbox.shopify.fulfil(number, [(place(synced, 15, "TOTE-NAT"), 1)], tracking_number="TOTE-2",
                           company="usps")  # case and punctuation aside, TikTok's USPS
    report = sync(sb_cli)
    assert report["tracking"]["pushed"] == 1
    shipped = tiktok_lines(sandbox, 15)[line(15, 1)]
    assert shipped["tracking_number"] == "TOTE-2" and shipped["package_id"]


def test_an_unknown_carrier_fails_naming_tiktoks_then_an_override_ships_it(sandbox, sb_cli, synced):
    sandbox.shopify.fulfil(shopify_number(synced, 1), tracking_number="AP123", company="Acme Post")
    r = sb_cli("sync-orders")
    assert r.exit_code == 3
    assert "carrier 'Acme Post' is not one of TikTok's for this order (USPS, UPS, FedEx" in r.stderr
    assert "tracking.carriers" in r.stderr
    assert not pushes(sandbox)
    shown = json.loads(sb_cli("orders", "--json").stdout)
    failed = next(o for o in shown if o["tiktok_order_id"] == oid(1))["shipments"]
    assert failed[0]["state"] == "failed" and "Acme Post" in failed[0]["reason"]
    set_config(sandbox, tracking={"carriers": {"Acme Post": "FedEx"}})
    report = sync(sb_cli)
    assert report["tracking"]["pushed"] == 1
    shipped = tiktok_lines(sandbox, 1)[line(1, 1)]
    assert shipped["tracking_number"] == "AP123"
    assert sandbox.tiktok.package(shipped["package_id"])["shipping_provider_name"] == "FedEx"


def test_a_tracking_number_changed_in_shopify_is_changed_on_tiktok(sandbox, sb_cli, synced):
    fulfillment = sandbox.shopify.fulfil(shopify_number(synced, 1), tracking_number="OLD1", company="USPS")
    sync(sb_cli)
    sandbox.shopify.update_tracking(fulfillment["id"], tracking_number="NEW2")
    report = sync(sb_cli)
    assert report["tracking"]["updated"] == 1
    assert tiktok_lines(sandbox, 1)[line(1, 1)]["tracking_number"] == "NEW2"
    assert len([e for e in sandbox.tiktok.ops("shipping_info.update") if e["status"] == 200]) == 1
    assert sync(sb_cli)["tracking"]["updated"] == 0


def test_orders_tiktok_ships_itself_are_not_pushed(sandbox, sb_cli, synced):
    # Order 29 ships with TikTok's label (shipping_type TIKTOK).
    sandbox.shopify.fulfil(shopify_number(synced, 29), tracking_number="X1", company="USPS")
    report = sync(sb_cli)
    assert report["tracking"]["pushed"] == 0 and not pushes(sandbox)
    shown = json.loads(sb_cli("orders", "--json").stdout)
    mine = next(o for o in shown if o["tiktok_order_id"] == oid(29))
    assert "shipping_type TIKTOK" in mine["ship_reason"]


def test_tracking_off_pushes_nothing_but_only_tracking_runs_it(sandbox, sb_cli, synced):
    sandbox.shopify.fulfil(shopify_number(synced, 1), tracking_number="T1", company="USPS")
    set_config(sandbox, sync={"tracking": False})
    report = sync(sb_cli)
    assert "tracking" in report["skipped_phases"] and not pushes(sandbox)
    set_config(sandbox, sync={"tracking": True})
    report = sync(sb_cli, "--only", "tracking")
    assert report["tracking"]["pushed"] == 1
    assert "synced" not in report or report.get("synced") in (None, 0)


# -- §6b.3 cancellations ------------------------------------------------------------------------------


def stock(sandbox) -> dict[str, int]:
    return {v["sku"]: v["inventory_quantity"] for v in sandbox.shopify.inventory()}


def test_an_order_cancelled_on_tiktok_is_cancelled_in_shopify_with_its_stock_back(sandbox, sb_cli, synced):
    before = stock(sandbox)
    sandbox.tiktok.cancel_order(oid(2), initiator="BUYER")
    report = sync(sb_cli)
    assert report["aftersales"]["cancelled"] == 1, report["aftersales"]
    order = next(o for o in sandbox.shopify.orders() if o["source_identifier"] == oid(2))
    assert order["cancelled_at"]
    after = stock(sandbox)
    assert after["TEE-BLK-S"] - before["TEE-BLK-S"] == 2 and after["TOTE-NAT"] - before["TOTE-NAT"] == 1
    cancels = [e for e in sandbox.shopify.ops("orderCancel")]
    assert len(cancels) == 1
    sync(sb_cli)
    assert len(sandbox.shopify.ops("orderCancel")) == 1 and stock(sandbox) == after
    shown = json.loads(sb_cli("orders", "--json").stdout)
    mine = next(o for o in shown if o["tiktok_order_id"] == oid(2))
    assert [(a["kind"], a["state"]) for a in mine["aftersales"]] == [("order_cancel", "done")]


def test_a_cancelled_order_shopify_already_shipped_is_reported_not_cancelled(sandbox, sb_cli, synced):
    sandbox.shopify.fulfil(shopify_number(synced, 20), tracking_number="S1", company="USPS")
    sync(sb_cli, "--only", "orders")
    sandbox.tiktok.cancel_order(oid(20), initiator="BUYER")
    r = sb_cli("sync-orders", "--only", "aftersales")
    assert r.exit_code == 3
    assert "shipped in Shopify, cancelled on TikTok: handle the return" in r.stderr
    assert not sandbox.shopify.ops("orderCancel")


def test_a_cancelled_line_is_refunded_and_restocked_in_shopify(sandbox, sb_cli, synced):
    before = stock(sandbox)
    record = sandbox.tiktok.cancel_line(oid(2), line(2, 3), initiator="SELLER")
    report = sync(sb_cli)
    assert report["aftersales"]["refunded"] == 1, report["aftersales"]
    order = next(o for o in sandbox.shopify.orders() if o["source_identifier"] == oid(2))
    assert not order["cancelled_at"]
    assert stock(sandbox)["TOTE-NAT"] - before["TOTE-NAT"] == 1
    refunded = sum(Decimal(r["amount"]) for r in order["refunds"])
    assert refunded == Decimal(record["refund_amount"]["refund_total"])
    sync(sb_cli)
    assert len([e for e in sandbox.shopify.ops("refundCreate") if e["status"] == 200]) == 1


def test_a_completed_return_is_one_refund_of_tiktoks_amount(sandbox, sb_cli, synced):
    # Order 6 was delivered; the buyer returns the mug.
    before = stock(sandbox)
    record = sandbox.tiktok.complete_return(oid(6), [line(6, 2)])
    report = sync(sb_cli)
    assert report["aftersales"]["refunded"] == 1, report["aftersales"]
    order = next(o for o in sandbox.shopify.orders() if o["source_identifier"] == oid(6))
    assert sum(Decimal(r["amount"]) for r in order["refunds"]) == Decimal(record["refund_amount"]["refund_total"])
    assert stock(sandbox)["MUG-11OZ"] - before["MUG-11OZ"] == 1  # aftersales.restock defaults on
    sync(sb_cli)
    assert len([e for e in sandbox.shopify.ops("refundCreate") if e["status"] == 200]) == 1
    with Store.open(sandbox.store_path) as store:
        (sale,) = store.aftersales_of([oid(6)])[oid(6)]
    assert sale.key == f"tiktok-return-{record['return_id']}" and sale.state == "done"


def test_an_upgraded_store_follows_only_its_recent_orders(tmp_path, monkeypatch):
    """Migration 010 on a store with history: orders synced in the last two weeks get their
    reference and tracking followed; older ones are not read from Shopify at all."""
    from datetime import UTC, datetime, timedelta

    from ecomsend_cli import store as store_module

    path = tmp_path / "old.db"
    names = [name for name, _ in store_module.MIGRATIONS]  # a store of the version before 010
    before = store_module.MIGRATIONS[:names.index("010_after_creation")]
    monkeypatch.setattr(store_module, "MIGRATIONS", before)
    with Store.open(path) as old:
        for order_id, days in (("1", 1), ("2", 13), ("3", 40)):
            at = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
            old.conn.execute(
                "INSERT INTO orders (tiktok_order_id, tiktok_status, state, shopify_order_id, payload, "
                "first_pulled_at, last_pulled_at, state_changed_at, synced_at) "
                "VALUES (?, 'AWAITING_SHIPMENT', 'synced', ?, '', ?, ?, ?, ?)",
                (order_id, f"gid://shopify/Order/{order_id}", at, at, at, at))
        old.conn.commit()
    monkeypatch.undo()
    with Store.open(path) as upgraded:
        states = upgraded.life_states(["1", "2", "3"])
    assert states["1"][0] == states["2"][0] == "pending" and states["1"][2] == states["2"][2] == "open"
    assert states["3"][0] is None and states["3"][2] is None


def test_the_check_for_cancelled_orders_does_not_read_every_order(tmp_path):
    """Every run looks for synced orders TikTok has since cancelled (§6b.3): through an index of
    the cancelled ones, so its work does not grow with the orders kept (a run with nothing to do
    over 50,000 synced orders read them all)."""
    from tests.factory import order, sku

    def check(store: Store) -> tuple[list[str], int]:
        steps = 0

        def step() -> int:
            nonlocal steps
            steps += 1
            return 0  # go on

        store.conn.set_progress_handler(step, 1)  # called at every SQLite VM instruction
        try:
            return store.cancelled_on_tiktok(), steps
        finally:
            store.conn.set_progress_handler(None, 1)

    def synced(store: Store, order_id: str, status: str) -> None:
        store.record_order(order(order_id, [sku("1729001", "A-1")], status=status), state="pending")
        assert store.adopt_order(order_id, f"gid://shopify/Order/{order_id}", f"#{order_id}", reason="")

    with Store.open(tmp_path / "s.db") as store:
        synced(store, "1", "CANCELLED")
        few = check(store)
        for n in range(2, 402):
            synced(store, str(n), "AWAITING_SHIPMENT")
        many = check(store)
    assert few[0] == many[0] == ["1"]
    assert many[1] == few[1]  # the same work for 1 order as for 401
