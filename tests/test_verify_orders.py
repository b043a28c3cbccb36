"""verify-orders (DESIGN §5.7, issue 10 item 3): the created orders reconcile with TikTok, and an
order changed in Shopify shows up with exactly what changed, both amounts side by side."""

from __future__ import annotations

import json

import pytest

from ecomsend_cli.store import Store


@pytest.fixture
def synced(sandbox, sb_cli):
    """The demo with every linkable order created in Shopify."""
    assert sb_cli("sync-orders").exit_code == 3
    assert sb_cli("autolink", "--yes").exit_code == 0
    assert sb_cli("link", "STK-1", "STK-001").exit_code == 0
    assert sb_cli("sync-orders").exit_code == 3  # the zero-stock socks stay failed
    return sandbox


def created(store_path) -> dict[str, str]:
    with Store.open(store_path) as store:
        return {o.tiktok_order_id: o.shopify_order_id for o in store.orders(states=("synced",))}


def number_of(sandbox, tiktok_order_id: str) -> int:
    return next(o["number"] for o in sandbox.shopify.orders() if o["source_identifier"] == tiktok_order_id)


def test_the_demo_store_reconciles_to_the_cent(synced, sb_cli):
    r = sb_cli("verify-orders", "--json")
    assert r.exit_code == 0, r.stdout
    report = json.loads(r.stdout)
    assert report == {"checked": len(created(synced.store_path)), "differing": 0, "differences": []}
    assert report["checked"] >= 25  # taxes added and included, discounts, JPY, EUR, COD, cancelled lines...
    table = sb_cli("verify-orders")
    assert "match TikTok to the cent" in table.stderr and table.stdout == ""


def test_a_price_changed_in_shopify_is_reported_with_both_amounts(synced, sb_cli):
    order = "580000000000000001"
    synced.shopify.edit_order(number_of(synced, order), line=0, price="1.00")
    r = sb_cli("verify-orders", "--json")
    assert r.exit_code == 3
    report = json.loads(r.stdout)
    assert report["differing"] == 1
    assert {d["tiktok_order_id"] for d in report["differences"]} == {order}
    fields = {d["field"]: d for d in report["differences"]}
    # The lower price moved the total, so the buyer is now owed money (outstanding below 0); nothing else.
    assert set(fields) == {"total", "outstanding"}
    assert fields["outstanding"]["tiktok"] == "0.00 USD" and fields["outstanding"]["shopify"].startswith("-")
    assert fields["total"]["tiktok"] != fields["total"]["shopify"]
    assert fields["total"]["tiktok"].endswith(" USD") and fields["total"]["shopify"].endswith(" USD")
    table = sb_cli("verify-orders")
    assert "1 of" in table.stderr and "differ from TikTok" in table.stderr
    assert order in table.stdout and "total" in table.stdout


def test_a_line_removed_in_shopify_is_reported_as_the_quantity_and_the_money_it_took(synced, sb_cli):
    order = "580000000000000003"  # a multi-unit order
    before = {o["source_identifier"]: o for o in synced.shopify.orders()}[order]
    variant = before["lines"][0]["variant_id"]
    synced.shopify.edit_order(number_of(synced, order), line=0, remove=True)
    report = json.loads(sb_cli("verify-orders", "--json").stdout)
    fields = {d["field"]: d for d in report["differences"] if d["tiktok_order_id"] == order}
    quantity = fields[f"quantity of {variant}"]
    assert (quantity["tiktok"], quantity["shopify"]) == (str(before["lines"][0]["quantity"]), "0")
    assert "total" in fields


def test_an_order_cancelled_in_shopify_but_not_on_tiktok_is_reported(synced, sb_cli):
    order = "580000000000000002"
    synced.shopify.edit_order(number_of(synced, order), cancel=True)
    report = json.loads(sb_cli("verify-orders", "--json").stdout)
    fields = {d["field"]: d for d in report["differences"] if d["tiktok_order_id"] == order}
    assert fields["cancelled"]["tiktok"] == "no" and fields["cancelled"]["shopify"].startswith("yes")


def test_since_limits_the_orders_read_back(synced, sb_cli):
    report = json.loads(sb_cli("verify-orders", "--since", "2999-01-01", "--json").stdout)
    assert report == {"checked": 0, "differing": 0, "differences": []}
    assert "nothing to compare" in sb_cli("verify-orders", "--since", "2999-01-01").stderr


def shop_order(sandbox, tiktok_order_id):
    return next(o for o in sandbox.shopify.orders() if o["source_identifier"] == tiktok_order_id)


def test_every_kind_of_demo_order_arrives_as_its_kind_demands(synced, sb_cli):
    """§5.7/§5.8 end to end: the demo's special orders, as Shopify holds them."""
    states = {o["tiktok_order_id"]: o for o in json.loads(sb_cli("orders", "--json").stdout)}
    fbt = states["580000000000000033"]
    assert fbt["state"] == "skipped" and "fulfilled by TikTok (FBT)" in fbt["reason"]
    gbp = shop_order(synced, "580000000000000028")  # VAT included, in GBP, in a USD shop
    assert (gbp["currency"], gbp["presentment_currency"], gbp["taxes_included"]) == ("USD", "GBP", True)
    yen = shop_order(synced, "580000000000000030")
    assert (yen["currency"], yen["presentment_currency"], yen["outstanding"]) == ("USD", "JPY", "0.0")
    cod = shop_order(synced, "580000000000000035")
    assert cod["financial_status"] == "PENDING" and cod["outstanding"] == cod["total"] != "0.0"
    for tiktok_id, tag in (("580000000000000034", "tiktok-sample"), ("580000000000000036", "tiktok-replacement")):
        assert tag in shop_order(synced, tiktok_id)["tags"]
    cancelled_line = shop_order(synced, "580000000000000032")
    assert sum(x["quantity"] for x in cancelled_line["lines"]) == 2  # the unit TikTok cancelled is left out


def test_with_a_location_fbt_orders_are_created_fulfilled_from_it(sandbox, sb_cli):
    import yaml

    data = yaml.safe_load(sandbox.config_file.read_text())
    warehouse = "gid://shopify/Location/71000000002"  # the simulator's "TikTok FBT warehouse"
    data["sync"] = {**data["sync"], "fbt_location_id": warehouse}
    sandbox.config_file.write_text(yaml.safe_dump(data))
    sb_cli("sync-orders")
    sb_cli("autolink", "--yes")
    sb_cli("link", "STK-1", "STK-001")
    sb_cli("sync-orders")
    stock = {v["variant_id"]: v["locations"] for v in sandbox.shopify.inventory()}
    fbt = shop_order(sandbox, "580000000000000033")
    assert fbt["fulfillment_location"] == warehouse
    assert "tiktok-fbt" in fbt["tags"]
    for line in fbt["lines"]:  # the stock left the warehouse only
        assert stock[line["variant_id"]][warehouse] == 10 - line["quantity"]


def test_doctor_explains_the_60_day_limit_without_read_all_orders(sandbox, sb_cli):
    sandbox.shopify.access_scopes = tuple(s for s in sandbox.shopify.access_scopes if s != "read_all_orders")
    r = sb_cli("doctor", "--json")
    assert r.exit_code == 1
    check = {c["check"]: c for c in json.loads(r.stdout)["checks"]}["read_all_orders"]
    assert not check["ok"] and "the last 60 days of orders" in check["detail"]
    assert "add read_all_orders" in check["fix"]
