"""Connecting the shops: auth tiktok, auth shopify, auth status, auth logout, init (DESIGN §3, §7).

``auth tiktok`` trades the seller's authorization code for tokens kept in the
store; ``auth shopify`` checks the configured credentials and scopes;
``init`` writes a first config and runs both, then a catalog refresh and a
dry run. Tokens and secrets are never printed.
"""

from __future__ import annotations

from typing import Any

import typer

from . import app
from .common import JSON_OPT, Session, command, session

auth_app = typer.Typer(
    help="Connect the shops: authorise TikTok Shop, check Shopify, see or forget tokens.",
    no_args_is_help=True,
)
app.add_typer(auth_app, name="auth")


# --- TikTok -----------------------------------------------------------------------------------


def _code_from(answer: str) -> str:
    """The code itself, from a pasted code or the whole redirect address (``…?code=…``)."""
    from urllib.parse import parse_qs, urlsplit

    answer = answer.strip()
    if "code=" in answer:
        values = parse_qs(urlsplit(answer).query or answer.split("?", 1)[-1]).get("code")
        if values:
            return values[0].strip()
    return answer


def _pick_shop(s: Session, shops: list[dict], wanted: str | None) -> dict:
    from ..errors import InputError, NeedsTerminalError

    if not shops:
        from ..errors import AuthError

        raise AuthError("TikTok authorised the app for no shop",
                        hint="approve the app for your shop on the authorization page, then run "
                        "`ecomsend auth tiktok` again")
    if wanted:
        key = wanted.strip().lower()
        found = [x for x in shops if key in {str(x.get(f) or "").lower() for f in ("name", "cipher", "id", "code")}]
        if len(found) != 1:
            names = ", ".join(str(x.get("name")) for x in shops)
            raise InputError(f"--shop {wanted!r} names {'no' if not found else 'more than one'} authorised shop",
                             hint=f"use one of: {names} (or its cipher)")
        return found[0]
    if len(shops) == 1:
        return shops[0]
    rows = [[i, x.get("name"), x.get("region"), x.get("cipher")] for i, x in enumerate(shops, 1)]
    s.out.table(["#", "Shop", "Region", "Cipher"], rows, to_stderr=True)
    if not s.out.interactive():
        raise NeedsTerminalError(
            f"TikTok authorised {len(shops)} shops and ecomsend works on one",
            hint="set tiktok.shop_cipher to one of the ciphers above (the tokens are stored already), "
            "or run `ecomsend auth tiktok --shop NAME` with a new code")
    while True:
        answer = s.out.ask("Number of the shop to work on", what="choosing the TikTok shop", default="1")
        if answer is not None and answer.isdigit() and 1 <= int(answer) <= len(shops):
            return shops[int(answer) - 1]
        if answer is None:
            from ..errors import Aborted

            raise Aborted("No shop chosen; the tokens are stored, the first shop is used until you choose.")
        s.out.warn(f"type a number from 1 to {len(shops)}")


def _tiktok_flow(s: Session, code: str | None, shop: str | None) -> dict[str, Any]:
    """Authorise TikTok Shop: URL, code, exchange, shops, choice. Returns the --json document."""
    import time

    from ..connect import token_expiry_countdown
    from ..errors import ConfigError, NeedsTerminalError
    from ..tiktok_session import authorization_url

    config = s.config.tiktok
    if not config.configured:
        raise ConfigError("TikTok Shop is not configured: tiktok.app_key and tiktok.app_secret are needed",
                          hint="copy them from your app in TikTok Shop Partner Center into the config "
                          "(or run `ecomsend init`)")
    if not code:
        url = authorization_url(config)
        if not s.out.interactive():
            raise NeedsTerminalError(
                "the TikTok authorization code is needed, but stdin is not a terminal",
                hint=f"open {url} as the seller, approve the app, and pass the code: "
                "ecomsend auth tiktok --code CODE")
        s.out.info("Open this page in a browser, sign in as the seller and approve the app:\n"
                   f"  {url}\n"
                   "TikTok then opens the app's redirect page with ?code=… in its address: paste the "
                   "code (or the whole address) here. A code works once, for a few minutes.")
        answer = s.out.ask("Authorization code", what="authorising TikTok Shop")
        code = _code_from(answer or "")
    else:
        code = _code_from(code)
    client = s.tiktok()
    seller = client.exchange_auth_code(code)
    shops = client.authorized_shops()
    chosen = _pick_shop(s, shops, shop)
    client.choose_shop(chosen)
    now = time.time()
    doc = {
        "seller_name": seller.get("seller_name"),
        "seller_base_region": seller.get("seller_base_region"),
        "open_id": seller.get("open_id"),
        "granted_scopes": seller.get("granted_scopes"),
        "access_token_expire_in": seller.get("access_token_expire_in"),
        "refresh_token_expire_in": seller.get("refresh_token_expire_in"),
        "shop": {k: chosen.get(k) for k in ("id", "name", "region", "cipher")},
        "shops": [{k: x.get(k) for k in ("id", "name", "region", "cipher")} for x in shops],
        "store": str(s.store.path),
        "config_tokens_win": config.has_config_tokens,
    }
    s.out.success(
        f"TikTok Shop authorised: seller {doc['seller_name']} ({doc['seller_base_region']}), shop "
        f"{chosen.get('name')} ({chosen.get('region')}). Tokens kept in {s.store.path}; access token "
        f"{token_expiry_countdown(doc['access_token_expire_in'], now)}, refresh token "
        f"{token_expiry_countdown(doc['refresh_token_expire_in'], now)} (renewed on use)."
    )
    where = s.config.source or "the config"
    if config.has_config_tokens:
        s.out.warn(f"tiktok.access_token / tiktok.refresh_token are set in {where}; they win over the "
                   "tokens just stored: remove them from the config to use these")
    if config.shop_cipher and config.shop_cipher != chosen.get("cipher"):
        s.out.warn(f"tiktok.shop_cipher in {where} names another shop and wins; remove it to work on "
                   f"{chosen.get('name')}")
    return doc


@command(auth_app, "tiktok")
def auth_tiktok(
    code: str | None = typer.Option(None, "--code", help="The authorization code (else asked for).",
                                    metavar="CODE"),
    shop: str | None = typer.Option(None, "--shop", help="The shop to work on, by name or cipher, "
                                    "when the seller authorised several.", metavar="NAME"),
    as_json: bool = JSON_OPT,
) -> None:
    """Authorise TikTok Shop: print the seller's authorization page, trade the code for tokens.

    The tokens are kept in the store (never in the config, never printed) and
    renewed there; the shop chosen (asked when there are several, or --shop)
    is recorded. Tokens set in the config still win.

    Example: ecomsend auth tiktok --code TTP_xxxx --shop "My Shop"
    """
    s = session()
    doc = _tiktok_flow(s, code, shop)
    if as_json:
        s.out.json(doc)
    else:
        s.out.table(["Shop", "Region", "Cipher", "Chosen"],
                    [[x["name"], x["region"], x["cipher"], "yes" if x["cipher"] == doc["shop"]["cipher"] else ""]
                     for x in doc["shops"]])


# --- Shopify ----------------------------------------------------------------------------------


def _shopify_flow(s: Session) -> dict[str, Any]:
    """Check the Shopify credentials and scopes. Returns the --json document."""
    from ..connect import scope_report

    config = s.config.shopify
    client = s.shopify()
    info = client.shop_info()
    scopes = scope_report(info["access_scopes"])
    missing_core = [x["scope"] for x in scopes if not x["granted"] and x["core"]]
    doc = {
        "shop": info["name"],
        "myshopify_domain": info["myshopify_domain"],
        "currency": info["currency_code"],
        "plan": info["plan"],
        "development_store": info["development"],
        "credentials": "access_token" if config.access_token else "client_credentials",
        "scopes": scopes,
        "missing": [x["scope"] for x in scopes if not x["granted"]],
        "ok": not missing_core,
    }
    kind = ("a custom app's Admin API access token" if config.access_token
            else f"Dev Dashboard app client credentials (client ID {config.client_id})")
    s.out.info(f"Shopify: {doc['shop']} ({doc['myshopify_domain']}), currency {doc['currency']}, plan "
               f"{doc['plan'] or 'unknown'}; credentials: {kind}.")
    for row in scopes:
        if not row["granted"]:
            s.out.warn(f"missing scope {row['scope']}: without it, no {row['disables']}")
    if doc["missing"]:
        s.out.info("Add the missing scopes to the app (Dev Dashboard › your app › Versions: Access "
                   "scopes), release the version and install it again on the shop; the README says how.")
    if not missing_core:
        s.out.success("Shopify credentials work" + (" and every needed scope is granted."
                                                    if not doc["missing"] else "."))
    return doc


@command(auth_app, "shopify")
def auth_shopify(as_json: bool = JSON_OPT) -> None:
    """Check the Shopify credentials: the shop, its currency and plan, granted vs needed scopes.

    Exit 1 when sync-orders could not run at all (read_products, read_orders
    or write_orders missing); each other missing scope is listed with what it
    disables.

    Example: ecomsend auth shopify --json
    """
    from ..errors import AuthError

    s = session()
    doc = _shopify_flow(s)
    if as_json:
        s.out.json(doc)
    else:
        s.out.table(["Scope", "Granted", "Without it"],
                    [[x["scope"], "yes" if x["granted"] else "NO", x["disables"]] for x in doc["scopes"]])
    if not doc["ok"]:
        missing = [x["scope"] for x in doc["scopes"] if x["core"] and not x["granted"]]
        raise AuthError(f"the Shopify app lacks {', '.join(missing)}, so sync-orders cannot run",
                        hint="add them to the app's access scopes and install the new version on the shop")


# --- status, logout -----------------------------------------------------------------------------


def _status(s: Session) -> dict[str, Any]:
    import time

    from ..connect import token_expiry_countdown

    now = time.time()
    config = s.config
    tiktok: dict[str, Any] = {"configured": config.tiktok.configured}
    if config.tiktok.configured:
        client = s.tiktok()
        state = client.token_state()
        tiktok.update(state)
        tiktok["access_token"] = token_expiry_countdown(state["access_token_expire_in"], now) \
            if state["source"] else "none"
        tiktok["refresh_token"] = token_expiry_countdown(state["refresh_token_expire_in"], now) \
            if state["source"] else "none"
        tiktok["shop_cipher_source"] = ("config" if config.tiktok.shop_cipher
                                        else "chosen" if state.get("shop_cipher") else "first authorised shop")
    shopify: dict[str, Any] = {"configured": config.shopify.configured, "shop": config.shopify.shop}
    if config.shopify.configured:
        if config.shopify.access_token:
            shopify.update(credentials="access_token", token="custom-app token in the config (does not expire)",
                           expires_at=None)
        else:
            from ..shopify import TOKEN_NAME

            cached = s.store.load_token(TOKEN_NAME) or {}
            mine = cached.get("client_id") == config.shopify.client_id and cached.get("access_token")
            expires = cached.get("expires_at") if mine else None
            shopify.update(
                credentials="client_credentials", expires_at=expires,
                token=(f"client-credentials token {token_expiry_countdown(expires, now)} (renewed on use)"
                       if mine else "no token yet (fetched on first use)"))
    return {"tiktok": tiktok, "shopify": shopify}


@command(auth_app, "status")
def auth_status(as_json: bool = JSON_OPT) -> None:
    """Both shops' credentials and when their tokens expire (no network call).

    Example: ecomsend auth status
    """
    s = session()
    doc = _status(s)
    if as_json:
        s.out.json(doc)
        return
    t, sh = doc["tiktok"], doc["shopify"]
    rows = []
    if not t["configured"]:
        rows.append(["TikTok Shop", "not configured", "run `ecomsend init`, or set tiktok.app_key and app_secret"])
    elif not t["source"]:
        rows.append(["TikTok Shop", "not authorised", "run `ecomsend auth tiktok`"])
    else:
        where = "the config" if t["source"] == "config" else "`ecomsend auth tiktok` (store)"
        who = f"seller {t['seller_name']}, " if t.get("seller_name") else ""
        shop = t.get("shop_name") or t["shop_cipher_source"]
        rows.append(["TikTok Shop", f"{who}shop {shop}; tokens from {where}",
                     f"access token {t['access_token']}; refresh token {t['refresh_token']}"])
    if not sh["configured"]:
        rows.append(["Shopify", "not configured", "run `ecomsend init`, or set shopify.shop and credentials"])
    else:
        rows.append(["Shopify", sh["shop"], sh["token"]])
    s.out.table(["Shop", "State", "Tokens"], rows)


@command(auth_app, "logout")
def auth_logout(
    which: str = typer.Argument(..., help="tiktok or shopify", metavar="tiktok|shopify"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
) -> None:
    """Forget the tokens kept in the store for TikTok Shop or Shopify.

    The config file is not changed: credentials set there stay (and are said).

    Example: ecomsend auth logout tiktok --yes
    """
    from ..errors import Aborted, InputError

    if which not in ("tiktok", "shopify"):
        raise InputError(f"unknown shop {which!r}", hint="use: ecomsend auth logout tiktok (or shopify)")
    s = session()
    if which == "tiktok":
        from ..tiktok_session import TOKEN_CACHE_NAME as name

        label = "TikTok Shop"
        after = "ecomsend cannot reach TikTok Shop until `ecomsend auth tiktok` runs again"
    else:
        from ..shopify import TOKEN_NAME as name

        label = "Shopify"
        after = "a client-credentials token is fetched again on next use"
    if not yes and not s.out.confirm(f"Forget the {label} tokens kept in {s.store.path}? ({after})",
                                     what=f"auth logout {which}"):
        raise Aborted("Nothing forgotten.")
    gone = s.store.forget_token(name)
    s.out.success(f"Forgot the stored {label} tokens." if gone else f"No stored {label} tokens to forget.")
    config = s.config
    if which == "tiktok" and config.tiktok.has_config_tokens:
        s.out.warn(f"tiktok.access_token / refresh_token in {config.source} remain and will be used; "
                   "remove them there too")
    if which == "shopify" and config.shopify.access_token:
        s.out.warn(f"shopify.access_token in {config.source} remains and will be used; remove it there "
                   "(and uninstall the app in Shopify to revoke it)")

