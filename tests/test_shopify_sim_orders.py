"""The Shopify simulator's orders over real HTTP: money read back, locations, edits, trial limit.

Orders go in through the real client's ``order_create`` (as sync does) and
come back through ``order(id:)`` and ``nodes(ids:)`` as verify-orders reads
them; stock is read through ``/_sandbox/inventory``.
"""

from __future__ import annotations

import httpx
import pytest

from ecomsend_cli.sandbox.shopify_sim import TRIAL_ORDER_LIMIT, ShopifySimulator
from tests.test_shopify_sim import BIG_BUDGET, catalog, client_for

SHOP_LOCATION = "gid://shopify/Location/71000000001"
FBT_LOCATION = "gid://shopify/Location/71000000002"

MONEY = "shopMoney { amount currencyCode } presentmentMoney { amount currencyCode }"
ORDER_FIELDS = f"""
  id name currencyCode presentmentCurrencyCode taxesIncluded displayFinancialStatus
  displayFulfillmentStatus cancelledAt email note tags
  subtotalPriceSet {{ {MONEY} }} totalPriceSet {{ {MONEY} }} totalTaxSet {{ {MONEY} }}
  totalDiscountsSet {{ {MONEY} }} totalShippingPriceSet {{ {MONEY} }}
  totalOutstandingSet {{ {MONEY} }} currentTotalPriceSet {{ {MONEY} }}
  customAttributes {{ key value }}
  shippingAddress {{ firstName lastName address1 address2 city provinceCode zip countryCodeV2 phone }}
  lineItems(first: 10) {{ nodes {{
    id quantity currentQuantity sku variant {{ id }} requiresShipping
    originalUnitPriceSet {{ {MONEY} }}
    taxLines {{ title rate priceSet {{ {MONEY} }} }}
    discountAllocations {{ allocatedAmountSet {{ {MONEY} }} }}
  }} }}
  shippingLines(first: 10) {{ nodes {{ title originalPriceSet {{ {MONEY} }}
    taxLines {{ title rate priceSet {{ {MONEY} }} }} }} }}
  transactions {{ kind status gateway amountSet {{ {MONEY} }} }}
  fulfillments {{ id status location {{ id }} }}
"""
READ_ORDER = f"query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"
READ_NODES = f"query($ids: [ID!]!) {{ nodes(ids: $ids) {{ ... on Order {{ {ORDER_FIELDS} }} }} }}"


def bag(shop: str, currency: str = "USD", presentment: tuple[str, str] | None = None) -> dict:
    out = {"shopMoney": {"amount": shop, "currencyCode": currency}}
    if presentment:
        out["presentmentMoney"] = {"amount": presentment[0], "currencyCode": presentment[1]}
    return out


def amount(money_bag: dict, side: str = "shopMoney") -> str:
    return money_bag[side]["amount"]


def us_order(source: str = "T-1", **extra) -> dict:
    """A US order as §5.7 builds it: tax added, a seller discount code, tax on shipping, a fee."""
    return {
        "currency": "USD", "presentmentCurrency": "USD", "taxesIncluded": False,
        "sourceIdentifier": source, "email": "buyer@example.com", "note": "leave at the door",
        "tags": ["tiktok"], "financialStatus": "PAID",
        "customAttributes": [{"key": "tiktok_order_id", "value": source}],
        "shippingAddress": {"firstName": "Ada", "lastName": "Lovelace", "address1": "1 Main St",
                            "address2": "Apt 2", "city": "Denver", "provinceCode": "CO",
                            "zip": "80202", "countryCode": "US", "phone": "+13035550100"},
        "lineItems": [
            {"variantId": "gid://shopify/ProductVariant/11", "quantity": 2, "requiresShipping": True,
             "priceSet": bag("10.00"),
             "taxLines": [{"title": "Sales tax", "rate": "0.08", "priceSet": bag("1.36")}]},
            {"variantId": "gid://shopify/ProductVariant/12", "quantity": 1, "requiresShipping": True,
             "priceSet": bag("5.00"),
             "taxLines": [{"title": "Sales tax", "rate": "0.08", "priceSet": bag("0.32")}]},
        ],
        "discountCode": {"itemFixedDiscountCode": {"code": "TIKTOK-SELLER-DISCOUNT",
                                                   "amountSet": bag("4.00")}},
        "shippingLines": [
            {"title": "Standard", "priceSet": bag("3.00"),
             "taxLines": [{"title": "Sales tax", "rate": "0.08", "priceSet": bag("0.24")}]},
            {"title": "Retail delivery fee", "priceSet": bag("0.28")},
        ],
        # 25 − 4 + 3.28 shipping and fee + 1.92 tax = 26.20; the platform paid 2.00 of it.
        "transactions": [
            {"kind": "SALE", "status": "SUCCESS", "gateway": "TikTok Shop", "amountSet": bag("24.20")},
            {"kind": "SALE", "status": "SUCCESS", "gateway": "TikTok Shop platform discount",
             "amountSet": bag("2.00")},
        ],
        **extra,
    }


@pytest.fixture
def sim(tmp_path):
    products = catalog(2)
    products[0]["variants"][1]["location_quantities"] = {"TikTok FBT warehouse": 4}
    products[0]["variants"][2]["location_quantities"] = {FBT_LOCATION: 4}
    with ShopifySimulator(tmp_path / "shopify.db", products=products, **BIG_BUDGET) as running:
        yield running


def create(sim: ShopifySimulator, order: dict, behaviour: str = "DECREMENT_OBEYING_POLICY"):
    return client_for(sim).order_create(order, inventory_behaviour=behaviour)


def stock(sim: ShopifySimulator, variant: int) -> tuple[int, int, int]:
    """(total, at the shop location, at the FBT warehouse) of one variant."""
    row = next(v for v in sim.inventory() if v["variant_id"] == f"gid://shopify/ProductVariant/{variant}")
    return row["inventory_quantity"], row["locations"][SHOP_LOCATION], row["locations"][FBT_LOCATION]


def test_an_order_reads_back_with_shopifys_money_people_and_lines(sim):
    created = create(sim, us_order())
    order = client_for(sim).graphql(READ_ORDER, {"id": created.order_id})["order"]

    assert (order["currencyCode"], order["presentmentCurrencyCode"], order["taxesIncluded"]) == (
        "USD", "USD", False)
    assert amount(order["subtotalPriceSet"]) == "21.0"
    assert amount(order["totalTaxSet"]) == "1.92"
    assert amount(order["totalDiscountsSet"]) == "4.0"
    assert amount(order["totalShippingPriceSet"]) == "3.28"
    assert amount(order["totalPriceSet"]) == amount(order["currentTotalPriceSet"]) == "26.2"
    assert amount(order["totalOutstandingSet"]) == "0.0"
    assert order["totalPriceSet"]["presentmentMoney"] == {"amount": "26.2", "currencyCode": "USD"}
    assert order["displayFinancialStatus"] == "PAID"
    assert order["displayFulfillmentStatus"] == "UNFULFILLED" and order["fulfillments"] == []
    assert order["cancelledAt"] is None
    assert (order["email"], order["note"], order["tags"]) == ("buyer@example.com", "leave at the door",
                                                              ["tiktok"])
    assert order["customAttributes"] == [{"key": "tiktok_order_id", "value": "T-1"}]
    assert order["shippingAddress"] == {
        "firstName": "Ada", "lastName": "Lovelace", "address1": "1 Main St", "address2": "Apt 2",
        "city": "Denver", "provinceCode": "CO", "zip": "80202", "countryCodeV2": "US",
        "phone": "+13035550100"}

    first, second = order["lineItems"]["nodes"]
    assert (first["quantity"], first["currentQuantity"], first["sku"]) == (2, 2, "SKU-1-1")
    assert first["variant"] == {"id": "gid://shopify/ProductVariant/11"}
    assert first["requiresShipping"] is True
    assert amount(first["originalUnitPriceSet"]) == "10.0"
    assert first["taxLines"] == [{"title": "Sales tax", "rate": 0.08, "priceSet": {
        "shopMoney": {"amount": "1.36", "currencyCode": "USD"},
        "presentmentMoney": {"amount": "1.36", "currencyCode": "USD"}}}]
    # 4.00 over 20.00 and 5.00 of lines: 3.20 and 0.80.
    assert [amount(line["discountAllocations"][0]["allocatedAmountSet"])
            for line in (first, second)] == ["3.2", "0.8"]
    assert [(s["title"], amount(s["originalPriceSet"])) for s in order["shippingLines"]["nodes"]] == [
        ("Standard", "3.0"), ("Retail delivery fee", "0.28")]
    assert amount(order["shippingLines"]["nodes"][0]["taxLines"][0]["priceSet"]) == "0.24"
    assert [(t["kind"], t["status"], t["gateway"], amount(t["amountSet"]))
            for t in order["transactions"]] == [
        ("SALE", "SUCCESS", "TikTok Shop", "24.2"),
        ("SALE", "SUCCESS", "TikTok Shop platform discount", "2.0")]


def test_a_vat_inclusive_order_in_another_currency_keeps_both_moneys(tmp_path):
    with ShopifySimulator(tmp_path / "s.db", products=catalog(1), **BIG_BUDGET) as sim:
        order = {
            "currency": "USD", "presentmentCurrency": "GBP", "taxesIncluded": True,
            "lineItems": [{"variantId": "gid://shopify/ProductVariant/11", "quantity": 1,
                           "priceSet": bag("15.24", presentment=("12.00", "GBP")),
                           "taxLines": [{"title": "VAT", "rate": "0.2",
                                         "priceSet": bag("2.54", presentment=("2.00", "GBP"))}]}],
            "shippingLines": [{"title": "Standard", "priceSet": bag("3.81", presentment=("3.00", "GBP"))}],
            "transactions": [{"kind": "SALE", "amountSet": bag("19.05", presentment=("15.00", "GBP"))}],
        }
        created = create(sim, order)
        read = client_for(sim).graphql(READ_ORDER, {"id": created.order_id})["order"]
    assert (read["currencyCode"], read["presentmentCurrencyCode"]) == ("USD", "GBP")
    assert read["totalPriceSet"] == {"shopMoney": {"amount": "19.05", "currencyCode": "USD"},
                                     "presentmentMoney": {"amount": "15.0", "currencyCode": "GBP"}}
    assert amount(read["totalTaxSet"], "presentmentMoney") == "2.0"  # inside the price, not added
    assert amount(read["totalOutstandingSet"], "presentmentMoney") == "0.0"
    assert read["displayFinancialStatus"] == "PAID"  # derived from the SALE


def test_a_cod_order_without_transactions_owes_its_total(sim):
    order = us_order("T-cod", financialStatus="PENDING", transactions=[])
    read = client_for(sim).graphql(READ_ORDER, {"id": create(sim, order).order_id})["order"]
    assert read["displayFinancialStatus"] == "PENDING" and read["transactions"] == []
    assert amount(read["totalOutstandingSet"]) == amount(read["totalPriceSet"]) == "26.2"


def test_an_input_shopify_refuses_creates_nothing_and_claims_nothing(sim):
    before = stock(sim, 11)
    order = us_order(currency="GBP")  # labelled with a currency that is not the shop's
    result = create(sim, order)
    assert result.order_id is None
    assert {"field": ["order", "currency"], "code": "INVALID"} in [
        {"field": e["field"], "code": e["code"]} for e in result.user_errors]
    assert sim.orders() == [] and stock(sim, 11) == before


def test_nodes_reads_orders_in_a_batch_priced_per_id(sim):
    ids = [create(sim, us_order(f"T-{n}"), "BYPASS").order_id for n in range(3)]
    client = client_for(sim)
    asked = [ids[2], "gid://shopify/Order/1", ids[0]]
    nodes = client.graphql(READ_NODES, {"ids": asked})["nodes"]
    assert [n and n["id"] for n in nodes] == [ids[2], None, ids[0]]
    assert nodes[0] == client.graphql(READ_ORDER, {"id": ids[2]})["order"]

    def requested(count: int) -> int:
        reply = httpx.post(f"{sim.url}/admin/api/2026-07/graphql.json",
                           json={"query": READ_NODES, "variables": {"ids": ids[:1] * count}},
                           headers={"X-Shopify-Access-Token": sim.credentials["access_token"]})
        return reply.json()["extensions"]["cost"]["requestedQueryCost"]

    assert requested(4) == 4 * requested(1)
    too_many = httpx.post(f"{sim.url}/admin/api/2026-07/graphql.json",
                          json={"query": "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
                                "variables": {"ids": ids[:1] * 251}},
                          headers={"X-Shopify-Access-Token": sim.credentials["access_token"]}).json()
    assert too_many["data"] is None and "at most 250" in too_many["errors"][0]["message"]


# -- locations and fulfilment at creation ---------------------------------------------------------


def test_the_shop_has_two_locations(sim):
    data = client_for(sim).graphql(
        "{ locations(first: 10) { nodes { id name isActive } } location { id name } "
        f"fbt: location(id: \"{FBT_LOCATION}\") {{ name }} }}")
    assert [(n["id"], n["name"]) for n in data["locations"]["nodes"]] == [
        (SHOP_LOCATION, "Shop location"), (FBT_LOCATION, "TikTok FBT warehouse")]
    assert data["location"] == {"id": SHOP_LOCATION, "name": "Shop location"}
    assert data["fbt"] == {"name": "TikTok FBT warehouse"}


def test_an_order_fulfilled_at_a_location_takes_stock_from_there_only(sim):
    assert stock(sim, 11) == (9, 5, 4)  # the shop holds the seeded 5, the warehouse 4
    fbt = us_order("T-fbt", fulfillment={"locationId": FBT_LOCATION})
    read = client_for(sim).graphql(READ_ORDER, {"id": create(sim, fbt).order_id})["order"]
    assert read["displayFulfillmentStatus"] == "FULFILLED"
    assert [(f["status"], f["location"]["id"]) for f in read["fulfillments"]] == [
        ("SUCCESS", FBT_LOCATION)]
    assert stock(sim, 11) == (7, 5, 2) and stock(sim, 12) == (8, 5, 3)

    create(sim, us_order("T-own"))  # no fulfillment: stock leaves the shop's own location
    assert stock(sim, 11) == (5, 3, 2)
    listed = {o["source_identifier"]: o["fulfillment_location"] for o in sim.orders()}
    assert listed == {"T-fbt": FBT_LOCATION, "T-own": None}


def test_a_location_short_of_stock_refuses_even_when_another_has_it(sim):
    order = us_order("T-short", fulfillment={"locationId": FBT_LOCATION})
    order["lineItems"][0]["quantity"] = 5  # the warehouse holds 4, the shop 5
    result = create(sim, order)
    assert [e["code"] for e in result.user_errors] == ["INVENTORY_CLAIM_FAILED"]
    assert "only 4" in result.user_errors[0]["message"]
    unknown = create(sim, us_order("T-nowhere", fulfillment={"locationId": "gid://shopify/Location/9"}))
    assert [e["field"] for e in unknown.user_errors] == [["order", "fulfillment", "locationId"]]
    assert sim.orders() == [] and stock(sim, 11) == (9, 5, 4)


# -- operator edits ---------------------------------------------------------------------------------


def edit(sim: ShopifySimulator, number: int, **change) -> httpx.Response:
    return httpx.post(f"{sim.url}/_sandbox/orders/{number}/edit", json=change)


def test_an_edited_order_reads_back_with_the_new_money(sim):
    order_id = create(sim, us_order()).order_id
    client = client_for(sim)

    answer = edit(sim, 1001, line=1, price="7.00")
    assert answer.status_code == 200 and answer.json()["total"] == "28.2"
    read = client.graphql(READ_ORDER, {"id": order_id})["order"]
    assert amount(read["totalPriceSet"]) == "28.2"
    assert amount(read["totalOutstandingSet"]) == "2.0"  # the buyer now owes the difference
    assert amount(read["lineItems"]["nodes"][1]["originalUnitPriceSet"]) == "7.0"

    edit(sim, 1001, line=read["lineItems"]["nodes"][0]["id"], remove=True)
    read = client.graphql(READ_ORDER, {"id": order_id})["order"]
    first = read["lineItems"]["nodes"][0]
    assert (first["quantity"], first["currentQuantity"]) == (2, 0)
    assert amount(read["totalTaxSet"]) == "0.56"  # the removed line's 1.36 is gone
    assert amount(read["totalPriceSet"]) == "10.04"  # 7 − 0.80 + 3.28 + 0.56

    edit(sim, 1001, cancel=True)
    read = client.graphql(READ_ORDER, {"id": order_id})["order"]
    assert read["cancelledAt"] is not None
    assert amount(read["currentTotalPriceSet"]) == "0.0"
    assert amount(read["totalOutstandingSet"]) == "-26.2"  # everything paid is owed back
    assert [line["currentQuantity"] for line in read["lineItems"]["nodes"]] == [0, 0]


@pytest.mark.parametrize(("number", "change", "says"), [
    (1001, {"line": 5, "quantity": 1}, "line must be a position"),
    (1001, {"line": 0, "price": "1.001"}, "not a non-negative amount"),
    (1001, {"line": 0}, "exactly one of"),
    (1001, {"line": 0, "colour": "red"}, "unknown edit keys"),
    (1999, {"cancel": True}, "no order number 1999"),
])
def test_an_impossible_edit_is_refused_and_changes_nothing(sim, number, change, says):
    create(sim, us_order())
    before = sim.orders()
    answer = edit(sim, number, **change)
    assert answer.status_code == 400 and says in answer.json()["error"]
    assert sim.orders() == before


# -- trial and development stores ------------------------------------------------------------------


def test_a_trial_store_creates_five_orders_a_minute_and_refuses_the_sixth_whole(tmp_path):
    now = [1_800_000_000.0]
    with ShopifySimulator(tmp_path / "s.db", products=catalog(1), clock=lambda: now[0],
                          trial_order_limit_per_minute=5, **BIG_BUDGET) as sim:
        token = {"X-Shopify-Access-Token": sim.credentials["access_token"]}
        document = ("mutation($o: OrderCreateOrderInput!) { orderCreate(order: $o) "
                    "{ order { id } userErrors { message } } }")

        def post(source: str) -> httpx.Response:
            order = {"sourceIdentifier": source, "lineItems": [
                {"variantId": "gid://shopify/ProductVariant/11", "quantity": 1}]}
            return httpx.post(f"{sim.url}/admin/api/2026-07/graphql.json",
                              json={"query": document, "variables": {"o": order}}, headers=token)

        for n in range(5):
            now[0] += 5
            assert post(f"T-{n}").json()["data"]["orderCreate"]["order"] is not None
        refused = post("T-5")
        assert refused.status_code == 429
        assert refused.json() == {"errors": TRIAL_ORDER_LIMIT}
        assert "Retry-After" not in refused.headers
        assert len(sim.orders()) == 5  # nothing was created
        reads = client_for(sim).graphql("{ shop { name } }")  # only orderCreate is limited
        assert reads["shop"]["name"] == "ecomsend sandbox"

        now[0] += 41  # the first order (at +5 s) is now 61 s old: one more fits
        assert post("T-5").status_code == 200
        assert post("T-6").status_code == 429
        assert sim.stats["order_rate_limited"] == 2
    assert TRIAL_ORDER_LIMIT.startswith("Exceeded order API rate limit")


# -- a state file from before locations and money ------------------------------------------------


def test_a_state_file_written_before_locations_and_edits_still_serves_its_orders(tmp_path):
    import sqlite3

    path = tmp_path / "s.db"
    with ShopifySimulator(path, products=catalog(1), **BIG_BUDGET) as sim:
        order_id = create(sim, us_order()).order_id
    db = sqlite3.connect(path)
    db.execute("DELETE FROM locations")
    db.execute("ALTER TABLE orders DROP COLUMN edits")
    db.execute("ALTER TABLE orders DROP COLUMN cancelled_at")
    db.commit()
    db.close()
    with ShopifySimulator(path, **BIG_BUDGET) as again:
        read = client_for(again).graphql(READ_ORDER, {"id": order_id})["order"]
        assert amount(read["totalPriceSet"]) == "26.2"
        assert edit(again, 1001, cancel=True).status_code == 200
        assert [v["locations"][SHOP_LOCATION] for v in again.inventory()] == [5, 3, 4]


def test_the_read_back_document_is_valid_against_shopifys_schema():
    from graphql import parse, validate

    from ecomsend_cli.sandbox.shopify_schema import load_schema_file
    from tests.conftest import fixture_path

    real = load_schema_file(fixture_path("shopify-admin-2026-07.graphql"))
    for document in (READ_ORDER, READ_NODES):
        assert validate(real, parse(document)) == []
