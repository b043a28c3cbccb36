"""The demo seed's TikTok orders add up, to the minor unit, as TikTok's do (DESIGN §5.7, §5.8).

The accountant's invariant starts with TikTok's own numbers: if a seed edit
breaks them, the orders the sandbox creates cannot reconcile either, so every
seeded order is checked here field by field, with Decimal arithmetic in its
currency's minor units, and each kind of order the demo promises must exist.
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

from ecomsend_cli.money import AmountError, minor_units, parse_amount
from ecomsend_cli.sandbox import seed as seed_module
from ecomsend_cli.sandbox.seed import DEMO_KINDS, EXCHANGE_RATES, SHOP_CURRENCY, demo_seed
from ecomsend_cli.store import Store

NOW = 1_790_000_000
PAYMENT_FIELDS = (
    "currency", "original_total_product_price", "seller_discount", "platform_discount", "sub_total",
    "original_shipping_fee", "shipping_fee_seller_discount", "shipping_fee_platform_discount",
    "shipping_fee", "shipping_fee_tax", "product_tax", "tax", "total_amount",
)
LINE_FIELDS = ("sku_id", "seller_sku", "currency", "original_price", "sale_price", "seller_discount",
               "platform_discount", "item_tax", "display_status")
# Buyer-paid fees TikTok counts into total_amount (retail delivery US, small order TH, service ID, ...).
FEES = ("retail_delivery_fee", "small_order_fee", "buyer_service_fee", "handling_fee", "item_insurance_fee",
        "shipping_insurance_fee")


def orders() -> list[dict]:
    return demo_seed(NOW)["tiktok_orders"]


def live_lines(order: dict) -> list[dict]:
    """The lines TikTok's payment covers: all of a cancelled order, else the ones not cancelled."""
    if order["status"] == "CANCELLED":
        return order["line_items"]
    return [line for line in order["line_items"] if line["display_status"] != "CANCELLED"]


def money_of(order: dict) -> dict:
    """The order's sums, each a Decimal checked against its currency's decimals."""
    pay = order["payment"]
    currency = pay["currency"]

    def amount(value, where: str) -> Decimal:
        return parse_amount(value, currency, field=where)

    lines = live_lines(order)
    return {
        "currency": currency,
        "pay": {k: amount(v, f"payment.{k}") for k, v in pay.items() if k != "currency"},
        "lines": [
            {
                "original": amount(line["original_price"], "original_price"),
                "sale": amount(line["sale_price"], "sale_price"),
                "seller": amount(line["seller_discount"], "seller_discount"),
                "platform": amount(line["platform_discount"], "platform_discount"),
                "taxes": [(Decimal(t["tax_rate"]), amount(t["tax_amount"], "tax_amount")) for t in line["item_tax"]],
            }
            for line in lines
        ],
    }


def problems_of(order: dict) -> list[str]:
    """Every relation of DESIGN §5.7 the order breaks (empty when it adds up)."""
    pay = order["payment"]
    missing = [f for f in PAYMENT_FIELDS if f not in pay]
    missing += [f"line {line.get('id')}.{f}" for line in order["line_items"] for f in LINE_FIELDS if f not in line]
    if missing:
        return [f"missing {', '.join(missing)}"]
    currency = pay["currency"]
    out = [f"line {line['id']} is in {line['currency']}" for line in order["line_items"]
           if line["currency"] != currency]
    for line in order["line_items"]:  # every line's own amounts, cancelled ones too
        try:
            for name in ("original_price", "sale_price", "seller_discount", "platform_discount"):
                parse_amount(line[name], currency, field=name)
        except AmountError as exc:
            out.append(f"line {line['id']}: {exc}")
    try:
        m = money_of(order)
    except AmountError as exc:
        return [*out, str(exc)]
    p, lines = m["pay"], m["lines"]
    if not lines:
        out.append("no live line items")
    for n, line in enumerate(lines):
        if line["sale"] != line["original"] - line["seller"] - line["platform"]:
            out.append(f"live line {n}: sale_price {line['sale']} != original - seller - platform discounts")

    def total(key: str) -> Decimal:
        return sum((line[key] for line in lines), Decimal(0))

    def equal(name: str, got: Decimal, want: Decimal) -> None:
        if got != want:
            out.append(f"{name} is {got}, the relation gives {want}")

    equal("sub_total", p["sub_total"], total("sale"))
    equal("seller_discount", p["seller_discount"], total("seller"))
    equal("platform_discount", p["platform_discount"], total("platform"))
    equal("original_total_product_price", p["original_total_product_price"], total("original"))
    equal("shipping_fee", p["shipping_fee"],
          p["original_shipping_fee"] - p["shipping_fee_seller_discount"] - p["shipping_fee_platform_discount"])
    equal("product_tax", p["product_tax"], sum((a for line in lines for _, a in line["taxes"]), Decimal(0)))
    equal("tax", p["tax"], p["product_tax"] + p["shipping_fee_tax"])
    fees = sum((p.get(f, Decimal(0)) for f in FEES), Decimal(0))
    before_tax = p["sub_total"] + p["shipping_fee"] + fees
    added, included = p["total_amount"] == before_tax + p["tax"], p["total_amount"] == before_tax
    if not (added or included):
        out.append(f"total_amount {p['total_amount']} is neither sub_total + shipping_fee + fees + tax "
                   f"({before_tax + p['tax']}) nor, VAT included, sub_total + shipping_fee + fees ({before_tax})")
    if order["recipient_address"]["region_code"] == "US" and included and p["tax"]:
        out.append("a US order with tax inside its prices: US prices are pre-tax")
    # Each unit's tax is the rate applied the order's way (on top, or the part of the price that is tax).
    half = Decimal(1).scaleb(-minor_units(currency)) / 2
    for n, line in enumerate(lines):
        for rate, amount in line["taxes"]:
            exact = line["sale"] * rate / (1 + rate) if included and p["tax"] else line["sale"] * rate
            if abs(amount - exact) > half:
                out.append(f"live line {n}: tax {amount} is not {rate} of {line['sale']} the order's way")
    return out


def test_every_seeded_order_adds_up_to_the_minor_unit() -> None:
    broken = {o["id"]: problems_of(o) for o in orders()}
    broken = {k: v for k, v in broken.items() if v}
    assert not broken, json.dumps(broken, indent=1)


def test_the_check_catches_a_cent_out_of_place() -> None:
    order = next(o for o in orders() if o["id"] == "580000000000000027")
    assert problems_of(order) == []
    order["line_items"][0]["sale_price"] = "14.98"  # a cent off on one unit
    assert any("sale_price" in p for p in problems_of(order))
    order = next(o for o in orders() if o["id"] == "580000000000000030")
    order["payment"]["total_amount"] = "6650.5"  # JPY has no minor units
    assert any("more decimals than JPY" in p for p in problems_of(order))


def kind(predicate) -> list[str]:
    return [o["id"] for o in orders() if predicate(o)]


def amount(order: dict, name: str) -> Decimal:
    return Decimal(order["payment"].get(name) or "0")


def levels(order: dict) -> dict[str, dict]:
    return {d["address_level"]: d for d in order["recipient_address"]["district_info"]}


def taxes_included(order: dict) -> bool:
    p = {k: amount(order, k) for k in ("sub_total", "shipping_fee", "total_amount", "tax")}
    fees = sum((amount(order, f) for f in FEES), Decimal(0))
    return p["tax"] > 0 and p["total_amount"] == p["sub_total"] + p["shipping_fee"] + fees


def test_each_kind_the_demo_promises_is_seeded() -> None:
    ids = {o["id"] for o in orders()}
    # A US order with item tax, shipping tax and Colorado's retail delivery fee.
    assert kind(lambda o: levels(o)["L1"].get("iso_code") == "US-CO" and amount(o, "product_tax") > 0
                and amount(o, "shipping_fee_tax") > 0 and amount(o, "retail_delivery_fee") > 0)
    # A VAT-inclusive UK order in GBP, its post town in the post-town level.
    assert kind(lambda o: o["payment"]["currency"] == "GBP" and taxes_included(o)
                and o["recipient_address"]["region_code"] == "GB"
                and levels(o)["L3"]["address_level_name"] == "Post town"
                and levels(o)["L3"]["address_name"] == o["recipient_address"]["post_town"]
                and levels(o)["L2"]["address_name"] != o["recipient_address"]["post_town"])
    # Seller and platform discounts, on items and on shipping, in one order.
    assert kind(lambda o: all(amount(o, f) > 0 for f in (
        "seller_discount", "platform_discount", "shipping_fee_seller_discount", "shipping_fee_platform_discount")))
    # A currency without minor units, and a currency other than the shop's.
    assert kind(lambda o: minor_units(o["payment"]["currency"]) == 0 and amount(o, "total_amount") > 0)
    assert kind(lambda o: o["payment"]["currency"] != SHOP_CURRENCY)
    # A line TikTok cancelled in a live order, paid for without it.
    assert kind(lambda o: o["status"] != "CANCELLED" and Counter(
        line["display_status"] == "CANCELLED" for line in o["line_items"]) == Counter({True: 1, False: 2}))
    assert kind(lambda o: o["fulfillment_type"] == "FULFILLMENT_BY_TIKTOK")
    assert kind(lambda o: o["is_sample_order"] is True)
    assert kind(lambda o: o["is_cod"] is True)
    replacements = [o for o in orders() if o["is_replacement_order"] is True]
    assert replacements and all(o["replaced_order_id"] in ids for o in replacements)


def test_every_kind_is_in_the_documented_table_with_its_own_id() -> None:
    ids = Counter(o["id"] for o in orders())
    assert max(ids.values()) == 1
    assert len(DEMO_KINDS) == 10 and set(DEMO_KINDS) <= set(ids)
    for order_id, what in DEMO_KINDS.items():
        assert f"{order_id}      {what}" in seed_module.__doc__


def test_us_addresses_carry_the_state_iso_code_and_a_county_apart_from_the_city() -> None:
    us = [o for o in orders() if o["recipient_address"]["region_code"] == "US"]
    assert len(us) >= 30
    for order in us:
        by_level = levels(order)
        assert by_level["L1"]["iso_code"].startswith("US-") and len(by_level["L1"]["iso_code"]) == 5
        assert by_level["L2"]["address_level_name"] == "County" and by_level["L3"]["address_level_name"] == "City"
        assert by_level["L2"]["address_name"] != by_level["L3"]["address_name"], order["id"]


def test_every_currency_but_the_shops_has_an_exchange_rate() -> None:
    foreign = {o["payment"]["currency"] for o in orders()} - {SHOP_CURRENCY}
    assert foreign and foreign <= set(EXCHANGE_RATES)
    assert all(Decimal(rate) > 0 for rate in EXCHANGE_RATES.values())


def test_the_new_kinds_link_with_the_demos_skus_and_have_stock(sandbox, sb_cli) -> None:
    """After the demo's two link steps, no new kind is blocked or refused by Shopify."""
    assert sb_cli("sync-orders").exit_code == 3
    assert sb_cli("autolink", "--yes").exit_code == 0
    assert sb_cli("link", "STK-1", "STK-001").exit_code == 0
    r = sb_cli("sync-orders", "--json")
    assert r.exit_code in (0, 3), r.stderr
    with Store.open(sandbox.store_path) as store:
        states = {o.tiktok_order_id: (o.state, o.reason) for o in store.orders(ids=list(DEMO_KINDS))}
    assert set(states) == set(DEMO_KINDS)
    # FBT may be skipped by design (DESIGN §5.8); nothing may wait on a link or fail for stock.
    assert all(state in ("synced", "skipped") for state, _ in states.values()), states
    created = {o["source_identifier"] for o in sandbox.shopify.orders()}
    assert set(DEMO_KINDS) - created <= {k for k, (state, _) in states.items() if state == "skipped"}

