"""Order commands: sync-orders (orders in, tracking out, aftersales in), orders, verify-orders
(DESIGN §5, §6b)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import typer

from . import app
from .common import JSON_OPT, command, notify_after_run, session

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
        report = run_phases(store, tiktok, shopify, config, options, phases=(only,) if only else PHASES,
                            on_event=progress.event, crash_at=config.crash_at, refresh_catalog=s.ensure_catalog)
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
    from ..sync import BLOCKED, FAILED, HELD, INVALID, SYNCED

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
    from ..errors import InputError
    from ..sync import STATES

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
    from ..output import ID, TEXT, Column

    s.out.table(
        [Column("TikTok order", ID), Column("TikTok status", ID, drop=2), Column("State", ID),
         Column("Shopify order", ID), Column("Reason", TEXT), Column("Missing SKUs", TEXT, drop=3),
         Column("After creation", TEXT, drop=1)],
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

    from ..verify import verify_orders

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
