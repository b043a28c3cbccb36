"""Lines TikTok cancels after the order is in Shopify (DESIGN §6b.1, §6b.3): they are never pushed
as shipped, and when TikTok then cancels the rest of the order, that is the whole-order case —
one orderCancel, not a refund of the remaining lines as well.

The real CLI against both simulators, as in ``test_after_creation``.
"""

from __future__ import annotations

from ecomsend_cli.store import Store
from tests.test_after_creation import (
    line,
    oid,
    place,
    pushes,
    shopify_number,
    stock,
    sync,
    tiktok_lines,
)


def test_the_lines_left_after_a_cancelled_line_ship_without_it(sandbox, sb_cli, synced):
    # Order 22: five TOTE-NAT line items, one Shopify line of five. TikTok cancels the first unit.
    sandbox.tiktok.cancel_line(oid(22), line(22, 1), initiator="SELLER")
    assert sync(sb_cli)["aftersales"]["refunded"] == 1
    sandbox.shopify.fulfil(shopify_number(synced, 22), [(place(synced, 22, "TOTE-NAT"), 4)],
                           tracking_number="T22", company="USPS")
    report = sync(sb_cli)
    assert (report["tracking"]["pushed"], report["tracking"]["failed"]) == (1, 0), report["tracking"]
    lines = tiktok_lines(sandbox, 22)
    assert lines[line(22, 1)]["display_status"] == "CANCELLED" and not lines[line(22, 1)].get("package_id")
    assert [lines[line(22, i)]["tracking_number"] for i in (2, 3, 4, 5)] == ["T22"] * 4
    assert len(pushes(sandbox)) == 1
    with Store.open(sandbox.store_path) as store:
        assert store.life_states([oid(22)])[oid(22)][2] == "done"  # nothing left to ship
    again = sync(sb_cli)["tracking"]
    assert (again["pushed"], again["failed"]) == (0, 0)


def test_the_rest_of_an_order_cancelled_after_one_line_is_one_cancellation(sandbox, sb_cli, synced):
    before = stock(sandbox)
    sandbox.tiktok.cancel_line(oid(2), line(2, 3), initiator="SELLER")  # the tote
    assert sync(sb_cli)["aftersales"]["refunded"] == 1
    sandbox.tiktok.cancel_order(oid(2), initiator="BUYER")  # then the two tees: every line left
    done = sync(sb_cli)["aftersales"]
    assert (done["cancelled"], done["refunded"], done["failed"]) == (1, 0, 0), done
    with Store.open(sandbox.store_path) as store:
        sales = store.aftersales_of([oid(2)])[oid(2)]
    assert sorted((s.kind, s.state) for s in sales) == [("line_cancel", "done"), ("order_cancel", "done")]
    order = next(o for o in sandbox.shopify.orders() if o["source_identifier"] == oid(2))
    assert order["cancelled_at"] and len(order["refunds"]) == 2  # the tote's, then the cancellation's
    assert order["refunded"] == order["total"]
    after = stock(sandbox)
    assert (after["TOTE-NAT"] - before["TOTE-NAT"], after["TEE-BLK-S"] - before["TEE-BLK-S"]) == (1, 2)
    assert len(sandbox.shopify.ops("orderCancel")) == 1 and len(sandbox.shopify.ops("refundCreate")) == 1
