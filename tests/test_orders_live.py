"""`orders` tells the truth after linking (issue 12 items 1 and 10): live states (`ready`),
current blocked reasons, the closing line, `orders show ID`, `--sku`, completion of `--state`."""

from __future__ import annotations

import json
import re
import sys
import time

import pytest
from typer.testing import CliRunner

from ecomsend_cli.cli import app
from ecomsend_cli.store import CATALOG_REFRESHED_KEY, LinkChange, Store
from tests.conftest import without_options
from tests.factory import order, sku, variant
from tests.terminal import Terminal

SKU_ID = re.compile(r"\b\d{19}\b")  # the demo's TikTok SKU ids


def _listed(sb_cli, *args: str) -> dict[str, dict]:
    r = sb_cli("orders", *args, "--json")
    assert r.exit_code == 0, r.stderr
    return {o["tiktok_order_id"]: o for o in json.loads(r.stdout)}


def _linked_after_first_sync(sb_cli) -> None:
    assert sb_cli("sync-orders").exit_code == 3
    assert sb_cli("autolink", "--yes").exit_code == 0


def test_after_autolink_orders_are_ready_and_the_next_sync_creates_exactly_those(sandbox, sb_cli):
    _linked_after_first_sync(sb_cli)
    ready = _listed(sb_cli, "--state", "ready")
    blocked = _listed(sb_cli, "--state", "blocked")
    assert ready and blocked
    assert all(o["state"] == "ready" and o["stored_state"] == "blocked" and not o["missing_sku_ids"]
               for o in ready.values())
    with Store.open(sandbox.store_path) as store:
        linked = store.linked_sku_ids()
    for o in blocked.values():  # a reason names only SKUs that block the order now
        named = set(SKU_ID.findall(o["reason"]))
        assert o["state"] == "blocked" and named and named == set(o["missing_sku_ids"]), o
        assert not named & linked

    before = _listed(sb_cli)
    r = sb_cli("orders")
    assert r.exit_code == 0
    states = {line.split("\t")[0]: line.split("\t")[2] for line in r.stdout.splitlines()[1:]}
    assert {k for k, v in states.items() if v == "ready"} == set(ready)
    last = without_options(r.stderr).rstrip().splitlines()[-1]
    assert last == f"{len(ready)} orders ready: run `ecomsend sync-orders`"

    # `ready` is what the next run sends: no more, no fewer (Shopify may still refuse one).
    assert sb_cli("sync-orders").exit_code == 3
    now = _listed(sb_cli)
    assert {k for k, o in now.items() if o["state"] in ("synced", "failed")} == set(ready) | {
        k for k, o in before.items() if o["state"] in ("synced", "failed")}
    created = {o["source_identifier"] for o in sandbox.shopify.orders()}
    assert len(set(ready) & created) >= len(ready) - 1
    assert {k for k, o in now.items() if o["state"] == "blocked"} == set(blocked)
    assert "ready" not in sb_cli("orders").stderr


def test_one_ready_order_is_said_in_the_singular(sandbox, sb_cli):
    _linked_after_first_sync(sb_cli)
    assert sb_cli("sync-orders").exit_code == 3  # the ready ones are created; the rest stay blocked
    blocked = _listed(sb_cli, "--state", "blocked")
    needed: dict[str, list[str]] = {}
    for o in blocked.values():
        for sku_id in o["missing_sku_ids"]:
            needed.setdefault(sku_id, []).append(o["tiktok_order_id"])
    sku_id, (alone,) = next((s, ids) for s, ids in sorted(needed.items())
                            if len(ids) == 1 and len(blocked[ids[0]]["missing_sku_ids"]) == 1)
    assert sb_cli("link", sku_id, "TEE-BLK-S").exit_code == 0

    r = sb_cli("orders", "--state", "ready")
    assert [line.split("\t")[0] for line in r.stdout.splitlines()[1:]] == [alone]
    assert without_options(r.stderr).rstrip().splitlines()[-1] == "1 order ready: run `ecomsend sync-orders`"
    assert alone not in _listed(sb_cli, "--state", "blocked")


def test_an_order_needing_a_stale_link_is_blocked_with_the_fix_not_ready(store_path, cli):
    with Store.open(store_path) as store:
        store.upsert_variants([variant(11, "A-1"), variant(12, "B-1")])
        store.record_orders([(order("O1", [sku("t1", "A-1")]), "blocked", "1 unlinked SKU(s): t1", False),
                             (order("O2", [sku("t2", "B-1")]), "blocked", "1 unlinked SKU(s): t2", False)])
        store.apply_links([LinkChange("t1", "gid://shopify/ProductVariant/11"),
                           LinkChange("t2", "gid://shopify/ProductVariant/12")], source="manual", actor="tester")
        time.sleep(1.1)  # the refresh must be later than the link, to the second
        store.replace_variants([variant(12, "B-1")])  # variant 11 was deleted in Shopify
        store.set_state(CATALOG_REFRESHED_KEY, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    r = cli("orders", "--json")
    rows = {o["tiktok_order_id"]: o for o in json.loads(r.stdout)}
    assert rows["O1"]["state"] == "blocked" and "was deleted in Shopify" in rows["O1"]["reason"]
    assert "unlinked SKU" not in rows["O1"]["reason"]
    assert rows["O2"]["state"] == "ready"
    last = without_options(cli("orders").stderr).rstrip().splitlines()[-1]
    assert last == "1 order ready: run `ecomsend sync-orders`"
    assert list(json.loads(cli("orders", "--state", "blocked", "--json").stdout)[0].values())[0] == "O1"


def test_state_ready_honours_the_limit_after_filtering(store_path, cli):
    with Store.open(store_path) as store:
        store.upsert_variants([variant(11, "A-1")])
        store.record_orders([(order(f"O{n}", [sku("t1" if n % 2 else "t2", "A-1")]), "blocked", "x", False)
                             for n in range(6)])
        store.apply_links([LinkChange("t1", "gid://shopify/ProductVariant/11")], source="manual", actor="tester")
    listed = json.loads(cli("orders", "--state", "ready", "--limit", "2", "--json").stdout)
    assert [o["tiktok_order_id"] for o in listed] == ["O1", "O3"]
    both = json.loads(cli("orders", "--state", "ready", "--state", "blocked", "--json").stdout)
    assert len(both) == 6


def test_orders_show_tells_one_orders_story(sandbox, sb_cli):
    _linked_after_first_sync(sb_cli)
    r = sb_cli("orders", "show", "580000000000000002", "--json")
    assert r.exit_code == 0, r.stderr
    story = json.loads(r.stdout)
    assert story["state"] == "ready" and story["stored_state"] == "blocked"
    skus = {x["seller_sku"]: x for x in story["skus"]}
    assert set(skus) == {"TEE-BLK-S", "TOTE-NAT"}
    assert skus["TEE-BLK-S"]["product_title"] == "Classic Tee" and skus["TEE-BLK-S"]["quantity"] == 2
    assert skus["TEE-BLK-S"]["linked_by"] == "tester" and skus["TEE-BLK-S"]["link_source"] == "auto"
    what = [e["what"] for e in story["story"]]
    assert what[0] == "pulled from TikTok"
    assert what[1].startswith("blocked at that sync: 2 unlinked SKUs")
    assert any("'TEE-BLK-S'" in w and "linked to gid://shopify/ProductVariant/44011" in w
               and w.endswith("by tester (auto)") for w in what)
    assert story["story"][-1] == {"at": "now", "what": "ready: " + story["reason"]}

    text = sb_cli("orders", "show", "580000000000000013")
    assert text.exit_code == 0
    assert text.stdout.startswith("TikTok order 580000000000000013 (AWAITING_SHIPMENT): blocked\n")
    assert "('STK-1', Sticker Pack / Assorted) ×4: not linked: `ecomsend " in text.stdout
    assert "list-unlinked --search 1729600000001000011` shows its suggestion" in text.stdout

    assert sb_cli("sync-orders").exit_code == 3
    created = sb_cli("orders", "show", "580000000000000002", "--json")
    story = json.loads(created.stdout)
    assert story["state"] == "synced" and story["synced_at"]
    assert story["story"][-1]["what"] == f"created in Shopify as {story['shopify_order_name']}"


def test_orders_show_of_an_unknown_order_is_one_line_with_the_fix(sandbox, sb_cli):
    assert sb_cli("sync-orders").exit_code == 3
    r = sb_cli("orders", "show", "999")
    assert r.exit_code == 1 and r.stdout == ""
    assert without_options(r.stderr).strip().splitlines() == [
        "error: no pulled TikTok order '999' — `ecomsend orders` lists the pulled orders; "
        "`ecomsend sync-orders --order 999` pulls it"]
    assert json.loads(sb_cli("orders", "show", "999", "--json").stdout)["error"]["exit_code"] == 1
    for args in (["orders", "show"], ["orders", "shwo", "1"], ["orders", "show", "1", "--state", "ready"]):
        r = sb_cli(*args)
        assert r.exit_code == 1 and len(r.stderr.strip().splitlines()) == 1
        assert "ecomsend orders" in without_options(r.stderr)


def test_orders_sku_lists_the_orders_that_need_it(sandbox, sb_cli):
    assert sb_cli("sync-orders").exit_code == 3
    with Store.open(sandbox.store_path) as store:
        (tee,) = store.tiktok_skus_by_seller_sku("TEE-BLK-S")
        needing = {o.tiktok_order_id for o in store.orders() if any(i.sku_id == tee.sku_id for i in o.items)}
    assert needing and len(needing) < len(_listed(sb_cli))
    assert set(_listed(sb_cli, "--sku", "tee-blk-s")) == needing  # the seller SKU, by its key
    assert set(_listed(sb_cli, "--sku", tee.sku_id)) == needing
    assert set(_listed(sb_cli, "--sku", "TEE-BLK-S", "--state", "synced")) == set()
    r = sb_cli("orders", "--sku", "NO-SUCH")
    assert r.exit_code == 1 and "no pulled order needs a TikTok SKU 'NO-SUCH'" in r.stderr


def test_shell_completion_offers_the_states_of_orders():
    env = {"_ECOMSEND_COMPLETE": "complete_bash", "COMP_WORDS": "ecomsend orders --state ", "COMP_CWORD": "3"}
    r = CliRunner().invoke(app, [], env=env, prog_name="ecomsend")
    assert r.output.split() == ["ready", "blocked", "pending", "creating", "synced", "failed", "waiting",
                                "skipped", "invalid"]
    env["COMP_WORDS"] = "ecomsend orders --state s"
    assert CliRunner().invoke(app, [], env=env, prog_name="ecomsend").output.split() == ["synced", "skipped"]


# --- on a terminal, 80 and 160 columns -----------------------------------------------------------


@pytest.mark.parametrize("columns", [80, 160])
def test_orders_on_a_terminal_after_autolink_shows_ready_and_the_closing_line(sandbox, sb_cli, columns):
    _linked_after_first_sync(sb_cli)
    ready, blocked = len(_listed(sb_cli, "--state", "ready")), len(_listed(sb_cli, "--state", "blocked"))
    term = Terminal("--config", str(sandbox.config_file), "orders", env={"COLUMNS": str(columns)})
    assert term.wait() == 0
    screen = term.screen
    assert len(re.findall(r"│\s*ready\s*│", screen)) == ready
    assert len(re.findall(r"│\s*blocked\s*│", screen)) == blocked
    assert without_options(screen).rstrip().splitlines()[-1] == f"{ready} orders ready: run `ecomsend sync-orders`"


@pytest.mark.parametrize("columns", [80, 160])
def test_orders_show_on_a_terminal(sandbox, sb_cli, columns):
    _linked_after_first_sync(sb_cli)
    term = Terminal("--config", str(sandbox.config_file), "orders", "show", "580000000000000002",
                    env={"COLUMNS": str(columns)})
    assert term.wait() == 0
    lines = [line.rstrip() for line in term.screen.splitlines()]
    assert lines[0] == "TikTok order 580000000000000002 (AWAITING_SHIPMENT): ready"
    assert "SKUs:" in lines and "Story:" in lines
    story = lines[lines.index("Story:") + 1:]
    assert story[0].endswith("pulled from TikTok")
    assert any("'TOTE-NAT'" in line and "by tester (auto)" in line for line in story)
    assert story[-1].startswith("  now")
    # The hint repeats the user's --config, so it runs as pasted.
    assert story[-1].endswith(f"ready: all SKUs linked now: the next `ecomsend --config {sandbox.config_file} "
                              "sync-orders` sends it to Shopify")


if sys.platform == "win32":  # pragma: no cover - pty is POSIX
    pytestmark = pytest.mark.skip("POSIX only")
