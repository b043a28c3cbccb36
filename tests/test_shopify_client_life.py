"""The Shopify client after creation (DESIGN §6b): fulfillments, orderCancel, refundCreate, over MockTransport.

Each test scripts Shopify's answers and checks what the client sent, what it
returned and, for the two writes, that nothing but a clear success or
well-formed userErrors is ever final (DESIGN §5.4, §6b).
"""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from ecomsend_cli.errors import ApiError, InputError, NotFoundError, OutcomeUnknownError
from ecomsend_cli.shopify import Fulfillment, Tracking
from tests.test_shopify_client import FIXTURES, ORDER, Script, make_client, ok

ORDER_ID = "gid://shopify/Order/7001"
LINE_A = "gid://shopify/LineItem/11"
LINE_B = "gid://shopify/LineItem/12"
VARIANT_A = "gid://shopify/ProductVariant/501"
VARIANT_B = "gid://shopify/ProductVariant/502"
SALE = "gid://shopify/OrderTransaction/900"
JOB = "gid://shopify/Job/810c0b1a-d0fe-4ce1-9be0-2c3c781a9787"
MONEY_USD = {"shopMoney": {"amount": "10.0", "currencyCode": "USD"},
             "presentmentMoney": {"amount": "10.0", "currencyCode": "USD"}}


def sent(script: Script, n: int = 0) -> dict:
    return json.loads(script.graphql_requests[n].content)


def error_answer(code: str, message: str = "refused") -> httpx.Response:
    return httpx.Response(200, json={"errors": [{"message": message, "extensions": {"code": code}}]})


# -- orderCreate gives the created lines ---------------------------------------------------------


def created(lines: dict | None) -> httpx.Response:
    order = {"id": ORDER_ID, "name": "#1001", "sourceIdentifier": "T1"}
    if lines is not None:
        order["lineItems"] = lines
    return ok({"orderCreate": {"order": order, "userErrors": []}})


def test_order_create_asks_for_and_returns_the_created_line_items():
    script = Script(created({"pageInfo": {"hasNextPage": False}, "nodes": [
        {"id": LINE_A, "quantity": 2, "variant": {"id": VARIANT_A}},
        {"id": LINE_B, "quantity": 1, "variant": None}]}))
    result = make_client(script).order_create(ORDER, inventory_behaviour="BYPASS")
    assert result.line_items == [(LINE_A, VARIANT_A, 2), (LINE_B, None, 1)]
    assert result.line_items_complete
    assert "lineItems(first: 250)" in sent(script)["query"]


def test_order_create_reads_the_lines_of_shopifys_captured_answer():
    path = FIXTURES / "shopify_orderCreate_response.json"
    if not path.is_file():
        pytest.skip(f"{path} is not present (fixtures are not shipped)")
    result = make_client(Script(httpx.Response(200, json=json.loads(path.read_text())))).order_create(
        ORDER, inventory_behaviour="BYPASS")
    assert result.line_items == [("gid://shopify/LineItem/16190346854633",
                                  "gid://shopify/ProductVariant/48540157378793", 2)]


@pytest.mark.parametrize("lines", [
    {"pageInfo": {"hasNextPage": True, "endCursor": "c"}, "nodes": [{"id": LINE_A, "quantity": 1, "variant": None}]},
    {"nodes": [{"id": "not-a-gid", "quantity": 1}]},
    "garbage",
    None,
])
def test_an_order_is_created_whatever_its_lines_look_like_and_says_when_they_are_incomplete(lines):
    # The order exists: a strange line list must never turn a creation into an unknown outcome.
    result = make_client(Script(created(lines))).order_create(ORDER, inventory_behaviour="BYPASS")
    assert result.ok and result.order_id == ORDER_ID
    assert not result.line_items_complete


# -- order_fulfillments ----------------------------------------------------------------------------


def order_node(oid: str, fulfillments: list[dict], *, lines: list | None = None, status: str = "FULFILLED",
               cancelled: str | None = None, more_lines: str | None = None) -> dict:
    node = {"id": oid, "cancelledAt": cancelled, "displayFulfillmentStatus": status,
            "fulfillments": fulfillments}
    if lines is not None:
        node["lineItems"] = {"pageInfo": {"hasNextPage": more_lines is not None, "endCursor": more_lines},
                             "nodes": lines}
    return node


def fulfillment_node(fid: str, *, status: str = "SUCCESS", number: str | None = "1Z999",
                     company: str | None = "UPS") -> dict:
    return {"id": fid, "status": status, "createdAt": "2026-05-01T10:00:00Z",
            "updatedAt": "2026-05-01T10:00:00Z",
            "trackingInfo": [{"company": company, "number": number, "url": None}] if number else [],
            "location": {"id": "gid://shopify/Location/1"}}


def lines_node(fid: str, lines: list[tuple[str, str | None, int]], more: str | None = None) -> dict:
    return {"id": fid, "fulfillmentLineItems": {
        "pageInfo": {"hasNextPage": more is not None, "endCursor": more},
        "nodes": [{"id": f"gid://shopify/FulfillmentLineItem/{n}", "quantity": q,
                   "lineItem": {"id": line, "variant": {"id": v} if v else None}}
                  for n, (line, v, q) in enumerate(lines, 1)]}}


F1 = "gid://shopify/Fulfillment/31"
F2 = "gid://shopify/Fulfillment/32"


def test_fulfillments_read_orders_then_only_the_lines_of_unknown_successful_fulfillments():
    orders = ok({"nodes": [
        order_node(ORDER_ID, [fulfillment_node(F1), fulfillment_node(F2, number="JD01", company="DHL"),
                              fulfillment_node("gid://shopify/Fulfillment/33", status="CANCELLED")],
                   lines=[{"id": LINE_A, "quantity": 3, "currentQuantity": 3, "variant": {"id": VARIANT_A}}],
                   status="PARTIALLY_FULFILLED"),
        None,  # an order Shopify no longer has
    ]})
    fulfillment_lines = ok({"nodes": [lines_node(F2, [(LINE_A, VARIANT_A, 2)])]})
    script = Script(orders, fulfillment_lines)
    found = make_client(script).order_fulfillments([ORDER_ID, "gid://shopify/Order/404"],
                                                   known_fulfillments={F1})
    assert list(found) == [ORDER_ID]
    order = found[ORDER_ID]
    assert order.display_fulfillment_status == "PARTIALLY_FULFILLED" and order.cancelled_at is None
    assert order.line_items == [(LINE_A, VARIANT_A, 3, 3)]
    assert [f.id for f in order.fulfillments] == [F1, F2, "gid://shopify/Fulfillment/33"]
    assert order.fulfillments[0].lines is None  # known: not read again
    assert order.fulfillments[1] == Fulfillment(
        id=F2, status="SUCCESS", created_at="2026-05-01T10:00:00Z", updated_at="2026-05-01T10:00:00Z",
        tracking=[Tracking(company="DHL", number="JD01", url=None)], location_id="gid://shopify/Location/1",
        lines=[(LINE_A, VARIANT_A, 2)])
    assert order.fulfillments[2].lines is None  # cancelled: nothing to push
    assert sent(script, 1)["variables"] == {"ids": [F2]}
    assert len(script.graphql_requests) == 2


def test_fulfillments_without_line_items_use_the_cheaper_read():
    script = Script(ok({"nodes": [order_node(ORDER_ID, [])]}))
    found = make_client(script).order_fulfillments([ORDER_ID], line_items=False)
    assert found[ORDER_ID].line_items is None and found[ORDER_ID].fulfillments == []
    assert "lineItems" not in sent(script)["query"]


def test_fulfillment_reads_are_batched_by_cost():
    from ecomsend_cli import shopify_documents as docs

    ids = [f"gid://shopify/Order/{n}" for n in range(1, 601)]
    per_call = docs.batch_size(docs.ORDER_FULFILLMENTS_NODE_COST)
    assert 50 <= per_call <= 250

    def answer(request: httpx.Request) -> httpx.Response:
        asked = json.loads(request.content)["variables"]["ids"]
        return ok({"nodes": [order_node(i, []) for i in asked]})

    calls = -(-len(ids) // per_call)
    script = Script(*[answer] * calls)
    found = make_client(script).order_fulfillments(ids, line_items=False)
    assert len(found) == 600
    assert [len(sent(script, n)["variables"]["ids"]) for n in range(calls)][0] == per_call
    assert len(script.graphql_requests) == calls
    assert per_call * docs.ORDER_FULFILLMENTS_NODE_COST <= 1000


def test_a_read_priced_over_shopifys_ceiling_is_halved_and_the_smaller_batch_kept():
    ids = [f"gid://shopify/Order/{n}" for n in range(1, 41)]

    def answer(request: httpx.Request) -> httpx.Response:
        asked = json.loads(request.content)["variables"]["ids"]
        if len(asked) > 10:
            return error_answer("MAX_COST_EXCEEDED", "Query cost is 1200, which exceeds the single query max cost")
        return ok({"nodes": [order_node(i, []) for i in asked]})

    script = Script(*[answer] * 20)
    client = make_client(script)
    assert len(client.order_fulfillments(ids, line_items=False)) == 40
    sizes = [len(sent(script, n)["variables"]["ids"]) for n in range(len(script.graphql_requests))]
    assert sizes[-4:] == [10, 10, 10, 10]  # halved until accepted, then kept
    before = len(script.graphql_requests)
    client.order_fulfillments(ids[:10], line_items=False)
    assert len(script.graphql_requests) == before + 1  # the learnt size from the start


def test_more_order_lines_and_fulfillment_lines_than_a_page_are_all_read():
    first = ok({"nodes": [order_node(ORDER_ID, [fulfillment_node(F1)],
                                     lines=[{"id": LINE_A, "quantity": 1, "currentQuantity": 1,
                                             "variant": {"id": VARIANT_A}}], more_lines="L1")]})
    more_order_lines = ok({"order": {"lineItems": {"pageInfo": {"hasNextPage": False, "endCursor": None},
                                                   "nodes": [{"id": LINE_B, "quantity": 2, "currentQuantity": 0,
                                                              "variant": None}]}}})
    fulfillment_page = ok({"nodes": [lines_node(F1, [(LINE_A, VARIANT_A, 1)], more="F1C")]})
    fulfillment_more = ok({"node": lines_node(F1, [(LINE_B, None, 2)])})
    script = Script(first, more_order_lines, fulfillment_page, fulfillment_more)
    order = make_client(script).order_fulfillments([ORDER_ID])[ORDER_ID]
    assert order.line_items == [(LINE_A, VARIANT_A, 1, 1), (LINE_B, None, 2, 0)]
    assert order.fulfillments[0].lines == [(LINE_A, VARIANT_A, 1), (LINE_B, None, 2)]
    assert sent(script, 1)["variables"] == {"id": ORDER_ID, "after": "L1"}
    assert sent(script, 3)["variables"] == {"id": F1, "after": "F1C"}


@pytest.mark.parametrize("node", [
    {"id": ORDER_ID, "displayFulfillmentStatus": "FULFILLED", "fulfillments": "none"},
    {"id": ORDER_ID, "displayFulfillmentStatus": 3, "fulfillments": []},
    {"id": ORDER_ID, "displayFulfillmentStatus": "FULFILLED",
     "fulfillments": [{"id": "gid://shopify/Fulfillment/x", "status": "SUCCESS", "trackingInfo": []}]},
    {"id": ORDER_ID, "displayFulfillmentStatus": "FULFILLED",
     "fulfillments": [{"id": F1, "status": "SUCCESS", "trackingInfo": [{"number": 123}]}]},
])
def test_a_fulfillment_answer_shopify_does_not_document_is_an_error_not_a_guess(node):
    with pytest.raises(ApiError) as caught:
        make_client(Script(ok({"nodes": [node]}))).order_fulfillments([ORDER_ID], line_items=False)
    assert "not shaped as documented" in str(caught.value)


def test_a_batch_answer_with_missing_nodes_is_an_error():
    with pytest.raises(ApiError):
        make_client(Script(ok({"nodes": [None]}))).order_fulfillments([ORDER_ID, F1], line_items=False)


# -- orderCancel ----------------------------------------------------------------------------------


def cancel_answer(job: dict | None, errors: list) -> httpx.Response:
    return ok({"orderCancel": {"job": job, "orderCancelUserErrors": errors}})


def test_order_cancel_sends_what_design_asks_and_returns_the_job():
    script = Script(cancel_answer({"id": JOB, "done": False}, []))
    result = make_client(script).order_cancel(ORDER_ID, reason="CUSTOMER", staff_note="Cancelled on TikTok Shop")
    assert result.ok and result.job_id == JOB and not result.job_done and not result.already_cancelled
    assert sent(script)["variables"] == {
        "orderId": ORDER_ID, "reason": "CUSTOMER", "restock": True,
        "refundMethod": {"originalPaymentMethodsRefund": True}, "notifyCustomer": False,
        "staffNote": "Cancelled on TikTok Shop"}


def test_an_order_already_cancelled_is_recognised_from_shopifys_captured_answer():
    # Shopify 2026-04, captured by airhorns/shopify-draft-proxy.
    script = Script(cancel_answer(None, [{"field": ["orderId"], "code": "INVALID",
                                          "message": "Cannot cancel an order that has already been canceled"}]))
    result = make_client(script).order_cancel(ORDER_ID, reason="OTHER", staff_note="x")
    assert result.already_cancelled and result.ok and result.job_id is None


def test_a_refused_cancel_is_final_with_shopifys_reason():
    script = Script(cancel_answer(None, [{"field": ["orderId"], "code": "NOT_FOUND", "message": "Order not found"}]))
    result = make_client(script).order_cancel(ORDER_ID, reason="OTHER", staff_note="x")
    assert not result.ok and not result.already_cancelled
    assert result.user_errors == [{"field": ["orderId"], "message": "Order not found", "code": "NOT_FOUND"}]


def test_a_staff_note_longer_than_shopify_takes_is_shortened():
    script = Script(cancel_answer({"id": JOB, "done": False}, []))
    make_client(script).order_cancel(ORDER_ID, reason="OTHER", staff_note="x" * 400, refund=False, restock=False)
    variables = sent(script)["variables"]
    assert len(variables["staffNote"]) == 255
    assert variables["refundMethod"] == {"originalPaymentMethodsRefund": False} and variables["restock"] is False


@pytest.mark.parametrize("answer", [
    httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("gone"), httpx.Response(500), httpx.Response(502),
    httpx.Response(200, text="<html>oops</html>"), ok({"orderCancel": None}),
    cancel_answer(None, []), cancel_answer({"id": "gid://shopify/Order/1", "done": False}, []),
    cancel_answer({"id": JOB, "done": False}, [{"message": "also an error"}]),
    cancel_answer(None, "Order has been cancelled"),
    httpx.Response(200, json={"data": {"orderCancel": None}, "errors": [
        {"message": "Internal error", "path": ["orderCancel"], "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}),
], ids=repr)
def test_an_unclear_answer_to_order_cancel_is_unknown_and_never_resent(answer):
    script = Script(answer, cancel_answer({"id": JOB, "done": False}, []))
    with pytest.raises(OutcomeUnknownError) as caught:
        make_client(script).order_cancel(ORDER_ID, reason="OTHER", staff_note="x")
    assert len(script.graphql_requests) == 1
    assert "cancelledAt" in str(caught.value)


def test_order_cancel_throttled_is_retried_because_nothing_ran():
    throttled = httpx.Response(200, json={"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]})
    script = Script(throttled, cancel_answer({"id": JOB, "done": False}, []))
    assert make_client(script).order_cancel(ORDER_ID, reason="OTHER", staff_note="x").job_id == JOB


@pytest.mark.parametrize("args", [{"reason": "BUYER"}, {"order_id": "5100000000001"}])
def test_a_bad_cancel_request_is_refused_before_sending(args):
    script = Script()
    call = {"order_id": ORDER_ID, "reason": "CUSTOMER", **args}
    with pytest.raises(InputError):
        make_client(script).order_cancel(call.pop("order_id"), staff_note="x", **call)
    assert script.requests == []


def test_job_done_reads_the_job():
    script = Script(ok({"job": {"id": JOB, "done": False}}), ok({"job": {"id": JOB, "done": True}}),
                    ok({"job": None}))
    client = make_client(script)
    assert client.job_done(JOB) is False
    assert client.job_done(JOB) is True
    with pytest.raises(ApiError, match="no job"):
        client.job_done(JOB)


# -- transactions and refunds ---------------------------------------------------------------------


def transaction(tid: str, kind: str = "SALE", amount: str = "10.0", parent: str | None = None) -> dict:
    return {"id": tid, "kind": kind, "status": "SUCCESS", "gateway": "TikTok Shop",
            "parentTransaction": {"id": parent} if parent else None,
            "amountSet": {"shopMoney": {"amount": amount, "currencyCode": "USD"},
                          "presentmentMoney": {"amount": amount, "currencyCode": "USD"}}}


def test_order_transactions_are_read_with_amounts_and_parents():
    script = Script(ok({"order": {"id": ORDER_ID, "transactions": [
        transaction(SALE), transaction("gid://shopify/OrderTransaction/901", "REFUND", "4.5", SALE)]}}))
    found = make_client(script).order_transactions(ORDER_ID)
    assert found[0] == {"id": SALE, "kind": "SALE", "status": "SUCCESS", "gateway": "TikTok Shop",
                        "parent_id": None, "amount": Decimal("10.0"), "currency": "USD",
                        "presentment_amount": Decimal("10.0"), "presentment_currency": "USD"}
    assert found[1]["parent_id"] == SALE and found[1]["amount"] == Decimal("4.5")


def test_transactions_of_an_order_shopify_does_not_have():
    with pytest.raises(NotFoundError):
        make_client(Script(ok({"order": None}))).order_transactions(ORDER_ID)


def refund_answer(refund: dict | None, errors: list) -> httpx.Response:
    return ok({"refundCreate": {"refund": refund, "userErrors": errors}})


REFUND = {"id": "gid://shopify/Refund/77", "createdAt": "2026-05-02T09:00:00Z",
          "totalRefundedSet": {"shopMoney": {"amount": "12.5", "currencyCode": "USD"},
                               "presentmentMoney": {"amount": "12.5", "currencyCode": "USD"}}}


def refund(client, **overrides):
    args = {"idempotency_key": "tiktok-cancel-58001", "line_items": [(LINE_A, 1, "CANCEL"),
                                                                      (LINE_B, 2, "RETURN", "gid://shopify/Location/2")],
            "shipping_amount": Decimal("2.50"),
            "transactions": [{"amount": Decimal("12.50"), "gateway": "TikTok Shop", "parent_id": SALE}],
            "note": "TikTok cancellation 58001", **overrides}
    return client.refund_create(ORDER_ID, **args)


def test_refund_create_sends_the_key_by_directive_and_the_refund_input():
    script = Script(refund_answer(REFUND, []))
    result = refund(make_client(script), currency="USD")
    assert result.ok and result.refund_id == REFUND["id"] and result.total_refunded == Decimal("12.5")
    body = sent(script)
    assert "refundCreate(input: $input) @idempotent(key: $idempotencyKey)" in body["query"]
    assert body["variables"] == {"idempotencyKey": "tiktok-cancel-58001", "input": {
        "orderId": ORDER_ID, "note": "TikTok cancellation 58001", "notify": False, "currency": "USD",
        "refundLineItems": [{"lineItemId": LINE_A, "quantity": 1, "restockType": "CANCEL"},
                            {"lineItemId": LINE_B, "quantity": 2, "restockType": "RETURN",
                             "locationId": "gid://shopify/Location/2"}],
        "shipping": {"amount": "2.50"},
        "transactions": [{"orderId": ORDER_ID, "parentId": SALE, "gateway": "TikTok Shop", "kind": "REFUND",
                          "amount": "12.50"}]}}


def test_a_refused_refund_is_final_with_shopifys_reasons():
    errors = [{"field": ["transactions"], "message": "Transactions require a parent_id associated with the order"}]
    result = refund(make_client(Script(refund_answer(None, errors))))
    assert not result.ok and result.user_errors == errors


def test_a_refund_still_in_progress_under_its_key_is_unknown():
    # Shopify's IDEMPOTENCY_CONCURRENT_REQUEST wording: the first request may still refund.
    answer = refund_answer(None, [{"field": None,
                                   "message": "This request is currently in progress, please try again."}])
    with pytest.raises(OutcomeUnknownError) as caught:
        refund(make_client(Script(answer)))
    assert caught.value.code == "IDEMPOTENCY_CONCURRENT_REQUEST"
    assert "same idempotency key" in str(caught.value)


@pytest.mark.parametrize("answer", [
    httpx.ReadTimeout("slow"), httpx.Response(500), httpx.Response(503), httpx.Response(400, json={"errors": "x"}),
    httpx.Response(200, text="not json"), ok({"refundCreate": None}), refund_answer(None, []),
    refund_answer({"id": "gid://shopify/Order/1"}, []), refund_answer(REFUND, [{"message": "and an error"}]),
    # A missing @idempotent: the field is null beside the error (a bug of ours; never final).
    httpx.Response(200, json={"data": {"refundCreate": None}, "errors": [{
        "message": "The @idempotent directive is required for this mutation but was not provided.",
        "path": ["refundCreate"], "extensions": {"code": "BAD_REQUEST"}}]}),
], ids=repr)
def test_an_unclear_answer_to_refund_create_is_unknown_and_never_resent(answer):
    script = Script(answer, refund_answer(REFUND, []))
    with pytest.raises(OutcomeUnknownError):
        refund(make_client(script))
    assert len(script.graphql_requests) == 1


@pytest.mark.parametrize("overrides", [
    {"idempotency_key": "  "},
    {"line_items": [(LINE_A, 0, "CANCEL")]},
    {"line_items": [(LINE_A, 1, "LEGACY_RESTOCK")]},
    {"line_items": [("11", 1, "CANCEL")]},
    {"line_items": [(LINE_A, 1, "RETURN", "warehouse")]},
    {"shipping_amount": Decimal("-1")},
    {"transactions": [{"amount": "12.50", "gateway": "TikTok Shop", "parent_id": "900"}]},
    {"transactions": [{"amount": "0", "gateway": "TikTok Shop", "parent_id": SALE}]},
    {"transactions": [{"amount": "NaN", "gateway": "TikTok Shop", "parent_id": SALE}]},
    {"transactions": [{"amount": "1", "gateway": "", "parent_id": SALE}]},
], ids=repr)
def test_a_bad_refund_is_refused_before_sending(overrides):
    script = Script()
    with pytest.raises(InputError):
        refund(make_client(script), **overrides)
    assert script.requests == []


def test_order_refunds_are_read_with_their_lines_and_transactions():
    answer = ok({"order": {"id": ORDER_ID, "totalRefundedSet": MONEY_USD, "refunds": [{
        **REFUND, "note": "TikTok return 9",
        "refundLineItems": {"nodes": [{"quantity": 1, "restockType": "RETURN", "lineItem": {"id": LINE_A},
                                       "location": {"id": "gid://shopify/Location/1"}}]},
        "transactions": {"nodes": [transaction("gid://shopify/OrderTransaction/901", "REFUND", "12.5", SALE)]}}]}})
    refunds = make_client(Script(answer)).order_refunds(ORDER_ID)
    assert refunds[0]["id"] == REFUND["id"] and refunds[0]["note"] == "TikTok return 9"
    assert refunds[0]["total_refunded"] == Decimal("12.5")
    assert refunds[0]["line_items"] == [(LINE_A, 1, "RETURN", "gid://shopify/Location/1")]
    assert refunds[0]["transactions"][0]["parent_id"] == SALE
