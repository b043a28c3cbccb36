"""`ecomsend demo`: the whole story on the sandbox, told step by step.

Each step runs the real ``ecomsend`` command in a subprocess against a
throwaway folder, and shows the command line, so what the operator sees is
exactly what they would type next.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

# The TikTok SKU the story links by hand: seller SKU STK-1 is the Shopify
# sticker pack STK-001 (leading zeros count, so auto-link rightly skips it).
HAND_LINK = ("STK-1", "STK-001")


def run_demo(out: Any, *, keep: bool = False) -> int:
    """Run the demo; returns the exit code (0 when every step behaved as the story expects)."""
    from .sandbox import Sandbox

    folder = Path(tempfile.mkdtemp(prefix="ecomsend-demo-"))
    started = time.monotonic()
    try:
        with Sandbox(folder, "demo") as box:
            config = box.write_config()
            out.info(f"Sandbox stores on 127.0.0.1 (Shopify {box.shopify.url}, TikTok {box.tiktok.url}); "
                     f"folder {folder}\n")

            # Children render as they would on this terminal (tables, not tab-separated text), but
            # draw no live progress bar: their output is shown after they end, and a bar's redraws
            # would be left on the screen as stale lines.
            env = {**os.environ, "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "0", "COLUMNS": str(out.err.width)} \
                if out.err.is_terminal else None

            def step(title: str, *args: str, expect: tuple[int, ...] = (0,), show: bool = True
                     ) -> subprocess.CompletedProcess:
                if show:
                    out.info(f"── {title}\n$ ecomsend {' '.join(args)}")
                result = subprocess.run(
                    [sys.executable, "-m", "ecomsend_cli", "--config", str(config), *args],
                    capture_output=True, text=True, timeout=120, env=None if not show else env,
                )
                text = (result.stdout + result.stderr).rstrip()
                if show and text:
                    out.relay(text + "\n")
                if result.returncode not in expect:
                    raise _StepFailed(f"`ecomsend {' '.join(args)}` exited {result.returncode}: "
                                      f"{result.stderr.strip()[-300:]}")
                return result

            first = step("1. Pull TikTok orders and create them in Shopify (some wait for links)",
                         "sync-orders", expect=(0, 3))
            step("2. Which TikTok SKUs block orders?", "list-unlinked")
            step("3. Link every SKU-equal pair (the popup, confirmed with --yes)", "autolink", "--yes")
            step(f"4. Link one SKU by hand: TikTok {HAND_LINK[0]} is Shopify {HAND_LINK[1]}",
                 "link", HAND_LINK[0], HAND_LINK[1])
            step("5. Sync again: the newly linked orders are created now", "sync-orders", expect=(0, 3))
            step("6. Where every order stands", "orders")
            orders = json.loads(step("", "orders", "--json", show=False).stdout)
            life = _second_act(out, box, step)
    except _StepFailed as exc:
        out.error(f"the demo stopped: {exc}; the output above says why")
        return 1
    finally:
        if keep:
            out.info(f"Kept {folder} (config: {folder / 'ecomsend.yaml'}).")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    count = Counter(o["state"] for o in orders)
    failed = [o for o in orders if o["state"] == "failed"]
    out.info("── What happened")
    out.info(
        f"{len(orders)} TikTok orders were pulled. The first sync created the orders whose SKUs were "
        f"already linked (the feed-published hoodie links itself) and blocked the rest"
        f"{'' if first.returncode == 3 else ' (none were blocked, unexpectedly)'}. Auto-link paired "
        f"the SKUs whose codes are equal (case, spaces and Unicode forms aside) and left the "
        f"ambiguous one alone; one SKU was linked by hand; the second sync created the orders "
        f"that had been waiting. Now: {count['synced']} synced, "
        f"{count['blocked']} blocked by SKUs with no variant, {count['failed']} failed"
        + (f" ({failed[0]['reason']})" if failed else "")
        + f", {count['waiting']} waiting (unpaid or on hold), {count['skipped']} skipped "
        f"({_skip_kinds(orders)})."
        f" Then the warehouse shipped two orders in Shopify, one in two parcels, and the next sync put "
        f"{life['packages']} package(s) with their tracking on TikTok ({life['tracking']}); the buyer's "
        f"cancellation of {life['cancelled']} on TikTok cancelled its Shopify order, and its "
        f"{life['restocked']} unit(s) went back into Shopify's stock."
        f" Took {time.monotonic() - started:.1f}s. `ecomsend verify-orders` compares every created order "
        f"with TikTok's money, to the cent."
    )
    out.info(
        "Try next:\n"
        "  ecomsend sandbox serve --dir /tmp/sb      # keep the sandbox running, then\n"
        "  ecomsend --config /tmp/sb/ecomsend.yaml autolink --dry-run\n"
        f"  ecomsend --config /tmp/sb/ecomsend.yaml link {_still_blocking(orders)}   # the searchable picker\n"
        "  ecomsend --config /tmp/sb/ecomsend.yaml sync-orders\n"
        "and for your own shops: `ecomsend init` connects them (see README, Connect your shops)."
    )
    return 0


# The second act's orders (DESIGN §6b): two seller-shipped orders waiting for shipment, one of
# them with two SKUs (shipped in two parcels), and one the buyer cancels before it ships.
SHIP_ONE, SHIP_SPLIT, CANCEL = "580000000000000001", "580000000000000002", "580000000000000013"


def _second_act(out: Any, box: Any, step: Any) -> dict:
    """Ship two orders in Shopify (one split), cancel one on TikTok, sync each time: the order's life."""
    shopify = {o["source_identifier"]: o for o in box.shopify.orders()}

    def place(order: str, sku: str) -> int:
        return next(i for i, x in enumerate(shopify[order]["lines"]) if x["sku"] == sku)

    out.info("── 7. Meanwhile in Shopify, the warehouse ships two orders (the second in two parcels)")
    shipments = [(SHIP_ONE, None, "9400111899223100000001", "USPS"),
                 (SHIP_SPLIT, [(place(SHIP_SPLIT, "TEE-BLK-S"), 2)], "9400111899223100000002", "USPS"),
                 (SHIP_SPLIT, [(place(SHIP_SPLIT, "TOTE-NAT"), 1)], "1Z999AA10123456784", "UPS")]
    for order, lines, number, company in shipments:
        box.shopify.fulfil(shopify[order]["number"], lines, tracking_number=number, company=company)
        out.info(f"   {shopify[order]['name']} (TikTok {order}): shipped {company} {number}")
    step("8. Sync: the tracking goes back to TikTok", "sync-orders", expect=(0, 3))
    tiktok_lines = [x for order in (SHIP_ONE, SHIP_SPLIT) for x in box.tiktok.order(order)["line_items"]]
    packages = {x["package_id"] for x in tiktok_lines if x.get("tracking_number")}
    tracking = ", ".join(sorted({x["tracking_number"] for x in tiktok_lines if x.get("tracking_number")}))
    before = {v["sku"]: v["inventory_quantity"] for v in box.shopify.inventory()}
    out.info(f"── 9. Meanwhile on TikTok, the buyer cancels order {CANCEL} before it ships")
    box.tiktok.cancel_order(CANCEL, initiator="BUYER")
    step("10. Sync: the cancellation reaches Shopify, its stock goes back", "sync-orders", expect=(0, 3))
    step("11. Each order's life after creation", "orders", "--state", "synced")
    after = {v["sku"]: v["inventory_quantity"] for v in box.shopify.inventory()}
    cancelled = next(o for o in box.shopify.orders() if o["source_identifier"] == CANCEL)
    if len(packages) != 3 or not cancelled["cancelled_at"]:
        raise _StepFailed(f"the second act did not end as told: {len(packages)} TikTok package(s), "
                          f"Shopify order cancelled: {bool(cancelled['cancelled_at'])}")
    return {"packages": len(packages), "tracking": tracking, "cancelled": cancelled["name"],
            "restocked": sum(after[k] - before[k] for k in after if after[k] > before[k])}


def _skip_kinds(orders: list[dict]) -> str:
    """Why the skipped orders were skipped, in a few words each (cancelled, fulfilled by TikTok, …)."""
    kinds = Counter(
        "cancelled" if "cancelled" in o["reason"] else "fulfilled by TikTok" if "FBT" in o["reason"]
        else "samples" if "sample" in o["reason"] else "other"
        for o in orders if o["state"] == "skipped")
    return ", ".join(f"{n} {kind}" for kind, n in kinds.items()) or "none"


class _StepFailed(Exception):
    pass


def _still_blocking(orders: list[dict]) -> str:
    """A TikTok SKU that still blocks an order after the demo, for the picker example."""
    missing = sorted(sku for o in orders if o["state"] == "blocked" for sku in o.get("missing_sku_ids") or ())
    return missing[0] if missing else HAND_LINK[0]
