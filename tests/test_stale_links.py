"""Stale links (DESIGN §4.1, issue 15 item 6): a linked variant deleted in Shopify, or whose SKU
changed, is shown as stale with the fix by `links`, `list-unlinked --all` and `doctor`."""

from __future__ import annotations

import json
import re
import shlex
import time

from ecomsend_cli.store import LinkChange, Store
from tests.factory import order, sku, variant

V = "gid://shopify/ProductVariant/"


def _tee(variants: list[tuple[int, str, str]]) -> dict:
    """Shopify product 9001 (the demo's Classic Tee) with exactly ``variants``: (id, title, sku)."""
    return {"id": 9001, "title": "Classic Tee", "status": "ACTIVE", "variants": [
        {"id": vid, "title": title, "sku": code, "price": "19.00", "inventory_item_id": vid,
         "inventory_quantity": 20, "inventory_policy": "DENY"} for vid, title, code in variants]}


def _sku_id(store_path, seller_sku: str) -> str:
    with Store.open(store_path) as store:
        (found,) = store.tiktok_skus_by_seller_sku(seller_sku)
        return found.sku_id


def test_deleted_and_resku_variants_are_stale_with_the_fix(sandbox, sb_cli):
    assert sb_cli("sync-orders").exit_code == 3  # pulls the orders and fills the catalog cache
    assert sb_cli("autolink", "--yes").exit_code == 0
    tee_s, tee_m, tee_l = (_sku_id(sandbox.store_path, f"TEE-BLK-{size}") for size in "SML")
    assert json.loads(sb_cli("doctor", "--json").stdout)["ok"] is True

    # Black / M is deleted in Shopify; an incremental refresh sees its product changed.
    sandbox.shopify.add_products([_tee([(44011, "Black / S", "TEE-BLK-S"), (44013, "Black / L", "TEE-BLK-L")])])
    r = sb_cli("catalog", "refresh")
    assert r.exit_code == 0 and "1 link(s) are stale" in r.stderr, r.stderr
    links = {x["tiktok_sku_id"]: x for x in json.loads(sb_cli("links", "--json").stdout)}
    assert links[tee_m]["stale"] == (
        f"stale link: linked variant {V}44012 ('TEE-BLK-M') was deleted in Shopify: relink it to a variant "
        f"that exists (`ecomsend list-unlinked --all --search {tee_m}`), or `ecomsend unlink {tee_m} --yes`")
    assert links[tee_s]["stale"] is None and links[tee_l]["stale"] is None

    # Black / S changes SKU, Black / L only its case (the same code, §4.1); a full refresh sees both.
    sandbox.shopify.add_products([_tee([(44011, "Black / S", "TEE-BLACK-S"), (44013, "Black / L", "tee-blk-l")])])
    assert sb_cli("catalog", "refresh", "--full").exit_code == 0
    with Store.open(sandbox.store_path) as store:
        stale = store.stale_links()
        assert set(stale) == {tee_s, tee_m}
        assert "changed in Shopify from 'TEE-BLK-S' to 'TEE-BLACK-S'" in stale[tee_s]
        assert f"`ecomsend link {tee_s} {V}44011 --force`" in stale[tee_s]
        assert set(store.stale_links([tee_l, tee_m, "no-such-sku"])) == {tee_m}

    links = {x["tiktok_sku_id"]: x for x in json.loads(sb_cli("links", "--json").stdout)}
    assert {k for k, x in links.items() if x["stale"]} == {tee_s, tee_m}
    table = sb_cli("links")
    assert table.stdout.splitlines()[0].split("\t")[-1] == "Stale"
    cells = {line.split("\t")[0]: line.split("\t")[-1] for line in table.stdout.splitlines()[1:]}
    assert cells[tee_m] == "variant deleted in Shopify"
    assert cells[tee_s] == "variant SKU changed 'TEE-BLK-S' → 'TEE-BLACK-S'"
    assert cells[tee_l] == ""
    assert "2 link(s) are stale" in table.stderr and f"unlink {tee_m} --yes`" in table.stderr

    rows = {x["tiktok_sku_id"]: x for x in json.loads(sb_cli("list-unlinked", "--all", "--json").stdout)}
    assert rows[tee_m]["link"]["stale"] == links[tee_m]["stale"]
    assert rows[tee_m]["link"]["shopify_variant_id"] == V + "44012"
    assert rows[tee_l]["link"]["stale"] is None
    listing = sb_cli("list-unlinked", "--all")
    linked_to = {line.split("\t")[0]: line.split("\t")[6] for line in listing.stdout.splitlines()[1:]}
    assert linked_to[tee_m].startswith("STALE (variant deleted in Shopify)")
    assert linked_to[tee_s].startswith("STALE (variant SKU changed")
    assert not linked_to[tee_l].startswith("STALE")
    source = {line.split("\t")[0]: line.split("\t")[7] for line in listing.stdout.splitlines()[1:]}
    assert (linked_to[tee_l], source[tee_l]) == ("tee-blk-l (Classic Tee / Black / L)", "auto")
    assert "link(s) are stale" in sb_cli("list-unlinked").stderr

    doctor = sb_cli("doctor", "--json")
    assert doctor.exit_code == 1
    check = {c["check"]: c for c in json.loads(doctor.stdout)["checks"]}["links"]
    assert not check["ok"]
    assert "2 link(s) are stale (1 variant(s) deleted in Shopify, 1 changed SKU)" in check["detail"]
    # The fix names a real stale link, in commands that run as pasted (below), with the user's
    # --config repeated: in the JSON and in the table's Fix column alike.
    ecomsend = f"`ecomsend --config {shlex.quote(str(sandbox.config_file))}"
    assert any(f"{ecomsend} unlink {x} --yes`" in check["fix"] for x in (tee_m, tee_s)), check["fix"]
    assert f"{ecomsend} link {tee_s} 44011 --force`" in check["fix"] or "offers the picker" in check["fix"]
    table = sb_cli("doctor")
    fixes = {line.split("\t")[0]: line.split("\t")[3] for line in table.stdout.splitlines()[1:]}
    assert fixes["links"] == check["fix"], table.stdout

    # The fixes: confirm the re-SKU'd variant (by its number, as the hint says), unlink the deleted one.
    r = sb_cli("link", tee_s, "44011", "--force")
    assert r.exit_code == 0 and "Confirmed" in r.stderr, r.stderr
    assert sb_cli("unlink", tee_m, "--yes").exit_code == 0
    doctor = sb_cli("doctor", "--json")
    assert doctor.exit_code == 0, doctor.stdout
    with Store.open(sandbox.store_path) as store:
        assert store.stale_links() == {}
        assert store.history(tee_s, limit=1)[0].action == "relink"


def _store_with_links(path) -> None:
    with Store.open(path) as store:
        store.replace_variants([variant(1, "A-1"), variant(2, "B-2"), variant(3, "C-3"), variant(4, "D-4")])
        skus = [sku(f"t{n}", f"x{n}") for n in range(1, 5)]
        store.record_order(order("o1", skus), state="blocked")
        for n, source in zip(range(1, 5), ("auto", "manual", "csv", "feed"), strict=True):
            store.apply_links([LinkChange(f"t{n}", f"{V}{n}")], source=source, actor="tester")


def test_every_link_records_its_variant_sku(store_path):
    _store_with_links(store_path)
    with Store.open(store_path) as store:
        recorded = dict(store.conn.execute("SELECT tiktok_sku_id, variant_sku FROM links"))
    assert recorded == {"t1": "A-1", "t2": "B-2", "t3": "C-3", "t4": "D-4"}


def test_links_from_before_the_rule_take_the_cached_sku(store_path):
    _store_with_links(store_path)
    with Store.open(store_path) as store:  # as a store written before migration 008 held them
        store.conn.execute("ALTER TABLE links DROP COLUMN variant_sku")
        store.conn.execute("DELETE FROM _migrations WHERE name = '008_link_variant_sku'")
    with Store.open(store_path) as store:
        assert dict(store.conn.execute("SELECT tiktok_sku_id, variant_sku FROM links"))["t2"] == "B-2"
        store.replace_variants([variant(1, "A-1"), variant(2, "B-22"), variant(3, "C-3")])
        store.set_state("catalog.refreshed_at", "2999-01-01T00:00:00Z")
        assert set(store.stale_links()) == {"t2", "t4"}


def test_a_cache_never_refreshed_since_the_link_proves_no_deletion(store_path):
    _store_with_links(store_path)
    with Store.open(store_path) as store:
        store.conn.execute("DELETE FROM shopify_variants WHERE variant_id = ?", (V + "4",))
        assert store.stale_links() == {}  # no refresh recorded at all
        store.set_state("catalog.refreshed_at", "2000-01-01T00:00:00Z")  # before the links
        assert store.stale_links() == {}
        store.set_state("catalog.refreshed_at", "2999-01-01T00:00:00Z")
        assert list(store.stale_links()) == ["t4"]
        # Relinking the SKU (to a variant in the cache) leaves it fresh.
        store.apply_links([LinkChange("t4", V + "1", V + "4")], source="manual", actor="tester")
        assert store.stale_links() == {}


def test_orders_needing_a_stale_link_wait_blocked_instead_of_being_refused(sandbox, sb_cli):
    assert sb_cli("sync-orders").exit_code == 3
    assert sb_cli("autolink", "--yes").exit_code == 0
    tee_m = _sku_id(sandbox.store_path, "TEE-BLK-M")
    # Black / M is deleted in Shopify and the catalog refresh sees it; then an order needs it.
    sandbox.shopify.add_products([_tee([(44011, "Black / S", "TEE-BLK-S"), (44013, "Black / L", "TEE-BLK-L")])])
    assert sb_cli("catalog", "refresh").exit_code == 0
    base = sandbox.tiktok.order("580000000000000001")
    line = next(x for x in base["line_items"] if x["sku_id"] == tee_m)
    order = {**json.loads(json.dumps(base)), "id": "5810000000000000001", "line_items": [
        {**line, "id": "58100000000000000011"}]}
    order["update_time"] = int(time.time())
    sandbox.tiktok.add_orders([order])
    for _ in range(2):  # on every run, not sent and refused: blocked with the fix
        r = sb_cli("sync-orders", "--json")
        assert r.exit_code == 3, r.stderr
        outcome = next(o for o in json.loads(r.stdout)["orders"] if o["tiktok_order_id"] == order["id"])
        assert outcome["state"] == "blocked" and "was deleted in Shopify: relink it" in outcome["reason"]
        assert tee_m in outcome["missing_sku_ids"]
    assert not [o for o in sandbox.shopify.orders() if o["source_identifier"] == order["id"]]
    assert sb_cli("link", tee_m, f"{V}44013", "--force").exit_code == 0  # relinked: it goes out
    sb_cli("sync-orders")
    assert [o for o in sandbox.shopify.orders() if o["source_identifier"] == order["id"]]


def test_a_hint_in_a_piped_cell_keeps_its_cell_whatever_the_config_path_holds(sandbox, sb_cli, tmp_path):
    """--config with a tab, a newline, quotes, `$` and unicode in its folder: the Fix cell of the
    piped doctor table stays one cell of one line (the options were added after the cell was
    made plain, so the tab split it and the newline cut the row), and its hint runs as pasted."""
    import shutil

    from typer.testing import CliRunner

    from ecomsend_cli.cli import app

    assert sb_cli("sync-orders").exit_code == 3
    assert sb_cli("autolink", "--yes").exit_code == 0
    sandbox.shopify.add_products([_tee([(44011, "Black / S", "TEE-BLK-S"), (44013, "Black / L", "TEE-BLK-L")])])
    assert sb_cli("catalog", "refresh", "--full").exit_code == 0
    folder = tmp_path / "shop\tone\nit's \"$HOME\" é"
    folder.mkdir()
    config = folder / "c.yaml"
    shutil.copy(sandbox.config_file, config)
    config.chmod(0o600)

    def run(*args: str):
        return CliRunner().invoke(app, ["--config", str(config), *args], catch_exceptions=False)

    fix = {c["check"]: c for c in json.loads(run("doctor", "--json").stdout)["checks"]}["links"]["fix"]
    assert f"`ecomsend --config {shlex.quote(str(config))} unlink " in fix
    lines = run("doctor").stdout.splitlines()
    assert lines[0] == "Check\tOK\tDetail\tFix"
    assert all(line.count("\t") == 3 for line in lines), lines
    cell = {line.split("\t")[0]: line.split("\t")[3] for line in lines[1:]}["links"]
    assert "`ecomsend --config " in cell and "unlink " in cell
    command = re.search(r"`(ecomsend [^`]+ unlink [^`]+)`", fix).group(1)
    argv = shlex.split(command)
    assert argv[:3] == ["ecomsend", "--config", str(config)]
    assert CliRunner().invoke(app, argv[1:], catch_exceptions=False).exit_code == 0


def test_asked_about_many_skus_the_answer_is_the_same_as_for_a_few(store_path):
    """From 5,000 SKUs on, the stale test reads the links in one pass instead of IN-lists
    (sync-orders asks about every SKU of its blocked orders): the same answer either way."""
    from ecomsend_cli.store import _SCAN_FROM

    n = 2 * _SCAN_FROM + 500
    with Store.open(store_path) as store:
        store.replace_variants([variant(i, f"S-{i}") for i in range(1, n + 1)])
        skus = [sku(f"t{i}", f"x{i}") for i in range(1, n + 1)]
        store.record_order(order("o1", skus), state="blocked")
        store.apply_links([LinkChange(f"t{i}", f"{V}{i}") for i in range(1, n + 1)], source="csv", actor="tester")
        # Every 7th variant deleted, every 11th re-SKU-ed, every 13th only in case (the same code).
        store.replace_variants([variant(i, f"S-{i}" if i % 13 and i % 11 else
                                        f"s-{i}" if i % 11 else f"NEW-{i}")
                                for i in range(1, n + 1) if i % 7])
        store.set_state("catalog.refreshed_at", "2999-01-01T00:00:00Z")
        every = store.stale_links()
        assert set(every) == {f"t{i}" for i in range(1, n + 1) if i % 7 == 0 or i % 11 == 0}
        asked = [f"t{i}" for i in range(2, n + 1, 2)] + ["no-such-sku"]  # past the threshold
        assert len(asked) >= _SCAN_FROM
        assert store.stale_links(asked) == {k: v for k, v in every.items() if int(k[1:]) % 2 == 0}
        few = asked[:_SCAN_FROM - 1]
        assert store.stale_links(few) == {k: v for k, v in every.items() if k in set(few)}
        assert store.stale_links([]) == {}
