"""The popup, confirmations and the picker on a real pseudo-terminal."""

from __future__ import annotations

import hashlib
import os

import pytest

from ecomsend_cli.store import LinkChange, Store
from tests.factory import order, sku, variant
from tests.terminal import Terminal

V = "gid://shopify/ProductVariant/"


def make_store(path):
    with Store.open(path) as store:
        store.replace_variants([
            variant(1, "MUG-RED", "Mug", "Red"),
            variant(2, "MUG-BLUE", "Mug", "Blue"),
            variant(3, "TEE-S", "Tee", "Small"),
        ])
        skus = [sku("t1", "mug-red", "TT Mug", "Red"), sku("t2", "mystery", "TT Tee", "S")]
        store.record_order(order("o1", skus), state="blocked")


def test_popup_answer_no_changes_nothing(store_path):
    make_store(store_path)
    before = hashlib.sha256(store_path.read_bytes()).hexdigest()
    term = Terminal("--store", str(store_path), "autolink")
    screen = term.expect("Link 1 SKU? [y/N]")
    assert "TT Mug" in screen and "MUG-RED" in screen and "mug-red" in screen
    term.send("n")
    assert term.wait() == 0
    assert "Nothing linked" in term.screen
    assert hashlib.sha256(store_path.read_bytes()).hexdigest() == before
    with Store.open(store_path) as store:
        assert store.links() == []


def test_popup_answer_yes_links(store_path):
    make_store(store_path)
    term = Terminal("--store", str(store_path), "autolink")
    term.expect("[y/N]")
    term.send("y")
    assert term.wait() == 0
    with Store.open(store_path) as store:
        assert [(x.tiktok_sku_id, x.shopify_variant_id, x.source) for x in store.links()] == [
            ("t1", V + "1", "auto")]


def test_picker_search_choose_confirm(store_path):
    make_store(store_path)
    term = Terminal("--store", str(store_path), "link", "t2")
    term.expect("Search: mystery")
    term.send("tee")  # typed text searches; Enter keeps the results
    screen = term.expect("Search: tee")
    assert "TEE-S" in screen.split("Search: mystery")[-1]
    term.send("1")
    term.expect("[y/N]")
    term.send("y")
    assert term.wait() == 0, term.screen
    with Store.open(store_path) as store:
        assert store.link("t2").shopify_variant_id == V + "3"
        assert store.link("t2").source == "manual"


def first_row(screen: str) -> str:
    return next(line for line in screen.splitlines()[::-1] if line.startswith("│ 1 "))


def test_picker_ranks_the_seller_sku_first_and_q_quits(store_path):
    make_store(store_path)
    term = Terminal("--store", str(store_path), "link", "t1")
    screen = term.expect("Search: mug-red")  # the seller SKU is the first search
    assert "MUG-RED" in first_row(screen)
    term.send("q")
    assert term.wait() == 0
    with Store.open(store_path) as store:
        assert store.link("t1") is None


@pytest.mark.parametrize("columns", ["80", "160"])
def test_picker_puts_the_right_variant_first_for_a_typo(store_path, columns):
    make_store(store_path)
    term = Terminal("--store", str(store_path), "link", "t2", env={"COLUMNS": columns})
    term.expect("Search: mystery")
    term.send("mgu-blue")  # a typo in the SKU: difflib's old picker found nothing
    screen = term.expect("Search: mgu-blue")
    assert "MUG-BLUE" in first_row(screen)
    term.send("1")
    term.expect("[y/N]")
    term.send("y")
    assert term.wait() == 0, term.screen
    with Store.open(store_path) as store:
        assert store.link("t2").shopify_variant_id == V + "2"


@pytest.mark.parametrize("columns", ["80", "160"])
def test_picker_refuses_an_out_of_range_number_and_esc_cancels_cleanly(store_path, columns):
    make_store(store_path)
    term = Terminal("--store", str(store_path), "link", "t1", env={"COLUMNS": columns})
    term.expect("Search: mug-red")
    term.send("99")
    screen = term.expect("No row 99")
    assert "Search: 99" not in screen  # refused, not searched
    os.write(term.master, b"\x1b")  # Esc alone: no Enter
    term.expect("Nothing changed.")
    assert term.wait() == 0
    assert "^[" not in term.screen and "\x1b[" not in term.screen.split("Nothing changed.")[-1]
    with Store.open(store_path) as store:
        assert store.link("t1") is None


@pytest.mark.parametrize("columns", ["80", "160"])
def test_link_without_arguments_offers_the_unlinked_skus_most_blocked_first(store_path, columns):
    make_store(store_path)
    with Store.open(store_path) as store:
        store.record_order(order("o2", [sku("t2", "mystery", "TT Tee", "S")]), state="blocked")
    term = Terminal("--store", str(store_path), "link", env={"COLUMNS": columns})
    screen = term.expect("Search:")
    assert "t2" in first_row(screen)  # blocks two orders, t1 one
    term.send("1")
    term.expect("Search: mystery")  # the variant picker for the chosen SKU
    term.send("tee")
    term.expect("Search: tee")
    term.send("1")
    term.expect("[y/N]")
    term.send("y")
    assert term.wait() == 0, term.screen
    with Store.open(store_path) as store:
        assert store.link("t2").shopify_variant_id == V + "3"


def test_replacing_a_link_asks_on_a_terminal(store_path):
    make_store(store_path)
    with Store.open(store_path) as store:
        store.apply_links([LinkChange("t1", V + "1")], source="auto", actor="x")
    term = Terminal("--store", str(store_path), "link", "t1", V + "2")
    term.expect("Replace Mug / Red (MUG-RED) with Mug / Blue (MUG-BLUE)? [y/N]")
    term.send("n")
    assert term.wait() == 0
    with Store.open(store_path) as store:
        assert store.link("t1").shopify_variant_id == V + "1"
    term = Terminal("--store", str(store_path), "link", "t1", V + "2")
    term.expect("Replace Mug / Red (MUG-RED) with Mug / Blue (MUG-BLUE)?")
    term.send("y")
    assert term.wait() == 0
    with Store.open(store_path) as store:
        assert store.link("t1").shopify_variant_id == V + "2"
        assert store.history()[0].action == "relink"


def test_unlink_confirms_on_a_terminal(store_path):
    make_store(store_path)
    with Store.open(store_path) as store:
        store.apply_links([LinkChange("t1", V + "1")], source="auto", actor="x")
    term = Terminal("--store", str(store_path), "unlink", "t1")
    screen = term.expect("Unlink it? [y/N]")
    assert "1 pending order needs this SKU" in screen
    term.send("y")
    assert term.wait() == 0
    with Store.open(store_path) as store:
        assert store.link("t1") is None
