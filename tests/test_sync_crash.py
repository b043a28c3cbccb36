"""Crash safety of sync-orders (DESIGN §5.4): SIGKILL at every step, lost answers, index lag.

The simulators run in a process of their own (``ecomsend sandbox serve``), so
they outlive every killed ``sync-orders``; the test then reruns until a run
finishes and checks that every order exists exactly once in Shopify, that
inventory was deducted exactly once, and that the store is intact.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import python_cmd

pytestmark = pytest.mark.slow


class Remote:
    """The sandbox in its own process, driven over its control endpoints."""

    def __init__(self, folder: Path) -> None:
        self.proc = subprocess.Popen(python_cmd("sandbox", "serve", "--dir", str(folder), "--seed", "demo"),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(self.proc.stderr.read())
            lines.append(line)
            if line.startswith("  shop_cipher"):
                break
        # Ready: the whole config (with the demo's exchange rates) is in the folder.
        self.config = yaml.safe_load((folder / "ecomsend.yaml").read_text())
        self.shopify = httpx.Client(base_url=self.config["shopify"]["shop"], timeout=30)
        self.tiktok = httpx.Client(base_url=self.config["tiktok"]["api_base_url"], timeout=30)
        self.store = Path(self.config["store"])

    def write_config(self, path: Path, **sync) -> Path:
        data = json.loads(json.dumps(self.config))
        data["sync"] = {**(data.get("sync") or {}), **sync}  # the sandbox's own keys stay (rates...)
        path.write_text(yaml.safe_dump(data))
        os.chmod(path, 0o600)
        return path

    def shopify_orders(self) -> list[dict]:
        return self.shopify.get("/_sandbox/orders").json()["orders"]

    def inventory(self) -> dict[str, int]:
        variants = self.shopify.get("/_sandbox/inventory").json()["variants"]
        return {v["variant_id"]: v["inventory_quantity"] for v in variants}

    def add_orders(self, template_id: str, count: int, start: int) -> None:
        base = self.tiktok.get(f"/_sandbox/orders/{template_id}").json()
        orders = []
        for i in range(count):
            order = json.loads(json.dumps(base))
            order["id"] = f"57{start + i:016d}"
            order["update_time"] = int(time.time())
            for n, line in enumerate(order["line_items"]):
                line["id"] = f"{order['id']}{n}"
            orders.append(order)
        self.tiktok.post("/_sandbox/orders", json={"orders": orders}).raise_for_status()

    def faults(self, **faults) -> None:
        self.shopify.post("/_sandbox/faults", json=faults).raise_for_status()

    def tiktok_faults(self, **faults) -> None:
        self.tiktok.post("/_sandbox/faults", json=faults).raise_for_status()

    def shopify_ops(self, op: str) -> list[dict]:
        return self.shopify.get("/_sandbox/requests", params={"op": op}).json()["requests"]

    def tiktok_ops(self, op: str) -> list[dict]:
        return self.tiktok.get("/_sandbox/requests", params={"op": op}).json()["requests"]

    def tiktok_order(self, order_id: str) -> dict:
        return self.tiktok.get(f"/_sandbox/orders/{order_id}").json()

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)


@pytest.fixture
def remote(tmp_path):
    r = Remote(tmp_path / "sb")
    yield r
    r.close()


def run(config: Path, *args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(python_cmd("--config", str(config), *args), capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def run_until_done(config: Path, store: Path, *, wait: float = 0.3, rounds: int = 60) -> None:
    for _ in range(rounds):
        out = run(config, "sync-orders", "--json")
        assert out.returncode in (0, 3), out.stderr
        with sqlite3.connect(store) as db:
            open_states = db.execute(
                "SELECT count(*) FROM orders WHERE state IN ('creating', 'pending')").fetchone()[0]
        if open_states == 0:
            return
        time.sleep(wait)
    raise AssertionError("sync-orders never finished")


def assert_exactly_once(remote: Remote, inventory_before: dict[str, int]) -> int:
    orders = remote.shopify_orders()
    counts = Counter(o["source_identifier"] for o in orders)
    assert counts and max(counts.values()) == 1, [k for k, v in counts.items() if v > 1]
    with sqlite3.connect(remote.store) as db:
        synced = {r[0] for r in db.execute("SELECT tiktok_order_id FROM orders WHERE state = 'synced'")}
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert synced == set(counts)
    taken = Counter()
    for o in orders:
        for line in o["lines"]:
            taken[line["variant_id"]] += line["quantity"]
    after = remote.inventory()
    for variant_id, qty in taken.items():
        assert inventory_before[variant_id] - after[variant_id] == qty, variant_id
    return len(counts)


def prepare(remote: Remote, tmp_path: Path, **sync) -> tuple[Path, dict[str, int]]:
    config = remote.write_config(tmp_path / "c.yaml", **{"reconcile_wait_seconds": 4, "concurrency": 4, **sync})
    inventory = remote.inventory()
    assert run(config, "sync-orders").returncode == 3
    assert run(config, "autolink", "--yes").returncode == 0
    assert run(config, "link", "STK-1", "STK-001").returncode == 0
    return config, inventory


def test_sigkill_at_every_step_and_at_random_moments(remote, tmp_path):
    config, inventory = prepare(remote, tmp_path)
    serial = 0
    for step in ("before_mark", "after_mark", "after_answer", "before_commit"):
        out = run(config, "sync-orders", env={"ECOMSEND_TEST_CRASH_AT": f"{step}:2"})
        assert out.returncode == -signal.SIGKILL, (step, out.stderr)
        remote.add_orders("580000000000000001", 3, serial)
        serial += 3
    # After the call was sent: Shopify is slow to answer, we die while it works.
    remote.faults(fail_next=[{"op": "orderCreate", "kind": "latency", "latency_ms": 800}])
    proc = subprocess.Popen(python_cmd("--config", str(config), "sync-orders"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with sqlite3.connect(remote.store) as db:
            if db.execute("SELECT count(*) FROM orders WHERE state = 'creating'").fetchone()[0]:
                break
        time.sleep(0.02)
    time.sleep(0.3)
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    # Random moments.
    rnd = random.Random(1234)
    for _ in range(3):
        remote.add_orders("580000000000000002", 4, serial)
        serial += 4
        proc = subprocess.Popen(python_cmd("--config", str(config), "sync-orders"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.2, 0.9))
        proc.kill()
        proc.wait()
    run_until_done(config, remote.store)  # reruns wait while the slow orderCreate above lands
    created = assert_exactly_once(remote, inventory)
    assert created >= 26


def test_lost_responses_under_search_index_lag(remote, tmp_path):
    config, inventory = prepare(remote, tmp_path)
    remote.add_orders("580000000000000001", 10, 500)
    remote.faults(index_lag_seconds=3, lost_response_rate=0.4, seed=7)
    first = run(config, "sync-orders", "--json")
    report = json.loads(first.stdout)
    assert report["unconfirmed"] >= 2  # answers were lost; those orders wait, they are not resent
    remote.faults(lost_response_rate=0.0)
    run_until_done(config, remote.store, wait=0.5)
    created = assert_exactly_once(remote, inventory)
    assert created >= 25


# --- issue 9: other names for the store, strange answers, clock steps, a lost store ----------------


def store_config(remote: Remote, tmp_path: Path, store: Path, name: str, **sync) -> Path:
    data = json.loads(json.dumps(remote.config))
    data["store"] = str(store)
    data["sync"] = {**(data.get("sync") or {}), "reconcile_wait_seconds": 4, "concurrency": 4, **sync}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    os.chmod(path, 0o600)
    return path


def wait_until_stopped(proc: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until ``proc`` has stopped itself (SIGSTOP at an ``ECOMSEND_TEST_CRASH_AT=…:stop`` point)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status = os.waitpid(proc.pid, os.WUNTRACED | os.WNOHANG)
        if pid:
            assert os.WIFSTOPPED(status), f"the run ended before its pause point (wait status {status})"
            return
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("the run never reached its pause point")


def test_runs_through_a_symlink_and_a_hard_link_during_a_run(remote, tmp_path):
    config, inventory = prepare(remote, tmp_path)
    symlink, hardlink = tmp_path / "via-symlink.db", tmp_path / "via-hardlink.db"
    os.symlink(remote.store, symlink)
    os.link(remote.store, hardlink)
    remote.add_orders("580000000000000001", 6, 700)
    # The first run stops itself right after claiming its first order, lock held, until told to go on:
    # the other names meet it mid-run however slow or fast the machine is.
    first = subprocess.Popen(python_cmd("--config", str(config), "sync-orders"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "ECOMSEND_TEST_CRASH_AT": "after_mark:1:stop"})
    wait_until_stopped(first)
    with sqlite3.connect(remote.store) as db:
        assert db.execute("SELECT count(*) FROM orders WHERE state = 'creating'").fetchone()[0] == 1
    for other in (symlink, hardlink):
        out = run(config, "--store", str(other), "sync-orders")
        assert out.returncode == 75, (other, out.stderr)
    first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=120) in (0, 3), first.stderr.read()
    run_until_done(config, remote.store)
    assert assert_exactly_once(remote, inventory) >= 20


STRANGE = [  # (status, body) answered instead of Shopify's real answer to orderCreate
    (200, "<html><body>Bad gateway</body></html>"),
    (200, {"data": None}),
    (200, {"data": {"orderCreate": None}}),
    (200, {"errors": [{"message": "Something went wrong"}]}),
    (200, {"errors": "Internal error"}),
    (200, {"data": {"orderCreate": {"order": None, "userErrors": []}}}),
    (200, {"data": {"orderCreate": {"order": None, "userErrors": "oops"}}}),
    (400, {"errors": "Bad Request"}),
    (408, "Request Timeout"),
    (409, {"errors": "Conflict"}),
    (502, "<html>Bad Gateway</html>"),
]


def test_strange_answers_after_and_instead_of_the_write(remote, tmp_path):
    """Each strange answer twice: once after Shopify created the order, once with nothing done."""
    config, inventory = prepare(remote, tmp_path)
    remote.add_orders("580000000000000001", 2 * len(STRANGE), 800)
    plan = []
    for status, body in STRANGE:
        for handled in (True, False):
            plan.append({"op": "orderCreate", "kind": "answer", "status": status, "body": body,
                         "handled": handled})
    remote.faults(index_lag_seconds=2, fail_next=plan)
    report = json.loads(run(config, "sync-orders", "--json").stdout)
    failed = [o["reason"] for o in report["orders"] if o["state"] == "failed"]
    assert len(failed) <= 1, failed  # only the socks Shopify refuses for stock (a real userError)
    assert report["unconfirmed"] >= len(STRANGE)  # never "failed", never re-sent blind
    remote.faults(index_lag_seconds=0)
    run_until_done(config, remote.store, wait=1.0)
    assert assert_exactly_once(remote, inventory) >= 2 * len(STRANGE)


def test_a_forward_clock_step_between_runs(remote, tmp_path):
    config, inventory = prepare(remote, tmp_path, reconcile_wait_seconds=8)
    remote.add_orders("580000000000000001", 8, 900)
    remote.faults(index_lag_seconds=6, lost_response_rate=0.5, seed=11)
    shim = [sys.executable, "-m", "tests.clockstep"]
    slow = subprocess.run([*shim, "-240", "--config", str(config), "sync-orders"], capture_output=True, text=True,
                          timeout=120)
    assert slow.returncode in (0, 3), slow.stderr
    remote.faults(lost_response_rate=0.0)
    for _ in range(2):  # NTP put the clock right: 240 s passed on the wall clock in a moment
        out = run(config, "sync-orders")
        assert out.returncode in (0, 3), out.stderr
        counts = Counter(o["source_identifier"] for o in remote.shopify_orders())
        assert max(counts.values()) == 1
    remote.faults(index_lag_seconds=0)
    run_until_done(config, remote.store)
    assert assert_exactly_once(remote, inventory) >= 20


def test_a_fresh_store_against_a_shop_that_holds_the_orders(remote, tmp_path):
    config, inventory = prepare(remote, tmp_path)
    remote.add_orders("580000000000000001", 30, 1000)
    run_until_done(config, remote.store)
    created = assert_exactly_once(remote, inventory)
    fresh = tmp_path / "fresh" / "store.db"
    fresh.parent.mkdir()
    config_fresh = store_config(remote, tmp_path, fresh, "fresh.yaml")
    assert run(config_fresh, "sync-orders").returncode == 3  # everything blocks: no links yet
    assert run(config_fresh, "autolink", "--yes").returncode == 0
    assert run(config_fresh, "link", "STK-1", "STK-001").returncode == 0
    before = len(remote.shopify.get("/_sandbox/requests", params={"op": "orders"}).json()["requests"])
    report = json.loads(run(config_fresh, "sync-orders", "--json").stdout)
    searches = len(remote.shopify.get("/_sandbox/requests", params={"op": "orders"}).json()["requests"]) - before
    # The two feed-linked orders were adopted by the first run already; none was created.
    assert report["created"] == 0 and report["adopted"] == created - 2
    assert len(remote.shopify_orders()) == created
    assert searches <= (created // 50) + 2  # batched, not one search per order
    counts = Counter(o["source_identifier"] for o in remote.shopify_orders())
    assert max(counts.values()) == 1
