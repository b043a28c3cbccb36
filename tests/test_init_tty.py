"""`ecomsend init`: from an empty home folder to a passing doctor and created orders, on a terminal."""

from __future__ import annotations

import os
import re
import stat
import subprocess

import httpx
import yaml

from ecomsend_cli.config import default_store_path, user_config_path
from ecomsend_cli.store import Store
from tests.conftest import python_cmd
from tests.terminal import Terminal


def test_init_on_a_terminal_then_doctor_green_then_sync_creates_orders(sandbox, isolated_user):
    config_path, store_path = user_config_path(), default_store_path()
    assert str(config_path).startswith(str(isolated_user)) and not config_path.exists()
    tiktok, shopify = sandbox.tiktok, sandbox.shopify
    app_secret, shop_token = tiktok.credentials["app_secret"], shopify.credentials["access_token"]
    env = {"TIKTOK_APP_SECRET": app_secret, "SHOPIFY_ACCESS_TOKEN": shop_token}

    term = Terminal("init", "--tiktok-api-url", tiktok.url, "--tiktok-auth-url", tiktok.url,
                    "--tiktok-authorize-url", sandbox.authorize_url, env=env)
    term.expect("Shopify shop domain (my-store.myshopify.com): ")
    term.send(shopify.url)
    term.expect("in the config file (f)? [e]: ")
    term.send("")
    term.expect("custom app's Admin API token (2)? [1]: ")
    term.send("2")
    term.expect("Shopify Admin API token: the environment variable holding it [SHOPIFY_ACCESS_TOKEN]: ")
    term.send("")
    term.expect("TikTok Shop app key: ")
    term.send(tiktok.credentials["app_key"])
    term.expect("the environment variable holding it [TIKTOK_APP_SECRET]: ")
    term.send("")
    term.expect("TikTok app service ID (below the app's name in Partner Center): ")
    term.send(tiktok.service_id)
    term.expect("Seller region: US, or global for any other [global]: ")
    term.send("US")
    screen = term.expect("Authorization code: ")
    # The operator opens the printed page; the seller approves; the page shows the code.
    url = re.search(r"(http://127\.0\.0\.1:\d+/_sandbox/authorize\?service_id=\d+)", screen).group(1)
    code = httpx.get(url).text.split("Authorization code: ")[1].strip()
    term.send(code)
    term.expect("*/5 * * * * ", timeout=60)
    assert term.wait(timeout=30) == 0, term.screen
    screen = term.screen
    assert "TikTok Shop authorised: seller Sandbox Shop" in screen
    assert "plan Development" in screen and "currency USD" in screen
    assert "Catalog cache refreshed" in screen and "Dry run: pulled 36" in screen  # catalog, then dry run
    assert re.search(r"\*/5 \* \* \* \* \. \S+/env && .*sync-orders >> \$HOME/ecomsend\.log 2>&1", screen)

    # The config: at the standard place, private, secrets as ${ENV} references only.
    text = config_path.read_text()
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    assert "${TIKTOK_APP_SECRET}" in text and "${SHOPIFY_ACCESS_TOKEN}" in text
    data = yaml.safe_load(text)
    assert "access_token" not in data["tiktok"] and data["tiktok"]["region"] == "US"
    with Store.open(store_path) as store:
        tokens = store.load_token("tiktok")
    assert stat.S_IMODE(store_path.stat().st_mode) == 0o600
    secrets = [app_secret, shop_token, tokens["access_token"], tokens["refresh_token"]]
    for secret in secrets:
        assert secret not in text
        assert secret not in screen

    run_env = {**os.environ, **env}
    doctor = subprocess.run(python_cmd("doctor", "--json"), capture_output=True, text=True, env=run_env,
                            timeout=60)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert all(c["ok"] for c in yaml.safe_load(doctor.stdout)["checks"])
    before = len(shopify.orders())
    sync = subprocess.run(python_cmd("sync-orders"), capture_output=True, text=True, env=run_env, timeout=120)
    assert sync.returncode in (0, 3), sync.stderr
    assert before == 0 and len(shopify.orders()) > 0
    for secret in secrets:
        assert secret not in doctor.stdout + doctor.stderr + sync.stdout + sync.stderr


def test_init_never_replaces_a_config_without_asking(sandbox, isolated_user):
    config_path = user_config_path()
    config_path.parent.mkdir(parents=True)
    config_path.write_text("# mine\n")
    term = Terminal("init")
    term.expect("exists already. Replace it")
    term.send("n")
    assert term.wait() == 0
    assert config_path.read_text() == "# mine\n"
    # Without a terminal it refuses rather than hang or overwrite.
    r = subprocess.run(python_cmd("init", "--shop-domain", "x.myshopify.com"), capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 1 and "--yes" in r.stderr
    assert config_path.read_text() == "# mine\n"


def test_init_from_flags_with_literal_secrets_keeps_them_private(sandbox, isolated_user):
    tiktok, shopify = sandbox.tiktok, sandbox.shopify
    code = httpx.get(sandbox.authorize_url, params={"service_id": tiktok.service_id}).text.split(": ")[-1].strip()
    shop_token, app_secret = shopify.credentials["access_token"], tiktok.credentials["app_secret"]
    r = subprocess.run(python_cmd(
        "init", "--yes", "--shop-domain", shopify.url, "--shopify-token", shop_token,
        "--tiktok-app-key", tiktok.credentials["app_key"], "--tiktok-app-secret", app_secret,
        "--tiktok-code", code, "--tiktok-api-url", tiktok.url, "--tiktok-auth-url", tiktok.url,
    ), capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert r.returncode == 0, r.stderr
    config_path = user_config_path()
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    assert yaml.safe_load(config_path.read_text())["tiktok"]["app_secret"] == app_secret  # as asked
    assert shop_token not in r.stdout + r.stderr and app_secret not in r.stdout + r.stderr
    assert "/env &&" not in r.stderr  # no ${ENV}: the cron line needs no variables file
    with Store.open(default_store_path()) as store:
        assert store.load_token("tiktok")["access_token"]


def test_init_names_an_unset_variable_and_the_next_step(sandbox, isolated_user):
    env = {k: v for k, v in os.environ.items() if k != "TIKTOK_APP_SECRET"}
    env["SHOPIFY_ACCESS_TOKEN"] = sandbox.shopify.credentials["access_token"]
    r = subprocess.run(python_cmd(
        "init", "--yes", "--shop-domain", sandbox.shopify.url, "--shopify-token", "${SHOPIFY_ACCESS_TOKEN}",
        "--tiktok-app-key", "k", "--tiktok-service-id", "1",
    ), capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env, timeout=60)
    assert r.returncode == 1
    assert "'tiktok.app_secret' refers to ${TIKTOK_APP_SECRET}, which is not set" in r.stderr
    assert "export TIKTOK_APP_SECRET=" in r.stderr
    assert "ecomsend auth tiktok" in r.stderr
    assert stat.S_IMODE(user_config_path().stat().st_mode) == 0o600


def test_secrets_typed_into_init_are_not_echoed(sandbox, isolated_user):
    tiktok, shopify = sandbox.tiktok, sandbox.shopify
    shop_token, app_secret = shopify.credentials["access_token"], tiktok.credentials["app_secret"]
    term = Terminal("init", "--tiktok-api-url", tiktok.url, "--tiktok-auth-url", tiktok.url,
                    "--tiktok-authorize-url", sandbox.authorize_url)
    term.expect("Shopify shop domain (my-store.myshopify.com): ")
    term.send(shopify.url)
    term.expect("in the config file (f)? [e]: ")
    term.send("f")
    term.expect("(2)? [1]: ")
    term.send("2")
    term.expect("Shopify Admin API token (not shown): ")
    term.send(shop_token)
    term.expect("TikTok Shop app key: ")
    term.send(tiktok.credentials["app_key"])
    term.expect("TikTok Shop app secret (not shown): ")
    term.send(app_secret)
    term.expect("Partner Center): ")
    term.send(tiktok.service_id)
    term.expect("[global]: ")
    term.send("")
    term.expect("Authorization code: ")
    term.send("TTP_wrong")  # stops here: the config is written, the code refused
    assert term.wait() == 1
    assert "TikTok refused the authorization code" in term.screen
    assert shop_token not in term.screen and app_secret not in term.screen
    data = yaml.safe_load(user_config_path().read_text())
    assert (data["shopify"]["access_token"], data["tiktok"]["app_secret"]) == (shop_token, app_secret)
    assert stat.S_IMODE(user_config_path().stat().st_mode) == 0o600


def test_a_secret_pasted_where_the_variable_name_goes_is_refused_not_written(sandbox, isolated_user):
    shop_token = sandbox.shopify.credentials["access_token"]
    term = Terminal("init", "--tiktok-api-url", sandbox.tiktok.url, "--tiktok-auth-url", sandbox.tiktok.url,
                    "--tiktok-authorize-url", sandbox.authorize_url)
    term.expect("Shopify shop domain (my-store.myshopify.com): ")
    term.send(sandbox.shopify.url)
    term.expect("in the config file (f)? [e]: ")
    term.send("")
    term.expect("(2)? [1]: ")
    term.send("2")
    term.expect("the environment variable holding it [SHOPIFY_ACCESS_TOKEN]: ")
    term.send(shop_token)  # the token itself, not its variable's name
    screen = term.expect("looks like the secret itself")
    assert "export" in screen
    term.expect("the environment variable holding it [SHOPIFY_ACCESS_TOKEN]: ")
    term.send("")
    term.expect("TikTok Shop app key: ")
    term.send(sandbox.tiktok.credentials["app_key"])
    term.expect("[TIKTOK_APP_SECRET]: ")
    term.send("")
    term.expect("Partner Center): ")
    term.send(sandbox.tiktok.service_id)
    term.expect("[global]: ")
    term.send("")
    term.wait()
    text = user_config_path().read_text()
    assert shop_token not in text and "${SHOPIFY_ACCESS_TOKEN}" in text
