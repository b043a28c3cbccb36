"""Connecting the shops (DESIGN §3 ``auth`` and ``init``, §7): what ecomsend needs of each.

* :data:`SHOPIFY_SCOPES` — the Admin API scopes ecomsend asks for, and what
  stops working without each (:data:`SHOPIFY_CORE_SCOPES`: without these
  sync-orders cannot run); :func:`missing_scopes` says which an installation
  lacks (``auth shopify``, ``doctor``), :func:`scope_report` lists them all.
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


def missing_scopes(granted: Iterable[str], needed: Iterable[str] = SHOPIFY_CORE_SCOPES) -> list[str]:
    """The scopes of ``needed`` that ``granted`` lacks, in ``needed``'s order.

    A ``write_`` scope implies its ``read_`` one, as Shopify grants them.
    """
    have = set(granted)
    return [x for x in needed if x not in have and not (x.startswith("read_") and "write_" + x[5:] in have)]


def scope_report(granted: Iterable[str]) -> list[dict[str, Any]]:
    """Each needed scope: ``{scope, granted, core, disables}`` (``disables`` empty when granted)."""
    missing = set(missing_scopes(granted, SHOPIFY_SCOPES))
    rows = []
    for scope, loss in SHOPIFY_SCOPES.items():
        ok = scope not in missing
        rows.append({"scope": scope, "granted": ok, "core": scope in SHOPIFY_CORE_SCOPES,
                     "disables": "" if ok else loss})
    return rows


def write_new_config(path: Path, text: str, *, replace: bool = False) -> Path | None:
    """Write ``text`` to ``path`` with mode 0600; returns where the old file was kept, if any.

    An existing file is replaced only with ``replace`` (the caller asked the
    operator); it is then kept as ``<name>.bak``. The folder is made (0700)
    when missing. The text goes to a private temporary file first and takes
    the name only once complete, so a failed write leaves the old config (or
    none) in place, never half a file; and whatever sits at ``path`` (a
    symlink included) is replaced, never written through.
    """
    path = Path(path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"cannot create {path.parent}: {exc.strerror}",
                          hint="choose another place with --config FILE") from None
    if os.path.lexists(path) and not replace:
        raise ConfigError(f"{path} exists already", hint="answer yes to replace it, or pass --yes")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # O_EXCL: created by us, private from the first byte (it may hold secrets).
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}",
                          hint="choose another place with --config FILE") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)  # whatever the umask made of it
        kept: Path | None = None
        if not replace:
            os.link(temporary, path, follow_symlinks=False)  # fails if anything took the name meanwhile
        else:
            if os.path.lexists(path):
                kept = path.with_name(path.name + ".bak")
                if os.path.lexists(kept):
                    os.unlink(kept)
                os.link(path, kept, follow_symlinks=False)  # the old one (a symlink stays a symlink)
            os.replace(temporary, path)
    except FileExistsError:
        raise ConfigError(f"{path} exists already", hint="answer yes to replace it, or pass --yes") from None
    except (OSError, UnicodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "text it cannot encode as UTF-8"
        raise ConfigError(f"cannot write {path}: {why}", hint="choose another place with --config FILE, "
                          "or free some space") from None
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)
    return kept
