"""TikTokClient's fulfillment, logistics, external-order and return_refund calls (DESIGN §6b),
against httpx.MockTransport: the shapes sent and read, and writes that are never sent twice."""

from __future__ import annotations

import json

import httpx
import pytest

from ecomsend_cli.errors import ApiError, AuthError, NetworkError, OutcomeUnknownError, PagingError
from ecomsend_cli.tiktok import sign
from tests.test_tiktok_client import NOW, SECRET, Recorder, envelope, make_client, refresh_answer

SHIPPED = {"order_id": "576461413038785752", "order_line_item_ids": ["L1", "L2"], "package_id": "1152321127278713123"}


def body_of(rec: Recorder, index: int = 0) -> dict:
    return json.loads(rec.requests[index].content)


def ship(client) -> str:
    return client.create_package_and_ship("576461413038785752", ["L1", "L2"], "9400111899223", "7117858858072016686")


# -- the calls, as TikTok documents them --------------------------------------------------------

def test_shipping_providers_reads_the_delivery_options_providers() -> None:
    rec = Recorder([(200, envelope(data={"shipping_providers": [
        {"id": "7117858858072016686", "name": "USPS"}, {"id": 6617675021119438849, "name": "TT Virtual express"}]}))])
    client, _ = make_client(rec)
    providers = client.shipping_providers("7091146663229654785")
    assert providers == [{"id": "7117858858072016686", "name": "USPS"},
                         {"id": "6617675021119438849", "name": "TT Virtual express"}]
    request = rec.requests[0]
    assert request.method == "GET"
    assert request.url.path == "/logistics/202309/delivery_options/7091146663229654785/shipping_providers"
    query = rec.query(0)
    assert query["shop_cipher"] == "ROW_cipher"
    assert query["sign"] == sign(SECRET, request.url.path, query, b"")


def test_mark_package_as_shipped_sends_lines_tracking_and_provider_and_returns_the_package() -> None:
    rec = Recorder([(200, envelope(data={**SHIPPED, "warning": {"message": "match more than one provider"}}))])
    client, _ = make_client(rec)
    assert ship(client) == "1152321127278713123"
    assert rec.requests[0].method == "POST"
    assert rec.requests[0].url.path == "/fulfillment/202309/orders/576461413038785752/packages"
    assert body_of(rec) == {"order_line_item_ids": ["L1", "L2"], "tracking_number": "9400111899223",
                            "shipping_provider_id": "7117858858072016686"}
    query = rec.query(0)
    assert query["sign"] == sign(SECRET, "/fulfillment/202309/orders/576461413038785752/packages", query,
                                 rec.requests[0].content)


def test_ship_package_sends_a_self_shipment() -> None:
    rec = Recorder([(200, envelope(data={}))])
    client, _ = make_client(rec)
    assert client.ship_package("1153132168123859123", "JX12345", "6617675021119438849") is None
    assert rec.requests[0].url.path == "/fulfillment/202309/packages/1153132168123859123/ship"
    assert body_of(rec) == {"self_shipment": {"tracking_number": "JX12345",
                                              "shipping_provider_id": "6617675021119438849"}}


def test_update_shipping_info_sends_the_new_tracking() -> None:
    rec = Recorder([(200, envelope(data=None))])
    client, _ = make_client(rec)
    client.update_shipping_info("1153132168123859123", "JX99999", "6617675021119438849")
    assert rec.requests[0].url.path == "/fulfillment/202309/packages/1153132168123859123/shipping_info/update"
    assert body_of(rec) == {"tracking_number": "JX99999", "shipping_provider_id": "6617675021119438849"}


def test_add_external_order_sends_one_order_in_tiktoks_batch_shape() -> None:
    rec = Recorder([(200, envelope(data={"errors": []}))])
    client, _ = make_client(rec)
    client.add_external_order("576461413038785752", "gid://shopify/Order/5500000001",
                              [("gid://shopify/LineItem/700001", "L1"), ("700002", "L2")])
    assert rec.requests[0].url.path == "/order/202406/orders/external_orders"
    assert body_of(rec) == {"orders": [{
        "id": "576461413038785752",
        "external_order": {"id": "5500000001", "platform": "SHOPIFY", "line_items": [
            {"id": "700001", "origin_id": "L1"}, {"id": "700002", "origin_id": "L2"}]},
    }]}


def test_an_order_tiktok_lists_in_errors_is_a_refusal_with_its_code() -> None:
    refused = {"errors": [{"code": "36020001", "message": "Invalid order_id", "detail": {
        "order_id": "576461413038785752", "external_order": {"id": "5500000001", "platform": "SHOPIFY"}}}]}
    rec = Recorder([(200, envelope(data=refused))])
    client, _ = make_client(rec)
    with pytest.raises(ApiError) as caught:
        client.add_external_order("576461413038785752", "5500000001", [("700001", "L1")])
    assert type(caught.value) is ApiError
    assert caught.value.code == 36020001 and "Invalid order_id" in caught.value.message
    assert len(rec.requests) == 1


def test_external_orders_reads_the_references_of_one_platform() -> None:
    rec = Recorder([(200, envelope(data={"external_orders": [{
        "id": "676461413038785752", "platform": "SHOPIFY",
        "line_items": [{"id": "577086512123755123", "origin_id": "677086512123755123"}]}]}))])
    client, _ = make_client(rec)
    assert client.external_orders("576461413038785752") == [{
        "id": "676461413038785752", "platform": "SHOPIFY",
        "line_items": [{"id": "577086512123755123", "origin_id": "677086512123755123"}]}]
    assert rec.requests[0].url.path == "/order/202406/orders/576461413038785752/external_orders"
    assert rec.query(0)["platform"] == "SHOPIFY"
    none_yet, _ = make_client(Recorder([(200, envelope(data={}))]))
    assert none_yet.external_orders("1") == []


@pytest.mark.parametrize(("method", "path", "key", "id_key"), [
    ("search_cancellations", "/return_refund/202309/cancellations/search", "cancellations", "cancel_id"),
    ("search_returns", "/return_refund/202309/returns/search", "return_orders", "return_id"),
])
def test_aftersales_searches_page_by_update_time_fifty_at_most(method, path, key, id_key) -> None:
    rec = Recorder([
        (200, envelope(data={key: [{id_key: "1"}, {id_key: "2"}], "next_page_token": "T1", "total_count": 3})),
        (200, envelope(data={key: [{id_key: "3"}], "next_page_token": "", "total_count": 3})),
    ])
    client, _ = make_client(rec)
    pages = list(getattr(client, method)(update_time_ge=100, update_time_lt=200, page_size=500))
    assert [[r[id_key] for r in page] for page in pages] == [["1", "2"], ["3"]]
    assert rec.requests[0].url.path == path
    assert rec.query(0)["page_size"] == "50"
    assert rec.query(0)["sort_field"] == "update_time" and rec.query(0)["sort_order"] == "ASC"
    assert rec.query(1)["page_token"] == "T1"
    assert body_of(rec) == {"update_time_ge": 100, "update_time_lt": 200}


def test_aftersales_paging_tells_records_apart_by_their_own_id() -> None:
    # Records have cancel_id, not id: pages of new cancellations are not "stale".
    rec = Recorder([(200, envelope(data={"cancellations": [{"cancel_id": str(i)}], "next_page_token": f"T{i}"}))
                    for i in range(5)] + [(200, envelope(data={"cancellations": [], "next_page_token": ""}))])
    client, _ = make_client(rec)
    assert sum(len(p) for p in client.search_cancellations(update_time_ge=0)) == 5

    looping = Recorder([(200, envelope(data={"return_orders": [{"return_id": "R1"}], "next_page_token": f"T{i}"}))
                        for i in range(4)])
    client, _ = make_client(looping)
    with pytest.raises(PagingError, match="no new return") as caught:
        list(client.search_returns(update_time_ge=0))
    assert "records pulled before it are kept" in (caught.value.hint or "")


# -- shapes checked at the boundary ------------------------------------------------------------

@pytest.mark.parametrize(("call", "data", "problem"), [
    (lambda c: c.shipping_providers("1"), {"shipping_providers": {"id": "1"}}, "not a list"),
    (lambda c: c.shipping_providers("1"), {"shipping_providers": [{"id": "1"}]}, "without a string id and name"),
    (lambda c: c.shipping_providers("1"), {"shipping_providers": [{"id": True, "name": "X"}]}, "string id"),
    (lambda c: c.external_orders("1"), {"external_orders": [{"id": "1"}]}, "string id and platform"),
    (lambda c: c.external_orders("1"), {"external_orders": [{"id": "1", "platform": "SHOPIFY",
                                                             "line_items": [{"id": "2"}]}]}, "origin_id"),
    (lambda c: list(c.search_returns(update_time_ge=0)), {"return_orders": "x"}, "not a list"),
])
def test_a_read_of_the_wrong_shape_is_one_clear_error(call, data, problem) -> None:
    client, _ = make_client(Recorder([(200, envelope(data=data))]))
    with pytest.raises(ApiError) as caught:
        call(client)
    assert problem in caught.value.message
    assert "run again later" in (caught.value.hint or "")


@pytest.mark.parametrize("bad", ["", "1/../../order", "1?x=2", None])
def test_ids_that_would_change_the_url_are_refused_before_sending(bad) -> None:
    rec = Recorder([])
    client, _ = make_client(rec)
    with pytest.raises(ValueError):
        client.ship_package(bad, "T", "P")
    with pytest.raises(ValueError):
        client.shipping_providers(bad)
    with pytest.raises(ValueError):
        client.add_external_order("1", "not-a-shopify-id", [])
    assert rec.requests == []


# -- writes: an unclear answer is an unknown outcome, sent once ------------------------------------

def raise_(exc_type):
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("boom", request=request)
    return handler


WRITES = [
    pytest.param(ship, id="create_package_and_ship"),
    pytest.param(lambda c: c.ship_package("1", "T", "P"), id="ship_package"),
    pytest.param(lambda c: c.update_shipping_info("1", "T", "P"), id="update_shipping_info"),
    pytest.param(lambda c: c.add_external_order("1", "2", [("3", "4")]), id="add_external_order"),
]
UNCLEAR = [
    pytest.param(raise_(httpx.ReadTimeout), id="timeout-after-sending"),
    pytest.param(raise_(httpx.RemoteProtocolError), id="dropped"),
    pytest.param(raise_(httpx.WriteError), id="write-error"),
    pytest.param((500, envelope(36009003, message="Internal error.")), id="500-internal"),
    pytest.param((200, envelope(36009003, message="Internal error.")), id="200-internal"),
    pytest.param((502, "<html>bad gateway</html>"), id="502-html"),
    pytest.param((200, "<html>ok</html>"), id="200-html"),
    pytest.param((404, "not found"), id="404-no-envelope"),
    pytest.param((200, {"data": {}}), id="json-without-code"),
    pytest.param((200, envelope(data=["not", "an", "object"])), id="data-not-an-object"),
]


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("answer", UNCLEAR)
def test_a_write_without_a_clear_answer_raises_outcome_unknown_and_is_sent_once(write, answer) -> None:
    rec = Recorder([answer, (200, envelope(data=SHIPPED))])
    client, sleeps = make_client(rec)
    with pytest.raises(OutcomeUnknownError) as caught:
        write(client)
    assert len(rec.requests) == 1 and sleeps == []
    assert "may or may not have taken effect" in caught.value.message
    assert "looks the order up" in (caught.value.hint or "")


def test_a_success_without_a_package_id_is_an_unknown_outcome() -> None:
    rec = Recorder([(200, envelope(data={"order_id": "576461413038785752"}))])
    client, _ = make_client(rec)
    with pytest.raises(OutcomeUnknownError, match="named no package"):
        ship(client)
    assert len(rec.requests) == 1


def test_unusable_errors_after_adding_a_reference_are_an_unknown_outcome() -> None:
    rec = Recorder([(200, envelope(data={"errors": "something"}))])
    client, _ = make_client(rec)
    with pytest.raises(OutcomeUnknownError):
        client.add_external_order("1", "2", [])


def test_reads_are_still_retried_on_the_same_answers() -> None:
    rec = Recorder([raise_(httpx.ReadTimeout), (500, envelope(36009003)), (502, "<html>"),
                    (200, envelope(data={"shipping_providers": [{"id": "1", "name": "USPS"}]}))])
    client, sleeps = make_client(rec)
    assert client.shipping_providers("9") == [{"id": "1", "name": "USPS"}]
    assert len(rec.requests) == 4 and len(sleeps) == 3


# -- writes: a refusal before it ran is retried or raised as before ----------------------------------

@pytest.mark.parametrize("write", WRITES)
def test_a_write_refused_before_it_ran_is_sent_again(write) -> None:
    rec = Recorder([
        raise_(httpx.ConnectError),                                   # never left
        raise_(httpx.ConnectTimeout),
        (429, envelope(36009002, message="Too many requests.")),       # throttled: refused
        (200, envelope(36009002, message="Too many requests.")),
        (200, envelope(data=SHIPPED)),
    ])
    client, sleeps = make_client(rec)
    write(client)
    assert len(rec.requests) == 5 and len(sleeps) == 4


def test_a_write_the_network_never_took_ends_as_a_network_error() -> None:
    rec = Recorder([raise_(httpx.ConnectError)] * 3)
    client, _ = make_client(rec, max_retries=2)
    with pytest.raises(NetworkError):
        ship(client)
    assert len(rec.requests) == 3


@pytest.mark.parametrize("write", WRITES)
def test_an_expired_token_refreshes_and_sends_the_write_again(write) -> None:
    rec = Recorder([(401, envelope(105002, message="Expired credentials.")), refresh_answer("AT-new", "RT-new"),
                    (200, envelope(data=SHIPPED))])
    client, _ = make_client(rec)
    write(client)
    assert [r.url.path for r in rec.requests][1] == "/api/v2/token/refresh"
    assert rec.requests[2].headers["x-tts-access-token"] == "AT-new"
    assert rec.requests[2].content == rec.requests[0].content


@pytest.mark.parametrize(("status", "code", "message", "error"), [
    (400, 21011003, "The package has already been shipped.", ApiError),
    (200, 21008106, "This interface cannot be used in this region or this business type.", ApiError),
    (400, 36009004, "Invalid order_id.", ApiError),
    (401, 105001, "Invalid credentials.", AuthError),
])
def test_a_clear_refusal_is_raised_with_tiktoks_code_and_message(status, code, message, error) -> None:
    rec = Recorder([(status, envelope(code, message=message, request_id="RID-9"))])
    client, _ = make_client(rec)
    with pytest.raises(ApiError) as caught:
        ship(client)
    assert type(caught.value) is error
    assert caught.value.code == code and caught.value.request_id == "RID-9"
    assert message in caught.value.message
    assert len(rec.requests) == 1


def test_get_orders_hands_back_the_package_and_tracking_fields_as_sent() -> None:
    line = {"id": "L1", "sku_id": "S", "display_status": "TO_SHIP", "package_id": "1153132168123859123",
            "package_status": "PROCESSING", "tracking_number": "JX12345",
            "shipping_provider_id": "6617675021119438849", "shipping_provider_name": "TT Virtual express",
            "rts_time": NOW}
    order = {"id": "O1", "status": "AWAITING_COLLECTION", "packages": [{"id": "1153132168123859123"}],
             "line_items": [line]}
    client, _ = make_client(Recorder([(200, envelope(data={"orders": [order]}))]))
    assert client.get_orders(["O1"]) == [order]
