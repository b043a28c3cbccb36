"""The Shopify catalog cache, the health check and the configuration: catalog refresh,
doctor, config show (DESIGN §4.3, §7)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from ..errors import EcomsendError
from . import app, config_app
from .common import JSON_OPT, _warn_stale, command, session

if TYPE_CHECKING:
    from ..store import StaleLink

# --- catalog, doctor ----------------------------------------------------------------------------

catalog_app = typer.Typer(help="The local cache of the Shopify catalog.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")


@command(catalog_app, "refresh")
def catalog_refresh(
    full: bool = typer.Option(False, "--full", help="Fetch the whole catalog (a bulk operation)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Refresh the Shopify catalog cache: products updated since the last refresh, or all.

    Example: ecomsend catalog refresh --full
    """
    from ..catalog import refresh_catalog

    s = session()
    result = refresh_catalog(s.store, s.shopify(), full=full, poll_interval=1.0)
    if as_json:
        s.out.json(result.as_json())
        return
    s.out.success(
        f"Catalog cache refreshed ({result.mode}): {result.variants} variant(s) written"
        + (f" from {result.products} changed product(s)" if result.mode == "incremental" else "")
        + f", {s.store.variant_count()} in the cache, in {result.seconds:.1f}s."
    )
    if warning := result.refused_warning():
        s.out.warn(warning)
    _warn_stale(s.out, s.store.stale_link_details())


@command(app, "doctor")
def doctor(as_json: bool = JSON_OPT) -> None:
    """Check the config, the store and both APIs (auth, shop, scopes); say what to fix.

    Example: ecomsend doctor
    """
    s = session()
    checks: list[dict] = []

    def check(name: str, fn: Callable[[], str]) -> None:
        try:
            checks.append({"check": name, "ok": True, "detail": fn(), "fix": ""})
        except EcomsendError as exc:
            checks.append({"check": name, "ok": False, "detail": exc.message,
                           "fix": s.out.in_context(exc.hint or "")})

    def config_check() -> str:
        c = s.config
        return f"{c.source or 'no config file (defaults)'}" + (f"; {len(c.warnings)} warning(s)" if c.warnings else "")

    def store_check() -> str:
        store = s.store
        store.quick_check()
        counts = store.order_counts()
        from ..store import CATALOG_REFRESHED_KEY

        age = store.get_state(CATALOG_REFRESHED_KEY) or "never"
        return (f"{store.path} (schema {store.schema_version}, quick_check ok); {store.link_count()} link(s), "
                f"{sum(counts.values())} order(s), {store.variant_count()} cached variant(s), "
                f"catalog refreshed {age}")

    def cursor_check() -> str:
        import time
        from datetime import UTC, datetime

        from ..errors import StoreError
        from ..sync import CURSOR_KEY

        value = s.store.get_state(CURSOR_KEY)
        if value is None:
            return "no orders pulled yet"
        cursor = int(value) if value.strip().isdigit() else 0
        shown = datetime.fromtimestamp(cursor, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        ahead = cursor - time.time()
        if ahead > 300:
            raise StoreError(
                f"the sync cursor ({shown}) is ahead of this computer's clock by {ahead / 3600:.1f} h",
                hint="check the clock (NTP); sync-orders pulls from the clock's time meanwhile, so no "
                "order is skipped, and the next run sets the cursor right",
            )
        return f"orders pulled up to {shown}"

    def shopify_check() -> str:
        from ..connect import SHOPIFY_CORE_SCOPES, missing_scopes
        from ..errors import AuthError

        info = s.shopify().shop_info()
        missing = missing_scopes(info["access_scopes"], SHOPIFY_CORE_SCOPES)
        if missing:
            raise AuthError(f"{info['name']}: the app lacks scope(s) {', '.join(missing)}",
                            hint="add them to the app's Admin API scopes and reinstall it")
        return f"{info['name']} ({info['myshopify_domain']}), scopes ok: {', '.join(SHOPIFY_CORE_SCOPES)}"

    def all_orders_check() -> str:
        from ..connect import missing_scopes
        from ..errors import AuthError

        if missing_scopes(s.shopify().shop_info()["access_scopes"], ("read_all_orders",)):
            raise AuthError(
                "the app lacks read_all_orders: Shopify's search shows it only the last 60 days of orders, so "
                "an order placed on TikTok more than 60 days ago is held, not created (whether it already "
                "exists cannot be checked), and an unconfirmed one of that age is never sent again",
                hint="add read_all_orders to the app's Admin API scopes (Shopify asks apps to justify it) "
                "and reinstall the app",
            )
        return "granted: orders of any age can be looked up before they are created"

    def tiktok_check() -> str:
        client = s.tiktok()
        shops = client.authorized_shops()
        cipher = client.resolve_shop_cipher()
        names = ", ".join(str(x.get("name") or x.get("id")) for x in shops) or "no shops"
        return f"authorised for {names}; shop cipher {'set' if cipher else 'missing'}"

    def links_check() -> str:
        from ..errors import StoreError

        store = s.store
        stale = store.stale_link_details()
        if stale:
            deleted = sum(1 for x in stale.values() if x.deleted)
            examples = "; ".join(f"{x.tiktok_sku_id}: {x.problem}" for x in list(stale.values())[:3])
            raise StoreError(
                f"{len(stale)} link(s) are stale ({deleted} variant(s) deleted in Shopify, "
                f"{len(stale) - deleted} changed SKU), so orders needing them wait: {examples}"
                + (" …" if len(stale) > 3 else ""),
                hint=_stale_hint(next(iter(stale.values()))),
            )
        return f"{store.link_count()} link(s), none stale"

    def tokens_check() -> str:
        from ..expiry import token_expiries

        expiries = token_expiries(s.config, s.store)
        due = [e for e in expiries if e.needs_operator()]
        for e in due:  # still working, so not a failed check: a warning with the fix
            s.out.warn(f"{e.service} {e.describe()}: authorise again before then")
        if due:
            warned.add("tokens")
        return "; ".join(f"{e.service} {e.describe()}" for e in expiries) or "no credentials configured"

    def notify_check() -> str:
        from ..errors import ConfigError
        from ..notify import check_urls

        urls = s.config.notify.urls
        if not urls:
            return "no notify.urls: sync-orders sends no alerts"
        bad = check_urls(urls)
        if bad:
            raise ConfigError(f"Apprise cannot read {', '.join(bad)}",
                              hint="fix the URL (Apprise's documentation shows each service's form)")
        return (f"{len(urls)} URL(s) readable; alerts for orders blocked over "
                f"{s.config.notify.blocked_after_hours} h, told again after {s.config.notify.repeat_hours} h")

    warned: set[str] = set()
    check("config", config_check)
    if checks[-1]["ok"]:
        check("store", store_check)
        if checks[-1]["ok"]:
            check("sync cursor", cursor_check)
            check("links", links_check)
            check("tokens", tokens_check)
            if "tokens" in warned:
                checks[-1]["fix"] = ("authorise the shop again in TikTok Shop Partner Center and put the new "
                                     "tokens in tiktok.access_token and tiktok.refresh_token")
        check("notify", notify_check)
        check("shopify", shopify_check)
        if checks[-1]["ok"]:
            check("read_all_orders", all_orders_check)
        check("tiktok", tiktok_check)
    ok = all(c["ok"] for c in checks)
    if as_json:
        s.out.json({"ok": ok, "checks": checks})
    else:
        s.out.table(["Check", "OK", "Detail", "Fix"],
                    [[c["check"], "yes" if c["ok"] else "NO", c["detail"], c["fix"]] for c in checks])
        if ok:
            s.out.success("All checks passed.")
    if not ok:
        raise typer.Exit(1)


# --- config -------------------------------------------------------------------------------


@command(config_app, "show")
def config_show(as_json: bool = JSON_OPT) -> None:
    """Print the resolved configuration, secrets redacted.

    Example: ecomsend --config ./ecomsend.yaml config show
    """
    import yaml

    s = session()
    if s.config.notify.urls:  # what loading cannot check without Apprise (its import costs every command)
        from ..errors import ConfigError
        from ..notify import check_urls

        bad = check_urls(s.config.notify.urls)
        if bad:
            raise ConfigError(f"{s.config.source or 'config'}: Apprise cannot read {', '.join(bad)}",
                              hint="write it as service://…, as Apprise's documentation shows for the service")
    data = s.config.redacted()
    if as_json:
        s.out.json(data)
        return
    s.out.text(yaml.safe_dump(data, sort_keys=False).rstrip())


def _stale_hint(first: StaleLink) -> str:
    """How to mend a stale link, with the first one's real ids (a hint that runs when pasted)."""
    variant = first.shopify_variant_id.rsplit("/", 1)[-1]
    if first.deleted:
        return (f"remove each, e.g. `ecomsend unlink {first.tiktok_sku_id} --yes`, then link it to a variant "
                "that exists (on a terminal, `ecomsend link` with its id offers the picker); "
                "`ecomsend links` lists them")
    return (f"confirm each changed SKU by relinking the same variant, e.g. "
            f"`ecomsend link {first.tiktok_sku_id} {variant} --force`, or remove it: "
            f"`ecomsend unlink {first.tiktok_sku_id} --yes`; `ecomsend links` lists them")
