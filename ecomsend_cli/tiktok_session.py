"""Signed requests to the TikTok Shop Open API: signing, tokens, retries, errors (DESIGN §6b, §9).

This module owns how ecomsend talks to TikTok Shop; :mod:`ecomsend_cli.tiktok`
owns what it asks.

* :func:`sign` — the request signature of DESIGN §9;
* :class:`TikTokSession` — every request signed and sent with ``app_key``,
  ``timestamp``, ``sign`` (and ``shop_cipher`` where the endpoint is
  shop-scoped) as query parameters and the access token in the
  ``x-tts-access-token`` header; the ``{code, message, request_id, data}``
  envelope turned into the typed errors of :mod:`ecomsend_cli.errors`;
  an expired access token (105002) refreshed with the refresh token and the
  new pair saved in the token cache, and a pair saved there by another
  process (TikTok rotates the refresh token) taken instead; throttling
  (36009002 / HTTP 429) paced by :class:`RatePacer` and backed off with jitter;
* :func:`authorization_url` and :meth:`TikTokSession.exchange_auth_code` — the
  authorization step (``ecomsend auth tiktok``): the seller approves the app on
  TikTok's page, which hands out a one-time ``auth_code``; it is traded here
  for the first token pair, kept in the token cache beside the refreshed ones.

Token precedence (DESIGN §7), decided here and nowhere else: tokens set in the
config win and are the starting pair (the cache then keeps their refreshed
successors, tagged with the config's fingerprint); without them, the pair
``ecomsend auth tiktok`` stored is used. Both live in the one cache entry
:data:`TOKEN_CACHE_NAME`, so a refresh never has two pairs to choose from.

**Reads** are retried on 5xx answers and network errors, within the call's
deadline. **Writes are not idempotent** (DESIGN §6b): TikTok's fulfillment
and external-order calls take no idempotency key. A write
(``request(..., idempotent=False)``) is sent again only when TikTok certainly
did not run it: the connection could not be made, the request was throttled
(36009002 / HTTP 429), or the access token had expired (105002, refreshed and
sent again). A clear error envelope (any other non-zero code) is TikTok's
refusal, raised as for reads. Everything else once the request may have left —
a timeout, a dropped connection, a 5xx (or 36009003, internal error), an
answer that is not a TikTok envelope, a success whose ``data`` is not an
object — raises :class:`~ecomsend_cli.errors.OutcomeUnknownError`, sent once;
the caller looks the outcome up before any retry.

It never prints; secrets never reach a message.
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
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .config import TikTokConfig
from .errors import ApiError, AuthError, NetworkError, OutcomeUnknownError, RateLimitedError
from .models import TokenCache
from .transport import deadline, deadline_passed, http_client, httpx, tls_verify

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

SHOPS_PATH = "/authorization/202309/shops"
TOKEN_REFRESH_PATH = "/api/v2/token/refresh"
TOKEN_GET_PATH = "/api/v2/token/get"
# The seller's authorization page (TikTok Shop Partner Center, "authorize your app"): US
# sellers have a host of their own.
AUTHORIZE_URL_GLOBAL = "https://services.tiktokshop.com/open/authorize"
AUTHORIZE_URL_US = "https://services.us.tiktokshop.com/open/authorize"
# The most one call may take, retries of transport errors included (issue 15).
DEFAULT_DEADLINE = 30.0
# Transport errors raised before any byte of the request left: a write may be sent again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
_UNKNOWN_HINT = "ecomsend looks the order up on TikTok before it is ever sent again"
# Refresh a little before the recorded expiry: the request may take a while.
EXPIRY_MARGIN_S = 60
# After a refused refresh, when to look for another process's new pair in the token cache
# (seconds before each look): it saves it just after TikTok answered it.
REFRESH_RACE_WAITS_S = (0.0, 0.1, 0.2, 0.4, 0.6, 0.8)
_Session = TypeVar("_Session", bound="TikTokSession")

_REAUTHORISE = (
    "re-authorise the shop: run `ecomsend auth tiktok` (or put new tokens in "
    "tiktok.access_token and tiktok.refresh_token)"
)
_NEW_CODE = (
    "an authorization code works once and only for a few minutes: run `ecomsend auth tiktok` "
    "again, approve the app on the page it prints, and paste the new code at once"
)


# An expiry past this (the year 9999) is no date: Python cannot even print it.
_LATEST_EPOCH = 253_402_300_799
# A seller or shop name longer than this is cut: it is shown, never matched on.
_NAME_MAX = 200


def _epoch_or_none(value: Any) -> int | None:
    """An ``*_expire_in`` Unix time from TikTok as an int, or None when it is not one we can use."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and 0 < value <= _LATEST_EPOCH else None


_ANSI_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")


def _text_or_none(value: Any) -> str | None:
    """A name TikTok sent, as one bounded line of plain text (None when it sent no text).

    Names are printed: terminal escapes (whole, not just their ESC byte),
    control characters and line breaks go, so a name cannot forge a line.
    """
    from .text import terminal_safe

    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = " ".join(terminal_safe(_ANSI_SEQUENCE.sub("", str(value))).split())
    return text[:_NAME_MAX] + ("…" if len(text) > _NAME_MAX else "")


def authorization_url(config: TikTokConfig) -> str:
    """The page where the seller approves the app: ``…/open/authorize?service_id=…``.

    ``tiktok.authorize_url`` replaces TikTok's page (the sandbox's, in its
    configs); else the US host for ``tiktok.region: US``, the global one for
    every other region. Raises AuthError when ``tiktok.service_id`` is not set.
    """
    from urllib.parse import urlencode

    if not config.service_id:
        raise AuthError(
            "tiktok.service_id is not set, so there is no authorization page to send the seller to",
            hint="copy the service ID (below the app's name in TikTok Shop Partner Center › App & "
            "Service) into tiktok.service_id",
        )
    base = config.authorize_url or (
        AUTHORIZE_URL_US if config.region.upper() == "US" else AUTHORIZE_URL_GLOBAL)
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}{urlencode({'service_id': config.service_id})}"


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


def config_fingerprint(config: TikTokConfig) -> str:
    """The tag of the configured app key and tokens that a token cache entry must carry to apply."""
    access = config.access_token.get() if config.access_token else ""
    refresh = config.refresh_token.get() if config.refresh_token else ""
    return _fingerprint(f"{config.app_key}\n{access}\n{refresh}")


def cached_tokens(cache: TokenCache, config: TikTokConfig) -> dict[str, Any] | None:
    """The token cache's entry when it belongs to the configured tokens, else None.

    The cache wins over the config's tokens unless the operator changed those
    since (re-authorised): then the entry is another pair's, and ignored.
    """
    cached = cache.load_token(TOKEN_CACHE_NAME) or {}
    if cached.get("config") == config_fingerprint(config) and (
        cached.get("access_token") or cached.get("refresh_token")
    ):
        return dict(cached)
    return None


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


class RatePacer:
    """Keeps a session's requests under the rate TikTok showed it, learned from its first refusal.

    TikTok documents no number for its rate limit, only the refusal (36009002,
    HTTP 429, "too many requests in a short period of time"), so nothing is
    paced until TikTok refuses a request. Once every request sent before that
    refusal is answered, the ones TikTok accepted in the ``window`` before it
    are the limit it showed; from then on a request waits until fewer than
    that many were sent in the last ``window``. Concurrent senders share one
    pacer, so a refusal pauses them all instead of each backing off on its own,
    which wasted the window in bursts (issue 11's tracking bench). A refusal
    with fewer than :attr:`MIN_LEARNED` accepted requests teaches nothing: the
    caller backs off instead.

    Requests reach TikTok a little later than they leave here, and not always
    in order (a busy machine, a slow network), so a later refusal that shows
    fewer accepted requests than the known limit first widens the margin kept
    beyond the window (doubling, up to :attr:`MAX_MARGIN_S`); only when the
    margin is already at its widest does it lower the limit (another process
    may share the shop's budget).
    """

    MIN_LEARNED = 2
    # Arrival order at TikTok may differ a little from send order here.
    MARGIN_S = 0.01
    MAX_MARGIN_S = 0.16

    def __init__(self, window: float = 1.0, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.window = window
        self.limit: int | None = None
        self.margin = self.MARGIN_S
        self._clock = clock
        self._sleep = sleep
        self._sent: list[float] = []  # send times of the requests TikTok counts (or may yet)
        self._pending: list[float] = []  # ... of those not answered yet
        self._refusals: list[float] = []  # refusals not learned from yet
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for a free place in the window; returns the send time to hand to :meth:`answered`."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                horizon = now - self.window - self.margin
                while self._sent and self._sent[0] <= horizon:
                    self._sent.pop(0)
                if self.limit is None and self._refusals and waited < self.window:
                    wait = 0.01  # a refusal is being learned from: its earlier requests are still out
                elif self.limit is None or len(self._sent) < self.limit:
                    self._sent.append(now)
                    self._pending.append(now)
                    return now
                else:
                    wait = self._sent[len(self._sent) - self.limit] - horizon
            wait = max(wait, 0.001)
            waited += wait
            self._sleep(wait)

    def answered(self, sent_at: float, *, refused: bool = False) -> None:
        """TikTok answered the request sent at ``sent_at``; ``refused``: as too many."""
        with self._lock:
            _drop(self._pending, sent_at)
            if refused:
                _drop(self._sent, sent_at)  # refused requests do not count against the limit
                self._refusals.append(sent_at)
            self._learn()

    def forget(self, sent_at: float) -> None:
        """The request sent at ``sent_at`` got no answer: TikTok may not have counted it."""
        with self._lock:
            _drop(self._pending, sent_at)
            _drop(self._sent, sent_at)
            self._learn()

    def refused(self, sent_at: float) -> bool:
        """TikTok refused the request sent at ``sent_at`` as too many; True when the caller
        should wait in :meth:`acquire` (a limit is known, or being learned) rather than back off."""
        self.answered(sent_at, refused=True)
        with self._lock:
            return self.limit is not None or bool(self._refusals)

    def _learn(self) -> None:
        """Learn from each refusal once every request sent before it is answered: the ones
        TikTok accepted in the window before it are then known, not guessed (lock held)."""
        waiting = []
        for at in self._refusals:
            if any(t < at for t in self._pending):
                waiting.append(at)
                continue
            accepted = sum(1 for t in self._sent if at - self.window < t <= at and t not in self._pending)
            if accepted < self.MIN_LEARNED:
                continue
            if self.limit is None or accepted >= self.limit:
                self.limit = accepted
            elif self.margin < self.MAX_MARGIN_S:
                self.margin = min(self.margin * 2, self.MAX_MARGIN_S)  # late arrivals, most likely
            else:
                self.limit = accepted
        self._refusals = waiting


def _drop(times: list[float], at: float) -> None:
    if at in times:
        times.remove(at)


class TikTokSession:
    """Signed requests to the TikTok Shop Open API (see the module docstring); the base of
    :class:`~ecomsend_cli.tiktok.TikTokClient`, which adds the API calls.

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
        # Real time, whatever ``sleep`` tests inject: the pacer waits on the clock it reads.
        self.pacer = RatePacer()
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

    def __enter__(self: _Session) -> _Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- tokens ----------------------------------------------------------------
    def _config_fingerprint(self) -> str:
        return config_fingerprint(self.config)

    def _cached_tokens(self) -> dict[str, Any] | None:
        """The token cache's entry when it belongs to the configured tokens, else None."""
        return cached_tokens(self._cache, self.config)

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

    def _authorized_fingerprint(self) -> str:
        """The tag :meth:`exchange_auth_code` gives the pair it stores: the config fingerprint of
        the app key without tokens, so that pair is used exactly when the config sets none (the
        precedence of the module docstring)."""
        return _fingerprint(f"{self.config.app_key}\n\n")

    def token_state(self) -> dict[str, Any]:
        """What is known of the tokens in use, without them: for ``ecomsend auth status``.

        ``{source: "config" | "auth" | None, access_token_expire_in,
        refresh_token_expire_in, seller_name, seller_base_region, open_id,
        granted_scopes, shop_cipher, shop_name, shop_region, authorized_at}``
        (absent fields are None). ``source`` is None when there are no tokens.
        """
        tokens = self._tokens
        have = bool(tokens.get("access_token") or tokens.get("refresh_token"))
        source = None
        if have:
            source = "config" if self.config.has_config_tokens else "auth"
        keys = ("access_token_expire_in", "refresh_token_expire_in", "seller_name", "seller_base_region",
                "open_id", "granted_scopes", "shop_cipher", "shop_name", "shop_region", "authorized_at")
        return {"source": source, **{k: tokens.get(k) for k in keys}}

    def _scrub(self, text: str, *more: str) -> str:
        """``text`` (a message TikTok sent) with every secret this session knows blanked.

        TikTok's error messages may quote the request, and the token calls carry
        the app secret, the code and the tokens in their query.
        """
        secrets = [self.config.app_secret.get() if self.config.app_secret else "", *more,
                   str(self._tokens.get("access_token") or ""), str(self._tokens.get("refresh_token") or "")]
        for secret in sorted({x for x in secrets if len(x) >= 4}, key=len, reverse=True):
            text = text.replace(secret, "********")
        return text

    def exchange_auth_code(self, auth_code: str) -> dict[str, Any]:
        """Trade a seller's one-time ``auth_code`` for the first token pair, and keep it.

        ``GET {auth_base_url}/api/v2/token/get`` with ``app_key``,
        ``app_secret``, ``auth_code`` and ``grant_type=authorized_code``; the
        pair (``*_expire_in`` absolute Unix times) and the seller's
        ``open_id``, ``seller_name``, ``seller_base_region`` and
        ``granted_scopes`` go into the token cache, replacing what was there.
        Returns those seller fields and the expiry times — never a token.

        Raises AuthError when TikTok refuses the code (wrong, expired, or used
        already: TikTok's message says which), naming the next step.
        """
        code_value = auth_code.strip()
        if not code_value:
            raise AuthError("no authorization code was given", hint=_NEW_CODE)
        params = {
            "app_key": self.config.app_key,
            "app_secret": self.config.app_secret.get() if self.config.app_secret else "",
            "auth_code": code_value,
            "grant_type": "authorized_code",
        }
        with self._lock:
            try:
                # A code works once: after a lost answer or a 5xx it may be used up, and sending it
                # again would only earn "code used" for a code the operator pasted once.
                envelope, _status, request_id = self._send_with_retries(
                    "GET", self._auth_base + TOKEN_GET_PATH, params=params, content=b"", headers={},
                    what="TikTok token exchange", idempotent=False,
                )
            except OutcomeUnknownError as exc:
                why = exc.message.split(" was sent but ")[-1].removesuffix(": it may or may not have taken effect")
                raise AuthError(
                    f"the TikTok code exchange was sent but {why}: the code may be used up",
                    hint=("check tiktok.auth_base_url in the config; then: " if "envelope" in why else "")
                    + _NEW_CODE, code=exc.code, request_id=exc.request_id,
                ) from None
            code = envelope.get("code")
            data = envelope.get("data")
            data = data if isinstance(data, dict) else {}
            access = data.get("access_token")
            refresh = data.get("refresh_token")
            if code != CODE_OK or not isinstance(access, str) or not access.strip() or not isinstance(
                    refresh, str | None):
                message = self._scrub(str(envelope.get("message") or "no access token in the answer"), code_value)
                if code == CODE_OK:
                    message = "the answer holds no usable access token"
                raise AuthError(
                    f"TikTok refused the authorization code (code {code}: {message}; request_id {request_id})",
                    hint=_NEW_CODE, code=code, request_id=request_id,
                )
            scopes = data.get("granted_scopes")
            seller = {
                "open_id": _text_or_none(data.get("open_id")),
                "seller_name": _text_or_none(data.get("seller_name")),
                "seller_base_region": _text_or_none(data.get("seller_base_region")),
                "granted_scopes": [str(x)[:_NAME_MAX] for x in scopes if isinstance(x, str)]
                if isinstance(scopes, list) else [],
            }
            # An expiry TikTok sent in a form we cannot use is "not known", not a crash later on.
            expiries = {k: _epoch_or_none(data.get(k))
                        for k in ("access_token_expire_in", "refresh_token_expire_in")}
            self._tokens = {
                "config": self._authorized_fingerprint(),
                "access_token": access,
                "refresh_token": refresh or "",
                **expiries,
                **seller,
                "authorized_at": int(self._clock()),
            }
            self._save_tokens()
        return {**seller, **expiries}

    def choose_shop(self, shop: dict[str, Any]) -> None:
        """Record ``shop`` (one of :meth:`authorized_shops`) as the shop to work on.

        Its cipher is kept with the tokens; ``tiktok.shop_cipher`` in the
        config still wins when set.
        """
        cipher = str(shop.get("cipher") or "")
        if not cipher:
            raise AuthError("TikTok listed the shop without a cipher",
                            hint="run `ecomsend auth tiktok` again; set tiktok.shop_cipher if it persists")
        with self._lock:
            self._adopt_newer_tokens()
            self._tokens.update(shop_cipher=cipher, shop_name=shop.get("name"), shop_region=shop.get("region"))
            self._save_tokens()

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
                if not self._tokens.get("access_token"):
                    raise AuthError(
                        "TikTok Shop is not authorised yet: no tokens in the config nor from "
                        "`ecomsend auth tiktok`",
                        hint="run `ecomsend auth tiktok` (or `ecomsend init`) to authorise the shop",
                    )
                raise AuthError(
                    "the TikTok access token is expired and there is no refresh token",
                    hint=_REAUTHORISE,
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
                message = self._scrub(str(envelope.get("message") or "no access token in the answer"), refresh)
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
            sent_at = self.pacer.acquire()
            try:
                with deadline(self._deadline):
                    response = self._http.request(
                        method, url,
                        params=params() if callable(params) else params,
                        content=content,
                        headers=headers() if callable(headers) else headers,
                    )
            except httpx.TransportError as exc:
                self.pacer.forget(sent_at)
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
            if throttled:
                paced = self.pacer.refused(sent_at)
            else:
                self.pacer.answered(sent_at)
                paced = False
            if throttled or transient:
                if attempt < self.max_retries:
                    retry_after = response.headers.get("retry-after")
                    # Paced, the first retry waits for the window; a second refusal backs off too.
                    if not paced or attempt > 0 or retry_after:
                        self._backoff(attempt, retry_after)
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
        except (ValueError, UnicodeDecodeError, RecursionError):  # the last: nested too deep to parse
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

    def authorized_shops(self) -> list[dict[str, Any]]:
        """The shops this app is authorised for: ``[{id, name, region, cipher, code, ...}]``."""
        data = self.request("GET", SHOPS_PATH, shop_scoped=False)
        shops = data.get("shops") or []
        if not isinstance(shops, list) or not all(isinstance(x, dict) for x in shops):
            raise ApiError("TikTok answered the list of authorised shops in a form ecomsend does not know",
                           hint="run `ecomsend auth tiktok` again later; if it persists, set "
                           "tiktok.shop_cipher in the config by hand")
        return [{**x, **{k: _text_or_none(x.get(k)) for k in ("id", "name", "region", "cipher", "code")
                         if k in x}} for x in shops]

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
