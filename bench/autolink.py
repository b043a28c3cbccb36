"""Benchmark: `autolink --dry-run --json` and `list-unlinked --json` on a large store.

A synthetic store of 100,000 TikTok SKUs seen in orders and 250,000 Shopify
variants (2 % duplicate SKUs, 5 % empty, case and space variants), filled
through the store's own API. Each command runs as a real subprocess; the floor
is the same match done by one plain SQL join over the same normalised keys in
the `sqlite3` shell (or Python's sqlite3 where the shell is absent).
Prints wall time (best of N), the ratio to the floor and peak RSS.

    python bench/autolink.py [--skus 100000] [--variants 250000] [--runs 3] [--quick]
Targets: ratio <= 2.0, peak <= 300 MB. Last, one RESULT line for bench/run_all.py.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from results import emit, row  # noqa: E402  (bench/results.py)

from ecomsend_cli.models import OrderItem, PulledOrder, TikTokSku, Variant  # noqa: E402
from ecomsend_cli.store import Store  # noqa: E402

FLOOR_SQL = (
    "SELECT t.sku_id, t.seller_sku, group_concat(v.variant_id, ' ') FROM tiktok_skus t "
    "LEFT JOIN links l ON l.tiktok_sku_id = t.sku_id "
    "LEFT JOIN shopify_variants v ON v.sku_key = t.seller_sku_key "
    "WHERE l.tiktok_sku_id IS NULL GROUP BY t.sku_id;"
)


def build(path: Path, n_skus: int, n_variants: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    codes = [f"SKU-{i:07d}" for i in range(n_variants)]
    variants = []
    for i in range(n_variants):
        r = rnd.random()
        if r < 0.05:
            code = ""  # 5 % empty
        elif r < 0.07:
            code = codes[rnd.randrange(i + 1)]  # 2 % duplicates of another variant's SKU
        else:
            code = codes[i]
        variants.append(
            Variant(
                variant_id=f"gid://shopify/ProductVariant/{10_000_000 + i}",
                product_id=f"gid://shopify/Product/{1_000_000 + i // 3}",
                product_title=f"Product {i // 3}", variant_title=f"Variant {i % 3}", sku=code,
                inventory_item_id=f"gid://shopify/InventoryItem/{i}", inventory_quantity=rnd.randrange(50),
            )
        )
    skus = []
    for i in range(n_skus):
        r = rnd.random()
        base = codes[rnd.randrange(n_variants)] if r < 0.8 else f"TT-ONLY-{i}"
        if rnd.random() < 0.05:
            base = ""
        elif rnd.random() < 0.2:
            base = base.lower()  # case variant
        elif rnd.random() < 0.1:
            base = f" {base}\t"  # space variant
        skus.append(TikTokSku(sku_id=str(1_729_000_000_000_000_000 + i), product_id=str(i // 4),
                              product_title=f"TikTok product {i // 4}", sku_name=f"Option {i % 4}",
                              seller_sku=base))
    with Store.open(path) as store:
        store.replace_variants(variants)
        with store.transaction():
            for n, start in enumerate(range(0, n_skus, 2)):
                chunk = skus[start:start + 2]
                store.record_order(
                    PulledOrder(
                        tiktok_order_id=str(5_000_000_000 + n), tiktok_status="AWAITING_SHIPMENT",
                        create_time=0, update_time=0, currency="USD", total_amount="1",
                        payload={}, items=tuple(OrderItem(s.sku_id, 1) for s in chunk),
                        skus=tuple(chunk),
                    ),
                    state="blocked",
                )
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def run(cmd: list[str], *, stdin: str | None = None) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB, and bytes written to stdout, of one subprocess."""
    out = tempfile.TemporaryFile()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE,
                            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL)
    if stdin:
        proc.stdin.write(stdin.encode())
        proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed ({proc.returncode}): {err}")
    size = out.seek(0, 2)
    return elapsed, usage.ru_maxrss / 1024, size


def best(cmd: list[str], runs: int, stdin: str | None = None) -> tuple[float, float, int]:
    results = [run(cmd, stdin=stdin) for _ in range(runs)]
    return min(r[0] for r in results), max(r[1] for r in results), results[0][2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skus", type=int, default=100_000)
    parser.add_argument("--variants", type=int, default=250_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10,000 SKUs, 25,000 variants, 1 run: a smoke test")
    args = parser.parse_args()
    if args.quick:
        args.skus, args.variants, args.runs = 10_000, 25_000, 1
    rows = []
    folder = Path(tempfile.mkdtemp(prefix="ecomsend-bench-"))
    try:
        path = folder / "bench.db"
        t0 = time.perf_counter()
        # Build in a child process: children started later from a big parent would
        # report the parent's pages in their peak RSS.
        builder = multiprocessing.get_context("fork").Process(
            target=build, args=(path, args.skus, args.variants))
        builder.start()
        builder.join()
        print(f"built store: {args.skus:,} TikTok SKUs, {args.variants:,} variants "
              f"in {time.perf_counter() - t0:.1f}s ({path.stat().st_size / 1e6:.0f} MB)")
        if shutil.which("sqlite3"):
            floor_cmd = ["sqlite3", str(path)]
            floor_in = FLOOR_SQL
            floor_name = "sqlite3 shell"
        else:
            floor_cmd = [sys.executable, "-c",
                         f"import sqlite3,sys; c=sqlite3.connect({str(path)!r}); "
                         f"[sys.stdout.write('|'.join(map(str,r))+'\\n') for r in c.execute({FLOOR_SQL!r})]"]
            floor_in = None
            floor_name = "python sqlite3"
        floor, floor_mem, _ = best(floor_cmd, args.runs, stdin=floor_in)
        print(f"floor ({floor_name} join): {floor:.3f}s, peak {floor_mem:.0f} MB")
        ecomsend = [sys.executable, "-m", "ecomsend_cli", "--store", str(path)]
        for name, cmd in [
            ("autolink --dry-run --json", ecomsend + ["autolink", "--dry-run", "--json"]),
            ("list-unlinked --json", ecomsend + ["list-unlinked", "--json"]),
        ]:
            secs, mem, size = best(cmd, args.runs)
            verdict = "ok" if secs <= 2 * floor and mem <= 300 else "MISSED"
            print(f"{name:28s} {secs:.3f}s  ratio {secs / floor:.2f}x  peak {mem:.0f} MB  "
                  f"({size / 1e6:.1f} MB JSON)  [{verdict}: target <= 2.0x, <= 300 MB]")
            rows.append(row(name, round(secs / floor, 3), round(mem), seconds=round(secs, 3)))
        version, _, _ = best([sys.executable, "-m", "ecomsend_cli", "--version"], args.runs)
        py, _, _ = best([sys.executable, "-c", "pass"], args.runs)
        helptime, _, _ = best([sys.executable, "-m", "ecomsend_cli", "--help"], args.runs)
        print(f"start-up: python -c pass {py:.3f}s, ecomsend --version {version:.3f}s, "
              f"ecomsend --help {helptime:.3f}s")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    emit("autolink", rows)


if __name__ == "__main__":
    main()
