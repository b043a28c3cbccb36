"""The Shopify client's error paths, over ``httpx.MockTransport`` (no network, no real waits).

Each test scripts Shopify's answers, then checks what the client did: how
many requests it sent, how long it chose to wait, and what it raised.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ecomsend_cli.config import Secret, ShopifyConfig
from ecomsend_cli.errors import (
    ApiError,
    AuthError,
    InputError,
    NetworkError,
    OutcomeUnknownError,
    RateLimitedError,
)
from ecomsend_cli.matching import sku_key
from ecomsend_cli.models import MemoryTokenCache
from ecomsend_cli.shopify import ShopifyClient

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
SHOP = "http://127.0.0.1:9"  # never contacted: every answer comes from the mock
GRAPHQL = f"{SHOP}/admin/api/2026-07/graphql.json"
TOKEN_URL = f"{SHOP}/admin/oauth/access_token"
CLIENT_SECRET = "shpss_do-not-leak-0123456789"
ORDER = {"lineItems": [{"variantId": "gid://shopify/ProductVariant/11", "quantity": 1}],
         "sourceIdentifier": "576461413038785752"}


class FakeTime:
    """A clock that only moves when the client sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.wall = 1_800_000_000.0
        self.sleeps: list[float] = []
        self.events: list[str] = []

    def clock(self) -> float:
        return self.now

    def wall_clock(self) -> float:
        return self.wall

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.events.append(f"sleep {seconds:.2f}")
        self.now += seconds
        self.wall += seconds


def cost(available: float = 1990, requested: int = 10, actual: int | None = 10,
         maximum: float = 2000, rate: float = 100) -> dict:
    return {
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": {"maximumAvailable": maximum, "currentlyAvailable": available,
                           "restoreRate": rate},
    }


def ok(data: dict, **cost_args) -> httpx.Response:
    return httpx.Response(200, json={"data": data, "extensions": {"cost": cost(**cost_args)}})


def throttled(requested: int = 507, available: float = 493, maximum: float = 1000,
              rate: float = 50) -> httpx.Response:
    return httpx.Response(200, json={
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "extensions": {"cost": cost(available, requested, None, maximum, rate)},
    })


SHOP_DATA = {"shop": {"name": "S", "myshopifyDomain": "s.myshopify.com", "currencyCode": "USD"},
             "currentAppInstallation": {"accessScopes": [{"handle": "write_orders"}]}}
CREATED = {"orderCreate": {"order": {"id": "gid://shopify/Order/1", "name": "#1001",
                                     "sourceIdentifier": "576461413038785752"},
                           "userErrors": []}}


class Script:
    """A mock Shopify: answers GraphQL calls from a list, in order, and logs every request."""

    def __init__(self, *answers: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response],
                 time: FakeTime | None = None) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.time = time

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.time is not None:
            self.time.events.append(f"request {request.url.path}")
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer

    @property
    def graphql_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path.endswith("graphql.json")]


def make_client(script: Script, time: FakeTime | None = None, **config) -> ShopifyClient:
    time = time or FakeTime()
    script.time = script.time or time
    if "client_id" in config:
        settings = ShopifyConfig(shop=SHOP, client_id=config["client_id"],
                                 client_secret=Secret(config.get("client_secret", CLIENT_SECRET)))
    else:
        settings = ShopifyConfig(shop=SHOP, access_token=Secret(config.get("access_token", "shpat_static")))
    return ShopifyClient(
        settings, config.get("cache") or MemoryTokenCache(), transport=httpx.MockTransport(script),
        sleep=time.sleep, clock=time.clock, wall_clock=time.wall_clock, max_retries=3,
        rng=random.Random(7),
    )


# -- retries of reads ---------------------------------------------------------------------


def test_throttled_then_success_waits_for_the_refill_then_retries():
    time = FakeTime()
    script = Script(throttled(requested=507, available=493, rate=50), ok(SHOP_DATA), time=time)
    client = make_client(script, time)
    info = client.shop_info()
    assert info["name"] == "S"
    assert len(script.graphql_requests) == 2
    # The missing 14 points at 50/s take 0.28 s; jitter adds at most 10 %.
    assert 0.28 <= sum(time.sleeps) <= 0.28 * 1.1 + 0.01


def test_shopify_throttled_fixture_is_understood():
    path = FIXTURES / "shopify_throttled_error.json"
    if not path.is_file():
        pytest.skip(f"{path} is not present (fixtures are not shipped)")
    answer = httpx.Response(200, json=json.loads(path.read_text()))
    time = FakeTime()
    script = Script(answer, ok(SHOP_DATA), time=time)
    make_client(script, time).shop_info()
    assert len(script.graphql_requests) == 2
    assert sum(time.sleeps) >= (507 - 493) / 50.0


def test_throttled_forever_gives_up_with_rate_limited_error():
    script = Script(*[throttled() for _ in range(40)])
    with pytest.raises(RateLimitedError):
        make_client(script).shop_info()


def test_429_honours_retry_after():
    time = FakeTime()
    script = Script(httpx.Response(429, headers={"Retry-After": "3"}, json={"errors": "Throttled"}),
                    ok(SHOP_DATA), time=time)
    make_client(script, time).shop_info()
    assert len(script.graphql_requests) == 2
    assert 3.0 in time.sleeps


def test_burst_of_5xx_is_retried_with_growing_backoff():
    time = FakeTime()
    script = Script(httpx.Response(503), httpx.Response(502), httpx.Response(500), ok(SHOP_DATA), time=time)
    assert make_client(script, time).shop_info()["name"] == "S"
    assert len(script.graphql_requests) == 4
    assert len(time.sleeps) == 3
    # Equal jitter: attempt n waits between half and all of 0.5 × 2^(n-1).
    for attempt, slept in enumerate(time.sleeps, 1):
        assert 0.25 * 2 ** (attempt - 1) <= slept <= 0.5 * 2 ** (attempt - 1)


def test_5xx_that_never_ends_raises_network_error_after_the_retries():
    script = Script(*[httpx.Response(503) for _ in range(10)])
    with pytest.raises(NetworkError) as caught:
        make_client(script).shop_info()
    assert len(script.graphql_requests) == 4  # the first try and max_retries=3 more
    assert "503" in str(caught.value)


@pytest.mark.parametrize("failure", [httpx.ReadError("reset"), httpx.RemoteProtocolError("gone"),
                                     httpx.ReadTimeout("slow"), httpx.ConnectError("refused")])
def test_network_error_on_a_read_is_retried(failure):
    script = Script(failure, ok(SHOP_DATA))
    assert make_client(script).shop_info()["name"] == "S"
    assert len(script.graphql_requests) == 2


def test_graphql_errors_raise_api_error_with_shopify_message():
    script = Script(httpx.Response(200, json={"errors": [{"message": "Field 'nope' doesn't exist"}]}))
    with pytest.raises(ApiError, match="Field 'nope' doesn't exist"):
        make_client(script).shop_info()


def test_access_denied_is_an_auth_error_naming_the_scope_problem():
    script = Script(httpx.Response(200, json={"errors": [{
        "message": "Access denied for orders field.", "extensions": {"code": "ACCESS_DENIED"}}]}))
    with pytest.raises(AuthError) as caught:
        make_client(script).orders_by_source_identifier("1")
    assert "scope" in str(caught.value)


# -- orderCreate: never sent twice ----------------------------------------------------------


@pytest.mark.parametrize("failure", [httpx.RemoteProtocolError("Server disconnected without sending a response"),
                                     httpx.ReadError("connection reset"), httpx.ReadTimeout("timed out"),
                                     httpx.WriteTimeout("timed out")])
def test_order_create_with_unknown_outcome_is_sent_exactly_once(failure):
    script = Script(failure, ok(CREATED))
    with pytest.raises(OutcomeUnknownError):
        make_client(script).order_create(ORDER, inventory_behaviour="DECREMENT_OBEYING_POLICY")
    assert len(script.graphql_requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_order_create_answered_5xx_is_unknown_not_retried(status):
    script = Script(httpx.Response(status), ok(CREATED))
    with pytest.raises(OutcomeUnknownError):
        make_client(script).order_create(ORDER, inventory_behaviour="BYPASS")
    assert len(script.graphql_requests) == 1


def test_order_create_error_during_execution_is_unknown():
    answer = httpx.Response(200, json={"data": {"orderCreate": None}, "errors": [
        {"message": "Internal error", "path": ["orderCreate"], "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]})
    script = Script(answer, ok(CREATED))
    with pytest.raises(OutcomeUnknownError):
        make_client(script).order_create(ORDER, inventory_behaviour="BYPASS")
    assert len(script.graphql_requests) == 1


def test_order_create_refused_by_validation_is_a_plain_error():
    # No path: the document or its variables were refused before anything ran.
    answer = httpx.Response(200, json={"errors": [
        {"message": "Variable $order of type OrderCreateOrderInput! was provided invalid value",
         "extensions": {"code": "INVALID_VARIABLE"}}]})
    script = Script(answer)
    with pytest.raises(ApiError) as caught:
        make_client(script).order_create(ORDER, inventory_behaviour="BYPASS")
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert "invalid value" in str(caught.value)


STRANGE_ANSWERS = {
    "HTTP 400": httpx.Response(400, json={"errors": "Bad Request"}),
    "HTTP 403": httpx.Response(403, text="Forbidden"),
    "HTTP 404": httpx.Response(404, text="Not Found"),
    "HTTP 408": httpx.Response(408, text="Request Timeout"),
    "HTTP 409": httpx.Response(409, json={"errors": "Conflict"}),
    "HTTP 422": httpx.Response(422, json={"errors": {"order": ["is invalid"]}}),
    "an HTML page": httpx.Response(200, text="<html><body>Oops</body></html>",
                                   headers={"content-type": "text/html"}),
    "data: null": httpx.Response(200, json={"data": None}),
    "orderCreate: null": httpx.Response(200, json={"data": {"orderCreate": None}}),
    "errors without a code": httpx.Response(200, json={"errors": [{"message": "Something went wrong"}]}),
    "errors as a string": httpx.Response(200, json={"errors": "Internal error"}),
    "order: null, no userErrors": httpx.Response(200, json={"data": {"orderCreate": {"order": None,
                                                                                      "userErrors": []}}}),
    "userErrors as a string": httpx.Response(200, json={"data": {"orderCreate": {
        "order": None, "userErrors": "Unable to claim inventory"}}}),
    "an order without an id": httpx.Response(200, json={"data": {"orderCreate": {
        "order": {"name": "#1001"}, "userErrors": []}}}),
    "a JSON list": httpx.Response(200, json=[1, 2]),
}


@pytest.mark.parametrize("shape", sorted(STRANGE_ANSWERS))
def test_order_create_answered_strangely_is_unknown_never_failed_or_resent(shape):
    """DESIGN §5.4: only an order id or well-formed userErrors are final answers."""
    script = Script(STRANGE_ANSWERS[shape], ok(CREATED))
    with pytest.raises(OutcomeUnknownError):
        make_client(script).order_create(ORDER, inventory_behaviour="BYPASS")
    assert len(script.graphql_requests) == 1


def test_order_create_refused_for_a_missing_scope_is_known_not_created():
    answer = httpx.Response(200, json={"data": None, "errors": [{
        "message": "Access denied for orderCreate field. Required access: `write_orders` access scope.",
        "path": ["orderCreate"], "extensions": {"code": "ACCESS_DENIED"}}]})
    with pytest.raises(AuthError) as caught:
        make_client(Script(answer)).order_create(ORDER, inventory_behaviour="BYPASS")
    assert not isinstance(caught.value, OutcomeUnknownError)


def test_batched_lookup_asks_once_for_many_ids_and_keeps_exact_matches():
    answer = ok({"orders": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": [
        {"id": "gid://shopify/Order/1", "name": "#1001", "sourceIdentifier": "A1", "createdAt": "x"},
        {"id": "gid://shopify/Order/2", "name": "#1002", "sourceIdentifier": "A12", "createdAt": "y"},
    ]}})
    script = Script(answer)
    found = make_client(script).orders_by_source_identifiers(["A1", "B2", 'C "3"'])
    assert {k: [o["id"] for o in v] for k, v in found.items()} == {
        "A1": ["gid://shopify/Order/1"], "B2": [], 'C "3"': []}
    assert len(script.graphql_requests) == 1
    sent = json.loads(script.graphql_requests[0].content)["variables"]["query"]
    assert sent == 'source_identifier:"A1" OR source_identifier:"B2" OR source_identifier:"C \\"3\\""'


def test_order_create_that_never_connected_is_retried():
    script = Script(httpx.ConnectError("refused"), ok(CREATED))
    result = make_client(script).order_create(ORDER, inventory_behaviour="BYPASS")
    assert result.order_id == "gid://shopify/Order/1"
    assert len(script.graphql_requests) == 2


def test_order_create_throttled_or_429_is_retried_because_shopify_did_nothing():
    script = Script(throttled(requested=10, available=0, rate=100),
                    httpx.Response(429, headers={"Retry-After": "1"}), ok(CREATED))
    result = make_client(script).order_create(ORDER, inventory_behaviour="BYPASS")
    assert result.ok
    assert len(script.graphql_requests) == 3


def test_order_create_sends_the_order_and_inventory_behaviour():
    script = Script(ok(CREATED))
    make_client(script).order_create(ORDER, inventory_behaviour="DECREMENT_OBEYING_POLICY")
    sent = json.loads(script.graphql_requests[0].content)
    assert sent["variables"] == {"order": ORDER, "options": {"inventoryBehaviour": "DECREMENT_OBEYING_POLICY"}}
    assert "orderCreate(order: $order, options: $options)" in sent["query"]


def test_order_create_returns_user_errors():
    answer = ok({"orderCreate": {"order": None, "userErrors": [{
        "field": ["order", "lineItems", "0"], "message": "Unable to claim inventory",
        "code": "INVENTORY_CLAIM_FAILED"}]}})
    result = make_client(Script(answer)).order_create(ORDER, inventory_behaviour="DECREMENT_OBEYING_POLICY")
    assert not result.ok
    assert result.order_id is None
    assert result.user_errors == [{"field": ["order", "lineItems", "0"], "message": "Unable to claim inventory",
                                   "code": "INVENTORY_CLAIM_FAILED"}]


def test_order_create_reads_shopify_captured_response():
    path = FIXTURES / "shopify_orderCreate_response.json"
    if not path.is_file():
        pytest.skip(f"{path} is not present (fixtures are not shipped)")
    answer = httpx.Response(200, json=json.loads(path.read_text()))
    result = make_client(Script(answer)).order_create(ORDER, inventory_behaviour="BYPASS")
    assert result.order_id == "gid://shopify/Order/6824239235305"
    assert result.order_name == "#1314"
    assert result.user_errors == []


def test_unknown_inventory_behaviour_is_refused_before_sending():
    script = Script()
    with pytest.raises(InputError):
        make_client(script).order_create(ORDER, inventory_behaviour="DECREMENT")
    assert script.requests == []


# -- authentication ----------------------------------------------------------------------------


def grant(token: str, expires_in: int = 86399) -> httpx.Response:
    return httpx.Response(200, json={"access_token": token, "scope": "write_orders", "expires_in": expires_in})


def test_client_credentials_token_is_fetched_cached_and_sent():
    cache = MemoryTokenCache()
    script = Script(grant("tok-A"), ok(SHOP_DATA))
    make_client(script, client_id="app-1", cache=cache).shop_info()
    token_request, call = script.requests
    assert token_request.url == TOKEN_URL
    form = dict(httpx.QueryParams(token_request.content.decode()))
    assert form == {"client_id": "app-1", "client_secret": CLIENT_SECRET, "grant_type": "client_credentials"}
    assert call.headers["X-Shopify-Access-Token"] == "tok-A"
    saved = cache.load_token("shopify")
    assert saved["access_token"] == "tok-A"
    assert saved["expires_at"] == int(FakeTime().wall + 86399)


def test_401_renews_the_token_through_client_credentials():
    cache = MemoryTokenCache()
    script = Script(grant("tok-A"), httpx.Response(401, json={"errors": "[API] Invalid API key or access token"}),
                    grant("tok-B"), ok(SHOP_DATA))
    make_client(script, client_id="app-1", cache=cache).shop_info()
    sent = [r.headers.get("X-Shopify-Access-Token") for r in script.graphql_requests]
    assert sent == ["tok-A", "tok-B"]
    assert cache.load_token("shopify")["access_token"] == "tok-B"


def test_cached_token_of_another_process_is_reused():
    cache = MemoryTokenCache()
    cache.save_token("shopify", {"access_token": "tok-cached", "expires_at": FakeTime().wall + 3600,
                                 "shop": SHOP, "client_id": "app-1"})
    script = Script(ok(SHOP_DATA))
    make_client(script, client_id="app-1", cache=cache).shop_info()
    assert [r.url.path for r in script.requests] == ["/admin/api/2026-07/graphql.json"]
    assert script.requests[0].headers["X-Shopify-Access-Token"] == "tok-cached"


def test_token_is_renewed_before_it_expires():
    time = FakeTime()
    script = Script(grant("tok-A", expires_in=600), ok(SHOP_DATA), ok(SHOP_DATA), grant("tok-B"), ok(SHOP_DATA),
                    time=time)
    client = make_client(script, time, client_id="app-1")
    client.shop_info()
    time.wall += 500  # 100 s of 600 left: still good
    client.shop_info()
    time.wall += 45  # within a tenth of its life of expiry: renew before calling
    client.shop_info()
    assert [r.headers.get("X-Shopify-Access-Token") for r in script.graphql_requests] == ["tok-A", "tok-A", "tok-B"]


def test_bad_client_secret_is_an_auth_error_that_never_shows_the_secret():
    script = Script(httpx.Response(401, json={"error": "invalid_client",
                                              "error_description": f"bad secret {CLIENT_SECRET}"}))
    with pytest.raises(AuthError) as caught:
        make_client(script, client_id="app-1").shop_info()
    error = caught.value
    text = " ".join([str(error), repr(error), error.message, error.hint or "", repr(error.args)])
    assert CLIENT_SECRET not in text
    assert "client_secret" in text and "invalid_client" in text
    assert script.graphql_requests == []


def test_refused_static_token_says_which_setting_to_fix():
    script = Script(httpx.Response(401, json={"errors": "[API] Invalid API key or access token"}))
    with pytest.raises(AuthError) as caught:
        make_client(script, access_token="shpat_secret_value").shop_info()
    assert "shopify.access_token" in str(caught.value)
    assert "shpat_secret_value" not in str(caught.value)


# -- the cost limiter -----------------------------------------------------------------------------


def test_limiter_waits_before_sending_when_the_bucket_is_low():
    time = FakeTime()
    page = {"productVariants": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": []}}
    # Shopify says 10 points are left, restoring at 100/s; a variants page costs 752.
    script = Script(ok(SHOP_DATA, available=10, requested=2, actual=2), ok(page), time=time)
    client = make_client(script, time)
    client.shop_info()
    list(client.iter_variants())
    # It waited for the refill *before* the second request, and was not throttled.
    assert time.events[1].startswith("sleep") and time.events[-1] == "request /admin/api/2026-07/graphql.json"
    assert 7.42 <= sum(time.sleeps) <= 7.42 * 1.1 + 0.01


def test_limiter_learns_the_real_cost_of_a_document():
    time = FakeTime()
    script = Script(ok(SHOP_DATA, available=100, requested=2, actual=2),
                    ok(SHOP_DATA, available=98, requested=2, actual=2), time=time)
    client = make_client(script, time)
    client.shop_info()
    client.shop_info()
    assert time.sleeps == []  # 2 points were needed, not the default estimate


# -- catalog calls ---------------------------------------------------------------------------------


def variant_node(number: int, sku: str | None, product: int = 1) -> dict:
    return {"id": f"gid://shopify/ProductVariant/{number}", "title": f"V{number}", "sku": sku,
            "inventoryQuantity": 3, "inventoryItem": {"id": f"gid://shopify/InventoryItem/{number}"},
            "product": {"id": f"gid://shopify/Product/{product}", "title": "Tee", "status": "ACTIVE",
                        "updatedAt": "2026-01-01T00:00:00Z"}}


def page(nodes: list[dict], cursor: str | None) -> httpx.Response:
    return ok({"productVariants": {"pageInfo": {"hasNextPage": cursor is not None, "endCursor": cursor},
                                   "nodes": nodes}})


def test_iter_variants_follows_cursors_and_sends_the_incremental_filter():
    script = Script(page([variant_node(1, "A")], "c1"), page([variant_node(2, "B")], None))
    variants = list(make_client(script).iter_variants(updated_since="2026-05-01T00:00:00Z"))
    assert [v.variant_id for v in variants] == ["gid://shopify/ProductVariant/1", "gid://shopify/ProductVariant/2"]
    sent = [json.loads(r.content)["variables"] for r in script.graphql_requests]
    assert sent[0] == {"first": 250, "after": None, "query": "updated_at:>'2026-05-01T00:00:00Z'"}
    assert sent[1]["after"] == "c1"
    assert variants[0].product_title == "Tee" and variants[0].inventory_item_id == "gid://shopify/InventoryItem/1"


def test_variants_by_sku_drops_shopify_near_matches():
    nodes = [variant_node(1, "AB-100"), variant_node(2, "ab-100 "), variant_node(3, "AB-1000")]
    script = Script(page(nodes, None), page(nodes, None))
    client = make_client(script)
    assert [v.variant_id for v in client.variants_by_sku("AB-100")] == ["gid://shopify/ProductVariant/1"]
    loose = client.variants_by_sku("AB-100", key=sku_key)
    assert [v.variant_id for v in loose] == ["gid://shopify/ProductVariant/1", "gid://shopify/ProductVariant/2"]
    assert json.loads(script.graphql_requests[0].content)["variables"]["query"] == 'sku:"AB-100"'


def test_orders_by_source_identifier_keeps_exact_matches_only():
    answer = ok({"orders": {"nodes": [
        {"id": "gid://shopify/Order/1", "name": "#1001", "sourceIdentifier": "5764", "createdAt": "x"},
        {"id": "gid://shopify/Order/2", "name": "#1002", "sourceIdentifier": "57641", "createdAt": "y"},
    ]}})
    script = Script(answer)
    found = make_client(script).orders_by_source_identifier("5764")
    assert [o["id"] for o in found] == ["gid://shopify/Order/1"]
    assert json.loads(script.graphql_requests[0].content)["variables"]["query"] == 'source_identifier:"5764"'


def bulk_script(jsonl_answers: list, time: FakeTime | None = None) -> Script:
    running = ok({"bulkOperation": {"id": "gid://shopify/BulkOperation/7", "status": "RUNNING"}})
    done = ok({"bulkOperation": {"id": "gid://shopify/BulkOperation/7", "status": "COMPLETED",
                                 "url": "http://127.0.0.1:9/results/7.jsonl", "objectCount": "3"}})
    started = ok({"bulkOperationRunQuery": {"bulkOperation": {"id": "gid://shopify/BulkOperation/7",
                                                              "status": "CREATED"}, "userErrors": []}})
    return Script(started, running, done, *jsonl_answers, time=time)


JSONL = (
    b'{"id":"gid://shopify/ProductVariant/11","title":"S","sku":"T-S","inventoryQuantity":4,'
    b'"inventoryItem":{"id":"gid://shopify/InventoryItem/11"},"__parentId":"gid://shopify/Product/1"}\n'
    b'{"id":"gid://shopify/Product/1","title":"Tee","status":"ACTIVE","updatedAt":"2026-01-01T00:00:00Z"}\n'
    b'{"id":"gid://shopify/ProductVariant/12","title":"M","sku":"T-M","inventoryQuantity":null,'
    b'"inventoryItem":{"id":"gid://shopify/InventoryItem/12"},"__parentId":"gid://shopify/Product/1"}\n'
)


def test_bulk_variants_polls_then_streams_and_joins_children_to_parents():
    time = FakeTime()
    script = bulk_script([httpx.Response(200, content=JSONL)], time)
    variants = list(make_client(script, time).bulk_variants(poll_interval=1.0))
    assert [(v.variant_id, v.sku, v.product_title, v.inventory_quantity) for v in variants] == [
        ("gid://shopify/ProductVariant/11", "T-S", "Tee", 4),  # came before its parent
        ("gid://shopify/ProductVariant/12", "T-M", "Tee", None),
    ]
    download = script.requests[-1]
    assert download.url.path == "/results/7.jsonl"
    assert "X-Shopify-Access-Token" not in download.headers  # a storage link gets no token
    assert time.sleeps == [0.05]  # polled fast while the operation ran


def test_bulk_download_broken_midway_resumes_with_a_range_request():
    cut = JSONL.index(b"\n") + 1 + 20  # the break falls inside the second line

    def broken(request: httpx.Request) -> httpx.Response:
        def body():
            yield JSONL[:cut]
            raise httpx.ReadError("connection reset")
        return httpx.Response(200, content=body())

    def rest(request: httpx.Request) -> httpx.Response:
        start = int(request.headers["Range"].removeprefix("bytes=").rstrip("-"))
        return httpx.Response(206, content=JSONL[start:])

    script = bulk_script([broken, rest])
    variants = list(make_client(script).bulk_variants())
    assert [v.variant_id for v in variants] == ["gid://shopify/ProductVariant/11", "gid://shopify/ProductVariant/12"]
    first_line_end = JSONL.index(b"\n") + 1
    assert script.requests[-1].headers["Range"] == f"bytes={first_line_end}-"



# Hostile catalog records: each unusable one is left out with its reason, the rest goes on.
HOSTILE_LINES = [
    b'{"title":"no id at all","status":"ACTIVE"}',  # a product without an id
    b'5',  # not an object
    b'["a", "list"]',
    b'{"id":"gid://shopify/ProductVariant/13","sku":{"not":"text"},"__parentId":"gid://shopify/Product/1"}',
    b'{"id":"gid://shopify/ProductVariant/14","sku":"T-L","inventoryQuantity":"many",'
    b'"__parentId":"gid://shopify/Product/1"}',
    b'{"id":"gid://shopify/ProductVariant/15","title":"' + b"x" * 5000 + b'","__parentId":"gid://shopify/Product/1"}',
    b'{"id":"gid://shopify/ProductVariant/16","sku":"T-XL","__parentId":["gid://shopify/Product/1"]}',
    b'{"id":"gid://shopify/ProductVariant/17","inventoryItem":"item","__parentId":"gid://shopify/Product/1"}',
    b'{"id":"not a gid","sku":"T-XXL","__parentId":"gid://shopify/Product/1"}',
    b'{"id":"gid://shopify/ProductVariant/18", "sku": "T-3XL", "__parentId": "gid://shopify/Product/1"',  # cut off
]


def test_a_bulk_file_with_unusable_records_keeps_the_rest_and_counts_each_left_out():
    from ecomsend_cli.shopify_records import Refusals

    body = JSONL + b"\n".join(HOSTILE_LINES) + b"\n"
    refused = Refusals()
    rows = [r for batch in make_client(bulk_script([httpx.Response(200, content=body)]))
            .bulk_variant_rows(refused=refused) for r in batch]
    assert [r[0] for r in rows] == ["gid://shopify/ProductVariant/11", "gid://shopify/ProductVariant/12"]
    assert refused.count == len(HOSTILE_LINES)
    assert len(refused.examples) == Refusals.KEPT
    # The block is parsed before its records are joined: the broken line is found first.
    assert refused.examples[0].startswith("a bulk file line that is not one JSON value")
    assert "a product record without a Product id" in refused.examples[1]
    assert all(len(e) < 300 for e in refused.examples)  # a sample of the record, never all of it


def test_a_page_of_variants_with_unusable_records_keeps_the_rest():
    from ecomsend_cli.shopify_records import Refusals

    bad_product = {**variant_node(3, "C"), "product": {"id": 7, "title": "Tee"}}
    nodes = [variant_node(1, "A"), {"sku": "no id"}, "text", {**variant_node(2, "B"), "inventoryQuantity": True},
             bad_product, variant_node(4, "D")]
    refused = Refusals()
    variants = list(make_client(Script(page(nodes, None))).iter_variants(refused=refused))
    assert [v.sku for v in variants] == ["A", "D"]
    assert refused.count == 4
    script = Script(ok({"productVariants": {"nodes": "not a list"}}))
    with pytest.raises(ApiError, match="not shaped as documented"):
        list(make_client(script).iter_variants())


def test_failed_bulk_operation_is_an_api_error():
    failed = ok({"bulkOperation": {"id": "gid://shopify/BulkOperation/7", "status": "FAILED",
                                   "errorCode": "TIMEOUT"}})
    started = ok({"bulkOperationRunQuery": {"bulkOperation": {"id": "gid://shopify/BulkOperation/7",
                                                              "status": "CREATED"}, "userErrors": []}})
    with pytest.raises(ApiError, match="TIMEOUT"):
        make_client(Script(started, failed)).bulk_variants()


TRIAL_LIMIT = ("Exceeded order API rate limit, please try again in a minute. "
               "Upgrade to a paid account to remove this limit.")


@pytest.mark.parametrize("refusal", [
    httpx.Response(429, json={"errors": TRIAL_LIMIT}),  # as the REST API answers it
    httpx.Response(200, json={"errors": [{"message": TRIAL_LIMIT}]}),  # a GraphQL error, nothing ran
])
def test_a_trial_stores_order_limit_waits_a_minute_resends_and_then_paces(refusal):
    time = FakeTime()
    script = Script(refusal, ok(CREATED), ok(CREATED), ok(CREATED), time=time)
    client = make_client(script, time)
    assert client.order_create(ORDER, inventory_behaviour="BYPASS").ok
    assert time.sleeps == [60.0]  # refused before anything was created: the same order, a minute later
    before = time.now
    client.order_create(ORDER, inventory_behaviour="BYPASS")
    client.order_create(ORDER, inventory_behaviour="BYPASS")
    assert time.now - before >= 2 * 12.0 - 0.01  # then 5 a minute, not refused again
    assert len(script.graphql_requests) == 4


def test_json_nested_deeper_than_the_parser_recurses_is_a_refused_line_or_an_unreadable_answer():
    # json.loads raises RecursionError (not ValueError) past ~1,000 levels: it escaped as a traceback.
    from ecomsend_cli.shopify_records import Refusals

    deep = b"[" * 100_000 + b"]" * 100_000
    refused = Refusals()
    rows = [r for batch in make_client(bulk_script([httpx.Response(200, content=JSONL + deep + b"\n")]))
            .bulk_variant_rows(refused=refused) for r in batch]
    assert [r[0] for r in rows] == ["gid://shopify/ProductVariant/11", "gid://shopify/ProductVariant/12"]
    assert refused.count == 1 and refused.examples[0].startswith("a bulk file line that is not one JSON value")
    answer = b'{"data": {"productVariants": {"nodes": ' + deep + b"}}}"
    script = Script(*[httpx.Response(200, content=answer) for _ in range(4)])
    with pytest.raises(ApiError, match="could not be read"):
        list(make_client(script).iter_variants())


def test_a_page_of_variants_whose_next_cursor_is_its_own_is_an_error_not_an_endless_loop():
    same = ok({"productVariants": {"pageInfo": {"hasNextPage": True, "endCursor": "c1"},
                                   "nodes": [variant_node(1, "A")]}})
    script = Script(page([variant_node(1, "A")], "c1"), same, same, same)
    with pytest.raises(ApiError, match="not shaped as documented"):
        list(make_client(script).iter_variants())
    assert len(script.graphql_requests) == 2
    with pytest.raises(ApiError, match="not shaped as documented"):
        make_client(Script(page([variant_node(1, "A")], "c1"), same, same)).variants_by_sku("A")



def test_changed_products_of_the_wrong_shape_or_a_repeating_cursor_are_one_clear_error():
    def products(nodes: list, cursor: str | None) -> httpx.Response:
        return ok({"products": {"pageInfo": {"hasNextPage": cursor is not None, "endCursor": cursor},
                                "nodes": nodes}})

    good = [{"id": "gid://shopify/Product/1"}]
    assert list(make_client(Script(products(good, None))).changed_product_ids("2026-01-01T00:00:00Z")) == [
        "gid://shopify/Product/1"]
    for answer in (ok({"products": None}), products([{"id": 7}], None), products(["x"], None)):
        with pytest.raises(ApiError, match="not shaped as documented"):
            list(make_client(Script(answer)).changed_product_ids("2026-01-01T00:00:00Z"))
    script = Script(products(good, "c1"), products(good, "c1"), products(good, "c1"))
    with pytest.raises(ApiError, match="not shaped as documented"):
        list(make_client(script).changed_product_ids("2026-01-01T00:00:00Z"))
    assert len(script.graphql_requests) == 2


def test_ids_with_digits_that_are_not_ascii_and_orphans_of_a_parent_that_is_no_product_are_refused():
    # str.isdigit() takes "²" and "١٢": such a variant was cached, with an id no command accepts back;
    # a variant whose parent never came was cached under whatever its __parentId said.
    from ecomsend_cli.shopify_records import Refusals, is_gid

    lines = [
        '{"id":"gid://shopify/ProductVariant/²","sku":"SUP","__parentId":"gid://shopify/Product/1"}',
        '{"id":"gid://shopify/ProductVariant/١٢","sku":"ARABIC","__parentId":"gid://shopify/Product/1"}',
        '{"id":"gid://shopify/ProductVariant/21","sku":"ITEM","inventoryItem":{"id":"gid://shopify/InventoryItem/٣"},'
        '"__parentId":"gid://shopify/Product/1"}',
        '{"id":"gid://shopify/ProductVariant/22","sku":"ORPHAN-ESC","__parentId":"\\u001b[2J"}',
        '{"id":"gid://shopify/ProductVariant/23","sku":"ORPHAN-VAR","__parentId":"gid://shopify/ProductVariant/11"}',
        '{"id":"gid://shopify/ProductVariant/24","sku":"ORPHAN-OK","__parentId":"gid://shopify/Product/77"}',
    ]
    body = JSONL + "\n".join(lines).encode() + b"\n"
    refused = Refusals()
    rows = [r for batch in make_client(bulk_script([httpx.Response(200, content=body)]))
            .bulk_variant_rows(refused=refused) for r in batch]
    assert [(r[0], r[1]) for r in rows] == [
        ("gid://shopify/ProductVariant/11", "gid://shopify/Product/1"),
        ("gid://shopify/ProductVariant/12", "gid://shopify/Product/1"),
        ("gid://shopify/ProductVariant/24", "gid://shopify/Product/77"),
    ]
    assert refused.count == 5
    assert all("\x1b" not in e for e in refused.examples)
    assert not is_gid("gid://shopify/Order/²", "Order") and is_gid("gid://shopify/Order/7", "Order")


def test_a_refusal_reason_is_bounded_however_long_the_record_id():
    # The reasons quote the record's id, and a digits-only id has no length bound: a 100,000-digit
    # one made the catalog warning a 100,000-character line.
    from ecomsend_cli.shopify_records import Refusals

    huge = "9" * 100_000
    parent = '"__parentId":"gid://shopify/Product/1"'
    lines = [
        f'{{"id":"gid://shopify/Product/{huge}","title":5}}',
        f'{{"id":"gid://shopify/ProductVariant/{huge}","title":5,{parent}}}',
        f'{{"id":"gid://shopify/ProductVariant/{huge}","inventoryQuantity":1.5,{parent}}}',
    ]
    refused = Refusals()
    body = JSONL + "\n".join(lines).encode() + b"\n"
    list(make_client(bulk_script([httpx.Response(200, content=body)])).bulk_variant_rows(refused=refused))
    assert refused.count == 3
    assert all(len(e) < 300 for e in refused.examples), [len(e) for e in refused.examples]


def test_an_id_longer_than_any_64_bit_number_is_refused_and_a_19_digit_one_kept():
    from ecomsend_cli.shopify_records import Refusals, is_gid

    parent = '"__parentId":"gid://shopify/Product/1"'
    lines = [
        '{"id":"gid://shopify/ProductVariant/' + "9" * 21 + '","sku":"LONG",' + parent + "}",
        '{"id":"gid://shopify/ProductVariant/' + "9" * 19 + '","sku":"MAX",' + parent + "}",
        '{"id":"gid://shopify/ProductVariant/31","sku":"ITEM","inventoryItem":{"id":"gid://shopify/InventoryItem/'
        + "1" * 30 + '"},' + parent + "}",
    ]
    refused = Refusals()
    body = JSONL + "\n".join(lines).encode() + b"\n"
    rows = [r for batch in make_client(bulk_script([httpx.Response(200, content=body)]))
            .bulk_variant_rows(refused=refused) for r in batch]
    assert [r[4] for r in rows] == ["T-S", "T-M", "MAX"]
    assert refused.count == 2
    assert not is_gid("gid://shopify/Order/" + "1" * 21, "Order") and is_gid("gid://shopify/Order/1", "Order")
