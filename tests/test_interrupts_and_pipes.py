"""Interrupts and failures (issue 12 item 9): Ctrl-C during sync-orders says what was done,
`orders` explains `creating` rows, a closed pipe is no error, the demo leaves no progress-bar
frames, and `history` names the login when $USER is unset."""

from __future__ import annotations

import json
import os
import pwd
import re
import signal
import subprocess
import sys
import time

import pytest

from ecomsend_cli.store import Store
from tests.conftest import python_cmd, without_options
from tests.factory import order, sku


def test_orders_piped_into_head_exits_0_quietly(store_path):
    with Store.open(store_path) as store:  # far more than a pipe's buffer holds
        store.record_orders([(order(f"O{n:05d}", [sku("1", "A")]), "blocked", "1 unlinked SKU(s): 1", False)
                             for n in range(3000)])
    for args in (["orders"], ["orders", "--json"], ["orders", "--state", "blocked"]):
        proc = subprocess.Popen(python_cmd("--store", str(store_path), *args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        first = proc.stdout.readline()  # what `| head -1` reads, then it closes the pipe
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 0, (args, err)
        assert first and err == "", args


def test_history_names_the_login_when_user_is_unset(store_path, cli):
    from tests.factory import variant
    with Store.open(store_path) as store:
        store.upsert_variants([variant(11, "A-1")])
        store.upsert_tiktok_skus([sku("t1", "A-1")])
    gone = {"USER": None, "LOGNAME": None, "USERNAME": None}
    assert cli("link", "t1", "gid://shopify/ProductVariant/11", env=gone).exit_code == 0
    (row,) = json.loads(cli("history", "--json").stdout)
    assert row["actor"] == pwd.getpwuid(os.getuid()).pw_name != "unknown"


def test_orders_explains_a_creating_row(store_path, cli):
    with Store.open(store_path) as store:
        store.record_orders([(order("O1", [sku("1", "A")]), "pending", "", False)])
        # What a claim leaves when its run is gone before Shopify answered (Ctrl-C, a crash).
        store.set_order_state("O1", "creating", reason="sent to Shopify; waiting for the answer", unless=())
    (row,) = json.loads(cli("orders", "--json").stdout)
    assert row["state"] == "creating"
    assert row["reason"].startswith("sent, answer not confirmed yet: looked up in Shopify on the next run")
    assert "answer not confirmed yet" in cli("orders").stdout


def test_ctrl_c_during_sync_orders_says_what_was_done(sandbox, sb_cli):
    assert sb_cli("sync-orders").exit_code == 3
    assert sb_cli("autolink", "--yes").exit_code == 0
    ready = len(json.loads(sb_cli("orders", "--state", "ready", "--json").stdout))
    with Store.open(sandbox.store_path) as store:
        synced_before = store.order_counts()["synced"]
    # The fifth orderCreate is handled by Shopify, then its answer hangs: the run is mid-way.
    sandbox.shopify.set_faults(fail_next=[{"op": "orderCreate", "kind": "hang", "after": 4, "hang_seconds": 4}])
    proc = subprocess.Popen(python_cmd("--config", str(sandbox.config_file), "sync-orders"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        give_up = time.monotonic() + 60
        while sandbox.shopify.faults.snapshot()["fail_next"] and time.monotonic() < give_up:
            time.sleep(0.02)
        assert proc.poll() is None and not sandbox.shopify.faults.snapshot()["fail_next"]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    with Store.open(sandbox.store_path) as store:
        counts = store.order_counts()
    last = err.strip().splitlines()[-1]
    match = re.fullmatch(r"error: interrupted: created (\d+) of (\d+); (\d+) being confirmed \(sent, answer "
                         r"not confirmed yet: looked up in Shopify on the next run, never sent twice\); "
                         r"safe to rerun `ecomsend sync-orders`", without_options(last))
    assert match, err
    created, total, confirming = map(int, match.groups())
    assert total == ready and created == counts["synced"] - synced_before
    # Five were sent (four answered, one hanging): each is created or being confirmed.
    assert confirming == counts["creating"] >= 1 and 5 <= created + confirming <= total
    shown = json.loads(sb_cli("orders", "--state", "creating", "--json").stdout)
    assert len(shown) == confirming and all("looked up in Shopify on the next run" in o["reason"] for o in shown)


@pytest.mark.slow
def test_demo_on_a_terminal_leaves_no_progress_bar_frames(tmp_path):
    from tests.terminal import Terminal

    term = Terminal("demo", cwd=tmp_path, env={"COLUMNS": "120"})
    assert term.wait(timeout=180) == 0, term.screen
    assert "What happened" in term.screen
    assert "Pulling TikTok orders" not in term.screen and "Creating Shopify orders" not in term.screen
    assert "[2K" not in term.screen and "[1A" not in term.screen  # a bar's redraws, escape stripped


if sys.platform == "win32":  # pragma: no cover - pty and SIGINT are POSIX
    pytestmark = pytest.mark.skip("POSIX only")
