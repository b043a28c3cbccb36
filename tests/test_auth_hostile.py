"""`auth tiktok` against a hostile or broken token/get and shops answer: no secret echoed, no traceback."""

from __future__ import annotations

import httpx
import pytest

from ecomsend_cli.config import Secret, TikTokConfig
from ecomsend_cli.errors import ApiError, AuthError
from ecomsend_cli.expiry import tiktok_expiries
from ecomsend_cli.models import MemoryTokenCache
from ecomsend_cli.tiktok import TikTokClient

APP_SECRET = "APPSECRET-zz9-hostile"
CODE = "AUTHCODE-qq7-hostile"
GOOD = {"access_token": "AT-hostile", "refresh_token": "RT-hostile", "access_token_expire_in": 4_000_000_000,
        "refresh_token_expire_in": 4_100_000_000, "open_id": "o", "seller_name": "S",
        "seller_base_region": "GB", "granted_scopes": ["a"]}


def _client(token_answer, shops_answer=None, calls=None):
    def handler(request: httpx.Request) -> httpx.Response:
        if calls is not None:
            calls.append(request.url.path)
        if request.url.path == "/api/v2/token/get":
            status, body = token_answer(request)
        else:
            status, body = shops_answer or (200, {"code": 0, "message": "ok", "request_id": "r",
                                                 "data": {"shops": [{"name": "A", "cipher": "C1"}]}})
        return httpx.Response(status, json=body) if not isinstance(body, str) else httpx.Response(status, text=body)

    config = TikTokConfig(api_base_url="https://api.test", auth_base_url="https://auth.test", app_key="k",
                          app_secret=Secret(APP_SECRET))
    return TikTokClient(config, MemoryTokenCache(), transport=httpx.MockTransport(handler), sleep=lambda _s: None)


def _ok(**data):
    return lambda _r: (200, {"code": 0, "message": "ok", "request_id": "r", "data": {**GOOD, **data}})


@pytest.mark.parametrize("status", [200, 400])
def test_an_error_message_quoting_the_code_and_secret_is_blanked(status):
    def echo(request):
        q = request.url.params
        return status, {"code": 36004004, "request_id": "r",
                        "message": f"auth_code {q['auth_code']} invalid for app_secret {q['app_secret']}"}

    with _client(echo) as client, pytest.raises(AuthError) as caught:
        client.exchange_auth_code(CODE)
    text = str(caught.value)
    assert "36004004" in text and "********" in text
    assert CODE not in text and APP_SECRET not in text


@pytest.mark.parametrize("expire", ["soon", -5, 10**30, 1e308, [1], {"a": 1}, True])
def test_expiries_in_the_wrong_form_become_unknown_not_a_crash(expire):
    with _client(_ok(access_token_expire_in=expire, refresh_token_expire_in=expire)) as client:
        seller = client.exchange_auth_code(CODE)
        assert seller["access_token_expire_in"] is None and seller["refresh_token_expire_in"] is None
        for e in tiktok_expiries(seller, has_refresh=True):
            assert "not known" in e.describe()


def test_numeric_string_expiries_are_read():
    with _client(_ok(access_token_expire_in="4000000000")) as client:
        assert client.exchange_auth_code(CODE)["access_token_expire_in"] == 4_000_000_000


def test_an_expiry_past_year_9999_in_a_cache_is_described_not_raised():
    doc = {"access_token_expire_in": 10**30, "refresh_token_expire_in": float("inf")}
    assert all("not known" in e.describe() for e in tiktok_expiries(doc, has_refresh=True))


@pytest.mark.parametrize("bad", [{"access_token": 12345}, {"access_token": "  "}, {"refresh_token": ["RT"]}])
def test_tokens_of_the_wrong_type_are_refused_and_nothing_is_kept(bad):
    with _client(_ok(**bad)) as client, pytest.raises(AuthError, match="no usable access token"):
        client.exchange_auth_code(CODE)
    assert client._cache.load_token("tiktok") is None


def test_names_lose_escapes_and_line_breaks_and_are_bounded():
    name = "\x1b[2J\x1b]0;pwn\x07Evil\r\nerror: fake\u202e" + "x" * 5000
    with _client(_ok(seller_name=name, seller_base_region="\x1b[31mUS", granted_scopes="abc")) as client:
        seller = client.exchange_auth_code(CODE)
    assert seller["seller_name"].startswith("Evil error: fake") and len(seller["seller_name"]) <= 201
    assert "\n" not in seller["seller_name"] and "[2J" not in seller["seller_name"]
    assert seller["seller_base_region"] == "US" and seller["granted_scopes"] == []


@pytest.mark.parametrize("shops", ["nope", {"a": 1}, ["x", "y"]])
def test_a_shops_list_that_is_not_a_list_of_shops_is_one_error(shops):
    answer = (200, {"code": 0, "message": "ok", "request_id": "r", "data": {"shops": shops}})
    with _client(_ok(), answer) as client:
        client.exchange_auth_code(CODE)
        with pytest.raises(ApiError, match="authorised shops in a form"):
            client.authorized_shops()


def test_a_5xx_to_the_exchange_is_not_resent_and_says_the_code_may_be_used():
    calls: list[str] = []
    with _client(lambda _r: (502, "bad gateway"), calls=calls) as client, pytest.raises(AuthError) as caught:
        client.exchange_auth_code(CODE)
    assert calls == ["/api/v2/token/get"]  # once: a resend would only earn "code used"
    assert "may be used up" in str(caught.value) and "HTTP 502" in str(caught.value)
