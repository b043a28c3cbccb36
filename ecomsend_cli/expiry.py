"""When the credentials ecomsend holds stop working: token expiry countdowns (DESIGN §7, §9).

The one place that reads expiries, for ``doctor``, the alerts of
``sync-orders`` (:mod:`.notify`) and ``auth status``: :func:`token_expiries`
(and :func:`tiktok_expiries` for a pair just received, ``auth tiktok``), and
the one way they are told: :meth:`TokenExpiry.describe` and :func:`countdown`.

* **TikTok** — the token cache entry (``tiktok``) holds
  ``access_token_expire_in`` and ``refresh_token_expire_in``, absolute Unix
  times from TikTok's token answers (§9). The entry counts only while it
  belongs to the configured tokens (:func:`~.tiktok_session.cached_tokens`);
  tokens taken from the config are of unknown expiry until the first refresh.
  The access token is renewed by ecomsend with the refresh token; the refresh
  token is not: when it expires the shop must be authorised again, so that is
  the one the operator is warned about (within :data:`WARN_DAYS`).
* **Shopify** — a custom-app token (``shopify.access_token``) does not
  expire. A client-credentials token lasts 24 h and is renewed by ecomsend
  (cache entry ``shopify``, ``expires_at``). Shopify publishes no expiry for
  the client secret itself (it is rotated by hand in the Dev Dashboard), so
  there is nothing to count down for it.

Pure reads: nothing here calls a service, prints or writes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Config
    from .models import TokenCache

WARN_DAYS = 7  # warn this long before a credential the operator must renew by hand expires
DAY = 86400


@dataclass(frozen=True)
class TokenExpiry:
    """One credential and when it stops working.

    ``expires_at`` is a Unix time, or None when unknown or never.
    ``renewed`` is true when ecomsend renews it by itself, so its expiry is
    not the operator's to act on. ``note`` says what is known when there is
    no date (e.g. "does not expire").
    """

    service: str  # "TikTok" or "Shopify"
    token: str  # "access token", "refresh token", "client secret"
    expires_at: int | None
    renewed: bool = False
    note: str = ""

    @property
    def name(self) -> str:
        return f"{self.service} {self.token}"

    def seconds_left(self, now: float | None = None) -> float | None:
        """Seconds until it expires (negative once past), or None when there is no date."""
        if self.expires_at is None:
            return None
        return self.expires_at - (time.time() if now is None else now)

    def needs_operator(self, now: float | None = None, *, within_days: int = WARN_DAYS) -> bool:
        """True when it expires within ``within_days`` (or has) and ecomsend cannot renew it."""
        left = self.seconds_left(now)
        return not self.renewed and left is not None and left < within_days * DAY

    def describe(self, now: float | None = None) -> str:
        """``refresh token expires in 5 days (2026-12-06)``; ``… expired 2 days ago (…)``; or the note."""
        left = self.seconds_left(now)
        if left is None:
            return f"{self.token}: {self.note or 'expiry not known'}"
        when = _date(self.expires_at, precise=abs(left) < 2 * DAY)
        renewed = ", renewed automatically" if self.renewed else ""
        if left <= 0:
            return f"{self.token} expired {countdown(-left)} ago ({when}){renewed}"
        return f"{self.token} expires in {countdown(left)} ({when}){renewed}"


def countdown(seconds: float) -> str:
    """A span as a person counts it: ``5 days``, ``1 day``, ``20 h``, ``12 min``."""
    seconds = max(0, int(seconds))
    if seconds >= 2 * DAY:
        return f"{seconds // DAY} days"
    if seconds >= DAY:
        return "1 day" if seconds < DAY + 3600 else f"{seconds // 3600} h"
    if seconds >= 3600:
        return f"{seconds // 3600} h"
    return f"{max(1, seconds // 60)} min"


def _date(epoch: int | None, *, precise: bool) -> str:
    moment = datetime.fromtimestamp(int(epoch or 0), UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if precise else moment.strftime("%Y-%m-%d")


def _epoch(value: object) -> int | None:
    """An ``*_expire_in`` / ``expires_at`` value as an int, or None when absent or unreadable."""
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        number = int(float(str(value)))
    except (ValueError, OverflowError):  # "soon", "nan", "inf"
        return None
    # Past the year 9999 is no date (datetime cannot hold it): unknown, like an unreadable one.
    return number if 0 < number <= 253_402_300_799 else None


def tiktok_expiries(tokens: Mapping[str, Any], *, has_refresh: bool) -> list[TokenExpiry]:
    """A TikTok token pair's expiries, from its ``*_expire_in`` fields (a token answer or cache entry).

    The access token is renewed by ecomsend when there is a refresh token;
    the refresh token is listed only when there is one.
    """
    unknown = "expiry not known yet (TikTok tells it at the first token refresh)"
    out = [TokenExpiry("TikTok", "access token", _epoch(tokens.get("access_token_expire_in")),
                       renewed=has_refresh, note=unknown)]
    if has_refresh:
        out.append(TokenExpiry("TikTok", "refresh token", _epoch(tokens.get("refresh_token_expire_in")),
                               note=unknown))
    return out


def token_expiries(config: Config, cache: TokenCache) -> list[TokenExpiry]:
    """The expiries of the configured credentials, TikTok's first (see the module docstring)."""
    out: list[TokenExpiry] = []
    tiktok = config.tiktok
    if tiktok.configured:
        from .tiktok_session import cached_tokens

        cached = cached_tokens(cache, tiktok) or {}
        out += tiktok_expiries(cached, has_refresh=bool(cached.get("refresh_token") or tiktok.refresh_token))
    shopify = config.shopify
    if shopify.configured:
        if shopify.access_token:
            out.append(TokenExpiry("Shopify", "access token", None,
                                   note="custom-app token: does not expire"))
        else:
            from .shopify import TOKEN_NAME

            cached = cache.load_token(TOKEN_NAME) or {}
            mine = (cached.get("shop") == shopify.base_url and cached.get("client_id") == shopify.client_id
                    and bool(cached.get("access_token")))
            note = ("client-credentials token: renewed automatically" if mine
                    else "no client-credentials token yet: fetched on first use, then renewed automatically")
            out.append(TokenExpiry("Shopify", "access token", _epoch(cached.get("expires_at")) if mine else None,
                                   renewed=True, note=note))
            out.append(TokenExpiry("Shopify", "client secret", None,
                                   note="Shopify publishes no expiry for it (rotate it in the Dev Dashboard "
                                   "when you choose)"))
    return out
