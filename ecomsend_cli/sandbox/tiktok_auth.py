"""The TikTok simulator's authorization step: the seller's approval page and ``token/get``.

:class:`Authorization` is the part of
:class:`~ecomsend_cli.sandbox.tiktok_sim.TikTokSimulator` that lets
``ecomsend auth tiktok`` and ``ecomsend init`` run end to end on loopback:

* ``GET /_sandbox/authorize?service_id=…[&redirect_uri=…][&state=…]`` — the
  stand-in for TikTok's authorization page (``services.tiktokshop.com/open/authorize``),
  where the simulated seller has already approved the app: it issues a
  one-time code. With a ``redirect_uri`` it redirects there with
  ``?code=…&state=…`` (as TikTok redirects to the app's callback); without,
  it answers a short text page showing the code (there is no callback for a
  CLI: the operator copies the code). A wrong ``service_id`` is refused
  (HTTP 400), as TikTok refuses to authorise an app it does not know.
* ``GET /api/v2/token/get?app_key&app_secret&auth_code&grant_type=authorized_code``
  — as TikTok documents it: a new access and refresh token (``*_expire_in``
  absolute Unix times), ``open_id``, ``seller_name``, ``seller_base_region``,
  ``user_type`` and ``granted_scopes``, in the ``{code, message,
  request_id, data}`` envelope. Tokens issued before stay valid until their
  own expiry (a new authorization does not revoke them here).

**Designed, not documented.** TikTok's public reference does not list the
codes ``token/get`` answers for a refused ``auth_code``, nor how long a code
lives; the simulator's are its own, in the auth API's 360040xx family next to
the refresh errors seen in practice (36004001 "rt has expired", 36004005):
36004002 for a code it never issued, 36004003 for an expired one
(``auth_code_ttl`` seconds after it was issued, default 600), 36004004 for a
code used already. ecomsend keys on none of them: any refusal is reported
with TikTok's message and the next step. A wrong ``app_key``/``app_secret``
or ``grant_type`` is 36009004 (invalid parameter), as for the refresh.

Controls: :meth:`Authorization.issue_auth_code` (also what the page calls),
:attr:`Authorization.service_id`, and ``POST /_sandbox/auth_codes/expire``
(every code issued so far expires now).
"""

from __future__ import annotations

import hmac
import secrets
from html import escape
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ._http import Reply, Request
from .tiktok_life import ApiFailure

SCHEMA = """
CREATE TABLE IF NOT EXISTS auth_codes (
    code TEXT PRIMARY KEY, issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
    used_at INTEGER);
"""
AUTHORIZE_PATH = "/_sandbox/authorize"
TOKEN_GET_PATH = "/api/v2/token/get"
CODE_UNKNOWN = 36004002
CODE_EXPIRED = 36004003
CODE_USED = 36004004
SELLER_NAME = "Sandbox Shop"
SELLER_REGION = "US"
GRANTED_SCOPES = ["seller.authorization.info", "seller.order.info", "seller.product.basic",
                  "seller.fulfillment.basic", "seller.logistics", "seller.return_refund.basic"]


class Authorization:
    """Mixin of :class:`~ecomsend_cli.sandbox.tiktok_sim.TikTokSimulator` (see the module docstring).

    It uses the simulator's ``_db``, ``_db_lock``, ``_write``, ``_now``, ``_meta``,
    ``_issue``, ``credentials``, ``access_token_ttl`` and ``refresh_token_ttl``.
    """

    auth_code_ttl: int = 600
    _db: Any
    _db_lock: Any

    @property
    def service_id(self) -> str:
        """The simulated app's service id (what ``tiktok.service_id`` must be); made once, kept."""
        def make() -> str:
            value = self._meta("service_id")  # type: ignore[attr-defined]
            if value is None:
                value = str(7_400_000_000_000_000_000 + secrets.randbelow(10**17))
                self._db.execute("INSERT INTO meta (key, value) VALUES ('service_id', ?)", (value,))
            return value

        with self._db_lock:
            value = self._meta("service_id")  # type: ignore[attr-defined]
            return value if value is not None else self._write(make)  # type: ignore[attr-defined]

    def issue_auth_code(self) -> str:
        """A new one-time authorization code for the simulated seller (the page's answer)."""
        code = "TTP_" + secrets.token_urlsafe(18)
        now = self._now()  # type: ignore[attr-defined]
        self._write(lambda: self._db.execute(  # type: ignore[attr-defined]
            "INSERT INTO auth_codes (code, issued_at, expires_at) VALUES (?, ?, ?)",
            (code, now, now + self.auth_code_ttl)))
        return code

    def expire_auth_codes(self) -> None:
        """Every code issued so far expires now."""
        now = self._now()  # type: ignore[attr-defined]
        self._write(lambda: self._db.execute(  # type: ignore[attr-defined]
            "UPDATE auth_codes SET expires_at = ? WHERE expires_at > ?", (now - 1, now - 1)))

    # -- the page ---------------------------------------------------------------------------
    def authorize_page(self, req: Request) -> Reply:
        """``GET /_sandbox/authorize``: a code for the seller, or a redirect carrying it."""
        if not hmac.compare_digest(req.query.get("service_id", ""), self.service_id):
            return Reply(400, b"This app is not available: unknown service_id.\n",
                         {"Content-Type": "text/plain; charset=utf-8"})
        code = self.issue_auth_code()
        redirect = req.query.get("redirect_uri") or ""
        if redirect:
            parts = urlsplit(redirect)
            query = parse_qsl(parts.query) + [("code", code)]
            if req.query.get("state"):
                query.append(("state", req.query["state"]))
            return Reply(302, b"", {"Location": urlunsplit(parts._replace(query=urlencode(query)))})
        page = (f"ecomsend sandbox: {escape(SELLER_NAME)} approved the app.\n"
                f"Authorization code: {code}\n").encode()
        return Reply(200, page, {"Content-Type": "text/plain; charset=utf-8"})

    def check_app_secret(self, query: Any, grant_type: str) -> None:
        """The auth API's own check (token/get and token/refresh): app_key and app_secret in the
        query, and the grant type the endpoint takes."""
        creds = self.credentials  # type: ignore[attr-defined]
        if query.get("app_key") != creds["app_key"] or not hmac.compare_digest(
            query.get("app_secret", ""), creds["app_secret"]
        ):
            raise ApiFailure(401, 36009004, "Invalid credentials. Invalid app_key or app_secret.")
        if query.get("grant_type") != grant_type:
            raise ApiFailure(400, 36009004, f"Invalid grant_type: expected {grant_type}.")

    # -- token/get --------------------------------------------------------------------------
    def token_get(self, req: Request) -> dict[str, Any]:
        """``GET /api/v2/token/get``: the code traded for the first token pair (or refused)."""
        q = req.query
        self.check_app_secret(q, "authorized_code")
        code = q.get("auth_code", "")

        def trade() -> dict[str, Any]:
            row = self._db.execute(
                "SELECT expires_at, used_at FROM auth_codes WHERE code = ?", (code,)).fetchone()
            now = self._now()  # type: ignore[attr-defined]
            if row is None:
                raise ApiFailure(400, CODE_UNKNOWN, "auth code is invalid")
            if row[1] is not None:
                raise ApiFailure(400, CODE_USED, "auth code has been used")
            if row[0] <= now:
                raise ApiFailure(400, CODE_EXPIRED, "auth code has expired")
            self._db.execute("UPDATE auth_codes SET used_at = ? WHERE code = ?", (now, code))
            access, access_exp = self._issue("access", None, now, self.access_token_ttl)  # type: ignore[attr-defined]
            refresh, refresh_exp = self._issue("refresh", None, now, self.refresh_token_ttl)  # type: ignore[attr-defined]
            return {
                "access_token": access,
                "access_token_expire_in": access_exp,
                "refresh_token": refresh,
                "refresh_token_expire_in": refresh_exp,
                "open_id": self._meta("open_id"),  # type: ignore[attr-defined]
                "seller_name": SELLER_NAME,
                "seller_base_region": SELLER_REGION,
                "user_type": 0,
                "granted_scopes": list(GRANTED_SCOPES),
            }

        return self._write(trade)  # type: ignore[attr-defined]

    def auth_control(self, req: Request) -> Reply | None:
        """The ``/_sandbox/`` endpoints of this module, or None."""
        if req.path == AUTHORIZE_PATH and req.method == "GET":
            return self.authorize_page(req)
        if req.path == "/_sandbox/auth_codes/expire" and req.method == "POST":
            self.expire_auth_codes()
            return Reply(200, {"expired": True})
        return None
