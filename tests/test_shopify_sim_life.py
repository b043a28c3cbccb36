"""The Shopify simulator after orderCreate, over real HTTP: fulfillments, orderCancel, refundCreate.

Orders are created, read, cancelled and refunded through the real client (as
the sync phases do); the operator's side (fulfil, edit tracking) goes through
the control endpoints; stock is read through ``/_sandbox/inventory``.
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from ecomsend_cli.errors import OutcomeUnknownError
from ecomsend_cli.sandbox.shopify_life import (
    ALREADY_CANCELLED,
    FULFILLED_REFUSAL,
    IDEMPOTENT_REQUIRED,
    KEY_MISMATCH,
    MISSING_PARENT,
)
from ecomsend_cli.sandbox.shopify_sim import ShopifySimulator
from tests.test_shopify_sim import BIG_BUDGET, catalog, client_for
from tests.test_shopify_sim_orders import FBT_LOCATION, SHOP_LOCATION, us_order

START = 1_800_000_000.0


@pytest.fixture
def now():
    return [START]


@pytest.fixture
def sim(tmp_path, now):
    with ShopifySimulator(tmp_path / "shopify.db", products=catalog(2), clock=lambda: now[0],
                          **BIG_BUDGET) as running:
        yield running


def control(sim: ShopifySimulator, path: str, body: dict | None = None) -> httpx.Response:
    return httpx.post(f"{sim.url}/_sandbox{path}", json=body if body is not None else {}, timeout=10)


def stock(sim: ShopifySimulator, variant: int) -> tuple[int, int, int]:
    """(total, at the shop location, at the FBT warehouse)."""
    row = next(v for v in sim.inventory() if v["variant_id"] == f"gid://shopify/ProductVariant/{variant}")
    return row["inventory_quantity"], row["locations"][SHOP_LOCATION], row["locations"][FBT_LOCATION]


def create(sim: ShopifySimulator, source: str = "T-1", behaviour: str = "DECREMENT_OBEYING_POLICY"):
    """An order of variant 11 × 2 and variant 12 × 1, 26.20 paid in two SALEs (24.20 + 2.00)."""
    result = client_for(sim).order_create(us_order(source), inventory_behaviour=behaviour)
    assert result.ok
    return result


def listed(sim: ShopifySimulator, order_id: str) -> dict:
    return next(o for o in sim.orders() if o["id"] == order_id)


# -- fulfillments --------------------------------------------------------------------------------


def test_partial_fulfilment_then_full_reads_back_with_tracking_and_lines(sim):
    order = create(sim)
    (line_a, variant_a, _), (line_b, variant_b, _) = order.line_items
    client = client_for(sim)
    first = control(sim, "/orders/1001/fulfil", {"lines": [{"line": line_a, "quantity": 1}],
                                                 "tracking_number": "1Z999AA1", "company": "UPS"})
    assert first.status_code == 200, first.text
    read = client.order_fulfillments([order.order_id])[order.order_id]
    assert read.display_fulfillment_status == "PARTIALLY_FULFILLED"
    assert [(f.status, f.tracking[0].number, f.tracking[0].company, f.lines) for f in read.fulfillments] == [
        ("SUCCESS", "1Z999AA1", "UPS", [(line_a, variant_a, 1)])]
    assert read.line_items == [(line_a, variant_a, 2, 2), (line_b, variant_b, 1, 1)]

    second = control(sim, "/orders/1001/fulfil", {"tracking_number": "JD0002", "company": "DHL Express"})
    assert second.status_code == 200, second.text
    read = client.order_fulfillments([order.order_id], known_fulfillments={first.json()["id"]})[order.order_id]
    assert read.display_fulfillment_status == "FULFILLED"
    assert read.fulfillments[0].lines is None  # known: not read again
    assert read.fulfillments[1].lines == [(line_a, variant_a, 1), (line_b, variant_b, 1)]
    assert read.fulfillments[1].location_id == SHOP_LOCATION
    assert [line["fulfilled"] for line in listed(sim, order.order_id)["lines"]] == [2, 1]
    assert stock(sim, 11) == (3, 3, 0)  # fulfilling moves no stock: the order claimed it

    refused = control(sim, "/orders/1001/fulfil", {"lines": [{"line": 0, "quantity": 1}]})
    assert refused.status_code == 400 and "0 unit(s) left" in refused.json()["error"]


@pytest.mark.parametrize("body, says", [
    ({"lines": [{"line": 0, "quantity": 3}]}, "2 unit(s) left"),
    ({"lines": [{"line": 7, "quantity": 1}]}, "line must be a position"),
    ({"lines": [{"line": 0, "quantity": 0}]}, "positive whole number"),
    ({"location": "Moon base"}, "no location"),
    ({"carrier": "UPS"}, "unknown keys: carrier"),
])
def test_an_impossible_fulfilment_is_refused_and_changes_nothing(sim, body, says):
    create(sim)
    answer = control(sim, "/orders/1001/fulfil", body)
    assert answer.status_code == 400 and says in answer.json()["error"]
    assert listed(sim, "gid://shopify/Order/5100000000001")["fulfillments"] == []


def test_fulfilling_from_another_location(sim):
    order = create(sim)
    made = sim.fulfil(1001, location="TikTok FBT warehouse", tracking_number="TT1", company="USPS")
    assert made["location"] == FBT_LOCATION
    read = client_for(sim).order_fulfillments([order.order_id], line_items=False)[order.order_id]
    assert read.fulfillments[0].location_id == FBT_LOCATION


def test_a_tracking_edit_changes_the_number_but_not_updated_at(sim, now):
    order = create(sim)
    made = sim.fulfil(1001, tracking_number="1Z-OLD", company="UPS")
    now[0] += 3600
    number = made["id"].rsplit("/", 1)[1]
    edited = control(sim, f"/fulfillments/{number}/tracking", {"tracking_number": "1Z-NEW"})
    assert edited.status_code == 200, edited.text
    read = client_for(sim).order_fulfillments([order.order_id], line_items=False)[order.order_id].fulfillments[0]
    assert [(t.company, t.number) for t in read.tracking] == [("UPS", "1Z-NEW")]
    # DESIGN §6b.1: a client must not rely on updatedAt moving when tracking is edited.
    assert read.updated_at == made["updated_at"]
    assert control(sim, "/fulfillments/999/tracking", {"tracking_number": "x"}).status_code == 400


def test_an_order_created_fulfilled_reads_its_fulfillment_lines(sim):
    order = client_for(sim).order_create(
        us_order(fulfillment={"locationId": FBT_LOCATION, "trackingNumber": "FBT1", "trackingCompany": "TikTok"}),
        inventory_behaviour="BYPASS")
    read = client_for(sim).order_fulfillments([order.order_id])[order.order_id]
    assert read.display_fulfillment_status == "FULFILLED"
    assert read.fulfillments[0].lines == [(line, variant, quantity) for line, variant, quantity in order.line_items]
    assert read.fulfillments[0].tracking[0].number == "FBT1"


def test_fulfillment_reads_cost_a_batch_per_call(sim):
    orders = [create(sim, f"T-{n}", behaviour="BYPASS").order_id for n in range(6)]
    for number in range(1001, 1007):
        sim.fulfil(number, tracking_number=f"N{number}", company="UPS")
    before = len(sim.ops("nodes"))
    found = client_for(sim).order_fulfillments(orders)
    assert len(found) == 6 and all(o.display_fulfillment_status == "FULFILLED" for o in found.values())
    assert len(sim.ops("nodes")) - before == 2  # one for the orders, one for the new fulfillments' lines


# -- orderCancel ----------------------------------------------------------------------------------


def test_order_cancel_is_a_job_then_cancelled_at_with_stock_back_and_the_payment_refunded(sim):
    order = create(sim)
    assert stock(sim, 11)[0] == 3 and stock(sim, 12)[0] == 4
    client = client_for(sim)
    result = client.order_cancel(order.order_id, reason="CUSTOMER", staff_note="Cancelled on TikTok Shop: buyer")
    assert result.ok and result.job_id.startswith("gid://shopify/Job/") and result.job_done is False
    read = client.order_fulfillments([order.order_id])[order.order_id]
    assert read.cancelled_at is not None
    assert [line[3] for line in read.line_items] == [0, 0]  # currentQuantity
    assert client.job_done(result.job_id) is True
    assert stock(sim, 11)[0] == 5 and stock(sim, 12)[0] == 5
    view = listed(sim, order.order_id)
    assert (view["cancel_reason"], view["financial_status"], view["outstanding"], view["refunded"]) == (
        "CUSTOMER", "REFUNDED", "0.0", "26.2")
    (refund,) = view["refunds"]
    assert refund["amount"] == "26.20" and refund["note"] == "Cancelled on TikTok Shop: buyer"
    assert [(line["restock_type"], line["quantity"]) for line in refund["lines"]] == [("CANCEL", 2), ("CANCEL", 1)]
    transactions = client.order_transactions(order.order_id)
    refunds = [t for t in transactions if t["kind"] == "REFUND"]
    # Each SALE is given back to its own gateway.
    assert [(t["gateway"], t["amount"], t["parent_id"]) for t in refunds] == [
        ("TikTok Shop", Decimal("24.2"), transactions[0]["id"]),
        ("TikTok Shop platform discount", Decimal("2.0"), transactions[1]["id"])]


def test_a_cancel_without_restock_or_refund(sim):
    order = create(sim)
    client_for(sim).order_cancel(order.order_id, reason="OTHER", staff_note="x", restock=False, refund=False)
    view = listed(sim, order.order_id)
    assert view["cancelled_at"] and view["refunds"] == [] and view["outstanding"] == "-26.2"
    assert stock(sim, 11)[0] == 3


def test_a_bypass_order_claimed_nothing_so_its_cancel_restocks_nothing(sim):
    order = create(sim, behaviour="BYPASS")
    client_for(sim).order_cancel(order.order_id, reason="OTHER", staff_note="x")
    assert listed(sim, order.order_id)["cancelled_at"]
    assert stock(sim, 11)[0] == 5


def test_a_delayed_job_leaves_the_order_open_until_it_runs(sim, now):
    sim.set_faults(job_delay_seconds=30)
    order = create(sim)
    client = client_for(sim)
    job = client.order_cancel(order.order_id, reason="OTHER", staff_note="x").job_id
    assert client.order_fulfillments([order.order_id])[order.order_id].cancelled_at is None
    assert client.job_done(job) is False
    now[0] += 31
    assert client.order_fulfillments([order.order_id])[order.order_id].cancelled_at is not None
    assert client.job_done(job) is True


def test_cancelling_twice_cancels_and_restocks_once(sim, now):
    sim.set_faults(job_delay_seconds=30)
    order = create(sim)
    client = client_for(sim)
    first = client.order_cancel(order.order_id, reason="OTHER", staff_note="x")
    second = client.order_cancel(order.order_id, reason="OTHER", staff_note="x")  # the first has not run yet
    assert first.job_id != second.job_id
    now[0] += 31
    third = client.order_cancel(order.order_id, reason="OTHER", staff_note="x")
    assert third.already_cancelled and third.user_errors[0]["message"] == ALREADY_CANCELLED
    assert stock(sim, 11)[0] == 5 and stock(sim, 12)[0] == 5
    assert len(listed(sim, order.order_id)["refunds"]) == 1


@pytest.mark.parametrize("lines", [None, [{"line": 0, "quantity": 1}]], ids=["fulfilled", "partly fulfilled"])
def test_a_fulfilled_order_is_not_cancelled(sim, lines):
    order = create(sim)
    sim.fulfil(1001, lines, tracking_number="1Z", company="UPS")
    result = client_for(sim).order_cancel(order.order_id, reason="OTHER", staff_note="x")
    assert not result.ok and result.user_errors == [
        {"field": ["orderId"], "message": FULFILLED_REFUSAL, "code": "INVALID"}]
    assert listed(sim, order.order_id)["cancelled_at"] is None


def test_a_job_that_finds_the_order_fulfilled_ends_without_cancelling(sim, now):
    sim.set_faults(job_delay_seconds=30)
    order = create(sim)
    client = client_for(sim)
    job = client.order_cancel(order.order_id, reason="OTHER", staff_note="x").job_id
    sim.fulfil(1001, tracking_number="1Z", company="UPS")  # the warehouse shipped meanwhile
    now[0] += 31
    assert client.job_done(job) is True  # done says nothing about success
    assert client.order_fulfillments([order.order_id])[order.order_id].cancelled_at is None
    assert stock(sim, 11)[0] == 3


def test_cancel_refusals_shopify_gives_at_once(sim):
    client = client_for(sim)
    missing = client.order_cancel("gid://shopify/Order/404", reason="OTHER", staff_note="x")
    assert missing.user_errors[0]["code"] == "NOT_FOUND" and not missing.already_cancelled
    order = create(sim)
    long_note = client.graphql(
        "mutation($id: ID!, $note: String) { orderCancel(orderId: $id, reason: OTHER, restock: true, "
        "staffNote: $note) { job { id } orderCancelUserErrors { field message code } } }",
        {"id": order.order_id, "note": "x" * 256})
    assert long_note["orderCancel"] == {"job": None, "orderCancelUserErrors": [{
        "field": ["staffNote"], "message": "Staff note is too long. Maximum length is 255 characters.",
        "code": "INVALID"}]}


def test_a_lost_answer_to_order_cancel_is_unknown_and_the_order_is_cancelled_once(sim):
    order = create(sim)
    sim.set_faults(fail_next=[{"op": "orderCancel", "kind": "lost_response"}])
    client = client_for(sim)
    with pytest.raises(OutcomeUnknownError):
        client.order_cancel(order.order_id, reason="OTHER", staff_note="x")
    assert client.order_fulfillments([order.order_id])[order.order_id].cancelled_at is not None
    again = client.order_cancel(order.order_id, reason="OTHER", staff_note="x")
    assert again.already_cancelled
    assert stock(sim, 11)[0] == 5 and len(listed(sim, order.order_id)["refunds"]) == 1


def test_job_answers_done_for_an_id_it_never_queued(sim):
    # As Shopify does (a capture of arbitrary, never-enqueued Job GIDs): done proves nothing.
    assert client_for(sim).job_done("gid://shopify/Job/00000000-0000-0000-0000-000000000000") is True


# -- refundCreate ---------------------------------------------------------------------------------


def sale_id(sim: ShopifySimulator, order_id: str) -> str:
    return client_for(sim).order_transactions(order_id)[0]["id"]


def refund(sim: ShopifySimulator, order, key: str = "tiktok-return-1", *, lines=None, amount: str = "9.00",
           shipping: Decimal | None = None):
    line_a = order.line_items[0][0]
    return client_for(sim).refund_create(
        order.order_id, idempotency_key=key, line_items=lines if lines is not None else [(line_a, 1, "RETURN")],
        shipping_amount=shipping,
        transactions=[{"amount": Decimal(amount), "gateway": "TikTok Shop", "parent_id": sale_id(sim, order.order_id)}]
        if amount else [], note=f"TikTok {key}")


def test_a_lost_answer_to_refund_create_retried_with_the_same_key_refunds_once(sim):
    order = create(sim)
    sim.set_faults(fail_next=[{"op": "refundCreate", "kind": "lost_response"}])
    with pytest.raises(OutcomeUnknownError):
        refund(sim, order)
    again = refund(sim, order)
    assert again.ok
    view = listed(sim, order.order_id)
    assert [r["id"] for r in view["refunds"]] == [again.refund_id]
    assert view["refunded"] == "9.0"
    assert stock(sim, 11)[0] == 4  # restocked once
    assert refund(sim, order).refund_id == again.refund_id  # and again: still the one refund


def test_a_key_reused_with_other_parameters_is_refused(sim):
    order = create(sim)
    first = refund(sim, order)
    other = refund(sim, order, amount="1.00")
    assert not other.ok and other.user_errors == [{"field": None, "message": KEY_MISMATCH}]
    assert [r["id"] for r in listed(sim, order.order_id)["refunds"]] == [first.refund_id]


def test_a_key_older_than_shopify_keeps_is_a_new_refund(sim, now):
    # Why a retry long after an unknown outcome must read order_refunds first.
    order = create(sim)
    first = refund(sim, order)
    now[0] += 86_401
    second = refund(sim, order)
    assert second.ok and second.refund_id != first.refund_id


RAW_REFUND = """
mutation($input: RefundInput!) {
  refundCreate(input: $input) { refund { id } userErrors { field message } }
}
"""


@pytest.mark.parametrize("directive", ["", '@idempotent(key: "")', '@idempotent(key: "  ")'])
def test_refund_create_without_an_idempotency_key_is_refused_as_shopify_does_since_2026_04(sim, directive):
    order = create(sim)
    document = RAW_REFUND.replace("(input: $input)", f"(input: $input) {directive}")
    answer = httpx.post(client_for(sim).endpoint, timeout=10,
                        headers={"X-Shopify-Access-Token": sim.credentials["access_token"]},
                        json={"query": document, "variables": {"input": {"orderId": order.order_id}}}).json()
    assert answer["data"] == {"refundCreate": None}
    assert [(e["message"], e["extensions"]["code"], e["path"]) for e in answer["errors"]] == [
        (IDEMPOTENT_REQUIRED, "BAD_REQUEST", ["refundCreate"])]
    assert listed(sim, order.order_id)["refunds"] == []


def test_restock_follows_the_restock_type_and_location(sim):
    order = create(sim)
    (line_a, _, _), (line_b, _, _) = order.line_items
    assert stock(sim, 11) == (3, 3, 0) and stock(sim, 12) == (4, 4, 0)
    made = client_for(sim).refund_create(
        order.order_id, idempotency_key="k-restock",
        line_items=[(line_a, 1, "RETURN", FBT_LOCATION), (line_a, 1, "NO_RESTOCK"), (line_b, 1, "CANCEL")],
        shipping_amount=None, transactions=[], note="restock counts")
    assert made.ok, made.user_errors
    assert stock(sim, 11) == (4, 3, 1)  # RETURN to the FBT warehouse; NO_RESTOCK nothing
    assert stock(sim, 12) == (5, 5, 0)  # CANCEL to where the order claimed it
    (view,) = listed(sim, order.order_id)["refunds"]
    assert [(line["restock_type"], line["restocked"], line["location"]) for line in view["lines"]] == [
        ("RETURN", True, FBT_LOCATION), ("NO_RESTOCK", False, None), ("CANCEL", True, SHOP_LOCATION)]
    lines = client_for(sim).order_refunds(order.order_id)[0]["line_items"]
    assert lines == [(line_a, 1, "RETURN", FBT_LOCATION), (line_a, 1, "NO_RESTOCK", None),
                     (line_b, 1, "CANCEL", SHOP_LOCATION)]


def test_a_refund_moves_current_quantities_totals_and_the_refunded_amount(sim):
    order = create(sim)
    made = refund(sim, order, shipping=Decimal("3.00"), amount="12.00")
    assert made.ok and made.total_refunded == Decimal("12.0")
    document = """query($id: ID!) { order(id: $id) {
      displayFinancialStatus currentSubtotalLineItemsQuantity subtotalLineItemsQuantity
      totalPriceSet { shopMoney { amount } } currentTotalPriceSet { shopMoney { amount } }
      totalRefundedSet { shopMoney { amount } } netPaymentSet { shopMoney { amount } }
      totalReceivedSet { shopMoney { amount } }
      lineItems(first: 5) { nodes { quantity currentQuantity unfulfilledQuantity } }
      refunds(first: 5) { id note totalRefundedSet { shopMoney { amount } }
        transactions(first: 5) { nodes { kind gateway parentTransaction { id } } } }
    } }"""
    read = client_for(sim).graphql(document, {"id": order.order_id})["order"]
    assert read["displayFinancialStatus"] == "PARTIALLY_REFUNDED"
    assert (read["subtotalLineItemsQuantity"], read["currentSubtotalLineItemsQuantity"]) == (3, 2)
    assert [(n["quantity"], n["currentQuantity"], n["unfulfilledQuantity"]) for n in read["lineItems"]["nodes"]] == [
        (2, 1, 1), (1, 1, 1)]
    # 26.20 − the unit (10 − 1.60 discount share + 0.68 tax) − 3.00 shipping.
    assert read["totalPriceSet"]["shopMoney"]["amount"] == "26.2"
    assert read["currentTotalPriceSet"]["shopMoney"]["amount"] == "14.12"
    assert read["totalRefundedSet"]["shopMoney"]["amount"] == "12.0"
    assert read["netPaymentSet"]["shopMoney"]["amount"] == "14.2"
    assert read["totalReceivedSet"]["shopMoney"]["amount"] == "26.2"
    (shown,) = read["refunds"]
    assert shown["id"] == made.refund_id and shown["note"] == "TikTok tiktok-return-1"
    assert shown["transactions"]["nodes"][0]["kind"] == "REFUND"
    assert shown["transactions"]["nodes"][0]["parentTransaction"]["id"] == sale_id(sim, order.order_id)


def refused(sim, order, **change) -> list[dict]:
    result = client_for(sim).refund_create(order.order_id, **{
        "idempotency_key": "k", "line_items": [], "shipping_amount": None, "transactions": [], "note": "", **change})
    assert not result.ok
    return result.user_errors


def test_refunds_shopify_refuses_change_nothing(sim):
    order = create(sim)
    line_a = order.line_items[0][0]
    sale = sale_id(sim, order.order_id)
    platform = client_for(sim).order_transactions(order.order_id)[1]["id"]
    assert "2 unit(s)" in refused(sim, order, line_items=[(line_a, 3, "RETURN")])[0]["message"]
    assert "left to refund" in refused(sim, order, transactions=[
        {"amount": "2.01", "gateway": "x", "parent_id": platform}])[0]["message"]
    assert "left to refund" in refused(sim, order, transactions=[
        {"amount": "20.00", "gateway": "x", "parent_id": sale},
        {"amount": "5.00", "gateway": "x", "parent_id": sale}])[0]["message"]
    assert refused(sim, order, transactions=[
        {"amount": "1.00", "gateway": "x", "parent_id": "gid://shopify/OrderTransaction/1"}]) == [
        {"field": ["transactions"], "message": MISSING_PARENT}]
    # Shipping paid: 3.00 + its 0.24 tax + the 0.28 retail delivery fee.
    assert "3.52 USD of shipping" in refused(sim, order, shipping_amount=Decimal("3.53"))[0]["message"]
    view = listed(sim, order.order_id)
    assert view["refunds"] == [] and stock(sim, 11)[0] == 3
    # A refused key was never used: the same key may carry a good refund.
    assert client_for(sim).refund_create(order.order_id, idempotency_key="k", line_items=[], shipping_amount=None,
                                         transactions=[], note="").ok


def test_what_the_client_never_sends_is_refused_too(sim):
    order = create(sim)
    sale = sale_id(sim, order.order_id)
    document = RAW_REFUND.replace("(input: $input)", '(input: $input) @idempotent(key: "raw")')
    client = client_for(sim)
    legacy = client.graphql(document, {"input": {"orderId": order.order_id, "refundLineItems": [
        {"lineItemId": order.line_items[0][0], "quantity": 1, "restockType": "LEGACY_RESTOCK"}]}})
    assert "LEGACY_RESTOCK" in legacy["refundCreate"]["userErrors"][0]["message"]
    kind = client.graphql(document, {"input": {"orderId": order.order_id, "transactions": [
        {"orderId": order.order_id, "parentId": sale, "gateway": "x", "kind": "AUTHORIZATION", "amount": "1"}]}})
    assert kind["refundCreate"]["userErrors"] == [
        {"field": None, "message": "Kind authorization is not a valid transaction"}]
    over = client.graphql(document, {"input": {"orderId": order.order_id, "allowOverRefunding": True, "transactions": [
        {"orderId": order.order_id, "parentId": sale, "gateway": "x", "kind": "REFUND", "amount": "30"}]}})
    assert over["refundCreate"]["userErrors"] == [] and listed(sim, order.order_id)["refunded"] == "30.0"


def test_a_cancelled_order_has_no_units_left_to_refund(sim):
    order = create(sim)
    client_for(sim).order_cancel(order.order_id, reason="OTHER", staff_note="x", refund=False)
    assert listed(sim, order.order_id)["cancelled_at"]
    assert "0 unit(s)" in refused(sim, order, line_items=[(order.line_items[0][0], 1, "CANCEL")])[0]["message"]


# -- faults, restarts, control ---------------------------------------------------------------------


@pytest.mark.parametrize("op", ["nodes", "job"])
@pytest.mark.parametrize("kind", ["error", "drop", "lost_response"])
def test_reads_of_the_new_operations_survive_faults(sim, op, kind):
    order = create(sim)
    client = client_for(sim)
    job = client.order_cancel(order.order_id, reason="OTHER", staff_note="x").job_id
    sim.set_faults(fail_next=[{"op": op, "kind": kind}])
    assert client.order_fulfillments([order.order_id])[order.order_id].cancelled_at
    assert client.job_done(job) is True


@pytest.mark.parametrize("kind", ["error", "drop", "truncated"])
def test_writes_of_the_new_operations_are_unknown_after_a_fault(sim, kind):
    order = create(sim)
    sim.set_faults(fail_next=[{"op": "refundCreate", "kind": kind}, {"op": "orderCancel", "kind": kind}])
    with pytest.raises(OutcomeUnknownError):
        refund(sim, order)
    with pytest.raises(OutcomeUnknownError):
        client_for(sim).order_cancel(order.order_id, reason="OTHER", staff_note="x")
    # Whatever happened, the same key and a second cancel settle it: one refund, one cancellation.
    client = client_for(sim)
    assert refund(sim, order).ok
    assert [r["note"] for r in listed(sim, order.order_id)["refunds"]].count("TikTok tiktok-return-1") == 1
    again = client.order_cancel(order.order_id, reason="OTHER", staff_note="x")
    assert again.already_cancelled == (kind == "truncated")  # a truncated answer follows a cancel that ran
    view = listed(sim, order.order_id)
    assert view["cancelled_at"] and [r["note"] for r in view["refunds"]].count("x") == 1


def test_a_hanging_answer_to_refund_create_is_unknown_within_the_deadline(sim):
    order = create(sim)
    sim.set_faults(fail_next=[{"op": "refundCreate", "kind": "hang", "hang_seconds": 30}])
    args = {"idempotency_key": "hang", "line_items": [(order.line_items[1][0], 1, "CANCEL")],
            "shipping_amount": None, "transactions": [], "note": "hung"}
    with pytest.raises(OutcomeUnknownError):
        client_for(sim, deadline=1.0, timeout=0.5).refund_create(order.order_id, **args)
    assert client_for(sim).refund_create(order.order_id, **args).ok
    assert len(listed(sim, order.order_id)["refunds"]) == 1 and stock(sim, 12)[0] == 5


def test_a_restarted_simulator_keeps_fulfillments_refunds_keys_and_queued_jobs(tmp_path, now):
    path = tmp_path / "shopify.db"
    with ShopifySimulator(path, products=catalog(2), clock=lambda: now[0], **BIG_BUDGET) as first:
        order = create(first)
        second_order = create(first, "T-2")
        first.fulfil(1001, [(0, 1)], tracking_number="1Z", company="UPS")
        made = refund(first, order)
        first.set_faults(job_delay_seconds=30)
        client_for(first).order_cancel(second_order.order_id, reason="OTHER", staff_note="x")
    with ShopifySimulator(path, clock=lambda: now[0], job_delay_seconds=30, **BIG_BUDGET) as again:
        view = listed(again, order.order_id)
        assert view["display_fulfillment_status"] == "PARTIALLY_FULFILLED"
        assert [r["id"] for r in view["refunds"]] == [made.refund_id]
        assert refund(again, order).refund_id == made.refund_id
        assert listed(again, second_order.order_id)["cancelled_at"] is None
        assert control(again, "/jobs/run", {"force": True}).json() == {"ran": 1}
        assert listed(again, second_order.order_id)["cancelled_at"] is not None


def test_control_endpoints_refuse_a_bad_body(sim):
    create(sim)
    assert control(sim, "/fulfillments/1/tracking", {}).status_code == 400
    assert control(sim, "/jobs/run", {"now": True}).status_code == 400
    answer = httpx.post(f"{sim.url}/_sandbox/orders/1001/fulfil", content=b"[1]", timeout=10)
    assert answer.status_code == 400


def test_a_refund_throttled_with_429_is_sent_again_because_nothing_ran(sim):
    order = create(sim)
    sim.set_faults(fail_next=[{"op": "refundCreate", "kind": "rate_limit"}])
    assert refund(sim, order).ok
    assert len(sim.ops("refundCreate")) == 2 and len(listed(sim, order.order_id)["refunds"]) == 1


def test_orders_and_fulfillments_with_more_lines_than_a_page_are_read_whole(sim):
    lines = [{"variantId": f"gid://shopify/ProductVariant/{10 + n % 3}", "quantity": 1, "requiresShipping": True}
             for n in range(30)]
    order = client_for(sim).order_create({"lineItems": lines, "sourceIdentifier": "BIG"}, inventory_behaviour="BYPASS")
    sim.fulfil(1001, [(n, 1) for n in range(12)], tracking_number="1Z", company="UPS")
    before = len(sim.ops())
    read = client_for(sim).order_fulfillments([order.order_id])[order.order_id]
    assert [line[0] for line in read.line_items] == [line[0] for line in order.line_items]  # 25 + a page more
    assert [line[0] for line in read.fulfillments[0].lines] == [line[0] for line in order.line_items[:12]]
    assert len(sim.ops()) - before == 4  # orders, more order lines, fulfillment lines, their second page
