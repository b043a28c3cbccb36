"""catalog refresh, doctor, sandbox serve and secrets, against the simulators over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import yaml

from ecomsend_cli.store import Store
from tests.conftest import python_cmd


def cached_skus(path) -> dict[str, str]:
    with Store.open(path) as store:
        return {v.variant_id: v.sku for v in store.iter_variants()}


def test_catalog_refresh_full_then_incremental(sandbox, sb_cli):
    r = sb_cli("catalog", "refresh", "--full", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["mode"] == "full"
    sim_variants = {v["variant_id"]: v["sku"] for v in sandbox.shopify.inventory()}
    assert cached_skus(sandbox.store_path) == sim_variants
    sandbox.shopify.add_products([{
        "id": 9999, "title": "New Lamp", "status": "ACTIVE", "updated_at": "2099-01-01T00:00:00Z",
        "variants": [{"id": 99991, "title": "Brass", "sku": "LAMP-1", "price": "40.00",
                      "inventory_item_id": 99991, "inventory_quantity": 3, "inventory_policy": "DENY"}],
    }])
    r = sb_cli("catalog", "refresh", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["mode"] == "incremental"
    assert cached_skus(sandbox.store_path)["gid://shopify/ProductVariant/99991"] == "LAMP-1"


def test_linking_commands_refresh_a_stale_cache_themselves(sandbox, sb_cli):
    first = sb_cli("sync-orders")
    assert first.exit_code == 3
    # The feed-published hoodie names a variant not cached yet: sync refreshed the cache.
    assert "Refreshing the Shopify catalog cache" in first.stderr
    with Store.open(sandbox.store_path) as store:
        store.set_state("catalog.refreshed_at", "2000-01-01T00:00:00Z")  # two decades stale
        store.conn.execute("DELETE FROM shopify_variants")
    r = sb_cli("list-unlinked", "--json")
    assert r.exit_code == 0, r.stderr
    assert "Refreshing the Shopify catalog cache" in r.stderr
    rows = {row["seller_sku"]: row for row in json.loads(r.stdout)}
    assert rows["TEE-BLK-S"]["suggestion"]["status"] == "match"
    assert rows["MUG-TRAVEL"]["suggestion"]["status"] == "ambiguous"
    again = sb_cli("list-unlinked", "--json")
    assert "Refreshing" not in again.stderr  # fresh now


def test_doctor_all_good(sandbox, sb_cli):
    r = sb_cli("doctor", "--json")
    assert r.exit_code == 0, r.stdout + r.stderr
    checks = {c["check"]: c for c in json.loads(r.stdout)["checks"]}
    assert all(c["ok"] for c in checks.values())
    assert "write_orders" in checks["shopify"]["detail"]


def _config_with(sandbox, tmp_path, **changes):
    data = yaml.safe_load(sandbox.config_file.read_text())
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        data[section][key] = value
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    os.chmod(path, 0o600)
    return path


def test_doctor_says_what_to_fix(sandbox, cli, tmp_path):
    path = _config_with(sandbox, tmp_path, shopify__access_token="shpat_wrong_token_123",
                        tiktok__app_secret="not-the-secret-456")
    r = cli("--config", str(path), "doctor", "--json", store=None)
    assert r.exit_code == 1
    checks = {c["check"]: c for c in json.loads(r.stdout)["checks"]}
    assert checks["store"]["ok"]
    assert not checks["shopify"]["ok"] and "access_token" in checks["shopify"]["fix"]
    assert not checks["tiktok"]["ok"] and "app_secret" in (checks["tiktok"]["fix"] + checks["tiktok"]["detail"])
    assert "shpat_wrong_token_123" not in r.output and "not-the-secret-456" not in r.output


def test_bad_app_secret_is_a_clear_auth_error(sandbox, cli, tmp_path):
    path = _config_with(sandbox, tmp_path, tiktok__app_secret="wrong-secret-789")
    r = cli("--config", str(path), "sync-orders", store=None)
    assert r.exit_code == 1
    assert r.stderr.startswith("error: ") and "app_secret" in r.stderr
    assert "Traceback" not in r.stderr and "wrong-secret-789" not in r.output


def test_no_secret_in_any_output(sandbox, sb_cli, tmp_path):
    secrets = [str(v) for section in ("shopify", "tiktok")
               for k, v in yaml.safe_load(sandbox.config_file.read_text())[section].items()
               if k in ("access_token", "app_secret", "refresh_token", "client_secret")]
    assert len(secrets) == 4
    sandbox.tiktok.expire_access_token()  # forces a refresh: its URL carries the secrets
    outputs = []
    for args in (["-v", "sync-orders"], ["-v", "catalog", "refresh", "--full"], ["config", "show"],
                 ["config", "show", "--json"], ["doctor"], ["-v", "autolink", "--yes"],
                 ["-v", "sync-orders", "--json"], ["orders", "--json"]):
        r = sb_cli(*args)
        assert r.exit_code in (0, 3), (args, r.stderr)
        outputs.append(r.stdout + r.stderr)
    everything = "\n".join(outputs)
    for secret in secrets:
        assert secret not in everything
    assert "********" in everything


def test_sandbox_serve_prints_a_working_config(tmp_path):
    folder = tmp_path / "sb"
    proc = subprocess.Popen(python_cmd("sandbox", "serve", "--dir", str(folder), "--seed", "demo"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("  shop_cipher"):
                break
        config = yaml.safe_load("".join(lines))
        assert config["shopify"]["shop"].startswith("http://127.0.0.1:")
        cfg = tmp_path / "c.yaml"
        cfg.write_text("".join(lines))
        os.chmod(cfg, 0o600)
        out = subprocess.run(python_cmd("--config", str(cfg), "doctor", "--json"),
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_commands_needing_an_api_say_how_to_configure_it(cli, tmp_path):
    r = cli("sync-orders")
    assert r.exit_code == 1
    assert "TikTok Shop is not configured" in r.stderr and "config.example.yaml" in r.stderr
    r = cli("catalog", "refresh")
    assert r.exit_code == 1 and "Shopify is not configured" in r.stderr


def test_a_catalog_record_not_shaped_as_documented_is_left_out_and_the_rest_refreshed(sandbox, sb_cli):
    # A product title no shop can have (5,000 characters): the product record is refused with
    # the reason, the refresh ends well, and its variant (a record of its own) is kept.
    sandbox.shopify.add_products([{"id": 9901, "title": "T" * 5000, "status": "ACTIVE", "variants": [
        {"id": 99011, "title": "Only", "sku": "HUGE-1", "price": "1.00", "inventory_item_id": 99011,
         "inventory_quantity": 1, "inventory_policy": "DENY"}]}])
    r = sb_cli("catalog", "refresh", "--full")
    assert r.exit_code == 0, r.stderr
    assert "1 catalog record from Shopify was not shaped as documented and left out of the cache" in r.stderr
    assert "gid://shopify/Product/9901" in r.stderr and "T" * 200 not in r.stderr
    with Store.open(sandbox.store_path) as store:
        (huge,) = store.variants_by_sku("HUGE-1")
        assert huge.product_title == "" and huge.variant_title == "Only"
        assert store.variants_by_sku("TEE-BLK-M")  # the rest of the catalog is there
    doc = json.loads(sb_cli("catalog", "refresh", "--full", "--json").stdout)
    assert doc["refused"] == 1 and "gid://shopify/Product/9901" in doc["refused_examples"][0]
