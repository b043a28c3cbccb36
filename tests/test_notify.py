"""Alerts for cron (issue 12, item 11): one message per sync-orders run that needs the operator,
sent with Apprise to the sandbox's loopback webhook receiver; never repeated, never a secret."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import yaml

from ecomsend_cli.expiry import TokenExpiry, countdown
from ecomsend_cli.notify import SENT_KEY
from ecomsend_cli.store import Store
from ecomsend_cli.tiktok_session import TOKEN_CACHE_NAME, config_fingerprint


def write_config(sandbox, tmp_path, **notify) -> str:
    config = sandbox.config_dict()
    config["notify"] = notify
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump(config))
    os.chmod(path, 0o600)
    return str(path)


def receiver(sandbox, path: str = "/_sandbox/webhook") -> str:
    return f"json://127.0.0.1:{sandbox.shopify.port}{path}"


def messages(sandbox) -> list[dict]:
    return [m["body"] for m in sandbox.shopify.webhooks]


def secrets_of(sandbox) -> list[str]:
    creds = {**sandbox.shopify.credentials, **sandbox.tiktok.credentials}
    values = [v for k, v in creds.items() if k in ("access_token", "client_secret", "app_secret", "refresh_token")]
    with Store.open(sandbox.store_path) as store:
        for name in ("tiktok", "shopify"):
            cached = store.load_token(name) or {}
            values += [cached[k] for k in ("access_token", "refresh_token") if cached.get(k)]
    assert values
    return values


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_blocked_orders_make_one_message_and_the_next_run_none(sandbox, cli, tmp_path):
    config = write_config(sandbox, tmp_path, urls=[receiver(sandbox)], blocked_after_hours=0)
    first = cli("--config", config, "sync-orders", store=None)
    assert first.exit_code == 3
    assert "Alert sent: ecomsend: 1 thing needs you" in first.stderr
    [message] = messages(sandbox)
    assert message["title"].startswith("ecomsend: 1 thing needs you")
    assert "orders blocked by 16 SKUs to link" in message["message"]
    assert "'MUG-11OZ' Ceramic Mug 11oz" in message["message"]  # seller SKU and title beside the id
    assert "ecomsend list-unlinked" in message["message"]
    text = json.dumps(message)
    for secret in secrets_of(sandbox):
        assert secret not in text

    again = cli("--config", config, "sync-orders", store=None)
    assert again.exit_code == 3  # the same problems: no second message
    assert len(messages(sandbox)) == 1


def test_a_new_failure_is_told_once_and_repeated_only_after_repeat_hours(sandbox, cli, tmp_path):
    config = write_config(sandbox, tmp_path, urls=[receiver(sandbox)], blocked_after_hours=0, repeat_hours=24)
    assert cli("--config", config, "sync-orders", store=None).exit_code == 3
    assert cli("--config", config, "autolink", "--yes", store=None).exit_code == 0
    assert cli("--config", config, "sync-orders", store=None).exit_code == 3  # the zero-stock socks fail
    assert len(messages(sandbox)) == 2
    second = messages(sandbox)[1]["message"]
    assert "1 order failed" in second and "580000000000000018" in second and "INVENTORY_CLAIM_FAILED" in second
    assert second.count("failed") >= 1 and "orders --state failed" in second

    assert cli("--config", config, "sync-orders", store=None).exit_code == 3
    assert len(messages(sandbox)) == 2  # nothing new: nothing sent

    with Store.open(sandbox.store_path) as store:  # a day later, nothing fixed
        memory = json.loads(store.get_state(SENT_KEY))
        store.set_state(SENT_KEY, json.dumps({**memory, "at": memory["at"] - 25 * 3600}))
    assert cli("--config", config, "sync-orders", store=None).exit_code == 3
    assert len(messages(sandbox)) == 3
    assert messages(sandbox)[2]["message"] == second


def test_nothing_to_tell_sends_nothing_and_never_imports_apprise(sandbox, tmp_path):
    # Orders blocked for minutes, not a day (the default 24 h): nothing needs the operator yet.
    config = write_config(sandbox, tmp_path, urls=[receiver(sandbox)])
    code = ("import sys\nfrom ecomsend_cli.cli import main\n"
            f"sys.argv = ['ecomsend', '--config', {config!r}, 'sync-orders']\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
            "print(code, 'apprise' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split()[-2:] == ["3", "False"], out.stderr
    assert messages(sandbox) == []
    with Store.open(sandbox.store_path) as store:
        assert store.get_state(SENT_KEY) is None


def test_a_receiver_that_is_down_is_a_warning_and_keeps_the_exit_code(sandbox, cli, tmp_path):
    secret_path = "/_sandbox/webhook/T0PS3CRET-in-the-url"
    config = write_config(sandbox, tmp_path, blocked_after_hours=0,
                          urls=[f"json://127.0.0.1:{closed_port()}{secret_path}", receiver(sandbox, secret_path)])
    result = cli("--config", config, "sync-orders", store=None)
    assert result.exit_code == 3
    assert "warning: alert not delivered to notify.urls[0] (json://********)" in result.stderr
    assert "T0PS3CRET" not in result.output
    assert len(messages(sandbox)) == 1  # the other receiver got it

    only_down = write_config(sandbox, tmp_path, blocked_after_hours=0, urls=[f"json://127.0.0.1:{closed_port()}/x"])
    with Store.open(sandbox.store_path) as store:
        store.set_state(SENT_KEY, None)
    down = cli("--config", only_down, "sync-orders", store=None)
    assert down.exit_code == 3 and "alert not delivered" in down.stderr
    with Store.open(sandbox.store_path) as store:
        assert store.get_state(SENT_KEY) is None  # not delivered, not remembered: the next run tries again


def test_a_secret_in_an_order_reason_never_reaches_the_message(sandbox, cli, tmp_path):
    config = write_config(sandbox, tmp_path, urls=[receiver(sandbox)])
    token = sandbox.tiktok.credentials["access_token"]
    assert cli("--config", config, "sync-orders", store=None).exit_code == 3
    with Store.open(sandbox.store_path) as store:  # a (hypothetical) error that quoted a token
        order_id = next(store.order_listing(states=["blocked"])).tiktok_order_id
        store.set_order_state(order_id, "failed", reason=f"refused with token {token} by the shop")
    # --only tracking: the orders phase does not retry it, so the stored reason stays as written
    assert cli("--config", config, "sync-orders", "--only", "tracking", store=None).exit_code == 0
    [message] = messages(sandbox)
    assert "refused with token ******** by the shop" in message["message"]
    assert token not in json.dumps(message)


def test_a_cursor_stuck_for_three_runs_is_told_once(sandbox, cli, tmp_path):
    config = write_config(sandbox, tmp_path, urls=[receiver(sandbox)])
    assert cli("--config", config, "sync-orders", store=None).exit_code == 3
    refusal = {"code": 36009004, "message": "Invalid parameter", "request_id": "r", "data": {}}
    sandbox.tiktok.set_faults(fail_next=[{"op": "orders.search", "kind": "answer", "handled": False,
                                          "body": refusal, "count": 10}])
    for run in range(1, 5):
        result = cli("--config", config, "sync-orders", store=None)
        assert result.exit_code == 1
        assert len(messages(sandbox)) == (0 if run < 3 else 1), run
    [message] = messages(sandbox)
    assert "The orders cursor has not moved for 3 runs" in message["message"]
    assert "Invalid parameter" in message["message"]


def save_tiktok_expiry(sandbox, refresh_in_days: float) -> int:
    from ecomsend_cli.config import load_config

    config = load_config(sandbox.config_file)
    now = int(time.time())
    refresh_at = now + int(refresh_in_days * 86400)
    with Store.open(sandbox.store_path) as store:
        creds = sandbox.tiktok.credentials
        store.save_token(TOKEN_CACHE_NAME, {
            "config": config_fingerprint(config.tiktok), "access_token": creds["access_token"],
            "refresh_token": creds["refresh_token"], "access_token_expire_in": now + 3 * 3600,
            "refresh_token_expire_in": refresh_at, "shop_cipher": creds["shop_cipher"]})
    return refresh_at


def test_a_refresh_token_expiring_this_week_is_told_and_doctor_counts_down(sandbox, sb_cli, cli, tmp_path):
    from datetime import UTC, datetime

    refresh_at = save_tiktok_expiry(sandbox, 5.05)
    day = datetime.fromtimestamp(refresh_at, UTC).strftime("%Y-%m-%d")
    doctor = sb_cli("doctor")
    assert f"refresh token expires in 5 days ({day})" in doctor.output
    assert "warning: TikTok refresh token expires in 5 days" in doctor.stderr
    assert "access token expires in 2 h" in doctor.output  # renewed by ecomsend: no warning for it
    assert "Shopify" in doctor.output

    config = write_config(sandbox, tmp_path, urls=[receiver(sandbox)])
    assert cli("--config", config, "sync-orders", store=None).exit_code == 3
    [message] = messages(sandbox)
    assert f"TikTok refresh token expires in 5 days ({day}): authorise the shop again" in message["message"]


def test_a_refresh_token_a_month_away_is_not_told(sandbox, sb_cli, cli, tmp_path):
    save_tiktok_expiry(sandbox, 30.5)
    doctor = sb_cli("doctor")
    assert "refresh token expires in 30 days" in doctor.output and "warning: TikTok" not in doctor.stderr
    config = write_config(sandbox, tmp_path, urls=[receiver(sandbox)])
    assert cli("--config", config, "sync-orders", store=None).exit_code == 3
    assert messages(sandbox) == []


def test_expiry_countdowns_read_as_a_person_counts():
    now = 1_800_000_000
    assert countdown(5 * 86400 + 60) == "5 days"
    assert countdown(20 * 3600) == "20 h"
    assert countdown(90) == "1 min"
    soon = TokenExpiry("TikTok", "refresh token", now + 6 * 86400)
    assert soon.needs_operator(now) and soon.describe(now) == "refresh token expires in 6 days (2027-01-21)"
    assert not TokenExpiry("TikTok", "access token", now + 3600, renewed=True).needs_operator(now)
    gone = TokenExpiry("TikTok", "refresh token", now - 3 * 86400)
    assert gone.needs_operator(now) and gone.describe(now).startswith("refresh token expired 3 days ago")
    assert not TokenExpiry("Shopify", "client secret", None, note="no expiry").needs_operator(now)


# --- config -------------------------------------------------------------------------------------


@pytest.mark.parametrize("urls, says", [
    ("json://127.0.0.1:9/x", "'notify.urls' must be a list of Apprise URLs"),
    ([42], "'notify.urls[0]' must be an Apprise URL (a string)"),
    (["ntfy://ntfy.sh/ok", "slack:/T0KEN-A/T0KEN-B"], "'notify.urls[1]' is not an Apprise URL"),
])
def test_bad_notify_urls_are_one_line_naming_the_key(cli, tmp_path, urls, says):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"notify": {"urls": urls}}))
    result = cli("--config", str(path), "config", "show")
    assert result.exit_code == 1
    assert says in result.stderr and "e.g." in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "T0KEN" not in result.output


def test_config_show_redacts_apprise_urls_and_refuses_one_apprise_cannot_read(cli, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"notify": {"urls": ["slack://T0KA/T0KB/T0KC", "ntfy://ntfy.sh/t0pic"]}}))
    os.chmod(path, 0o600)
    shown = cli("--config", str(path), "config", "show", "--json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["notify"]["urls"] == ["slack://********", "ntfy://********"]
    assert "T0K" not in shown.output and "t0pic" not in shown.output

    path.write_text(yaml.safe_dump({"notify": {"urls": ["nosuchservice://h0st/T0KEN"]}}))
    refused = cli("--config", str(path), "config", "show")
    assert refused.exit_code == 1
    assert "Apprise cannot read notify.urls[0] (nosuchservice://********)" in refused.stderr
    assert "T0KEN" not in refused.output


def test_help_does_not_import_apprise():
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "ecomsend_cli", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert "apprise" not in out.stderr
