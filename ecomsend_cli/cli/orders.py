"""Order commands: sync-orders (orders in, tracking out, aftersales in), orders, verify-orders
(DESIGN §5, §6b)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import typer

from ..text import plural
from . import app
from .common import JSON_OPT, _variant_label, command, notify_after_run, session
from .common import SQLITE_INT_MAX as _SQLITE_INT_MAX

if TYPE_CHECKING:
    from ..output import Output
    from ..store import Store


# --- sync-orders, orders ---------------------------------------------------------------------


@command(app, "sync-orders")
def sync_orders(
    dry_run: bool = typer.Option(False, "--dry-run", help="Pull and resolve; create nothing, write nothing."),
    since: str | None = typer.Option(
        None, "--since", help="Pull orders updated since this time instead of the cursor: "
        "2026-11-01, 2026-11-01T08:00, or an age like 3d, 12h, 90m.", metavar="WHEN",
    ),
    order: str | None = typer.Option(None, "--order", help="Sync just this TikTok order id.", metavar="ID"),
    limit: int | None = typer.Option(None, "--limit", min=0, max=_SQLITE_INT_MAX,
                                     help="Create at most N orders this run."),
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
    from ..errors import InputError
    from ..run import PHASES, run_phases
    from ..sync import SyncOptions

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
        try:
            report = run_phases(store, tiktok, shopify, config, options, phases=(only,) if only else PHASES,
                                on_event=progress.event, crash_at=config.crash_at,
                                refresh_catalog=s.ensure_catalog)
        except KeyboardInterrupt:
            progress.stop()
            _interrupted(s, progress, as_json)
    notify_after_run(s, report, options)  # one message when something needs the operator (notify.urls)
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
        unsure = [o for o in t.outcomes if o.what == "unconfirmed"]
        if unsure:  # each says when TikTok is asked for it: never sent again before
            out.info("Unconfirmed (looked up on TikTok before anything is sent again):")
            for o in unsure[:20]:
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


def _interrupted(s: Any, progress: _SyncProgress, as_json: bool) -> None:
    """Ctrl-C: say what the run did and that running again is safe (§5.4), exit 130."""
    from ..errors import EXIT_INTERRUPTED
    from .common import _fail

    try:
        confirming = s.store.order_counts().get("creating", 0)
    except Exception:  # the store cannot be read now: say what the run itself saw
        confirming = None
    if progress.total is None:
        done = "interrupted before any order was sent"
    else:
        done = f"interrupted: created {progress.states['synced']} of {progress.total}"
    if confirming:
        done += (f"; {confirming} being confirmed (sent, answer not confirmed yet: looked up in Shopify "
                 "on the next run, never sent twice)")
    message = f"{done}; safe to rerun `ecomsend sync-orders`"
    s.out.error(message)
    _fail(as_json, message, None, EXIT_INTERRUPTED)


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

    from ..errors import InputError

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
    """A Rich progress bar on an interactive terminal; plain log lines on stderr otherwise (a
    cron log, or the demo, which shows its children's output after they end)."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.bar: Any = None
        self.task: Any = None
        self.live = out.err_is_interactive and not out.quiet
        self.total: int | None = None  # orders this run set out to create
        self.states: Counter[str] = Counter()  # what became of them so far

    def __enter__(self) -> _SyncProgress:
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                console=self.out.err, transient=True)
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Take the bar off the screen (before a message that must not be drawn over)."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def event(self, kind: str, **data: Any) -> None:
        import time

        if kind == "create_started":
            self.total = (self.total or 0) + data["total"]
        elif kind == "created":
            self.states[data["state"]] += 1
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
    from ..sync import BLOCKED, FAILED, HELD, INVALID, SYNCED

    rows = [
        [o.tiktok_order_id or "(no id)", o.state, o.shopify_order_name or o.shopify_order_id or "", o.reason]
        for o in [*report.orders.values(), *report.unidentified]
        if o.state != SYNCED or o.shopify_order_id
    ]
    if rows:
        from ..output import ID, TEXT, Column

        out.table([Column("TikTok order", ID), Column("State", ID), Column("Shopify order", ID),
                   Column("Reason", TEXT)], rows[:REPORT_ROWS])
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
        out.info("Next: `ecomsend list-unlinked` shows each with its suggestion, then "
                 "`ecomsend autolink --dry-run` reviews the SKU-equal pairs.")
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


def _complete_state(incomplete: str) -> list[tuple[str, str]]:
    """Shell completion of ``--state``: the states an order can be listed by."""
    return [(name, help_text) for name, help_text in STATE_HELP.items() if name.startswith(incomplete)]


# What each state of `orders` means, for completion (the stored states of sync.STATES and `ready`).
STATE_HELP = {
    "ready": "every SKU linked now; the next sync-orders sends it",
    "blocked": "waits for SKUs to be linked",
    "pending": "pulled, not sent yet",
    "creating": "sent to Shopify, answer not confirmed yet",
    "synced": "created in Shopify",
    "failed": "Shopify refused it or the call failed; retried",
    "waiting": "unpaid or on hold on TikTok",
    "skipped": "not for Shopify (cancelled, fulfilled by TikTok, samples…)",
    "invalid": "TikTok's data cannot be used",
}


@command(app, "orders")
def orders_cmd(
    action: list[str] = typer.Argument(
        None, metavar="[show ID]", show_default=False,
        help="`show ID`: one order's story (pulled, blocked by which SKUs, linked when and by whom, "
        "created, shipped, failures).",
    ),
    state: list[str] = typer.Option(
        [], "--state", help="Only orders in this state (repeatable): ready (every SKU linked now, "
        "sent by the next sync-orders), blocked, synced, failed, skipped, waiting, pending, creating, "
        "invalid.", autocompletion=_complete_state,
    ),
    sku: str | None = typer.Option(None, "--sku", help="Only orders that need this TikTok SKU (its id or "
                                   "seller SKU).", metavar="SKU"),
    limit: int = typer.Option(0, "--limit", "-n", min=0, max=_SQLITE_INT_MAX,
                              help="At most N orders (0: all)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Pulled orders and their state, with the Shopify order, the reason and missing SKUs.

    States are as of now: a blocked order whose SKUs have all been linked since
    is shown `ready` (the next sync-orders sends it).

    Example: ecomsend orders --state blocked --state failed

    Example: ecomsend orders --sku TEE-BLK-S --state ready

    Example: ecomsend orders show 580000000000000001
    """
    from ..errors import InputError
    from ..sync import READY, STATES

    if action:
        if action[0] != "show":
            raise InputError(f"unknown action {action[0]!r} for orders",
                             hint="use `ecomsend orders show ID` for one order, or `ecomsend orders "
                             "--state STATE` to filter the list")
        if len(action) != 2:
            raise InputError("`orders show` needs one TikTok order id",
                             hint="e.g. `ecomsend orders show 580000000000000001`; `ecomsend orders` lists them")
        if state or sku or limit:
            raise InputError("--state, --sku and --limit filter the list, not one order",
                             hint=f"run `ecomsend orders show {action[1]}` alone")
        _show_order(action[1], as_json)
        return
    known = (READY, *STATES)
    unknown = [x for x in state if x not in known]
    if unknown:
        raise InputError(f"unknown state {unknown[0]!r}", hint=f"use one of {', '.join(known)}")
    s = session()
    store = s.store
    sku_ids = _sku_ids(store, sku) if sku is not None else None
    stale = store.stale_links()
    wanted = set(state)
    # `ready` is not stored: it is a `blocked` row whose SKUs are all linked now. Asking for one
    # of the two reads the blocked rows and keeps those whose live state was asked for.
    stored = sorted({"blocked" if x == READY else x for x in wanted})
    sift = bool(wanted) and (READY in wanted) != ("blocked" in wanted)
    listing = store.order_listing(states=stored or None, limit=None if sift else (limit or None),
                                  sku_ids=sku_ids)
    sellers: dict[str, str] = {}  # seller SKUs of the unlinked SKUs met so far: a read per SKU, not per order
    live = (_live(r, stale, store, sellers) for r in listing)
    if sift:
        live = (r for r in live if r[1] in wanted)
        if limit:
            live = itertools.islice(live, limit)
    rows = _with_life(store, live, order=lambda item: item[0])

    def as_dict(item: tuple[Any, dict]) -> dict:
        (r, now_state, now_reason), life = item
        return {
            "tiktok_order_id": r.tiktok_order_id, "state": now_state, "stored_state": r.state,
            "shopify_order_id": r.shopify_order_id, "shopify_order_name": r.shopify_order_name,
            "reason": now_reason, "missing_sku_ids": list(r.missing), "tiktok_status": r.tiktok_status,
            "cancelled_after_sync": r.cancelled_after_sync, **life,
        }

    if as_json:  # streamed: 100,000s of orders never sit in memory at once
        s.out.json_array(as_dict(item) for item in rows)
        return
    first = next(rows, None)
    if first is None:
        s.out.info("No orders pulled yet. Run `ecomsend sync-orders`." if not (state or sku)
                   else "No orders in that state." if not sku else "No orders need that SKU"
                   + (" in that state." if state else "."))
    else:
        from ..output import ID, TEXT, Column

        s.out.table(
            [Column("TikTok order", ID), Column("TikTok status", ID, drop=2), Column("State", ID),
             Column("Shopify order", ID), Column("Reason", TEXT), Column("Missing SKUs", TEXT, drop=3),
             Column("After creation", TEXT, drop=1)],
            ([r.tiktok_order_id, r.tiktok_status, now_state, r.shopify_order_name or r.shopify_order_id or "",
              now_reason + (" (cancelled on TikTok after sync)" if r.cancelled_after_sync else ""),
              " ".join(r.missing), _life_text(life)]
             for (r, now_state, now_reason), life in itertools.chain([first], rows)),
        )
    ready = store.ready_order_count(stale)
    if ready:
        s.out.info(f"{plural(ready, 'order')} ready: run `ecomsend sync-orders`")


def _live(r: Any, stale: dict[str, str], store: Store, sellers: dict[str, str]) -> tuple[Any, str, str]:
    """A listed order with its state and reason as of now (a stored ``blocked`` may be ready)."""
    from ..sync import CREATING, current_state

    if r.state == CREATING:
        return r, r.state, _creating_reason(r.reason)
    mine = {sku_id: stale[sku_id] for sku_id in r.skus if sku_id in stale}
    unknown = {sku_id for sku_id in r.missing if sku_id not in sellers}
    if unknown:
        sellers.update(dict.fromkeys(unknown, ""), **store.seller_skus_of(unknown))
    now_state, now_reason = current_state(r.state, r.reason, r.missing, mine, sellers)
    return r, now_state, now_reason


# The reason a claim stores while orderCreate is in flight: once that run is gone (a crash,
# Ctrl-C), the answer is unknown until the next run looks the order up.
_IN_FLIGHT = "sent to Shopify; waiting for the answer"


def _creating_reason(reason: str) -> str:
    if reason in ("", _IN_FLIGHT):
        return ("sent, answer not confirmed yet: looked up in Shopify on the next run (or being "
                "answered now, if a sync-orders is running)")
    return reason


def _sku_ids(store: Store, sku: str) -> list[str]:
    """The TikTok SKU ids ``--sku`` names: a TikTok SKU id, or a seller SKU (by its key)."""
    from ..errors import InputError

    if store.tiktok_sku(sku) is not None:
        return [sku]
    found = [x.sku_id for x in store.tiktok_skus_by_seller_sku(sku)]
    if not found:
        raise InputError(f"no pulled order needs a TikTok SKU {sku!r}",
                         hint="give a TikTok SKU id or seller SKU from `ecomsend list-unlinked --all` or "
                         "`ecomsend links`")
    return found


def _show_order(order_id: str, as_json: bool) -> None:
    """``orders show ID``: one order's story, from what the store holds."""
    from ..errors import InputError
    from ..sync import CREATING, current_state

    s = session()
    store = s.store
    rows = store.orders(ids=[order_id])
    times = store.order_times(order_id)
    if not rows or times is None:
        raise InputError(f"no pulled TikTok order {order_id!r}",
                         hint="`ecomsend orders` lists the pulled orders; `ecomsend sync-orders --order "
                         f"{order_id}` pulls it")
    row = rows[0]
    sku_ids = [i.sku_id for i in row.items]
    skus = store.tiktok_skus(sku_ids)
    links = {sku_id: store.link(sku_id) for sku_id in sku_ids}
    stale = store.stale_links(sku_ids)
    history = store.history_of(sku_ids)
    variants = store.variants({x.shopify_variant_id for x in links.values() if x is not None}
                              | {v for h in history for v in (h.new_variant_id, h.old_variant_id) if v})
    missing = sorted(sku_id for sku_id in sku_ids if links[sku_id] is None)
    if row.state == CREATING:
        now_state, now_reason = row.state, _creating_reason(row.reason)
    else:
        now_state, now_reason = current_state(row.state, row.reason, missing, stale,
                                              {k: v.seller_sku for k, v in skus.items()})
    life = next(_with_life(store, iter([row])))[1]

    def variant_text(variant_id: str | None) -> str:
        if not variant_id:
            return ""
        v = variants.get(variant_id)
        return f"{variant_id} ({_variant_label(v)}{f', {v.sku}' if v and v.sku else ''})" if v else variant_id

    def sku_text(sku_id: str) -> str:
        t = skus.get(sku_id)
        if t is None:
            return sku_id
        title = " / ".join(x for x in (t.product_title, t.sku_name) if x)
        return f"{sku_id} ({t.seller_sku!r}{', ' + title if title else ''})"

    sku_items = []
    for item in row.items:
        t, link = skus.get(item.sku_id), links[item.sku_id]
        sku_items.append({
            "tiktok_sku_id": item.sku_id, "seller_sku": t.seller_sku if t else "",
            "product_title": t.product_title if t else item.title, "sku_name": t.sku_name if t else "",
            "quantity": item.quantity, "shopify_variant_id": link.shopify_variant_id if link else None,
            "linked_at": link.linked_at if link else None, "linked_by": link.linked_by if link else None,
            "link_source": link.source if link else None, "stale": stale.get(item.sku_id),
        })
    events = _story(row, times, history, life, now_state, now_reason, sku_text, variant_text)
    if as_json:
        s.out.json({
            "tiktok_order_id": row.tiktok_order_id, "tiktok_status": row.tiktok_status,
            "state": now_state, "stored_state": row.state, "reason": now_reason,
            "shopify_order_id": row.shopify_order_id, "shopify_order_name": row.shopify_order_name,
            "first_pulled_at": times.first_pulled_at, "last_pulled_at": times.last_pulled_at,
            "state_changed_at": times.state_changed_at, "synced_at": times.synced_at,
            "attempts": row.attempts, "cancelled_after_sync": row.cancelled_after_sync,
            "missing_sku_ids": missing, "skus": sku_items,
            "link_history": [{"at": h.at, "tiktok_sku_id": h.tiktok_sku_id, "action": h.action,
                              "old_variant_id": h.old_variant_id, "new_variant_id": h.new_variant_id,
                              "source": h.source, "actor": h.actor} for h in history],
            "story": [{"at": at, "what": what} for at, what in events], **life,
        })
        return
    lines = [f"TikTok order {row.tiktok_order_id} ({row.tiktok_status}): {now_state}"
             + (f", Shopify {row.shopify_order_name or row.shopify_order_id}" if row.shopify_order_id else ""),
             *([f"  {now_reason}"] if now_reason else []), "", "SKUs:"]
    for x in sku_items:
        what = (f"linked to {variant_text(x['shopify_variant_id'])}" if x["shopify_variant_id"]
                else f"not linked: `ecomsend list-unlinked --search {x['tiktok_sku_id']}` shows its suggestion")
        if x["stale"]:
            what = x["stale"]
        lines.append(f"  {sku_text(x['tiktok_sku_id'])} ×{x['quantity']}: {what}")
    lines += ["", "Story:"]
    width = max(len(at) for at, _ in events)
    lines += [f"  {at.ljust(width)}  {what}" for at, what in events]
    s.out.text(s.out.in_context("\n".join(lines)))


def _story(row: Any, times: Any, history: list, life: dict, now_state: str, now_reason: str,
           sku_text: Callable[[str], str], variant_text: Callable[[str | None], str]) -> list[tuple[str, str]]:
    """What happened to an order, oldest first: ``(when, what)``, from what the store holds."""
    from ..sync import BLOCKED, CREATING, FAILED, READY, SYNCED

    # (when, rank, what): times are to the second, so the rank orders events of one second as
    # they can happen: pulled, feed links, blocked (by SKUs linked after it), links, then what
    # the links allowed (claimed, created, failed), then the order's life in Shopify.
    events: list[tuple[str, int, str]] = [(times.first_pulled_at, 0, "pulled from TikTok")]
    for h in history:
        who = f"by {h.actor or 'unknown'} ({h.source})"
        if h.action == "unlink":
            what = f"unlinked from {variant_text(h.old_variant_id)}"
        else:
            what = f"{'relinked' if h.action == 'relink' else 'linked'} to {variant_text(h.new_variant_id)}"
        events.append((h.at, 1 if h.source == "feed" else 3, f"SKU {sku_text(h.tiktok_sku_id)} {what} {who}"))
    state = row.state
    if state in (BLOCKED,):
        events.append((times.state_changed_at, 2, f"blocked at that sync: {row.reason}"))
    elif state == CREATING:
        events.append((times.state_changed_at, 4, f"claimed and sent to Shopify (attempt {row.attempts}): "
                                               f"{now_reason}"))
    elif state == FAILED:
        events.append((times.state_changed_at, 4, f"failed (attempt {row.attempts}, retried on the next run): "
                                               f"{row.reason}"))
    elif state == SYNCED:
        name = row.shopify_order_name or row.shopify_order_id
        how = f" ({row.reason})" if row.reason else ""
        events.append((times.synced_at or times.state_changed_at, 4, f"created in Shopify as {name}{how}"))
    else:
        events.append((times.state_changed_at, 4, f"{state}: {row.reason}" if row.reason else state))
    for x in life["shipments"]:
        if x["state"] == "pushed":
            what = f"shipped {x['tracking_number']} ({x['tiktok_provider'] or x['carrier']}), tracking on TikTok"
        elif x["state"] == "pushing":
            what = f"shipping {x['tracking_number']}: pushed to TikTok, not confirmed yet"
        else:
            what = f"tracking {x['tracking_number']} {x['state']}: {x['reason']}"
        events.append((x["at"], 5, what))
    for x in life["aftersales"]:
        kind = {"order_cancel": "cancelled in Shopify", "line_cancel": "line cancelled",
                "return": "refunded"}[x["kind"]]
        amount = f" {x['amount']} {x['currency']}" if x["amount"] else ""
        events.append((x["at"], 5, f"{kind}{amount}" if x["state"] == "done"
                       else f"{kind}{amount}: {x['state']} {x['reason']}".rstrip()))
    if life.get("reference_state") == "failed":
        events.append((times.synced_at or times.state_changed_at, 5,
                       f"TikTok reference not written: {life['reference_reason']}"))
    if row.cancelled_after_sync:
        events.append((times.last_pulled_at, 5, "cancelled on TikTok after it was created in Shopify"))
    events.sort(key=lambda e: e[:2])  # ISO 8601 UTC sorts by time
    story = [(at, what) for at, _, what in events]
    if now_state == READY:
        story.append(("now", f"ready: {now_reason}"))
    elif now_state == BLOCKED and now_reason != row.reason:
        story.append(("now", f"blocked: {now_reason}"))
    return story


def _with_life(store: Store, rows: Iterator[Any], chunk: int = 500,
               order: Callable[[Any], Any] = lambda r: r) -> Iterator[tuple[Any, dict]]:
    """Each order with its life after creation (DESIGN §6b.6): shipments, cancellation, refunds.

    ``order(item)`` is the stored order of each item (the item itself by default).
    """
    batch: list[Any] = []

    def flush() -> Iterator[tuple[Any, dict]]:
        ids = [order(x).tiktok_order_id for x in batch if order(x).shopify_order_id]
        shipments = store.shipments(ids) if ids else {}
        sales = store.aftersales_of(ids) if ids else {}
        states = store.life_states(ids) if ids else {}
        for x in batch:
            r = order(x)
            reference, reference_reason, ship, ship_reason = states.get(r.tiktok_order_id, (None, "", None, ""))
            yield x, {
                "reference_state": reference, "reference_reason": reference_reason,
                "ship_state": ship, "ship_reason": ship_reason,
                "shipments": [{"fulfillment_id": x.fulfillment_id, "state": x.state,
                               "tracking_number": x.tracking_number, "carrier": x.carrier,
                               "tiktok_provider": x.provider_name, "package_id": x.package_id, "reason": x.reason,
                               "line_item_ids": list(x.line_item_ids), "at": x.pushed_at or x.updated_at}
                              for x in shipments.get(r.tiktok_order_id, [])],
                "aftersales": [{"key": x.key, "kind": x.kind, "state": x.state, "amount": x.amount,
                                "currency": x.currency, "reason": x.reason, "at": x.updated_at}
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

    from ..verify import verify_orders

    s = session()
    started = _parse_since(since)
    cutoff = datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if started else None
    report = verify_orders(s.store, s.shopify(), since=cutoff)
    if as_json:
        s.out.json(report.as_json())
    else:
        if report.differences:
            from ..output import ID, TEXT, Column

            s.out.table([Column("TikTok order", ID), Column("Shopify order", ID), Column("What", TEXT),
                         Column("TikTok", TEXT), Column("Shopify", TEXT)],
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
