"""Hostile text from TikTok and Shopify never acts on the operator's terminal.

Product titles, SKU names, seller SKUs and Shopify's error messages may hold
escape sequences (retitle the window, clear the screen), BEL, C1 controls,
bidirectional overrides and Rich markup. Everything printed shows them inert
and literal; ``--json`` keeps them exactly (escaped); CSV written to a file
or a pipe keeps them byte for byte.
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from ecomsend_cli.sandbox import Sandbox, demo_seed
from ecomsend_cli.store import LinkChange, Store
from ecomsend_cli.text import terminal_safe
from tests.factory import order, sku, variant
from tests.terminal import Terminal

# Retitle the window, clear the screen, BEL, a C1 CSI, a right-to-left override, Rich markup
# (and, in NAME, a Rich emoji code).
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x07\x9b\u202e[bold]markup[/bold]"
# What a terminal would act on: C0 but tab and newline, DEL, C1, bidi embeddings/overrides/isolates.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
V = "gid://shopify/ProductVariant/"
# NO_COLOR: Rich then writes no escape sequence of its own, so any would be the title's.
# Wide enough that no cell is folded across lines.
WIDE = {"NO_COLOR": "1", "COLUMNS": "500"}

TITLE, NAME, SELLER = f"Mug {HOSTILE}", f"Red :fire: {HOSTILE}", f"MUG-1{HOSTILE}"
SHOP_TITLE, SHOP_VARIANT, SHOP_SKU = f"Shop mug {HOSTILE}", f"Crimson {HOSTILE}", SELLER
DUP = "DUP\x9b\u202e"


def assert_inert(*texts: str) -> None:
    """No character a terminal would act on (checked on the text, so UTF-8 bytes of — or é pass)."""
    for text in texts:
        found = UNSAFE.findall(text)
        assert not found, f"{sorted(set(found))} in {text!r}"


@pytest.fixture
def hostile_store(store_path):
    """t1: SKU-equal to variant 101 (both hostile); t2/t3 share a seller SKU; t4 linked; o2 failed."""
    with Store.open(store_path) as store:
        store.replace_variants([
            variant(101, SHOP_SKU, SHOP_TITLE, SHOP_VARIANT),
            variant(102, "PLAIN-1", SHOP_TITLE, SHOP_VARIANT),
        ])
        skus = [
            sku("t1", SELLER, TITLE, NAME),
            # No C0 in these two: a CSV can name them (the importer refuses C0 as binary).
            sku("t2", DUP, TITLE, NAME),
            sku("t3", DUP, TITLE, NAME),
            sku("t4", "PLAIN-1", TITLE, NAME),
        ]
        store.record_order(order("o1", skus), state="blocked")
        store.record_order(order("o2", skus[3:]), state="failed",
                           reason=f"INVENTORY_CLAIM_FAILED: only 0 of {SHOP_TITLE} available")
        store.apply_links([LinkChange("t4", V + "102")], source="manual", actor=f"eve{HOSTILE}")
    return store_path


def test_piped_tables_messages_and_errors_show_outside_text_inert(cli, hostile_store, tmp_path):
    """list-unlinked, autolink --dry-run, links, history, orders, and an error built by the core."""
    for args in (["list-unlinked"], ["list-unlinked", "--all"], ["autolink", "--dry-run"],
                 ["links"], ["history"], ["orders"]):
        r = cli(*args)
        assert r.exit_code == 0, r.output
        assert_inert(r.stdout, r.stderr)
        # Still shown, only defused; one record per line.
        assert "[bold]markup[/bold]" in r.output, args
    r = cli("list-unlinked")
    rows = [line.split("\t") for line in r.stdout.splitlines()[1:]]
    t1 = next(row for row in rows if row[0] == "t1")
    assert t1[1:4] == ["Mug ]0;pwned[2J[bold]markup[/bold]", "Red :fire: ]0;pwned[2J[bold]markup[/bold]",
                       "MUG-1]0;pwned[2J[bold]markup[/bold]"]
    r = cli("autolink", "--dry-run")
    assert "Shop mug ]0;pwned[2J[bold]markup[/bold]" in r.stdout  # the Shopify side of the pair
    # An error message the core builds from store text: the ambiguous seller SKU lists both SKUs.
    path = tmp_path / "dup.csv"
    path.write_text(f"tiktok_seller_sku,shopify_variant_id\n{DUP},{V}102\n", encoding="utf-8")
    r = cli("link", "--csv", str(path))
    assert r.exit_code == 1
    assert "names 2 TikTok SKUs" in r.stderr
    assert_inert(r.stdout, r.stderr)


def test_json_keeps_outside_text_exact_and_inert(cli, hostile_store):
    r = cli("list-unlinked", "--all", "--json")
    assert r.exit_code == 0, r.stderr
    assert_inert(r.stdout)  # C1 and U+202E are \u escapes, as C0 already were
    rows = {row["tiktok_sku_id"]: row for row in json.loads(r.stdout)}
    assert (rows["t1"]["product_title"], rows["t1"]["sku_name"], rows["t1"]["seller_sku"]) == (
        TITLE, NAME, SELLER)
    r = cli("orders", "--json")
    assert_inert(r.stdout)
    reasons = {o["tiktok_order_id"]: o["reason"] for o in json.loads(r.stdout)}
    assert reasons["o2"] == f"INVENTORY_CLAIM_FAILED: only 0 of {SHOP_TITLE} available"
    r = cli("history", "--json")
    assert_inert(r.stdout)
    assert json.loads(r.stdout)[0]["actor"] == f"eve{HOSTILE}"
    r = cli("autolink", "--dry-run", "--json")
    assert_inert(r.stdout)
    assert json.loads(r.stdout)["linked"] == [{"tiktok_sku_id": "t1", "shopify_variant_id": V + "101"}]


def _screen(term: Terminal) -> str:
    """What the pseudo-terminal received, with its own CRLF line ends made LF again."""
    return term.seen.replace("\r\n", "\n")


@pytest.mark.parametrize("args", [
    ["list-unlinked", "--all"], ["autolink", "--dry-run"], ["links"], ["history"], ["orders"],
])
def test_rich_tables_on_a_terminal_show_outside_text_literally(hostile_store, args):
    term = Terminal("--store", str(hostile_store), *args, env=WIDE)
    assert term.wait() == 0, term.screen
    seen = _screen(term)
    assert_inert(seen)
    # Markup in a title is text, not bold: the brackets are on the screen.
    assert "[bold]markup[/bold]" in seen


def test_csv_keeps_keys_exact_shows_titles_inert_and_imports_again(cli, hostile_store, tmp_path):
    r = cli("list-unlinked", "--csv")
    rows = {row["tiktok_sku_id"]: row for row in csv.DictReader(io.StringIO(r.stdout))}
    assert rows["t1"]["tiktok_seller_sku"] == SELLER  # a key: exact, as the import matches it
    assert (rows["t1"]["product_title"], rows["t1"]["sku_name"]) == (terminal_safe(TITLE), terminal_safe(NAME))
    r = cli("links", "export")
    for row in csv.DictReader(io.StringIO(r.stdout)):
        assert all(row[c] == terminal_safe(row[c]) for c in ("product_title", "sku_name", "suggestion"))
    exported = tmp_path / "links.csv"
    exported.write_text(r.stdout, newline="")
    back = cli("link", "--csv", str(exported), "--json")  # the round trip of §6 still works
    assert back.exit_code == 0, back.stderr
    assert json.loads(back.stdout)["invalid"] == []
    for args in (["list-unlinked", "--csv"], ["links", "export"]):
        term = Terminal("--store", str(hostile_store), *args, env=WIDE)
        assert term.wait() == 0, term.screen
        assert_inert(_screen(term))
        assert "Mug ]0;pwned[2J[bold]markup[/bold]" in term.seen


def test_prompts_and_the_picker_show_outside_text_inert(hostile_store):
    term = Terminal("--store", str(hostile_store), "link", "t1", env=WIDE)
    term.expect("Search: ")
    term.send("mug")
    term.expect("Search: mug")
    term.send("1")
    term.expect("[y/N]")
    term.send("n")
    assert term.wait() == 0
    # The picker redraws itself in place (\r, cursor up, clear below): its own moves, not outside text.
    seen = re.sub(r"\r(\x1b\[\d+A)?\x1b\[J", "", _screen(term))
    assert "Nothing changed" in seen
    assert_inert(seen)
    assert "Shop mug ]0;pwned[2J[bold]markup[/bold]" in seen  # the picker's table (stderr)
    assert "Search: MUG-1]0;pwned[2J[bold]m…" in seen  # the first search: the seller SKU
    assert "Link t1 (Mug ]0;pwned[2J[bold]markup[/bold] / Red :fire: ]0;" in seen  # the confirmation


# --- sync-orders against the simulators ----------------------------------------------------------


@pytest.fixture
def hostile_sandbox(tmp_path):
    """Empty simulators, then a Shopify mug with a hostile title and no stock (DENY), and two
    TikTok orders: one for a hostile SKU equal to the mug's, one for a hostile SKU with no match."""
    with Sandbox(tmp_path / "sandbox", "none") as box:
        box.shopify.add_products([{
            "id": 9001, "title": SHOP_TITLE,
            "variants": [{"id": 9101, "title": SHOP_VARIANT, "sku": SHOP_SKU, "price": "12.00",
                          "inventory_quantity": 0, "inventory_policy": "DENY"}],
        }])
        template = next(o for o in demo_seed()["tiktok_orders"] if o["status"] == "AWAITING_SHIPMENT")
        line = dict(template["line_items"][0])
        orders = []
        for number, (sku_id, seller) in enumerate([("771", SELLER), ("772", f"NONE{HOSTILE}")], 1):
            item = {**line, "id": f"99{number}", "sku_id": sku_id, "product_id": "7700",
                    "product_name": TITLE, "sku_name": NAME, "seller_sku": seller}
            orders.append({**template, "id": f"58000000009999{number}", "line_items": [item]})
        box.tiktok.add_orders(orders)
        box.config_file = box.write_config()
        yield box


def test_sync_orders_progress_summary_and_shopify_errors_are_inert(hostile_sandbox, tmp_path):
    from typer.testing import CliRunner

    from ecomsend_cli.cli import app

    def run(*args: str):
        result = CliRunner().invoke(app, ["--config", str(hostile_sandbox.config_file), *args],
                                    catch_exceptions=False)
        assert_inert(result.stdout, result.stderr)
        return result

    # First run: both orders blocked; the summary lists the unlinked hostile SKUs.
    r = run("-v", "sync-orders")
    assert r.exit_code == 3, r.output
    assert "Blocked by unlinked SKUs" in r.stderr
    assert "Mug ]0;pwned[2J[bold]markup[/bold] / Red :fire: ]0;pwned" in r.stderr
    r = run("autolink", "--yes")
    assert r.exit_code == 0 and "Linked 1 SKU (batch 1;" in r.stderr, r.output
    # Second run: Shopify refuses the mug (INVENTORY_CLAIM_FAILED), its message quoting the title.
    r = run("-v", "sync-orders")
    assert r.exit_code == 3, r.output
    assert "INVENTORY_CLAIM_FAILED" in r.output and "Shop mug ]0;pwned[2J" in r.output
    r = run("orders")
    assert "Shop mug ]0;pwned[2J[bold]markup[/bold]" in r.stdout
    # --json keeps Shopify's message exactly.
    r = run("sync-orders", "--json")
    failed = next(o for o in json.loads(r.stdout)["orders"] if o["state"] == "failed")
    assert SHOP_TITLE in failed["reason"] and SHOP_VARIANT in failed["reason"]
    r = run("orders", "--json")
    assert any(SHOP_TITLE in o["reason"] for o in json.loads(r.stdout))
    r = run("list-unlinked", "--json")
    assert [(x["product_title"], x["seller_sku"]) for x in json.loads(r.stdout)] == [
        (TITLE, f"NONE{HOSTILE}")]


def test_the_demo_relays_its_steps_colours_but_nothing_else(capsys):
    from ecomsend_cli.output import Output

    # A child's output as `ecomsend demo` relays it: Rich's colour codes, and (were a child
    # ever to let one through) a title's escape sequences.
    Output().relay(f"\x1b[1mSynced\x1b[0m {TITLE}")
    err = capsys.readouterr().err
    assert err == "\x1b[1mSynced\x1b[0m Mug ]0;pwned[2J[bold]markup[/bold]\n"
