"""TikTok Shop Open API client (API version 202309): signing, tokens, retries, reads.

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
  off with jitter; 5xx answers and network errors retried (every call here is
  a read).

The client only reads: order search and detail, product search and detail,
the authorised shops. It never prints; secrets never reach a message.
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
from .errors import ApiError, AuthError, NetworkError, PagingError, RateLimitedError
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
    ) -> tuple[dict[str, Any], int, str | None]:
        """Send until an envelope comes back; retry network errors, 5xx and throttling.

        ``params``/``headers`` may be callables so each attempt is signed afresh
        (a retried request needs a new timestamp). Returns (envelope, status, request_id).
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
                # Every call here may be retried, but not past its deadline in all.
                if attempt < self.max_retries and time.monotonic() - started < self._deadline:
                    self._backoff(attempt)
                    attempt += 1
                    continue
                why = f"no answer within the {self._deadline:.0f} s deadline" if late else type(exc).__name__
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
                raise ApiError(
                    f"{what}: {self._host_of(url)} answered HTTP {response.status_code} "
                    "without a TikTok API envelope",
                    hint="check tiktok.api_base_url and tiktok.auth_base_url in the config",
                    request_id=request_id,
                )
            return envelope, response.status_code, request_id

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
    ) -> dict[str, Any]:
        """Send one signed API request and return the envelope's ``data`` (a dict).

        Refreshes the access token once on 105002 and retries; turns any
        other non-zero code into AuthError or ApiError with its request_id.
        """
        content = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        extra = {k: str(v) for k, v in (query or {}).items() if v is not None}
        if shop_scoped:
            extra["shop_cipher"] = self.resolve_shop_cipher()
        secret = self.config.app_secret.get() if self.config.app_secret else ""
        headers_token: dict[str, str] = {}

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
                headers=headers, what=f"TikTok {method} {path}",
            )
            code = envelope.get("code")
            if code == CODE_OK:
                data = envelope.get("data")
                if data is None:
                    return {}
                if not isinstance(data, dict):
                    raise ApiError(
                        f"TikTok {path} answered with data as {type(data).__name__}, not an object "
                        f"(request_id {request_id})",
                        hint="TikTok's answer was not usable; run again later, and report it to TikTok "
                        "if it persists",
                        request_id=request_id,
                    )
                return data
            if code == CODE_TOKEN_EXPIRED and not refreshed:
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

    def _pages(self, path: str, key: str, query: dict[str, Any], body: Any) -> Iterator[list[Any]]:
        """Every page of a listing, bounded (see :meth:`search_orders`)."""
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
            ids = {str(i.get("id")) for i in items if isinstance(i, dict)}
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
                    "its paging loops", hint=_PAGING_HINT)
            if stale >= MAX_STALE_PAGES:
                raise PagingError(
                    f"TikTok {path} kept sending pages with no new order ({stale} in a row, "
                    f"after {pages} page(s))", hint=_PAGING_HINT)
            if pages >= cap:
                raise PagingError(
                    f"TikTok {path} sent more pages ({pages}) than its count of "
                    f"{data.get('total_count')!r} makes plausible", hint=_PAGING_HINT)
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
