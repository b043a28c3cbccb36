"""The Shopify simulator, and the client and catalog refresh against it over real HTTP on 127.0.0.1.

Also checks that the simulator's schema is a true subset of Shopify's
2026-07 schema, so it cannot accept a document Shopify would refuse.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
)

from ecomsend_cli.catalog import catalog_is_stale, refresh_catalog
from ecomsend_cli.config import Secret, ShopifyConfig
from ecomsend_cli.errors import ApiError, OutcomeUnknownError
from ecomsend_cli.models import MemoryTokenCache
from ecomsend_cli.sandbox.shopify_schema import load_schema_file, simulator_schema
from ecomsend_cli.sandbox.shopify_sim import ShopifySimulator, parse_search
from ecomsend_cli.shopify import ShopifyClient
from ecomsend_cli.store import Store

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
ADMIN_SCHEMA = FIXTURES / "shopify-admin-2026-07.graphql"
OLD = "2026-01-01T00:00:00Z"


def catalog(products: int, per: int = 3, *, first: int = 1, updated: str = OLD) -> list[dict]:
    """Seed products; variant ids are product × 10 + position, SKUs ``SKU-p-i``."""
    out = []
    for p in range(first, first + products):
        out.append({
            "id": p, "title": f"Product {p}", "status": "ACTIVE", "updated_at": updated,
            "variants": [
                {"id": p * 10 + i, "title": f"Size {i}", "sku": f"SKU-{p}-{i}", "price": "12.00",
                 "inventory_item_id": p * 100 + i, "inventory_quantity": 5, "inventory_policy": "DENY"}
                for i in range(per)
            ],
        })
    return out


BIG_BUDGET = {"bucket_size": 1_000_000, "restore_rate": 1_000_000}


@pytest.fixture
def sim(tmp_path):
    with ShopifySimulator(tmp_path / "shopify.db", products=catalog(20), **BIG_BUDGET) as running:
        yield running


def client_for(sim: ShopifySimulator, *, credentials: bool = False, **options) -> ShopifyClient:
    creds = sim.credentials
    if credentials:
        config = ShopifyConfig(shop=sim.url, client_id=creds["client_id"],
                               client_secret=Secret(creds["client_secret"]))
    else:
        config = ShopifyConfig(shop=sim.url, access_token=Secret(creds["access_token"]))
    options.setdefault("backoff_base", 0.01)
    return ShopifyClient(config, options.pop("cache", None) or MemoryTokenCache(), **options)


def line(variant: int, quantity: int) -> dict:
    return {"variantId": f"gid://shopify/ProductVariant/{variant}", "quantity": quantity}


# -- the simulator's schema is Shopify's -------------------------------------------------------


def test_every_type_field_and_argument_of_the_simulator_exists_in_shopify_schema():
    if not ADMIN_SCHEMA.is_file():
        pytest.skip(f"Shopify's Admin API schema is not at {ADMIN_SCHEMA} (fixtures are not shipped)")
    real = load_schema_file(ADMIN_SCHEMA)
    mismatches = []
    for name, ours in simulator_schema().type_map.items():
        if name.startswith("__"):
            continue
        theirs = real.get_type(name)
        if theirs is None or type(theirs) is not type(ours):
            mismatches.append(f"type {name}")
            continue
        if isinstance(ours, GraphQLObjectType | GraphQLInterfaceType):
            if {i.name for i in ours.interfaces} - {i.name for i in theirs.interfaces}:
                mismatches.append(f"interfaces of {name}")
            for field_name, field in ours.fields.items():
                other = theirs.fields.get(field_name)
                if other is None or str(other.type) != str(field.type):
                    mismatches.append(f"field {name}.{field_name}")
                    continue
                for arg_name, arg in field.args.items():
                    real_arg = other.args.get(arg_name)
                    if (real_arg is None or str(real_arg.type) != str(arg.type)
                            or real_arg.default_value != arg.default_value):
                        mismatches.append(f"argument {name}.{field_name}({arg_name})")
                for arg_name, real_arg in other.args.items():
                    if arg_name not in field.args and str(real_arg.type).endswith("!"):
                        mismatches.append(f"required argument {name}.{field_name}({arg_name}) missing")
        elif isinstance(ours, GraphQLInputObjectType):
            for field_name, field in ours.fields.items():
                other = theirs.fields.get(field_name)
                if other is None or str(other.type) != str(field.type) or other.default_value != field.default_value:
                    mismatches.append(f"input field {name}.{field_name}")
        elif isinstance(ours, GraphQLEnumType):
            if set(ours.values) - set(theirs.values):
                mismatches.append(f"enum values of {name}")
        else:
            assert isinstance(ours, GraphQLScalarType)
    for directive in simulator_schema().directives:
        theirs = real.get_directive(directive.name)
        if theirs is None or set(directive.locations) != set(theirs.locations) or {
            name: str(arg.type) for name, arg in directive.args.items()
        } != {name: str(arg.type) for name, arg in theirs.args.items()}:
            mismatches.append(f"directive @{directive.name}")
    assert mismatches == []
    assert real.query_type.name == simulator_schema().query_type.name
    assert real.mutation_type.name == simulator_schema().mutation_type.name


def test_search_syntax_parsing():
    assert parse_search("sku:\"AB 1\\\"0\" updated_at:>'2026-01-01T00:00:00Z' AND blue") == [
        ("sku", "=", 'AB 1"0'), ("updated_at", ">", "2026-01-01T00:00:00Z"), (None, "=", "blue"),
    ]


# -- HTTP surface -------------------------------------------------------------------------------


def test_bad_token_is_refused_with_401(sim):
    response = httpx.post(f"{sim.url}/admin/api/2026-07/graphql.json", json={"query": "{ shop { name } }"},
                          headers={"X-Shopify-Access-Token": "shpat_wrong"})
    assert response.status_code == 401
    assert "Invalid API key or access token" in response.json()["errors"]


def test_throttled_answer_is_shaped_like_shopify(tmp_path):
    with ShopifySimulator(tmp_path / "s.db", products=catalog(2), bucket_size=50, restore_rate=1) as sim:
        response = httpx.post(
            f"{sim.url}/admin/api/2026-07/graphql.json",
            json={"query": "{ productVariants(first: 250) { nodes { id } } }"},
            headers={"X-Shopify-Access-Token": sim.credentials["access_token"]},
        )
    body = response.json()
    assert response.status_code == 200
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert body["extensions"]["cost"]["requestedQueryCost"] == 2 + 250
    assert body["extensions"]["cost"]["actualQueryCost"] is None
    status = body["extensions"]["cost"]["throttleStatus"]
    assert status["maximumAvailable"] == 50 and status["restoreRate"] == 1
    captured = FIXTURES / "shopify_throttled_error.json"
    if captured.is_file():
        real = json.loads(captured.read_text())
        assert set(body) == set(real)
        assert set(body["extensions"]["cost"]) == set(real["extensions"]["cost"])
        assert set(status) == set(real["extensions"]["cost"]["throttleStatus"])
        assert body["errors"][0]["message"] == real["errors"][0]["message"]


def test_query_costing_more_than_1000_is_refused(sim):
    document = "{ productVariants(first: 250) { nodes { id product { variants(first: 250) { nodes { id } } } } } }"
    with pytest.raises(ApiError) as caught:
        client_for(sim).graphql(document)
    assert caught.value.code == "MAX_COST_EXCEEDED"
    assert sim.stats["max_cost_exceeded"] == 1


def test_a_document_is_judged_the_same_every_time_it_is_sent(sim):
    # Validation results are cached by document text: a repeat must be refused (or served) alike.
    bad = "{ shop { name noSuchField } }"
    for _ in range(2):
        with pytest.raises(ApiError, match="Cannot query field 'noSuchField' on type 'Shop'"):
            client_for(sim).graphql(bad)
        assert client_for(sim).graphql("{ shop { name } }")["shop"]["name"] == "ecomsend sandbox"


def test_control_endpoints_over_http(sim):
    reply = httpx.post(f"{sim.url}/_sandbox/faults", json={"fail_next": [{"op": "shop", "kind": "error"}]})
    assert reply.json()["fail_next"][0]["op"] == "shop"
    client = client_for(sim)
    assert client.shop_info()["name"] == "ecomsend sandbox"  # the injected 500 was retried
    assert [e["status"] for e in sim.ops("shop")] == [500, 200]
    client.order_create({"lineItems": [line(11, 2)], "sourceIdentifier": "T-1"},
                        inventory_behaviour="DECREMENT_OBEYING_POLICY")
    orders = httpx.get(f"{sim.url}/_sandbox/orders").json()["orders"]
    assert [(o["source_identifier"], o["lines"][0]["quantity"]) for o in orders] == [("T-1", 2)]
    variants = httpx.get(f"{sim.url}/_sandbox/inventory").json()["variants"]
    stock = {v["variant_id"]: v["inventory_quantity"] for v in variants}
    assert stock["gid://shopify/ProductVariant/11"] == 3
    state = httpx.get(f"{sim.url}/_sandbox/state").json()
    assert state["variants"] == 60 and state["orders"] == 1


def test_restarted_simulator_keeps_orders_inventory_and_credentials(tmp_path):
    path = tmp_path / "shopify.db"
    with ShopifySimulator(path, products=catalog(2)) as first:
        creds = first.credentials
        client_for(first).order_create({"lineItems": [line(11, 1)], "sourceIdentifier": "T-9"},
                                       inventory_behaviour="DECREMENT_IGNORING_POLICY")
    with ShopifySimulator(path, products=catalog(5)) as second:  # products ignored: not a new file
        assert second.credentials == creds
        assert [o["source_identifier"] for o in second.orders()] == ["T-9"]
        assert len(second.inventory()) == 6
        assert client_for(second).orders_by_source_identifier("T-9")[0]["name"] == "#1001"


# -- catalog reads ---------------------------------------------------------------------------------


def test_pagination_across_many_pages(tmp_path):
    with ShopifySimulator(tmp_path / "s.db", products=catalog(400), **BIG_BUDGET) as sim:
        variants = list(client_for(sim).iter_variants(page_size=50))
        pages = len(sim.ops("productVariants"))
    assert len(variants) == 1200
    assert len({v.variant_id for v in variants}) == 1200
    assert pages == 24
    assert variants[0].product_title == "Product 1" and variants[0].sku == "SKU-1-0"


def test_throttled_burst_from_several_threads_ends_with_every_read_done(tmp_path):
    # A bucket that holds one page query (182 points) and refills fast: the first
    # burst of six overdraws it for certain (the client does not know the bucket
    # yet), later calls wait for it instead.
    with ShopifySimulator(tmp_path / "s.db", products=catalog(20), bucket_size=200, restore_rate=5_000) as sim:
        client = client_for(sim)
        results: list[int] = []
        failures: list[BaseException] = []
        start = threading.Barrier(6)  # released together: the burst is one burst even on a busy machine

        def reader() -> None:
            try:
                start.wait(timeout=30)
                for _ in range(4):
                    results.append(len(list(client.iter_variants(page_size=60))))
            except BaseException as exc:  # collected: a thread's exception must fail the test
                failures.append(exc)

        threads = [threading.Thread(target=reader) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        throttled = sim.stats["throttled"]
    assert failures == []
    assert results == [60] * 24
    assert throttled >= 1  # the burst really was throttled, and retried to the end
    assert client.limiter.maximum == 200


def test_bulk_operation_catalog_equals_paged_catalog(tmp_path):
    products = catalog(30)
    products[0]["variants"][0]["sku"] = None  # a variant without SKU
    products[1]["variants"][0]["tracked"] = False  # untracked: no quantity
    products[2]["status"] = "DRAFT"
    with ShopifySimulator(tmp_path / "s.db", products=products, bulk_delay_seconds=0.1, **BIG_BUDGET) as sim:
        client = client_for(sim)
        bulk = sorted(client.bulk_variants(poll_interval=0.05), key=lambda v: v.variant_id)
        paged = sorted(client.iter_variants(), key=lambda v: v.variant_id)
        polls = len(sim.ops("bulkOperation"))
    assert len(bulk) == 90
    assert bulk == paged
    assert polls >= 2  # it polled while the operation ran
    by_id = {v.variant_id: v for v in bulk}
    assert by_id["gid://shopify/ProductVariant/10"].sku == ""
    assert by_id["gid://shopify/ProductVariant/20"].inventory_quantity is None
    assert by_id["gid://shopify/ProductVariant/30"].status == "DRAFT"


def test_bulk_download_cut_off_midway_is_resumed(sim):
    sim.set_faults(fail_next=[{"op": "bulk_download", "kind": "truncated"}])
    variants = list(client_for(sim).bulk_variants(poll_interval=0.05))
    downloads = sim.ops("bulk_download")
    assert len(variants) == 60 and len({v.variant_id for v in variants}) == 60
    assert [d["fault"] for d in downloads] == ["truncated", None]


def test_variants_by_sku_gets_near_matches_and_keeps_the_exact_one(tmp_path):
    products = catalog(1)
    products[0]["variants"][0]["sku"] = "AB-100"
    products[0]["variants"][1]["sku"] = "ab-1000"
    products[0]["variants"][2]["sku"] = "AB-100"  # Shopify SKUs are not unique
    with ShopifySimulator(tmp_path / "s.db", products=products, **BIG_BUDGET) as sim:
        client = client_for(sim)
        raw = client.graphql("{ productVariants(first: 10, query: \"sku:AB-100\") { nodes { sku } } }")
        exact = client.variants_by_sku("AB-100")
    assert sorted(n["sku"] for n in raw["productVariants"]["nodes"]) == ["AB-100", "AB-100", "ab-1000"]
    assert [v.variant_id for v in exact] == ["gid://shopify/ProductVariant/10", "gid://shopify/ProductVariant/12"]


# -- orders ------------------------------------------------------------------------------------------


def test_lost_response_on_order_create_raises_unknown_and_the_order_exists_once(sim):
    sim.set_faults(fail_next=[{"op": "orderCreate", "kind": "lost_response"}])
    client = client_for(sim)
    with pytest.raises(OutcomeUnknownError):
        client.order_create({"lineItems": [line(11, 2)], "sourceIdentifier": "576461413038785752"},
                            inventory_behaviour="DECREMENT_OBEYING_POLICY")
    assert len(sim.ops("orderCreate")) == 1
    assert [o["source_identifier"] for o in sim.orders()] == ["576461413038785752"]
    stock = {v["variant_id"]: v["inventory_quantity"] for v in sim.inventory()}
    assert stock["gid://shopify/ProductVariant/11"] == 3  # claimed once
    found = client.orders_by_source_identifier("576461413038785752")
    assert len(found) == 1 and found[0]["name"] == "#1001"


def test_search_index_lag_hides_a_new_order_for_a_while(tmp_path):
    now = [1_800_000_000.0]
    with ShopifySimulator(tmp_path / "s.db", products=catalog(1), clock=lambda: now[0],
                          index_lag_seconds=30, **BIG_BUDGET) as sim:
        client = client_for(sim)
        created = client.order_create({"lineItems": [line(11, 1)], "sourceIdentifier": "T-lag"},
                                      inventory_behaviour="BYPASS")
        assert client.orders_by_source_identifier("T-lag") == []
        now[0] += 31
        found = client.orders_by_source_identifier("T-lag")
    assert [o["id"] for o in found] == [created.order_id]


@pytest.mark.parametrize(("behaviour", "policy", "quantity", "stock_after", "error"), [
    ("BYPASS", "DENY", 9, 5, None),
    ("DECREMENT_IGNORING_POLICY", "DENY", 9, -4, None),
    ("DECREMENT_OBEYING_POLICY", "DENY", 5, 0, None),
    ("DECREMENT_OBEYING_POLICY", "DENY", 6, 5, "INVENTORY_CLAIM_FAILED"),
    ("DECREMENT_OBEYING_POLICY", "CONTINUE", 6, -1, None),
])
def test_order_create_claims_inventory_per_behaviour(tmp_path, behaviour, policy, quantity, stock_after, error):
    products = catalog(1)
    products[0]["variants"][1]["inventory_policy"] = policy
    with ShopifySimulator(tmp_path / "s.db", products=products, **BIG_BUDGET) as sim:
        # Two lines of one variant: the claim is on their sum.
        order = {"lineItems": [line(11, quantity - 1), line(11, 1)], "sourceIdentifier": "T-inv"}
        result = client_for(sim).order_create(order, inventory_behaviour=behaviour)
        stock = {v["variant_id"]: v["inventory_quantity"] for v in sim.inventory()}
        orders = sim.orders()
    assert stock["gid://shopify/ProductVariant/11"] == stock_after
    if error:
        assert [e["code"] for e in result.user_errors] == [error]
        assert result.order_id is None and orders == []
    else:
        assert result.ok and [o["inventory_behaviour"] for o in orders] == [behaviour]


def test_unknown_variant_is_a_user_error(sim):
    result = client_for(sim).order_create({"lineItems": [line(999, 1)]}, inventory_behaviour="BYPASS")
    assert result.user_errors[0]["code"] == "INVALID"
    assert result.user_errors[0]["field"] == ["order", "lineItems", "0", "variantId"]
    assert sim.orders() == []


def test_reads_survive_random_errors_and_dropped_connections(tmp_path):
    with ShopifySimulator(tmp_path / "s.db", products=catalog(100), fault_seed=3, error_rate=0.2,
                          drop_rate=0.1, **BIG_BUDGET) as sim:
        variants = list(client_for(sim, max_retries=8).iter_variants(page_size=25))
        faults = [e["fault"] for e in sim.ops("productVariants")]
    assert len({v.variant_id for v in variants}) == 300
    assert "error" in faults and "drop" in faults


def test_orders_created_under_faults_exist_exactly_once_after_reconciling(tmp_path):
    # What the sync engine does (DESIGN §5.4): an unknown outcome is looked up
    # by source identifier and created again only if absent.
    with ShopifySimulator(tmp_path / "s.db", products=catalog(5), fault_seed=11, lost_response_rate=0.3,
                          drop_rate=0.1, error_rate=0.1, **BIG_BUDGET) as sim:
        client = client_for(sim, max_retries=8)
        unknown = 0
        for number in range(30):
            source = f"T-{number}"
            while True:
                try:
                    client.order_create({"lineItems": [line(11, 1)], "sourceIdentifier": source},
                                        inventory_behaviour="DECREMENT_IGNORING_POLICY")
                    break
                except OutcomeUnknownError:
                    unknown += 1
                    if client.orders_by_source_identifier(source):
                        break
        orders = sim.orders()
        stock = {v["variant_id"]: v["inventory_quantity"] for v in sim.inventory()}
    assert unknown >= 5  # the faults really struck
    assert sorted(o["source_identifier"] for o in orders) == sorted(f"T-{n}" for n in range(30))
    assert stock["gid://shopify/ProductVariant/11"] == 5 - 30


# -- client credentials -----------------------------------------------------------------------------


def test_expired_token_is_renewed_once_for_all_threads(sim):
    client = client_for(sim, credentials=True)
    client.shop_info()
    sim.expire_tokens()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.shop_info()
        except BaseException as exc:  # collected: a thread's exception must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(sim.ops("token")) == 2
    assert sim.stats["unauthorized"] >= 1


def test_wrong_client_secret_gets_a_clear_auth_error(sim):
    config = ShopifyConfig(shop=sim.url, client_id=sim.credentials["client_id"],
                           client_secret=Secret("shpss_wrong_secret_value"))
    with pytest.raises(Exception) as caught:
        ShopifyClient(config, MemoryTokenCache()).shop_info()
    assert type(caught.value).__name__ == "AuthError"
    assert "shpss_wrong_secret_value" not in str(caught.value)
    assert "client_secret" in str(caught.value)


# -- catalog refresh into a real store ---------------------------------------------------------------


def test_full_then_incremental_catalog_refresh(tmp_path, sim):
    store = Store.open(tmp_path / "ecomsend.db")
    client = client_for(sim)
    first = refresh_catalog(store, client, now=datetime(2026, 6, 1, tzinfo=UTC), poll_interval=0.05)
    assert (first.mode, first.variants) == ("full", 60)
    assert store.variant_count() == 60
    assert store.get_state("catalog.refreshed_at") == "2026-06-01T00:00:00Z"

    later = "2026-06-02T00:00:00Z"
    changed = catalog(3, updated=later)
    changed[0]["title"] = "Renamed"  # product 1: every variant shows the new title
    changed[1]["variants"] = changed[1]["variants"][:1]  # product 2: two variants deleted
    changed[2]["variants"][0]["sku"] = "NEW-SKU"  # product 3: a SKU edited
    changed.append(catalog(1, first=99, updated=later)[0])  # a new product
    sim.add_products(changed)

    second = refresh_catalog(store, client, now=datetime(2026, 6, 3, tzinfo=UTC))
    assert second.mode == "incremental"
    assert second.products == 4
    assert store.variant_count() == 60 - 2 + 3
    assert store.variant("gid://shopify/ProductVariant/10").product_title == "Renamed"
    assert store.variant("gid://shopify/ProductVariant/21") is None
    assert [v.variant_id for v in store.variants_by_sku("NEW-SKU")] == ["gid://shopify/ProductVariant/30"]
    assert store.variant("gid://shopify/ProductVariant/990").product_title == "Product 99"
    # Unchanged products were not fetched again: one productVariants page per query kind.
    assert len(sim.ops("productVariants")) == 2
    store.close()


def test_a_full_refresh_writes_rows_without_a_variant_object_each(tmp_path, sim, monkeypatch):
    """The bulk file goes to the store as rows (issue 13: 250,000 ``Variant`` objects cost 0.5 s),
    and the cache holds exactly what the ``Variant`` records of the same file say."""
    from ecomsend_cli import models, shopify

    client = client_for(sim)
    expected = sorted(client.bulk_variants(poll_interval=0.05), key=lambda v: v.variant_id)
    built = []

    class Counted(models.Variant):
        def __init__(self, *args, **kwargs):
            built.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(shopify, "Variant", Counted)
    with Store.open(tmp_path / "ecomsend.db") as store:
        result = refresh_catalog(store, client, full=True, poll_interval=0.05)
        cached = sorted(store.iter_variants(), key=lambda v: v.variant_id)
    assert built == []
    assert (result.mode, result.variants) == ("full", 60)
    assert cached == expected and len({v.variant_id for v in cached}) == 60


def test_catalog_staleness(tmp_path):
    store = Store.open(tmp_path / "ecomsend.db")
    assert catalog_is_stale(store, 60)
    store.set_state("catalog.refreshed_at", "2026-06-01T00:00:00Z")
    assert not catalog_is_stale(store, 60, now=datetime(2026, 6, 1, 0, 59, tzinfo=UTC))
    assert catalog_is_stale(store, 60, now=datetime(2026, 6, 1, 1, 0, tzinfo=UTC))
    store.close()
