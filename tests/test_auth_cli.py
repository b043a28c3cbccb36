"""`ecomsend auth tiktok|shopify|status|logout` against the sandbox, and the token precedence."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from ecomsend_cli.cli import app
from ecomsend_cli.config import Secret, TikTokConfig
from ecomsend_cli.errors import AuthError
from ecomsend_cli.models import MemoryTokenCache
from ecomsend_cli.sandbox import Sandbox
from ecomsend_cli.store import Store
from ecomsend_cli.tiktok import TikTokClient
from ecomsend_cli.tiktok_session import authorization_url
from tests.conftest import Result, without_options


def no_token_config(box, path, **tiktok):
    """The sandbox's config as an operator starts: the app, no TikTok tokens, no shop chosen."""
    data = box.config_dict()
    for key in ("access_token", "refresh_token", "shop_cipher"):
        data["tiktok"].pop(key)
    data["tiktok"].update(tiktok)
    path.write_text(yaml.safe_dump(data))
    os.chmod(path, 0o600)
    return path


def new_code(box) -> str:
    """What the seller's browser shows after approving the app on the sandbox's page."""
    page = httpx.get(box.authorize_url, params={"service_id": box.tiktok.service_id}).text
    return page.split("Authorization code: ")[1].strip()


@pytest.fixture
def auth_cli(sandbox, tmp_path):
    config = no_token_config(sandbox, tmp_path / "auth.yaml")

    def run(*args: str, input: str | None = None) -> Result:
        r = CliRunner().invoke(app, ["--config", str(config), *args], input=input, catch_exceptions=False)
        return Result(r.exit_code, r.stdout, r.stderr)

    run.config = config
    return run


def secrets_of(box, store_path) -> list[str]:
    with Store.open(store_path) as store:
        tokens = store.load_token("tiktok") or {}
    found = [box.tiktok.credentials["app_secret"], box.shopify.credentials["access_token"]]
    return found + [tokens[k] for k in ("access_token", "refresh_token") if tokens.get(k)]


def test_auth_tiktok_keeps_tokens_in_the_store_and_records_the_shop(sandbox, auth_cli):
    before = hashlib.sha256(auth_cli.config.read_bytes()).hexdigest()
    code = new_code(sandbox)
    r = auth_cli("auth", "tiktok", "--code", code, "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["seller_name"] == "Sandbox Shop" and doc["seller_base_region"] == "US"
    assert doc["shop"]["cipher"] == sandbox.tiktok.credentials["shop_cipher"]
    assert doc["access_token_expire_in"] > doc["refresh_token_expire_in"] - 366 * 86400
    with Store.open(sandbox.store_path) as store:
        tokens = store.load_token("tiktok")
    assert tokens["shop_cipher"] == sandbox.tiktok.credentials["shop_cipher"]
    assert tokens["access_token"].startswith("ROW_") and tokens["refresh_token"]
    # Never in the config, never printed; the store is private.
    assert hashlib.sha256(auth_cli.config.read_bytes()).hexdigest() == before
    for secret in secrets_of(sandbox, sandbox.store_path):
        assert secret not in r.stdout + r.stderr
    assert tokens["access_token"] not in auth_cli.config.read_text()
    assert tokens["refresh_token"] not in auth_cli.config.read_text()
    assert stat.S_IMODE(sandbox.store_path.stat().st_mode) == 0o600
    # And the stored pair is what the next commands use.
    r = auth_cli("doctor", "--json")
    assert r.exit_code == 0, r.stdout
    assert json.loads(r.stdout)["ok"] is True


def test_a_pasted_redirect_address_gives_its_code(sandbox, auth_cli):
    code = new_code(sandbox)
    r = auth_cli("auth", "tiktok", "--code", f"https://my.app/callback?code={code}&state=x")
    assert r.exit_code == 0, r.stderr
    assert "TikTok Shop authorised: seller Sandbox Shop" in r.stderr
    # Told as doctor tells expiries (ecomsend_cli.expiry): the access token is renewed, the refresh token not.
    assert "access token expires in 6 days" in r.stderr and "renewed automatically" in r.stderr
    assert "refresh token expires in 364 days" in r.stderr


@pytest.mark.parametrize("how", ["wrong", "expired", "used twice"])
def test_refused_codes_say_what_to_do_and_store_nothing(sandbox, auth_cli, how):
    code = new_code(sandbox)
    if how == "wrong":
        code = "TTP_not-a-code"
    elif how == "expired":
        httpx.post(sandbox.tiktok.url + "/_sandbox/auth_codes/expire")
    else:
        assert auth_cli("auth", "tiktok", "--code", code).exit_code == 0
        with Store.open(sandbox.store_path) as store:
            store.forget_token("tiktok")
    r = auth_cli("auth", "tiktok", "--code", code)
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    expected = {"wrong": "auth code is invalid", "expired": "auth code has expired",
                "used twice": "auth code has been used"}[how]
    assert "TikTok refused the authorization code" in lines[0] and expected in lines[0]
    assert "run `ecomsend auth tiktok` again" in without_options(lines[0])
    with Store.open(sandbox.store_path) as store:
        assert store.load_token("tiktok") is None


def test_without_a_code_or_terminal_it_prints_the_page_to_open(sandbox, auth_cli):
    r = auth_cli("auth", "tiktok")
    assert r.exit_code == 1
    assert f"{sandbox.authorize_url}?service_id={sandbox.tiktok.service_id}" in r.stderr
    assert "--code CODE" in r.stderr


def test_shop_flag_must_name_an_authorised_shop(sandbox, auth_cli):
    r = auth_cli("auth", "tiktok", "--code", new_code(sandbox), "--shop", "Not My Shop")
    assert r.exit_code == 1 and "ecomsend sandbox shop" in r.stderr
    r = auth_cli("auth", "tiktok", "--code", new_code(sandbox), "--shop", "ECOMSEND SANDBOX SHOP", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["shop"]["name"] == "ecomsend sandbox shop"


def test_authorization_url_by_region_and_override():
    base = dict(app_key="k", app_secret=Secret("s"), service_id="7400")
    assert authorization_url(TikTokConfig(**base)) == "https://services.tiktokshop.com/open/authorize?service_id=7400"
    assert authorization_url(TikTokConfig(**base, region="US")) == (
        "https://services.us.tiktokshop.com/open/authorize?service_id=7400")
    assert authorization_url(TikTokConfig(**base, region="GB")).startswith("https://services.tiktokshop.com/")
    assert authorization_url(TikTokConfig(**base, authorize_url="http://127.0.0.1:9/_sandbox/authorize")) == (
        "http://127.0.0.1:9/_sandbox/authorize?service_id=7400")
    with pytest.raises(AuthError, match="tiktok.service_id"):
        authorization_url(TikTokConfig(app_key="k", app_secret=Secret("s")))


def test_a_bad_region_is_refused_naming_the_key(cli, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("tiktok:\n  region: Europe\n")
    r = cli("--config", str(cfg), "config", "show")
    assert r.exit_code == 1 and "'tiktok.region'" in r.stderr


# --- token precedence (DESIGN §7): config tokens win; else the pair `auth tiktok` stored -------------


def _tiktok_transport(seen: list[str]):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v2/token/get":
            data = {"access_token": "AT-auth", "refresh_token": "RT-auth", "access_token_expire_in": 4_000_000_000,
                    "refresh_token_expire_in": 4_100_000_000, "open_id": "o", "seller_name": "S",
                    "seller_base_region": "GB", "granted_scopes": []}
            return httpx.Response(200, json={"code": 0, "message": "success", "request_id": "r", "data": data})
        seen.append(request.headers.get("x-tts-access-token"))
        return httpx.Response(200, json={"code": 0, "message": "Success", "request_id": "r",
                                         "data": {"shops": [{"name": "A", "cipher": "C1", "region": "GB"}]}})

    return httpx.MockTransport(handler)


def _config(**tokens) -> TikTokConfig:
    return TikTokConfig(api_base_url="https://api.test", auth_base_url="https://auth.test", app_key="k",
                        app_secret=Secret("s"), **tokens)


def _authorise(cache) -> None:
    with TikTokClient(_config(), cache, transport=_tiktok_transport([])) as client:
        client.exchange_auth_code("code-1")


def test_without_config_tokens_the_stored_pair_is_used():
    cache, seen = MemoryTokenCache(), []
    _authorise(cache)
    with TikTokClient(_config(), cache, transport=_tiktok_transport(seen)) as client:
        client.authorized_shops()
        assert client.token_state()["source"] == "auth"
    assert seen == ["AT-auth"]


def test_config_tokens_win_over_the_stored_pair_and_start_the_chain():
    cache, seen = MemoryTokenCache(), []
    _authorise(cache)
    config = _config(access_token=Secret("AT-config"), refresh_token=Secret("RT-config"))
    with TikTokClient(config, cache, transport=_tiktok_transport(seen)) as client:
        client.authorized_shops()
        assert client.token_state()["source"] == "config"
    assert seen == ["AT-config"]


def test_with_no_tokens_anywhere_the_error_says_to_run_auth(sandbox, auth_cli):
    r = auth_cli("sync-orders")
    assert r.exit_code == 1
    assert "not authorised yet" in r.stderr and "`ecomsend auth tiktok`" in without_options(r.stderr)


# --- auth shopify -----------------------------------------------------------------------------------


def test_auth_shopify_shows_shop_currency_plan_and_scopes(sandbox, auth_cli):
    r = auth_cli("auth", "shopify", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["shop"], doc["currency"], doc["plan"], doc["credentials"]) == (
        "ecomsend sandbox", "USD", "Development", "access_token")
    assert [x["scope"] for x in doc["scopes"]] == ["read_products", "read_orders", "write_orders",
                                                   "read_all_orders", "read_fulfillments",
                                                   "write_fulfillments", "read_inventory"]
    assert doc["missing"] == [] and doc["ok"] is True
    assert sandbox.shopify.credentials["access_token"] not in r.stdout + r.stderr


def test_auth_shopify_says_what_each_missing_scope_disables(tmp_path):
    scopes = ("read_products", "write_orders", "read_inventory")
    with Sandbox(tmp_path / "sb", "none", shopify_options={"access_scopes": scopes}) as box:
        cfg = no_token_config(box, tmp_path / "c.yaml")
        r = CliRunner().invoke(app, ["--config", str(cfg), "auth", "shopify"], catch_exceptions=False)
        assert r.exit_code == 0, r.stderr  # write_orders implies read_orders: sync-orders can run
        assert "missing scope read_all_orders: without it, no orders older than 60 days" in r.stderr
        assert "missing scope read_fulfillments: without it, no tracking numbers back to TikTok" in r.stderr
        assert "missing scope read_orders" not in r.stderr
        # doctor applies the same rule (connect.missing_scopes): its shopify check passes.
        r = CliRunner().invoke(app, ["--config", str(cfg), "doctor", "--json"], catch_exceptions=False)
        checks = {c["check"]: c for c in json.loads(r.stdout)["checks"]}
        assert checks["shopify"]["ok"] and not checks["read_all_orders"]["ok"]
    with Sandbox(tmp_path / "sb2", "none", shopify_options={"access_scopes": ("read_orders",)}) as box:
        cfg = no_token_config(box, tmp_path / "c2.yaml")
        r = CliRunner().invoke(app, ["--config", str(cfg), "auth", "shopify"], catch_exceptions=False)
        assert r.exit_code == 1
        assert "lacks read_products, write_orders, so sync-orders cannot run" in r.stderr
        r = CliRunner().invoke(app, ["--config", str(cfg), "doctor", "--json"], catch_exceptions=False)
        checks = {c["check"]: c for c in json.loads(r.stdout)["checks"]}
        assert "lacks scope(s) read_products, write_orders" in checks["shopify"]["detail"]


# --- status, logout ----------------------------------------------------------------------------------


def test_status_counts_down_and_logout_forgets(sandbox, auth_cli):
    r = auth_cli("auth", "status")
    assert r.exit_code == 0 and "not authorised" in r.stdout
    assert auth_cli("auth", "tiktok", "--code", new_code(sandbox)).exit_code == 0
    r = auth_cli("auth", "status")
    assert "access token expires in 6 days" in r.stdout and "refresh token expires in 364 days" in r.stdout
    assert "seller Sandbox Shop" in r.stdout and "custom-app token in the config" in r.stdout
    doc = json.loads(auth_cli("auth", "status", "--json").stdout)
    assert doc["tiktok"]["source"] == "auth" and doc["tiktok"]["shop_name"] == "ecomsend sandbox shop"
    # Absolute times, and the countdown as a person reads it.
    with Store.open(sandbox.store_path) as store:
        stored = store.load_token("tiktok")
    assert doc["tiktok"]["refresh_token_expire_in"] == stored["refresh_token_expire_in"]
    assert doc["tiktok"]["refresh_token"].startswith("refresh token expires in 364 days (")
    assert doc["shopify"]["expires_at"] is None and "does not expire" in doc["shopify"]["token"]
    for secret in secrets_of(sandbox, sandbox.store_path):
        assert secret not in json.dumps(doc)

    before = hashlib.sha256(sandbox.store_path.read_bytes()).hexdigest()
    r = auth_cli("auth", "logout", "tiktok")  # no terminal, no --yes
    assert r.exit_code == 1 and "--yes" in r.stderr
    assert hashlib.sha256(sandbox.store_path.read_bytes()).hexdigest() == before
    r = auth_cli("auth", "logout", "tiktok", "--yes")
    assert r.exit_code == 0 and "Forgot the stored TikTok Shop tokens" in r.stderr
    with Store.open(sandbox.store_path) as store:
        assert store.load_token("tiktok") is None
    assert "not authorised" in auth_cli("auth", "status").stdout
    assert "No stored TikTok Shop tokens" in auth_cli("auth", "logout", "tiktok", "--yes").stderr


def test_logout_shopify_forgets_the_client_credentials_token(sandbox, tmp_path):
    data = sandbox.config_dict()
    creds = sandbox.shopify.credentials
    data["shopify"].pop("access_token")
    data["shopify"].update(client_id=creds["client_id"], client_secret=creds["client_secret"])
    cfg = tmp_path / "cc.yaml"
    cfg.write_text(yaml.safe_dump(data))
    os.chmod(cfg, 0o600)

    def run(*args):
        r = CliRunner().invoke(app, ["--config", str(cfg), *args], catch_exceptions=False)
        return Result(r.exit_code, r.stdout, r.stderr)

    def shopify_row() -> str:
        return next(x for x in run("auth", "status").stdout.splitlines() if x.startswith("Shopify"))

    assert "no client-credentials token yet" in shopify_row()
    r = run("auth", "shopify", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["credentials"] == "client_credentials"
    assert "client credentials in the config" in shopify_row() and "access token expires in 23 h" in shopify_row()
    doc = json.loads(run("auth", "status", "--json").stdout)["shopify"]
    with Store.open(sandbox.store_path) as store:
        assert doc["expires_at"] == store.load_token("shopify")["expires_at"]
    assert run("auth", "logout", "shopify", "--yes").exit_code == 0
    with Store.open(sandbox.store_path) as store:
        assert store.load_token("shopify") is None
    assert "no client-credentials token yet" in shopify_row()


# --- several shops, and tokens already in the config ----------------------------------------------

UK_SHOP = {"id": "7494000000000000099", "name": "Second Shop UK", "region": "GB", "cipher": "GCP_second_shop"}


def test_on_a_terminal_it_prints_the_page_asks_the_code_and_the_shop(tmp_path):
    from tests.terminal import Terminal

    with Sandbox(tmp_path / "sb", "none", tiktok_options={"extra_shops": [UK_SHOP]}) as box:
        cfg = no_token_config(box, tmp_path / "c.yaml")
        term = Terminal("--config", str(cfg), "auth", "tiktok")
        screen = term.expect("Authorization code: ")
        assert f"{box.authorize_url}?service_id={box.tiktok.service_id}" in screen
        term.send(new_code(box))
        screen = term.expect("Number of the shop to work on [1]: ")
        assert "Second Shop UK" in screen and "ecomsend sandbox shop" in screen
        term.send("2")
        assert term.wait() == 0, term.screen
        with Store.open(box.store_path) as store:
            tokens = store.load_token("tiktok")
        assert (tokens["shop_cipher"], tokens["shop_name"]) == ("GCP_second_shop", "Second Shop UK")
        for secret in (tokens["access_token"], tokens["refresh_token"], box.tiktok.credentials["app_secret"]):
            assert secret not in term.screen


def test_several_shops_without_a_terminal_need_shop_or_shop_cipher(tmp_path):
    with Sandbox(tmp_path / "sb", "none", tiktok_options={"extra_shops": [UK_SHOP]}) as box:
        cfg = no_token_config(box, tmp_path / "c.yaml")
        r = CliRunner().invoke(app, ["--config", str(cfg), "auth", "tiktok", "--code", new_code(box)],
                               catch_exceptions=False)
        assert r.exit_code == 1
        assert "authorised 2 shops" in r.stderr and "tiktok.shop_cipher" in r.stderr
        assert "GCP_second_shop" in r.stderr  # the table of ciphers to choose from
        r = CliRunner().invoke(app, ["--config", str(cfg), "auth", "tiktok", "--code", new_code(box),
                                     "--shop", "GCP_second_shop"], catch_exceptions=False)
        assert r.exit_code == 0, r.stderr
        with Store.open(box.store_path) as store:
            assert store.load_token("tiktok")["shop_cipher"] == "GCP_second_shop"


def test_auth_warns_when_config_tokens_will_win(sandbox, sb_cli):
    r = sb_cli("auth", "tiktok", "--code", new_code(sandbox))
    assert r.exit_code == 0, r.stderr
    assert "they win over the tokens just stored" in r.stderr
    assert sb_cli("auth", "status", "--json").exit_code == 0
    doc = json.loads(sb_cli("auth", "status", "--json").stdout)
    assert doc["tiktok"]["source"] == "config"
