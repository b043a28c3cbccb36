"""DESIGN §4.1–§4.2 as pure functions."""

from ecomsend_cli.matching import (
    AMBIGUOUS,
    MATCH,
    NONE,
    classify,
    feed_links,
    plan_autolink,
    sku_key,
)


def test_sku_key_normalises_case_space_and_unicode():
    assert sku_key("  AB-100 ") == "ab-100"
    assert sku_key("\tab-100\u00a0") == "ab-100"  # tab and no-break space
    assert sku_key("ＡＢ－１００") == "ab-100"  # full-width forms fold under NFKC
    assert sku_key("Straße") == sku_key("STRASSE")  # case folding, not lower()


def test_sku_key_keeps_leading_zeros_and_inner_space():
    assert sku_key("0042") == "0042"
    assert sku_key("0042") != sku_key("42")
    assert sku_key("AB 100") != sku_key("AB100")


def test_empty_codes_have_no_key_and_match_nothing():
    for empty in ("", "   ", "\t\u00a0", None):
        assert sku_key(empty) is None
        assert classify(empty, ["gid://shopify/ProductVariant/1"]).status == NONE


def test_sku_key_ignores_format_characters():
    # Zero-width space, joiners, word joiner, BOM and soft hyphen: invisible, category Cf.
    for invisible in ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"):
        assert sku_key(f"TEE{invisible}-1") == sku_key("TEE-1") == "tee-1"
        assert sku_key(f"{invisible}TEE-1{invisible}") == "tee-1"
    # Removed before trimming: white space hidden behind them is still surrounding space.
    assert sku_key("\ufeff  TEE-1 \u200b ") == "tee-1"
    # Removed after NFKC, before case folding: full-width forms still fold.
    assert sku_key("ＴＥＥ\u200d－１") == "tee-1"
    assert sku_key("TE\u200bE 1") == "tee 1"  # inner white space stays significant


def test_codes_of_only_format_characters_are_empty_and_match_nothing():
    for blank in ("\u200b", "\u200b\u200b", "\ufeff", "\u00ad", " \u200c\t\u200d "):
        assert sku_key(blank) is None
        assert classify(blank, ["gid://shopify/ProductVariant/1"]).status == NONE


def test_classify_match_ambiguous_none():
    one = classify("AB-1", ["gid://shopify/ProductVariant/1"])
    assert (one.status, one.shopify_variant_id) == (MATCH, "gid://shopify/ProductVariant/1")
    two = classify("AB-1", ["gid://shopify/ProductVariant/1", "gid://shopify/ProductVariant/2"])
    assert two.status == AMBIGUOUS and two.shopify_variant_id is None
    assert len(two.candidates) == 2
    assert classify("AB-1", []).status == NONE


def test_plan_autolink_never_touches_linked_skus():
    rows = [
        ("t1", "AB-1", ["v1"]),
        ("t2", "AB-2", ["v2", "v3"]),
        ("t3", "", ["v4"]),
        ("t4", "AB-4", ["v4"]),
    ]
    plan = plan_autolink(rows, linked={"t4"})
    assert plan.pairs == [("t1", "v1")]
    assert plan.ambiguous == [("t2", ("v2", "v3"))]
    assert plan.unmatched == ["t3"]


def test_feed_links_need_a_known_variant_and_no_link():
    known = {"gid://shopify/ProductVariant/77"}
    skus = [("t1", "77"), ("t2", "88"), ("t3", ""), ("t4", "gid://shopify/ProductVariant/77"),
            ("t5", "not-a-number")]
    assert feed_links(skus, known, linked={"t4"}) == [("t1", "gid://shopify/ProductVariant/77")]


