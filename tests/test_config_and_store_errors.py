"""Bad input: each a one-line error, exit 1, nothing written (DESIGN §7, store)."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from ecomsend_cli.config import Secret, load_config
from ecomsend_cli.errors import ConfigError
from ecomsend_cli.store import SCHEMA_VERSION, Store


def write(path, text, mode=0o600):
    path.write_text(text)
    os.chmod(path, mode)
    return path


def one_line_error(r, *needles):
    assert r.exit_code == 1, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "text, needles",
    [
        ("shopify: [unclosed\n", ["not valid YAML", "line"]),
        ("shopfy:\n  shop: x\n", ["unknown key 'shopfy'"]),
        ("shopify:\n  shopp: x\n", ["unknown key 'shopify.shopp'", "valid keys"]),
        ("sync:\n  overlap_minutes: soon\n", ["'sync.overlap_minutes' must be a whole number"]),
        ("sync:\n  statuses: [PAID]\n", ["sync.statuses", "PAID"]),
        ("catalog: 5\n", ["'catalog' must be a mapping"]),
        ("shopify:\n  access_token: ${NOT_SET_ANYWHERE}\n", ["NOT_SET_ANYWHERE", "not set"]),
        # Item 6: an empty status list would sync nothing, silently.
        ("sync:\n  statuses: []\n", ["'sync.statuses' is empty", "remove the key"]),
        # Item 6: a key given twice, at any level, would keep the last one silently.
        ("shopify:\n  shop: a.myshopify.com\ncatalog: {}\nshopify:\n  shop: b.myshopify.com\n",
         ["duplicate key 'shopify' at line 4 (first at line 1)"]),
        ("shopify:\n  shop: a.myshopify.com\n  api_version: '2026-07'\n  shop: b.myshopify.com\n",
         ["duplicate key 'shopify.shop' at line 4 (first at line 2)"]),
        ("sync: {concurrency: 2, tags: [x], concurrency: 3}\n", ["duplicate key 'sync.concurrency' at line 1"]),
        ("store_busy_timeout_seconds: -1\n", ["'store_busy_timeout_seconds' must not be negative"]),
    ],
)
def test_bad_config_is_one_line_error_and_writes_nothing(cli, tmp_path, store_path, text, needles):
    cfg = write(tmp_path / "c.yaml", text)
    r = cli("--config", str(cfg), "list-unlinked")
    one_line_error(r, str(cfg), *needles)
    assert not store_path.exists()


def test_missing_config_file(cli, tmp_path, store_path):
    r = cli("--config", str(tmp_path / "nope.yaml"), "links")
    one_line_error(r, "does not exist")
    assert not store_path.exists()


def test_missing_store_folder(cli, tmp_path):
    target = tmp_path / "no" / "such" / "store.db"
    r = cli("links", store=target)
    one_line_error(r, "store folder", "does not exist", "mkdir")
    assert not target.parent.exists()


def test_store_that_is_not_sqlite(cli, tmp_path):
    target = tmp_path / "notes.db"
    target.write_bytes(b"these are my notes, not a database\n" * 100)
    before = target.read_bytes()
    r = cli("list-unlinked", store=target)
    one_line_error(r, "not an ecomsend store")
    assert target.read_bytes() == before


def test_sqlite_file_of_another_program(cli, tmp_path):
    target = tmp_path / "other.db"
    conn = sqlite3.connect(target)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    before = target.read_bytes()
    r = cli("links", store=target)
    one_line_error(r, "not an ecomsend store")
    assert target.read_bytes() == before


def test_store_from_a_newer_schema(cli, store_path):
    Store.open(store_path).close()
    conn = sqlite3.connect(store_path)
    conn.execute("INSERT INTO _migrations VALUES ('999_future', '2030-01-01')")
    conn.commit()
    conn.close()
    before = store_path.read_bytes()
    r = cli("links")
    one_line_error(r, "newer ecomsend", "upgrade")
    assert store_path.read_bytes() == before


def test_store_is_migrated_wal_with_foreign_keys(store_path):
    with Store.open(store_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        names = store.table_names()
    assert {"tiktok_skus", "shopify_variants", "links", "link_history", "orders", "order_items",
            "state", "tokens", "_migrations"} <= names


def test_default_store_goes_to_the_user_data_folder(cli, isolated_user):
    r = cli("links", store=None)
    assert r.exit_code == 0, r.stderr
    assert (isolated_user / ".local" / "share" / "ecomsend" / "ecomsend.db").exists()


def test_store_from_config_and_env(cli, tmp_path):
    cfg = write(tmp_path / "c.yaml", f"store: {tmp_path}/from-config.db\n")
    assert cli("--config", str(cfg), "links", store=None).exit_code == 0
    assert (tmp_path / "from-config.db").exists()
    r = cli("--config", str(cfg), "links", store=None, env={"ECOMSEND_STORE": str(tmp_path / "env.db")})
    assert r.exit_code == 0
    assert (tmp_path / "env.db").exists()


def test_env_interpolation_and_lookup_order(tmp_path, isolated_user):
    user_cfg = isolated_user / ".config" / "ecomsend" / "config.yaml"
    user_cfg.parent.mkdir(parents=True)
    write(user_cfg, "shopify:\n  shop: user.myshopify.com\n")
    env_cfg = write(tmp_path / "env.yaml", "shopify:\n  shop: env.myshopify.com\n  access_token: ${TOK}\n")
    flag_cfg = write(tmp_path / "flag.yaml", "shopify:\n  shop: flag.myshopify.com\n")
    env = {"TOK": "shpat_secret", "HOME": str(isolated_user),
           "XDG_CONFIG_HOME": str(isolated_user / ".config")}
    assert load_config(env=env).shopify.shop == "user.myshopify.com"
    env["ECOMSEND_CONFIG"] = str(env_cfg)
    cfg = load_config(env=env)
    assert cfg.shopify.shop == "env.myshopify.com"
    assert cfg.shopify.access_token == Secret("shpat_secret")
    assert load_config(flag_cfg, env=env).shopify.shop == "flag.myshopify.com"


def test_secrets_are_redacted_and_world_readable_file_warns(cli, tmp_path):
    cfg = write(
        tmp_path / "c.yaml",
        "shopify:\n  shop: s.myshopify.com\n  access_token: shpat_TOPSECRET\n"
        "tiktok:\n  app_key: k\n  app_secret: ${APP_SECRET}\n",
        mode=0o644,
    )
    r = cli("--config", str(cfg), "config", "show", "--json", env={"APP_SECRET": "tts_SECRET2"})
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["shopify"]["access_token"] == "********"
    assert data["tiktok"]["app_secret"] == "********"
    assert data["shopify"]["shop"] == "s.myshopify.com"
    assert "TOPSECRET" not in r.output and "SECRET2" not in r.output
    assert "chmod 600" in r.stderr
    os.chmod(cfg, 0o600)
    r = cli("--config", str(cfg), "config", "show", env={"APP_SECRET": "tts_SECRET2"})
    assert "chmod" not in r.stderr and "TOPSECRET" not in r.output
    assert "access_token: '********'" in r.stdout


def test_secret_never_formats_its_value():
    s = Secret("abc123")
    assert "abc123" not in f"{s} {s!r} {s:>10}" + str([s]) + repr({"k": s})
    assert s.get() == "abc123"


def test_unknown_key_error_names_the_file(tmp_path):
    cfg = write(tmp_path / "c.yaml", "tiktok:\n  app_sekret: x\n")
    with pytest.raises(ConfigError) as exc:
        load_config(cfg, env={})
    assert str(cfg) in str(exc.value) and "tiktok.app_sekret" in str(exc.value)


def test_full_catalog_replace_is_all_or_nothing_and_keeps_indexes(store_path):
    from tests.factory import variant

    def indexes(store):
        return {r[1] for r in store.conn.execute("PRAGMA index_list(shopify_variants)")}

    with Store.open(store_path) as store:
        store.replace_variants([variant(1, "A"), variant(2, "B")])
        before = indexes(store)
        assert {"idx_shopify_variants_key", "idx_shopify_variants_product"} <= before

        def broken():
            yield variant(3, "C")
            raise RuntimeError("the download broke halfway")

        with pytest.raises(RuntimeError):
            store.replace_variants(broken())
        assert [v.sku for v in store.iter_variants()] == ["A", "B"]
        assert indexes(store) == before
        store.replace_variants([variant(4, "D")])
        assert indexes(store) == before
        plan = " ".join(r[3] for r in store.conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM shopify_variants WHERE sku_key = 'd'"))
        assert "idx_shopify_variants_key" in plan


def test_a_new_store_is_private_because_it_keeps_tokens(store_path):
    import stat

    with Store.open(store_path) as store:
        store.save_token("tiktok", {"access_token": "x"})
        for path in (store_path, store_path.with_name(store_path.name + "-wal")):
            if path.exists():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@pytest.mark.parametrize(
    "key, url, use_instead",
    [
        ("shopify.shop", "https://owner:hunter2pw@my-store.myshopify.com/", "shopify.access_token"),
        ("shopify.shop", "owner:hunter2pw@my-store.myshopify.com", "client_secret"),
        ("tiktok.api_base_url", "https://k:hunter2pw@open-api.tiktokglobalshop.com", "tiktok.app_secret"),
        ("tiktok.auth_base_url", "https://hunter2pw@auth.tiktok-shops.com", "tiktok.refresh_token"),
    ],
)
def test_credentials_in_a_url_are_refused_without_echoing_them(cli, tmp_path, store_path, key, url, use_instead):
    section, name = key.split(".")
    cfg = write(tmp_path / "c.yaml", f"{section}:\n  {name}: ${{URL}}\n")
    r = cli("--config", str(cfg), "config", "show", env={"URL": url})
    one_line_error(r, f"'{key}' holds a user name or password", use_instead)
    assert "hunter2pw" not in r.output
    r = cli("--config", str(cfg), "doctor", "--json", env={"URL": url})
    assert r.exit_code == 1 and "hunter2pw" not in r.output
    config_check = json.loads(r.stdout)["checks"][0]
    assert config_check["ok"] is False and "holds a user name or password" in config_check["detail"]
    assert not store_path.exists()


@pytest.mark.parametrize("url", ["http://my-store.myshopify.com", "http://10.0.0.5:8081", "ftp://x.example"])
def test_plain_http_is_refused_off_this_machine(cli, tmp_path, url):
    cfg = write(tmp_path / "c.yaml", f"shopify:\n  shop: {url}\n")
    r = cli("--config", str(cfg), "config", "show")
    if url.startswith("http://"):
        host = url.split("//")[1].split(":")[0]
        one_line_error(r, "'shopify.shop' uses plain http://", f"use https://{host}")
    else:
        one_line_error(r, "'shopify.shop' must be an https:// URL")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8081", "http://127.1.2.3:9", "http://localhost:8081", "http://[::1]:8081",
            "https://my-store.myshopify.com", "my-store.myshopify.com"],
)
def test_loopback_http_and_https_are_accepted(tmp_path, url):
    cfg = write(tmp_path / "c.yaml", f"tiktok:\n  api_base_url: '{url}'\nshopify:\n  shop: '{url}'\n")
    config = load_config(cfg, env={})
    assert config.shopify.shop == url and config.tiktok.api_base_url == url
