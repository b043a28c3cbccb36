"""TikTokClient against httpx.MockTransport: signing, envelope errors, tokens, retries."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from urllib.parse import parse_qsl

import httpx
import pytest

from ecomsend_cli.config import Secret, TikTokConfig
from ecomsend_cli.errors import ApiError, AuthError, NetworkError, RateLimitedError
from ecomsend_cli.models import MemoryTokenCache
from ecomsend_cli.tiktok import TikTokClient, sign

NOW = 1_700_000_000
SECRET = "s3cr3t-app-secret"
API = "https://open-api.test"
AUTH = "https://auth.test"


def make_config(**overrides: object) -> TikTokConfig:
    values: dict[str, object] = {
        "api_base_url": API,
        "auth_base_url": AUTH,
        "app_key": "appkey1",
        "app_secret": Secret(SECRET),
        "access_token": Secret("AT-config"),
        "refresh_token": Secret("RT-config"),
        "shop_cipher": "ROW_cipher",
    }
    values.update(overrides)
    return TikTokConfig(**values)  # type: ignore[arg-type]


def envelope(code: int = 0, data: object = None, message: str = "Success", request_id: str = "RID-1") -> dict:
    return {"code": code, "message": message, "request_id": request_id, "data": data}


class Recorder:
    """A MockTransport handler answering from a list of (status, body) and recording requests."""

    def __init__(self, answers: list[tuple[int, object] | Callable[[httpx.Request], httpx.Response]]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if callable(answer):
            return answer(request)
        status, body = answer
        if isinstance(body, dict):
            return httpx.Response(status, json=body)
        return httpx.Response(status, content=str(body).encode())

    def query(self, index: int) -> dict[str, str]:
        return dict(parse_qsl(self.requests[index].url.query.decode(), keep_blank_values=True))


def make_client(recorder: Recorder, cache: MemoryTokenCache | None = None, **kwargs: object):
    sleeps: list[float] = []
    client = TikTokClient(
        kwargs.pop("config", None) or make_config(),  # type: ignore[arg-type]
        cache if cache is not None else MemoryTokenCache(),
        transport=httpx.MockTransport(recorder),
        sleep=sleeps.append,
        clock=kwargs.pop("clock", lambda: NOW),  # type: ignore[arg-type]
        rng=lambda: 0.5,
        **kwargs,  # type: ignore[arg-type]
    )
    return client, sleeps


# -- signing -------------------------------------------------------------------------

def test_sign_matches_published_vector_for_authorized_shops() -> None:
    got = sign("e59af819cc", "/authorization/202309/shops", {"app_key": "29a39d", "timestamp": "1623812664"})
    assert got == "b596b73e0cc6de07ac26f036364178ab16b0a907af13d43f0a0cd2345f582dc8"


def test_sign_matches_published_vector_for_webhooks_with_shop_cipher() -> None:
    params = {"app_key": "68xu9ks5p4i8", "shop_cipher": "ROW_xkMbgAAAeVAQra0eZWebFQq5aIK",
              "timestamp": "1696909648"}
    got = sign("e59af819cc", "/event/202309/webhooks", params)
    assert got == "ed58e1b5e59865c22a7b828c1cab65007441f43cc91a6cb2f2cdc638e0995a37"


def test_sign_ignores_sign_and_access_token_and_appends_body_unless_multipart() -> None:
    base = {"app_key": "k", "timestamp": "1"}
    plain = sign("x", "/p", base)
    assert sign("x", "/p", {**base, "sign": "old", "access_token": "t"}) == plain
    assert sign("x", "/p", base, b'{"a":1}') != plain
    assert sign("x", "/p", base, '{"a":1}') == sign("x", "/p", base, b'{"a":1}')
    assert sign("x", "/p", base, b"--boundary", "multipart/form-data; boundary=b") == plain


# -- what every request carries ----------------------------------------------------------

def test_request_is_signed_with_app_key_timestamp_cipher_and_token_header() -> None:
    rec = Recorder([(200, envelope(data={"orders": [], "next_page_token": ""}))])
    client, _ = make_client(rec)
    assert list(client.search_orders(update_time_ge=NOW - 3600, update_time_lt=NOW)) == []
    request = rec.requests[0]
    query = rec.query(0)
    assert request.url.path == "/order/202309/orders/search"
    assert request.headers["x-tts-access-token"] == "AT-config"
    assert query["app_key"] == "appkey1"
    assert query["timestamp"] == str(NOW)
    assert query["shop_cipher"] == "ROW_cipher"
    assert query["sort_field"] == "update_time" and query["sort_order"] == "ASC"
    assert json.loads(request.content) == {"update_time_ge": NOW - 3600, "update_time_lt": NOW}
    assert query["sign"] == sign(SECRET, request.url.path, query, request.content)


def test_authorized_shops_is_not_shop_scoped() -> None:
    rec = Recorder([(200, envelope(data={"shops": [{"id": "1", "cipher": "C1"}]}))])
    client, _ = make_client(rec)
    assert client.authorized_shops() == [{"id": "1", "cipher": "C1"}]
    assert "shop_cipher" not in rec.query(0)
    assert rec.requests[0].url.path == "/authorization/202309/shops"


def test_shop_cipher_defaults_to_first_authorized_shop_and_is_cached() -> None:
    cache = MemoryTokenCache()
    rec = Recorder([
        (200, envelope(data={"shops": [{"id": "1", "cipher": "FIRST"}, {"id": "2", "cipher": "SECOND"}]})),
        (200, envelope(data={"id": "P1", "skus": []})),
    ])
    client, _ = make_client(rec, cache, config=make_config(shop_cipher=""))
    client.get_product("P1")
    assert rec.query(1)["shop_cipher"] == "FIRST"
    assert rec.requests[1].url.path == "/product/202309/products/P1"

    again = Recorder([(200, envelope(data={"id": "P1", "skus": []}))])
    second, _ = make_client(again, cache, config=make_config(shop_cipher=""))
    second.get_product("P1")
    assert len(again.requests) == 1  # no second shops lookup
    assert again.query(0)["shop_cipher"] == "FIRST"


# -- envelope errors -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("code", "message", "error", "says"),
    [
        (106001, "Invalid credentials. The 'sign' query parameter is invalid.", AuthError, "app_secret"),
        (105001, "Invalid credentials.", AuthError, "re-authorise"),
        (105005, "Access denied. The app is not authorized", AuthError, "scope"),
        (36009004, "Invalid credentials. Invalid app_key query parameter.", AuthError, "app_key"),
        (36009004, "Invalid timestamp. Must not be earlier than 5 minutes.", ApiError, "clock"),
        (106013, "Missing identifier.", ApiError, "shop_cipher"),
        (12345678, "Something odd", ApiError, "Something odd"),
    ],
)
def test_envelope_codes_become_typed_errors_with_request_id(
    code: int, message: str, error: type[ApiError], says: str
) -> None:
    rec = Recorder([(401 if error is AuthError else 200, envelope(code, message=message, request_id="RID-77"))])
    client, _ = make_client(rec)
    with pytest.raises(ApiError) as caught:
        client.get_orders(["1"])
    assert type(caught.value) is error
    assert caught.value.request_id == "RID-77"
    assert caught.value.code == code
    assert "RID-77" in str(caught.value)
    assert says in str(caught.value)
    assert len(rec.requests) == 1  # not retried


def test_non_json_client_error_is_not_retried() -> None:
    rec = Recorder([(404, "<html>not found</html>")])
    client, _ = make_client(rec)
    with pytest.raises(ApiError, match="api_base_url"):
        client.authorized_shops()
    assert len(rec.requests) == 1


def test_an_answer_nested_deeper_than_the_parser_recurses_is_an_unreadable_answer_not_a_traceback() -> None:
    # json.loads raises RecursionError (not ValueError) past ~1,000 levels of nesting.
    deep = "[" * 100_000 + "]" * 100_000
    rec = Recorder([(404, deep)])
    client, _ = make_client(rec)
    with pytest.raises(ApiError, match="api_base_url"):
        client.authorized_shops()
    assert len(rec.requests) == 1  # read as a non-JSON client error: not sent again


# -- tokens ----------------------------------------------------------------------------------

def refresh_answer(access: str, refresh: str, expires: int = NOW + 86400) -> tuple[int, dict]:
    return (200, envelope(data={
        "access_token": access, "access_token_expire_in": expires,
        "refresh_token": refresh, "refresh_token_expire_in": NOW + 365 * 86400,
        "open_id": "o", "seller_name": "s",
    }))


def test_expired_token_is_refreshed_then_request_retried_and_tokens_saved() -> None:
    cache = MemoryTokenCache()
    rec = Recorder([
        (401, envelope(105002, message="Expired credentials.")),
        refresh_answer("AT-new", "RT-new"),
        (200, envelope(data={"orders": [{"id": "O1"}]})),
        (200, envelope(data={"orders": [{"id": "O2"}]})),
    ])
    client, _ = make_client(rec, cache)
    assert client.get_orders(["O1"]) == [{"id": "O1"}]

    refresh = rec.requests[1]
    assert str(refresh.url).startswith(AUTH + "/api/v2/token/refresh?")
    assert refresh.method == "GET"
    assert rec.query(1) == {"app_key": "appkey1", "app_secret": SECRET,
                            "refresh_token": "RT-config", "grant_type": "refresh_token"}
    assert rec.requests[2].headers["x-tts-access-token"] == "AT-new"
    saved = cache.load_token("tiktok")
    assert saved and saved["access_token"] == "AT-new" and saved["refresh_token"] == "RT-new"
    assert saved["access_token_expire_in"] == NOW + 86400

    # A new client (next cron run) prefers the saved tokens over the config's.
    client.get_orders(["O2"])
    assert rec.requests[3].headers["x-tts-access-token"] == "AT-new"
    later = Recorder([(200, envelope(data={"orders": []}))])
    next_run, _ = make_client(later, cache)
    next_run.get_orders(["O3"])
    assert later.requests[0].headers["x-tts-access-token"] == "AT-new"


def test_refresh_failure_says_to_reauthorise_without_leaking_secrets() -> None:
    rec = Recorder([
        (401, envelope(105002, message="Expired credentials.")),
        (401, envelope(36004005, message="can not find related auth record", request_id="RID-R")),
    ])
    client, _ = make_client(rec)
    with pytest.raises(AuthError) as caught:
        client.get_orders(["O1"])
    text = str(caught.value)
    assert "re-authorise" in text
    assert caught.value.request_id == "RID-R"
    assert caught.value.code == 36004005
    for secret in (SECRET, "RT-config", "AT-config"):
        assert secret not in text and secret not in repr(caught.value)
    assert len(rec.requests) == 2  # no retry of the API call after a failed refresh


def test_still_expired_after_refresh_is_an_auth_error_not_a_loop() -> None:
    rec = Recorder([
        (401, envelope(105002)),
        refresh_answer("AT-new", "RT-new"),
        (401, envelope(105002, request_id="RID-again")),
    ])
    client, _ = make_client(rec)
    with pytest.raises(AuthError) as caught:
        client.get_orders(["O1"])
    assert caught.value.request_id == "RID-again"
    assert len(rec.requests) == 3


def test_token_past_its_saved_expiry_is_refreshed_before_the_call() -> None:
    cache = MemoryTokenCache()
    rec = Recorder([
        (401, envelope(105002)),
        refresh_answer("AT-1", "RT-1", expires=NOW + 100),
        (200, envelope(data={"orders": []})),
        refresh_answer("AT-2", "RT-2", expires=NOW + 100_000),
        (200, envelope(data={"orders": []})),
    ])
    clock = [NOW]
    client, _ = make_client(rec, cache, clock=lambda: clock[0])
    client.get_orders(["O1"])
    clock[0] = NOW + 100  # the saved expiry has passed
    client.get_orders(["O1"])
    assert rec.requests[3].url.path == "/api/v2/token/refresh"
    assert rec.query(3)["refresh_token"] == "RT-1"
    assert rec.requests[4].headers["x-tts-access-token"] == "AT-2"
    assert cache.load_token("tiktok")["refresh_token"] == "RT-2"  # type: ignore[index]


def test_new_tokens_in_the_config_win_over_the_cache() -> None:
    cache = MemoryTokenCache()
    rec = Recorder([(401, envelope(105002)), refresh_answer("AT-old-run", "RT-old-run"),
                    (200, envelope(data={"orders": []}))])
    client, _ = make_client(rec, cache)
    client.get_orders(["O1"])

    # The operator re-authorised and pasted fresh tokens into the config.
    later = Recorder([(200, envelope(data={"orders": []}))])
    fresh = make_config(access_token=Secret("AT-pasted"), refresh_token=Secret("RT-pasted"))
    next_run, _ = make_client(later, cache, config=fresh)
    next_run.get_orders(["O1"])
    assert later.requests[0].headers["x-tts-access-token"] == "AT-pasted"


def test_only_a_refresh_token_configured_refreshes_first() -> None:
    rec = Recorder([refresh_answer("AT-new", "RT-new"), (200, envelope(data={"shops": []}))])
    client, _ = make_client(rec, config=make_config(access_token=None))
    assert client.authorized_shops() == []
    assert rec.requests[0].url.path == "/api/v2/token/refresh"


# -- two processes refreshing at once (the refresh token rotates) ---------------------------

class RotatingTikTok:
    """TikTok's token rules, for several clients at once: each refresh issues a new pair and
    makes the refresh token it used unknown (36004005); an access token stays valid until it
    expires (the configured one, AT-config, has expired)."""

    def __init__(self) -> None:
        self.valid: set[str] = set()
        self.refresh, self.issued = "RT-config", 0
        self.refreshes: list[tuple[str, int]] = []  # (refresh token presented, code answered)
        self.before_refresh: Callable[[], None] | None = None  # runs as a refresh arrives

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v2/token/refresh":
            hook, self.before_refresh = self.before_refresh, None
            if hook is not None:
                hook()  # another process's refresh gets there first
            presented = dict(parse_qsl(request.url.query.decode()))["refresh_token"]
            if presented != self.refresh:
                self.refreshes.append((presented, 36004005))
                return httpx.Response(200, json=envelope(36004005, message="can not find related auth record"))
            self.issued += 1
            access, self.refresh = f"AT-{self.issued}", f"RT-{self.issued}"
            self.valid.add(access)
            self.refreshes.append((presented, 0))
            return httpx.Response(200, json=envelope(data={
                "access_token": access, "access_token_expire_in": NOW + 86400,
                "refresh_token": self.refresh, "refresh_token_expire_in": NOW + 365 * 86400}))
        if request.headers["x-tts-access-token"] not in self.valid:
            return httpx.Response(401, json=envelope(105002, message="Expired credentials."))
        return httpx.Response(200, json=envelope(data={"shops": [{"id": "1", "cipher": "C1"}]}))


def rotating_client(tiktok: RotatingTikTok, cache: MemoryTokenCache, sleep=None, **config: object):
    return TikTokClient(make_config(**config), cache, transport=httpx.MockTransport(tiktok),
                        sleep=sleep or (lambda s: None), clock=lambda: NOW, rng=lambda: 0.5)


def test_a_refresh_token_another_process_used_first_continues_with_its_pair() -> None:
    tiktok, cache = RotatingTikTok(), MemoryTokenCache()
    loser, winner = rotating_client(tiktok, cache), rotating_client(tiktok, cache)
    # Both read the same pair; the winner's refresh reaches TikTok first and is saved at once.
    tiktok.before_refresh = winner.refresh_access_token
    assert loser.authorized_shops() == [{"id": "1", "cipher": "C1"}]
    assert tiktok.refreshes == [("RT-config", 0), ("RT-config", 36004005)]
    assert cache.load_token("tiktok")["refresh_token"] == "RT-1"  # type: ignore[index]
    assert winner.authorized_shops() and loser.authorized_shops()  # no further refresh
    assert len(tiktok.refreshes) == 2


def test_a_refused_refresh_waits_for_the_winner_to_save_its_pair() -> None:
    tiktok, cache = RotatingTikTok(), MemoryTokenCache()
    winner_cache = MemoryTokenCache()  # the winner saves only once the loser has looked twice
    winner = rotating_client(tiktok, winner_cache)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            cache.save_token("tiktok", winner_cache.load_token("tiktok"))  # type: ignore[arg-type]

    loser = rotating_client(tiktok, cache, sleep=sleep)
    tiktok.before_refresh = winner.refresh_access_token
    assert loser.authorized_shops() == [{"id": "1", "cipher": "C1"}]
    assert len(sleeps) == 2 and sum(sleeps) < 1
    assert cache.load_token("tiktok")["access_token"] == "AT-1"  # type: ignore[index]


def test_a_pair_another_process_saved_is_used_instead_of_refreshing() -> None:
    tiktok, cache = RotatingTikTok(), MemoryTokenCache()
    late, early = rotating_client(tiktok, cache), rotating_client(tiktok, cache)
    assert early.authorized_shops()  # refreshes: RT-config is used up
    assert late.authorized_shops()  # its stale token is refused; the saved pair is taken
    assert tiktok.refreshes == [("RT-config", 0)]


def test_a_refused_refresh_with_no_newer_pair_still_says_reauthorise() -> None:
    tiktok, cache = RotatingTikTok(), MemoryTokenCache()
    tiktok.refresh = "RT-issued-elsewhere"  # e.g. revoked in Partner Center: nobody saves a pair
    sleeps: list[float] = []
    client = rotating_client(tiktok, cache, sleep=sleeps.append)
    with pytest.raises(AuthError, match="re-authorise"):
        client.authorized_shops()
    assert 1 <= sum(sleeps) <= 5  # looked in the cache for a couple of seconds, then gave up


def test_resolving_the_shop_cipher_never_saves_an_older_pair_over_a_newer_one() -> None:
    tiktok, cache = RotatingTikTok(), MemoryTokenCache()
    tiktok.valid.add("AT-config")  # not expired yet
    old = rotating_client(tiktok, cache, shop_cipher="")  # holds AT-config / RT-config
    rotating_client(tiktok, cache).refresh_access_token()  # another process: RT-config -> RT-1
    assert old.resolve_shop_cipher() == "C1"  # AT-config still works: no refresh of its own
    saved = cache.load_token("tiktok")
    assert saved is not None and saved["refresh_token"] == "RT-1" and saved["shop_cipher"] == "C1"


def test_refresh_request_secrets_are_redacted_in_httpx_logs(caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder([(401, envelope(105002)), refresh_answer("AT-new", "RT-new"),
                    (200, envelope(data={"orders": []}))])
    client, _ = make_client(rec)
    with caplog.at_level(logging.INFO, logger="httpx"):
        client.get_orders(["O1"])
    assert "token/refresh" in caplog.text
    assert SECRET not in caplog.text
    assert "RT-config" not in caplog.text


# -- retries ---------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [200, 429])
def test_throttled_requests_back_off_with_jitter_then_succeed(status: int) -> None:
    rec = Recorder([
        (429, envelope(36009002, message="Too many requests.")),
        (status, envelope(36009002, message="Too many requests.")),
        (200, envelope(data={"orders": [{"id": "O1"}]})),
    ])
    client, sleeps = make_client(rec, backoff_base=1.0)
    assert client.get_orders(["O1"]) == [{"id": "O1"}]
    assert len(rec.requests) == 3
    # exponential (1 s, 2 s) times the jitter factor (0.75 with rng() == 0.5)
    assert sleeps == [0.75, 1.5]
    # each attempt is signed afresh
    assert all(rec.query(i)["sign"] for i in range(3))


def test_throttling_that_never_ends_raises_rate_limited_error() -> None:
    rec = Recorder([(429, envelope(36009002, request_id=f"R{i}")) for i in range(3)])
    client, sleeps = make_client(rec, max_retries=2)
    with pytest.raises(RateLimitedError) as caught:
        client.get_orders(["O1"])
    assert caught.value.request_id == "R2"
    assert len(sleeps) == 2


def test_server_errors_are_retried() -> None:
    rec = Recorder([(502, "bad gateway"), (500, envelope(36009003, message="Internal error.")),
                    (200, envelope(data={"orders": [{"id": "O1"}]}))])
    client, sleeps = make_client(rec)
    assert client.get_orders(["O1"]) == [{"id": "O1"}]
    assert len(sleeps) == 2


def test_network_errors_are_retried_then_reported() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    rec = Recorder([fail, fail, (200, envelope(data={"shops": []}))])
    client, _ = make_client(rec)
    assert client.authorized_shops() == []

    down = Recorder([fail] * 4)
    client, sleeps = make_client(down, max_retries=3)
    with pytest.raises(NetworkError, match=r"4 attempt\(s\)"):
        client.authorized_shops()
    assert len(sleeps) == 3


# -- paging ----------------------------------------------------------------------------------

def test_search_orders_follows_page_tokens_and_yields_each_page() -> None:
    rec = Recorder([
        (200, envelope(data={"orders": [{"id": "1"}, {"id": "2"}], "next_page_token": "T1", "total_count": 5})),
        (200, envelope(data={"orders": [{"id": "3"}, {"id": "4"}], "next_page_token": "T2", "total_count": 5})),
        (200, envelope(data={"orders": [{"id": "5"}], "next_page_token": "", "total_count": 5})),
    ])
    client, _ = make_client(rec)
    pages = list(client.search_orders(update_time_ge=100, page_size=2))
    assert [[o["id"] for o in page] for page in pages] == [["1", "2"], ["3", "4"], ["5"]]
    assert "page_token" not in rec.query(0)
    assert rec.query(1)["page_token"] == "T1" and rec.query(2)["page_token"] == "T2"
    assert all(rec.query(i)["page_size"] == "2" for i in range(3))
    assert all(json.loads(r.content) == {"update_time_ge": 100} for r in rec.requests)


def test_search_orders_stops_on_a_page_token_loop() -> None:
    page = envelope(data={"orders": [{"id": "1"}], "next_page_token": "SAME"})
    rec = Recorder([(200, page), (200, page)])
    client, _ = make_client(rec)
    with pytest.raises(ApiError, match="page token"):
        list(client.search_orders(update_time_ge=0))


def test_get_orders_asks_in_batches_of_fifty() -> None:
    ids = [str(i) for i in range(120)]
    rec = Recorder([(200, envelope(data={"orders": [{"id": i} for i in chunk]}))
                    for chunk in (ids[:50], ids[50:100], ids[100:])])
    client, _ = make_client(rec)
    assert [o["id"] for o in client.get_orders(ids)] == ids
    assert [len(rec.query(i)["ids"].split(",")) for i in range(3)] == [50, 50, 20]
    assert client.get_orders([]) == []


def test_search_products_reads_every_page() -> None:
    rec = Recorder([
        (200, envelope(data={"products": [{"id": "P1"}], "next_page_token": "N"})),
        (200, envelope(data={"products": [{"id": "P2"}], "next_page_token": ""})),
    ])
    client, _ = make_client(rec)
    assert [p["id"] for p in client.search_products(page_size=1)] == ["P1", "P2"]
    assert rec.requests[0].url.path == "/product/202309/products/search"
    assert rec.query(1)["page_token"] == "N"


@pytest.mark.parametrize(("data", "problem"), [
    ({"orders": {"id": "1"}, "next_page_token": ""}, "'orders' as dict, not a list"),
    ({"orders": "none", "next_page_token": ""}, "'orders' as str, not a list"),
    ({"orders": [], "next_page_token": 7}, "unusable next_page_token (int)"),
    (["not", "an", "object"], "data as list, not an object"),
])
def test_a_page_of_the_wrong_shape_is_one_clear_error(data, problem) -> None:
    client, _ = make_client(Recorder([(200, envelope(data=data))]))
    with pytest.raises(ApiError) as caught:
        list(client.search_orders(update_time_ge=0))
    assert problem in caught.value.message
    assert "run again later" in (caught.value.hint or "")


class WindowedTikTok:
    """TikTok's throttling as the simulator does it: at most ``limit`` requests accepted in any
    ``window`` seconds of a fake clock; the rest refused with 36009002 / HTTP 429."""

    def __init__(self, limit: int, window: float = 1.0) -> None:
        self.limit, self.window, self.now = limit, window, 0.0
        self.accepted: list[float] = []
        self.refused = 0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __call__(self, request: httpx.Request) -> httpx.Response:
        recent = [t for t in self.accepted if t > self.now - self.window]
        if len(recent) >= self.limit:
            self.refused += 1
            return httpx.Response(429, json=envelope(36009002, message="Too many requests."))
        self.accepted.append(self.now)
        return httpx.Response(200, json=envelope(data={"orders": [{"id": "O1"}]}))


def test_a_refusal_teaches_the_rate_and_later_requests_wait_for_the_window() -> None:
    from ecomsend_cli.tiktok_session import RatePacer

    tiktok = WindowedTikTok(limit=5)
    client = TikTokClient(make_config(), MemoryTokenCache(), transport=httpx.MockTransport(tiktok),
                          sleep=tiktok.sleep, clock=lambda: NOW, rng=lambda: 0.5)
    client.pacer = RatePacer(clock=lambda: tiktok.now, sleep=tiktok.sleep)
    for _ in range(30):
        assert client.get_orders(["O1"]) == [{"id": "O1"}]
    # One refusal shows the limit (5 a second); after it every request waits for its place
    # instead of backing off blindly, so 30 requests take the 6 windows they need, not more.
    assert tiktok.refused == 1
    assert client.pacer.limit == 5
    assert tiktok.now <= 5 + 6 * RatePacer.MARGIN_S + 0.01


def test_a_refusal_with_nothing_accepted_before_it_teaches_nothing() -> None:
    from ecomsend_cli.tiktok_session import RatePacer

    pacer = RatePacer(clock=lambda: 10.0, sleep=lambda s: None)
    sent = pacer.acquire()
    pacer.refused(sent)  # another process spent the budget: back off instead
    assert pacer.limit is None


def clocked_pacer():
    from ecomsend_cli.tiktok_session import RatePacer

    now = [0.0]
    return now, RatePacer(clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))


def test_requests_still_out_at_a_refusal_are_not_counted_until_answered() -> None:
    now, pacer = clocked_pacer()
    sent = [pacer.acquire() for _ in range(7)]  # concurrent senders: all seven out at once
    for t in sent[:5]:
        pacer.answered(t)
    pacer.refused(sent[5])  # the 6th is refused while the 7th is still out...
    assert pacer.limit is None  # ...so nothing is learned yet: the 7th may be a refusal too
    pacer.refused(sent[6])
    assert pacer.limit == 5  # not 6: the 7th, refused, was never one TikTok counted


def test_a_later_refusal_below_the_limit_widens_the_margin_before_lowering_the_limit() -> None:
    from ecomsend_cli.tiktok_session import RatePacer

    now, pacer = clocked_pacer()

    def accepted(n: int) -> None:
        for _ in range(n):
            pacer.answered(pacer.acquire())

    accepted(5)
    pacer.refused(pacer.acquire())
    assert pacer.limit == 5
    now[0] = 10.0  # a later window: three accepted, then a refusal (arrivals bunched up at TikTok)
    accepted(3)
    pacer.refused(pacer.acquire())
    assert pacer.limit == 5 and pacer.margin == 2 * RatePacer.MARGIN_S
    while pacer.margin < RatePacer.MAX_MARGIN_S:  # refused again and again: the margin widens...
        pacer.refused(pacer.acquire())
    assert pacer.limit == 5
    pacer.refused(pacer.acquire())  # ...and only at its widest is the limit lowered
    assert pacer.limit == 3
