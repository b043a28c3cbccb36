"""An accountant's pass over an order's money after creation (DESIGN §5.7, §6b.3, §6b.4): what
Shopify holds after TikTok's cancellations, returns and refunds, compared with what TikTok paid
back, to the cent. The real CLI against both simulators on 127.0.0.1."""

from __future__ import annotations

import json
from decimal import Decimal

from tests.test_after_creation import line, oid, stock, sync
from tests.test_after_creation_attacks import made, shopify_order


def test_a_replacement_is_not_a_refund_in_shopify(sandbox, sb_cli, synced):
    # Order 6 (USD, delivered): the buyer gets a new mug instead of their money (TikTok's
    # REPLACEMENT return, refund_amount all zero). Nothing was paid back, so Shopify's order keeps
    # its mug and its money: no zero refund that takes the unit off the order and leaves the
    # buyer owed its price (outstanding below 0).
    before = stock(sandbox)
    record = sandbox.tiktok.complete_return(oid(6), [line(6, 2)], return_type="REPLACEMENT")
    assert Decimal(record["refund_amount"]["refund_total"]) == 0
    report = sync(sb_cli)
    assert report["aftersales"]["failed"] == report["aftersales"]["refunded"] == 0, report["aftersales"]
    order = shopify_order(sandbox, 6)
    assert (order["refunds"], order["refunded"], order["outstanding"]) == ([], "0.0", "0.0")
    assert made(sandbox, "refundCreate") == 0 and stock(sandbox) == before
    r = sb_cli("verify-orders", "--json")
    assert (r.exit_code, json.loads(r.stdout)["differing"]) == (0, 0), r.stdout
    assert sync(sb_cli)["aftersales"]["outcomes"] == []  # noted once, not again
