"""The rules of §6b.1 that decide a push, one by one: which TikTok line items a Shopify
fulfillment ships, which TikTok carrier it names, and what is not ours to push."""

from __future__ import annotations

from ecomsend_cli.tracking import Fulfilled, assign_lines, match_provider, not_pushed_reason, reference_lines

A, B, C = "gid://shopify/ProductVariant/1", "gid://shopify/ProductVariant/2", "gid://shopify/ProductVariant/3"


def fulfilled(fid, created, *lines):
    return Fulfilled(fid, "SUCCESS", created, f"T-{fid}", "USPS", tuple(lines))


def test_a_split_shipment_ships_each_unit_once_in_the_order_shopify_fulfilled_them():
    line_map = {"l1": [A], "l2": [A], "l3": [B]}  # two units of A, one of B
    first = fulfilled("f1", "2026-11-30T10:00:00Z", (A, 1))
    second = fulfilled("f2", "2026-11-30T11:00:00Z", (A, 1), (B, 1))
    assert assign_lines(line_map, [second, first], {}, []) == {"f1": ["l1"], "f2": ["l2", "l3"]}
    # Once f1 is pushed, its line stays its own; f2 takes the rest.
    assert assign_lines(line_map, [first, second], {"f1": ["l1"]}, []) == {"f2": ["l2", "l3"]}


def test_a_combined_listing_ships_when_all_its_parts_have():
    line_map = {"bundle": [A, B, B], "single": [C]}
    partly = fulfilled("f1", "2026-11-30T10:00:00Z", (A, 1), (B, 1), (C, 1))
    assert assign_lines(line_map, [partly], {}, []) == {"f1": ["single"]}  # one B short
    rest = fulfilled("f2", "2026-11-30T12:00:00Z", (B, 1))
    assert assign_lines(line_map, [partly, rest], {"f1": ["single"]}, []) == {"f2": ["bundle"]}


def test_lines_tiktok_shows_shipped_otherwise_are_not_pushed_again():
    line_map = {"l1": [A], "l2": [A]}
    both = fulfilled("f1", "2026-11-30T10:00:00Z", (A, 2))
    assert assign_lines(line_map, [both], {}, ["l1"]) == {"f1": ["l2"]}


def test_carriers_match_case_and_punctuation_aside_and_overrides_win():
    providers = [{"id": "6617675021119438849", "name": "USPS"}, {"id": "700", "name": "DHL eCommerce"},
                 {"id": "701", "name": "UPS"}]
    assert match_provider("usps", providers, {})["id"] == "6617675021119438849"
    assert match_provider("DHL-eCommerce", providers, {})["id"] == "700"
    assert match_provider("DHL Express", providers, {}) is None  # never a guess
    assert match_provider("DHL Express", providers, {"DHL Express": "DHL eCommerce"})["id"] == "700"
    assert match_provider("dhl express", providers, {"DHL Express": "701"})["name"] == "UPS"  # or by id
    assert match_provider("", providers, {}) is None


def test_what_tiktok_ships_itself_or_cancelled_is_not_pushed():
    assert "own label" in not_pushed_reason({"shipping_type": "TIKTOK"}, "AWAITING_SHIPMENT")
    assert "FBT" in not_pushed_reason({"fulfillment_type": "FULFILLMENT_BY_TIKTOK"}, "IN_TRANSIT")
    assert not_pushed_reason({"shipping_type": "SELLER"}, "CANCELLED") == "cancelled on TikTok"
    assert not_pushed_reason({"shipping_type": "SELLER"}, "AWAITING_SHIPMENT") is None


def test_the_reference_names_each_tiktok_line_item_and_the_shopify_line_it_became():
    line_map = {"l1": [A], "l2": [A], "bundle": [A, B]}
    shopify_lines = [("gid://shopify/LineItem/11", A, 3), ("gid://shopify/LineItem/12", B, 1)]
    assert reference_lines(line_map, shopify_lines) == [("11", "l1"), ("11", "l2"), ("11", "bundle"),
                                                        ("12", "bundle")]
