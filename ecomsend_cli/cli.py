"""The command line: parse, call the core, render. No rules live here.

Each command opens what it needs through :class:`Session`, calls one core
function, and renders with :class:`Output`. Errors from the core
(:mod:`errors`) become a one-line message on stderr and the exit code of
DESIGN §3 in :func:`_run`. Heavy modules (httpx, the sandbox) are imported
inside the commands that need them, so ``ecomsend --help`` stays fast.
"""

from __future__ import annotations

import functools
import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from . import __version__
from .errors import EXIT_ERROR, EXIT_INTERRUPTED, Aborted, EcomsendError

if TYPE_CHECKING:
    from .config import Config
    from .output import Output
    from .store import Store

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 error (config, auth, network, bad input); 2 usage; "
    "3 sync-orders left orders blocked or failed; 75 another sync-orders holds the lock; "
    "130 interrupted. With --json, a failure prints {\"error\": {message, hint, exit_code}} on stdout."
)

app = typer.Typer(
    name="ecomsend",
    help="Copy TikTok Shop orders into Shopify and link TikTok SKUs to Shopify variants.\n\n"
    + EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals can hold tokens
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
links_app = typer.Typer(
    help="List links, or export them as CSV. Example: ecomsend links --json", no_args_is_help=False
)
config_app = typer.Typer(help="Show the resolved configuration.", no_args_is_help=True)
app.add_typer(links_app, name="links")
app.add_typer(config_app, name="config")

F = TypeVar("F", bound=Callable[..., Any])


class Session:
    """What one invocation works with: options, config, store and output, opened lazily."""

    def __init__(self, config_path: str | None, store_path: str | None, quiet: bool, verbose: bool):
        from .output import Output

        self.config_path = config_path
        self.store_path = store_path
        self.out: Output = Output(quiet=quiet, verbose=verbose)
        self._config: Config | None = None
        self._store: Store | None = None
        self._clients: list[Any] = []

    @property
    def config(self) -> Config:
        if self._config is None:
            from .config import load_config

            self._config = load_config(self.config_path, store=self.store_path)
            for warning in self._config.warnings:
                self.out.warn(warning)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            from .store import Store

            config = self.config
            self._store = Store.open(config.store, create_folder=config.store_is_default,
                                     busy_timeout=config.store_busy_timeout_seconds)
            self.store_warnings()
        return self._store

    def store_warnings(self) -> None:
        """Say what the store has to say (a store readable by others holding tokens), once."""
        if self._store is not None:
            for warning in self._store.warnings:
                self.out.warn(warning)
            self._store.warnings.clear()

    def shopify(self, **options: Any) -> Any:
        """A Shopify client for the configured shop, its token cached in the store.

        ``options`` go to :class:`~ecomsend_cli.shopify.ShopifyClient` (e.g. ``max_retries``).
        """
        from .shopify import ShopifyClient

        return self._client(
            ShopifyClient, self.config.shopify, "Shopify",
            "set shopify.shop and shopify.access_token (or client_id and client_secret)",
            **options,
        )

    def tiktok(self) -> Any:
        """A TikTok Shop client, its refreshed tokens kept in the store."""
        from .tiktok import TikTokClient

        return self._client(
            TikTokClient, self.config.tiktok, "TikTok Shop",
            "set tiktok.app_key, app_secret and access_token (or refresh_token)",
        )

    def _client(self, cls: Any, section: Any, name: str, what_to_set: str, **options: Any) -> Any:
        from .errors import ConfigError

        if not section.configured:
            raise ConfigError(
                f"{name} is not configured",
                hint=f"{what_to_set} in the config; see config.example.yaml, or try `ecomsend demo`",
            )
        client = cls(section, self.store, deadline=self.config.network_deadline_seconds, **options)
        self._clients.append(client)
        return client

    def ensure_catalog(self, *, dry_run: bool = False, local_ok: bool = False) -> None:
        """Refresh the Shopify catalog cache when older than ``catalog.max_age_minutes`` (§4.3).

        Without Shopify credentials the cache is used as it is; a dry run
        writes nothing, so it only says the cache is stale. ``local_ok``: the
        command's data is local (``list-unlinked``), so when Shopify cannot be
        reached it warns that the cache may be stale, and goes on with it.
        """
        config = self.config
        if not config.shopify.configured:
            return
        from .catalog import catalog_age, catalog_is_stale, refresh_catalog

        if not catalog_is_stale(self.store, config.catalog.max_age_minutes):
            return
        if dry_run:
            self.out.warn(
                f"the Shopify catalog cache is older than {config.catalog.max_age_minutes} min; "
                "a dry run writes nothing, so run `ecomsend catalog refresh` for current proposals"
            )
            return
        self.out.info("Refreshing the Shopify catalog cache…")
        if not local_ok:
            result = refresh_catalog(self.store, self.shopify(), poll_interval=1.0)
        else:
            from .errors import ApiError

            try:
                # One retry: the listing does not need Shopify, so it does not wait long for it.
                result = refresh_catalog(self.store, self.shopify(max_retries=1), poll_interval=1.0)
            except ApiError as exc:
                age = catalog_age(self.store)
                cache = ("the cache was never refreshed" if age is None
                         else f"the cache was refreshed {_duration(age)} ago")
                self.out.warn(
                    f"could not refresh the Shopify catalog cache ({exc.message}); {cache} and may be "
                    "stale (suggestions and variant details as of then) — run `ecomsend catalog "
                    "refresh` once Shopify can be reached"
                )
                return
        self.out.info(f"Catalog cache: {result.variants} variant(s) ({result.mode} refresh).")

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        if self._store is not None:
            self.store_warnings()  # raised after opening, e.g. by a refreshed token
            self._store.close()
            self._store = None


def _duration(age: Any) -> str:
    """A ``timedelta`` as a person says it: ``45 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``."""
    seconds = max(0, int(age.total_seconds()))
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


_session: Session | None = None


def session() -> Session:
    assert _session is not None, "the main callback sets the session"
    return _session


def _run(fn: F) -> F:
    """Turn core errors into one line on stderr and the exit code of DESIGN §3.

    A command called with ``--json`` (its ``as_json`` argument) also prints,
    on any handled failure, one JSON document on stdout:
    ``{"error": {"message", "hint", "exit_code"}}`` — unless it already wrote
    its own document (``link --csv --json`` lists the invalid rows, then fails).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return fn(*args, **kwargs)
        except Aborted as exc:
            session().out.info(str(exc))
            _fail(as_json, exc.message, exc.hint, exc.exit_code)
        except EcomsendError as exc:
            session().out.error(str(exc))
            _fail(as_json, exc.message, exc.hint, exc.exit_code)
        except KeyboardInterrupt:
            message = "interrupted; nothing more was written"
            session().out.error(message)
            _fail(as_json, message, None, EXIT_INTERRUPTED)
        except typer.BadParameter as exc:
            # Raised by the command itself (a wrong combination of options): typer prints
            # the usage on stderr and exits 2; the script reading stdout gets its document.
            if as_json and not session().out.data_written:
                session().out.json(_error_document(exc.format_message(), None, exc.exit_code))
            raise
        except Exception as exc:
            error = _store_error(exc)
            if error is None:
                raise
            session().out.error(str(error))
            _fail(as_json, error.message, error.hint, error.exit_code)
        finally:
            if _session is not None:
                _session.close()

    return wrapper  # type: ignore[return-value]


def _error_document(message: str, hint: str | None, exit_code: int) -> dict:
    """What ``--json`` prints on failure (a documented interface, like the listings' fields)."""
    return {"error": {"message": message, "hint": hint, "exit_code": exit_code}}


def _fail(as_json: bool, message: str, hint: str | None, exit_code: int) -> NoReturn:
    """End the command with ``exit_code``, after the JSON error document when ``--json`` asked."""
    out = session().out
    if as_json and not out.data_written:
        out.json(_error_document(message, hint, exit_code))
    raise typer.Exit(exit_code) from None


def _store_error(exc: Exception) -> EcomsendError | None:
    """A SQLite error that escaped the store (a plain read of a busy or damaged file) as a StoreError."""
    import sqlite3

    if not isinstance(exc, sqlite3.Error):
        return None
    from .store import store_error

    s = session()
    if s._store is not None:
        return s._store.error(exc)
    config = s._config
    return store_error(exc, config.store if config else Path("store"),
                       busy_timeout=config.store_busy_timeout_seconds if config else 10)


def command(target: typer.Typer, name: str | None = None, **kwargs: Any) -> Callable[[F], F]:
    """Register a command on ``target`` with the shared error handling."""

    def decorator(fn: F) -> F:
        target.command(name, **kwargs)(_run(fn))
        return fn

    return decorator


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ecomsend {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    config: str | None = typer.Option(
        None, "--config", "-c", help="Config file. Default: $ECOMSEND_CONFIG, then the user "
        "config folder (e.g. ~/.config/ecomsend/config.yaml).", metavar="FILE",
    ),
    store: str | None = typer.Option(
        None, "--store", help="Link store (SQLite file). Default: $ECOMSEND_STORE, then `store:` "
        "in the config, then the user data folder.", metavar="FILE",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors and data."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="More detail on stderr."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Copy TikTok Shop orders into Shopify and link TikTok SKUs to Shopify variants."""
    global _session
    _session = Session(config, store, quiet, verbose)


# --- shared rendering -----------------------------------------------------------

JSON_OPT = typer.Option(False, "--json", help="One JSON document on stdout (stable field names).")


def _variant_label(variant: Any) -> str:
    if variant is None:
        return ""
    title = variant.product_title
    if variant.variant_title and variant.variant_title != "Default Title":
        title += f" / {variant.variant_title}"
    return title


def _suggestion_text(suggestion: Any, variants: dict[str, Any]) -> str:
    from .matching import AMBIGUOUS, MATCH

    if suggestion.status == MATCH:
        v = variants.get(suggestion.shopify_variant_id)
        return f"{v.sku} ({_variant_label(v)})" if v else suggestion.shopify_variant_id
    if suggestion.status == AMBIGUOUS:
        return f"ambiguous ({len(suggestion.candidates)})"
    return "no match"


# --- list-unlinked -----------------------------------------------------------------


@command(app, "list-unlinked")
def list_unlinked(
    all_: bool = typer.Option(False, "--all", help="Also list linked SKUs, with link and source."),
    as_json: bool = JSON_OPT,
    as_csv: bool = typer.Option(
        False, "--csv", help="CSV for `ecomsend link --csv` (fill in a Shopify column, import)."
    ),
) -> None:
    """TikTok SKUs from pulled orders that have no link, with the auto-link suggestion.

    Example: ecomsend list-unlinked --json | jq '.[] | select(.blocked_orders > 0)'
    """
    from .matching import MATCH, classify

    s = session()
    s.ensure_catalog(local_ok=True)
    rows = s.store.sku_rows(include_linked=all_)
    stale = s.store.stale_link_details()
    if as_json:
        s.out.json_array(_sku_row_json(r, classify(r.seller_sku, r.candidates), stale.get(r.sku_id))
                         for r in rows)
        return
    suggestions = [classify(r.seller_sku, r.candidates) for r in rows]
    matched = [sg.shopify_variant_id for sg in suggestions if sg.status == MATCH]
    linked = [r.link_variant_id for r in rows if r.link_variant_id]
    variants = s.store.variants(matched + linked)
    if as_csv:
        from .csvlinks import write_csv

        write_csv(
            s.out.data_stream(),  # exact when redirected: the file is for `link --csv`
            (
                _csv_row(r.sku, r.link, variants, _suggestion_text(sg, variants))
                for r, sg in zip(rows, suggestions, strict=True)
            ),
        )
        return
    if not rows:
        s.out.info("No unlinked TikTok SKUs." if not all_ else "No TikTok SKUs in pulled orders yet.")
        return
    columns = ["TikTok SKU id", "Product", "SKU name", "Seller SKU", "Blocked orders", "Suggestion"]
    if all_:
        columns += ["Linked to", "Source"]
    table_rows = []
    for r, sg in zip(rows, suggestions, strict=True):
        row = [r.sku.sku_id, r.sku.product_title, r.sku.sku_name, r.sku.seller_sku,
               r.blocked_orders, _suggestion_text(sg, variants)]
        if all_:
            v = variants.get(r.link.shopify_variant_id) if r.link else None
            linked_to = ""
            if r.link:
                linked_to = f"{v.sku} ({_variant_label(v)})" if v else r.link.shopify_variant_id
                if r.sku_id in stale:
                    linked_to = f"STALE ({stale[r.sku_id].problem}): {linked_to}"
            row += [linked_to, r.link.source if r.link else ""]
        table_rows.append(row)
    s.out.table(columns, table_rows)
    unlinked = sum(1 for r in rows if r.link is None)
    s.out.info(
        f"{unlinked} unlinked SKU(s). Next: `ecomsend autolink --dry-run` to review SKU-equal "
        "pairs, or `ecomsend link TIKTOK` to pick a variant by hand."
    )
    if all_:
        _warn_stale(s.out, stale)
    elif stale:
        s.out.warn(f"{len(stale)} link(s) are stale (their Shopify variant was deleted or changed SKU); "
                   "`ecomsend links` shows them with the fix.")


def _sku_row_json(row: Any, suggestion: Any, stale: Any = None) -> dict:
    linked = row.link_variant_id is not None
    return {
        "tiktok_sku_id": row.sku_id,
        "tiktok_product_id": row.product_id,
        "product_title": row.product_title,
        "sku_name": row.sku_name,
        "seller_sku": row.seller_sku,
        "blocked_orders": row.blocked_orders,
        "linked": linked,
        "link": (
            {"shopify_variant_id": row.link_variant_id, "source": row.link_source,
             "stale": stale.reason if stale is not None else None}
            if linked
            else None
        ),
        "suggestion": suggestion.as_json(),
    }


def _csv_row(sku: Any, link: Any, variants: dict[str, Any], suggestion: str) -> dict:
    v = variants.get(link.shopify_variant_id) if link else None
    return {
        "tiktok_sku_id": sku.sku_id,
        "tiktok_seller_sku": sku.seller_sku,
        "shopify_variant_id": link.shopify_variant_id if link else "",
        "shopify_sku": v.sku if v else "",
        "product_title": sku.product_title,
        "sku_name": sku.sku_name,
        "suggestion": suggestion,
    }


# --- autolink ------------------------------------------------------------------------


@command(app, "autolink")
def autolink(
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the proposals; write nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Link without asking (for scripts)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Propose SKU-equal pairs (the popup), ask, then link them all in one transaction.

    Ambiguous SKUs (several Shopify variants share the code) and SKUs with no
    match are listed apart and never linked. SKUs that already have a link are
    never touched.

    Example: ecomsend autolink --dry-run
    """
    from .linking import (
        apply_autolink,
        apply_feed_links,
        describe,
        propose_autolink,
        propose_feed_links,
    )

    s = session()
    store = s.store
    s.ensure_catalog(dry_run=dry_run)
    feed = propose_feed_links(store)
    proposal = propose_autolink(store)
    plan = proposal.plan
    feed_ids = {sku for sku, _ in feed}
    plan.unmatched = [sku for sku in plan.unmatched if sku not in feed_ids]
    if as_json and not (dry_run or yes):
        from .errors import InputError

        raise InputError("autolink --json needs --dry-run or --yes", hint="add one of them")
    if not as_json:
        describe(store, proposal)
        _render_popup(s.out, proposal, feed)
    n = len(plan.pairs) + len(feed)
    linked = 0
    if not dry_run and n:
        if not yes and not s.out.confirm(f"Link {n} products?", what="autolink"):
            raise Aborted("Nothing linked.")
        with store.transaction():
            linked = apply_autolink(store, plan, actor=s.config.actor)
            linked += apply_feed_links(store, feed, actor=s.config.actor)
    if as_json:
        s.out.json(
            {
                "linked": [{"tiktok_sku_id": t, "shopify_variant_id": v} for t, v in plan.pairs],
                "feed": [{"tiktok_sku_id": t, "shopify_variant_id": v} for t, v in feed],
                "ambiguous": [
                    {"tiktok_sku_id": t, "candidates": list(c)} for t, c in plan.ambiguous
                ],
                "unmatched": [{"tiktok_sku_id": t} for t in plan.unmatched],
                "dry_run": dry_run,
            }
        )
        return
    if dry_run:
        s.out.info(f"Dry run: would link {n} product(s). Nothing was written.")
    elif n:
        s.out.success(f"Linked {linked} product(s).")
    else:
        s.out.info("Nothing to auto-link.")


def _render_popup(out: Output, proposal: Any, feed: list[tuple[str, str]]) -> None:
    plan = proposal.plan
    rows = []
    for sku_id, variant_id in plan.pairs:
        sku = proposal.skus.get(sku_id)
        v = proposal.variants.get(variant_id)
        rows.append([
            sku.product_title if sku else "", sku.sku_name if sku else "", sku.seller_sku if sku else "",
            v.product_title if v else "", v.variant_title if v else "", v.sku if v else variant_id,
        ])
    if rows:
        out.table(
            ["TikTok product", "TikTok SKU name", "TikTok SKU", "Shopify product",
             "Shopify variant", "Shopify SKU"],
            rows,
            title=f"Link {len(rows)} products by identical SKU",
        )
    if feed:
        out.info(f"{len(feed)} SKU(s) were published from Shopify (external_sku_id) and get a feed link.")
    if plan.ambiguous:
        out.info(f"Ambiguous, not linked ({len(plan.ambiguous)}): several Shopify variants share the SKU.")
        for sku_id, candidates in plan.ambiguous[:50]:
            sku = proposal.skus.get(sku_id)
            labels = ", ".join(
                f"{c} ({_variant_label(proposal.variants.get(c))})" for c in candidates[:5]
            )
            out.info(f"  {sku_id} {sku.seller_sku if sku else ''!r}: {labels}")
        out.info("  Link these by hand: ecomsend link TIKTOK_SKU_ID")
    if plan.unmatched:
        out.info(f"No SKU-equal variant ({len(plan.unmatched)}): link by hand or by CSV.")


# --- link / unlink ---------------------------------------------------------------------


@command(app, "link")
def link(
    tiktok: str | None = typer.Argument(
        None, help="TikTok sku_id, or a seller SKU naming one SKU. Not with --csv."
    ),
    shopify: str | None = typer.Argument(
        None, help="Shopify variant GID or number, or a SKU naming one variant. "
        "Omit it to pick from the catalog interactively."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing link."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    csv_file: str | None = typer.Option(
        None, "--csv", metavar="FILE", help="Link in bulk from a CSV (- for stdin): a header row "
        "with tiktok_sku_id or tiktok_seller_sku, and shopify_variant_id (GID or number) or "
        "shopify_sku; comma, semicolon or tab; UTF-8. Rows with an empty Shopify column are "
        "skipped. Where a row fills both an id and a SKU column, they must name the same item. "
        "Every row is checked first; nothing is written unless all are valid. "
        "Example: ecomsend list-unlinked --csv > todo.csv; (fill it in); "
        "ecomsend link --csv todo.csv --dry-run",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="With --csv: print the plan, write nothing."),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="With --csv: apply the valid rows and report the others."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="With --csv: the plan and result as one JSON document on stdout."
    ),
) -> None:
    """Link a TikTok SKU to a Shopify variant by hand.

    Examples: ecomsend link 1729592969712207012 gid://shopify/ProductVariant/4471
              ecomsend link RED-XM01          (then search and pick interactively)
    """
    if csv_file is not None or tiktok is None or dry_run or skip_invalid or as_json:
        _link_from_csv(csv_file, tiktok, shopify, dry_run=dry_run, force=force, yes=yes,
                       as_json=as_json, skip_invalid=skip_invalid)
        return
    from .linking import plan_manual_link, resolve_shopify, resolve_tiktok

    s = session()
    store = s.store
    s.ensure_catalog()
    sku = resolve_tiktok(store, tiktok)
    if shopify is None:
        variant = _pick_variant(s, sku)
        confirmed = yes
    else:
        variant = resolve_shopify(store, shopify)
        confirmed = True
    current = store.link(sku.sku_id)
    replacing = current is not None and current.shopify_variant_id != variant.variant_id
    if replacing and not force:
        if s.out.interactive() and not yes:
            old = store.variant(current.shopify_variant_id)
            s.out.info(
                f"TikTok SKU {sku.sku_id} is linked to {current.shopify_variant_id} "
                f"({_variant_label(old) or 'not in catalog'}, {current.source})."
            )
            if not s.out.confirm(f"Replace it with {variant.variant_id}?", what="link"):
                raise Aborted("Nothing changed.")
            force = confirmed = True
    change = plan_manual_link(store, sku, variant, force=force)
    if change is None:
        s.out.info(f"TikTok SKU {sku.sku_id} is already linked to {variant.variant_id}.")
        return
    if not confirmed and not s.out.confirm(
        f"Link {sku.sku_id} ({sku.product_title} / {sku.sku_name}) → {variant.variant_id} "
        f"({_variant_label(variant)}, SKU {variant.sku})?",
        what="link",
    ):
        raise Aborted("Nothing changed.")
    store.apply_links([change], source="manual", actor=s.config.actor)
    verb = "Confirmed" if change.old == change.new else "Relinked" if change.old else "Linked"
    s.out.success(f"{verb} {sku.sku_id} → {variant.variant_id} ({_variant_label(variant)}).")


def _link_from_csv(
    csv_file: str | None, tiktok: str | None, shopify: str | None, *, dry_run: bool, force: bool,
    yes: bool, as_json: bool, skip_invalid: bool,
) -> None:
    """`link --csv` (DESIGN §6): check the whole file, show or confirm the plan, write it at once."""
    from .csvlinks import (
        apply_csv_plan,
        describe_csv_plan,
        open_link_csv,
        plan_link_csv,
        read_link_csv,
    )
    from .errors import InputError, LinkExistsError

    if csv_file is None:
        if tiktok is None:
            raise typer.BadParameter(
                "missing: give TIKTOK [SHOPIFY] to link one SKU, or --csv FILE to link in bulk",
                param_hint="TIKTOK or --csv",
            )
        raise typer.BadParameter("only with --csv FILE", param_hint="--dry-run, --json, --skip-invalid")
    if tiktok is not None or shopify is not None:
        raise typer.BadParameter("--csv FILE links in bulk: give no TIKTOK or SHOPIFY with it",
                                 param_hint="TIKTOK")
    s = session()
    # A broken file fails before the store is touched.
    if csv_file == "-":
        name = "stdin"
        parsed = read_link_csv(sys.stdin.buffer, name=name)
    else:
        name = csv_file
        with open_link_csv(csv_file) as stream:
            parsed = read_link_csv(stream, name=name)
    store = s.store
    s.ensure_catalog(dry_run=dry_run)
    plan = plan_link_csv(store, parsed)

    def summary() -> str:
        text = (f"{len(plan.new)} new, {len(plan.changed)} changed, {len(plan.unchanged)} unchanged, "
                f"{len(plan.skipped)} skipped (empty Shopify column)")
        if plan.repeated:
            text += f", {len(plan.repeated)} repeated row(s)"
        if plan.problems:
            text += f", {plan.invalid_rows} invalid row(s) left out"
        return text

    def render(actions: tuple[str, ...], to_stderr: bool = False) -> None:
        # File order, as the operator sees the spreadsheet; capped on a terminal (--json has all).
        rows = sorted(((p, a) for a in actions for p in getattr(plan, a)), key=lambda r: r[0].line)
        if not rows:
            return
        limit = 200 if (s.out.err if to_stderr else s.out.out).is_terminal else len(rows)
        describe_csv_plan(store, plan, (p for p, _ in rows[:limit]))
        def table() -> Iterator[list]:  # a generator: piped, 100k rows stream out
            for p, action in rows[:limit]:
                sku = plan.skus.get(p.tiktok_sku_id)
                v = plan.variants.get(p.shopify_variant_id)
                old = plan.variants.get(p.old) if p.old else None
                yield [
                    p.line, action, p.tiktok_sku_id, sku.seller_sku if sku else "",
                    f"{sku.product_title} / {sku.sku_name}" if sku else "",
                    p.shopify_variant_id, v.sku if v else "", _variant_label(v) or "not in catalog",
                    f"{p.old} ({_variant_label(old) or 'not in catalog'})" if p.old else "",
                ]

        s.out.table(
            ["Line", "Action", "TikTok SKU id", "Seller SKU", "TikTok product", "Shopify variant",
             "Shopify SKU", "Shopify product", "Replaces"],
            table(), title=f"{name}: {summary()}", to_stderr=to_stderr,
        )
        if len(rows) > limit:
            s.out.info(f"… and {len(rows) - limit} more row(s); --json lists them all.")

    if plan.problems and not skip_invalid:
        if as_json:
            s.out.json(plan.as_json(dry_run=dry_run, written=0))
        for problem in plan.problems:
            s.out.error(str(problem))
        raise InputError(
            f"{plan.invalid_rows} of {plan.data_rows} row(s) in {name} are invalid; nothing was written",
            hint="fix them and import again, or pass --skip-invalid to apply the valid rows",
        )
    for problem in plan.problems:
        s.out.warn(f"{problem} (row left out)")
    if dry_run:
        if as_json:
            s.out.json(plan.as_json(dry_run=True, written=0))
            return
        render(("new", "changed", "unchanged"))
        s.out.info(f"Dry run of {name}: {summary()}. Nothing was written.")
        if plan.changed and not force:
            s.out.info(f"Replacing {len(plan.changed)} existing link(s) needs --force or a confirmation.")
        return
    if plan.changed and not (force or yes):
        first = plan.changed[0]
        if not s.out.interactive():
            raise LinkExistsError(
                f"{len(plan.changed)} row(s) would replace existing links (line {first.line}: "
                f"{first.tiktok_sku_id} {first.old} → {first.shopify_variant_id}); nothing was written",
                hint="pass --force to replace them, or --dry-run to review the plan",
            )
        render(("changed",), to_stderr=True)
        also = f" and add {len(plan.new)} new link(s)" if plan.new else ""
        if not s.out.confirm(f"Replace {len(plan.changed)} existing link(s){also}?", what="link --csv"):
            raise Aborted("Nothing changed.")
    written = apply_csv_plan(store, plan, actor=s.config.actor) if plan.new or plan.changed else 0
    if as_json:
        s.out.json(plan.as_json(dry_run=False, written=written))
        return
    s.out.success(f"Imported {name}: {summary()}.")


def _pick_variant(s: Session, sku: Any) -> Any:
    """The interactive picker: search text → numbered candidates → choose."""
    from .errors import InputError
    from .matching import rank_candidates

    s.out.require_terminal("link without SHOPIFY (the picker)")
    store = s.store
    if store.variant_count() == 0:
        raise InputError(
            "the Shopify catalog cache is empty", hint="run `ecomsend catalog refresh` first"
        )
    s.out.info(f"TikTok SKU {sku.sku_id}: {sku.product_title} / {sku.sku_name} (seller SKU {sku.seller_sku!r})")
    query = (sku.seller_sku or "").strip() or sku.product_title
    while True:
        answer = s.out.ask("Search Shopify by SKU or title", what="the picker", default=query)
        if answer is None or answer.lower() == "q":
            raise Aborted("Nothing changed.")
        query = answer
        pool: dict[str, Any] = {}
        for word in [query, *query.split()]:
            for v in store.search_variants(word):
                pool[v.variant_id] = v
        ranked = rank_candidates(query, pool.values(), limit=15)
        if not ranked:
            s.out.info("No variant matches; try other words (or q to quit).")
            continue
        s.out.table(
            ["#", "Product", "Variant", "SKU", "Inventory", "Variant id"],
            [
                [i, v.product_title, v.variant_title, v.sku,
                 "" if v.inventory_quantity is None else v.inventory_quantity, v.variant_id]
                for i, (_, v) in enumerate(ranked, 1)
            ],
            to_stderr=True,
        )
        choice = s.out.ask("Number to link, new search text, or q", what="the picker")
        if choice is None or choice.lower() == "q":
            raise Aborted("Nothing changed.")
        if choice.isdigit() and 1 <= int(choice) <= len(ranked):
            return ranked[int(choice) - 1][1]
        query = choice


@command(app, "unlink")
def unlink(
    tiktok: str = typer.Argument(..., help="TikTok sku_id, or a seller SKU naming one SKU."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Remove a link. Orders already created in Shopify are untouched.

    Example: ecomsend unlink 1729592969712207012 --yes
    """
    from .errors import NotFoundError
    from .linking import resolve_tiktok

    s = session()
    store = s.store
    sku = resolve_tiktok(store, tiktok)
    current = store.link(sku.sku_id)
    if current is None:
        raise NotFoundError(f"TikTok SKU {sku.sku_id} has no link", hint="nothing to unlink")
    pending = store.pending_orders_for_sku(sku.sku_id)
    variant = store.variant(current.shopify_variant_id)
    s.out.info(
        f"{sku.sku_id} ({sku.product_title} / {sku.sku_name}) → {current.shopify_variant_id} "
        f"({_variant_label(variant) or 'not in catalog'}, {current.source}). "
        f"{pending} pending order(s) need this SKU and will wait until it is linked again."
    )
    if not yes and not s.out.confirm("Unlink it?", what="unlink"):
        raise Aborted("Nothing changed.")
    store.remove_link(sku.sku_id, actor=s.config.actor)
    s.out.success(f"Unlinked {sku.sku_id}.")


# --- links, history ----------------------------------------------------------------------


@links_app.callback(invoke_without_command=True)
def links_list(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """List links. Example: ecomsend links --json"""
    if ctx.invoked_subcommand is not None:
        return
    _run(_links_list)(as_json=as_json)


def _links_list(as_json: bool) -> None:
    s = session()
    links = s.store.links()
    stale = s.store.stale_link_details()
    if as_json:
        s.out.json(
            [
                {"tiktok_sku_id": x.tiktok_sku_id, "shopify_variant_id": x.shopify_variant_id,
                 "source": x.source, "linked_at": x.linked_at,
                 "stale": stale[x.tiktok_sku_id].reason if x.tiktok_sku_id in stale else None}
                for x in links
            ]
        )
        return
    if not links:
        s.out.info("No links yet. Start with `ecomsend autolink --dry-run`.")
        return
    variants = s.store.variants(x.shopify_variant_id for x in links)
    skus = s.store.tiktok_skus(x.tiktok_sku_id for x in links)

    def row(x: Any) -> list:
        v = variants.get(x.shopify_variant_id)
        problem = stale[x.tiktok_sku_id].problem if x.tiktok_sku_id in stale else ""
        return [x.tiktok_sku_id, skus[x.tiktok_sku_id].seller_sku, x.shopify_variant_id,
                v.sku if v else "", _variant_label(v), x.source, x.linked_at, problem]

    s.out.table(
        ["TikTok SKU id", "Seller SKU", "Shopify variant", "Shopify SKU", "Product", "Source",
         "Linked at", "Stale"],
        (row(x) for x in links),
    )
    _warn_stale(s.out, stale)


def _warn_stale(out: Output, stale: dict[str, Any], *, limit: int = 20) -> None:
    """Say which links are stale and how to fix each (stderr), at most ``limit`` of them."""
    if not stale:
        return
    out.warn(f"{len(stale)} link(s) are stale: their Shopify variant was deleted or changed SKU, "
             "and orders needing them wait (blocked) until they are fixed:")
    for item in list(stale.values())[:limit]:
        out.info(f"  {item.tiktok_sku_id}: {item.reason}")
    if len(stale) > limit:
        out.info(f"  … and {len(stale) - limit} more; `ecomsend links --json` lists them all.")


@command(links_app, "export")
def links_export(
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to FILE instead of stdout.", metavar="FILE"
    ),
) -> None:
    """Export links as CSV (the columns `ecomsend link --csv` reads).

    Example: ecomsend links export -o links.csv
    """
    from .csvlinks import write_csv

    s = session()
    store = s.store
    links = store.links()
    variants = store.variants(x.shopify_variant_id for x in links)
    skus = store.tiktok_skus(x.tiktok_sku_id for x in links)  # one batched read, not one per link
    rows = (_csv_row(skus[x.tiktok_sku_id], x, variants, x.source) for x in links)
    if output is None:
        write_csv(s.out.data_stream(), rows)  # exact when redirected: the file is for `link --csv`
        return
    with open(output, "w", encoding="utf-8", newline="") as fh:
        n = write_csv(fh, rows)
    s.out.info(f"Wrote {n} link(s) to {output}.")


@command(app, "history")
def history(
    tiktok: str | None = typer.Argument(None, help="Only this TikTok SKU (id or seller SKU)."),
    limit: int = typer.Option(100, "--limit", "-n", help="At most N rows (0: all)."),
    as_json: bool = JSON_OPT,
) -> None:
    """The audit log of link changes: when, what, old → new, source, who.

    Example: ecomsend history 1729592969712207012
    """
    s = session()
    sku_id = None
    if tiktok:
        from .linking import resolve_tiktok

        sku_id = resolve_tiktok(s.store, tiktok).sku_id
    rows = s.store.history(sku_id, limit=limit or None)
    if as_json:
        s.out.json([row.__dict__ for row in rows])
        return
    if not rows:
        s.out.info("No link changes recorded.")
        return
    s.out.table(
        ["When", "TikTok SKU id", "Action", "Old", "New", "Source", "Who"],
        [[r.at, r.tiktok_sku_id, r.action, r.old_variant_id, r.new_variant_id, r.source, r.actor]
         for r in rows],
    )


# --- config -------------------------------------------------------------------------------


@command(config_app, "show")
def config_show(as_json: bool = JSON_OPT) -> None:
    """Print the resolved configuration, secrets redacted.

    Example: ecomsend --config ./ecomsend.yaml config show
    """
    import yaml

    s = session()
    data = s.config.redacted()
    if as_json:
        s.out.json(data)
        return
    s.out.text(yaml.safe_dump(data, sort_keys=False).rstrip())


# --- sync-orders, orders ---------------------------------------------------------------------


@command(app, "sync-orders")
def sync_orders(
    dry_run: bool = typer.Option(False, "--dry-run", help="Pull and resolve; create nothing, write nothing."),
    since: str | None = typer.Option(
        None, "--since", help="Pull orders updated since this time instead of the cursor: "
        "2026-11-01, 2026-11-01T08:00, or an age like 3d, 12h, 90m.", metavar="WHEN",
    ),
    order: str | None = typer.Option(None, "--order", help="Sync just this TikTok order id.", metavar="ID"),
    limit: int | None = typer.Option(None, "--limit", min=0, help="Create at most N orders this run."),
    only: str | None = typer.Option(None, "--only", help="Run one phase: orders, tracking or aftersales.",
                                    metavar="PHASE"),
    as_json: bool = JSON_OPT,
) -> None:
    """Pull TikTok orders into Shopify, push tracking back to TikTok, bring cancellations and refunds in.

    Three phases under one lock: (1) orders: create Shopify orders for the
    TikTok orders whose SKUs are all linked (orders with unlinked SKUs wait,
    blocked, until a later run); (2) tracking: Shopify's tracking numbers to
    TikTok, and TikTok's reference to the Shopify order; (3) aftersales:
    TikTok's cancellations and completed returns into Shopify. Made for cron:
    one run at a time (exit 75 if another holds the lock); exit 3 when
    something needs you (orders blocked or failed, a push or refund failed,
    a cancellation to handle by hand).

    Example (crontab): */5 * * * * ecomsend sync-orders >> ~/ecomsend.log 2>&1
    """
    from .errors import InputError
    from .run import PHASES, run_phases
    from .sync import SyncOptions

    if only is not None and only not in PHASES:
        raise InputError(f"unknown phase {only!r} for --only", hint=f"use one of {', '.join(PHASES)}")
    s = session()
    config = s.config
    options = SyncOptions(
        dry_run=dry_run, since=_parse_since(since), order_id=order, limit=limit,
        reconcile_wait=config.sync.reconcile_wait_seconds,
    )
    store = s.store
    tiktok = s.tiktok()
    # Built on first use: a run with nothing to create never pays for it.
    shopify = None if dry_run else _Lazy(s.shopify)
    with _SyncProgress(s.out) as progress:
        report = run_phases(store, tiktok, shopify, config, options, phases=(only,) if only else PHASES,
                            on_event=progress.event, crash_at=config.crash_at, refresh_catalog=s.ensure_catalog)
    if as_json:
        s.out.json(report.as_json())
    else:
        if report.orders is not None:
            _render_sync_report(s.out, report.orders)
        _render_after_creation(s.out, report)
    if report.problem is not None:
        # The run did what was safe, then stopped short: say why, exit 1 (cron mails it).
        s.out.error(str(report.problem))
        raise typer.Exit(report.problem.exit_code)
    if report.needs_attention:
        raise typer.Exit(3)


def _render_after_creation(out: Output, report: Any) -> None:
    """The tracking and aftersales phases' summaries and what needs the operator (a phase
    that had nothing to do says nothing: cron mails only what matters)."""
    if report.tracking is not None and any(o.what != "skipped" for o in report.tracking.outcomes):
        t = report.tracking
        out.info(f"Tracking: pushed {t.count('pushed')}, updated {t.count('updated')}, failed {t.count('failed')}"
                 + (f", unconfirmed {t.count('unconfirmed')}" if t.count("unconfirmed") else "")
                 + (f", references written {t.count('referenced')}" if t.count("referenced") else "") + ".")
        for o in [o for o in t.outcomes if o.what in ("failed", "reported")][:20]:
            out.info(f"  {o.tiktok_order_id}: {o.detail}")
    if report.aftersales is not None and any(o.what != "noted" for o in report.aftersales.outcomes):
        a = report.aftersales
        out.info(f"Cancellations and returns: cancelled {a.count('cancelled')}, refunded {a.count('refunded')}, "
                 f"reported {a.count('reported')}, failed {a.count('failed')}"
                 + (f", pending {a.count('requested') + a.count('unconfirmed')}"
                    if a.count("requested") + a.count("unconfirmed") else "") + ".")
        for o in [o for o in a.outcomes if o.what in ("failed", "reported")][:20]:
            out.info(f"  {o.tiktok_order_id}: {o.detail}")
    for phase, why in report.skipped.items():
        out.note(f"{phase}: {why}")


class _Lazy:
    """An object built by ``factory`` the first time one of its attributes is used."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._target: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._target is None:
            self._target = self._factory()
        return getattr(self._target, name)


def _parse_since(value: str | None) -> int | None:
    import re
    import time
    from datetime import UTC, datetime

    from .errors import InputError

    if value is None:
        return None
    text = value.strip()
    match = re.fullmatch(r"(\d+)\s*([dhm])", text)
    if match:
        seconds = int(match.group(1)) * {"d": 86400, "h": 3600, "m": 60}[match.group(2)]
        return int(time.time()) - seconds
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"--since {value!r} is not a date, time or age",
            hint="use 2026-11-01, 2026-11-01T08:00 or an age like 3d, 12h, 90m",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


class _SyncProgress:
    """A Rich progress bar on a terminal; plain log lines on stderr otherwise."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.bar: Any = None
        self.task: Any = None
        self.live = out.err.is_terminal and not out.quiet

    def __enter__(self) -> _SyncProgress:
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                console=self.out.err, transient=True)
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def event(self, kind: str, **data: Any) -> None:
        import time

        if self.bar is not None:
            if kind == "pulled":
                if self.task is None:
                    self.task = self.bar.add_task("Pulling TikTok orders", total=None)
                self.bar.update(self.task, completed=data["count"])
            elif kind == "create_started":
                self.task = self.bar.add_task("Creating Shopify orders", total=data["total"])
            elif kind == "created" and self.task is not None:
                self.bar.advance(self.task)
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        if kind == "pulled":
            self.out.info(f"{stamp} pulled {data['count']} order(s) from TikTok")
        elif kind == "feed_linked":
            self.out.info(f"{stamp} linked {data['count']} SKU(s) published by the Shopify feed")
        elif kind == "reconcile_started":
            self.out.info(f"{stamp} checking {data['total']} interrupted order(s) in Shopify")
        elif kind == "create_started":
            self.out.info(f"{stamp} creating {data['total']} Shopify order(s)")
        elif kind == "created":
            self.out.note(f"{stamp} {data['order_id']}: {data['state']}")
        elif kind == "pull_stopped":
            self.out.warn(f"{stamp} pulling stopped: {data['reason']}")
        elif kind == "invalid":
            self.out.warn(f"{stamp} TikTok order {data['order_id'] or '(no id)'} cannot be used: "
                          f"{data['reason']}")


REPORT_ROWS = 50  # orders shown in a sync summary; `orders` lists them all


def _render_sync_report(out: Output, report: Any) -> None:
    from .sync import BLOCKED, FAILED, HELD, INVALID, SYNCED

    rows = [
        [o.tiktok_order_id or "(no id)", o.state, o.shopify_order_name or o.shopify_order_id or "", o.reason]
        for o in [*report.orders.values(), *report.unidentified]
        if o.state != SYNCED or o.shopify_order_id
    ]
    if rows:
        out.table(["TikTok order", "State", "Shopify order", "Reason"], rows[:REPORT_ROWS])
        if len(rows) > REPORT_ROWS:
            out.info(f"… and {len(rows) - REPORT_ROWS} more: `ecomsend orders --state blocked` (or "
                     "--state failed, …) lists them all.")
    summary = (
        f"{'Dry run: ' if report.dry_run else ''}pulled {report.pulled}; "
        f"synced {report.count(SYNCED)}, blocked {report.count(BLOCKED)}, "
        f"failed {report.count(FAILED)}, skipped {report.count('skipped')}, "
        f"waiting {report.count('waiting')}"
    )
    if report.count(INVALID):
        summary += f", invalid {report.count(INVALID)}"
    if report.count(HELD):
        summary += f", held {report.count(HELD)}"
    if report.adopted:
        summary += f", already in Shopify {report.adopted}"
    if report.unconfirmed:
        summary += f", unconfirmed {report.unconfirmed}"
    out.info(summary + ".")
    if report.missing_skus:
        out.info("Blocked by unlinked SKUs (link them and the next run creates the orders):")
        for sku in list(report.missing_skus.values())[:20]:
            out.info(f"  {sku['tiktok_sku_id']}  {sku['seller_sku']!r}  {sku['product_title']} / "
                     f"{sku['sku_name']}  ({sku['blocked_orders']} order(s))")
        out.info("Next: `ecomsend list-unlinked`, then `ecomsend autolink --dry-run` or "
                 "`ecomsend link TIKTOK_SKU_ID`.")
    failed = [o for o in report.orders.values() if o.state == FAILED]
    if failed:
        out.info("Failed (retried on the next run; fix the cause first):")
        for o in failed[:20]:
            out.info(f"  {o.tiktok_order_id}: {o.reason}")
    held = [o for o in report.orders.values() if o.state == HELD]
    if held:
        out.info("Held (not sent until you act):")
        for o in held[:20]:
            out.info(f"  {o.tiktok_order_id}: {o.reason}")
    invalid = [o for o in [*report.orders.values(), *report.unidentified] if o.state == INVALID]
    if invalid:
        out.info("Invalid (TikTok's data cannot be used; never sent — check the order in TikTok "
                 "Seller Center; a corrected order is picked up by a later run):")
        for o in invalid[:20]:
            out.info(f"  {o.tiktok_order_id or '(no id)'}: {o.reason}")
    if report.unconfirmed:
        out.info(f"{report.unconfirmed} order(s) were sent but not confirmed; the next run looks "
                 "them up in Shopify before anything is created again.")
    for o in report.cancelled_after_sync:  # the reason says who cancels it in Shopify (§6b.3)
        out.note(f"TikTok order {o.tiktok_order_id} (Shopify {o.shopify_order_name or o.shopify_order_id}) "
                 f"was {o.reason}.")


@command(app, "orders")
def orders_cmd(
    state: list[str] = typer.Option(
        [], "--state", help="Only orders in this state (repeatable): synced, blocked, failed, "
        "skipped, waiting, pending, creating, invalid.",
    ),
    limit: int = typer.Option(0, "--limit", "-n", help="At most N orders (0: all)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Pulled orders and their state, with the Shopify order, the reason and missing SKUs.

    Example: ecomsend orders --state blocked --state failed
    """
    from .errors import InputError
    from .sync import STATES

    unknown = [x for x in state if x not in STATES]
    if unknown:
        raise InputError(f"unknown state {unknown[0]!r}", hint=f"use one of {', '.join(STATES)}")
    s = session()
    rows = _with_life(s.store, s.store.order_listing(states=state or None, limit=limit or None))

    def as_dict(item: tuple[Any, dict]) -> dict:
        r, life = item
        return {
            "tiktok_order_id": r.tiktok_order_id, "state": r.state,
            "shopify_order_id": r.shopify_order_id, "shopify_order_name": r.shopify_order_name,
            "reason": r.reason, "missing_sku_ids": list(r.missing), "tiktok_status": r.tiktok_status,
            "cancelled_after_sync": r.cancelled_after_sync, **life,
        }

    if as_json:  # streamed: 100,000s of orders never sit in memory at once
        s.out.json_array(as_dict(item) for item in rows)
        return
    first = next(rows, None)
    if first is None:
        s.out.info("No orders pulled yet. Run `ecomsend sync-orders`." if not state
                   else "No orders in that state.")
        return
    s.out.table(
        ["TikTok order", "TikTok status", "State", "Shopify order", "Reason", "Missing SKUs", "After creation"],
        ([r.tiktok_order_id, r.tiktok_status, r.state, r.shopify_order_name or r.shopify_order_id or "",
          r.reason + (" (cancelled on TikTok after sync)" if r.cancelled_after_sync else ""),
          " ".join(r.missing), _life_text(life)] for r, life in itertools.chain([first], rows)),
    )


def _with_life(store: Store, rows: Iterator[Any], chunk: int = 500) -> Iterator[tuple[Any, dict]]:
    """Each order with its life after creation (DESIGN §6b.6): shipments, cancellation, refunds."""
    batch: list[Any] = []

    def flush() -> Iterator[tuple[Any, dict]]:
        ids = [r.tiktok_order_id for r in batch if r.shopify_order_id]
        shipments = store.shipments(ids) if ids else {}
        sales = store.aftersales_of(ids) if ids else {}
        states = store.life_states(ids) if ids else {}
        for r in batch:
            reference, reference_reason, ship, ship_reason = states.get(r.tiktok_order_id, (None, "", None, ""))
            yield r, {
                "reference_state": reference, "reference_reason": reference_reason,
                "ship_state": ship, "ship_reason": ship_reason,
                "shipments": [{"fulfillment_id": x.fulfillment_id, "state": x.state,
                               "tracking_number": x.tracking_number, "carrier": x.carrier,
                               "tiktok_provider": x.provider_name, "package_id": x.package_id, "reason": x.reason,
                               "line_item_ids": list(x.line_item_ids)}
                              for x in shipments.get(r.tiktok_order_id, [])],
                "aftersales": [{"key": x.key, "kind": x.kind, "state": x.state, "amount": x.amount,
                                "currency": x.currency, "reason": x.reason}
                               for x in sales.get(r.tiktok_order_id, [])],
            }
        batch.clear()

    for row in rows:
        batch.append(row)
        if len(batch) == chunk:
            yield from flush()
    if batch:
        yield from flush()


def _life_text(life: dict) -> str:
    parts = []
    if life.get("ship_state") == "none" and life.get("ship_reason"):
        parts.append(life["ship_reason"])
    if life.get("reference_state") == "failed":
        parts.append(f"TikTok reference not written: {life['reference_reason']}")
    for x in life["shipments"]:
        if x["state"] == "pushed":
            parts.append(f"shipped {x['tracking_number']} ({x['tiktok_provider'] or x['carrier']})")
        elif x["state"] == "pushing":
            parts.append(f"shipping {x['tracking_number']}: unconfirmed")
        else:
            parts.append(f"tracking {x['tracking_number']} {x['state']}: {x['reason']}")
    for x in life["aftersales"]:
        what = {"order_cancel": "cancelled in Shopify", "line_cancel": "line cancelled",
                "return": "refunded"}[x["kind"]]
        amount = f" {x['amount']} {x['currency']}" if x["amount"] else ""
        parts.append(f"{what}{amount}" if x["state"] == "done" else f"{what}{amount}: {x['state']} {x['reason']}")
    return "; ".join(parts)


@command(app, "verify-orders")
def verify_orders_cmd(
    since: str = typer.Option("30d", "--since", help="Orders created since this time: 2026-11-01, "
                              "2026-11-01T08:00, or an age like 30d, 12h.", metavar="WHEN"),
    as_json: bool = JSON_OPT,
) -> None:
    """Read back the Shopify orders ecomsend created and list every difference from TikTok.

    Compares, in the buyer's currency: total (TikTok's total + platform
    discounts), total tax, discounts, outstanding balance, currencies, the
    quantity of each variant, and whether the order is cancelled. Exit 3 when
    any order differs.

    Example: ecomsend verify-orders --since 7d
    """
    from datetime import UTC, datetime

    from .verify import verify_orders

    s = session()
    started = _parse_since(since)
    cutoff = datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if started else None
    report = verify_orders(s.store, s.shopify(), since=cutoff)
    if as_json:
        s.out.json(report.as_json())
    else:
        if report.differences:
            s.out.table(["TikTok order", "Shopify order", "What", "TikTok", "Shopify"],
                        [[d.tiktok_order_id, d.shopify_order_name or d.shopify_order_id, d.field, d.tiktok,
                          d.shopify] for d in report.differences])
        if not report.checked:
            s.out.info(f"No orders created in Shopify since {cutoff or 'ever'}: nothing to compare.")
        elif report.differing:
            s.out.warn(f"{report.differing} of {report.checked} order(s) differ from TikTok. Check them in "
                       "Shopify: an edited or refunded order is expected to differ; anything else is not.")
        else:
            s.out.success(f"All {report.checked} order(s) created since {cutoff} match TikTok to the cent.")
    if report.differing:
        raise typer.Exit(3)


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
    from .catalog import refresh_catalog

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
    _warn_stale(s.out, s.store.stale_link_details())


REQUIRED_SCOPES = ("read_products", "read_orders", "write_orders")


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
            checks.append({"check": name, "ok": False, "detail": exc.message, "fix": exc.hint or ""})

    def config_check() -> str:
        c = s.config
        return f"{c.source or 'no config file (defaults)'}" + (f"; {len(c.warnings)} warning(s)" if c.warnings else "")

    def store_check() -> str:
        store = s.store
        store.quick_check()
        counts = store.order_counts()
        from .store import CATALOG_REFRESHED_KEY

        age = store.get_state(CATALOG_REFRESHED_KEY) or "never"
        return (f"{store.path} (schema {store.schema_version}, quick_check ok); {len(store.links())} link(s), "
                f"{sum(counts.values())} order(s), {store.variant_count()} cached variant(s), "
                f"catalog refreshed {age}")

    def cursor_check() -> str:
        import time
        from datetime import UTC, datetime

        from .errors import StoreError
        from .sync import CURSOR_KEY

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
        from .errors import AuthError

        info = s.shopify().shop_info()
        scopes = set(info["access_scopes"])
        missing = [x for x in REQUIRED_SCOPES if x not in scopes and x.replace("read_", "write_") not in scopes]
        if missing:
            raise AuthError(f"{info['name']}: the app lacks scope(s) {', '.join(missing)}",
                            hint="add them to the app's Admin API scopes and reinstall it")
        return f"{info['name']} ({info['myshopify_domain']}), scopes ok: {', '.join(REQUIRED_SCOPES)}"

    def all_orders_check() -> str:
        from .errors import AuthError

        if "read_all_orders" not in set(s.shopify().shop_info()["access_scopes"]):
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
        from .errors import StoreError

        store = s.store
        stale = store.stale_link_details()
        if stale:
            deleted = sum(1 for x in stale.values() if x.deleted)
            examples = "; ".join(f"{x.tiktok_sku_id}: {x.problem}" for x in list(stale.values())[:3])
            raise StoreError(
                f"{len(stale)} link(s) are stale ({deleted} variant(s) deleted in Shopify, "
                f"{len(stale) - deleted} changed SKU), so orders needing them wait: {examples}"
                + (" …" if len(stale) > 3 else ""),
                hint="relink each with `ecomsend link TIKTOK VARIANT --force` (the same variant "
                "confirms a changed SKU), or `ecomsend unlink TIKTOK`; `ecomsend links` lists them",
            )
        return f"{len(store.links())} link(s), none stale"

    check("config", config_check)
    if checks[-1]["ok"]:
        check("store", store_check)
        if checks[-1]["ok"]:
            check("sync cursor", cursor_check)
            check("links", links_check)
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


# --- sandbox, demo -----------------------------------------------------------------------------

sandbox_app = typer.Typer(help="Local simulators of TikTok Shop and Shopify.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")


@command(sandbox_app, "serve")
def sandbox_serve(
    folder: Path = typer.Option(
        Path("ecomsend-sandbox"), "--dir", help="Folder for the simulators' state and the config.",
    ),
    seed: str = typer.Option("demo", "--seed", help="demo (a small shop with a story) or none."),
    shopify_port: int = typer.Option(0, "--shopify-port", help="Port (0: any free one)."),
    tiktok_port: int = typer.Option(0, "--tiktok-port", help="Port (0: any free one)."),
) -> None:
    """Run both simulators on 127.0.0.1 until Ctrl-C, and print a config that uses them.

    Example: ecomsend sandbox serve --dir /tmp/sb > /tmp/sb.yaml &
             ecomsend --config /tmp/sb.yaml sync-orders
    """
    from .errors import InputError
    from .sandbox import serve

    if seed not in ("demo", "none"):
        raise InputError(f"unknown seed {seed!r}", hint="use --seed demo or --seed none")
    folder.mkdir(parents=True, exist_ok=True)
    out = session().out

    def ready(config_yaml: str) -> None:
        out.text(config_yaml.rstrip("\n"))
        out.info(f"Sandbox running; config written to {folder / 'ecomsend.yaml'}. Ctrl-C stops it.")

    serve(folder, seed, shopify_port, tiktok_port, ready)


@command(app, "demo")
def demo(
    keep: bool = typer.Option(False, "--keep", help="Keep the throwaway folder (its path is printed)."),
) -> None:
    """Run the whole story on the built-in sandbox stores, in a throwaway folder.

    Starts both simulators, syncs orders (some are blocked by unlinked SKUs),
    lists the unlinked SKUs, auto-links the SKU-equal pairs, links one SKU by
    hand, syncs again, and tells what happened. Nothing leaves this machine.

    Example: ecomsend demo
    """
    from .demo import run_demo

    s = session()
    code = run_demo(s.out, keep=keep)
    if code:
        raise typer.Exit(code)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except EcomsendError as exc:  # raised outside a command (should not happen)
        from .output import terminal_safe

        print(f"error: {terminal_safe(str(exc))}", file=sys.stderr)
        raise SystemExit(EXIT_ERROR) from None
