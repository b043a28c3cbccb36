"""Connecting the shops (DESIGN §3 ``auth`` and ``init``, §7): what ecomsend needs of each.

* :data:`SHOPIFY_SCOPES` — the Admin API scopes ecomsend asks for, and what
  stops working without each; :func:`scope_report` compares them with the
  scopes an installation was granted.
* :func:`token_expiry_countdown` — "expires in 6 d 23 h" for a token's
  absolute expiry time (``ecomsend auth status``).
* :func:`write_new_config` — the config file ``ecomsend init`` writes: mode
  0600 from the first byte, never over an existing file unless asked (the old
  one is then kept beside it as ``.bak``).

The token exchange itself belongs to the clients
(:meth:`~ecomsend_cli.tiktok_session.TikTokSession.exchange_auth_code`).
Nothing here prints or reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import ConfigError

# Scope -> what ecomsend cannot do without it (shown by `ecomsend auth shopify`).
SHOPIFY_SCOPES: dict[str, str] = {
    "read_products": "catalog refresh: no Shopify variants to link TikTok SKUs to",
    "read_orders": "looking up orders already created, so no order can be created safely",
    "write_orders": "creating orders, and cancellations and refunds from TikTok",
    "read_all_orders": "orders older than 60 days: held instead of created (Shopify hides them "
    "from the app's search)",
    "read_fulfillments": "tracking numbers back to TikTok (sync-orders phase 2)",
    "write_fulfillments": "TikTok-fulfilled (FBT) orders created already fulfilled",
    "read_inventory": "stock levels in the catalog cache, and restocking returned goods",
}
# Without these sync-orders cannot run at all; the others each disable one part.
SHOPIFY_CORE_SCOPES = ("read_products", "read_orders", "write_orders")


def scope_report(granted: Iterable[str]) -> list[dict[str, Any]]:
    """Each needed scope: ``{scope, granted, core, disables}`` (``disables`` empty when granted).

    A ``write_`` scope implies its ``read_`` one, as Shopify grants them.
    """
    have = set(granted)
    rows = []
    for scope, loss in SHOPIFY_SCOPES.items():
        ok = scope in have or (scope.startswith("read_") and "write_" + scope[5:] in have)
        rows.append({"scope": scope, "granted": ok, "core": scope in SHOPIFY_CORE_SCOPES,
                     "disables": "" if ok else loss})
    return rows


def token_expiry_countdown(expires_at: Any, now: float) -> str:
    """``expires in 6 d 23 h``, ``expired 2 h ago`` or ``expiry unknown`` for an absolute Unix time."""
    try:
        left = float(expires_at) - now
    except (TypeError, ValueError):
        return "expiry unknown"
    if left <= 0:
        return f"expired {_span(-left)} ago"
    return f"expires in {_span(left)}"


def _span(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def write_new_config(path: Path, text: str, *, replace: bool = False) -> Path | None:
    """Write ``text`` to ``path`` with mode 0600; returns where the old file was kept, if any.

    An existing file is replaced only with ``replace`` (the caller asked the
    operator); it is then renamed to ``<name>.bak`` first. The folder is made
    (0700) when missing.
    """
    path = Path(path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"cannot create {path.parent}: {exc.strerror}",
                          hint="choose another place with --config FILE") from None
    kept: Path | None = None
    if path.exists():
        if not replace:
            raise ConfigError(f"{path} exists already", hint="answer yes to replace it, or pass --yes")
        kept = path.with_name(path.name + ".bak")
        os.replace(path, kept)
    try:
        # O_EXCL: created by us, private from the first byte (it may hold secrets).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}",
                          hint="choose another place with --config FILE") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # whatever the umask made of it
    return kept
