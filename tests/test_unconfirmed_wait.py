"""An unconfirmed push or reference waits before it is read back from TikTok (DESIGN §6b.1, §6b.2,
with the wait of §5.4).

A run killed while a push is in flight leaves it unconfirmed; TikTok handles the request a
moment later. A run started at once would read the TikTok order before that, see nothing
shipped, and push a second time. So an unconfirmed push (or reference) is read back only once
``sync.reconcile_wait_seconds`` have passed since it was sent, by the boot clock (a wall-clock
step moves it neither way); until then it is neither read back nor sent again.

The real CLI (a subprocess, as cron runs it) against both simulators on 127.0.0.1. TikTok
answers late: the simulator takes a request's one-shot ``latency`` fault when the request
arrives and sleeps before handling it, so an empty fault queue means "received, not handled
yet": the run is killed exactly then.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from ecomsend_cli.store import Store
from tests.conftest import python_cmd
from tests.test_after_creation import line, oid, sync

pytestmark = pytest.mark.slow

LATE_MS = 5000  # TikTok handles the late request this long after it arrives ...
WAIT = 7  # ... within sync.reconcile_wait_seconds, as the wait assumes
NEW = "5700000000000000001"  # an order added to TikTok in a test: created, then referenced


def set_wait(sandbox, seconds: float) -> None:
    config = yaml.safe_load(sandbox.config_file.read_text())
    config.setdefault("sync", {})["reconcile_wait_seconds"] = seconds
    sandbox.config_file.write_text(yaml.safe_dump(config))


def add_new_order(sandbox) -> None:
    """A TikTok order like order 1 (its SKUs linked): the next run creates it, then references it."""
    order = json.loads(json.dumps(sandbox.tiktok.order(oid(1))))
    order.update(id=NEW, update_time=int(time.time()))
    for n, item in enumerate(order["line_items"]):
        item["id"] = f"{NEW}{n}"
    sandbox.tiktok.add_orders([order])


def run(sandbox, *args: str, clock_step: int | None = None) -> dict:
    """One ``sync-orders --json`` as cron runs it; ``clock_step``: the wall clock moved that many seconds."""
    cmd = [sys.executable, "-m", "tests.clockstep", str(clock_step)] if clock_step is not None else python_cmd()
    out = subprocess.run([*cmd, "--config", str(sandbox.config_file), "sync-orders", "--json", *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode in (0, 3), out.stderr
    return json.loads(out.stdout)


def killed_in_flight(sandbox, *args: str) -> float:
    """Run sync-orders and SIGKILL it while TikTok holds its late request (received, not handled);
    returns when, by ``time.monotonic``."""
    proc = subprocess.Popen(python_cmd("--config", str(sandbox.config_file), "sync-orders", *args),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while sandbox.tiktok.faults.snapshot()["fail_next"]:
        assert proc.poll() is None, f"the run ended before its request reached TikTok: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "the late request never reached TikTok"
        time.sleep(0.01)
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    proc.stderr.close()
    return time.monotonic()


def answered(sandbox, op: str, count: int) -> None:
    """Wait until TikTok has answered ``count`` requests of ``op`` (the simulator logs a request
    when it answers it): the late one is handled."""
    deadline = time.monotonic() + 30
    while len(sandbox.tiktok.ops(op)) < count:
        assert time.monotonic() < deadline, f"TikTok never answered {op}"
        time.sleep(0.05)


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def calls(sandbox, *ops: str) -> int:
    return sum(len(sandbox.tiktok.ops(op)) for op in ops)


def of(report: dict, order_id: str) -> list[dict]:
    return [o for o in report["tracking"]["outcomes"] if o["tiktok_order_id"] == order_id]


WAITING = r"sent to TikTok \d+ s ago, answer not seen; a later run checks it \(\d+ s of the \d+ s wait left\)"


def test_a_push_killed_in_flight_is_not_pushed_again_by_a_run_at_once(sandbox, sb_cli, synced):
    set_wait(sandbox, WAIT)
    sandbox.shopify.fulfil(synced[oid(1)]["number"], tracking_number="LATE-01", company="USPS")
    sandbox.tiktok.set_faults(fail_next=[{"op": "packages.create", "kind": "latency", "latency_ms": LATE_MS}])
    sent = killed_in_flight(sandbox, "--only", "tracking")
    # At once, before TikTok has handled the push: it is neither read back nor pushed again.
    reads = calls(sandbox, "orders.get")
    second = run(sandbox, "--only", "tracking")
    (waiting,) = of(second, oid(1))
    assert waiting["what"] == "unconfirmed" and re.fullmatch("tracking LATE-01 " + WAITING, waiting["detail"]), waiting
    assert second["tracking"]["unconfirmed"] == 1 and second["tracking"]["pushed"] == 0
    assert calls(sandbox, "orders.get") == reads  # TikTok not even asked: the wait has not passed
    # TikTok handles it; once the wait has passed, a run reads the order back: shipped, confirmed.
    answered(sandbox, "packages.create", 1)
    sleep_until(sent + WAIT)
    third = run(sandbox, "--only", "tracking")
    (confirmed,) = of(third, oid(1))
    assert confirmed["what"] == "pushed" and "confirmed on TikTok after an unclear answer" in confirmed["detail"]
    assert len(sandbox.tiktok.ops("packages.create")) == 1  # sent once, by the killed run
    shipped = sandbox.tiktok.order(oid(1))["line_items"]
    (package_id,) = {x["package_id"] for x in shipped}
    package = sandbox.tiktok.package(package_id)
    assert package["line_item_ids"] == [line(1, 1)] and package["tracking_number"] == "LATE-01"
    assert run(sandbox, "--only", "tracking")["tracking"]["unconfirmed"] == 0  # settled for good


def test_a_reference_killed_in_flight_is_added_once(sandbox, sb_cli, synced):
    set_wait(sandbox, WAIT)
    add_new_order(sandbox)
    adds = len(sandbox.tiktok.ops("external_orders.add"))
    sandbox.tiktok.set_faults(fail_next=[{"op": "external_orders.add", "kind": "latency", "latency_ms": LATE_MS}])
    sent = killed_in_flight(sandbox)  # creates the order in Shopify, then sends its reference
    created = [o for o in sandbox.shopify.orders() if o["source_identifier"] == NEW]
    assert len(created) == 1
    number = created[0]["id"].rsplit("/", 1)[-1]
    reads = calls(sandbox, "external_orders.get")
    second = run(sandbox)
    (waiting,) = of(second, NEW)
    assert waiting["what"] == "unconfirmed", waiting
    assert re.fullmatch(f"the reference to Shopify order {number} " + WAITING, waiting["detail"]), waiting
    assert calls(sandbox, "external_orders.get") == reads  # not asked yet
    answered(sandbox, "external_orders.add", adds + 1)
    sleep_until(sent + WAIT)
    third = run(sandbox)
    assert [o["what"] for o in of(third, NEW)] == ["referenced"]
    assert len(sandbox.tiktok.ops("external_orders.add")) == adds + 1  # the killed run's, only
    (reference,) = sandbox.tiktok.external_orders_of(NEW)
    assert reference["id"] == number
    assert of(run(sandbox), NEW) == []  # done: nothing more to write or check


def answers_to_lose(sandbox, synced, tracking: str) -> int:
    """Order 1 shipped in Shopify as ``tracking`` and a new TikTok order: the next run pushes the one
    and references the other, both done on TikTok, both answers lost. Returns the references added
    so far."""
    add_new_order(sandbox)
    sandbox.shopify.fulfil(synced[oid(1)]["number"], tracking_number=tracking, company="USPS")
    sandbox.tiktok.set_faults(fail_next=[{"op": "packages.create", "kind": "lost_response"},
                                         {"op": "external_orders.add", "kind": "lost_response"}])
    return len(sandbox.tiktok.ops("external_orders.add"))


def assert_sent_once(sandbox, adds: int) -> None:
    assert len(sandbox.tiktok.ops("packages.create")) == 1
    assert len(sandbox.tiktok.ops("external_orders.add")) == adds + 1


def test_a_clock_step_neither_shortens_nor_lengthens_the_wait(sandbox, sb_cli, synced):
    wait = 5
    set_wait(sandbox, wait)
    adds = answers_to_lose(sandbox, synced, "STEP-01")
    first = run(sandbox)
    lost = time.monotonic()
    assert [o["what"] for o in of(first, oid(1)) + of(first, NEW)] == ["unconfirmed", "unconfirmed"]
    # NTP steps the wall clock four minutes forward: far past the wait by the wall clock, not by the boot clock.
    reads = calls(sandbox, "orders.get", "external_orders.get")
    ahead = run(sandbox, "--only", "tracking", clock_step=240)
    assert [o["what"] for o in of(ahead, oid(1)) + of(ahead, NEW)] == ["unconfirmed", "unconfirmed"], ahead
    assert calls(sandbox, "orders.get", "external_orders.get") == reads
    # Past the wait (a real sleep), with the wall clock stepped four minutes back: read back and confirmed.
    sleep_until(lost + wait)
    behind = run(sandbox, "--only", "tracking", clock_step=-240)
    assert [o["what"] for o in of(behind, oid(1)) + of(behind, NEW)] == ["pushed", "referenced"], behind
    assert_sent_once(sandbox, adds)


@pytest.mark.parametrize("stamp", ["older version", "another boot", "clock went back"])
def test_an_unconfirmed_send_stamped_under_another_boot_waits_again(sandbox, sb_cli, synced, stamp):
    from ecomsend_cli.sync import steady_clock

    wait = 4
    set_wait(sandbox, wait)
    adds = answers_to_lose(sandbox, synced, "BOOT-01")
    first = sync(sb_cli)
    assert [o["what"] for o in of(first, oid(1)) + of(first, NEW)] == ["unconfirmed", "unconfirmed"]
    boot, now = steady_clock()
    # As a store upgraded from a version that kept no stamp leaves them, or a push and a reference
    # sent before a reboot (an hour "ago" on that boot's clock, which this boot's cannot be compared with).
    # Or stamped an hour ahead of this run's clock: a wall clock (the fallback where the platform has
    # no boot clock) stepped back an hour since; waiting out that hour too would hold them for nothing.
    before = {"older version": (None, None), "another boot": ("another-boot-id", now - 3600),
              "clock went back": (boot, now + 3600)}[stamp]
    with Store.open(sandbox.store_path) as store:
        store.conn.execute("UPDATE shipments SET claim_boot = ?, claim_clock = ?", before)
        store.conn.execute("UPDATE orders SET reference_boot = ?, reference_clock = ? WHERE tiktok_order_id = ?",
                           (*before, NEW))
    reads = calls(sandbox, "orders.get", "external_orders.get")
    second = sync(sb_cli, "--only", "tracking")
    restamped = time.monotonic()
    again = (" sent to TikTok, answer not seen; the machine restarted or its clock went back since (or an "
             f"older ecomsend sent it), so the {wait} s wait starts again before a later run checks it")
    number = next(o for o in sandbox.shopify.orders() if o["source_identifier"] == NEW)["id"].rsplit("/", 1)[-1]
    assert [(o["what"], o["detail"]) for o in of(second, oid(1)) + of(second, NEW)] == [
        ("unconfirmed", "tracking BOOT-01" + again),
        ("unconfirmed", f"the reference to Shopify order {number}" + again)]
    assert calls(sandbox, "orders.get", "external_orders.get") == reads
    with Store.open(sandbox.store_path) as store:  # stamped on this boot's clock: the waits run from now
        stamps = store.conn.execute("SELECT claim_boot, claim_clock FROM shipments UNION ALL SELECT reference_boot, "
                                    "reference_clock FROM orders WHERE tiktok_order_id = ?", (NEW,)).fetchall()
    later = steady_clock()[1]
    assert [b for b, _ in stamps] == [boot, boot] and all(now <= c <= later for _, c in stamps), stamps
    said = sb_cli("sync-orders", "--only", "tracking")  # as the cron log shows it
    assert said.exit_code == 0 and "unconfirmed 2." in said.stderr, said.stderr
    assert "Unconfirmed (looked up on TikTok before anything is sent again):\n" in said.stderr
    for line_shown in (f"  {oid(1)}: tracking BOOT-01 ", f"  {NEW}: the reference to Shopify order {number} "):
        assert re.search(f"^{line_shown}{WAITING}$", said.stderr, re.MULTILINE), said.stderr
    sleep_until(restamped + wait)
    third = sync(sb_cli, "--only", "tracking")
    assert [o["what"] for o in of(third, oid(1)) + of(third, NEW)] == ["pushed", "referenced"]
    assert_sent_once(sandbox, adds)


def test_a_push_waits_from_when_it_was_sent_not_from_its_claim(sandbox, sb_cli, synced):
    # One worker: order 1's push goes first and TikTok takes longer than the wait to answer it; order
    # 2's push, claimed with it, leaves only then and the run is killed while TikTok holds it. Its wait
    # counts from when it left: a run at once neither reads it back nor pushes it again.
    wait, first_answer_ms, late_ms = 5, 7000, 2000
    set_wait(sandbox, wait)
    config = yaml.safe_load(sandbox.config_file.read_text())
    config["sync"]["concurrency"] = 1
    sandbox.config_file.write_text(yaml.safe_dump(config))
    for n in (1, 2):
        sandbox.shopify.fulfil(synced[oid(n)]["number"], tracking_number=f"GAP-0{n}", company="USPS")
    sandbox.tiktok.set_faults(fail_next=[
        {"op": "packages.create", "kind": "latency", "latency_ms": first_answer_ms},
        {"op": "packages.create", "kind": "latency", "latency_ms": late_ms}])
    sent = killed_in_flight(sandbox, "--only", "tracking")
    second = run(sandbox, "--only", "tracking")
    assert [o["what"] for o in of(second, oid(2))] == ["unconfirmed"], second["tracking"]
    answered(sandbox, "packages.create", 2)
    sleep_until(sent + wait)
    third = run(sandbox, "--only", "tracking")
    assert [o["what"] for o in of(third, oid(2))] == ["pushed"], third["tracking"]
    assert len(sandbox.tiktok.ops("packages.create")) == 2  # each sent once


def test_a_reference_whose_read_back_fails_is_read_back_again_not_sent_again(sandbox, sb_cli, synced):
    # The reference's answer is lost; when it is read back, TikTok's answer is garbled. Unsure still:
    # the next run reads it back again (and finds it), it does not write it blind a second time.
    set_wait(sandbox, 0)
    add_new_order(sandbox)
    adds = len(sandbox.tiktok.ops("external_orders.add"))
    sandbox.tiktok.set_faults(fail_next=[{"op": "external_orders.add", "kind": "lost_response"}])
    assert [o["what"] for o in of(sync(sb_cli), NEW)] == ["unconfirmed"]
    garbled = {"code": 0, "message": "Success", "request_id": "x", "data": {"external_orders": [{"id": 7}]}}
    sandbox.tiktok.set_faults(fail_next=[{"op": "external_orders.get", "kind": "answer", "handled": False,
                                          "body": garbled}])
    r = sb_cli("sync-orders", "--json")
    assert r.exit_code in (0, 3) and "Traceback" not in r.stderr, r.stderr
    with Store.open(sandbox.store_path) as store:
        assert store.life_states([NEW])[NEW][0] == "sending"
    assert [o["what"] for o in of(sync(sb_cli), NEW)] == ["referenced"]
    assert len(sandbox.tiktok.ops("external_orders.add")) == adds + 1  # the lost one, only
