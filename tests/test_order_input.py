"""The orderCreate input of DESIGN §5.7/§5.8, order by order, to the cent.

Each example is a TikTok order written out as TikTok documents its fields;
the test checks the Shopify input field by field and, where the fixtures are
beside the checkout, that Shopify's real 2026-07 schema accepts it.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from ecomsend_cli.config import SyncConfig
from ecomsend_cli.order_input import OrderRefused, Shop, build_order_input, shipping_address, skip_reason
from tests.conftest import fixture_path

A, B, C = "gid://shopify/ProductVariant/1", "gid://shopify/ProductVariant/2", "gid://shopify/ProductVariant/3"
LINKS = {"sa": A, "sb": B, "sc": C}


def unit(sku, original, seller="0", platform="0", tax=None, **extra):
    sale = Decimal(original) - Decimal(seller) - Decimal(platform)
    line = {"sku_id": sku, "original_price": original, "seller_discount": seller, "platform_discount": platform,
            "sale_price": str(sale), **extra}
    if tax:
        line["item_tax"] = [{"tax_type": "SALES_TAX", "tax_rate": "0.08", "tax_amount": tax}]
    return line


def us_order(**changes):
    """Two discounted A, one B, sales tax on items and shipping, Colorado's retail delivery fee."""
    order = {
        "id": "576461413038785752", "status": "AWAITING_SHIPMENT", "create_time": 1_780_000_000,
        "buyer_email": "buyer@example.com", "buyer_message": "Please ship asap!",
        "delivery_option_name": "Standard shipping",
        "line_items": [unit("sa", "20.00", "2.00", "1.00", "1.36"), unit("sa", "20.00", "2.00", "1.00", "1.36"),
                       unit("sb", "10.00", tax="0.80")],
        "payment": {"currency": "USD", "original_total_product_price": "50.00", "seller_discount": "4.00",
                    "platform_discount": "2.00", "sub_total": "44.00", "original_shipping_fee": "6.00",
                    "shipping_fee_seller_discount": "1.00", "shipping_fee_platform_discount": "0.50",
                    "shipping_fee": "4.50", "shipping_fee_tax": "0.36", "product_tax": "3.52", "tax": "3.88",
                    "retail_delivery_fee": "0.28", "total_amount": "52.66"},
        "recipient_address": {"first_name": "Ada", "last_name": "Lovelace", "address_line1": "1 Main St",
                              "postal_code": "80202", "region_code": "US", "phone_number": "+13035550100",
                              "district_info": [
                                  {"address_level": "L0", "address_level_name": "Country",
                                   "address_name": "United States"},
                                  {"address_level": "L1", "address_level_name": "State", "address_name": "Colorado",
                                   "iso_code": "US-CO"},
                                  {"address_level": "L2", "address_level_name": "County",
                                   "address_name": "Denver County"},
                                  {"address_level": "L3", "address_level_name": "City", "address_name": "Denver"}]},
    }
    order.update(changes)
    return order


def build(order, config=None, shop="USD", links=LINKS):
    return build_order_input(order, links, config or SyncConfig(), Shop(shop), order_id=str(order["id"]),
                             shop_label="ROW_cipher")


def money(amount, currency="USD"):
    return {"shopMoney": {"amount": amount, "currencyCode": currency},
            "presentmentMoney": {"amount": amount, "currencyCode": currency}}


def test_a_us_order_with_discounts_taxes_and_a_fee_field_by_field():
    data = build(us_order())
    assert data["currency"] == "USD" and data["presentmentCurrency"] == "USD"
    assert data["taxesIncluded"] is False  # 44.00 + 4.50 + 0.28 + 3.88 = 52.66
    assert data["lineItems"] == [
        {"variantId": A, "quantity": 2, "priceSet": money("20.00"), "requiresShipping": True,
         "taxLines": [{"title": "SALES_TAX", "rate": "0.08", "priceSet": money("2.72")}]},
        {"variantId": B, "quantity": 1, "priceSet": money("10.00"), "requiresShipping": True,
         "taxLines": [{"title": "SALES_TAX", "rate": "0.08", "priceSet": money("0.80")}]},
    ]
    assert data["discountCode"] == {"itemFixedDiscountCode": {"code": "TIKTOK-SELLER-DISCOUNT",
                                                              "amountSet": money("4.00")}}
    shipping, fee = data["shippingLines"]
    assert shipping["title"] == "Standard shipping" and shipping["priceSet"] == money("5.00")  # 6.00 - 1.00
    assert shipping["taxLines"][0]["priceSet"] == money("0.36")
    assert fee == {"title": "Retail delivery fee", "code": "retail_delivery_fee", "source": "tiktok",
                   "priceSet": money("0.28")}
    assert data["transactions"] == [
        {"kind": "SALE", "status": "SUCCESS", "gateway": "TikTok Shop", "amountSet": money("52.66")},
        {"kind": "SALE", "status": "SUCCESS", "gateway": "TikTok Shop platform discount",
         "amountSet": money("2.50")},  # 2 x 1.00 on the items + 0.50 on shipping
    ]
    assert data["financialStatus"] == "PAID"
    assert data["note"] == "Buyer's message: Please ship asap!"
    assert data["customAttributes"] == [{"key": "TikTok order id", "value": "576461413038785752"},
                                        {"key": "TikTok shop", "value": "ROW_cipher"}]
    assert data["shippingAddress"] == {"firstName": "Ada", "lastName": "Lovelace", "address1": "1 Main St",
                                       "city": "Denver", "provinceCode": "CO", "zip": "80202",
                                       "countryCode": "US", "phone": "+13035550100"}
    # Shopify's arithmetic, by hand: lines 50.00 - code 4.00 + shipping 5.28 + tax 3.88 = 55.16
    # = total_amount 52.66 + platform discounts 2.50; outstanding 55.16 - 52.66 - 2.50 = 0.


def test_a_vat_inclusive_order_in_another_currency_converts_shop_money():
    order = {"id": "1", "status": "AWAITING_SHIPMENT",
             "line_items": [{"sku_id": "sa", "original_price": "24.00", "sale_price": "24.00",
                             "item_tax": [{"tax_type": "VAT", "tax_rate": "0.2", "tax_amount": "4.00"}]}],
             "payment": {"currency": "GBP", "sub_total": "24.00", "shipping_fee": "3.00",
                         "original_shipping_fee": "3.00", "shipping_fee_tax": "0.50", "product_tax": "4.00",
                         "tax": "4.50", "total_amount": "27.00"}}
    with pytest.raises(OrderRefused, match=r"set sync.exchange_rates.GBP \(how many USD one GBP is worth\)"):
        build(order)
    data = build(order, SyncConfig(exchange_rates={"GBP": 1.27}))
    assert data["taxesIncluded"] is True  # 24.00 + 3.00 = 27.00: the VAT is inside
    assert data["currency"] == "USD" and data["presentmentCurrency"] == "GBP"
    assert data["lineItems"][0]["priceSet"] == {"shopMoney": {"amount": "30.48", "currencyCode": "USD"},
                                                "presentmentMoney": {"amount": "24.00", "currencyCode": "GBP"}}
    assert data["transactions"][0]["amountSet"]["presentmentMoney"] == {"amount": "27.00", "currencyCode": "GBP"}
    assert len(data["transactions"]) == 1  # no platform discount: no second transaction
    assert build(order, shop="GBP")["lineItems"][0]["priceSet"] == money("24.00", "GBP")


def test_yen_has_no_decimals_and_a_combined_listing_shares_its_price_by_largest_remainder():
    order = {"id": "2", "status": "AWAITING_SHIPMENT",
             "line_items": [{"original_price": "1000", "sale_price": "1000", "sku_id": "combo",
                             "combined_listing_skus": [{"sku_id": "sa", "sku_count": 1},
                                                       {"sku_id": "sb", "sku_count": 2}]}],
             "payment": {"currency": "JPY", "sub_total": "1000", "total_amount": "1000"}}
    data = build(order, shop="JPY")
    assert [(x["variantId"], x["quantity"], x["priceSet"]["shopMoney"]["amount"]) for x in data["lineItems"]] == [
        (A, 1, "334"), (B, 2, "333")]  # 334 + 2 x 333 = 1000, to the yen
    order["line_items"][0]["original_price"] = "1000.5"
    with pytest.raises(OrderRefused, match="more decimals than JPY has"):
        build(order, shop="JPY")


def test_a_cancelled_line_is_left_out_and_the_payment_covers_the_rest():
    order = us_order()
    order["line_items"].append(unit("sc", "99.00", tax="7.92", display_status="CANCELLED"))
    data = build(order)
    assert [x["variantId"] for x in data["lineItems"]] == [A, B]
    assert sum(x["quantity"] for x in data["lineItems"]) == 3
    every = us_order(line_items=[unit("sa", "20.00", display_status="CANCELLED")])
    assert skip_reason(every, SyncConfig()) == "every line was cancelled on TikTok"


def test_amounts_that_do_not_add_up_fail_with_both_sums():
    bad = us_order()
    bad["payment"] = {**bad["payment"], "total_amount": "52.65"}
    with pytest.raises(OrderRefused) as caught:
        build(bad)
    assert caught.value.state == "failed"
    assert caught.value.message == ("amounts do not add up: sub_total + shipping_fee + fees = 48.78, + tax = "
                                    "52.66, but total_amount is 52.65 USD")
    lines_off = us_order()
    lines_off["payment"] = {**lines_off["payment"], "sub_total": "45.00"}
    with pytest.raises(OrderRefused, match="item prices less discounts .sub_total.: 44.00 from the lines, "
                                           "45.00 in TikTok's payment"):
        build(lines_off)


def test_cod_is_pending_without_a_transaction():
    data = build(us_order(is_cod=True))
    assert data["financialStatus"] == "PENDING" and "transactions" not in data


def test_order_kinds_fbt_samples_replacements():
    fbt = us_order(fulfillment_type="FULFILLMENT_BY_TIKTOK")
    assert "fulfilled by TikTok (FBT)" in skip_reason(fbt, SyncConfig())
    with pytest.raises(OrderRefused) as caught:
        build(fbt)
    assert caught.value.state == "skipped"
    located = build(fbt, SyncConfig(fbt_location_id="gid://shopify/Location/7"))
    assert located["fulfillment"] == {"locationId": "gid://shopify/Location/7", "notifyCustomer": False}
    assert "tiktok-fbt" in located["tags"]
    sample = us_order(is_sample_order=True)
    assert "tiktok-sample" in build(sample)["tags"]
    assert skip_reason(sample, SyncConfig(samples="skip")) == "a TikTok sample order, and sync.samples is skip"
    replacement = build(us_order(is_replacement_order=True, replaced_order_id="576461413038785000"))
    assert "tiktok-replacement" in replacement["tags"]
    assert replacement["note"].endswith("Replacement for TikTok order 576461413038785000")


@pytest.mark.parametrize(("levels", "country", "city", "province"), [
    # The US: L2 is the county, never the city; the state from its ISO 3166-2 code.
    ([("L1", "State", "California", "US-CA"), ("L2", "County", "Santa Clara County", None),
      ("L3", "City", "San Jose", None)], "US", "San Jose", "CA"),
    ([("L1", "", "Texas", "US-TX"), ("L2", "", "Travis County", None), ("L3", "", "Austin", None)],
     "US", "Austin", "TX"),
    # The UK: the post town is the city.
    ([("L1", "Country", "England", "GB-ENG"), ("L2", "County", "Greater London", None),
      ("L3", "Post Town", "London", None)], "GB", "London", "ENG"),
    ([("L1", "Province", "Hồ Chí Minh", None), ("L2", "District", "Quận 1", None)], "VN", "Quận 1", ""),
])
def test_the_city_is_the_level_the_region_uses_and_the_province_its_code(levels, country, city, province):
    info = [{"address_level": lv, "address_level_name": name, "address_name": value,
             **({"iso_code": iso} if iso else {})} for lv, name, value, iso in levels]
    address = shipping_address({"name": "Ada Lovelace", "region_code": country, "district_info": info})
    assert address.get("city") == city and address.get("provinceCode", "") == province
    assert (address["firstName"], address["lastName"]) == ("Ada", "Lovelace")


def test_every_example_is_accepted_by_shopifys_schema():
    from graphql import execute, parse

    from ecomsend_cli import shopify_documents as docs
    from ecomsend_cli.sandbox.shopify_schema import load_schema_file

    schema = load_schema_file(fixture_path("shopify-admin-2026-07.graphql"))
    fx = SyncConfig(exchange_rates={"GBP": 1.27}, fbt_location_id="gid://shopify/Location/7")
    for order in (us_order(), us_order(is_cod=True), us_order(fulfillment_type="FULFILLMENT_BY_TIKTOK")):
        variables = {"order": build(order, fx), "options": {"inventoryBehaviour": "DECREMENT_OBEYING_POLICY"}}
        result = execute(schema, parse(docs.ORDER_CREATE), variable_values=variables)
        assert [e.message for e in result.errors or [] if "Variable" in e.message] == []


def test_tiktoks_documented_sample_order_is_refused_with_the_reason():
    """TikTok's own sample payload (an IDR order priced 0.01) is no order to copy to the cent."""
    sample = json.loads(fixture_path("tiktok_order_detail_202309_response.json").read_text())["data"]["orders"][0]
    from ecomsend_cli.models import InvalidOrder
    from ecomsend_cli.tiktok_orders import parse_order

    parsed = parse_order(sample)
    assert isinstance(parsed, InvalidOrder)
    assert "more decimals than IDR has (0)" in parsed.reason
