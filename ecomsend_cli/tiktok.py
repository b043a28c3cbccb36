"""TikTok Shop Open API client: signing, tokens, retries, reads and the few writes.

This module owns how ecomsend talks to TikTok Shop:

* :func:`sign` — the request signature of DESIGN §9;
* :class:`TikTokClient` — every request signed and sent with ``app_key``,
  ``timestamp``, ``sign`` (and ``shop_cipher`` where the endpoint is
  shop-scoped) as query parameters and the access token in the
  ``x-tts-access-token`` header; the ``{code, message, request_id, data}``
  envelope turned into the typed errors of :mod:`ecomsend_cli.errors`;
  an expired access token (105002) refreshed with the refresh token and the
  new pair saved in the token cache, and a pair saved there by another
  process (TikTok rotates the refresh token) taken instead; throttling (36009002 / HTTP 429) backed
  off with jitter.

Reads (202309 orders, products, shops; logistics shipping providers; the
202406 external order references; return_refund cancellations and returns
search) are retried on 5xx answers and network errors.

**Writes are not idempotent** (DESIGN §6b): Mark Package As Shipped, Ship
Package, Update Package Shipping Info and Add External Order References take
no idempotency key. A write is sent again only when TikTok certainly did not
run it: the connection could not be made, the request was throttled
(36009002 / HTTP 429), or the access token had expired (105002, refreshed and
sent again). A clear error envelope (any other non-zero code) is TikTok's
refusal, raised as today. Everything else once the request may have left —
a timeout, a dropped connection, a 5xx (or 36009003, internal error), an
answer that is not a TikTok envelope, a success whose ``data`` is not usable
— raises :class:`~ecomsend_cli.errors.OutcomeUnknownError`, sent once; the
caller looks the outcome up (:meth:`TikTokClient.get_orders`) before any retry.

Answers are checked at this boundary: a page or a record list of the wrong
shape is one clear :class:`~ecomsend_cli.errors.ApiError`. The client never
prints; secrets never reach a message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from .config import TikTokConfig
from .errors import ApiError, AuthError, NetworkError, OutcomeUnknownError, PagingError, RateLimitedError
from .models import TokenCache
from .transport import deadline, deadline_passed, http_client, tls_verify

TOKEN_CACHE_NAME = "tiktok"

# Envelope codes (TikTok Shop "common errors" and auth API).
CODE_OK = 0
CODE_TOKEN_INVALID = 105001
CODE_TOKEN_EXPIRED = 105002
CODE_SCOPE_MISSING = 105005
CODE_BAD_SIGNATURE = 106001
CODE_SHOP_CIPHER = 106013
CODE_TOO_MANY_REQUESTS = 36009002
CODE_INTERNAL = 36009003
CODE_INVALID_PARAM = 36009004
CODE_REFRESH_TOKEN_EXPIRED = 36004001
CODE_REFRESH_TOKEN_UNKNOWN = 36004005

ORDER_SEARCH_PATH = "/order/202309/orders/search"
ORDER_DETAIL_PATH = "/order/202309/orders"
PRODUCT_SEARCH_PATH = "/product/202309/products/search"
PRODUCT_DETAIL_PATH = "/product/202309/products/{product_id}"
SHOPS_PATH = "/authorization/202309/shops"
TOKEN_REFRESH_PATH = "/api/v2/token/refresh"
SHIPPING_PROVIDERS_PATH = "/logistics/202309/delivery_options/{delivery_option_id}/shipping_providers"
MARK_SHIPPED_PATH = "/fulfillment/202309/orders/{order_id}/packages"  # Mark Package As Shipped
SHIP_PACKAGE_PATH = "/fulfillment/202309/packages/{package_id}/ship"
SHIPPING_INFO_PATH = "/fulfillment/202309/packages/{package_id}/shipping_info/update"
EXTERNAL_ORDERS_ADD_PATH = "/order/202406/orders/external_orders"
EXTERNAL_ORDERS_GET_PATH = "/order/202406/orders/{order_id}/external_orders"
CANCELLATION_SEARCH_PATH = "/return_refund/202309/cancellations/search"
RETURN_SEARCH_PATH = "/return_refund/202309/returns/search"

MAX_ORDER_IDS = 50  # per GET /order/202309/orders call
# The most one call may take, retries of transport errors included (issue 15).
DEFAULT_DEADLINE = 30.0
# Paging bounds (issue 15): pages that bring no new order, and pages beyond
# what the first answer's total_count makes plausible (orders keep arriving
# while we page: a tenth more, and some pages of slack).
MAX_STALE_PAGES = 3
PAGE_SLACK = 10
MAX_PAGES_UNCOUNTED = 5_000
_PAGING_HINT = ("the orders pulled before it are kept and synced; run again later, and report it to "
                "TikTok if it persists")
MAX_PAGE_SIZE = 100
MAX_AFTERSALES_PAGE_SIZE = 50  # cancellations and returns search: "Upper limit 50"
_AFTERSALES_PAGING_HINT = ("the records pulled before it are kept and handled; run again later, and report it "
                           "to TikTok if it persists")
# Transport errors raised before any byte of the request left: a write may be sent again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
_UNKNOWN_HINT = "ecomsend looks the order up on TikTok before it is ever sent again"
# Ids that go into a URL path: TikTok's are digits; anything with / ? # would change the call.
_PATH_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Refresh a little before the recorded expiry: the request may take a while.
EXPIRY_MARGIN_S = 60
# After a refused refresh, when to look for another process's new pair in the token cache
# (seconds before each look): it saves it just after TikTok answered it.
REFRESH_RACE_WAITS_S = (0.0, 0.1, 0.2, 0.4, 0.6, 0.8)

_REAUTHORISE = (
    "re-authorise the shop in TikTok Shop Partner Center, then put the new tokens in "
    "tiktok.access_token and tiktok.refresh_token"
)


def sign(
    app_secret: str,
    path: str,
    params: Mapping[str, Any],
    body: bytes | str = b"",
    content_type: str = "application/json",
) -> str:
    """The TikTok Shop request signature (DESIGN §9), lowercase hex.

    HMAC-SHA256 keyed with the app secret over ``secret + path + every query
    parameter except sign and access_token as key+value, sorted by key + body
    + secret``; the body is left out for multipart/form-data uploads.
    """
    parts = [app_secret, path]
    for key in sorted(params):
        if key in ("sign", "access_token"):
            continue
        parts.append(f"{key}{params[key]}")
    if "multipart/form-data" not in (content_type or "").lower():
        parts.append(body.decode("utf-8") if isinstance(body, bytes) else body)
    parts.append(app_secret)
    message = "".join(parts)
    return hmac.new(app_secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _fingerprint(value: str) -> str:
    """A short one-way tag of a configured token, to notice when the config changes."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


class _RedactSecrets(logging.Filter):
    """Blanks secret query values in httpx's request log lines.

    The token refresh is a GET whose query carries the app secret and the
    refresh token (that is TikTok's API), and httpx logs request URLs at INFO.
    """

    _pattern = re.compile(r"((?:app_secret|refresh_token|access_token|auth_code)=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._pattern.sub(r"\1********", str(a)) if "=" in str(a) else a
                for a in record.args
            )
        if isinstance(record.msg, str) and "=" in record.msg:
            record.msg = self._pattern.sub(r"\1********", record.msg)
        return True


_REDACT_FILTER = _RedactSecrets()


def _install_log_redaction() -> None:
    logger = logging.getLogger("httpx")
    if _REDACT_FILTER not in logger.filters:
        logger.addFilter(_REDACT_FILTER)


class TikTokClient:
    """A synchronous TikTok Shop Open API client (see the module docstring).

    ``token_cache`` keeps refreshed tokens (the link store implements it);
    tokens found there are preferred over the config's, unless the config's
    tokens have changed since (the operator re-authorised). ``transport``,
    ``sleep``, ``clock`` and ``rng`` are injectable for tests.
    """

    def __init__(
        self,
        config: TikTokConfig,
        token_cache: TokenCache,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float = 30.0,
        deadline: float = DEFAULT_DEADLINE,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not config.app_key or not config.app_secret:
            raise AuthError(
                "TikTok is not configured: tiktok.app_key and tiktok.app_secret are needed",
                hint="copy them from your app's page in TikTok Shop Partner Center",
            )
        self.config = config
        self._cache = token_cache
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._api_base = config.api_base_url.rstrip("/")
        self._auth_base = config.auth_base_url.rstrip("/")
        self._lock = threading.RLock()
        _install_log_redaction()
        self._deadline = deadline
        if transport is not None:
            self._http = httpx.Client(transport=transport, timeout=timeout, follow_redirects=False)
        else:
            self._http = http_client(verify=tls_verify(config.api_base_url, config.auth_base_url),
                                     timeout=timeout, follow_redirects=False)
        self._tokens = self._initial_tokens()

    # -- lifecycle -------------------------------------------------------------
    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> TikTokClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- tokens ----------------------------------------------------------------
    def _config_fingerprint(self) -> str:
        access = self.config.access_token.get() if self.config.access_token else ""
        refresh = self.config.refresh_token.get() if self.config.refresh_token else ""
        return _fingerprint(f"{self.config.app_key}\n{access}\n{refresh}")

    def _cached_tokens(self) -> dict[str, Any] | None:
        """The token cache's entry when it belongs to the configured tokens, else None."""
        cached = self._cache.load_token(TOKEN_CACHE_NAME) or {}
        if cached.get("config") == self._config_fingerprint() and (
            cached.get("access_token") or cached.get("refresh_token")
        ):
            return dict(cached)
        return None

    def _initial_tokens(self) -> dict[str, Any]:
        cached = self._cached_tokens()
        if cached is not None:
            return cached
        # No cache, or the operator put new tokens in the config since: start from the config.
        return {
            "config": self._config_fingerprint(),
            "access_token": self.config.access_token.get() if self.config.access_token else "",
            "refresh_token": self.config.refresh_token.get() if self.config.refresh_token else "",
            "access_token_expire_in": None,
            "refresh_token_expire_in": None,
        }

    def _adopt_newer_tokens(self) -> bool:
        """Take the pair another process saved since we read ours; True if there was one.

        TikTok rotates the refresh token on every refresh, so a pair in the
        cache that differs from ours is a later one (ours is refused by now).
        """
        cached = self._cached_tokens()
        if cached is None or (cached.get("access_token"), cached.get("refresh_token")) == (
            self._tokens.get("access_token"), self._tokens.get("refresh_token")
        ):
            return False
        # Keep what only we know (a shop cipher resolved by this process).
        self._tokens = {**self._tokens, **cached}
        return True

    def _save_tokens(self) -> None:
        self._cache.save_token(TOKEN_CACHE_NAME, dict(self._tokens))

    def _access_token_stale(self) -> bool:
        expires = self._tokens.get("access_token_expire_in")
        if not self._tokens.get("access_token"):
            return True
        try:
            return expires is not None and self._clock() >= float(expires) - EXPIRY_MARGIN_S
        except (TypeError, ValueError):
            return True  # an expiry we cannot read: refresh rather than guess

    def _access_token(self) -> str:
        """The access token to send, refreshed first when it is missing or past its expiry."""
        with self._lock:
            if self._access_token_stale():
                self.refresh_access_token()
            return self._tokens["access_token"]

    def refresh_access_token(self) -> None:
        """Trade the refresh token for a new access/refresh pair and save both.

        Several commands may refresh at once (cron's sync-orders and an
        operator's doctor), and each refresh makes TikTok refuse the refresh
        token it used. So a pair another process saved meanwhile is taken
        instead of refreshing, and a refused refresh token is first checked
        against the cache, where the process that used it first puts its new
        pair (see :meth:`_await_winner`).

        Raises AuthError (saying to re-authorise) when TikTok refuses the
        refresh token and no other process refreshed with it, NetworkError
        when the auth host cannot be reached.
        """
        with self._lock:
            if self._adopt_newer_tokens() and not self._access_token_stale():
                return
            refresh = self._tokens.get("refresh_token")
            if not refresh:
                raise AuthError(
                    "the TikTok access token is missing or expired and no refresh token is configured",
                    hint="set tiktok.refresh_token, or " + _REAUTHORISE,
                )
            params = {
                "app_key": self.config.app_key,
                "app_secret": self.config.app_secret.get() if self.config.app_secret else "",
                "refresh_token": refresh,
                "grant_type": "refresh_token",
            }
            url = self._auth_base + TOKEN_REFRESH_PATH
            envelope, _status, request_id = self._send_with_retries(
                "GET", url, params=params, content=b"", headers={}, what="TikTok token refresh",
            )
            code = envelope.get("code")
            data = envelope.get("data") or {}
            if code != CODE_OK or not data.get("access_token"):
                if self._await_winner(refresh):
                    return
                message = str(envelope.get("message") or "no access token in the answer")
                raise AuthError(
                    f"TikTok refused to refresh the access token (code {code}: {message}; "
                    f"request_id {request_id})",
                    hint=_REAUTHORISE,
                    code=code,
                    request_id=request_id,
                )
            self._tokens.update(
                access_token=data["access_token"],
                access_token_expire_in=data.get("access_token_expire_in"),
                # TikTok may hand back the same refresh token; keep whichever is current.
                refresh_token=data.get("refresh_token") or refresh,
                refresh_token_expire_in=data.get("refresh_token_expire_in"),
            )
            self._save_tokens()

    def _await_winner(self, used_refresh_token: str) -> bool:
        """After TikTok refused ``used_refresh_token``: take another process's newer pair, if one comes.

        The process whose refresh TikTok honoured first saves its pair a moment
        after TikTok answered it, so the cache is read a few times over about
        two seconds. True when a pair made from a later refresh was taken.
        """
        for delay in REFRESH_RACE_WAITS_S:
            if delay:
                self._sleep(delay)
            cached = self._cached_tokens()
            if cached is not None and cached.get("refresh_token") not in (None, "", used_refresh_token):
                self._tokens = {**self._tokens, **cached}
                return True
        return False

    def resolve_shop_cipher(self) -> str:
        """The shop cipher: the config's, else the first authorised shop's (cached)."""
        if self.config.shop_cipher:
            return self.config.shop_cipher
        with self._lock:
            cipher = self._tokens.get("shop_cipher")
            if cipher:
                return cipher
            shops = self.authorized_shops()
            if not shops or not shops[0].get("cipher"):
                raise AuthError(
                    "no TikTok shop is authorised for this app",
                    hint="authorise the shop in TikTok Shop Partner Center, or set tiktok.shop_cipher",
                )
            # Never save our pair over a newer one another process refreshed meanwhile.
            self._adopt_newer_tokens()
            self._tokens["shop_cipher"] = shops[0]["cipher"]
            self._save_tokens()
            return shops[0]["cipher"]

    # -- transport ---------------------------------------------------------------
    def _backoff(self, attempt: int, retry_after: str | None = None) -> None:
        delay = min(self.backoff_max, self.backoff_base * (2**attempt))
        if retry_after:
            try:
                delay = max(delay, float(retry_after))
            except ValueError:
                pass
        # Jitter spreads retries of concurrent clients apart.
        self._sleep(delay * (0.5 + self._rng() / 2))

    def _send_with_retries(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | Callable[[], dict[str, Any]],
        content: bytes,
        headers: dict[str, str] | Callable[[], dict[str, str]],
        what: str,
        idempotent: bool = True,
    ) -> tuple[dict[str, Any], int, str | None]:
        """Send until an envelope comes back; retry network errors, 5xx and throttling.

        ``params``/``headers`` may be callables so each attempt is signed afresh
        (a retried request needs a new timestamp). Returns (envelope, status, request_id).
        A call that is not ``idempotent`` is sent again only after a refusal that
        proves it did not run (no connection, throttled); any other failure once
        it may have left raises :class:`OutcomeUnknownError` (module docstring).
        """
        attempt = 0
        started = time.monotonic()
        while True:
            try:
                with deadline(self._deadline):
                    response = self._http.request(
                        method, url,
                        params=params() if callable(params) else params,
                        content=content,
                        headers=headers() if callable(headers) else headers,
                    )
            except httpx.TransportError as exc:
                late = deadline_passed(exc)
                why = f"no answer within the {self._deadline:.0f} s deadline" if late else type(exc).__name__
                if not idempotent and not isinstance(exc, _NOT_SENT):
                    raise self._unknown(what, f"no answer came back ({why})",
                                        code="deadline" if late else None) from None
                # Every call here may be retried, but not past its deadline in all.
                if attempt < self.max_retries and time.monotonic() - started < self._deadline:
                    self._backoff(attempt)
                    attempt += 1
                    continue
                raise NetworkError(
                    f"{what} failed: could not get an answer from {self._host_of(url)} "
                    f"after {attempt + 1} attempt(s) ({why})",
                    hint="check the network and the TikTok base URLs in the config",
                    code="deadline" if late else None,
                ) from None
            request_id = response.headers.get("x-tt-logid")
            envelope = self._envelope(response)
            if envelope is not None:
                request_id = envelope.get("request_id") or request_id
            code = envelope.get("code") if envelope else None
            throttled = response.status_code == 429 or code == CODE_TOO_MANY_REQUESTS
            transient = response.status_code >= 500 or code == CODE_INTERNAL
            if transient and not throttled and not idempotent:
                # A server error may follow a committed write: never a blind resend.
                raise self._unknown(
                    what, f"TikTok answered HTTP {response.status_code}"
                    + (f" (code {code})" if code is not None else ""),
                    code=code if code is not None else response.status_code, request_id=request_id)
            if throttled or transient:
                if attempt < self.max_retries:
                    self._backoff(attempt, response.headers.get("retry-after"))
                    attempt += 1
                    continue
                if throttled:
                    raise RateLimitedError(
                        f"{what}: TikTok kept throttling the requests (code {code}) "
                        f"after {attempt + 1} attempts; request_id {request_id}",
                        hint="wait a few minutes and run again",
                        code=code,
                        request_id=request_id,
                    )
                raise NetworkError(
                    f"{what}: TikTok answered HTTP {response.status_code}"
                    + (f" (code {code})" if code is not None else "")
                    + f" after {attempt + 1} attempts; request_id {request_id}",
                    hint="TikTok may be having trouble; run again later",
                    code=code,
                    request_id=request_id,
                )
            if envelope is None:
                if not idempotent:
                    raise self._unknown(
                        what, f"{self._host_of(url)} answered HTTP {response.status_code} without a "
                        "TikTok API envelope", code=response.status_code, request_id=request_id)
                raise ApiError(
                    f"{what}: {self._host_of(url)} answered HTTP {response.status_code} "
                    "without a TikTok API envelope",
                    hint="check tiktok.api_base_url and tiktok.auth_base_url in the config",
                    request_id=request_id,
                )
            return envelope, response.status_code, request_id

    @staticmethod
    def _unknown(what: str, why: str, *, code: Any = None, request_id: str | None = None) -> OutcomeUnknownError:
        """The error of a write that may or may not have taken effect."""
        rid = f"; request_id {request_id}" if request_id else ""
        return OutcomeUnknownError(
            f"{what} was sent but {why}{rid}: it may or may not have taken effect",
            hint=_UNKNOWN_HINT, code=code, request_id=request_id,
        )

    @staticmethod
    def _envelope(response: httpx.Response) -> dict[str, Any] | None:
        try:
            data = response.json()
        except (ValueError, UnicodeDecodeError):
            return None
        if isinstance(data, dict) and "code" in data:
            return data
        return None

    @staticmethod
    def _host_of(url: str) -> str:
        return httpx.URL(url).host or url

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        shop_scoped: bool = True,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """Send one signed API request and return the envelope's ``data`` (a dict).

        Refreshes the access token once on 105002 and retries; turns any
        other non-zero code into AuthError or ApiError with its request_id.
        Reads (the default) are retried on 5xx and network errors; a write
        (``idempotent=False``) raises :class:`OutcomeUnknownError` instead of
        ever being sent twice when it may have run (see the module docstring).
        """
        content = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        extra = {k: str(v) for k, v in (query or {}).items() if v is not None}
        if shop_scoped:
            extra["shop_cipher"] = self.resolve_shop_cipher()
        secret = self.config.app_secret.get() if self.config.app_secret else ""
        headers_token: dict[str, str] = {}
        what = f"TikTok {method} {path}"

        def params() -> dict[str, str]:
            signed = {"app_key": self.config.app_key, "timestamp": str(int(self._clock())), **extra}
            signed["sign"] = sign(secret, path, signed, content)
            return signed

        def headers() -> dict[str, str]:
            return {"content-type": "application/json", "x-tts-access-token": headers_token["token"]}

        refreshed = False
        while True:
            headers_token["token"] = self._access_token()
            envelope, status, request_id = self._send_with_retries(
                method, self._api_base + path, params=params, content=content,
                headers=headers, what=what, idempotent=idempotent,
            )
            code = envelope.get("code")
            if code == CODE_OK:
                data = envelope.get("data")
                if data is None:
                    return {}
                if not isinstance(data, dict):
                    if not idempotent:
                        raise self._unknown(what, f"its answer carried data as {type(data).__name__}, "
                                            "not an object", request_id=request_id)
                    raise ApiError(
                        f"TikTok {path} answered with data as {type(data).__name__}, not an object "
                        f"(request_id {request_id})",
                        hint="TikTok's answer was not usable; run again later, and report it to TikTok "
                        "if it persists",
                        request_id=request_id,
                    )
                return data
            if code == CODE_TOKEN_EXPIRED and not refreshed:
                # TikTok refused the call before running it: sending it again is safe, writes included.
                refreshed = True
                with self._lock:
                    # Another thread may have refreshed already while we waited.
                    if self._tokens.get("access_token") == headers_token["token"]:
                        self.refresh_access_token()
                continue
            raise self._error(envelope, status, request_id, path)

    @staticmethod
    def _error(envelope: dict[str, Any], status: int, request_id: str | None, path: str) -> ApiError:
        code = envelope.get("code")
        message = str(envelope.get("message") or "no message")
        what = f"TikTok {path}: {message} (code {code}, HTTP {status}, request_id {request_id})"
        kwargs: dict[str, Any] = {"code": code, "request_id": request_id}
        lowered = message.lower()
        if code == CODE_BAD_SIGNATURE:
            return AuthError(
                f"TikTok rejected the request signature: {what}",
                hint="check tiktok.app_secret: it must be the App secret of the app whose "
                "App key is tiktok.app_key",
                **kwargs,
            )
        if code == CODE_TOKEN_INVALID:
            return AuthError(f"TikTok rejected the access token: {what}", hint=_REAUTHORISE, **kwargs)
        if code == CODE_TOKEN_EXPIRED:
            return AuthError(
                f"the TikTok access token is still expired after a refresh: {what}",
                hint=_REAUTHORISE, **kwargs,
            )
        if code == CODE_SCOPE_MISSING:
            return AuthError(
                f"the TikTok app lacks a permission for this call: {what}",
                hint="grant the Order and Product read scopes to the app in Partner Center, "
                "then re-authorise the shop",
                **kwargs,
            )
        if code == CODE_INVALID_PARAM and "app_key" in lowered:
            return AuthError(f"TikTok does not know the app key: {what}",
                             hint="check tiktok.app_key", **kwargs)
        if code == CODE_INVALID_PARAM and ("access-token" in lowered or "access_token" in lowered):
            return AuthError(f"TikTok rejected the access token: {what}", hint=_REAUTHORISE, **kwargs)
        if code == CODE_INVALID_PARAM and "timestamp" in lowered:
            return ApiError(f"TikTok refused the request time: {what}",
                            hint="this computer's clock is off; enable time synchronisation (NTP)",
                            **kwargs)
        if code == CODE_SHOP_CIPHER or "shop_cipher" in lowered:
            return ApiError(f"TikTok did not accept the shop: {what}",
                            hint="check tiktok.shop_cipher, or leave it empty to use the first "
                            "authorised shop", **kwargs)
        if status in (401, 403):
            return AuthError(f"TikTok refused the credentials: {what}", hint=_REAUTHORISE, **kwargs)
        return ApiError(what, **kwargs)

    # -- API methods -------------------------------------------------------------
    def authorized_shops(self) -> list[dict[str, Any]]:
        """The shops this app is authorised for: ``[{id, name, region, cipher, code, ...}]``."""
        data = self.request("GET", SHOPS_PATH, shop_scoped=False)
        return list(data.get("shops") or [])

    def search_orders(
        self,
        *,
        update_time_ge: int,
        update_time_lt: int | None = None,
        page_size: int = 50,
    ) -> Iterator[list[dict[str, Any]]]:
        """Orders updated in ``[update_time_ge, update_time_lt)``, oldest update first.

        Yields one list per page (empty pages skipped) so the caller can commit
        page by page, and follows ``next_page_token`` — but not forever
        (issue 15): a token seen before (a repeat, a cycle), pages that bring
        no order not already seen, or more pages than the ``total_count`` of
        the first answer makes plausible end the listing with
        :class:`PagingError`, after the pages already yielded.
        """
        body: dict[str, Any] = {"update_time_ge": int(update_time_ge)}
        if update_time_lt is not None:
            body["update_time_lt"] = int(update_time_lt)
        size = max(1, min(MAX_PAGE_SIZE, page_size))
        query: dict[str, Any] = {"page_size": size, "sort_field": "update_time", "sort_order": "ASC"}
        yield from self._pages(ORDER_SEARCH_PATH, "orders", query, body)

    def _pages(self, path: str, key: str, query: dict[str, Any], body: Any, *, id_key: str = "id",
               noun: str = "order", hint: str = _PAGING_HINT) -> Iterator[list[Any]]:
        """Every page of a listing, bounded (see :meth:`search_orders`); items are told apart by ``id_key``."""
        seen_tokens: set[str] = set()
        seen_ids: set[str] = set()
        pages = stale = 0
        cap: int | None = None
        while True:
            data = self.request("POST", path, query=query, body=body)
            pages += 1
            items = _page_list(data, key, path)
            if cap is None:
                cap = _plausible_pages(data.get("total_count"), query["page_size"])
            ids = {str(i.get(id_key)) for i in items if isinstance(i, dict)}
            fresh = ids - seen_ids
            seen_ids |= ids
            stale = 0 if fresh or (items and not ids) else stale + 1
            if items:
                yield items
            token = _page_token(data, path)
            if not token:
                return
            if token in seen_tokens:
                raise PagingError(
                    f"TikTok {path} sent a page token it had sent before, after {pages} page(s): "
                    "its paging loops", hint=hint)
            if stale >= MAX_STALE_PAGES:
                raise PagingError(
                    f"TikTok {path} kept sending pages with no new {noun} ({stale} in a row, "
                    f"after {pages} page(s))", hint=hint)
            if pages >= cap:
                raise PagingError(
                    f"TikTok {path} sent more pages ({pages}) than its count of "
                    f"{data.get('total_count')!r} makes plausible", hint=hint)
            seen_tokens.add(token)
            query = {**query, "page_token": token}

    def get_orders(self, ids: list[str]) -> list[dict[str, Any]]:
        """Order details for ``ids`` (batched by 50), in TikTok's order."""
        out: list[dict[str, Any]] = []
        for start in range(0, len(ids), MAX_ORDER_IDS):
            chunk = ids[start:start + MAX_ORDER_IDS]
            data = self.request("GET", ORDER_DETAIL_PATH, query={"ids": ",".join(chunk)})
            out.extend(_page_list(data, "orders", ORDER_DETAIL_PATH))
        return out

    def search_products(self, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every product of the shop (all pages, bounded as order search is), one dict at a time.

        Search results carry no ``external_sku_id``; use :meth:`get_product` for it.
        """
        query: dict[str, Any] = {"page_size": max(1, min(MAX_PAGE_SIZE, page_size))}
        for page in self._pages(PRODUCT_SEARCH_PATH, "products", query, {}):
            yield from page

    def get_product(self, product_id: str) -> dict[str, Any]:
        """Product detail, whose ``skus`` carry ``external_sku_id`` when published from Shopify."""
        return self.request("GET", PRODUCT_DETAIL_PATH.format(product_id=product_id))

    # -- logistics and fulfillment (DESIGN §6b.1) -------------------------------------------------
    def shipping_providers(self, delivery_option_id: str) -> list[dict[str, Any]]:
        """The carriers TikTok accepts for a delivery option: ``[{"id": str, "name": str}, ...]``.

        ``GET /logistics/202309/delivery_options/{delivery_option_id}/shipping_providers``
        answers ``{shipping_providers: [{id, name}]}``; a provider without a string id
        and name is a wrong answer (ApiError). Other keys TikTok adds are kept.
        """
        path = SHIPPING_PROVIDERS_PATH.format(delivery_option_id=_path_id(delivery_option_id, "delivery option id"))
        data = self.request("GET", path)
        providers = []
        for item in _page_list(data, "shipping_providers", path):
            if not isinstance(item, dict) or not _text(item.get("id")) or not isinstance(item.get("name"), str):
                raise _shape_error(path, f"a shipping provider without a string id and name: {_brief(item)}")
            providers.append({**item, "id": _text(item["id"]), "name": item["name"]})
        return providers

    def create_package_and_ship(self, order_id: str, line_item_ids: list[str], tracking_number: str,
                                shipping_provider_id: str) -> str:
        """Mark Package As Shipped: a new package of ``line_item_ids``, shipped; returns its ``package_id``.

        ``POST /fulfillment/202309/orders/{order_id}/packages`` with ``order_line_item_ids``,
        ``tracking_number`` and ``shipping_provider_id``; TikTok answers ``{order_id,
        order_line_item_ids, package_id, warning: {message}}``. For lines not yet in a package
        (US and UK sellers get a package only when shipping; TikTok offers this call in the
        US). Not idempotent (module docstring); a success without a usable ``package_id`` is
        an unknown outcome too: the order's lines then say which package they went into.
        """
        ids = [_required(i, "line item id") for i in line_item_ids]
        if not ids:
            raise ValueError("create_package_and_ship needs at least one line item id")
        path = MARK_SHIPPED_PATH.format(order_id=_path_id(order_id, "order id"))
        body = {"order_line_item_ids": ids, "tracking_number": _required(tracking_number, "tracking number"),
                "shipping_provider_id": _required(shipping_provider_id, "shipping provider id")}
        data = self.request("POST", path, body=body, idempotent=False)
        package_id = _text(data.get("package_id"))
        if not package_id:
            raise self._unknown(f"TikTok POST {path}", f"its answer named no package ({_brief(data)})")
        return package_id

    def ship_package(self, package_id: str, tracking_number: str, shipping_provider_id: str) -> None:
        """Ship Package: a package TikTok already made (lines carry its ``package_id``), self-shipped.

        ``POST /fulfillment/202309/packages/{package_id}/ship`` with ``self_shipment:
        {tracking_number, shipping_provider_id}`` — the seller's own carrier, so no
        ``handover_method``/``pickup_slot`` (those are for TikTok's logistics). Not idempotent.
        """
        path = SHIP_PACKAGE_PATH.format(package_id=_path_id(package_id, "package id"))
        body = {"self_shipment": {"tracking_number": _required(tracking_number, "tracking number"),
                                  "shipping_provider_id": _required(shipping_provider_id, "shipping provider id")}}
        self.request("POST", path, body=body, idempotent=False)

    def update_shipping_info(self, package_id: str, tracking_number: str, shipping_provider_id: str) -> None:
        """Update Package Shipping Info: a shipped package's new tracking number and carrier.

        ``POST /fulfillment/202309/packages/{package_id}/shipping_info/update`` with
        ``tracking_number`` and ``shipping_provider_id``. TikTok allows it within 72 h of
        shipping; later it refuses (an ApiError with its code). Not idempotent.
        """
        path = SHIPPING_INFO_PATH.format(package_id=_path_id(package_id, "package id"))
        body = {"tracking_number": _required(tracking_number, "tracking number"),
                "shipping_provider_id": _required(shipping_provider_id, "shipping provider id")}
        self.request("POST", path, body=body, idempotent=False)

    # -- external order references (DESIGN §6b.2) ------------------------------------------------
    def add_external_order(self, order_id: str, shopify_order_id: str, line_items: list[tuple[str, str]]) -> None:
        """Write the Shopify order onto the TikTok order (Add External Order References, 202406).

        ``line_items`` are ``(shopify line item id, tiktok line item id)`` pairs; Shopify ids
        may be numeric or ``gid://shopify/...`` (sent numeric). The body is TikTok's batch
        shape, with one order: ``{orders: [{id, external_order: {id, platform: "SHOPIFY",
        line_items: [{id, origin_id}]}}]}``. TikTok answers code 0 even when it refuses an
        order, listing it in ``data.errors[{code, message, detail}]``: that is raised as an
        ApiError with TikTok's code. Not idempotent (module docstring).
        """
        body = {"orders": [{
            "id": _required(order_id, "order id"),
            "external_order": {
                "id": _shopify_number(shopify_order_id),
                "platform": "SHOPIFY",
                "line_items": [
                    {"id": _shopify_number(shopify_line), "origin_id": _required(tiktok_line, "line item id")}
                    for shopify_line, tiktok_line in line_items
                ],
            },
        }]}
        what = f"TikTok POST {EXTERNAL_ORDERS_ADD_PATH}"
        data = self.request("POST", EXTERNAL_ORDERS_ADD_PATH, body=body, idempotent=False)
        errors = data.get("errors")
        if errors is None or errors == []:
            return
        if not isinstance(errors, list) or not all(isinstance(e, dict) for e in errors):
            raise self._unknown(what, f"its answer listed errors of an unusable shape ({_brief(errors)})")
        code = errors[0].get("code")
        code = int(code) if isinstance(code, str) and code.isdigit() else code
        message = str(errors[0].get("message") or "no message")
        raise ApiError(f"TikTok refused the external order reference of order {order_id}: {message} (code {code})",
                       hint="the reference is written again on the next run", code=code)

    def external_orders(self, order_id: str, platform: str = "SHOPIFY") -> list[dict[str, Any]]:
        """The external order references on a TikTok order (Get External Order References, 202406).

        ``GET /order/202406/orders/{order_id}/external_orders?platform=...`` answers
        ``{external_orders: [{id, platform, line_items: [{id, origin_id}]}]}`` (``id`` the
        other platform's, ``origin_id`` TikTok's line item). Returned in that shape, ids as
        strings; anything else is an ApiError.
        """
        path = EXTERNAL_ORDERS_GET_PATH.format(order_id=_path_id(order_id, "order id"))
        data = self.request("GET", path, query={"platform": platform})
        references = []
        for item in _page_list(data, "external_orders", path):
            lines = item.get("line_items") if isinstance(item, dict) else None
            if (not isinstance(item, dict) or not _text(item.get("id")) or not isinstance(item.get("platform"), str)
                    or not isinstance(lines if lines is not None else [], list)):
                raise _shape_error(path, f"an external order without a string id and platform: {_brief(item)}")
            pairs = []
            for line in lines or []:
                if not isinstance(line, dict) or not _text(line.get("id")) or not _text(line.get("origin_id")):
                    raise _shape_error(path, f"an external order line without id and origin_id: {_brief(line)}")
                pairs.append({"id": _text(line["id"]), "origin_id": _text(line["origin_id"])})
            references.append({"id": _text(item["id"]), "platform": item["platform"], "line_items": pairs})
        return references

    # -- cancellations and returns (DESIGN §6b.3, §6b.4) -----------------------------------------
    def search_cancellations(self, *, update_time_ge: int, update_time_lt: int | None = None,
                             page_size: int = 50) -> Iterator[list[dict[str, Any]]]:
        """Cancellations updated in ``[update_time_ge, update_time_lt)``, oldest update first.

        ``POST /return_refund/202309/cancellations/search`` (at most 50 a page), paged and
        bounded as :meth:`search_orders`. Each record is TikTok's, unchanged: ``cancel_id``,
        ``order_id``, ``cancel_type`` (CANCEL | BUYER_CANCEL), ``cancel_status``
        (CANCELLATION_REQUEST_PENDING | _SUCCESS | _COMPLETE | _CANCEL, spelt _CANCELLED in
        answers), ``role`` (who cancelled: BUYER | SELLER | SYSTEM), ``cancel_reason``,
        ``cancel_reason_text``, ``refund_amount {currency, refund_total, refund_subtotal,
        refund_shipping_fee, refund_tax, retail_delivery_fee}``, ``cancel_line_items
        [{cancel_line_item_id, order_line_item_id, sku_id, seller_sku, refund_amount, ...}]``,
        ``create_time``, ``update_time``. The caller checks each record.
        """
        yield from self._aftersales(CANCELLATION_SEARCH_PATH, "cancellations", "cancel_id", "cancellation",
                                    update_time_ge, update_time_lt, page_size)

    def search_returns(self, *, update_time_ge: int, update_time_lt: int | None = None,
                       page_size: int = 50) -> Iterator[list[dict[str, Any]]]:
        """Returns and refunds updated in ``[update_time_ge, update_time_lt)``, oldest update first.

        ``POST /return_refund/202309/returns/search`` (at most 50 a page; TikTok's list is
        ``return_orders``), paged and bounded as :meth:`search_orders`. Each record is
        TikTok's, unchanged: ``return_id``, ``order_id``, ``return_type`` (REFUND — refund
        only — | RETURN_AND_REFUND | REPLACEMENT), ``return_status`` (e.g.
        RETURN_OR_REFUND_REQUEST_COMPLETE: buyer refunded; …_CANCEL or …_CANCELLED),
        ``role``, ``return_reason``, ``return_reason_text``, ``refund_amount {currency,
        refund_total, refund_subtotal, refund_shipping_fee, refund_tax, ...}``,
        ``return_line_items [{return_line_item_id, order_line_item_id, sku_id, seller_sku,
        refund_amount, ...}]``, ``create_time``, ``update_time``. The caller checks each record.
        """
        yield from self._aftersales(RETURN_SEARCH_PATH, "return_orders", "return_id", "return",
                                    update_time_ge, update_time_lt, page_size)

    def _aftersales(self, path: str, key: str, id_key: str, noun: str, update_time_ge: int,
                    update_time_lt: int | None, page_size: int) -> Iterator[list[dict[str, Any]]]:
        body: dict[str, Any] = {"update_time_ge": int(update_time_ge)}
        if update_time_lt is not None:
            body["update_time_lt"] = int(update_time_lt)
        query: dict[str, Any] = {"page_size": max(1, min(MAX_AFTERSALES_PAGE_SIZE, page_size)),
                                 "sort_field": "update_time", "sort_order": "ASC"}
        yield from self._pages(path, key, query, body, id_key=id_key, noun=noun, hint=_AFTERSALES_PAGING_HINT)


# -- answer shapes ------------------------------------------------------------------------------
# TikTok's answers are outside data: a page whose shape is wrong is one clear
# ApiError here, at the client's boundary; the orders inside a well-shaped page
# are checked one by one by tiktok_orders (a broken order never stops its page).


def _page_list(data: dict[str, Any], key: str, path: str) -> list[Any]:
    """``data[key]`` as a list (absent or null: empty), or ApiError naming what came instead."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ApiError(
            f"TikTok {path} answered with '{key}' as {type(value).__name__}, not a list",
            hint="TikTok's answer was not usable; run again later, and report it to TikTok if it persists",
        )
    return value


def _shape_error(path: str, problem: str) -> ApiError:
    return ApiError(
        f"TikTok {path} answered with {problem}",
        hint="TikTok's answer was not usable; run again later, and report it to TikTok if it persists",
    )


def _brief(value: Any) -> str:
    """A short, printable picture of an unexpected value (for error messages)."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def _text(value: Any) -> str:
    """An id as TikTok sends it (a string; digits also accepted as a number), or "" if it is none."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _required(value: Any, what: str) -> str:
    text = _text(value).strip()
    if not text:
        raise ValueError(f"a {what} is required, got {value!r}")
    return text


def _path_id(value: Any, what: str) -> str:
    """An id that goes into a URL path, refused if it could change which endpoint is called."""
    text = _required(value, what)
    if not _PATH_ID.fullmatch(text):
        raise ValueError(f"{what} {text!r} is not a TikTok id")
    return text


def _shopify_number(value: Any) -> str:
    """A Shopify id as the number TikTok's external references take: ``gid://shopify/Order/42`` -> ``42``."""
    text = _required(value, "Shopify id").rsplit("/", 1)[-1]
    if not text.isdigit():
        raise ValueError(f"{value!r} is not a Shopify id")
    return text


def _page_token(data: dict[str, Any], path: str) -> str:
    token = data.get("next_page_token")
    if token is None:
        return ""
    if not isinstance(token, str) or len(token) > 4096:
        raise ApiError(
            f"TikTok {path} answered with an unusable next_page_token ({type(token).__name__})",
            hint="TikTok's answer was not usable; run again later, and report it to TikTok if it persists",
        )
    return token


def _plausible_pages(total: Any, page_size: int) -> int:
    """How many pages a listing of ``total`` items may take, with room for new arrivals."""
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        return MAX_PAGES_UNCOUNTED
    return -(-(total + total // 10) // page_size) + PAGE_SLACK
