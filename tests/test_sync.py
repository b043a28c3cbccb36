"""sync-orders (DESIGN §5) against the simulators over real HTTP, in-process."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import threading
from collections import Counter

import pytest

from ecomsend_cli.sandbox import demo_seed
from ecomsend_cli.store import Store
from tests.conftest import python_cmd


def sync(sb_cli, *args):
    r = sb_cli("sync-orders", "--json", *args)
    assert r.exit_code in (0, 3), r.stderr
    return r.exit_code, json.loads(r.stdout)


def link_everything(sb_cli):
    assert sb_cli("autolink", "--yes").exit_code == 0
    assert sb_cli("link", "STK-1", "STK-001").exit_code == 0


def shopify_orders(sandbox) -> Counter:
    return Counter(o["source_identifier"] for o in sandbox.shopify.orders())


def store_states(sandbox) -> dict[str, str]:
    with Store.open(sandbox.store_path) as store:
        return {o.tiktok_order_id: o.state for o in store.orders()}


def test_first_sync_creates_linked_orders_and_blocks_the_rest(sandbox, sb_cli):
    code, report = sync(sb_cli)
    assert code == 3  # blocked orders remain: cron should mail
    assert set(report) >= {"synced", "blocked", "failed", "skipped", "orders"}
    assert all(isinstance(report[k], int) for k in ("synced", "blocked", "failed", "skipped"))
    by_id = {o["tiktok_order_id"]: o for o in report["orders"]}
    assert set(by_id["580000000000000001"]) >= {"tiktok_order_id", "state", "shopify_order_id", "reason",
                                                 "missing_sku_ids"}
    # Only the feed-published hoodie is linked on a first run: its orders are created.
    synced = {k for k, o in by_id.items() if o["state"] == "synced"}
    assert synced == {"580000000000000016", "580000000000000017"}
    assert report["synced"] == 2 and report["blocked"] > 10
    blocked = by_id["580000000000000002"]
    assert blocked["state"] == "blocked" and blocked["missing_sku_ids"]
    assert shopify_orders(sandbox) == Counter({"580000000000000016": 1, "580000000000000017": 1})
    # Every status is handled: waiting, skipped.
    states = store_states(sandbox)
    assert states["580000000000000008"] == "waiting"  # UNPAID
    assert states["580000000000000009"] == "waiting"  # ON_HOLD
    assert states["580000000000000010"] == "skipped"  # CANCELLED before sync


def test_blocked_orders_are_created_once_linked_with_inventory_deducted(sandbox, sb_cli):
    sync(sb_cli)
    before = {v["variant_id"]: v["inventory_quantity"] for v in sandbox.shopify.inventory()}
    link_everything(sb_cli)
    code, report = sync(sb_cli)
    orders = sandbox.shopify.orders()
    counts = Counter(o["source_identifier"] for o in orders)
    assert counts and max(counts.values()) == 1  # never twice
    assert report["synced"] >= 14
    assert report["failed"] == 1  # the zero-stock DENY socks: Shopify refuses to oversell
    failed = next(o for o in report["orders"] if o["state"] == "failed")
    assert "INVENTORY_CLAIM_FAILED" in failed["reason"]
    after = {v["variant_id"]: v["inventory_quantity"] for v in sandbox.shopify.inventory()}
    taken = Counter()
    for o in orders:
        if o["source_identifier"] not in ("580000000000000016", "580000000000000017"):
            assert o["inventory_behaviour"] == "DECREMENT_OBEYING_POLICY"
            for line in o["lines"]:
                taken[line["variant_id"]] += line["quantity"]
    for variant_id, qty in taken.items():
        assert before[variant_id] - after[variant_id] == qty
    # Multi-unit: TikTok sends one line item per unit; Shopify gets one line with the quantity.
    multi = [line for o in orders for line in o["lines"] if line["quantity"] > 1]
    assert multi
    # Nothing new: a rerun creates nothing.
    code, again = sync(sb_cli)
    assert Counter(o["source_identifier"] for o in sandbox.shopify.orders()) == counts
    assert again["synced"] == 0 or all(o["state"] != "synced" or o["shopify_order_id"] for o in again["orders"])


def test_combined_listing_resolves_into_component_variants(sandbox, sb_cli):
    sync(sb_cli)
    link_everything(sb_cli)
    sync(sb_cli)
    with Store.open(sandbox.store_path) as store:
        combined = [o for o in store.orders() if any(
            line.get("combined_listing_skus") for line in o.payload.get("line_items", []))]
    assert combined
    sim = {o["source_identifier"]: o for o in sandbox.shopify.orders()}
    for order in combined:
        skus = {line["sku"] for line in sim[order.tiktok_order_id]["lines"]}
        assert {"TEE-BLK-M", "TOTE-NAT"} <= skus


def test_order_cancelled_after_sync_is_reported(sandbox, sb_cli):
    sync(sb_cli)
    sandbox.tiktok.update_order("580000000000000016", status="CANCELLED")
    code, report = sync(sb_cli)
    assert [o["tiktok_order_id"] for o in report["cancelled_after_sync"]] == ["580000000000000016"]
    r = sb_cli("sync-orders")
    r = sb_cli("orders", "--json")
    row = next(o for o in json.loads(r.stdout) if o["tiktok_order_id"] == "580000000000000016")
    assert row["state"] == "synced" and row["cancelled_after_sync"] is True
    assert shopify_orders(sandbox)["580000000000000016"] == 1


def test_unpaid_order_is_created_once_paid(sandbox, sb_cli):
    sync(sb_cli)
    link_everything(sb_cli)
    sync(sb_cli)
    assert "580000000000000008" not in shopify_orders(sandbox)
    sandbox.tiktok.update_order("580000000000000008", status="AWAITING_SHIPMENT")
    sync(sb_cli)
    assert shopify_orders(sandbox)["580000000000000008"] == 1


def test_dry_run_writes_nothing_and_creates_nothing(sandbox, sb_cli):
    sync(sb_cli)
    link_everything(sb_cli)
    store_bytes = hashlib.sha256(sandbox.store_path.read_bytes()).hexdigest()
    before = shopify_orders(sandbox)
    code, report = sync(sb_cli, "--dry-run")
    assert report["dry_run"] is True
    assert any(o["reason"] == "would be created (dry run)" for o in report["orders"])
    assert shopify_orders(sandbox) == before
    assert hashlib.sha256(sandbox.store_path.read_bytes()).hexdigest() == store_bytes


def test_order_option_and_limit(sandbox, sb_cli):
    sync(sb_cli)
    link_everything(sb_cli)
    code, report = sync(sb_cli, "--order", "580000000000000001")
    assert [o["tiktok_order_id"] for o in report["orders"]] == ["580000000000000001"]
    assert set(shopify_orders(sandbox)) == {"580000000000000001", "580000000000000016", "580000000000000017"}
    code, report = sync(sb_cli, "--limit", "2")
    assert report["synced"] == 2
    assert len(shopify_orders(sandbox)) == 5
    r = sb_cli("sync-orders", "--order", "999")
    assert r.exit_code == 1 and "no order 999" in r.stderr


def test_since_option_and_bad_since(sandbox, sb_cli):
    r = sb_cli("sync-orders", "--since", "yesterday-ish")
    assert r.exit_code == 1 and "--since" in r.stderr
    code, report = sync(sb_cli, "--since", "1m")  # the seed's orders are older than a minute
    assert report["pulled"] == 0


def test_summary_names_skus_to_link_and_points_to_list_unlinked(sandbox, sb_cli):
    r = sb_cli("sync-orders")
    assert r.exit_code == 3
    assert "Blocked by unlinked SKUs" in r.stderr and "TEE-BLK-S" in r.stderr
    assert re.search(r"`ecomsend --config \S+ list-unlinked`", r.stderr)  # pasteable: same config


def test_orders_view_filters_by_state(sandbox, sb_cli):
    sync(sb_cli)
    rows = json.loads(sb_cli("orders", "--state", "blocked", "--json").stdout)
    assert rows and all(o["state"] == "blocked" and o["missing_sku_ids"] for o in rows)
    assert set(rows[0]) >= {"tiktok_order_id", "state", "shopify_order_id", "reason", "missing_sku_ids"}
    r = sb_cli("orders", "--state", "nonsense")
    assert r.exit_code == 1 and "unknown state" in r.stderr


# --- exactly once: lost answers and search-index lag (§5.4) -------------------------------------------


def test_lost_response_is_reconciled_not_recreated(sandbox, sb_cli):
    sync(sb_cli)
    link_everything(sb_cli)
    sandbox.shopify.set_faults(index_lag_seconds=30, fail_next=[{"op": "orderCreate", "kind": "lost_response"}])
    code, report = sync(sb_cli)
    unconfirmed = [o for o in report["orders"] if o["state"] == "creating"]
    assert len(unconfirmed) == 1 and report["unconfirmed"] == 1
    lost_id = unconfirmed[0]["tiktok_order_id"]
    assert shopify_orders(sandbox)[lost_id] == 1  # Shopify did create it
    # The next run cannot see it yet (index lag) and must not create it again.
    code, report = sync(sb_cli)
    assert shopify_orders(sandbox)[lost_id] == 1
    assert store_states(sandbox)[lost_id] == "creating"
    # Once the index shows it, the next run adopts it.
    sandbox.shopify.set_faults(index_lag_seconds=0)
    code, report = sync(sb_cli)
    assert store_states(sandbox)[lost_id] == "synced"
    assert shopify_orders(sandbox)[lost_id] == 1
    with Store.open(sandbox.store_path) as store:
        row = store.orders(ids=[lost_id])[0]
    assert row.shopify_order_id and row.attempts == 1


def test_interrupted_before_sending_is_created_after_two_lookups_past_the_wait(sandbox, sb_cli, tmp_path):
    from ecomsend_cli.sync import steady_clock

    sync(sb_cli)
    link_everything(sb_cli)
    boot, now = steady_clock()
    with Store.open(sandbox.store_path) as store:  # as a crash right after the claim leaves it
        store.set_order_state("580000000000000001", "creating", attempt=True)
        store.conn.execute("UPDATE orders SET claim_id = 'c1', claim_boot = ?, claim_clock = ? "
                           "WHERE tiktok_order_id = '580000000000000001'", (boot, now - 3600))
    sync(sb_cli)  # the first lookup past the wait finds nothing: not sent yet
    assert "580000000000000001" not in shopify_orders(sandbox)
    assert store_states(sandbox)["580000000000000001"] == "creating"
    sync(sb_cli)  # absent again, on another run: never created, so it is sent
    assert shopify_orders(sandbox)["580000000000000001"] == 1
    assert store_states(sandbox)["580000000000000001"] == "synced"


# --- faults ------------------------------------------------------------------------------------------
# These drive the engine directly with the real clients over HTTP, with back-off
# shortened, so retries take milliseconds instead of the seconds an operator waits.


def engine_sync(sandbox):
    from ecomsend_cli.config import load_config
    from ecomsend_cli.errors import EcomsendError
    from ecomsend_cli.shopify import ShopifyClient
    from ecomsend_cli.sync import SyncOptions, run_sync
    from ecomsend_cli.tiktok import TikTokClient

    config = load_config(sandbox.config_file, env={})
    with Store.open(config.store) as store:
        tiktok = TikTokClient(config.tiktok, store, backoff_base=0.001, backoff_max=0.01)
        shopify = ShopifyClient(config.shopify, store, backoff_base=0.001, backoff_max=0.01)
        try:
            return run_sync(store, tiktok, shopify, config.sync, SyncOptions(reconcile_wait=60))
        except EcomsendError as exc:
            return exc
        finally:
            tiktok.close()
            shopify.close()


def test_throttling_5xx_and_token_expiry_end_in_a_complete_run(sandbox, sb_cli):
    sync(sb_cli)
    link_everything(sb_cli)
    sandbox.tiktok.expire_access_token()
    sandbox.shopify.set_faults(fail_next=[
        {"op": "orderCreate", "kind": "rate_limit"},
        {"op": "orderCreate", "kind": "error", "status": 503, "after": 2},
        {"op": "orderCreate", "kind": "error", "status": 502, "after": 3},
    ], bucket_size=60, restore_rate=80, retry_after_seconds=0)
    sandbox.tiktok.set_faults(fail_next=[{"op": "orders.search", "kind": "error", "status": 500}])
    first = engine_sync(sandbox)
    assert first.count("synced") >= 10
    faults = [e["fault"] for e in sandbox.shopify.ops("orderCreate")]
    assert "rate_limit" in faults and "error" in faults  # the faults really fired
    engine_sync(sandbox)  # anything failed by a 5xx is retried on the next run
    counts = shopify_orders(sandbox)
    assert max(counts.values()) == 1
    states = store_states(sandbox)
    assert Counter(states.values())["synced"] == len(counts) >= 16
    assert Counter(states.values())["failed"] == 1  # only the socks, refused for stock


def test_tiktok_page_failing_midway_loses_nothing(sandbox, sb_cli):
    extra = []
    base = sandbox.tiktok.order("580000000000000001")
    for i in range(120):
        order = json.loads(json.dumps(base))
        order["id"] = f"59{i:016d}"
        order["update_time"] = base["update_time"] + i
        for n, line in enumerate(order["line_items"]):
            line["id"] = f"{order['id']}{n}"
        extra.append(order)
    sandbox.tiktok.add_orders(extra)
    sandbox.tiktok.set_faults(fail_next=[{"op": "orders.search", "kind": "drop", "after": 1, "count": 20}])
    from ecomsend_cli.errors import NetworkError

    assert isinstance(engine_sync(sandbox), NetworkError)  # fails cleanly, after retries
    with Store.open(sandbox.store_path) as store:
        pulled_first = len(store.orders())
    everything = len(extra) + len(demo_seed()["tiktok_orders"])
    assert 0 < pulled_first < everything  # the first page was kept
    sandbox.tiktok.set_faults(reset=True)
    report = engine_sync(sandbox)
    assert report.pulled >= everything - pulled_first
    with Store.open(sandbox.store_path) as store:
        assert len(store.orders()) == everything


# --- one run at a time ---------------------------------------------------------------------------------


def test_second_run_exits_75_while_the_lock_is_held(sandbox):
    from ecomsend_cli.sync import SyncLock

    with Store.open(sandbox.store_path) as store, SyncLock(store):
        out = subprocess.run(python_cmd("--config", str(sandbox.config_file), "sync-orders"),
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 75
    assert "another sync-orders is running" in out.stderr
    assert not shopify_orders(sandbox)


def test_lock_left_by_a_killed_run_does_not_block(sandbox, tmp_path):
    Store.open(sandbox.store_path).close()
    lock = str(sandbox.store_path)  # the lock is the store file's own
    holder = subprocess.Popen(
        ["python3", "-c", f"import fcntl,os,time; fd=os.open({lock!r}, os.O_RDONLY); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    out = subprocess.run(python_cmd("--config", str(sandbox.config_file), "sync-orders"),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 3, out.stderr


@pytest.mark.slow
def test_two_runs_started_together(sandbox):
    sandbox.shopify.set_faults(latency_ms=30)
    results = []

    def run():
        results.append(subprocess.run(python_cmd("--config", str(sandbox.config_file), "sync-orders"),
                                      capture_output=True, text=True, timeout=120))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Whether the two overlap depends on the machine's load (the test below makes them overlap):
    # either the second sees the first's lock (75) or it runs after it (3); never both create.
    codes = sorted(r.returncode for r in results)
    assert codes in ([3, 3], [3, 75]), [r.stderr for r in results]
    assert max(shopify_orders(sandbox).values()) == 1


def test_a_run_started_while_another_runs_does_nothing_and_says_so(sandbox):
    sandbox.shopify.set_faults(latency_ms=300)  # the first run takes seconds, not the second's start-up
    argv = python_cmd("--config", str(sandbox.config_file), "sync-orders")
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "pulled" in first.stderr.readline()  # it holds the run's lock by its first line
        second = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert second.returncode == 75, second.stderr
        assert "another sync-orders is running" in second.stderr and "this run did nothing" in second.stderr
    finally:
        first.communicate(timeout=120)
    assert first.returncode == 3
    assert max(shopify_orders(sandbox).values()) == 1


def test_progress_bar_on_a_terminal_and_plain_lines_otherwise(sandbox, sb_cli):
    from tests.terminal import Terminal

    sandbox.shopify.set_faults(latency_ms=40)
    term = Terminal("--config", str(sandbox.config_file), "sync-orders")
    assert term.wait(timeout=60) == 3
    assert "━" in term.seen  # Rich's bar
    seeded = len(demo_seed()["tiktok_orders"])
    assert f"pulled {seeded} order(s) from TikTok" not in term.screen  # no log lines on a terminal
    r = sb_cli("sync-orders")  # piped: plain, timestamped log lines
    assert "order(s) from TikTok" in r.stderr and "━" not in r.stderr


def test_missing_shopify_config_fails_before_any_order_is_marked(sandbox, sb_cli, tmp_path):
    import os

    import yaml

    sync(sb_cli)
    link_everything(sb_cli)
    data = yaml.safe_load(sandbox.config_file.read_text())
    del data["shopify"]
    path = tmp_path / "tiktok-only.yaml"
    path.write_text(yaml.safe_dump(data))
    os.chmod(path, 0o600)
    r = sb_cli("--config", str(path), "sync-orders")
    assert r.exit_code == 1 and "Shopify is not configured" in r.stderr
    assert "creating" not in store_states(sandbox).values()


def test_a_run_with_nothing_to_do_polls_each_phase_once_and_imports_only_what_it_needs(tmp_path):
    """Cron runs sync-orders every few minutes, mostly to find nothing: one poll per phase
    (orders, cancellations, returns), and no start-up cost for what such a run never uses —
    Rich (a plain line goes to the log), httpx's command line, the Shopify client."""
    import sys

    from ecomsend_cli.sandbox import Sandbox

    with Sandbox(tmp_path / "sandbox", "demo", tiktok_options={"orders": []}) as box:
        config = box.write_config()
        first = subprocess.run(python_cmd("--config", str(config), "sync-orders"), capture_output=True, text=True)
        assert first.returncode == 0, first.stderr
        before = len(box.shopify.ops()), len(box.tiktok.ops())
        code = (
            "import sys\n"
            f"sys.argv = ['ecomsend', '--config', {str(config)!r}, 'sync-orders']\n"
            "import typer\n"  # what typer needs itself (older typers import click) is not ours to spare
            "base = set(sys.modules)\n"
            "from ecomsend_cli.cli import main\n"
            "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
            "print('LOADED', sorted({m for m in set(sys.modules) - base if m.split('.')[0] in ('rich', 'click',"
            " 'pygments') or m in ('ecomsend_cli.shopify', 'ecomsend_cli.shopify_records', 'sqlite_utils')}))\n"
        )
        second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        polls = [e["op"] for e in [*box.shopify.ops()[before[0]:], *box.tiktok.ops()[before[1]:]]]
    assert second.returncode == 0, second.stderr
    assert "LOADED []" in second.stdout
    assert second.stderr == first.stderr == "pulled 0; synced 0, blocked 0, failed 0, skipped 0, waiting 0.\n"
    assert sorted(polls) == ["cancellations.search", "orders.search", "returns.search"]


def test_a_run_with_nothing_new_reads_no_catalog_table_whole(synced, sandbox, sb_cli, monkeypatch):
    """A grown shop holds 100,000s of TikTok SKUs, links and cached variants; cron runs
    sync-orders every few minutes, mostly to find nothing. Such a run must not read those
    tables whole (a shop's 100,000 links made every run 0.16 s slower and 60 MB bigger):
    each of its statements reaches them by key, or through a partial index of the few rows
    it concerns. Checked on SQLite's own plan of every statement the run executed."""
    import sqlite3

    executed: list[str] = []
    real_open = Store.open.__func__

    def traced_open(cls, *args, **kwargs):
        store = real_open(cls, *args, **kwargs)
        store.conn.set_trace_callback(executed.append)
        return store

    monkeypatch.setattr(Store, "open", classmethod(traced_open))
    code, report = sync(sb_cli)
    assert report["synced"] == 0, report  # the demo keeps some orders blocked and one failed: exit 3
    monkeypatch.undo()
    catalog = ("links", "tiktok_skus", "shopify_variants", "link_history")
    alias = re.compile(rf"\b({'|'.join(catalog)})\b(?:\s+(?:AS\s+)?(?!ON\b|WHERE\b|LEFT\b|JOIN\b|USING\b)(\w+))?", re.I)
    partial = {name for (name,) in sqlite3.connect(sandbox.store_path).execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '%WHERE%'")}
    conn = sqlite3.connect(sandbox.store_path)
    whole = []
    selects = [sql for sql in executed if sql.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert any("tiktok_skus" in sql for sql in selects)  # the run does ask about the SKUs
    for sql in selects:
        names = {m.group(2) or m.group(1): m.group(1) for m in alias.finditer(sql)}
        for *_, detail in conn.execute("EXPLAIN QUERY PLAN " + sql):
            step = re.match(r"SCAN (\w+)(?: USING (?:COVERING )?INDEX (\w+))?", detail)
            if step and step.group(1) in names and step.group(2) not in partial:
                whole.append(f"{names[step.group(1)]}: {detail} in {sql[:160]}")
    assert not whole, "\n".join(whole)


@pytest.mark.parametrize("stamp", ["older version", "another boot", "clock went back"])
def test_an_unconfirmed_order_stamped_on_a_clock_not_ours_waits_again_from_now(sandbox, sb_cli, stamp):
    """A `creating` order whose claim time cannot be read on this run's clock — no stamp (an older
    version), another boot's, or ahead of ours (a wall clock stepped back, where there is no boot
    clock) — is neither sent again nor held for that gap: its wait starts again from now (§5.4)."""
    from ecomsend_cli.sync import steady_clock

    sync(sb_cli)
    link_everything(sb_cli)
    boot, now = steady_clock()
    claim = {"older version": (None, None), "another boot": ("another-boot-id", now - 3600),
             "clock went back": (boot, now + 3600)}[stamp]
    with Store.open(sandbox.store_path) as store:  # as a crash right after the claim leaves it
        store.set_order_state("580000000000000001", "creating", attempt=True)
        store.conn.execute("UPDATE orders SET claim_id = 'c1', claim_boot = ?, claim_clock = ? "
                           "WHERE tiktok_order_id = '580000000000000001'", claim)
    _, report = sync(sb_cli)
    later = steady_clock()[1]
    assert "580000000000000001" not in shopify_orders(sandbox)
    (mine,) = [o for o in report["orders"] if o["tiktok_order_id"] == "580000000000000001"]
    assert (mine["state"], mine["reason"]) == ("creating", "sent to Shopify, not found yet; the machine restarted "
                                               "or its clock went back since, so the 60 s wait starts again "
                                               "before it may be sent again")
    with Store.open(sandbox.store_path) as store:
        stamped = store.conn.execute("SELECT claim_boot, claim_clock FROM orders "
                                     "WHERE tiktok_order_id = '580000000000000001'").fetchone()
    assert stamped[0] == boot and now <= stamped[1] <= later, stamped
