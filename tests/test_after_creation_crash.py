"""Crash safety of sync-orders' writes after creation (DESIGN §6b, §5.4): tracking pushed to TikTok,
``orderCancel`` and ``refundCreate`` into Shopify, under SIGKILL at each checkpoint, lost answers
and kills at random moments among the writes.

As in ``test_sync_crash``, the simulators run in a process of their own and outlive every killed
run; each test reruns ``sync-orders`` until nothing is left open, then checks the simulators' own
records: each Shopify fulfillment is one TikTok package holding exactly its lines with its
tracking, sent once; each cancellation and each refund made once in Shopify; stock back exactly
by the units cancelled or returned.
"""

from __future__ import annotations

import fcntl
import json
import random
import shutil
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import python_cmd
from tests.test_after_creation import line, oid
from tests.test_sync_crash import Remote, prepare, run

pytestmark = pytest.mark.slow

WAIT = 2  # sync.reconcile_wait_seconds of these tests






def prepare_once(folder: Path) -> Path:
    """The demo's orders linked and created in Shopify, the simulators stopped: a folder to copy."""
    done = folder / "sb" / "ready"
    if not done.exists():
        remote = Remote(folder / "sb")
        try:
            config, _ = prepare(remote, folder)
            assert run(config, "sync-orders").returncode in (0, 3)
        finally:
            remote.close()
        done.touch()
    return folder / "sb"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, worker_id) -> Path:
    """:func:`prepare_once` for this pytest session: the xdist workers share one, built under a lock."""
    base = tmp_path_factory.getbasetemp()
    folder = (base if worker_id == "master" else base.parent) / "after-creation-crash"
    folder.mkdir(exist_ok=True)
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return prepare_once(folder)


@pytest.fixture
def life(prepared, tmp_path):
    """A copy of the prepared sandbox served in its own process; ``.config_path`` uses it."""
    shutil.copytree(prepared, tmp_path / "sb", ignore=shutil.ignore_patterns("ready"))
    remote = Remote(tmp_path / "sb")
    # The wait before an unconfirmed order, push or reference is looked up: short, as the
    # simulators answer what is in flight within milliseconds.
    remote.config_path = remote.write_config(tmp_path / "c.yaml", reconcile_wait_seconds=WAIT, concurrency=4)
    yield remote
    remote.close()


# --- what happens to the orders, and what the simulators must show for it -----------------------


@dataclass
class Story:
    """What was done in Shopify and on TikTok, so what must be true once sync-orders settles."""

    remote: Remote
    shipments: list[tuple[str, list[str], str | None]] = field(default_factory=list)  # tracking, lines, package
    cancelled: list[int] = field(default_factory=list)
    refunds: Counter = field(default_factory=Counter)  # (order, SKU, restock type, amount)
    stock_back: Counter = field(default_factory=Counter)  # SKU -> units

    def shopify_order(self, number: int) -> dict:
        return next(o for o in self.remote.shopify_orders() if o["source_identifier"] == oid(number))

    def fulfil(self, number: int, tracking: str, indexes: list[int], lines: list[tuple[str, int]] | None = None,
               package: str | None = None) -> None:
        """The merchant ships ``lines`` (SKU, units; None: all) of the Shopify order of TikTok order
        ``number``: TikTok line items ``indexes`` must then ship in one package (``package`` when
        TikTok had already put them in one)."""
        order = self.shopify_order(number)
        body: dict = {"tracking_number": tracking, "company": "USPS"}
        if lines is not None:
            body["lines"] = [{"line": next(i for i, x in enumerate(order["lines"]) if x["sku"] == sku),
                              "quantity": units} for sku, units in lines]
        self.remote.shopify.post(f"/_sandbox/orders/{order['number']}/fulfil", json=body).raise_for_status()
        self.shipments.append((tracking, [line(number, i) for i in indexes], package))

    def cancel(self, number: int) -> None:
        """The buyer cancels a whole order on TikTok: Shopify's order is cancelled, its units restocked."""
        self.stock_back.update({x["sku"]: x["quantity"] for x in self.shopify_order(number)["lines"]})
        self.remote.tiktok.post(f"/_sandbox/orders/{oid(number)}/cancel",
                                json={"initiator": "BUYER"}).raise_for_status()
        self.cancelled.append(number)

    def cancel_line(self, number: int, index: int, sku: str) -> None:
        """The seller cancels one line on TikTok: one Shopify refund of it, restocked (CANCEL)."""
        record = self.remote.tiktok.post(f"/_sandbox/orders/{oid(number)}/line_items/{line(number, index)}/cancel",
                                         json={"initiator": "SELLER"})
        self._refunded(number, sku, "CANCEL", record.raise_for_status().json())

    def return_line(self, number: int, index: int, sku: str) -> None:
        """A shipped line comes back and TikTok refunds it: one Shopify refund, restocked (RETURN)."""
        record = self.remote.tiktok.post(f"/_sandbox/orders/{oid(number)}/returns",
                                         json={"line_item_ids": [line(number, index)],
                                               "return_type": "RETURN_AND_REFUND"})
        self._refunded(number, sku, "RETURN", record.raise_for_status().json())

    def _refunded(self, number: int, sku: str, restock: str, record: dict) -> None:
        self.refunds[(oid(number), sku, restock, Decimal(record["refund_amount"]["refund_total"]))] += 1
        self.stock_back[sku] += 1


def open_work(store: Path) -> dict[str, int]:
    """What the store still has to do or to confirm (all zero: settled)."""
    with sqlite3.connect(store) as db:
        return {
            "orders": db.execute("SELECT count(*) FROM orders WHERE state IN ('creating', 'pending')").fetchone()[0],
            "references": db.execute("SELECT count(*) FROM orders WHERE reference_state IN "
                                     "('pending', 'sending', 'failed')").fetchone()[0],
            "shipments": db.execute("SELECT count(*) FROM shipments WHERE state <> 'pushed'").fetchone()[0],
            "aftersales": db.execute("SELECT count(*) FROM aftersales WHERE state IN "
                                     "('pending', 'sending', 'requested', 'failed')").fetchone()[0],
        }


def run_until_settled(remote: Remote, rounds: int = 12, pause: float = 0.5) -> None:
    """Run sync-orders until nothing is left open; runs ``pause`` apart, so what a killed run left
    unconfirmed is read back once its wait has passed."""
    for _ in range(rounds):
        out = run(remote.config_path, "sync-orders")
        assert out.returncode in (0, 3), out.stderr
        left = open_work(remote.store)
        if not any(left.values()):
            with sqlite3.connect(remote.store) as db:
                assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            return
        time.sleep(pause)
    with sqlite3.connect(remote.store) as db:
        rows = db.execute("SELECT fulfillment_id, state, reason FROM shipments WHERE state <> 'pushed' "
                          "UNION ALL SELECT key, state, reason FROM aftersales WHERE state NOT IN "
                          "('done', 'reported')").fetchall()
    raise AssertionError(f"sync-orders never settled: {left} {rows}")


def assert_exactly_once(story: Story, stock_before: dict[str, int]) -> None:
    remote = story.remote
    # TikTok: each fulfillment one package of exactly its lines, with its tracking ...
    packages = set()
    for tracking, lines, known in story.shipments:
        served = {x["id"]: x for x in remote.tiktok_order(lines[0][:18])["line_items"]}
        (package_id,) = {served[x]["package_id"] for x in lines}
        assert package_id and package_id not in packages and package_id == (known or package_id), tracking
        packages.add(package_id)
        package = remote.tiktok.get(f"/_sandbox/packages/{package_id}").json()
        assert sorted(package["line_item_ids"]) == sorted(lines), tracking
        assert package["tracking_number"] == tracking
        assert {served[x]["tracking_number"] for x in lines} == {tracking}
    # ... sent once: a push whose outcome was unknown was read back from TikTok, never sent again.
    sent = Counter(e["path"].split("/")[4] for op in ("packages.create", "packages.ship")
                   for e in remote.tiktok_ops(op))  # the TikTok order's id, or Ship Package's package id
    assert sent == Counter(known or lines[0][:18] for _, lines, known in story.shipments), sent
    # Shopify: each cancelled order cancelled by one orderCancel (its lookup prevents another) ...
    orders = {o["source_identifier"]: o for o in remote.shopify_orders()}
    assert len(remote.shopify_ops("orderCancel")) == len(story.cancelled)
    for number in story.cancelled:
        assert orders[oid(number)]["cancelled_at"] and len(orders[oid(number)]["refunds"]) == 1
    # ... each TikTok refund one Shopify refund of TikTok's amount, of its line, restocked as it says ...
    refunds = Counter()
    for key, order in orders.items():
        if key in map(oid, story.cancelled):
            continue  # its one refund is the cancellation's
        skus = {x["id"]: x["sku"] for x in order["lines"]}
        for refund in order["refunds"]:
            assert len(refund["lines"]) == 1 and refund["lines"][0]["quantity"] == 1, refund
            refunds[(key, skus[refund["lines"][0]["line_id"]], refund["lines"][0]["restock_type"],
                     Decimal(refund["amount"]))] += 1
    assert refunds == story.refunds
    assert sorted(k for k, o in orders.items() if o["cancelled_at"]) == sorted(map(oid, story.cancelled))
    # ... and stock back exactly by the units cancelled or returned, once.
    after = remote.inventory()
    sku = {v["variant_id"]: v["sku"] for v in remote.shopify.get("/_sandbox/inventory").json()["variants"]}
    assert Counter({sku[v]: after[v] - stock_before[v] for v in after if after[v] != stock_before[v]}) == \
        story.stock_back


# --- SIGKILL at each named point -----------------------------------------------------------------


def killed_at(remote: Remote, point: str) -> None:
    out = run(remote.config_path, "sync-orders", env={"ECOMSEND_TEST_CRASH_AT": point})
    assert out.returncode == -signal.SIGKILL, (point, out.returncode, out.stderr)


def kill_at(remote: Remote, point: str) -> None:
    """:func:`killed_at`, then :func:`settle`: for the writes into Shopify."""
    killed_at(remote, point)
    settle(remote)


def settle(remote: Remote, quiet: float = 0.25, limit: float = 5.0) -> None:
    """Wait until the simulators have answered what the killed run had in flight (they log a
    request when they answer it): an orderCancel or refundCreate sent just before the kill is
    still handled by Shopify, and the next run comes later (cron: minutes). An immediate re-run
    can read the order before Shopify has handled it and send it again: harmless there (Shopify
    answers "already canceled"; the refund's idempotency key), but counted by these tests.
    Pushes and references to TikTok need no such help: one left unconfirmed is read back only
    once the wait has passed (sync.reconcile_wait_seconds; tests/test_unconfirmed_wait.py)."""
    def answered() -> int:
        return (len(remote.tiktok.get("/_sandbox/requests").json()["requests"])
                + len(remote.shopify.get("/_sandbox/requests").json()["requests"]))

    end, last = time.monotonic() + limit, answered()
    while time.monotonic() < end:
        time.sleep(quiet)
        now = answered()
        if now == last:
            return
        last = now


def ship_four(story: Story) -> None:
    """Pushed in this order: 01, 02A, 02B (Mark Package As Shipped), 30 (Ship Package)."""
    story.fulfil(1, "CRASH-01", [1])
    story.fulfil(2, "CRASH-02A", [1, 2], [("TEE-BLK-S", 2)])
    story.fulfil(2, "CRASH-02B", [3], [("TOTE-NAT", 1)])
    story.fulfil(30, "CRASH-30", [1, 2, 3], package="1152000000000003001")


def test_sigkill_around_each_push_to_tiktok(life):
    story, before = Story(life), life.inventory()
    new_order = f"57{0:016d}"
    life.add_orders(oid(1), 1, 0)  # a new order: its TikTok reference is written in this run
    references = len(life.tiktok_ops("external_orders.add"))
    killed_at(life, "reference_sent")
    # A run claims its pushes (before_push each), sends them side by side, then records each
    # answer (after_push each); a kill leaves claimed pushes (some perhaps still in flight), which a
    # later run reads back first, once the wait has passed: the runs below come after it (cron's
    # next run comes minutes later). A run at once leaves them alone: tests/test_unconfirmed_wait.py.
    story.fulfil(1, "CRASH-01", [1])
    story.fulfil(2, "CRASH-02A", [1, 2], [("TEE-BLK-S", 2)])
    killed_at(life, "before_push:1")  # 01 claimed, nothing sent
    time.sleep(WAIT)
    killed_at(life, "after_push:1")  # 01 not shipped on TikTok: claimed again; 01, 02A sent, 01 not recorded
    time.sleep(WAIT)
    story.fulfil(2, "CRASH-02B", [3], [("TOTE-NAT", 1)])
    story.fulfil(30, "CRASH-30", [1, 2, 3], package="1152000000000003001")
    killed_at(life, "before_push:2")  # 01, 02A read back as shipped; 02B and 30 (Ship Package) claimed, not sent
    time.sleep(WAIT)
    killed_at(life, "after_push:2")  # both sent; 02B recorded, 30's package shipped but not recorded
    run_until_settled(life)
    story.stock_back["TEE-BLK-M"] -= 1  # the new order took one
    assert_exactly_once(story, before)
    assert len(life.tiktok_ops("external_orders.add")) == references + 1
    (reference,) = life.tiktok.get(f"/_sandbox/orders/{new_order}/external_orders").json()["external_orders"]
    created = [o for o in life.shopify_orders() if o["source_identifier"] == new_order]
    assert len(created) == 1 and reference["id"] == created[0]["id"].rsplit("/", 1)[-1]


def test_sigkill_around_each_cancel_and_refund_in_shopify(life):
    story, before = Story(life), life.inventory()
    story.cancel(20)
    story.cancel(34)
    kill_at(life, "before_cancel:1")  # 20 claimed, not sent
    kill_at(life, "after_cancel:2")  # 20 not cancelled in Shopify: sent; 34 sent, not recorded
    story.cancel_line(27, 1, "MUG-11OZ")  # one unit of a Shopify line of two: a second refund would pass
    story.return_line(26, 1, "AB-100")  # the same
    kill_at(life, "before_refund:1")  # 34 found cancelled; the first refund claimed, not sent
    kill_at(life, "after_refund:2")  # the first sent; the second made, not recorded
    run_until_settled(life)
    assert_exactly_once(story, before)
    # The second refund, made but not recorded, is found in the order's refunds by its key: not sent again.
    assert len(life.shopify_ops("refundCreate")) == 2


# --- lost answers --------------------------------------------------------------------------------


def test_lost_answers_are_read_back_before_anything_is_sent_again(life):
    story, before = Story(life), life.inventory()
    ship_four(story)
    story.cancel(20)
    story.cancel(34)
    story.cancel_line(27, 1, "MUG-11OZ")  # one unit of a Shopify line of two: a second refund would pass
    story.return_line(26, 1, "AB-100")  # the same
    # Each write is done, then the connection closes without an answer.
    life.tiktok_faults(fail_next=[{"op": "packages.create", "kind": "lost_response", "count": 2},
                                  {"op": "packages.ship", "kind": "lost_response"}])
    life.faults(fail_next=[{"op": "orderCancel", "kind": "lost_response"},
                           {"op": "refundCreate", "kind": "lost_response", "count": 2}])
    first = run(life.config_path, "sync-orders", "--json")
    assert first.returncode in (0, 3), first.stderr
    report = json.loads(first.stdout)
    assert (report["tracking"]["pushed"], report["tracking"]["unconfirmed"]) == (1, 3), report["tracking"]
    assert (report["aftersales"]["cancelled"], report["aftersales"]["unconfirmed"]) == (1, 3), \
        report["aftersales"]
    run_until_settled(life)
    assert_exactly_once(story, before)
    # Each refund whose answer was lost is found in the order's refunds by its key: never sent again.
    assert len(life.shopify_ops("refundCreate")) == 2


# --- random kills --------------------------------------------------------------------------------


TRACKING, AFTERSALES = ("packages.create", "packages.ship"), ("orderCancel", "refundCreate")
ROUNDS = [  # what happens before each killed run; the writes its kill waits for (it has two or more)
    (lambda s: (ship_four(s), s.cancel(20)), (TRACKING,)),
    (lambda s: (s.fulfil(13, "RND-13", [1, 2, 3, 4]), s.fulfil(17, "RND-17", [1, 2]), s.cancel(34),
                s.cancel_line(27, 3, "TOTE-NAT")), (TRACKING, AFTERSALES)),
    (lambda s: (s.fulfil(22, "RND-22A", [1, 2, 3], [("TOTE-NAT", 3)]), s.fulfil(22, "RND-22B", [4, 5]),
                s.cancel(36), s.cancel_line(25, 2, "MUG-11OZ"), s.return_line(6, 2, "MUG-11OZ")),
     (TRACKING, AFTERSALES)),
    (lambda s: (s.return_line(26, 1, "AB-100"), s.return_line(21, 2, "TEE-BLK-S"), s.fulfil(28, "RND-28", [1, 2])),
     (AFTERSALES,)),
]


def served(remote: Remote, ops: tuple[str, ...]) -> int:
    return sum(len(remote.tiktok_ops(op) if op in TRACKING else remote.shopify_ops(op)) for op in ops)


def test_random_sigkills_among_pushes_cancels_and_refunds(life):
    """Each run is killed at a random moment after the first of its pushes, or of its cancels and
    refunds, is served: in the middle of a write (sent, so done, but never answered) or between two."""
    story, before = Story(life), life.inventory()
    # Slow writes: once one is served, the next takes a while, so the kill usually comes before the end.
    slow = [{"op": op, "kind": "latency", "latency_ms": 150, "count": 50} for op in (*TRACKING, *AFTERSALES)]
    life.tiktok_faults(fail_next=slow[:2])
    life.faults(fail_next=slow[2:])
    rnd = random.Random(611)
    for happen, groups in ROUNDS:
        happen(story)
        ops = rnd.choice(groups)
        seen = served(life, ops)
        proc = subprocess.Popen(python_cmd("--config", str(life.config_path), "sync-orders"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while served(life, ops) == seen and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rnd.uniform(0, 0.15))
        proc.kill()
        assert proc.wait() in (-signal.SIGKILL, 0, 3)  # a run may have finished first
    life.tiktok_faults(reset=True)
    life.faults(reset=True)
    run_until_settled(life)
    assert_exactly_once(story, before)
