"""Alerts for cron (DESIGN §7 ``notify``): one message per sync-orders run that needs the operator.

``sync-orders`` calls :func:`notify_after_run` once, with the run's report.
When ``notify.urls`` is set and something needs the operator, one message —
never one per order — goes to every Apprise URL (Slack, Teams, email, ntfy,
a JSON webhook…). What needs the operator, each an :class:`Alert` with
stable keys:

* **failed orders** — every order in state ``failed`` (key: the order);
* **blocked orders** — orders still blocked ``notify.blocked_after_hours``
  after ecomsend first pulled them, told by the SKUs to link (key: the SKU,
  so more orders waiting on the same SKUs make no new message);
* **held and invalid orders**, and after-creation writes that failed or are
  left to the operator (tracking pushes, cancellations, refunds), from this
  run's report (key: phase and order);
* **a token about to expire** — a credential ecomsend cannot renew by itself
  expiring within 7 days (:mod:`.expiry`: the TikTok refresh token; Shopify
  publishes no expiry for its client secret) (key: token and expiry);
* **a stuck orders cursor** — :data:`STALL_RUNS` full runs in a row could
  not finish pulling TikTok's orders and the cursor (``sync.cursor``) did
  not move across them: TikTok has orders ecomsend is not taking. A quiet
  shop, whose pulls finish with nothing new, never counts (key: the cursor);
* **refused credentials** that stopped the run (key: the service's code).

**The repeat rule.** The store remembers the keys of the last message
delivered and when (state ``notify.sent``). A run sends when a key appears
that the last message did not carry (a new failed order, a new SKU to link,
a token entering its last week, a cursor getting stuck), or when
``notify.repeat_hours`` have passed since the last message and something
still needs the operator. Problems that clear are forgotten (a problem that
comes back is new again); when nothing needs the operator the memory is
emptied. A message no receiver took is not remembered: the next run tries
again.

**Never a secret.** Apprise URLs hold tokens: they are :class:`Secret`\\ s,
shown as ``scheme://********``; a failing receiver is named by its place in
the list (``notify.urls[1]``). Every configured and cached secret is
replaced by ``********`` in the message before it leaves.

**Never in the way.** A receiver that is down is a warning: it never fails
the sync nor changes its exit code. Apprise is imported only when a message
is due (it costs ~0.1 s), so a run with nothing to tell never loads it.

The module never prints: it returns a :class:`NotifyResult` for the CLI.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .config import REDACTED, Secret, redacted_url
from .errors import AuthError
from .text import plural

if TYPE_CHECKING:
    from .config import Config
    from .run import RunReport
    from .store import Store
    from .sync import SyncOptions

SENT_KEY = "notify.sent"  # {"keys": [hash, …], "at": unix time} of the last message delivered
CURSOR_WATCH_KEY = "notify.cursor_watch"  # {"cursor": value, "failed_runs": n}
STALL_RUNS = 3  # full runs in a row that could not finish pulling, cursor unmoved: stuck
EXAMPLES = 5  # orders or SKUs named per alert; the rest are counted
MAX_REASON = 160
MAX_BODY = 4000  # characters: every receiver takes this much (Slack, Teams, SMS gateways cut longer ones)
# Seconds all receivers together may take: a receiver that hangs, or answers a byte at a time (each read
# within Apprise's own timeout), must not hold the cron run.
SEND_DEADLINE_S = 30.0


@dataclass(frozen=True)
class Alert:
    """One thing that needs the operator: its text for the message and its keys for the repeat rule."""

    kind: str
    text: str
    keys: frozenset[str]


@dataclass
class NotifyResult:
    """What :func:`notify_after_run` did: the alerts, whether a message went out, and warnings."""

    alerts: list[Alert] = field(default_factory=list)
    sent: bool = False
    why_not: str = ""  # when nothing was sent: why (for --verbose)
    warnings: list[str] = field(default_factory=list)  # receivers that failed (never secrets)
    title: str = ""
    body: str = ""


def notify_after_run(store: Store, config: Config, report: RunReport, options: SyncOptions, *,
                     now: float | None = None) -> NotifyResult:
    """After a sync-orders run: send one message if something needs the operator (see the module).

    A dry run, or a config without ``notify.urls``, does nothing and writes nothing.
    """
    if options.dry_run:
        return NotifyResult(why_not="a dry run sends nothing")
    if not config.notify.urls:
        return NotifyResult(why_not="no notify.urls in the config")
    now = time.time() if now is None else now
    stalled = _watch_cursor(store, report, options)
    alerts = collect_alerts(store, config, report, now=now, stalled_runs=stalled)
    result = NotifyResult(alerts=alerts)
    memory = _load_json(store.get_state(SENT_KEY))
    keys = {_hash(k) for a in alerts for k in a.keys}
    if not alerts:
        if memory:
            store.set_state(SENT_KEY, None)
        result.why_not = "nothing needs the operator"
        return result
    told = set(memory.get("keys") or [])
    last = float(memory.get("at") or 0)
    new = keys - told
    if not new and now - last < config.notify.repeat_hours * 3600:
        if told - keys:  # forget what cleared, so that it counts as new if it comes back
            store.set_state(SENT_KEY, json.dumps({"keys": sorted(told & keys), "at": last}))
        result.why_not = "nothing new since the last message"
        return result
    result.title, result.body = build_message(alerts, shop=config.shopify.shop,
                                              secrets=_secrets(store, config))
    delivered, result.warnings = send(config.notify.urls, result.title, result.body)
    if delivered:
        result.sent = True
        store.set_state(SENT_KEY, json.dumps({"keys": sorted(keys), "at": now}))
    return result


# --- what needs the operator ------------------------------------------------------------------


def collect_alerts(store: Store, config: Config, report: RunReport, *, now: float,
                   stalled_runs: int = 0) -> list[Alert]:
    """Every :class:`Alert` that holds after this run, in the order the message tells them."""
    from .sync import HELD, INVALID

    alerts: list[Alert] = []
    problem = report.problem
    if isinstance(problem, AuthError):
        alerts.append(Alert("auth", f"A run stopped on refused credentials: {problem}",
                            frozenset({f"auth:{type(problem).__name__}:{getattr(problem, 'code', None)}"})))
    failed = [(r.tiktok_order_id, r.reason) for r in store.order_listing(states=["failed"])]
    if failed:
        alerts.append(Alert(
            "failed",
            f"{plural(len(failed), 'order')} failed (retried every run; fix the cause first):\n"
            + _examples([f"{oid}: {_short(reason)}" for oid, reason in failed], len(failed))
            + "\n  → ecomsend orders --state failed",
            frozenset(f"failed:{oid}" for oid, _ in failed)))
    blocked = _blocked_alert(store, config, now)
    if blocked is not None:
        alerts.append(blocked)
    if report.orders is not None:
        for state, what in ((HELD, "held (not sent until you act)"),
                            (INVALID, "invalid (TikTok's data cannot be used; check them in Seller Center)")):
            rows = [o for o in [*report.orders.orders.values(), *report.orders.unidentified] if o.state == state]
            if rows:
                alerts.append(Alert(
                    state, f"{plural(len(rows), 'order')} {what}:\n"
                    + _examples([f"{o.tiktok_order_id or '(no id)'}: {_short(o.reason)}" for o in rows], len(rows)),
                    frozenset(f"{state}:{o.tiktok_order_id}:{o.reason if o.tiktok_order_id is None else ''}"
                              for o in rows)))
    for phase, title in (("tracking", "Tracking to TikTok"), ("aftersales", "Cancellations and returns")):
        phase_report = getattr(report, phase)
        rows = [o for o in (phase_report.outcomes if phase_report is not None else ())
                if o.what in ("failed", "reported")]
        if rows:
            alerts.append(Alert(
                phase, f"{title}: {plural(len(rows), 'order')} failed or left to you:\n"
                + _examples([f"{o.tiktok_order_id}: {_short(o.detail)}" for o in rows], len(rows))
                + "\n  → ecomsend orders",
                frozenset(f"{phase}:{o.tiktok_order_id}:{o.what}" for o in rows)))
    alerts.extend(_token_alerts(store, config, now))
    if stalled_runs >= STALL_RUNS:
        from .sync import CURSOR_KEY

        cursor = store.get_state(CURSOR_KEY) or ""
        at = _when(int(cursor)) if cursor.isdigit() else "its first pull"
        alerts.append(Alert(
            "cursor",
            f"The orders cursor has not moved for {stalled_runs} runs (still at {at}): TikTok's orders could "
            f"not be pulled" + (f"; last error: {problem}" if problem is not None else "")
            + "\n  → ecomsend doctor",
            frozenset({f"cursor:{cursor}"})))
    return alerts


def _blocked_alert(store: Store, config: Config, now: float) -> Alert | None:
    hours = config.notify.blocked_after_hours
    cutoff = datetime.fromtimestamp(now - hours * 3600, UTC).replace(microsecond=0)
    count, skus = store.blocked_before(cutoff.isoformat().replace("+00:00", "Z"))
    if not count:
        return None
    linked = [sku for sku, (_n_orders, is_linked) in skus.items() if is_linked]
    stale = store.stale_links(linked) if linked else {}
    blockers = {sku: n for sku, (n, is_linked) in skus.items() if not is_linked or sku in stale}
    if not blockers:
        return None  # every SKU is linked now: the next run creates them
    details = store.tiktok_skus(blockers)
    lines = []
    for sku, n in sorted(blockers.items(), key=lambda item: (-item[1], item[0])):
        info = details.get(sku)
        label = f" {info.seller_sku.strip()!r} {info.product_title} / {info.sku_name}" if info else ""
        # Seller SKUs and titles are the seller's text: bounded, one line, no control characters.
        lines.append(_short(f"{sku}{label}") + f" ({plural(n, 'order')}" + (", stale link)" if sku in stale else ")"))
    return Alert(
        "blocked",
        f"{plural(count, 'order')} blocked" + (f" for more than {hours} h" if hours else "")
        + f" by {plural(len(blockers), 'SKU')} to link:\n"
        + _examples(lines, len(lines))
        + f"\n  → ecomsend list-unlinked, then ecomsend autolink --dry-run, or on a terminal "
          f"ecomsend link {min(blockers, key=lambda sku: (-blockers[sku], sku))}",
        frozenset(f"blocked:{sku}" for sku in blockers))


def _token_alerts(store: Store, config: Config, now: float) -> list[Alert]:
    from .expiry import token_expiries

    alerts = []
    for expiry in token_expiries(config, store):
        if not expiry.needs_operator(now):
            continue
        left = expiry.seconds_left(now) or 0
        fix = ("authorise the shop again in TikTok Shop Partner Center and put the new tokens in "
               "tiktok.access_token and tiktok.refresh_token" if expiry.service == "TikTok"
               else f"renew the {expiry.name}")
        alerts.append(Alert("token", f"{expiry.service} {expiry.describe(now)}: {fix}.",
                            frozenset({f"token:{expiry.name}:{expiry.expires_at}:{'past' if left <= 0 else 'soon'}"})))
    return alerts


def _watch_cursor(store: Store, report: RunReport, options: SyncOptions) -> int:
    """Count the full runs in a row whose pull could not finish while the cursor stood still.

    Only a full run (no ``--order``, no ``--since``) that ran the orders phase
    is counted; others leave the count as it is. Returns the count.
    """
    from .sync import CURSOR_KEY

    watch = _load_json(store.get_state(CURSOR_WATCH_KEY))
    ran = report.orders is not None or "orders" in report.errors
    if not ran or options.order_id or options.since is not None:
        return int(watch.get("failed_runs") or 0)
    cursor = store.get_state(CURSOR_KEY)
    cut_short = "orders" in report.errors or (report.orders is not None and report.orders.problem is not None)
    if not cut_short:
        runs = 0
    elif watch.get("cursor") == cursor:
        runs = int(watch.get("failed_runs") or 0) + 1
    else:
        runs = 1
    if watch != {"cursor": cursor, "failed_runs": runs}:
        store.set_state(CURSOR_WATCH_KEY, json.dumps({"cursor": cursor, "failed_runs": runs}))
    return runs


# --- the message --------------------------------------------------------------------------------


def build_message(alerts: Sequence[Alert], *, shop: str, secrets: Iterable[str] = ()) -> tuple[str, str]:
    """``(title, body)`` of the one message telling ``alerts``, every secret replaced by ``********``."""
    what = "1 thing needs you" if len(alerts) == 1 else f"{len(alerts)} things need you"
    title = f"ecomsend: {what}" + (f" ({shop})" if shop else "")
    body = "\n\n".join(a.text for a in alerts)
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        title = title.replace(secret, REDACTED)
        body = body.replace(secret, REDACTED)
    if len(body) > MAX_BODY:
        body = body[:MAX_BODY - 40].rstrip() + "\n… (cut; `ecomsend doctor` tells all)"
    return title, body


def _secrets(store: Store, config: Config) -> list[str]:
    """Every secret ecomsend holds: the config's, the cached tokens, the notify URLs themselves."""
    values = [s.get() for s in (config.shopify.access_token, config.shopify.client_secret, config.tiktok.app_secret,
                                config.tiktok.access_token, config.tiktok.refresh_token) if s]
    values += [url.get() for url in config.notify.urls]
    for name in ("tiktok", "shopify"):
        cached = store.load_token(name) or {}
        values += [str(cached[k]) for k in ("access_token", "refresh_token") if cached.get(k)]
    return values


def send(urls: Sequence[Secret], title: str, body: str, *,
         deadline: float = SEND_DEADLINE_S) -> tuple[bool, list[str]]:
    """Send to every URL with Apprise: ``(delivered to at least one, warnings for the others)``.

    All receivers together get ``deadline`` seconds: each is sent to from a
    daemon thread, and one still busy when the time is up is given up on (and
    those after it not tried), so the run goes on and ends. Warnings name a
    receiver by its place in ``notify.urls`` and its scheme, never the URL.
    """
    import threading

    import apprise  # ~0.1 s: only when a message is due

    delivered = False
    warnings = []
    started = time.monotonic()
    for i, url in enumerate(urls):
        label = f"notify.urls[{i}] ({redacted_url(url)})"
        left = deadline - (time.monotonic() - started)
        if left <= 0:
            warnings.append(f"{label}: not tried, the {deadline:.0f} s for alerts were used up; the next run "
                            "tries again")
            continue
        outcome: dict[str, str] = {}

        def attempt(url: Secret = url, outcome: dict[str, str] = outcome) -> None:
            try:
                notifier = apprise.Apprise()
                if not notifier.add(url.get()):
                    outcome["is"] = "unknown"
                elif notifier.notify(body=body, title=title, notify_type=apprise.NotifyType.WARNING):
                    outcome["is"] = "delivered"
                else:
                    outcome["is"] = "refused"
            except Exception as exc:  # noqa: BLE001 - a notifier's failure must never fail the sync
                outcome["is"] = type(exc).__name__

        worker = threading.Thread(target=attempt, name=f"ecomsend-notify-{i}", daemon=True)
        worker.start()
        worker.join(left)
        result = outcome.get("is")
        if result is None:
            warnings.append(f"{label}: no answer within {deadline:.0f} s, given up; the next run tries again")
        elif result == "delivered":
            delivered = True
        elif result == "unknown":
            warnings.append(f"{label}: Apprise does not know this URL; check it with `ecomsend doctor`")
        elif result == "refused":
            warnings.append(f"{label}: the receiver did not take the message; the next run tries again")
        else:
            warnings.append(f"{label}: sending failed ({result}); the next run tries again")
    return delivered, warnings


def check_urls(urls: Sequence[Secret]) -> list[str]:
    """The places in ``notify.urls`` of the URLs Apprise cannot read (imports Apprise)."""
    import apprise

    return [f"notify.urls[{i}] ({redacted_url(url)})" for i, url in enumerate(urls)
            if apprise.Apprise.instantiate(url.get()) is None]


# --- small helpers ------------------------------------------------------------------------------


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _load_json(value: str | None) -> dict[str, Any]:
    try:
        data = json.loads(value) if value else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}




def _short(text: str) -> str:
    from .text import terminal_safe

    text = " ".join(terminal_safe(str(text)).split())
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 1] + "…"


def _examples(lines: list[str], total: int) -> str:
    shown = [f"  {line}" for line in lines[:EXAMPLES]]
    if total > EXAMPLES:
        shown.append(f"  … and {total - EXAMPLES} more")
    return "\n".join(shown)


def _when(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")
