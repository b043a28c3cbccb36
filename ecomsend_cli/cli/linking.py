"""Linking commands: list-unlinked, autolink, link (one, the picker, --csv), unlink,
links (list, export) and history (DESIGN §4, §6)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..errors import Aborted
from ..text import plural
from . import app, links_app
from .common import (
    JSON_OPT,
    Session,
    _run,
    _variant_label,
    _warn_stale,
    command,
    session,
    shell_args,
    variant_number,
)
from .common import SQLITE_INT_MAX as _SQLITE_INT_MAX

if TYPE_CHECKING:
    from ..output import Output


def _suggestion_text(suggestion: Any, variants: dict[str, Any]) -> str:
    from ..matching import AMBIGUOUS, MATCH

    if suggestion.status == MATCH:
        v = variants.get(suggestion.shopify_variant_id)
        return f"{v.sku} ({_variant_label(v)})" if v else suggestion.shopify_variant_id
    if suggestion.status == AMBIGUOUS:
        return f"ambiguous ({len(suggestion.candidates)})"
    return "no match"


def _orders_pulled(s: Session) -> bool:
    """Whether the store holds pulled orders; if not, why, and what to do (DESIGN §3 exit codes).

    An empty list is only the truth when orders were pulled. With no config
    and no orders nothing can work: a ConfigError (exit 1) says where the
    config was looked for. With TikTok not configured the same. With a
    config but nothing pulled yet nothing is wrong: the note names
    `sync-orders`, and the command goes on to print its empty result (exit 0).
    """
    from ..config import user_config_path
    from ..errors import ConfigError

    config = s.config
    pulled = config.store.exists() and sum(s.store.order_counts().values()) > 0
    if pulled:
        return True
    if config.source is None:
        raise ConfigError(
            f"no config found at {user_config_path()} and no orders pulled into {config.store}",
            hint="copy config.example.yaml there (or pass --config FILE), see `ecomsend doctor`",
        )
    if not config.tiktok.configured:
        raise ConfigError(
            f"no orders pulled yet, and TikTok Shop is not configured in {config.source}",
            hint="set tiktok.app_key, app_secret and access_token there (see config.example.yaml), "
            "see `ecomsend doctor`",
        )
    s.out.info("No orders pulled yet: run `ecomsend sync-orders`.")
    return False


def _complete_skus(ctx: typer.Context, incomplete: str, *, linked: bool | None) -> list[tuple[str, str]]:
    """TikTok SKUs from the store for shell completion: ``(sku_id or seller SKU, title)``.

    Completion runs without the main callback, so the global options are read
    from the context; a missing store or config completes nothing (never creates a file).
    """
    try:
        from ..config import load_config
        from ..store import Store

        root = ctx.find_root().params
        config = load_config(root.get("config"), store=root.get("store"))
        if not config.store.exists():
            return []
        with Store.open(config.store) as store:
            return store.complete_skus(incomplete, linked=linked)
    except Exception:  # a shell completing must never see a traceback
        return []


def _complete_unlinked_first(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    return _complete_skus(ctx, incomplete, linked=None)


def _complete_linked(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    return _complete_skus(ctx, incomplete, linked=True)


# --- list-unlinked -----------------------------------------------------------------


@command(app, "list-unlinked")
def list_unlinked(
    all_: bool = typer.Option(False, "--all", help="Also list linked SKUs, with link and source."),
    as_json: bool = JSON_OPT,
    as_csv: bool = typer.Option(
        False, "--csv", help="CSV for `ecomsend link --csv` (fill in a Shopify column, import)."
    ),
    search: str | None = typer.Option(
        None, "--search", "-s", metavar="TEXT",
        help="Only SKUs whose id, seller SKU, product title or SKU name contains TEXT (any case).",
    ),
    sort: str = typer.Option(
        "blocked", "--sort", metavar="KEY", autocompletion=lambda: list(_SORTS),
        help="Order: blocked (most blocked orders first, the default), sku (seller SKU), title.",
    ),
) -> None:
    """TikTok SKUs from pulled orders that have no link, with the auto-link suggestion.

    \b
    Examples:
      ecomsend list-unlinked --search mug --sort blocked
      ecomsend list-unlinked --csv > todo.csv
      ecomsend list-unlinked --json | jq '.[] | select(.blocked_orders > 0)'
    """
    from ..matching import MATCH, classify

    if sort not in _SORTS:
        raise typer.BadParameter(f"{sort!r} is not one of {', '.join(_SORTS)}", param_hint="--sort")
    s = session()
    pulled = _orders_pulled(s)
    s.ensure_catalog(local_ok=True)
    rows = _search_and_sort(s.store.sku_rows(include_linked=all_), search, sort)
    stale = s.store.stale_link_details()
    if as_json:
        s.out.json_array(_sku_rows_json(rows, stale))
        return
    suggestions = [classify(r.seller_sku, r.candidates) for r in rows]
    matched = [sg.shopify_variant_id for sg in suggestions if sg.status == MATCH]
    linked = [r.link_variant_id for r in rows if r.link_variant_id]
    variants = s.store.variants(matched + linked)
    if as_csv:
        from ..csvlinks import write_csv

        write_csv(
            s.out.data_stream(),  # exact when redirected: the file is for `link --csv`
            (
                _csv_row(r.sku, r.link, variants, _suggestion_text(sg, variants))
                for r, sg in zip(rows, suggestions, strict=True)
            ),
        )
        return
    if not rows:
        if search:
            s.out.info(f"No {'' if all_ else 'unlinked '}TikTok SKU matches {search!r}.")
        elif pulled:
            s.out.info("No unlinked TikTok SKUs." if not all_ else "No TikTok SKUs in pulled orders yet.")
            _say_ready(s)
        return
    from ..output import ID, TITLE, Column

    columns = [Column("TikTok SKU id", ID), Column("Product", TITLE), Column("SKU name", TITLE, drop=2),
               Column("Seller SKU", ID), Column("Blocked orders", ID), Column("Suggestion")]
    if all_:
        columns += [Column("Linked to"), Column("Source", ID, drop=3)]

    def table_rows() -> Iterator[list]:  # a generator: piped, 100k rows stream out (the row's own fields,
        for r, sg in zip(rows, suggestions, strict=True):  # not a TikTokSku and a Link made for each)
            row = [r.sku_id, r.product_title, r.sku_name, r.seller_sku, r.blocked_orders,
                   _suggestion_text(sg, variants)]
            if all_:
                linked_to = ""
                if r.link_variant_id is not None:
                    v = variants.get(r.link_variant_id)
                    linked_to = f"{v.sku} ({_variant_label(v)})" if v else r.link_variant_id
                    if r.sku_id in stale:
                        linked_to = f"STALE ({stale[r.sku_id].problem}): {linked_to}"
                row += [linked_to, r.link_source or ""]
            yield row

    s.out.table(columns, table_rows())
    unlinked = [(r, sg) for r, sg in zip(rows, suggestions, strict=True) if r.link_variant_id is None]
    matching = sum(1 for _, sg in unlinked if sg.status == MATCH)
    s.out.info(f"{plural(len(unlinked), 'unlinked SKU')}" + (f" matching {search!r}." if search else "."))
    # Next steps that fit what is left: autolink only while it has something to link.
    if matching:
        s.out.info(f"{plural(matching, 'SKU')} {'has' if matching == 1 else 'have'} a Shopify variant with "
                   "the same SKU: `ecomsend autolink --dry-run` reviews them.")
    by_hand = [r.sku_id for r, sg in unlinked if sg.status != MATCH]
    if by_hand:
        s.out.info(f"{plural(len(by_hand), 'SKU')} {'needs' if len(by_hand) == 1 else 'need'} "
                   "a variant chosen by hand.")
        _hint_by_hand(s.out, by_hand[0])
    elif not unlinked:
        _say_ready(s)
    if all_:
        _warn_stale(s.out, stale)
    elif stale:
        s.out.warn(f"{len(stale)} link(s) are stale (their Shopify variant was deleted or changed SKU); "
                   "`ecomsend links` shows them with the fix.")


_SORTS = {
    "blocked": lambda r: (-r.blocked_orders, r.product_title, r.sku_id),
    "sku": lambda r: (r.seller_sku.casefold(), r.sku_id),
    "title": lambda r: (r.product_title.casefold(), r.sku_name.casefold(), r.sku_id),
}


def _search_and_sort(rows: list[Any], search: str | None, sort: str) -> list[Any]:
    """``list-unlinked --search TEXT --sort KEY``: the rows containing TEXT (any case), in that order."""
    if search:
        needle = search.casefold()
        rows = [r for r in rows if any(needle in (value or "").casefold() for value in
                                       (r.sku_id, r.seller_sku, r.product_title, r.sku_name))]
    if sort == "blocked":
        return rows  # Store.sku_rows gives them in this order already (100,000 keys not computed again)
    return sorted(rows, key=_SORTS[sort])


def _sku_rows_json(rows: list[Any], stale: dict[str, Any]) -> Iterator[dict]:
    """The documents of ``list-unlinked --json``, one loop for 100,000s of rows."""
    from ..matching import classify

    for row in rows:
        link_id = row.link_variant_id
        yield {
            "tiktok_sku_id": row.sku_id,
            "tiktok_product_id": row.product_id,
            "product_title": row.product_title,
            "sku_name": row.sku_name,
            "seller_sku": row.seller_sku,
            "blocked_orders": row.blocked_orders,
            "linked": link_id is not None,
            "link": None if link_id is None else _link_json(row, stale.get(row.sku_id)),
            "suggestion": classify(row.seller_sku, row.candidates).as_json(),
        }


def _link_json(row: Any, stale: Any) -> dict:
    return {"shopify_variant_id": row.link_variant_id, "source": row.link_source,
            "stale": stale.reason if stale is not None else None}


def _csv_row(sku: Any, link: Any, variants: dict[str, Any], suggestion: str) -> dict:
    v = variants.get(link.shopify_variant_id) if link else None
    return _csv_fields(sku.sku_id, sku.seller_sku, link.shopify_variant_id if link else "", v.sku if v else "",
                       sku.product_title, sku.sku_name, suggestion)


def _csv_fields(sku_id: str, seller_sku: str, variant_id: str, variant_sku: str, product_title: str,
                sku_name: str, suggestion: str) -> dict:
    """A row of the link CSV (what `link --csv` reads back), from its values."""
    return {"tiktok_sku_id": sku_id, "tiktok_seller_sku": seller_sku, "shopify_variant_id": variant_id,
            "shopify_sku": variant_sku, "product_title": product_title, "sku_name": sku_name,
            "suggestion": suggestion}


# --- autolink ------------------------------------------------------------------------


@command(app, "autolink")
def autolink(
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the proposals; write nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Link without asking (for scripts)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Propose SKU-equal pairs, ask, then link them all in one transaction.

    Ambiguous SKUs (several Shopify variants share the code) and SKUs with no
    match are listed apart and never linked. SKUs that already have a link are
    never touched. Each run is a batch: `ecomsend unlink --batch ID` undoes it.

    \b
    Examples:
      ecomsend autolink --dry-run
      ecomsend autolink --yes
    """
    from ..linking import (
        apply_autolink,
        apply_feed_links,
        describe,
        propose_autolink,
        propose_feed_links,
    )

    if as_json and not (dry_run or yes):
        from ..errors import InputError

        raise InputError("autolink --json needs --dry-run or --yes",
                         hint="`ecomsend autolink --dry-run --json` previews, `--yes --json` links")
    s = session()
    if not _orders_pulled(s):
        if as_json:
            s.out.json({"linked": [], "feed": [], "ambiguous": [], "unmatched": [], "dry_run": dry_run,
                        "batch_id": None})
        return
    store = s.store
    s.ensure_catalog(dry_run=dry_run)
    feed = propose_feed_links(store)
    proposal = propose_autolink(store)
    plan = proposal.plan
    feed_ids = {sku for sku, _ in feed}
    plan.unmatched = [sku for sku in plan.unmatched if sku not in feed_ids]
    if not as_json:
        describe(store, proposal)
        _render_popup(s.out, proposal, feed)
    n = len(plan.pairs) + len(feed)
    linked = 0
    batch = None
    if not dry_run and n:
        if not yes and not s.out.confirm(
            f"Link {plural(n, 'SKU')}?", what="autolink",
            hint="`ecomsend autolink --yes` links them without asking; "
                 "`ecomsend autolink --dry-run` shows them",
        ):
            raise Aborted("Nothing linked.")
        with store.transaction():
            batch = store.new_batch_id()
            linked = apply_autolink(store, plan, actor=s.config.actor, batch=batch)
            linked += apply_feed_links(store, feed, actor=s.config.actor, batch=batch)
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
                "batch_id": batch,
            }
        )
        return
    if dry_run:
        s.out.info(f"Dry run: would link {plural(n, 'SKU')}. Nothing was written.")
        if n:
            s.out.info("Link them with `ecomsend autolink`." if s.out.interactive()
                       else "Link them with `ecomsend autolink --yes`.")
    elif n:
        s.out.success(f"Linked {plural(linked, 'SKU')} ({_undo_hint(s.out, batch)}).")
        _say_ready(s)
    else:
        s.out.info("Nothing to auto-link.")


def _undo_hint(out: Output, batch: int | None) -> str:
    """``batch N; `ecomsend unlink --batch N` undoes it`` (with ``--yes`` where nothing can ask)."""
    yes = "" if out.interactive() else " --yes"
    return f"batch {batch}; `ecomsend unlink --batch {batch}{yes}` undoes it"


def _say_ready(s: Session) -> None:
    """After linking: how many blocked orders the next `sync-orders` can create."""
    store = s.store
    ready = store.ready_order_count(store.stale_links())
    if ready:
        s.out.info(f"{plural(ready, 'blocked order')} can now sync: run `ecomsend sync-orders`.")


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
        from ..output import ID, TITLE, Column

        out.table(
            [Column("TikTok product", TITLE, drop=2), Column("TikTok SKU name", TITLE, drop=3),
             Column("TikTok SKU", ID), Column("Shopify product", TITLE), Column("Shopify variant", TITLE, drop=1),
             Column("Shopify SKU", ID)],
            rows,
            title=f"Link {plural(len(rows), 'SKU')} to the Shopify variant with the same SKU",
        )
    if feed:
        out.info(f"{plural(len(feed), 'SKU')} {'was' if len(feed) == 1 else 'were'} published from "
                 "Shopify (external_sku_id) and get a feed link.")
    by_hand: list[str] = []
    if plan.ambiguous:
        out.info(f"Ambiguous, not linked ({plural(len(plan.ambiguous), 'SKU')}): "
                 "several Shopify variants share the SKU.")
        for sku_id, candidates in plan.ambiguous[:_LISTED]:
            sku = proposal.skus.get(sku_id)
            labels = ", ".join(
                f"{variant_number(c)} ({_variant_label(proposal.variants.get(c))})" for c in candidates[:5]
            )
            out.info(f"  {sku_id} {sku.seller_sku if sku else ''!r}: {labels}")
        by_hand += [sku_id for sku_id, _ in plan.ambiguous]
    if plan.unmatched:
        out.info(f"No Shopify variant with the same SKU ({plural(len(plan.unmatched), 'SKU')}):")
        for sku_id in plan.unmatched[:_LISTED]:
            sku = proposal.skus.get(sku_id)
            out.info(f"  {sku_id} {sku.seller_sku if sku else ''!r}"
                     + (f" {sku.product_title} / {sku.sku_name}" if sku else ""))
        by_hand += plan.unmatched
    listed = len(plan.ambiguous[:_LISTED]) + len(plan.unmatched[:_LISTED])
    if len(by_hand) > listed:
        out.info(f"  … and {len(by_hand) - listed} more: `ecomsend list-unlinked --csv` lists them all.")
    if by_hand:
        _hint_by_hand(out, by_hand[0])


_LISTED = 20  # SKUs listed by name on the screen; the rest counted, and all in --json / --csv


def _hint_by_hand(out: Output, sku_id: str) -> None:
    """How to link what autolink cannot: the picker on a terminal, else the CSV round trip."""
    if out.interactive():
        out.info(f"Link these by hand: `ecomsend link {shell_args(sku_id)}` searches the catalog "
                 "and picks, or in bulk by CSV (see `ecomsend link --help`).")
    else:
        out.info("Link these by hand: `ecomsend list-unlinked --csv > todo.csv`, fill in "
                 "shopify_sku or shopify_variant_id, then `ecomsend link --csv todo.csv --dry-run`.")


# --- link / unlink ---------------------------------------------------------------------


@command(app, "link")
def link(
    tiktok: str | None = typer.Argument(
        None, help="TikTok sku_id, or a seller SKU naming one SKU. Not with --csv.",
        autocompletion=_complete_unlinked_first, metavar="TIKTOK",
    ),
    shopify: str | None = typer.Argument(
        None, metavar="SHOPIFY", help="Shopify variant GID or number, or a SKU naming one variant. "
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
        "Each import is a batch (`ecomsend unlink --batch ID` undoes it).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="With --csv: print the plan, write nothing."),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="With --csv: apply the valid rows and report the others."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="With --csv: the plan and result as one JSON document on stdout."
    ),
) -> None:
    """Link a TikTok SKU to a Shopify variant by hand, or many from a CSV file.

    \b
    Examples:
      ecomsend link 1729592969712207012 gid://shopify/ProductVariant/4471
      ecomsend link RED-XM01 RED-XM01-US     (TikTok seller SKU, Shopify SKU)
      ecomsend link RED-XM01                 (then search and pick interactively)
      ecomsend link                          (pick the SKU too, most blocked orders first)
      ecomsend list-unlinked --csv > todo.csv   (fill in a Shopify column, then:)
      ecomsend link --csv todo.csv --dry-run
    """
    picking = tiktok is None and csv_file is None and not (dry_run or skip_invalid or as_json)
    if picking and sys.stdin.isatty():
        tiktok = _pick_sku(session())
    if csv_file is not None or tiktok is None or dry_run or skip_invalid or as_json:
        _link_from_csv(csv_file, tiktok, shopify, dry_run=dry_run, force=force, yes=yes,
                       as_json=as_json, skip_invalid=skip_invalid)
        return
    from ..linking import plan_manual_link, resolve_shopify, resolve_tiktok

    s = session()
    store = s.store
    s.ensure_catalog()
    sku = resolve_tiktok(store, tiktok)
    if shopify is None:
        if not s.out.interactive():
            _refuse_picker(s, tiktok, sku)
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
                f"TikTok SKU {sku.sku_id} ({sku.seller_sku!r}, {sku.product_title} / {sku.sku_name}) "
                f"is linked to {current.shopify_variant_id} ({current.source})."
            )
            if not s.out.confirm(f"Replace {_variant_named(old, current.shopify_variant_id)} "
                                 f"with {_variant_named(variant, variant.variant_id)}?", what="link"):
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
        hint=f"`ecomsend link {shell_args(tiktok, variant_number(variant.variant_id))}` links it without asking",
    ):
        raise Aborted("Nothing changed.")
    store.apply_links([change], source="manual", actor=s.config.actor)
    verb = "Confirmed" if change.old == change.new else "Relinked" if change.old else "Linked"
    s.out.success(f"{verb} {sku.sku_id} → {variant.variant_id} ({_variant_label(variant)}).")
    _say_ready(s)


def _variant_named(variant: Any, variant_id: str) -> str:
    """A variant as a person decides about it: ``Classic Tee / Black / M (TEE-BLK-M)``."""
    if variant is None:
        return f"{variant_id} (not in the catalog cache)"
    return f"{_variant_label(variant)} ({variant.sku})" if variant.sku else _variant_label(variant)


def _refuse_picker(s: Session, tiktok: str, sku: Any) -> None:
    """Without a terminal the picker cannot ask: name a `link TIKTOK SHOPIFY` that works, from the catalog."""
    from ..errors import NeedsTerminalError
    from ..picker import index_catalog

    store = s.store
    query = (sku.seller_sku or "").strip() or sku.product_title
    # The variant the picker would put first: one ranking rule for both.
    index = index_catalog(store.variant_search_columns())
    best = index.rank(query, limit=1)
    example = (store.variant(index.ids[best[0].index]) if best
               else next(iter(store.iter_variants()), None))
    if example is None:
        raise NeedsTerminalError(
            "link without SHOPIFY picks a variant interactively, but stdin is not a terminal, "
            "and the Shopify catalog cache is empty",
            hint="run `ecomsend catalog refresh`, then give SHOPIFY (a variant id or its SKU)",
        )
    current = store.link(sku.sku_id)
    force = ["--force"] if current and current.shopify_variant_id != example.variant_id else []
    forms = [f"`ecomsend link {shell_args(tiktok, variant_number(example.variant_id), *force)}`"]
    if example.sku and len(store.variants_by_sku(example.sku)) == 1:
        forms.append(f"`ecomsend link {shell_args(tiktok, example.sku, *force)}`")
    raise NeedsTerminalError(
        "link without SHOPIFY picks a variant interactively, but stdin is not a terminal",
        hint=f"give SHOPIFY (a variant id or its SKU), e.g. {' or '.join(forms)} "
        f"for {_variant_named(example, example.variant_id)}",
    )


def _link_from_csv(
    csv_file: str | None, tiktok: str | None, shopify: str | None, *, dry_run: bool, force: bool,
    yes: bool, as_json: bool, skip_invalid: bool,
) -> None:
    """`link --csv` (DESIGN §6): check the whole file, show or confirm the plan, write it at once."""
    from ..csvlinks import (
        apply_csv_plan,
        describe_csv_plan,
        open_link_csv,
        plan_link_csv,
        read_link_csv,
    )
    from ..errors import InputError, LinkExistsError

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
    # A dry run piped as a table shows every row: their details are read with the check.
    plan = plan_link_csv(store, parsed, details=dry_run and not as_json and not s.out.is_terminal)

    def summary() -> str:
        text = (f"{len(plan.new)} new, {len(plan.changed)} changed, {len(plan.unchanged)} unchanged, "
                f"{len(plan.skipped)} skipped (empty Shopify column)")
        if plan.repeated:
            text += f", {plural(len(plan.repeated), 'repeated row')}"
        if plan.problems:
            text += f", {plural(plan.invalid_rows, 'invalid row')} left out"
        return text

    def render(actions: tuple[str, ...], to_stderr: bool = False) -> None:
        # File order, as the operator sees the spreadsheet; capped on a terminal (--json has all).
        rows = sorted(((p, a) for a in actions for p in getattr(plan, a)), key=lambda r: r[0].line)
        if not rows:
            return
        limit = 200 if (s.out.err if to_stderr else s.out.out).is_terminal else len(rows)
        describe_csv_plan(store, plan, (p for p, _ in rows[:limit]))
        from ..output import ID, TITLE, VARIANT, Column

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
            [Column("Line", ID, drop=4), Column("Action", ID), Column("TikTok SKU id", ID),
             Column("Seller SKU", ID, drop=1), Column("TikTok product", TITLE, drop=3),
             Column("Shopify variant", VARIANT), Column("Shopify SKU", ID, drop=2),
             Column("Shopify product", TITLE), Column("Replaces")],
            table(), title=f"{name}: {summary()}", to_stderr=to_stderr,
        )
        if len(rows) > limit:
            s.out.info(f"… and {plural(len(rows) - limit, 'more row')}; --json lists them all.")

    if plan.problems and not skip_invalid:
        if as_json:
            s.out.json(plan.as_json(dry_run=dry_run, written=0))
        for problem in plan.problems:
            s.out.error(str(problem))
        raise InputError(
            f"{plan.invalid_rows} of {plural(plan.data_rows, 'row')} in {name} "
            f"{'is' if plan.invalid_rows == 1 else 'are'} invalid; nothing was written",
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
            s.out.info(f"Replacing {plural(len(plan.changed), 'existing link')} needs --force "
                       "or a confirmation.")
        return
    if plan.changed and not (force or yes):
        first = plan.changed[0]
        if not s.out.interactive():
            again = (f"`ecomsend link --csv {shell_args(csv_file)} --force` replaces them; "
                     f"`ecomsend link --csv {shell_args(csv_file)} --dry-run` shows the plan"
                     if csv_file != "-" else "pass --force to replace them, or --dry-run to review the plan")
            raise LinkExistsError(
                f"{plural(len(plan.changed), 'row')} would replace existing links (line {first.line}: "
                f"{first.tiktok_sku_id} {first.old} → {first.shopify_variant_id}); nothing was written",
                hint=again,
            )
        render(("changed",), to_stderr=True)
        also = f" and add {plural(len(plan.new), 'new link')}" if plan.new else ""
        if not s.out.confirm(f"Replace {plural(len(plan.changed), 'existing link')}{also}?",
                             what="link --csv"):
            raise Aborted("Nothing changed.")
    written, batch = 0, None
    if plan.new or plan.changed:
        with store.transaction():
            batch = store.new_batch_id()
            written = apply_csv_plan(store, plan, actor=s.config.actor, batch=batch)
    if as_json:
        s.out.json({**plan.as_json(dry_run=False, written=written), "batch_id": batch})
        return
    undo = f" ({_undo_hint(s.out, batch)})" if batch else ""
    s.out.success(f"Imported {name}: {summary()}{undo}.")
    if written:
        _say_ready(s)


def _pick_variant(s: Session, sku: Any) -> Any:
    """The interactive picker: ranked variants, searched as the operator types (cli/pick.py)."""
    from ..errors import InputError
    from ..output import ID, TITLE, VARIANT, Column
    from ..picker import index_catalog
    from .pick import choose

    s.out.require_terminal("link without SHOPIFY (the picker)")
    store = s.store
    if store.variant_count() == 0:
        raise InputError(
            "the Shopify catalog cache is empty", hint="run `ecomsend catalog refresh` first"
        )
    s.out.info(f"TikTok SKU {sku.sku_id}: {sku.product_title} / {sku.sku_name} (seller SKU {sku.seller_sku!r})")
    index = index_catalog(store.variant_search_columns())

    def search(text: str) -> list[str]:
        return [index.ids[r.index] for r in index.rank(text, limit=15)]

    chosen = choose(
        s.out, query=(sku.seller_sku or "").strip() or sku.product_title, what="the picker",
        search=search,
        columns=[Column("#", ID), Column("Product", TITLE), Column("Variant", TITLE, drop=1), Column("SKU", ID),
                 Column("Inventory", ID, drop=2), Column("Variant id", VARIANT)],
        row=lambda vid: _picker_row(store.variant(vid)),
    )
    return store.variant(chosen)


def _picker_row(v: Any) -> list:
    return [v.product_title, v.variant_title, v.sku,
            "" if v.inventory_quantity is None else v.inventory_quantity, v.variant_id]


def _pick_sku(s: Session) -> str:
    """`link` with no arguments: the unlinked SKUs, most blocked orders first, to pick one from."""
    from ..errors import NotFoundError
    from ..output import ID, TITLE, Column
    from ..picker import VariantIndex
    from .pick import choose

    rows = s.store.sku_rows()  # unlinked, most blocked orders first
    if not rows:
        raise NotFoundError("no unlinked TikTok SKUs", hint="`ecomsend list-unlinked --all` lists every SKU")
    by_id = {r.sku_id: r for r in rows}
    index = VariantIndex([(r.sku_id, r.seller_sku, r.product_title, r.sku_name) for r in rows])

    def search(text: str) -> list[str]:
        if not text:
            return [r.sku_id for r in rows[:15]]
        return [index.ids[r.index] for r in index.rank(text, limit=15)]

    return choose(
        s.out, query="", what="link without TIKTOK (the SKU picker)", search=search,
        columns=[Column("#", ID), Column("TikTok SKU id", ID), Column("Product", TITLE),
                 Column("SKU name", TITLE, drop=1), Column("Seller SKU", ID), Column("Blocked orders", ID)],
        row=lambda sid: [sid, by_id[sid].product_title, by_id[sid].sku_name, by_id[sid].seller_sku,
                         by_id[sid].blocked_orders],
    )


@command(app, "unlink")
def unlink(
    tiktok: str | None = typer.Argument(
        None, help="TikTok sku_id, or a seller SKU naming one SKU.", autocompletion=_complete_linked,
        metavar="TIKTOK",
    ),
    batch: int | None = typer.Option(
        None, "--batch", metavar="ID", min=1, max=_SQLITE_INT_MAX,
        help="Undo a batch (an autolink run or a CSV import; "
        "`ecomsend history` shows its id): each of its links goes back to what it was before.",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Remove a link, or undo a batch of links. Orders already created in Shopify are untouched.

    A link the batch made that was changed since (relinked or unlinked by
    hand) is left as it is now, and listed.

    \b
    Examples:
      ecomsend unlink 1729592969712207012 --yes
      ecomsend unlink --batch 3
    """
    from ..errors import NotFoundError
    from ..linking import resolve_tiktok

    if batch is not None:
        if tiktok is not None:
            raise typer.BadParameter("give TIKTOK or --batch ID, not both", param_hint="TIKTOK")
        _unlink_batch(batch, yes=yes)
        return
    if tiktok is None:
        raise typer.BadParameter("give TIKTOK (a sku_id or seller SKU), or --batch ID",
                                 param_hint="TIKTOK")
    s = session()
    store = s.store
    sku = resolve_tiktok(store, tiktok)
    current = store.link(sku.sku_id)
    if current is None:
        raise NotFoundError(f"TikTok SKU {sku.sku_id} ({sku.seller_sku!r}) has no link",
                            hint="nothing to unlink")
    pending = store.pending_orders_for_sku(sku.sku_id)
    variant = store.variant(current.shopify_variant_id)
    s.out.info(
        f"{sku.sku_id} ({sku.product_title} / {sku.sku_name}) → {current.shopify_variant_id} "
        f"({_variant_label(variant) or 'not in catalog'}, {current.source}). "
        f"{plural(pending, 'pending order')} {'needs' if pending == 1 else 'need'} this SKU and will "
        "wait until it is linked again."
    )
    if not yes and not s.out.confirm(
        "Unlink it?", what="unlink",
        hint=f"`ecomsend unlink {shell_args(tiktok)} --yes` unlinks it without asking",
    ):
        raise Aborted("Nothing changed.")
    store.remove_link(sku.sku_id, actor=s.config.actor)
    s.out.success(f"Unlinked {sku.sku_id}.")


def _unlink_batch(batch: int, *, yes: bool) -> None:
    """`unlink --batch ID`: show what goes back and what stays, ask, revert in one transaction."""
    from ..errors import NotFoundError

    s = session()
    store = s.store
    plan = store.batch_revert(batch)
    if plan is None:
        raise NotFoundError(f"no batch {batch} in the link history",
                            hint="`ecomsend history` shows the batch of each change")

    def described(items: list[tuple[str, tuple[str | None, str | None]]]) -> Iterator[tuple[str, str, str]]:
        """``(SKU, first link, second link)`` cells, named from the store a thousand at a time:
        undoing a 100,000-row import holds one chunk of names, not two maps of every record."""
        for start in range(0, len(items), 1000):
            chunk = items[start:start + 1000]
            variants = store.variants(v for _, pair in chunk for v in pair if v)
            seller = store.seller_skus_of({k for k, _ in chunk})
            names = {v: f"{variant_number(v)} {_variant_named(variants.get(v), v)}"
                     for _, pair in chunk for v in pair if v}
            for sku_id, (first, second) in chunk:
                yield (f"{sku_id} {seller[sku_id]}" if seller.get(sku_id) else sku_id,
                       names[first] if first else "no link", names[second] if second else "no link")

    if plan.reverted:
        from ..output import Column

        reverted = sorted(plan.reverted.items())
        limit = 200 if s.out.err.is_terminal else len(reverted)  # piped, every row (--yes in scripts)
        s.out.table([Column("TikTok SKU"), Column("Now"), Column("Back to")],
                    (list(cells) for cells in described(reverted[:limit])),
                    title=f"Undo batch {batch}: {plural(len(plan.reverted), 'link')}", to_stderr=True)
        if len(reverted) > limit:
            s.out.info(f"… and {plural(len(reverted) - limit, 'more link')}; `ecomsend history` lists them all.")
    if plan.kept:
        s.out.info(f"{plural(len(plan.kept), 'link')} changed since batch {batch}, kept as "
                   f"{'it is' if len(plan.kept) == 1 else 'they are'} now:")
        for sku_cell, left, now in described(sorted(plan.kept.items())[:_LISTED]):
            s.out.info(f"  {sku_cell}: the batch left {left}, now {now}")
    if not plan.reverted:
        s.out.info(f"Nothing to undo in batch {batch}.")
        return
    if not yes and not s.out.confirm(
        f"Undo {plural(len(plan.reverted), 'link')} of batch {batch}?", what="unlink --batch",
        hint=f"`ecomsend unlink --batch {batch} --yes` undoes it without asking",
    ):
        raise Aborted("Nothing changed.")
    done = store.batch_revert(batch, actor=s.config.actor)
    assert done is not None
    s.out.success(f"Undid {plural(len(done.reverted), 'link')} of batch {batch} (as batch {done.batch_id}).")
    if len(done.kept) != len(plan.kept):
        s.out.warn(f"{plural(len(done.kept) - len(plan.kept), 'more link')} changed while this ran; "
                   "left as they are")
    _say_ready(s)


# --- links, history ----------------------------------------------------------------------


@links_app.callback(invoke_without_command=True)
def links_list(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """List links. Example: ecomsend links --json"""
    if ctx.invoked_subcommand is not None:
        return
    _run(_links_list)(as_json=as_json)


def _links_list(as_json: bool) -> None:
    s = session()
    stale = s.store.stale_link_details()
    if as_json:
        links = s.store.links()
        s.out.json(
            [
                {"tiktok_sku_id": x.tiktok_sku_id, "shopify_variant_id": x.shopify_variant_id,
                 "source": x.source, "linked_at": x.linked_at,
                 "stale": stale[x.tiktok_sku_id].reason if x.tiktok_sku_id in stale else None}
                for x in links
            ]
        )
        return
    if not s.store.link_count():
        s.out.info("No links yet. Start with `ecomsend autolink --dry-run`.")
        return

    def row(x: Any) -> list:
        problem = stale[x.tiktok_sku_id].problem if x.tiktok_sku_id in stale else ""
        return [x.tiktok_sku_id, x.seller_sku, x.shopify_variant_id, x.variant_sku,
                _variant_label(x if x.cached else None), x.source, x.linked_at, problem]

    from ..output import ID, TEXT, TITLE, VARIANT, Column

    s.out.table(
        [Column("TikTok SKU id", ID), Column("Seller SKU", ID, drop=3), Column("Shopify variant", VARIANT),
         Column("Shopify SKU", ID, drop=4), Column("Product", TITLE, drop=2), Column("Source", ID, drop=5),
         Column("Linked at", ID, drop=1), Column("Stale", TEXT)],
        (row(x) for x in list(s.store.link_rows())),  # read whole: no read left open while a pipe waits
    )
    _warn_stale(s.out, stale)


@command(links_app, "export")
def links_export(
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to FILE instead of stdout.", metavar="FILE"
    ),
) -> None:
    """Export links as CSV (the columns `ecomsend link --csv` reads).

    Example: ecomsend links export -o links.csv
    """
    from ..csvlinks import write_csv

    s = session()
    # From one join of the links with their SKU and variant, read whole: no read left open while a pipe waits.
    rows = (_csv_fields(x.tiktok_sku_id, x.seller_sku, x.shopify_variant_id, x.variant_sku,
                        x.tiktok_product_title, x.sku_name, x.source) for x in list(s.store.link_rows()))
    if output is None:
        write_csv(s.out.data_stream(), rows)  # exact when redirected: the file is for `link --csv`
        return
    with open(output, "w", encoding="utf-8", newline="") as fh:
        n = write_csv(fh, rows)
    s.out.info(f"Wrote {n} link(s) to {output}.")


@command(app, "history")
def history(
    tiktok: str | None = typer.Argument(None, help="Only this TikTok SKU (id or seller SKU).",
                                        autocompletion=_complete_unlinked_first),
    limit: int = typer.Option(100, "--limit", "-n", min=0, max=_SQLITE_INT_MAX,
                              help="At most N rows (0: all)."),
    as_json: bool = JSON_OPT,
) -> None:
    """The audit log of link changes: when, what, old → new, source, who, batch.

    An autolink run or a CSV import is one batch: `ecomsend unlink --batch ID`
    undoes it.

    \b
    Examples:
      ecomsend history 1729592969712207012
      ecomsend history --json -n 0
    """
    s = session()
    sku_id = None
    if tiktok:
        from ..linking import resolve_tiktok

        sku_id = resolve_tiktok(s.store, tiktok).sku_id
    rows = s.store.history(sku_id, limit=limit or None)
    if as_json:
        s.out.json([row.__dict__ for row in rows])
        return
    if not rows:
        s.out.info("No link changes recorded.")
        return
    skus = s.store.tiktok_skus({r.tiktok_sku_id for r in rows})
    variants = s.store.variants({v for r in rows for v in (r.old_variant_id, r.new_variant_id) if v})

    def named(variant_id: str | None) -> str:
        # The number stands for the GID (the CLI accepts it); --json has the full GIDs.
        if not variant_id:
            return ""
        v = variants.get(variant_id)
        return f"{variant_number(variant_id)} {_variant_named(v, variant_id) if v else '(not in catalog)'}"

    def sku_cell(sku_id: str) -> str:
        sku = skus.get(sku_id)
        return f"{sku_id} {sku.seller_sku}" if sku and sku.seller_sku else sku_id

    from ..output import ID, Column

    s.out.table(
        [Column("When", ID), Column("TikTok SKU"), Column("Action", ID), Column("Old", drop=1),
         Column("New"), Column("Source", ID, drop=2), Column("Who", ID, drop=3), Column("Batch", ID)],
        [[r.at, sku_cell(r.tiktok_sku_id), r.action, named(r.old_variant_id), named(r.new_variant_id),
          r.source, r.actor, r.batch_id or ""]
         for r in rows],
    )
