"""The sandbox runner: both simulators at once, the config it writes, ``serve``, the demo seed."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import unicodedata
from collections import Counter
from pathlib import Path

import httpx
import pytest
import yaml

from ecomsend_cli.config import ALL_STATUSES, load_config
from ecomsend_cli.models import MemoryTokenCache
from ecomsend_cli.sandbox import Sandbox, demo_seed, serve
from ecomsend_cli.shopify import ShopifyClient
from ecomsend_cli.tiktok import TikTokClient

NOW = 1_790_000_000


def fold(code: str) -> str:
    return unicodedata.normalize("NFKC", code).strip().casefold()


# -- the demo seed ------------------------------------------------------------------------------

def test_demo_seed_tells_the_whole_story() -> None:
    seed = demo_seed(NOW)
    shopify_variants = [v for p in seed["shopify_products"] for v in p["variants"]]
    by_code = Counter(fold(v["sku"]) for v in shopify_variants if v["sku"].strip())
    tiktok_skus = {s["id"]: s for p in seed["tiktok_products"] for s in p["skus"]}
    orders = seed["tiktok_orders"]

    assert 10 <= len(seed["shopify_products"]) <= 20 and 10 <= len(seed["tiktok_products"]) <= 20
    assert 20 <= len(orders) <= 40
    assert {o["status"] for o in orders} == set(ALL_STATUSES)
    assert all(NOW - 7 * 86400 < o["update_time"] <= NOW for o in orders)
    assert len({o["id"] for o in orders}) == len(orders)

    codes = [s["seller_sku"] for s in tiktok_skus.values()]
    assert any(by_code[fold(c)] >= 2 for c in codes if c.strip())            # ambiguous
    assert "ab-100 " in codes and by_code["ab-100"] == 1                     # case + space
    assert "" in codes and any(v["sku"] == "" for v in shopify_variants)     # empty SKUs
    assert any(c.strip() and by_code[fold(c)] == 0 for c in codes)           # no variant
    assert Counter(codes).most_common(1)[0][1] >= 2                          # duplicated seller_sku

    variant_ids = {str(v["id"]) for v in shopify_variants}
    published = [s for s in tiktok_skus.values() if s.get("external_sku_id")]
    assert published and all(s["external_sku_id"] in variant_ids for s in published)

    lines = [line for o in orders for line in o["line_items"]]
    assert all(line["sku_id"] in tiktok_skus for line in lines)
    per_order = [Counter(line["sku_id"] for line in o["line_items"]) for o in orders]
    assert any(max(c.values()) >= 3 for c in per_order)                      # multi-unit
    combined = [line for line in lines if line.get("combined_listing_skus")]
    assert combined
    assert all(part["sku_id"] in tiktok_skus for line in combined for part in line["combined_listing_skus"])
    assert demo_seed(NOW) == seed  # deterministic for a given clock


# -- Sandbox --------------------------------------------------------------------------------------

def test_sandbox_config_loads_and_both_clients_work(tmp_path: Path) -> None:
    with Sandbox(tmp_path / "box", now=None) as box:
        path = box.write_config()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        config = load_config(path, env={})
        assert config.store == tmp_path / "box" / "ecomsend.db"
        assert config.warnings == ()
        assert config.shopify.configured and config.tiktok.configured

        cache = MemoryTokenCache()
        with TikTokClient(config.tiktok, cache) as tiktok:
            pages = list(tiktok.search_orders(update_time_ge=0))
            assert sum(len(p) for p in pages) == len(demo_seed()["tiktok_orders"])
            hoodie = next(p for p in tiktok.search_products() if p["title"] == "Cozy Hoodie")
            assert tiktok.get_product(hoodie["id"])["skus"][0]["external_sku_id"] == "44101"

        shopify = ShopifyClient(config.shopify, cache)
        try:
            skus = {v.sku for v in shopify.iter_variants()}
        finally:
            shopify.close()
        assert {"TEE-BLK-M", "AB-100", "MUG-TRAVEL"} <= skus


def test_sandbox_without_seed_is_empty_and_keeps_state_across_restarts(tmp_path: Path) -> None:
    with Sandbox(tmp_path, seed="none") as box:
        first = box.config_dict()
        assert box.tiktok.ops() == []
        with TikTokClient(load_config(box.write_config(), env={}).tiktok, MemoryTokenCache()) as client:
            assert list(client.search_orders(update_time_ge=0)) == []
        box.tiktok.add_orders([{"id": "1", "line_items": [{"sku_id": "A", "quantity": 2}]}])
    with Sandbox(tmp_path, seed="demo") as again:  # existing state wins over the seed
        assert again.config_dict()["tiktok"]["app_key"] == first["tiktok"]["app_key"]
        assert len(again.tiktok.order("1")["line_items"]) == 2
        assert again.tiktok.order("580000000000000001") is None


def test_unknown_seed_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="demo"):
        Sandbox(tmp_path, seed="huge")


# -- serve ------------------------------------------------------------------------------------------

def test_serve_calls_ready_with_the_config_and_stops_on_request(tmp_path: Path) -> None:
    stop = threading.Event()
    got: list[str] = []

    def ready(text: str) -> None:
        got.append(text)
        stop.set()

    worker = threading.Thread(target=serve, args=(tmp_path, "demo", 0, 0, ready), kwargs={"stop": stop})
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive()
    config = yaml.safe_load(got[0])
    assert config["tiktok"]["api_base_url"].startswith("http://127.0.0.1:")
    assert (tmp_path / "ecomsend.yaml").read_text() == got[0]
    with pytest.raises(httpx.TransportError):  # stopped: nothing listens any more
        httpx.get(config["tiktok"]["api_base_url"] + "/_sandbox/state", timeout=2)


@pytest.mark.slow
def test_python_m_sandbox_serve_runs_in_its_own_process_until_sigterm(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecomsend_cli.sandbox", "serve", "--dir", str(tmp_path), "--seed", "demo"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=repo,
    )
    try:
        assert proc.stdout is not None
        text = ""
        while "shop_cipher" not in text:  # the config is the last key printed
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "no output"
            text += line
        config = yaml.safe_load(text)
        url = config["tiktok"]["api_base_url"]
        state = httpx.get(url + "/_sandbox/state", timeout=5).json()
        assert state["orders"] == len(demo_seed()["tiktok_orders"])
        httpx.post(url + "/_sandbox/faults", json={"latency_ms": 1}, timeout=5).raise_for_status()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "sandbox running" in err
