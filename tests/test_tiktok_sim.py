"""TikTokClient against the TikTok simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ecomsend_cli.config import Secret, TikTokConfig
from ecomsend_cli.errors import ApiError, AuthError, NetworkError
from ecomsend_cli.models import MemoryTokenCache
from ecomsend_cli.sandbox.seed import demo_seed
from ecomsend_cli.sandbox.tiktok_sim import TikTokSimulator
from ecomsend_cli.tiktok import TikTokClient, sign

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
NOW = int(time.time())


def many_orders(count: int, *, start: int = NOW - 50_000) -> list[dict]:
    # Several orders share each update_time, so paging must order by id too.
    return [
        {
            "id": f"5770000000{i:08d}",
            "status": "AWAITING_SHIPMENT",
            "create_time": start,
            "update_time": start + i // 3,
            "line_items": [{"id": f"L{i}", "sku_id": "SKU-1", "sale_price": "1.00"}],
        }
        for i in range(count)
    ]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[TikTokSimulator]:
    with TikTokSimulator(tmp_path / "tiktok.db", orders=many_orders(230), fault_seed=1) as running:
        yield running


def client_for(sim: TikTokSimulator, cache: MemoryTokenCache | None = None, **overrides: object) -> TikTokClient:
    creds = sim.credentials
    values: dict[str, object] = {
        "api_base_url": sim.url,
        "auth_base_url": sim.url,
        "app_key": creds["app_key"],
        "app_secret": Secret(creds["app_secret"]),
        "access_token": Secret(creds["access_token"]),
        "refresh_token": Secret(creds["refresh_token"]),
        "shop_cipher": creds["shop_cipher"],
    }
    client_kwargs: dict[str, object] = {
        "sleep": lambda s: time.sleep(min(s, 0.01)),  # retries without real waits
        "backoff_base": 0.01,
    }
    for key in ("clock", "max_retries", "sleep", "backoff_base", "backoff_max", "deadline"):
        if key in overrides:
            client_kwargs[key] = overrides.pop(key)
    values.update(overrides)
    return TikTokClient(
        TikTokConfig(**values),  # type: ignore[arg-type]
        cache if cache is not None else MemoryTokenCache(),
        **client_kwargs,  # type: ignore[arg-type]
    )


def all_ids(pages: list[list[dict]]) -> list[str]:
    return [order["id"] for page in pages for order in page]


# -- paging ----------------------------------------------------------------------------------

def test_orders_search_walks_every_page_in_update_order(sim: TikTokSimulator) -> None:
    with client_for(sim) as client:
        pages = list(client.search_orders(update_time_ge=NOW - 60_000, page_size=50))
    assert [len(p) for p in pages] == [50, 50, 50, 50, 30]
    ids = all_ids(pages)
    assert sorted(ids) == sorted(o["id"] for o in many_orders(230))
    assert len(set(ids)) == 230
    keys = [(o["update_time"], o["id"]) for page in pages for o in page]
    assert keys == sorted(keys)


def test_orders_search_filters_by_update_time_window(sim: TikTokSimulator) -> None:
    start = NOW - 50_000
    with client_for(sim) as client:
        pages = list(client.search_orders(update_time_ge=start + 10, update_time_lt=start + 20))
    times = [o["update_time"] for page in pages for o in page]
    assert len(times) == 30 and min(times) == start + 10 and max(times) == start + 19


def test_token_expiry_mid_run_refreshes_between_pages(sim: TikTokSimulator) -> None:
    cache = MemoryTokenCache()
    original = sim.credentials
    delivered: list[str] = []
    with client_for(sim, cache) as client:
        for number, page in enumerate(client.search_orders(update_time_ge=0, page_size=50)):
            delivered += [o["id"] for o in page]
            if number == 1:
                sim.expire_access_token()
    assert len(delivered) == 230 and len(set(delivered)) == 230
    refreshes = sim.ops("token.refresh")
    assert len(refreshes) == 1
    expired = [e for e in sim.ops("orders.search") if e.get("code") == 105002]
    assert len(expired) == 1
    saved = cache.load_token("tiktok")
    assert saved is not None
    assert saved["access_token"] == sim.credentials["access_token"] != original["access_token"]
    assert saved["refresh_token"] == sim.credentials["refresh_token"] != original["refresh_token"]
    assert saved["access_token_expire_in"] > NOW

    # The old refresh token is spent: a client that only has the config's tokens
    # (e.g. its store was deleted) must be told to re-authorise.
    with client_for(sim, access_token=Secret(original["access_token"]),
                    refresh_token=Secret(original["refresh_token"])) as stale:
        with pytest.raises(AuthError, match="re-authorise") as caught:
            stale.get_orders([delivered[0]])
    assert caught.value.code == 36004005


def test_control_endpoint_expires_tokens_for_out_of_process_tests(sim: TikTokSimulator) -> None:
    answer = httpx.post(sim.url + "/_sandbox/tokens/expire", json={})
    assert answer.status_code == 200
    with client_for(sim) as client:
        assert len(client.get_orders(["577000000000000001"])) == 1
    assert len(sim.ops("token.refresh")) == 1


# -- credentials checks ---------------------------------------------------------------------------

def test_bad_app_secret_is_rejected_with_106001(sim: TikTokSimulator) -> None:
    with client_for(sim, app_secret=Secret("not-the-secret")) as client:
        with pytest.raises(AuthError, match="app_secret") as caught:
            client.authorized_shops()
    assert caught.value.code == 106001
    assert caught.value.request_id
    assert "not-the-secret" not in str(caught.value)


def test_unknown_access_token_is_105001_and_not_refreshed(sim: TikTokSimulator) -> None:
    with client_for(sim, access_token=Secret("ROW_forged")) as client:
        with pytest.raises(AuthError) as caught:
            client.authorized_shops()
    assert caught.value.code == 105001
    assert sim.ops("token.refresh") == []


def test_clock_outside_the_timestamp_window_is_refused(sim: TikTokSimulator) -> None:
    with client_for(sim, clock=lambda: time.time() - 3600) as client:
        with pytest.raises(ApiError, match="clock") as caught:
            client.authorized_shops()
    assert caught.value.code == 36009004
    assert not isinstance(caught.value, AuthError)


def test_wrong_app_key_is_an_auth_error(sim: TikTokSimulator) -> None:
    with client_for(sim, app_key="someone-else") as client:
        with pytest.raises(AuthError, match="app_key"):
            client.authorized_shops()


def test_signature_covers_the_body(sim: TikTokSimulator) -> None:
    creds = sim.credentials
    path = "/order/202309/orders/search"
    params = {"app_key": creds["app_key"], "timestamp": str(int(time.time())), "page_size": "5",
              "shop_cipher": creds["shop_cipher"]}
    params["sign"] = sign(creds["app_secret"], path, params, b'{"update_time_ge":0}')
    headers = {"x-tts-access-token": creds["access_token"], "content-type": "application/json"}
    good = httpx.post(sim.url + path, params=params, content=b'{"update_time_ge":0}', headers=headers)
    assert good.json()["code"] == 0 and len(good.json()["data"]["orders"]) == 5
    tampered = httpx.post(sim.url + path, params=params, content=b'{"update_time_ge":1}', headers=headers)
    assert tampered.status_code == 401
    assert tampered.json()["code"] == 106001
    assert tampered.json()["request_id"] == tampered.headers["x-tt-logid"]


def test_shop_scoped_calls_need_the_shop_cipher(sim: TikTokSimulator) -> None:
    with client_for(sim, shop_cipher="ROW_other_shop") as client:
        with pytest.raises(ApiError, match="shop_cipher") as caught:
            client.get_orders(["1"])
    assert caught.value.code == 106013


def test_empty_shop_cipher_resolves_to_the_authorized_shop(sim: TikTokSimulator) -> None:
    with client_for(sim, shop_cipher="") as client:
        assert client.resolve_shop_cipher() == sim.credentials["shop_cipher"]
        assert len(client.get_orders(["577000000000000001"])) == 1


def test_tampered_page_token_is_refused(sim: TikTokSimulator) -> None:
    with client_for(sim) as client:
        first = client.request("POST", "/order/202309/orders/search",
                               query={"page_size": 10, "sort_field": "update_time", "sort_order": "ASC"},
                               body={"update_time_ge": 0})
        assert first["next_page_token"]
        with pytest.raises(ApiError) as caught:
            client.request("POST", "/order/202309/orders/search",
                           query={"page_size": 10, "page_token": first["next_page_token"],
                                  "sort_field": "update_time", "sort_order": "ASC"},
                           body={"update_time_ge": 5})  # a different filter than the token's
    assert caught.value.code == 36009004


# -- throttling and faults ---------------------------------------------------------------------------

def test_rate_limited_burst_completes(tmp_path: Path) -> None:
    orders = many_orders(40)
    # 5 requests per 200 ms; the client backs off for real (20 ms doubling, at most 200 ms).
    with TikTokSimulator(tmp_path / "t.db", orders=orders, rate_limit=5, rate_limit_window_ms=200) as sim:
        with client_for(sim, sleep=time.sleep, backoff_base=0.02, backoff_max=0.2, max_retries=10) as client:
            got = [client.get_orders([o["id"]])[0]["id"] for o in orders[:15]]
    assert got == [o["id"] for o in orders[:15]]
    throttled = [e for e in sim.ops("orders.get") if e["status"] == 429]
    assert throttled and all(e["code"] == 36009002 for e in throttled)


@pytest.mark.parametrize("kind", ["error", "drop", "truncated", "lost_response"])
def test_a_page_that_fails_midway_is_retried(sim: TikTokSimulator, kind: str) -> None:
    sim.set_faults(fail_next=[{"op": "orders.search", "kind": kind, "after": 2, "status": 503}])
    with client_for(sim) as client:
        pages = list(client.search_orders(update_time_ge=0, page_size=50))
    ids = all_ids(pages)
    assert len(ids) == 230 and len(set(ids)) == 230
    faulted = [e for e in sim.ops("orders.search") if e["fault"]]
    assert [e["fault"] for e in faulted] == [kind]
    assert len(sim.ops("orders.search")) == 6  # five pages, one of them twice


def test_random_faults_are_reproducible_and_survivable(tmp_path: Path) -> None:
    def run(folder: Path) -> list[str | None]:
        with TikTokSimulator(folder / "t.db", orders=many_orders(120), fault_seed=7,
                             error_rate=0.2, drop_rate=0.1) as sim:
            with client_for(sim, max_retries=10) as client:
                ids = all_ids(list(client.search_orders(update_time_ge=0, page_size=20)))
            assert len(ids) == 120 and len(set(ids)) == 120
            return [e["fault"] for e in sim.ops()]

    first, second = run(tmp_path / "a"), run(tmp_path / "b")
    assert first == second
    assert "error" in first


def test_faults_can_be_set_over_http(sim: TikTokSimulator) -> None:
    answer = httpx.post(sim.url + "/_sandbox/faults",
                        json={"fail_next": [{"op": "shops", "kind": "error", "status": 502}]})
    assert answer.status_code == 200 and answer.json()["fail_next"][0]["status"] == 502
    bad = httpx.post(sim.url + "/_sandbox/faults", json={"no_such_fault": 1})
    assert bad.status_code == 400
    with client_for(sim) as client:
        assert client.authorized_shops()[0]["cipher"] == sim.credentials["shop_cipher"]
    assert [e["status"] for e in sim.ops("shops")] == [502, 200]


# -- order and product shapes ----------------------------------------------------------------------

def test_quantity_is_served_as_one_line_item_per_unit(sim: TikTokSimulator) -> None:
    sim.add_orders([{
        "id": "999", "status": "AWAITING_SHIPMENT", "update_time": NOW, "create_time": NOW,
        "line_items": [
            {"id": "L1", "sku_id": "X", "sale_price": "5.00", "quantity": 3},
            {"id": "L2", "sku_id": "BUNDLE", "sale_price": "9.00",
             "combined_listing_skus": [{"sku_id": "A", "product_id": "PA", "sku_count": 2}]},
        ],
    }])
    with client_for(sim) as client:
        (order,) = client.get_orders(["999"])
    assert [line["sku_id"] for line in order["line_items"]] == ["X", "X", "X", "BUNDLE"]
    assert len({line["id"] for line in order["line_items"]}) == 4
    assert order["line_items"][3]["combined_listing_skus"][0]["sku_count"] == 2


def test_fixture_order_round_trips_unchanged(sim: TikTokSimulator) -> None:
    path = FIXTURES / "tiktok_order_detail_202309_response.json"
    if not path.exists():
        pytest.skip("shared fixtures not available")
    order = json.loads(path.read_text())["data"]["orders"][0]
    assert order["status"] == "UNPAID"
    sim.add_orders([order])
    with client_for(sim) as client:
        # TikTok withholds the address of an UNPAID order; the rest comes back as it went in.
        unpaid = {k: v for k, v in order.items() if k != "recipient_address"}
        assert client.get_orders([order["id"]]) == [unpaid]
        sim.update_order(order["id"], status="AWAITING_SHIPMENT")
        (paid,) = client.get_orders([order["id"]])
    assert paid["recipient_address"] == order["recipient_address"]


def test_cancel_after_sync_moves_update_time_forward(sim: TikTokSimulator) -> None:
    order_id = "577000000000000005"
    before = sim.order(order_id)
    assert before is not None
    answer = httpx.post(f"{sim.url}/_sandbox/orders/{order_id}", json={"status": "CANCELLED"})
    assert answer.status_code == 200
    after = answer.json()
    assert after["status"] == "CANCELLED"
    assert after["update_time"] > before["update_time"]
    assert {line["display_status"] for line in after["line_items"]} == {"CANCELLED"}
    with client_for(sim) as client:
        pages = list(client.search_orders(update_time_ge=after["update_time"]))
    assert order_id in all_ids(pages)


def test_product_detail_has_external_sku_id_but_search_does_not(tmp_path: Path) -> None:
    seed = demo_seed(NOW)
    with TikTokSimulator(tmp_path / "t.db", products=seed["tiktok_products"]) as sim:
        with client_for(sim) as client:
            found = list(client.search_products(page_size=5))
            hoodie = next(p for p in found if p["title"] == "Cozy Hoodie")
            detail = client.get_product(hoodie["id"])
    assert len(found) == len(seed["tiktok_products"])
    assert all("external_sku_id" not in sku for p in found for sku in p["skus"])
    assert [sku["external_sku_id"] for sku in detail["skus"]] == ["44101", "44102"]


def test_state_survives_a_restart_on_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with TikTokSimulator(path, orders=many_orders(3)) as first:
        creds = first.credentials
        first.update_order("577000000000000000", status="CANCELLED")
    with TikTokSimulator(path, orders=many_orders(10)) as second:  # the seed is ignored now
        assert second.credentials == creds
        with client_for(second) as client:
            orders = [o for page in client.search_orders(update_time_ge=0) for o in page]
    assert len(orders) == 3
    assert next(o for o in orders if o["id"] == "577000000000000000")["status"] == "CANCELLED"
    with sqlite3.connect(path) as db:  # a test may read the state file directly
        assert db.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 3


def test_a_stopped_simulator_answers_nothing(tmp_path: Path) -> None:
    sim = TikTokSimulator(tmp_path / "t.db").start()
    with httpx.Client() as http:
        assert http.get(sim.url + "/_sandbox/state").status_code == 200
        sim.stop()
        with pytest.raises(httpx.TransportError):
            http.get(sim.url + "/_sandbox/state")


def test_a_simulator_can_come_back_after_an_outage_on_the_same_port(tmp_path: Path) -> None:
    sim = TikTokSimulator(tmp_path / "t.db", orders=many_orders(2)).start()
    url = sim.url
    try:
        with client_for(sim, max_retries=0) as client:
            assert len(client.get_orders(["577000000000000001"])) == 1
            sim.stop()
            with pytest.raises(NetworkError):
                client.get_orders(["577000000000000001"])
            sim.start()
            assert sim.url == url
            assert len(client.get_orders(["577000000000000001"])) == 1
    finally:
        sim.stop()


# -- order fields as TikTok serves them ------------------------------------------------------


def test_address_is_withheld_while_unpaid_or_on_hold(tmp_path: Path) -> None:
    seed = demo_seed(NOW)
    with TikTokSimulator(tmp_path / "t.db", orders=seed["tiktok_orders"]) as sim, client_for(sim) as client:
        listed = {o["id"]: o for page in client.search_orders(update_time_ge=0) for o in page}
        held = [i for i, o in listed.items() if o["status"] in ("UNPAID", "ON_HOLD")]
        assert held and all("recipient_address" not in listed[i] for i in held)
        assert all("recipient_address" in o for i, o in listed.items() if i not in held)
        assert all("recipient_address" not in o for o in client.get_orders(held))
        assert all(sim.order(i)["recipient_address"] for i in held)  # stored all along
        sim.update_order(held[0], status="AWAITING_SHIPMENT")
        (paid,) = client.get_orders([held[0]])
    assert paid["recipient_address"]["district_info"]


def test_a_line_tiktok_cancelled_stays_cancelled_as_its_order_moves_on(tmp_path: Path) -> None:
    order = {
        "id": "578000000000000001", "status": "AWAITING_SHIPMENT",
        "line_items": [
            {"id": "A", "sku_id": "SKU-1", "sale_price": "1.00", "display_status": "CANCELLED"},
            {"id": "B", "sku_id": "SKU-1", "sale_price": "1.00"},
        ],
    }
    with TikTokSimulator(tmp_path / "t.db", orders=[order]) as sim:
        assert [li["display_status"] for li in sim.order(order["id"])["line_items"]] == ["CANCELLED", "TO_SHIP"]
        moved = sim.update_order(order["id"], status="IN_TRANSIT")
        assert [li["display_status"] for li in moved["line_items"]] == ["CANCELLED", "SHIPPED"]
        cancelled = sim.update_order(order["id"], status="CANCELLED")
        assert {li["display_status"] for li in cancelled["line_items"]} == {"CANCELLED"}
        # An order cancelled whole and then restored takes every line with it.
        restored = sim.update_order(order["id"], status="AWAITING_SHIPMENT")
        assert {li["display_status"] for li in restored["line_items"]} == {"TO_SHIP"}
