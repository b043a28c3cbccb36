"""An accountant's and an attacker's pass over issue 10 (DESIGN §5.7, §5.8): orders TikTok
documents that the first build copied wrongly, and verify-orders reports it got wrong.

Each case is a TikTok order as TikTok's Get Order Detail (202309) documents its
fields, built by the real ``build_order_input`` or synced and verified by the
real CLI against the sandbox simulators.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest

from ecomsend_cli.order_input import shipping_address
from ecomsend_cli.sandbox.shopify_money import order_money
from tests.test_order_input import build, us_order

# --- people -----------------------------------------------------------------------------------


def test_a_masked_phone_is_never_sent_as_the_customers_phone():
    """TikTok masks the phone of orders shipped with its logistics ("(+1)213-***-1234", its own
    documented example). OrderCreateOrderInput.phone is the new *customer's* phone, which
    Shopify keeps unique and in E.164 form: a masked one is refused ("Phone is invalid"), and
    two buyers whose masks coincide would collide ("has already been taken"). The address
    keeps whatever TikTok gave; the customer phone only a real E.164 number."""
    order = us_order()
    order["recipient_address"]["phone_number"] = "(+1)213-***-1234"
    data = build(order)
    assert "phone" not in data
    assert data["shippingAddress"]["phone"] == "(+1)213-***-1234"
    order["recipient_address"]["phone_number"] = "+13035550100"
    assert build(order)["phone"] == "+13035550100"


def test_a_uk_post_town_given_as_its_own_field_is_the_city():
    """TikTok added ``recipient_address.post_town`` for UK addresses (changelog "Post town added
    for UK recipient addresses"); district_info need not carry it as a level."""
    address = shipping_address({
        "name": "Olivia Hughes", "region_code": "GB", "post_town": "Preston", "postal_code": "PR2 6BL",
        "district_info": [
            {"address_level": "L0", "address_level_name": "Country", "address_name": "United Kingdom"},
            {"address_level": "L1", "address_level_name": "Nation", "address_name": "England",
             "iso_code": "GB-ENG"},
            {"address_level": "L2", "address_level_name": "County", "address_name": "Lancashire"},
        ]})
    assert address["city"] == "Preston"


@pytest.mark.parametrize(("country", "iso", "shopify_code"), [
    # Shopify's zone codes (Shopify/worldwide data/regions/*.yml): Tōkyō is JP-13, Bangkok TH-10,
    # California CA.
    ("JP", "JP-13", "JP-13"),
    ("TH", "TH-10", "TH-10"),
    ("US", "US-CA", "CA"),
])
def test_the_province_code_is_the_one_shopify_uses_for_the_country(country, iso, shopify_code):
    address = shipping_address({"name": "A B", "region_code": country, "district_info": [
        {"address_level": "L1", "address_level_name": "State", "address_name": "X", "iso_code": iso}]})
    assert address["provinceCode"] == shopify_code


# --- money ------------------------------------------------------------------------------------


def test_a_co_funded_free_shipping_order_is_created_to_the_cent():
    """US and UK Co-Funded Free Shipping: the seller's shipping discount comes as
    ``shipping_fee_cofunded_discount`` with ``shipping_fee_seller_discount`` 0 (TikTok's docs),
    so ``shipping_fee = original_shipping_fee - cofunded - platform``. It is the seller's
    discount on shipping, netted into the shipping line like the seller one."""
    order = us_order()
    order["payment"].update(shipping_fee_seller_discount="0", shipping_fee_cofunded_discount="1.00")
    data = build(order)
    assert data["shippingLines"][0]["priceSet"]["presentmentMoney"]["amount"] == "5.00"  # 6.00 - 1.00
    money = order_money(data, shop_currency="USD")
    assert money.total.presentment == Decimal("52.66") + Decimal("2.50")  # total_amount + platform
    assert money.outstanding.presentment == 0


# --- verify-orders ----------------------------------------------------------------------------

TAXED = "580000000000000001"  # paid, USD, a tee with item and shipping tax; its SKU auto-links
TWO_TEES = "580000000000000002"  # paid, USD, 2 x a tee and a hoodie


def _synced(sandbox, sb_cli) -> None:
    sb_cli("sync-orders")
    assert sb_cli("autolink", "--yes").exit_code == 0
    assert sb_cli("link", "STK-1", "STK-001").exit_code == 0


def _add(sandbox, template: str, order_id: str, change) -> None:
    order = json.loads(json.dumps(sandbox.tiktok.order(template)))
    order["id"] = order_id
    order["update_time"] = int(time.time())
    for n, line in enumerate(order["line_items"]):
        line["id"] = f"{order_id}{n:03d}"
    change(order)
    sandbox.tiktok.add_orders([order])


def _differences(sb_cli, order_id: str) -> dict[str, dict]:
    report = json.loads(sb_cli("verify-orders", "--json").stdout)
    return {d["field"]: d for d in report["differences"] if d["tiktok_order_id"] == order_id}


def test_verify_does_not_report_an_order_whose_payment_omits_product_tax(sandbox, sb_cli):
    """The build takes the lines' ``item_tax`` when ``payment.product_tax`` is absent (it checks
    ``tax`` instead); verify then expected 0 item tax and reported the correct order."""
    order_id = "560000000000000901"

    def drop(order):
        del order["payment"]["product_tax"]

    _synced(sandbox, sb_cli)
    _add(sandbox, TAXED, order_id, drop)
    sb_cli("sync-orders")
    states = {o["tiktok_order_id"]: o["state"] for o in json.loads(sb_cli("orders", "--json").stdout)}
    assert states[order_id] == "synced"
    assert _differences(sb_cli, order_id) == {}


@pytest.mark.parametrize("left_out", ["product_tax", "seller_discount", "platform_discount"])
def test_verify_expects_what_the_lines_say_when_the_payment_leaves_a_figure_out(left_out):
    """The same, field by field, with Shopify's figures from the simulator's arithmetic."""
    from ecomsend_cli.store import CreatedOrder
    from ecomsend_cli.verify import compare

    order = us_order()
    del order["payment"][left_out]
    data = build(order)
    money = order_money(data, shop_currency="USD")

    def bag(b):
        return {"shopMoney": {"amount": str(b.shop), "currencyCode": "USD"},
                "presentmentMoney": {"amount": str(b.presentment), "currencyCode": "USD"}}

    shopify = {"currencyCode": "USD", "presentmentCurrencyCode": "USD", "totalPriceSet": bag(money.total),
               "totalTaxSet": bag(money.total_tax), "totalDiscountsSet": bag(money.total_discounts),
               "totalOutstandingSet": bag(money.outstanding), "totalRefundedSet": bag(money.refunded),
               "lineItems": [{"variant": {"id": x["variantId"]}, "quantity": x["quantity"],
                              "currentQuantity": x["quantity"]} for x in data["lineItems"]]}
    created = CreatedOrder(order["id"], "AWAITING_SHIPMENT", "gid://shopify/Order/1", "#1", order, data)
    assert compare(created, shopify, "USD", {}) == []


def test_verify_reports_a_unit_tiktok_cancelled_after_the_order_was_created(sandbox, sb_cli):
    """A unit cancelled on TikTok after the Shopify order was created (item-level cancellation,
    US/UK) leaves Shopify holding a unit TikTok no longer sold. verify-orders says it compares
    "variant quantities" with the TikTok order; it compared them with the input it sent."""
    order_id = "560000000000000902"
    _synced(sandbox, sb_cli)
    _add(sandbox, TWO_TEES, order_id, lambda order: None)
    sb_cli("sync-orders")
    assert _differences(sb_cli, order_id) == {}
    before = sandbox.tiktok.order(order_id)
    lines = before["line_items"]
    lines[0]["display_status"] = "CANCELLED"  # one of the two tees
    sandbox.tiktok.update_order(order_id, line_items=lines)
    sb_cli("sync-orders")
    variant = next(o for o in sandbox.shopify.orders() if o["source_identifier"] == order_id)["lines"][0]["variant_id"]
    quantity = _differences(sb_cli, order_id).get(f"quantity of {variant}")
    assert quantity is not None and (quantity["tiktok"], quantity["shopify"]) == ("1", "2")

