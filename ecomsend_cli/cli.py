"""The command line: parse, call the core, render. No rules live here.

Each command opens what it needs through :class:`Session`, calls one core
function, and renders with :class:`Output`. Errors from the core
(:mod:`errors`) become a one-line message on stderr and the exit code of
DESIGN §3 in :func:`_run`. Heavy modules (httpx, the sandbox) are imported
inside the commands that need them, so ``ecomsend --help`` stays fast.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from . import __version__
from .errors import EXIT_ERROR, Aborted, EcomsendError

if TYPE_CHECKING:
    from .config import Config
    from .output import Output
    from .store import Store

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 error (config, auth, network, bad input); 2 usage; "
    "3 sync-orders left orders blocked or failed; 75 another sync-orders holds the lock."
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
            self._store = Store.open(config.store, create_folder=config.store_is_default)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


_session: Session | None = None


def session() -> Session:
    assert _session is not None, "the main callback sets the session"
    return _session


def _run(fn: F) -> F:
    """Turn core errors into one line on stderr and the exit code of DESIGN §3."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Aborted as exc:
            session().out.info(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except EcomsendError as exc:
            session().out.error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            session().out.error("interrupted; nothing more was written")
            raise typer.Exit(130) from None
        finally:
            if _session is not None:
                _session.close()

    return wrapper  # type: ignore[return-value]


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
    rows = s.store.sku_rows(include_linked=all_)
    suggestions = [classify(r.seller_sku, r.candidates) for r in rows]
    if as_json:
        s.out.json([_sku_row_json(r, sg) for r, sg in zip(rows, suggestions, strict=True)])
        return
    matched = [sg.shopify_variant_id for sg in suggestions if sg.status == MATCH]
    linked = [r.link_variant_id for r in rows if r.link_variant_id]
    variants = s.store.variants(matched + linked)
    if as_csv:
        from .csvlinks import write_csv

        write_csv(
            _stdout_text(),
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
            row += [
                (f"{v.sku} ({_variant_label(v)})" if v else r.link.shopify_variant_id) if r.link else "",
                r.link.source if r.link else "",
            ]
        table_rows.append(row)
    s.out.table(columns, table_rows)
    unlinked = sum(1 for r in rows if r.link is None)
    s.out.info(
        f"{unlinked} unlinked SKU(s). Next: `ecomsend autolink --dry-run` to review SKU-equal "
        "pairs, or `ecomsend link TIKTOK` to pick a variant by hand."
    )


def _sku_row_json(row: Any, suggestion: Any) -> dict:
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
            {"shopify_variant_id": row.link_variant_id, "source": row.link_source}
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


def _stdout_text() -> Any:
    import sys

    return sys.stdout


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
    tiktok: str = typer.Argument(..., help="TikTok sku_id, or a seller SKU naming one SKU."),
    shopify: str | None = typer.Argument(
        None, help="Shopify variant GID or number, or a SKU naming one variant. "
        "Omit it to pick from the catalog interactively."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing link."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Link a TikTok SKU to a Shopify variant by hand.

    Examples: ecomsend link 1729592969712207012 gid://shopify/ProductVariant/4471
              ecomsend link RED-XM01          (then search and pick interactively)
    """
    from .linking import plan_manual_link, resolve_shopify, resolve_tiktok

    s = session()
    store = s.store
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
    verb = "Relinked" if change.old else "Linked"
    s.out.success(f"{verb} {sku.sku_id} → {variant.variant_id} ({_variant_label(variant)}).")


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
    _run(_links_list)(as_json)


def _links_list(as_json: bool) -> None:
    s = session()
    links = s.store.links()
    if as_json:
        s.out.json(
            [
                {"tiktok_sku_id": x.tiktok_sku_id, "shopify_variant_id": x.shopify_variant_id,
                 "source": x.source, "linked_at": x.linked_at}
                for x in links
            ]
        )
        return
    if not links:
        s.out.info("No links yet. Start with `ecomsend autolink --dry-run`.")
        return
    variants = s.store.variants(x.shopify_variant_id for x in links)
    s.out.table(
        ["TikTok SKU id", "Seller SKU", "Shopify variant", "Shopify SKU", "Product", "Source",
         "Linked at"],
        [
            [x.tiktok_sku_id, (s.store.tiktok_sku(x.tiktok_sku_id) or _Blank).seller_sku,
             x.shopify_variant_id, (variants.get(x.shopify_variant_id) or _Blank).sku,
             _variant_label(variants.get(x.shopify_variant_id)), x.source, x.linked_at]
            for x in links
        ],
    )


class _Blank:
    seller_sku = ""
    sku = ""


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
    rows = (
        _csv_row(store.tiktok_sku(x.tiktok_sku_id), x, variants, x.source) for x in links
    )
    if output is None:
        write_csv(_stdout_text(), rows)
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
    s.out.out.print(yaml.safe_dump(data, sort_keys=False).rstrip(), markup=False, highlight=False)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except EcomsendError as exc:  # raised outside a command (should not happen)
        import sys

        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_ERROR) from None
