"""The TikTok simulator's orders after creation (DESIGN §6b, §8), over real HTTP on 127.0.0.1:
shipping providers, packages, tracking edits, external references, cancellations and returns,
the operator actions that make them happen, and the fault plan on every new operation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from ecomsend_cli.errors import ApiError, OutcomeUnknownError, PagingError
from ecomsend_cli.sandbox.seed import DELIVERY_OPTIONS, demo_seed
from ecomsend_cli.sandbox.tiktok_sim import TikTokSimulator
from ecomsend_cli.tiktok import TikTokClient
from tests.test_tiktok_sim import client_for

NOW = int(time.time())
STANDARD, EXPRESS = DELIVERY_OPTIONS[0]["id"], DELIVERY_OPTIONS[1]["id"]
USPS, UPS = "7117858858072016686", "7117858858072016687"


def oid(number: int) -> str:
    return f"5800000000000{number:05d}"


def line(number: int, index: int) -> str:
    return f"{oid(number)}{index:02d}"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[TikTokSimulator]:
    seed = demo_seed(NOW)
    with TikTokSimulator(tmp_path / "tiktok.db", products=seed["tiktok_products"], orders=seed["tiktok_orders"],
                         delivery_options=seed["tiktok_delivery_options"]) as running:
        yield running


@pytest.fixture
def client(sim: TikTokSimulator) -> Iterator[TikTokClient]:
    with client_for(sim) as opened:
        yield opened


def refused(call, code: int | str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    assert caught.value.code == code, caught.value.message
    assert not isinstance(caught.value, OutcomeUnknownError)
    return caught.value


# -- logistics ------------------------------------------------------------------------------------

def test_each_delivery_option_offers_its_shipping_providers(client: TikTokClient, sim: TikTokSimulator) -> None:
    standard = client.shipping_providers(STANDARD)
    assert [p["name"] for p in standard] == ["USPS", "UPS", "FedEx", "DHL eCommerce", "TT Virtual express"]
    assert all(p["id"].isdigit() and len(p["id"]) == 19 for p in standard)
    assert [p["name"] for p in client.shipping_providers(EXPRESS)] == ["USPS", "UPS", "FedEx"]
    refused(lambda: client.shipping_providers("7091146663229650000"), 36009004)
    assert [e["status"] for e in sim.ops("shipping_providers.get")] == [200, 200, 400]


def test_delivery_options_can_be_added_over_http(client: TikTokClient, sim: TikTokSimulator) -> None:
    answer = httpx.post(sim.url + "/_sandbox/delivery_options", json={"delivery_options": [
        {"id": "42", "name": "Economy", "shipping_providers": [{"id": "9", "name": "Royal Mail"}]}]})
    assert answer.json() == {"ids": ["42"]}
    assert client.shipping_providers("42") == [{"id": "9", "name": "Royal Mail"}]


# -- Mark Package As Shipped ------------------------------------------------------------------------

def test_a_split_shipment_makes_two_packages_and_moves_the_order_on(client: TikTokClient,
                                                                     sim: TikTokSimulator) -> None:
    before = sim.order(oid(2))
    first = client.create_package_and_ship(oid(2), [line(2, 1)], "9400100000000000000001", USPS)
    (order,) = client.get_orders([oid(2)])
    assert order["status"] == "PARTIALLY_SHIPPING" and order["update_time"] > before["update_time"]
    shipped, waiting = order["line_items"][0], order["line_items"][1:]
    assert {k: shipped[k] for k in ("package_id", "package_status", "tracking_number", "shipping_provider_id",
                                    "shipping_provider_name")} == {
        "package_id": first, "package_status": "PROCESSING", "tracking_number": "9400100000000000000001",
        "shipping_provider_id": USPS, "shipping_provider_name": "USPS"}
    assert shipped["rts_time"] >= NOW
    assert all("package_id" not in w and "tracking_number" not in w for w in waiting)
    assert order["packages"] == [{"id": first}] and order["tracking_number"] == "9400100000000000000001"

    second = client.create_package_and_ship(oid(2), [line(2, 2), line(2, 3)], "1Z999AA10123456784", UPS)
    (order,) = client.get_orders([oid(2)])
    assert second != first and len(second) == 19
    assert order["status"] == "AWAITING_COLLECTION"
    assert [li["package_id"] for li in order["line_items"]] == [first, second, second]
    assert order["packages"] == [{"id": first}, {"id": second}]
    assert order["shipping_provider"] == "UPS" and order["shipping_provider_id"] == UPS
    assert sim.package(second)["line_item_ids"] == [line(2, 2), line(2, 3)]
    assert len(sim.ops("packages.create")) == 2


def test_no_line_ids_ships_every_line_left(sim: TikTokSimulator) -> None:
    # TikTok's body may leave order_line_item_ids out (the client always names them).
    with client_for(sim) as raw:
        data = raw.request("POST", f"/fulfillment/202309/orders/{oid(32)}/packages",
                           body={"tracking_number": "T-32", "shipping_provider_id": USPS}, idempotent=False)
    assert data["order_line_item_ids"] == [line(32, 2), line(32, 3)]  # the cancelled unit stays out
    assert sim.order(oid(32))["status"] == "AWAITING_COLLECTION"


@pytest.mark.parametrize(("order", "lines", "provider", "code", "says"), [
    (2, ["NOT-A-LINE"], USPS, 21011002, "does not belong"),
    (32, [line(32, 1)], USPS, 21011002, "cancelled"),
    (4, [line(4, 1)], USPS, 21011002, "already shipped"),
    (30, [line(30, 1)], USPS, 21011002, "Ship Package"),
    (2, [line(2, 1)], "7117858858072016689" + "0", 21011004, "not offered"),
    (35, [line(35, 1)], "7117858858072016689", 0, ""),  # DHL eCommerce: offered on standard
    (10, [line(10, 1)], USPS, 21011001, "CANCELLED"),
    (8, [line(8, 1)], USPS, 21011001, "UNPAID"),
    (29, [line(29, 1)], USPS, 21008106, "business type"),
    (33, [line(33, 1)], USPS, 21008106, "business type"),
])
def test_lines_that_cannot_ship_are_refused_with_tiktoks_envelope(client: TikTokClient, sim: TikTokSimulator,
                                                                 order, lines, provider, code, says) -> None:
    before = sim.order(oid(order))
    if code == 0:
        assert client.create_package_and_ship(oid(order), lines, "T-1", provider)
        return
    error = refused(lambda: client.create_package_and_ship(oid(order), lines, "T-1", provider), code)
    assert says in error.message and error.request_id
    assert sim.order(oid(order)) == before  # nothing changed
    assert sim.ops("packages.create")[-1]["status"] == 400


def test_an_unknown_order_or_a_missing_tracking_number_is_an_invalid_parameter(client: TikTokClient,
                                                                               sim: TikTokSimulator) -> None:
    refused(lambda: client.create_package_and_ship("999", ["1"], "T", USPS), 36009004)
    with client_for(sim) as raw:
        refused(lambda: raw.request("POST", f"/fulfillment/202309/orders/{oid(1)}/packages", idempotent=False,
                                    body={"order_line_item_ids": [line(1, 1)], "shipping_provider_id": USPS}),
                36009004)


# -- Ship Package, carriers, tracking edits ---------------------------------------------------------

def test_a_package_tiktok_made_at_order_time_is_shipped_once(client: TikTokClient, sim: TikTokSimulator) -> None:
    (order,) = client.get_orders([oid(30)])
    package_id = order["line_items"][0]["package_id"]
    assert {li["package_id"] for li in order["line_items"]} == {package_id}
    assert order["line_items"][0]["package_status"] == "TO_FULFILL"
    client.ship_package(package_id, "JP-TRACK-1", UPS)
    (order,) = client.get_orders([oid(30)])
    assert order["status"] == "AWAITING_COLLECTION"
    assert {(li["package_status"], li["tracking_number"], li["shipping_provider_name"])
            for li in order["line_items"]} == {("PROCESSING", "JP-TRACK-1", "UPS")}
    error = refused(lambda: client.ship_package(package_id, "JP-TRACK-2", UPS), 21011003)
    assert "already been shipped" in error.message
    refused(lambda: client.ship_package("1153999999999999999", "X", UPS), 36009004)


def test_ship_package_needs_a_self_shipment(sim: TikTokSimulator) -> None:
    package_id = sim.order(oid(30))["line_items"][0]["package_id"]
    with client_for(sim) as raw:
        refused(lambda: raw.request("POST", f"/fulfillment/202309/packages/{package_id}/ship",
                                    body={"handover_method": "PICKUP"}, idempotent=False), 36009004)


def test_tracking_can_change_within_72_hours_of_shipping_and_not_after(client: TikTokClient,
                                                                       sim: TikTokSimulator) -> None:
    package_id = client.create_package_and_ship(oid(1), [line(1, 1)], "WRONG-NUMBER", USPS)
    stamp = sim.order(oid(1))["update_time"]
    client.update_shipping_info(package_id, "RIGHT-NUMBER", UPS)
    (order,) = client.get_orders([oid(1)])
    assert order["line_items"][0]["tracking_number"] == "RIGHT-NUMBER"
    assert order["line_items"][0]["shipping_provider_name"] == "UPS"
    assert order["tracking_number"] == "RIGHT-NUMBER" and order["update_time"] > stamp
    refused(lambda: client.update_shipping_info(package_id, "X", "123"), 21011004)

    # 73 hours later (the operator control moves the ship time back, over HTTP).
    answer = httpx.post(f"{sim.url}/_sandbox/packages/{package_id}", json={"rts_time": int(time.time()) - 73 * 3600})
    assert answer.status_code == 200 and answer.json()["line_item_ids"] == [line(1, 1)]
    error = refused(lambda: client.update_shipping_info(package_id, "LATE-NUMBER", USPS), 21011005)
    assert "72 hours" in error.message
    assert sim.order(oid(1))["line_items"][0]["tracking_number"] == "RIGHT-NUMBER"


def test_a_package_not_yet_shipped_has_no_tracking_to_update(client: TikTokClient, sim: TikTokSimulator) -> None:
    package_id = sim.order(oid(30))["line_items"][0]["package_id"]
    refused(lambda: client.update_shipping_info(package_id, "T", USPS), 21011003)


def test_the_carrier_collecting_and_delivering_moves_the_order(client: TikTokClient, sim: TikTokSimulator) -> None:
    package_id = client.create_package_and_ship(oid(1), [line(1, 1)], "T-1", USPS)
    assert sim.update_package(package_id, package_status="FULFILLING")["package_status"] == "FULFILLING"
    (order,) = client.get_orders([oid(1)])
    assert order["status"] == "IN_TRANSIT" and order["line_items"][0]["display_status"] == "SHIPPED"
    sim.update_package(package_id, package_status="COMPLETED")
    assert sim.order(oid(1))["status"] == "DELIVERED"
    with pytest.raises(ValueError):
        sim.update_package(package_id, package_status="LOST")
    assert httpx.get(f"{sim.url}/_sandbox/packages/none").status_code == 404


# -- external order references ----------------------------------------------------------------------

def test_an_external_reference_is_stored_read_back_and_replaced(client: TikTokClient, sim: TikTokSimulator) -> None:
    stamp = sim.order(oid(2))["update_time"]
    assert client.external_orders(oid(2)) == []
    client.add_external_order(oid(2), "gid://shopify/Order/5500000002",
                              [("700001", line(2, 1)), ("700001", line(2, 2)), ("700002", line(2, 3))])
    expected = {"id": "5500000002", "platform": "SHOPIFY", "line_items": [
        {"id": "700001", "origin_id": line(2, 1)}, {"id": "700001", "origin_id": line(2, 2)},
        {"id": "700002", "origin_id": line(2, 3)}]}
    assert client.external_orders(oid(2)) == [expected]
    assert client.external_orders(oid(2), platform="WOOCOMMERCE") == []
    assert sim.order(oid(2))["update_time"] == stamp  # a reference does not touch the order
    client.add_external_order(oid(2), "5500000099", [])
    assert [r["id"] for r in client.external_orders(oid(2))] == ["5500000099"]
    assert httpx.get(f"{sim.url}/_sandbox/orders/{oid(2)}/external_orders").json()["external_orders"][0]["id"] \
        == "5500000099"
    assert len(sim.ops("external_orders.add")) == 2 and len(sim.ops("external_orders.get")) == 4


def test_a_reference_tiktok_cannot_take_is_listed_in_errors(client: TikTokClient, sim: TikTokSimulator) -> None:
    error = refused(lambda: client.add_external_order("576000000000000000", "1", []), 36020001)
    assert "Invalid order_id" in error.message
    refused(lambda: client.add_external_order(oid(2), "1", [("5", "NOT-A-TIKTOK-LINE")]), 36020003)
    assert sim.external_orders_of(oid(2)) == []
    assert all(e["code"] == 0 for e in sim.ops("external_orders.add"))  # code 0, errors in data
    refused(lambda: client.external_orders("576000000000000000"), 36009004)


# -- cancellations ------------------------------------------------------------------------------------

def cancellations(client: TikTokClient, since: int) -> list[dict]:
    return [c for page in client.search_cancellations(update_time_ge=since) for c in page]


def test_a_whole_order_cancelled_on_tiktok(client: TikTokClient, sim: TikTokSimulator) -> None:
    before = sim.order(oid(27))  # Colorado: item tax, shipping tax, retail delivery fee
    answer = httpx.post(f"{sim.url}/_sandbox/orders/{oid(27)}/cancel",
                        json={"initiator": "BUYER", "reason_text": "Ordered by mistake"})
    assert answer.status_code == 200
    record = answer.json()
    (order,) = client.get_orders([oid(27)])
    assert order["status"] == "CANCELLED" and order["update_time"] > before["update_time"]
    assert order["cancellation_initiator"] == "BUYER" and order["cancel_reason"] == "Ordered by mistake"
    assert {li["display_status"] for li in order["line_items"]} == {"CANCELLED"}

    assert cancellations(client, before["update_time"]) == [record]
    assert record["order_id"] == oid(27) and len(record["cancel_id"]) == 19
    assert (record["cancel_type"], record["cancel_status"], record["role"]) == (
        "BUYER_CANCEL", "CANCELLATION_REQUEST_COMPLETE", "BUYER")
    assert record["cancel_reason_text"] == "Ordered by mistake" and record["update_time"] >= NOW
    pay = before["payment"]
    assert record["refund_amount"] == {
        "currency": "USD", "refund_total": pay["total_amount"], "refund_subtotal": pay["sub_total"],
        "refund_shipping_fee": pay["shipping_fee"], "refund_tax": pay["tax"],
        "retail_delivery_fee": pay["retail_delivery_fee"]}
    assert [li["order_line_item_id"] for li in record["cancel_line_items"]] == [li["id"] for li in order["line_items"]]
    first = record["cancel_line_items"][0]
    assert first["sku_id"] == order["line_items"][0]["sku_id"] and first["cancel_line_item_id"]
    tax = order["line_items"][0]["item_tax"][0]["tax_amount"]
    assert Decimal(first["refund_amount"]["refund_total"]) == (
        Decimal(order["line_items"][0]["sale_price"]) + Decimal(tax))
    # A search of orders by update time sees the cancelled order too.
    found = [o["id"] for page in client.search_orders(update_time_ge=order["update_time"]) for o in page]
    assert oid(27) in found


def test_a_cancelled_order_cannot_be_cancelled_again_or_shipped(client: TikTokClient, sim: TikTokSimulator) -> None:
    sim.cancel_order(oid(1), initiator="SELLER")
    with pytest.raises(ValueError):
        sim.cancel_order(oid(1))
    assert httpx.post(f"{sim.url}/_sandbox/orders/{oid(5)}/cancel", json={}).status_code == 400  # in transit
    assert httpx.post(f"{sim.url}/_sandbox/orders/{oid(1)}/cancel", json={"initiator": "X"}).status_code == 400
    refused(lambda: client.create_package_and_ship(oid(1), [line(1, 1)], "T", USPS), 21011001)
    (record,) = sim.cancellations(oid(1))
    assert record["cancel_type"] == "CANCEL" and record["role"] == "SELLER"


def test_an_order_with_a_unit_cancelled_before_refunds_only_what_was_paid(sim: TikTokSimulator) -> None:
    before = sim.order(oid(32))
    record = sim.cancel_order(oid(32), initiator="SYSTEM")
    assert record["refund_amount"]["refund_total"] == before["payment"]["total_amount"]
    refunds = [li["refund_amount"]["refund_total"] for li in record["cancel_line_items"]]
    assert refunds[0] == "0" and all(Decimal(r) > 0 for r in refunds[1:])


def test_one_line_cancelled_on_tiktok(client: TikTokClient, sim: TikTokSimulator) -> None:
    before = sim.order(oid(22))  # five totes
    answer = httpx.post(f"{sim.url}/_sandbox/orders/{oid(22)}/line_items/{line(22, 5)}/cancel",
                        json={"initiator": "SELLER", "reason_text": "Out of stock"})
    assert answer.status_code == 200
    record = answer.json()
    after = sim.order(oid(22))
    assert after["status"] == "AWAITING_SHIPMENT" and after["update_time"] > before["update_time"]
    assert [li["display_status"] for li in after["line_items"]] == ["TO_SHIP"] * 4 + ["CANCELLED"]
    unit = before["line_items"][4]
    unit_total = Decimal(unit["sale_price"]) + sum(Decimal(t["tax_amount"]) for t in unit["item_tax"])
    assert record["refund_amount"]["refund_total"] == str(unit_total)
    assert record["refund_amount"]["refund_subtotal"] == unit["sale_price"]
    assert [li["order_line_item_id"] for li in record["cancel_line_items"]] == [line(22, 5)]
    assert record["cancel_line_items"][0]["refund_amount"] == record["refund_amount"]
    assert Decimal(after["payment"]["total_amount"]) == Decimal(before["payment"]["total_amount"]) - unit_total
    assert Decimal(after["payment"]["sub_total"]) == Decimal(before["payment"]["sub_total"]) - Decimal(
        unit["sale_price"])
    assert cancellations(client, before["update_time"]) == [record]


def test_a_vat_line_refunds_its_price_with_the_tax_inside(sim: TikTokSimulator) -> None:
    before = sim.order(oid(28))  # UK, VAT included
    record = sim.cancel_line(oid(28), line(28, 2))
    unit = before["line_items"][1]
    assert record["refund_amount"]["currency"] == "GBP"
    assert record["refund_amount"]["refund_total"] == unit["sale_price"]
    assert record["refund_amount"]["refund_tax"] == unit["item_tax"][0]["tax_amount"]
    assert Decimal(sim.order(oid(28))["payment"]["total_amount"]) == (
        Decimal(before["payment"]["total_amount"]) - Decimal(unit["sale_price"]))


def test_lines_that_cannot_be_cancelled_alone(client: TikTokClient, sim: TikTokSimulator) -> None:
    with pytest.raises(ValueError, match="last live line"):
        sim.cancel_line(oid(1), line(1, 1))
    with pytest.raises(ValueError, match="already cancelled"):
        sim.cancel_line(oid(32), line(32, 1))
    client.create_package_and_ship(oid(2), [line(2, 1)], "T", USPS)
    with pytest.raises(ValueError, match="shipped"):
        sim.cancel_line(oid(2), line(2, 1))
    with pytest.raises(KeyError):
        sim.cancel_line(oid(2), "NO-SUCH-LINE")
    # The last unshipped line cancelled: the order has shipped all it still holds.
    sim.cancel_line(oid(2), line(2, 2))
    sim.cancel_line(oid(2), line(2, 3))
    assert sim.order(oid(2))["status"] == "AWAITING_COLLECTION"


# -- returns ------------------------------------------------------------------------------------------

def returns(client: TikTokClient, since: int) -> list[dict]:
    return [r for page in client.search_returns(update_time_ge=since) for r in page]


def test_a_completed_return_of_a_delivered_order(client: TikTokClient, sim: TikTokSimulator) -> None:
    before = sim.order(oid(6))
    answer = httpx.post(f"{sim.url}/_sandbox/orders/{oid(6)}/returns",
                        json={"line_item_ids": [line(6, 2)], "return_type": "RETURN_AND_REFUND"})
    assert answer.status_code == 200
    record = answer.json()
    assert sim.order(oid(6)) == before  # the order is left as it was
    assert returns(client, NOW - 60) == [record]
    assert (record["return_type"], record["return_status"], record["role"]) == (
        "RETURN_AND_REFUND", "RETURN_OR_REFUND_REQUEST_COMPLETE", "BUYER")
    unit = before["line_items"][1]
    unit_total = Decimal(unit["sale_price"]) + sum(Decimal(t["tax_amount"]) for t in unit["item_tax"])
    assert Decimal(record["refund_amount"]["refund_total"]) == unit_total
    assert record["refund_amount"]["refund_shipping_fee"] == "0"
    (item,) = record["return_line_items"]
    assert item["order_line_item_id"] == line(6, 2) and item["sku_id"] == unit["sku_id"]
    assert item["return_line_item_id"] and item["refund_amount"] == record["refund_amount"]
    with pytest.raises(ValueError, match="already in a return"):
        sim.complete_return(oid(6), [line(6, 2)])


def test_a_refund_only_with_shipping_and_a_replacement(sim: TikTokSimulator) -> None:
    order = sim.order(oid(19))
    refund = sim.complete_return(oid(19), return_type="REFUND", refund_shipping=True)
    pay = order["payment"]
    assert refund["refund_amount"]["refund_shipping_fee"] == pay["shipping_fee"]
    assert refund["can_buyer_keep_item"] is True
    expected = (Decimal(pay["sub_total"]) + Decimal(pay["shipping_fee"]) + Decimal(pay["tax"]))
    assert Decimal(refund["refund_amount"]["refund_total"]) == expected
    replacement = sim.complete_return(oid(26), [line(26, 1)], return_type="REPLACEMENT",
                                      status="REPLACEMENT_REQUEST_COMPLETE")
    assert replacement["refund_amount"]["refund_total"] == "0"


def test_an_unshipped_line_cannot_be_returned(sim: TikTokSimulator) -> None:
    with pytest.raises(ValueError, match="has not shipped"):
        sim.complete_return(oid(4), [line(4, 2)])  # PARTIALLY_SHIPPING: the second case has not left
    assert sim.complete_return(oid(4), [line(4, 1)])["return_line_items"][0]["order_line_item_id"] == line(4, 1)
    assert httpx.post(f"{sim.url}/_sandbox/orders/{oid(1)}/returns", json={}).status_code == 400


def test_status_changes_move_the_record_and_take_both_spellings(client: TikTokClient, sim: TikTokSimulator) -> None:
    pending = sim.complete_return(oid(7), status="RETURN_OR_REFUND_REQUEST_PENDING")
    done = httpx.post(f"{sim.url}/_sandbox/returns/{pending['return_id']}",
                      json={"status": "RETURN_OR_REFUND_REQUEST_COMPLETE"}).json()
    assert done["update_time"] > pending["update_time"]
    assert returns(client, done["update_time"]) == [done]
    for spelling in ("RETURN_OR_REFUND_REQUEST_CANCEL", "RETURN_OR_REFUND_REQUEST_CANCELLED"):
        assert sim.set_return_status(done["return_id"], spelling)["return_status"] == spelling
    with pytest.raises(ValueError):
        sim.set_return_status(done["return_id"], "SOMETHING_ELSE")
    record = sim.cancel_order(oid(1))
    moved = httpx.post(f"{sim.url}/_sandbox/cancellations/{record['cancel_id']}",
                       json={"status": "CANCELLATION_REQUEST_CANCELLED"}).json()
    assert moved["cancel_status"] == "CANCELLATION_REQUEST_CANCELLED" and moved["update_time"] > record["update_time"]
    listed = httpx.get(f"{sim.url}/_sandbox/cancellations", params={"order_id": oid(1)}).json()["cancellations"]
    assert listed == [moved]
    assert httpx.get(f"{sim.url}/_sandbox/returns").json()["returns"][0]["return_id"] == pending["return_id"]


# -- searching and paging -------------------------------------------------------------------------

def test_aftersales_search_pages_by_update_time_and_filters(client: TikTokClient, sim: TikTokSimulator) -> None:
    made = [sim.complete_return(oid(n), return_type="REFUND") for n in (5, 6, 7, 16, 19, 21, 26, 31, 33)]
    pages = list(client.search_returns(update_time_ge=NOW - 60, page_size=4))
    assert [len(p) for p in pages] == [4, 4, 1]
    listed = [r for p in pages for r in p]
    assert sorted(r["return_id"] for r in listed) == sorted(r["return_id"] for r in made)
    keys = [(r["update_time"], r["return_id"]) for r in listed]
    assert keys == sorted(keys)
    assert list(client.search_returns(update_time_ge=NOW + 3600)) == []
    with client_for(sim) as raw:
        data = raw.request("POST", "/return_refund/202309/returns/search", query={"page_size": 50},
                           body={"order_ids": [oid(6)], "return_status": ["RETURN_OR_REFUND_REQUEST_COMPLETE"]})
        assert [r["order_id"] for r in data["return_orders"]] == [oid(6)] and data["total_count"] == 1
        refused(lambda: raw.request("POST", "/return_refund/202309/cancellations/search",
                                    query={"page_size": 51}, body={}), 36009004)


def test_paging_faults_bend_the_aftersales_searches_too(client: TikTokClient, sim: TikTokSimulator) -> None:
    sim.cancel_order(oid(1))
    sim.set_faults(paging_fault="endless")
    with pytest.raises(PagingError, match="no new cancellation"):
        list(client.search_cancellations(update_time_ge=0))
    sim.set_faults(paging_fault="cycle")
    with pytest.raises(PagingError):
        list(client.search_returns(update_time_ge=0))


# -- the fault plan on the new operations ------------------------------------------------------

def test_a_lost_answer_to_a_shipment_is_an_unknown_outcome_and_the_package_exists(client: TikTokClient,
                                                                                 sim: TikTokSimulator) -> None:
    sim.set_faults(fail_next=[{"op": "packages.create", "kind": "lost_response"}])
    with pytest.raises(OutcomeUnknownError):
        client.create_package_and_ship(oid(1), [line(1, 1)], "LOST-1", USPS)
    assert [e["fault"] for e in sim.ops("packages.create")] == ["lost_response"]  # sent once
    (order,) = client.get_orders([oid(1)])  # what the caller does next: look it up
    assert order["line_items"][0]["tracking_number"] == "LOST-1" and order["line_items"][0]["package_id"]


@pytest.mark.parametrize(("op", "call"), [
    ("packages.ship", lambda c, s: c.ship_package(s.order(oid(30))["line_items"][0]["package_id"], "T", USPS)),
    ("external_orders.add", lambda c, s: c.add_external_order(oid(1), "55", [("66", line(1, 1))])),
    ("packages.create", lambda c, s: c.create_package_and_ship(oid(1), [line(1, 1)], "T", USPS)),
])
@pytest.mark.parametrize("fault", [
    {"kind": "answer", "handled": False, "status": 502, "body": "<html>Bad gateway</html>"},
    {"kind": "answer", "handled": True, "status": 200, "body": {"unexpected": True}},
    {"kind": "drop"},
    {"kind": "truncated"},
    {"kind": "error", "status": 500},
])
def test_every_unclear_answer_to_a_write_is_unknown_and_sent_once(client: TikTokClient, sim: TikTokSimulator,
                                                                 op, call, fault) -> None:
    sim.set_faults(fail_next=[{"op": op, **fault}])
    with pytest.raises(OutcomeUnknownError):
        call(client, sim)
    assert len(sim.ops(op)) == 1
    # Whether it happened is what the simulator did: handled faults ran, the others did not.
    ran = fault["kind"] in ("truncated",) or fault.get("handled") is True
    if op == "external_orders.add":
        assert bool(sim.external_orders_of(oid(1))) == ran
    else:
        order = sim.order(oid(30) if op == "packages.ship" else oid(1))
        assert (order["line_items"][0].get("package_status") == "PROCESSING") == ran


def test_a_slow_hang_on_a_write_ends_at_the_deadline_as_unknown(sim: TikTokSimulator) -> None:
    sim.set_faults(fail_next=[{"op": "shipping_info.update", "kind": "trickle", "bytes_per_second": 20}])
    with client_for(sim) as client:
        package_id = client.create_package_and_ship(oid(1), [line(1, 1)], "T", USPS)
    with client_for(sim, deadline=0.5) as impatient:
        with pytest.raises(OutcomeUnknownError) as caught:
            impatient.update_shipping_info(package_id, "T2", USPS)
    assert caught.value.code == "deadline"
    assert sim.order(oid(1))["line_items"][0]["tracking_number"] == "T2"  # it ran all the same
    assert len(sim.ops("shipping_info.update")) == 1


def test_throttled_writes_are_sent_again_and_done_once(client: TikTokClient, sim: TikTokSimulator) -> None:
    sim.set_faults(fail_next=[{"op": "external_orders.add", "kind": "rate_limit", "count": 2}])
    client.add_external_order(oid(1), "55", [("66", line(1, 1))])
    assert [e["status"] for e in sim.ops("external_orders.add")] == [429, 429, 200]
    assert len(sim.external_orders_of(oid(1))) == 1


@pytest.mark.parametrize(("op", "call"), [
    ("shipping_providers.get", lambda c: c.shipping_providers(STANDARD)),
    ("external_orders.get", lambda c: c.external_orders(oid(1))),
    ("cancellations.search", lambda c: list(c.search_cancellations(update_time_ge=0))),
    ("returns.search", lambda c: list(c.search_returns(update_time_ge=0))),
])
def test_reads_ride_out_faults(client: TikTokClient, sim: TikTokSimulator, op, call) -> None:
    sim.set_faults(fail_next=[{"op": op, "kind": "error", "status": 503}, {"op": op, "kind": "lost_response"},
                              {"op": op, "kind": "answer", "body": "<html>", "status": 502}])
    call(client)
    assert [e["fault"] for e in sim.ops(op)] == ["error", "lost_response", "answer", None]


def test_the_new_state_survives_a_restart(tmp_path: Path) -> None:
    seed = demo_seed(NOW)
    options = {"orders": seed["tiktok_orders"], "delivery_options": seed["tiktok_delivery_options"]}
    with TikTokSimulator(tmp_path / "t.db", **options) as first, client_for(first) as client:
        package_id = client.create_package_and_ship(oid(1), [line(1, 1)], "T", USPS)
        client.add_external_order(oid(2), "55", [])
        first.cancel_order(oid(22))
        first.complete_return(oid(6))
    with TikTokSimulator(tmp_path / "t.db", **options) as second, client_for(second) as client:
        assert second.package(package_id)["order_id"] == oid(1)
        assert client.external_orders(oid(2))[0]["id"] == "55"
        assert len(cancellations(client, 0)) == 1 and len(returns(client, 0)) == 1
        assert client.shipping_providers(EXPRESS)
        assert client.create_package_and_ship(oid(2), [line(2, 1)], "T", USPS) != package_id


# -- the demo seed --------------------------------------------------------------------------------

def test_the_demo_seed_ships_what_has_shipped_and_offers_carriers() -> None:
    seed = demo_seed(NOW)
    options = {o["id"] for o in seed["tiktok_delivery_options"]}
    for order in seed["tiktok_orders"]:
        assert order["delivery_option_id"] in options
        assert order["shipping_type"] == ("TIKTOK" if order["id"] == oid(29) else "SELLER")
        live = [li for li in order["line_items"] if li["display_status"] != "CANCELLED"]
        tracked = [li for li in live if li.get("tracking_number")]
        if order["status"] in ("AWAITING_COLLECTION", "IN_TRANSIT", "DELIVERED", "COMPLETED"):
            assert tracked == live and order["tracking_number"] and order["packages"]
            assert {li["shipping_provider_name"] for li in tracked} == {"USPS"}
        elif order["status"] == "PARTIALLY_SHIPPING":
            assert 0 < len(tracked) < len(live)
        else:
            assert tracked == [] and "tracking_number" not in order
    packed = next(o for o in seed["tiktok_orders"] if o["id"] == oid(30))
    assert {(li["package_status"], li.get("tracking_number")) for li in packed["line_items"]} == {("TO_FULFILL", None)}


def test_the_sandbox_serves_the_demo_carriers(sandbox) -> None:
    with client_for(sandbox.tiktok) as client:
        assert "USPS" in {p["name"] for p in client.shipping_providers(STANDARD)}


def test_an_expired_token_refused_the_write_so_it_is_sent_again_once(client: TikTokClient,
                                                                    sim: TikTokSimulator) -> None:
    sim.expire_access_token()
    package_id = client.create_package_and_ship(oid(1), [line(1, 1)], "T-1", USPS)
    assert [e.get("code") for e in sim.ops("packages.create")] == [105002, 0]
    assert len(sim.ops("token.refresh")) == 1
    assert sim.order(oid(1))["packages"] == [{"id": package_id}]
