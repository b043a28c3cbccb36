"""Hostile answers on demand (DESIGN §8): strange shapes, trickles, hangs, endless paging.

Both simulators share the ``fail_next`` kinds ``answer``, ``trickle`` and
``hang`` (``sandbox/_http.py``); the Shopify simulator shows them here, over
real HTTP and raw sockets on 127.0.0.1. The TikTok simulator's
``paging_fault`` is observed through raw signed requests.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ecomsend_cli.errors import ApiError
from ecomsend_cli.sandbox.shopify_sim import ShopifySimulator
from ecomsend_cli.sandbox.tiktok_sim import TikTokSimulator
from ecomsend_cli.tiktok import sign

from .test_shopify_sim import BIG_BUDGET, catalog
from .test_shopify_sim import client_for as shopify_client
from .test_tiktok_sim import client_for as tiktok_client
from .test_tiktok_sim import many_orders

ORDER_CREATE = """
mutation create($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) {
  orderCreate(order: $order, options: $options) { order { id sourceIdentifier } userErrors { code } }
}
"""
HTML = "<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[ShopifySimulator]:
    with ShopifySimulator(tmp_path / "shopify.db", products=catalog(2), **BIG_BUDGET) as running:
        yield running


def create_body(source: str, quantity: int = 2) -> bytes:
    return json.dumps({
        "query": ORDER_CREATE,
        "variables": {
            "order": {"sourceIdentifier": source, "lineItems": [
                {"variantId": "gid://shopify/ProductVariant/11", "quantity": quantity}]},
            "options": {"inventoryBehaviour": "DECREMENT_IGNORING_POLICY"},
        },
    }).encode()


def post_create(sim: ShopifySimulator, source: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{sim.url}/admin/api/2026-07/graphql.json", content=create_body(source),
                      headers={"X-Shopify-Access-Token": sim.credentials["access_token"],
                               "Content-Type": "application/json"}, **kwargs)


def raw_create(sim: ShopifySimulator, source: str) -> socket.socket:
    """Send an orderCreate on a raw socket and return it unread."""
    body = create_body(source)
    head = (f"POST /admin/api/2026-07/graphql.json HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"X-Shopify-Access-Token: {sim.credentials['access_token']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    conn = socket.create_connection((sim.host, sim.port), timeout=10)
    conn.sendall(head.encode() + body)
    return conn


def read_until_closed(conn: socket.socket, timeout: float = 10) -> bytes:
    conn.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = conn.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def read_for(conn: socket.socket, seconds: float) -> bytes:
    """Whatever arrives within a read window of ``seconds`` (a byte every 0.25 s
    never trips a per-read timeout, so the window is bounded by the clock)."""
    data = b""
    window_ends = time.monotonic() + seconds
    while (left := window_ends - time.monotonic()) > 0:
        conn.settimeout(left)
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


def stock_of_11(sim: ShopifySimulator) -> int:
    return next(v["inventory_quantity"] for v in sim.inventory()
                if v["variant_id"] == "gid://shopify/ProductVariant/11")


def stop_in_background(sim: ShopifySimulator) -> threading.Thread:
    stopper = threading.Thread(target=sim.stop)
    stopper.start()
    # A generous bound, not a speed check: a stop() that waited for the
    # fault would take its full 300 s.
    stopper.join(timeout=30)
    return stopper


# -- answer ------------------------------------------------------------------------------------


def test_answer_after_handling_creates_the_order_yet_the_client_gets_the_page_given(shop):
    shop.set_faults(fail_next=[{"op": "orderCreate", "kind": "answer", "status": 502, "body": HTML}])
    response = post_create(shop, "T-html")
    assert response.status_code == 502
    assert response.text == HTML
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    listed = httpx.get(f"{shop.url}/_sandbox/orders").json()["orders"]
    assert [o["source_identifier"] for o in listed] == ["T-html"]
    assert stock_of_11(shop) == 5 - 2  # the inventory was claimed too
    assert [e["fault"] for e in shop.ops("orderCreate")] == ["answer"]
    # One shot: the next request is answered for real.
    assert post_create(shop, "T-next").json()["data"]["orderCreate"]["order"]["sourceIdentifier"] == "T-next"


@pytest.mark.parametrize(("body", "content_type", "sent", "expected_type"), [
    ({"data": {"orderCreate": None}}, None, b'{"data":{"orderCreate":null}}', "application/json; charset=utf-8"),
    ({"errors": "Internal"}, None, b'{"errors":"Internal"}', "application/json; charset=utf-8"),
    (None, None, b"null", "application/json; charset=utf-8"),
    ("upstream timed out", "text/plain", b"upstream timed out", "text/plain"),
])
def test_answer_without_handling_changes_nothing(shop, body, content_type, sent, expected_type):
    fault: dict[str, Any] = {"op": "orderCreate", "kind": "answer", "body": body, "handled": False}
    if content_type:
        fault["content_type"] = content_type
    reply = httpx.post(f"{shop.url}/_sandbox/faults", json={"fail_next": [fault]})
    assert reply.status_code == 200
    response = post_create(shop, "T-none")
    assert response.status_code == 200
    assert response.content == sent
    assert response.headers["content-type"] == expected_type
    assert shop.orders() == []
    assert stock_of_11(shop) == 5


@pytest.mark.parametrize(("fault", "problem"), [
    ({"kind": "answer"}, "fail_next kind=answer needs a body"),
    ({"kind": "answer", "body": "", "handled": "no"}, "fail_next handled must be true or false"),
    ({"kind": "trickle", "bytes_per_second": 0}, "fail_next bytes_per_second must be a positive number"),
    ({"kind": "hang", "hang_for": 3}, "unknown fail_next key(s): hang_for"),
])
def test_bad_shaping_faults_are_refused(shop, fault, problem):
    reply = httpx.post(f"{shop.url}/_sandbox/faults", json={"fail_next": [fault]})
    assert reply.status_code == 400
    assert reply.json()["error"].startswith(problem)
    assert httpx.get(f"{shop.url}/_sandbox/faults").json()["fail_next"] == []


# -- trickle -----------------------------------------------------------------------------------


def test_trickled_answer_comes_a_few_bytes_at_a_time_and_stop_cuts_it(shop):
    shop.set_faults(fail_next=[{"op": "orderCreate", "kind": "trickle", "bytes_per_second": 4}])
    conn = raw_create(shop, "T-slow")
    try:
        conn.settimeout(10)
        received = conn.recv(65536)  # the first byte comes at once
        assert received
        received += read_for(conn, 0.5)
        # At 4 bytes a second the status line alone takes seconds.
        assert len(received) < len(b"HTTP/1.1 200 OK\r\n")
        assert b"HTTP/1.1 200 OK".startswith(received)
        # Handled before the first byte went out.
        assert [o["source_identifier"] for o in shop.orders()] == ["T-slow"]
        assert not stop_in_background(shop).is_alive()
        rest = read_until_closed(conn)
        assert len(received + rest) < 200  # cut off, never finished
    finally:
        conn.close()


def test_trickled_answer_arrives_intact_with_its_content_length(shop):
    shop.set_faults(fail_next=[{"op": "orderCreate", "kind": "trickle", "bytes_per_second": 3000}])
    # A per-read timeout far above the 10 ms between chunks: the read never times out.
    response = post_create(shop, "T-trickle", timeout=httpx.Timeout(5.0))
    body = response.json()
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    created = body["data"]["orderCreate"]["order"]
    assert created["sourceIdentifier"] == "T-trickle"
    assert [o["id"] for o in shop.orders()] == [created["id"]]
    assert [e["fault"] for e in shop.ops("orderCreate")] == ["trickle"]


def test_trickle_without_handling_sends_the_injected_error_slowly(shop):
    shop.set_faults(fail_next=[{"op": "orderCreate", "kind": "trickle", "bytes_per_second": 3000,
                                "handled": False, "status": 503}])
    response = post_create(shop, "T-unhandled")
    assert response.status_code == 503
    assert response.json() == {"errors": "Internal Server Error"}
    assert shop.orders() == []


# -- hang --------------------------------------------------------------------------------------


def test_hang_after_handling_answers_nothing_and_stop_does_not_wait(shop):
    shop.set_faults(fail_next=[{"op": "orderCreate", "kind": "hang"}])  # 300 s by default
    conn = raw_create(shop, "T-hang")
    try:
        conn.settimeout(0.5)
        with pytest.raises(TimeoutError):
            conn.recv(1)
        assert [o["source_identifier"] for o in shop.orders()] == ["T-hang"]
        assert stock_of_11(shop) == 5 - 2
        assert not stop_in_background(shop).is_alive()
        assert read_until_closed(conn) == b""  # closed by the stop, still without a byte
    finally:
        conn.close()


def test_hang_without_handling_ends_after_hang_seconds_with_nothing_done(shop):
    shop.set_faults(fail_next=[{"op": "orderCreate", "kind": "hang", "handled": False,
                                "hang_seconds": 0.3}])
    conn = raw_create(shop, "T-void")
    try:
        assert read_until_closed(conn) == b""  # closed after 0.3 s, not a byte sent
    finally:
        conn.close()
    assert shop.orders() == []
    assert stock_of_11(shop) == 5
    assert post_create(shop, "T-after").status_code == 200  # the simulator serves on


def _hanging_handlers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "process_request_thread" in t.name]


def test_hang_ends_when_the_client_gives_up(shop):
    before = len(_hanging_handlers())
    shop.set_faults(fail_next=[{"op": "orderCreate", "kind": "hang"}])
    with pytest.raises(httpx.ReadTimeout):
        post_create(shop, "T-gone", timeout=httpx.Timeout(5.0, read=0.3))
    # The handler thread notices the closed connection instead of waiting 300 s.
    for _ in range(200):
        if len(_hanging_handlers()) <= before:
            break
        time.sleep(0.05)
    assert len(_hanging_handlers()) <= before
    assert [o["source_identifier"] for o in shop.orders()] == ["T-gone"]


# -- TikTok paging faults ----------------------------------------------------------------------

SEARCH = "/order/202309/orders/search"


@pytest.fixture
def tiktok(tmp_path: Path) -> Iterator[TikTokSimulator]:
    with TikTokSimulator(tmp_path / "tiktok.db", orders=many_orders(7)) as running:
        yield running


def signed_search(sim: TikTokSimulator, token: str = "", *, page_size: int = 5,
                  path: str = SEARCH) -> httpx.Response:
    """One raw, correctly signed search request."""
    creds = sim.credentials
    params = {"app_key": creds["app_key"], "timestamp": str(int(time.time())),
              "shop_cipher": creds["shop_cipher"], "page_size": str(page_size)}
    if path == SEARCH:
        params.update(sort_field="update_time", sort_order="ASC")
    if token:
        params["page_token"] = token
    body = b'{"update_time_ge":0}' if path == SEARCH else b"{}"
    params["sign"] = sign(creds["app_secret"], path, params, body, "application/json")
    return httpx.post(sim.url + path, params=params, content=body,
                      headers={"x-tts-access-token": creds["access_token"],
                               "content-type": "application/json"})


def search(sim: TikTokSimulator, token: str = "", *, page_size: int = 5,
           path: str = SEARCH) -> dict[str, Any]:
    """A signed search that must succeed in a well-formed envelope; its ``data``."""
    answer = signed_search(sim, token, page_size=page_size, path=path)
    envelope = answer.json()
    assert answer.status_code == 200 and envelope["code"] == 0, envelope
    assert set(envelope) == {"code", "message", "request_id", "data"}
    assert envelope["request_id"] == answer.headers["x-tt-logid"]
    return envelope["data"]


def ids(data: dict[str, Any]) -> list[str]:
    return [o["id"] for o in data["orders"]]


def test_endless_paging_gives_empty_pages_with_new_tokens_forever(tiktok):
    tiktok.set_faults(paging_fault="endless")
    first = search(tiktok)
    last = search(tiktok, first["next_page_token"])
    assert len(ids(first)) == 5 and len(ids(last)) == 2  # the real pages, intact
    tokens = [first["next_page_token"], last["next_page_token"]]
    for _ in range(5):
        page = search(tiktok, tokens[-1])
        assert page["orders"] == [] and page["total_count"] == 7
        tokens.append(page["next_page_token"])
    assert all(tokens) and len(set(tokens)) == len(tokens)
    # Switched off, the endless listing ends at its next page.
    tiktok.set_faults(paging_fault=None)
    assert search(tiktok, tokens[-1]) == {"orders": [], "next_page_token": "", "total_count": 7}


def test_repeat_last_gives_back_the_token_just_sent(tiktok):
    tiktok.set_faults(paging_fault="repeat_last")
    first = search(tiktok)
    sent = first["next_page_token"]
    last = search(tiktok, sent)
    assert len(ids(last)) == 2 and last["next_page_token"] == sent
    again = search(tiktok, sent)
    assert ids(again) == ids(last) and again["next_page_token"] == sent
    # A listing of one page: its token serves that page again, with the same token.
    only = search(tiktok, page_size=10)
    assert len(ids(only)) == 7 and only["next_page_token"]
    repeat = search(tiktok, only["next_page_token"], page_size=10)
    assert ids(repeat) == ids(only) and repeat["next_page_token"] == only["next_page_token"]


def test_repeat_last_is_what_the_client_sees_as_a_repeated_token(tiktok):
    tiktok.set_faults(paging_fault="repeat_last")
    with tiktok_client(tiktok) as client:
        with pytest.raises(ApiError, match="sent a page token it had sent before"):
            list(client.search_orders(update_time_ge=0, page_size=5))


def test_cycle_alternates_two_tokens(tiktok):
    tiktok.set_faults(paging_fault="cycle")
    first = search(tiktok)
    last = search(tiktok, first["next_page_token"])
    token_a = last["next_page_token"]
    page_a = search(tiktok, token_a)
    token_b = page_a["next_page_token"]
    page_b = search(tiktok, token_b)
    assert token_a and token_b and token_a != token_b
    assert page_b["next_page_token"] == token_a
    assert search(tiktok, token_a)["next_page_token"] == token_b
    assert ids(page_a) == ids(page_b) == ids(first)  # the orders repeat
    assert page_a["total_count"] == 7


def test_paging_fault_applies_to_product_search_too(tmp_path):
    products = [{"id": f"P{i}", "title": f"Product {i}", "skus": [{"id": f"S{i}", "seller_sku": f"K{i}"}]}
                for i in range(3)]
    with TikTokSimulator(tmp_path / "t.db", products=products) as sim:
        sim.set_faults(paging_fault="endless")
        path = "/product/202309/products/search"
        first = search(sim, page_size=3, path=path)
        assert len(first["products"]) == 3 and first["next_page_token"]
        beyond = search(sim, first["next_page_token"], page_size=3, path=path)
        assert beyond["products"] == [] and beyond["next_page_token"] not in ("", first["next_page_token"])
        assert beyond["total_count"] == 3


def test_unknown_paging_fault_is_refused(tiktok):
    reply = httpx.post(f"{tiktok.url}/_sandbox/faults", json={"paging_fault": "sideways"})
    assert reply.status_code == 400 and "paging_fault" in reply.json()["error"]
    with pytest.raises(ValueError, match="paging_fault"):
        tiktok.set_faults(paging_fault="forever")
    reply = httpx.post(f"{tiktok.url}/_sandbox/faults", json={"paging_fault": "cycle"})
    assert reply.status_code == 200 and reply.json()["paging_fault"] == "cycle"


def test_tiktok_shares_the_answer_faults(tiktok):
    strange = {"code": 0, "message": "Success", "data": {"orders": {"id": "x"}}}
    tiktok.set_faults(fail_next=[{"op": "orders.search", "kind": "answer", "body": strange},
                                 {"op": "orders.search", "kind": "hang", "hang_seconds": 0.2}])
    answer = signed_search(tiktok)
    assert answer.status_code == 200 and answer.json() == strange
    with pytest.raises(httpx.RemoteProtocolError):  # closed after 0.2 s without a byte
        signed_search(tiktok)
    assert len(ids(search(tiktok))) == 5
    assert [e["fault"] for e in tiktok.ops("orders.search")] == ["answer", "hang", None]


# -- Shopify search: OR ------------------------------------------------------------------------


def find_orders(sim: ShopifySimulator, query: str, first: int = 10) -> list[str]:
    """Every order matching ``query``, read ``first`` at a time; their source identifiers."""
    client = shopify_client(sim)
    found: list[str] = []
    after = None
    while True:
        data = client.graphql(
            "query($q: String, $first: Int, $after: String) { orders(first: $first, after: $after, "
            "query: $q) { nodes { sourceIdentifier } pageInfo { hasNextPage endCursor } } }",
            {"q": query, "first": first, "after": after},
        )["orders"]
        found += [n["sourceIdentifier"] for n in data["nodes"]]
        if not data["pageInfo"]["hasNextPage"]:
            return found
        after = data["pageInfo"]["endCursor"]


def create_orders(sim: ShopifySimulator, *sources: str, processed_at: str | None = None) -> None:
    client = shopify_client(sim)
    for source in sources:
        order: dict[str, Any] = {"lineItems": [{"variantId": "gid://shopify/ProductVariant/11",
                                                "quantity": 1}], "sourceIdentifier": source}
        if processed_at:
            order["processedAt"] = processed_at
        assert client.order_create(order, inventory_behaviour="BYPASS").ok


def test_or_search_returns_the_union_page_by_page(shop):
    create_orders(shop, *(f"T-{n}" for n in range(8)))
    query = " OR ".join(f'source_identifier:"T-{n}"' for n in (1, 3, 4, 6, 9))
    assert find_orders(shop, query) == ["T-1", "T-3", "T-4", "T-6"]
    assert find_orders(shop, query, first=1) == ["T-1", "T-3", "T-4", "T-6"]
    assert len(shop.ops("orders")) == 1 + 4  # one page, then four pages of one
    # A batch lookup of a thousand identifiers is one query too.
    many = " OR ".join(f'source_identifier:"T-{n}"' for n in range(2, 3002, 3))
    assert find_orders(shop, many, first=250) == ["T-2", "T-5"]
    # Without OR, terms are still ANDed: no order has two identifiers.
    assert find_orders(shop, 'source_identifier:"T-1" source_identifier:"T-3"') == []


def test_or_search_keeps_the_index_lag_per_order(tmp_path):
    now = [1_800_000_000.0]
    with ShopifySimulator(tmp_path / "s.db", products=catalog(1), clock=lambda: now[0],
                          index_lag_seconds=30, **BIG_BUDGET) as sim:
        create_orders(sim, "T-old")
        now[0] += 20
        create_orders(sim, "T-new")
        now[0] += 15  # T-old is 35 s old (indexed), T-new 15 s (not yet)
        assert find_orders(sim, 'source_identifier:"T-old" OR source_identifier:"T-new"') == ["T-old"]


def test_or_search_keeps_the_60_day_rule_per_order(tmp_path):
    scopes = ("read_orders", "write_orders", "read_products")  # no read_all_orders
    with ShopifySimulator(tmp_path / "s.db", products=catalog(1), access_scopes=scopes,
                          **BIG_BUDGET) as sim:
        create_orders(sim, "T-ancient", processed_at="2020-01-01T00:00:00Z")
        create_orders(sim, "T-recent")
        query = 'source_identifier:"T-ancient" OR source_identifier:"T-recent"'
        assert find_orders(sim, query) == ["T-recent"]
        assert [o["source_identifier"] for o in sim.orders()] == ["T-ancient", "T-recent"]


def test_grouping_negation_and_or_on_variants(shop):
    client = shopify_client(shop)

    def skus(query: str) -> list[str]:
        data = client.graphql("query($q: String) { productVariants(first: 50, query: $q) { nodes { sku } } }",
                              {"q": query})
        return [n["sku"] for n in data["productVariants"]["nodes"]]

    assert skus("sku:SKU-1-0 OR sku:SKU-2-2") == ["SKU-1-0", "SKU-2-2"]
    assert skus("product_id:1 -sku:SKU-1-0") == ["SKU-1-1", "SKU-1-2"]
    assert skus("product_id:2 NOT (sku:SKU-2-0 OR sku:SKU-2-1)") == ["SKU-2-2"]
    # OR binds tighter than AND, as Shopify documents ("bob OR norman AND Shopify").
    assert skus('sku:SKU-1-1 OR sku:SKU-2-1 AND title:"Size 1"') == ["SKU-1-1", "SKU-2-1"]
    assert skus('sku:SKU-1-1 OR sku:SKU-2-1 AND product_id:2') == ["SKU-2-1"]
