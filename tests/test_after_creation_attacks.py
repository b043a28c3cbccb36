"""Hostile and strange data against an order's life after creation (DESIGN §6b), and the money.

The real CLI against both simulators on 127.0.0.1. TikTok's records and answers
are bent with the simulator's own controls (operator actions, and the fault
plan's ``answer`` to serve a record TikTok might send but the simulator would
not make); after each, what Shopify holds is compared with what TikTok refunded,
to the cent.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from decimal import Decimal

from ecomsend_cli.store import Store
from tests.test_after_creation import line, oid, pushes, set_config, stock, sync


def shopify_order(sandbox, order: int) -> dict:
    return next(o for o in sandbox.shopify.orders() if o["source_identifier"] == oid(order))


def refunded(sandbox, order: int) -> Decimal:
    """What Shopify refunded on the order, in shop money (USD)."""
    return Decimal(shopify_order(sandbox, order)["refunded"])




def outcomes(report: dict, phase: str, order: int) -> list[dict]:
    return [o for o in report[phase]["outcomes"] if o["tiktok_order_id"] == oid(order)]


def made(sandbox, op: str) -> int:
    """Shopify writes of ``op`` that were answered (a refused one answers 200 too: count the records)."""
    return len([e for e in sandbox.shopify.ops(op) if e["status"] == 200])




def serve(sandbox, op: str, records: list[dict]) -> None:
    """TikTok's next answer to ``op`` (cancellations or returns search) lists ``records``, as given."""
    key = {"returns.search": "return_orders", "cancellations.search": "cancellations"}[op]
    body = {"code": 0, "message": "Success", "request_id": "attack",
            "data": {key: records, "next_page_token": "", "total_count": len(records)}}
    sandbox.tiktok.set_faults(fail_next=[{"op": op, "kind": "answer", "handled": False, "body": body}])


def complete(record: dict, return_id: str, **money: object) -> dict:
    """A copy of a pending return, completed (buyer refunded), under its own id, its money changed."""
    out = copy.deepcopy(record)
    out.update(return_id=return_id, return_status="RETURN_OR_REFUND_REQUEST_COMPLETE")
    out["refund_amount"].update(money)
    return out




# -- money -----------------------------------------------------------------------------------------


def test_unusable_refund_amounts_are_reported_once_and_stop_nothing(sandbox, sb_cli, synced):
    # Order 6 (USD, delivered): TikTok sends returns of its mug whose money cannot be used, beside
    # a good return of order 7. None may become a refund of a guessed amount, none may stop the run.
    pending = sandbox.tiktok.complete_return(oid(6), [line(6, 2)], status="RETURN_OR_REFUND_REQUEST_PENDING")
    good = sandbox.tiktok.complete_return(oid(7))
    bad = {"abc": "abc", "nan": "NaN", "neg": "-5.00", "inf": "Infinity", "dp": "16.234"}
    records = [complete(pending, f"9{n}", refund_total=v) for n, v in enumerate(bad.values())]
    records.append(complete(pending, "95", currency="GBP"))  # the order is in USD
    serve(sandbox, "returns.search", [*records, good])
    before = stock(sandbox)
    r = sb_cli("sync-orders", "--json")
    assert r.exit_code == 3 and "Traceback" not in r.stderr, r.stderr
    report = json.loads(r.stdout)
    mine = outcomes(report, "aftersales", 6)
    assert [o["what"] for o in mine] == ["reported"] * 6, mine
    for o, wrong in zip(mine, ["'abc'", "'NaN'", "'-5.00'", "'Infinity'", "more decimals", "in GBP"], strict=True):
        assert wrong in o["detail"] and "refund it in Shopify by hand" in o["detail"], o
    # Nothing of order 6 was refunded or restocked; order 7's good return went in, to the cent.
    order6 = shopify_order(sandbox, 6)
    assert (order6["refunded"], order6["outstanding"], order6["refunds"]) == ("0.0", "0.0", [])
    assert stock(sandbox)["MUG-11OZ"] == before["MUG-11OZ"]
    assert refunded(sandbox, 7) == Decimal(good["refund_amount"]["refund_total"])
    assert [o["what"] for o in outcomes(report, "aftersales", 7)] == ["refunded"]
    # Reported once: the next run neither reports them again nor writes anything.
    again = sync(sb_cli, "--only", "aftersales", codes=(0,))
    assert again["aftersales"]["outcomes"] == [] and made(sandbox, "refundCreate") == 1
    shown = json.loads(sb_cli("orders", "--json").stdout)
    states = [a["state"] for o in shown if o["tiktok_order_id"] == oid(6) for a in o["aftersales"]]
    assert states == ["reported"] * 6


def test_a_whole_cancellation_after_a_line_cancellation_refunds_each_unit_once(sandbox, sb_cli, synced):
    # TikTok cancels one line, then the rest of the order: as two records. Order 2: its search lists
    # the second record a run after the order shows CANCELLED (TikTok's update times lag). Order 22:
    # both records come a run late, after Shopify's cancellation refunded all. Order 17: the same,
    # but Shopify refused that cancellation, so the late line record meets it still to do. Order
    # 27: both records at once.
    before = stock(sandbox)
    records = {2: [sandbox.tiktok.cancel_line(oid(2), line(2, 3))]}
    sync(sb_cli)
    records[2].append(sandbox.tiktok.cancel_order(oid(2)))
    for order in (17, 22):
        records[order] = [sandbox.tiktok.cancel_line(oid(order), line(order, 1)),
                          sandbox.tiktok.cancel_order(oid(order))]
    serve(sandbox, "cancellations.search", [])
    refusal = {"data": {"orderCancel": {"job": None, "orderCancelUserErrors": [
        {"field": ["orderId"], "message": "Try again later", "code": "INVALID"}]}}}
    sandbox.shopify.set_faults(fail_next=[{"op": "orderCancel", "kind": "answer", "handled": False, "after": 1,
                                           "body": refusal}])  # orders 2, 17, 22 are cancelled in that order
    report = sync(sb_cli)
    assert [o["what"] for o in outcomes(report, "aftersales", 17)] == ["failed"]
    assert [o["what"] for o in outcomes(report, "aftersales", 22)] == ["cancelled"]
    with Store.open(sandbox.store_path) as store:  # noted a run earlier: let the store's clock say so too
        store.conn.execute("UPDATE aftersales SET created_at = '2026-01-01T00:00:00Z' WHERE key = ?",
                           (f"tiktok-order-cancel-{oid(17)}",))
        store.conn.commit()
    records[27] = [sandbox.tiktok.cancel_line(oid(27), line(27, 3)), sandbox.tiktok.cancel_order(oid(27))]
    for report in (sync(sb_cli), sync(sb_cli)):
        assert not [o for o in report["aftersales"]["outcomes"] if o["what"] in ("failed", "reported")], report
    for order, pair in records.items():
        shopify = shopify_order(sandbox, order)
        assert shopify["cancelled_at"] and shopify["outstanding"] == "0.0", order
        tiktok = sum(Decimal(r["refund_amount"]["refund_total"]) for r in pair)
        assert refunded(sandbox, order) == tiktok == Decimal(shopify["total"]), order
    # Each whole-order record became the orderCancel, never also a refund of its lines; order 22's
    # line was in its cancellation's refund.
    for order, (_, whole) in records.items():
        notes = [r["note"] for r in shopify_order(sandbox, order)["refunds"]]
        assert notes[-1].startswith("Cancelled on TikTok Shop") and not [n for n in notes if whole["cancel_id"] in n]
    assert len(shopify_order(sandbox, 22)["refunds"]) == 1
    # Every unit of the four orders came back to stock once.
    units = Counter()
    for order in records:
        units.update({x["sku"]: x["quantity"] for x in synced[oid(order)]["lines"]})
    after = stock(sandbox)
    assert {sku: after[sku] - before[sku] for sku in units} == dict(units)


def test_a_line_cancelled_before_its_order_was_created_is_not_a_failure(sandbox, sb_cli):
    # TikTok cancels order 2's tote before ecomsend creates the order; the record is first listed
    # in the run that creates it (without the tote).
    sync(sb_cli)
    assert sb_cli("autolink", "--yes").exit_code == 0
    sandbox.tiktok.cancel_line(oid(2), line(2, 3))
    report = sync(sb_cli)
    assert not outcomes(report, "aftersales", 2), report["aftersales"]
    assert [x["sku"] for x in shopify_order(sandbox, 2)["lines"]] == ["TEE-BLK-S"]
    assert refunded(sandbox, 2) == 0 and made(sandbox, "refundCreate") == 0
    assert not outcomes(sync(sb_cli), "aftersales", 2)
    shown = json.loads(sb_cli("orders", "--json").stdout)
    (sale,) = next(o for o in shown if o["tiktok_order_id"] == oid(2))["aftersales"]
    assert sale["state"] == "done" and "never in Shopify" in sale["reason"]


def test_a_line_cancellation_of_units_shopify_shipped_is_reported_not_restocked(sandbox, sb_cli, synced):
    # Shopify fulfilled order 2 (no tracking yet, so TikTok does not know); then TikTok cancels its
    # tote. A CANCEL refund would put back a tote that left the warehouse. Order 27 is fulfilled but
    # for one of its two mugs: cancelling a mug there is an unshipped one, refunded and restocked.
    sandbox.shopify.fulfil(synced[oid(2)]["number"])
    place = next(i for i, x in enumerate(synced[oid(27)]["lines"]) if x["sku"] == "MUG-11OZ")
    sandbox.shopify.fulfil(synced[oid(27)]["number"], [(place, 1)])
    before = stock(sandbox)
    sandbox.tiktok.cancel_line(oid(2), line(2, 3))
    mug = sandbox.tiktok.cancel_line(oid(27), line(27, 2))
    report = sync(sb_cli, codes=(3,))
    (reported,) = outcomes(report, "aftersales", 2)
    assert reported["what"] == "reported" and "shipped in Shopify, cancelled on TikTok" in reported["detail"]
    assert [o["what"] for o in outcomes(report, "aftersales", 27)] == ["refunded"]
    after = stock(sandbox)
    assert (after["TOTE-NAT"] - before["TOTE-NAT"], after["MUG-11OZ"] - before["MUG-11OZ"]) == (0, 1)
    assert refunded(sandbox, 2) == 0 and refunded(sandbox, 27) == Decimal(mug["refund_amount"]["refund_total"])
    assert not outcomes(sync(sb_cli), "aftersales", 2)  # reported once
    # verify-orders still shows the tote TikTok cancelled and Shopify holds, and the money TikTok paid
    # back for it that Shopify has not; order 27 agrees.
    differences = json.loads(sb_cli("verify-orders", "--json").stdout)["differences"]
    tote = next(x["variant_id"] for x in synced[oid(2)]["lines"] if x["sku"] == "TOTE-NAT")
    assert [(d["tiktok_order_id"], d["field"], d["tiktok"], d["shopify"]) for d in differences] == [
        (oid(2), "refunded", "24.99 USD", "0.00 USD"), (oid(2), f"quantity of {tote}", "0", "1")]


# -- tracking --------------------------------------------------------------------------------------


def test_unusable_ids_in_tiktoks_order_fail_that_push_and_stop_nothing(sandbox, sb_cli, synced):
    # Order 1 names a delivery option, order 2's lines a package, that would change the URL called.
    sandbox.tiktok.update_order(oid(1), delivery_option_id="../../x?y")
    lines = sandbox.tiktok.order(oid(2))["line_items"]
    for item in lines:
        item.update(package_id="a/b", package_status="TO_FULFILL")
    sandbox.tiktok.update_order(oid(2), line_items=lines)
    for order in (1, 2):
        sandbox.shopify.fulfil(synced[oid(order)]["number"], tracking_number=f"T{order}", company="USPS")
    sandbox.tiktok.cancel_order(oid(20))  # the aftersales phase still runs after them
    r = sb_cli("sync-orders", "--json")
    assert r.exit_code == 3 and "Traceback" not in r.stderr, r.stderr
    report = json.loads(r.stdout)
    (one,) = outcomes(report, "tracking", 1)
    assert one["what"] == "failed" and "delivery option that is not a TikTok id ('../../x?y')" in one["detail"]
    (two,) = outcomes(report, "tracking", 2)
    assert two["what"] == "failed" and "not sent" in two["detail"] and "'a/b' is not a TikTok id" in two["detail"]
    assert [o["what"] for o in outcomes(report, "aftersales", 20)] == ["cancelled"]
    again = sb_cli("sync-orders", "--json")
    assert again.exit_code == 3 and "Traceback" not in again.stderr and not pushes(sandbox)
    # A package id TikTok answers with that is not one: kept, and its tracking edit fails, said so.
    sandbox.shopify.fulfil(synced[oid(17)]["number"], tracking_number="OLD17", company="USPS")
    sandbox.tiktok.set_faults(fail_next=[{"op": "packages.create", "kind": "answer", "handled": True, "body": {
        "code": 0, "message": "Success", "request_id": "attack", "data": {"package_id": "../p"}}}])
    assert [o["what"] for o in outcomes(sync(sb_cli), "tracking", 17)] == ["pushed"]
    fulfillment = shopify_order(sandbox, 17)["fulfillments"][0]
    sandbox.shopify.update_tracking(fulfillment["id"], tracking_number="NEW17")
    r = sb_cli("sync-orders", "--json", "--only", "tracking")
    assert r.exit_code == 3 and "Traceback" not in r.stderr, r.stderr
    (edit,) = outcomes(json.loads(r.stdout), "tracking", 17)
    assert edit["what"] == "failed" and "'../p' is not a TikTok id" in edit["detail"]


def test_a_carrier_tiktok_lists_twice_is_not_guessed(sandbox, sb_cli, synced):
    option = sandbox.tiktok.order(oid(1))["delivery_option_id"]
    sandbox.tiktok.add_delivery_options([{"id": option, "name": "Standard", "shipping_providers": [
        {"id": "7001", "name": "USPS"}, {"id": "7002", "name": "U.S.P.S."}, {"id": "7003", "name": "UPS"}]}])
    sandbox.shopify.fulfil(synced[oid(1)]["number"], tracking_number="9400111", company="usps")
    (failed,) = outcomes(sync(sb_cli, codes=(3,)), "tracking", 1)
    assert failed["what"] == "failed" and not pushes(sandbox)
    assert "USPS (id 7001), U.S.P.S. (id 7002)" in failed["detail"] and "tracking.carriers" in failed["detail"]
    set_config(sandbox, tracking={"carriers": {"usps": "7002"}})
    assert [o["what"] for o in outcomes(sync(sb_cli), "tracking", 1)] == ["pushed"]
    shipped = sandbox.tiktok.order(oid(1))["line_items"][0]
    assert (shipped["tracking_number"], shipped["shipping_provider_id"]) == ("9400111", "7002")


def test_a_tracking_number_no_carrier_issues_is_not_pushed(sandbox, sb_cli, synced):
    sandbox.shopify.fulfil(synced[oid(1)]["number"], tracking_number="94\x1b]0;pwned\x07001\n2", company="USPS")
    fulfillment = sandbox.shopify.fulfil(synced[oid(20)]["number"], tracking_number="9" * 10_000, company="USPS")
    r = sb_cli("sync-orders")
    assert r.exit_code == 3 and not pushes(sandbox)
    assert "holds control or invisible characters: correct it in Shopify" in r.stderr
    assert "is 10000 characters long: correct it in Shopify" in r.stderr
    assert "\x1b" not in r.stderr and len(r.stderr) < 5000
    shown = sb_cli("orders").stdout
    assert "\x1b" not in shown and len(shown) < 20_000
    sandbox.shopify.update_tracking(fulfillment["id"], tracking_number="9400111")  # corrected in Shopify
    assert [o["what"] for o in outcomes(sync(sb_cli), "tracking", 20)] == ["pushed"]
    assert sandbox.tiktok.order(oid(20))["line_items"][0]["tracking_number"] == "9400111"


# -- verify-orders after refunds -------------------------------------------------------------------


def test_verify_orders_raises_no_false_alarm_on_orders_with_refunds(sandbox, sb_cli, synced):
    # A line cancelled (taxes added: Illinois; and Colorado, with a retail delivery fee), a line
    # then the rest cancelled (UK, VAT included, GBP), returns (US; EUR with its shipping).
    records = [sandbox.tiktok.cancel_line(oid(2), line(2, 3)), sandbox.tiktok.cancel_line(oid(27), line(27, 1)),
               sandbox.tiktok.cancel_line(oid(28), line(28, 2)), sandbox.tiktok.complete_return(oid(6), [line(6, 2)]),
               sandbox.tiktok.complete_return(oid(31), [line(31, 1)], refund_shipping=True)]
    sync(sb_cli)
    records.append(sandbox.tiktok.cancel_order(oid(28)))
    report = sync(sb_cli)
    assert report["aftersales"]["failed"] == report["aftersales"]["reported"] == 0, report["aftersales"]
    # Shopify refunded what TikTok did, to the cent (in the order's currency: shop money at the rate).
    rates = {"USD": Decimal(1), "GBP": Decimal("1.27"), "EUR": Decimal("1.08")}
    paid_back: dict[str, Decimal] = {}
    for record in records:
        money = record["refund_amount"]
        paid_back[record["order_id"]] = paid_back.get(record["order_id"], Decimal(0)) + \
            (Decimal(money["refund_total"]) * rates[money["currency"]]).quantize(Decimal("0.01"))
    for order_id, amount in paid_back.items():
        assert refunded(sandbox, int(order_id[-2:])) == amount, order_id
    r = sb_cli("verify-orders", "--json")
    assert r.exit_code == 0, r.stdout
    assert json.loads(r.stdout)["differing"] == 0


# -- records ---------------------------------------------------------------------------------------


def test_finished_records_without_usable_ids_are_reported_once_not_dropped_or_refunded(sandbox, sb_cli, synced):
    pending = sandbox.tiktok.complete_return(oid(6), [line(6, 2)], status="RETURN_OR_REFUND_REQUEST_PENDING")
    no_id = complete(pending, "")
    hostile = complete(pending, "4037\x1b]0;pwned\x07" + "9" * 10_000)
    no_order = complete(pending, "4037000000000000777")
    no_order["order_id"] = None
    for attempt in range(2):  # TikTok lists them again on the next run (the overlap)
        serve(sandbox, "returns.search", [no_id, hostile, no_order])
        r = sb_cli("sync-orders", "--json", "--only", "aftersales")
        report = json.loads(r.stdout)
        if attempt == 0:
            assert r.exit_code == 3
            details = [o["detail"] for o in report["aftersales"]["outcomes"] if o["what"] == "reported"]
            assert len(details) == 3 and all("without a usable id" in d and "by hand" in d for d in details)
            assert all("\x1b" not in d and len(d) < 400 for d in details), details
        else:
            assert r.exit_code == 0 and report["aftersales"]["outcomes"] == []
    assert made(sandbox, "refundCreate") == 0 and refunded(sandbox, 6) == 0


def test_tiktoks_cancel_reason_reaches_shopifys_staff_note_as_one_clean_line(sandbox, sb_cli, synced):
    sandbox.tiktok.cancel_order(oid(2), initiator="BUYER", reason_text="\x1b[2J\u202eNo longer needed\n" * 500)
    report = sync(sb_cli)
    assert [o["what"] for o in outcomes(report, "aftersales", 2)] == ["cancelled"]
    (note,) = [r["note"] for r in shopify_order(sandbox, 2)["refunds"]]
    assert note.startswith("Cancelled on TikTok Shop: ") and "No longer needed [2JNo longer needed" in note
    assert note.isprintable() and len(note) <= 255  # no ESC, no right-to-left override, one line


def test_a_refund_whose_answer_was_lost_is_looked_up_before_it_is_sent_again(sandbox, sb_cli, synced):
    # Order 3: three mugs, one Shopify line of 3. The answer to the refund of one returned mug is
    # lost; the next run comes after Shopify forgot the idempotency key (it keeps them about a day).
    record = sandbox.tiktok.complete_return(oid(3), [line(3, 1)])
    sandbox.shopify.set_faults(fail_next=[{"op": "refundCreate", "kind": "lost_response"}])
    assert [o["what"] for o in outcomes(sync(sb_cli, "--only", "aftersales"), "aftersales", 3)] == ["unconfirmed"]
    sandbox.shopify.set_faults(idempotency_retention_seconds=0)
    (found,) = outcomes(sync(sb_cli, "--only", "aftersales"), "aftersales", 3)
    assert refunded(sandbox, 3) == Decimal(record["refund_amount"]["refund_total"])  # once
    assert len(shopify_order(sandbox, 3)["refunds"]) == 1 and made(sandbox, "refundCreate") == 1
    assert found["what"] == "refunded" and "found in Shopify after an unclear answer" in found["detail"]


def test_a_return_of_line_items_the_order_never_had_is_reported_once(sandbox, sb_cli, synced):
    pending = sandbox.tiktok.complete_return(oid(6), [line(6, 2)], status="RETURN_OR_REFUND_REQUEST_PENDING")
    record = complete(pending, "4037000000000000888")
    record["return_line_items"][0]["order_line_item_id"] = line(6, 9)
    serve(sandbox, "returns.search", [record])
    (reported,) = outcomes(sync(sb_cli, "--only", "aftersales", codes=(3,)), "aftersales", 6)
    assert reported["what"] == "reported" and "could not be matched" in reported["detail"]
    assert sync(sb_cli, "--only", "aftersales", codes=(0,))["aftersales"]["outcomes"] == []
    assert made(sandbox, "refundCreate") == 0


def test_a_search_tiktok_refuses_stops_neither_the_other_nor_a_cancellation(sandbox, sb_cli, synced):
    # TikTok refuses the returns search (here: not offered in the shop's region); order 2 was
    # cancelled on TikTok meanwhile: it must still be cancelled in Shopify, and the run say why it
    # ended short.
    sandbox.tiktok.cancel_order(oid(2))
    refusal = {"code": 21008106, "message": "This interface cannot be used in this region or this business type.",
               "request_id": "attack", "data": {}}
    sandbox.tiktok.set_faults(fail_next=[{"op": "returns.search", "kind": "answer", "handled": False, "status": 400,
                                          "body": refusal}])
    r = sb_cli("sync-orders", "--json")
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    report = json.loads(r.stdout)
    assert "returns/search" in report["error"]["message"] and "21008106" in report["error"]["message"]
    assert [o["what"] for o in outcomes(report, "aftersales", 2)] == ["cancelled"]
    assert shopify_order(sandbox, 2)["cancelled_at"]


def test_a_delivery_option_tiktok_does_not_know_fails_that_order_only(sandbox, sb_cli, synced):
    sandbox.tiktok.update_order(oid(1), delivery_option_id="999")
    for order in (1, 20):
        sandbox.shopify.fulfil(synced[oid(order)]["number"], tracking_number=f"T{order}", company="USPS")
    report = sync(sb_cli, codes=(3,))
    (failed,) = outcomes(report, "tracking", 1)
    assert failed["what"] == "failed" and "would not list the carriers" in failed["detail"]
    assert "999 does not exist" in failed["detail"]
    assert [o["what"] for o in outcomes(report, "tracking", 20)] == ["pushed"]
    assert sandbox.tiktok.order(oid(20))["line_items"][0]["tracking_number"] == "T20"
