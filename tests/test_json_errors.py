"""`--json` always prints JSON, also on failure; `list-unlinked` works without Shopify (issue 15 item 9).

On any handled failure a command called with `--json` prints one JSON document on stdout,
``{"error": {"message", "hint", "exit_code"}}``, exits with the documented code, and still says
what went wrong in one line on stderr.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time

import pytest

from ecomsend_cli.store import LinkChange, Store
from ecomsend_cli.sync import SyncLock
from tests.conftest import python_cmd
from tests.factory import order, sku, variant

V = "gid://shopify/ProductVariant/"


def error_document(stdout: str, exit_code: int) -> dict:
    """The one JSON document on stdout, checked to be an error document; returns its ``error``."""
    data = json.loads(stdout)  # exactly one document, nothing else
    assert set(data) == {"error"}
    error = data["error"]
    assert set(error) == {"message", "hint", "exit_code"}
    assert error["exit_code"] == exit_code
    assert isinstance(error["message"], str) and error["message"]
    return error


def one_line_on_stderr(stderr: str, *needles: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for needle in needles:
        assert needle in lines[0]


def test_a_broken_config_is_a_json_error(cli, tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text("shopfy:\n  shop: x\n")
    os.chmod(config, 0o600)
    r = cli("--config", str(config), "list-unlinked", "--json")
    assert r.exit_code == 1
    error = error_document(r.stdout, 1)
    assert "unknown key 'shopfy'" in error["message"]
    one_line_on_stderr(r.stderr, "unknown key 'shopfy'")


def test_autolink_json_without_dry_run_or_yes_is_a_json_error(cli, store_path):
    Store.open(store_path).close()
    r = cli("autolink", "--json")
    assert r.exit_code == 1
    error = error_document(r.stdout, 1)
    assert error["message"] == "autolink --json needs --dry-run or --yes"
    assert error["hint"] == (f"`ecomsend --store {store_path} autolink --dry-run --json` previews, "
                             "`--yes --json` links")
    one_line_on_stderr(r.stderr, "--dry-run or --yes")


@pytest.mark.parametrize("content", [b"this is not a database, just text\n" * 200, b"sqlite"])
def test_links_json_on_a_file_that_is_no_store_is_a_json_error(cli, tmp_path, content):
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    r = cli("links", "--json", store=path)
    assert r.exit_code == 1
    error = error_document(r.stdout, 1)
    assert str(path) in error["message"] and error["hint"]
    one_line_on_stderr(r.stderr, str(path))


def test_links_json_on_a_sqlite_file_of_another_program_is_a_json_error(cli, tmp_path):
    import sqlite3

    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    r = cli("links", "--json", store=path)
    error = error_document(r.stdout, 1)
    assert "not an ecomsend store" in error["message"] and error["hint"] == "point --store at another file"


def test_sync_orders_json_while_the_lock_is_held_exits_75_with_a_json_error(sandbox, sb_cli):
    with Store.open(sandbox.store_path) as store, SyncLock(store):
        r = sb_cli("sync-orders", "--json")
    assert r.exit_code == 75
    error = error_document(r.stdout, 75)
    assert "another sync-orders is running" in error["message"]
    one_line_on_stderr(r.stderr, "another sync-orders is running")


def test_a_usage_error_raised_by_the_command_is_a_json_error_with_exit_2(cli, store_path):
    r = cli("link", "--json")
    assert r.exit_code == 2
    error = error_document(r.stdout, 2)
    assert "--csv" in error["message"]


def test_a_command_that_printed_its_own_document_prints_no_second_one(cli, store_path, tmp_path):
    with Store.open(store_path) as store:
        store.replace_variants([variant(1, "A-1")])
        store.record_order(order("o1", [sku("t1", "A-1")]), state="blocked")
    bad = tmp_path / "links.csv"
    bad.write_text("tiktok_sku_id,shopify_variant_id\nt1,1\nnope,1\n")
    r = cli("link", "--csv", str(bad), "--json")
    assert r.exit_code == 1
    data = json.loads(r.stdout)  # the plan with its invalid rows: still one document
    assert data["invalid"][0]["line"] == 3 and "error" not in data


def test_answering_no_with_json_prints_a_json_document_and_exits_0(store_path, tmp_path):
    with Store.open(store_path) as store:
        store.replace_variants([variant(1, "A-1"), variant(2, "B-2")])
        store.record_order(order("o1", [sku("t1", "A-1")]), state="blocked")
        store.apply_links([LinkChange("t1", V + "1")], source="auto", actor="x")
    relink = tmp_path / "relink.csv"
    relink.write_text("tiktok_sku_id,shopify_variant_id\nt1,2\n")
    master, slave = pty.openpty()  # the operator at a terminal; stdout piped to a script
    proc = subprocess.Popen(python_cmd("--store", str(store_path), "link", "--csv", str(relink), "--json"),
                            stdin=slave, stdout=subprocess.PIPE, stderr=slave, close_fds=True)
    os.close(slave)
    try:
        seen = b""
        while b"[y/N]" not in seen:
            chunk = os.read(master, 65536)
            assert chunk, seen
            seen += chunk
        os.write(master, b"n\n")
        out, _ = proc.communicate(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    error = error_document(out.decode(), 0)
    assert error["message"] == "Nothing changed."
    with Store.open(store_path) as store:
        assert store.link("t1").shopify_variant_id == V + "1"


def _stale_sandbox_store(sandbox, sb_cli) -> None:
    """Orders pulled and the catalog cached, then the cache made three hours old."""
    assert sb_cli("sync-orders").exit_code == 3
    with Store.open(sandbox.store_path) as store:
        three_hours_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3 * 3600 - 60))
        store.set_state("catalog.refreshed_at", three_hours_ago)


def test_ctrl_c_with_json_prints_a_json_document_and_exits_130(sandbox, sb_cli):
    _stale_sandbox_store(sandbox, sb_cli)
    sandbox.shopify.set_faults(fail_next=[{"kind": "hang", "hang_seconds": 60}])
    proc = subprocess.Popen(python_cmd("--config", str(sandbox.config_file), "list-unlinked", "--json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        give_up = time.monotonic() + 60
        while sandbox.shopify.faults.snapshot()["fail_next"] and time.monotonic() < give_up:
            time.sleep(0.02)  # until its catalog refresh is the one left hanging
        assert proc.poll() is None and not sandbox.shopify.faults.snapshot()["fail_next"]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    error = error_document(out, 130)
    assert error["message"] == "interrupted; nothing more was written"
    assert "Traceback" not in err


# --- list-unlinked from the local store when Shopify cannot be reached -------------------------


@pytest.mark.parametrize("outage", ["stopped", "drops every request"])
def test_list_unlinked_lists_from_the_cache_when_shopify_is_unreachable(sandbox, sb_cli, outage):
    _stale_sandbox_store(sandbox, sb_cli)
    with Store.open(sandbox.store_path) as store:
        cached = store.variant_count()
        refreshed_at = store.get_state("catalog.refreshed_at")
    if outage == "stopped":
        sandbox.shopify.stop()
    else:
        sandbox.shopify.set_faults(drop_rate=1.0)

    r = sb_cli("list-unlinked", "--json")
    assert r.exit_code == 0, r.stderr
    rows = {row["seller_sku"]: row for row in json.loads(r.stdout)}
    assert rows["MUG-TRAVEL"]["suggestion"]["status"] == "ambiguous"  # from the cached catalog
    assert rows["TEE-BLK-S"]["suggestion"]["status"] == "match"
    warning = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1, r.stderr
    assert "could not refresh the Shopify catalog cache" in warning[0]
    assert "refreshed 3 h 1 min ago" in warning[0] and "may be stale" in warning[0]
    assert "catalog refresh` once Shopify can be reached" in warning[0]

    table = sb_cli("list-unlinked")
    assert table.exit_code == 0 and "may be stale" in table.stderr
    assert any(line.split("\t")[3] == "TEE-BLK-S" for line in table.stdout.splitlines()[1:])
    with Store.open(sandbox.store_path) as store:  # the cache is left as it was
        assert store.variant_count() == cached
        assert store.get_state("catalog.refreshed_at") == refreshed_at


def test_refused_shopify_credentials_fail_catalog_refresh_but_not_the_listing(sandbox, sb_cli, cli, tmp_path):
    import yaml

    _stale_sandbox_store(sandbox, sb_cli)
    data = yaml.safe_load(sandbox.config_file.read_text())
    data["shopify"]["access_token"] = "shpat_revoked_000"
    config = tmp_path / "revoked.yaml"
    config.write_text(yaml.safe_dump(data))
    os.chmod(config, 0o600)
    r = cli("--config", str(config), "catalog", "refresh", "--json", store=None)
    assert r.exit_code == 1
    assert "Shopify" in error_document(r.stdout, 1)["message"]
    r = cli("--config", str(config), "list-unlinked", "--json", store=None)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout) and "may be stale" in r.stderr
    assert "shpat_revoked_000" not in r.output


if sys.platform == "win32":  # pragma: no cover - pty and SIGINT are POSIX
    pytestmark = pytest.mark.skip("POSIX only")
