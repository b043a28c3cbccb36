"""Benchmark: `link --csv` of 100,000 rows against a store of 250,000 variants.

The store is the one bench/autolink.py builds (100,000 TikTok SKUs seen in
orders, 250,000 Shopify variants), reused through its ``build()``. The file is
what an operator imports after `list-unlinked --csv`: every TikTok SKU with its
seller SKU, 70 % filled in with a variant id and 30 % with a (unique) Shopify
SKU, written by our own exporter. Each command runs as a real subprocess:

* `link --csv FILE --dry-run` (validation and the plan, nothing written),
* `link --csv FILE` (validation and the import: 100,000 links and history rows),
* the same import again (every row unchanged).

The floor is a Python subprocess that parses the same file with the `csv`
module and inserts its rows into a links-like table of a copy of the store
with one `executemany` in one transaction. Prints wall time (best of N), the
ratio to the floor and peak RSS (os.wait4 ru_maxrss). The store and the file
are built in a child process: a child started while this process is big
would report this process's RSS as its own peak. Last, the time of each step
in one process (read, plan, write), to show where the import's time goes.

    python bench/csv_import.py [--rows 100000] [--variants 250000] [--runs 3] [--quick]
Targets: ratio <= 3.0, peak <= 300 MB. Last, one RESULT line for bench/run_all.py.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autolink import build, run  # noqa: E402  (bench/autolink.py: the same store and runner)
from results import emit, row  # noqa: E402  (bench/results.py)

from ecomsend_cli.csvlinks import write_csv  # noqa: E402

FLOOR = """
import csv, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("CREATE TABLE floor_links (tiktok_sku_id TEXT PRIMARY KEY, shopify_variant_id TEXT, "
             "shopify_sku TEXT, source TEXT, linked_at TEXT, linked_by TEXT)")
with open(sys.argv[2], newline="", encoding="utf-8-sig") as fh:
    rows = [(r["tiktok_sku_id"], r["shopify_variant_id"], r["shopify_sku"], "csv", "now", "bench")
            for r in csv.DictReader(fh)]
conn.execute("BEGIN")
conn.executemany("INSERT INTO floor_links VALUES (?,?,?,?,?,?)", rows)
conn.execute("COMMIT")
print(len(rows))
"""


def write_file(store_path: Path, csv_path: Path, seed: int = 11) -> int:
    """The filled-in to-do list: every TikTok SKU, by variant id (70 %) or unique SKU (30 %)."""
    rnd = random.Random(seed)
    conn = sqlite3.connect(store_path)
    skus = conn.execute(
        "SELECT sku_id, seller_sku, product_title, sku_name FROM tiktok_skus ORDER BY sku_id"
    ).fetchall()
    variant_ids = [r[0] for r in conn.execute("SELECT variant_id FROM shopify_variants")]
    unique_skus = [r[0] for r in conn.execute(
        "SELECT min(sku) FROM shopify_variants WHERE sku_key IS NOT NULL "
        "GROUP BY sku_key HAVING count(*) = 1"
    )]
    conn.close()
    rows = []
    for sku_id, seller_sku, title, name in skus:
        by_id = rnd.random() < 0.7
        rows.append({
            "tiktok_sku_id": sku_id,
            "tiktok_seller_sku": seller_sku,
            "shopify_variant_id": rnd.choice(variant_ids) if by_id else "",
            "shopify_sku": "" if by_id else rnd.choice(unique_skus),
            "product_title": title,
            "sku_name": name,
            "suggestion": "",
        })
    with open(csv_path, "w", encoding="utf-8", newline="") as fh:
        return write_csv(fh, rows)


def fresh_copy(src: Path, dst: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(str(dst) + suffix).unlink(missing_ok=True)
    shutil.copy(src, dst)
    return dst


def timed(cmd_for, src: Path, work: Path, runs: int) -> tuple[float, float]:
    """Best wall time and worst peak RSS of ``runs`` runs, each on a fresh copy of the store."""
    results = []
    for _ in range(runs):
        store = fresh_copy(src, work)
        secs, mem, _ = run(cmd_for(store))
        results.append((secs, mem))
    return min(r[0] for r in results), max(r[1] for r in results)


def breakdown(store_path: Path, csv_path: Path) -> None:
    """Seconds of each step of an import, in this process."""
    from ecomsend_cli.csvlinks import apply_csv_plan, describe_csv_plan, plan_link_csv, read_link_csv
    from ecomsend_cli.store import Store

    t0 = time.perf_counter()
    parsed = read_link_csv(csv_path.read_bytes())
    t1 = time.perf_counter()
    with Store.open(store_path) as store:
        t2 = time.perf_counter()
        plan = plan_link_csv(store, parsed)
        t3 = time.perf_counter()
        written = apply_csv_plan(store, plan, actor="bench")
        t4 = time.perf_counter()
        describe_csv_plan(store, plan, (*plan.new, *plan.changed, *plan.unchanged))
        t5 = time.perf_counter()
        ready = store.ready_order_count(store.stale_links())  # what the import says last (_say_ready)
        t6 = time.perf_counter()
    print(f"steps: read {t1 - t0:.3f}s, open store {t2 - t1:.3f}s, plan {t3 - t2:.3f}s, "
          f"write {t4 - t3:.3f}s (Store.apply_links, {written:,} links + history rows), "
          f"ready count {t6 - t5:.3f}s ({ready:,} orders); a dry run's table also reads every "
          f"row's details: {t5 - t4:.3f}s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--variants", type=int, default=250_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prepare", metavar="FOLDER", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="10,000 rows, 25,000 variants, 1 run: a smoke test")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.variants, args.runs = 10_000, 25_000, 1
    # The rows bench/run_all.py judges (results.TARGETS); the others are shown here only.
    judged = {"link --csv (import)": "link --csv (import)",
              "link --csv --dry-run (table)": "link --csv --dry-run (table, piped)"}
    rows = []
    if args.prepare:
        build(Path(args.prepare) / "base.db", args.rows, args.variants)
        write_file(Path(args.prepare) / "base.db", Path(args.prepare) / "links.csv")
        return
    folder = Path(tempfile.mkdtemp(prefix="ecomsend-csv-bench-"))
    try:
        base = folder / "base.db"
        csv_path = folder / "links.csv"
        t0 = time.perf_counter()
        run([sys.executable, __file__, "--prepare", str(folder), "--rows", str(args.rows),
             "--variants", str(args.variants)])
        print(f"built store: {args.rows:,} TikTok SKUs, {args.variants:,} variants; file: "
              f"{csv_path.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f}s")
        work = folder / "work.db"
        floor, floor_mem = timed(
            lambda store: [sys.executable, "-c", FLOOR, str(store), str(csv_path)], base, work, args.runs
        )
        print(f"floor (csv module + one executemany): {floor:.3f}s, peak {floor_mem:.0f} MB")

        def ecomsend(store: Path, *extra: str) -> list[str]:
            return [sys.executable, "-m", "ecomsend_cli", "--store", str(store), "link", "--csv",
                    str(csv_path), *extra]

        imported = folder / "imported.db"
        fresh_copy(base, imported)
        run(ecomsend(imported))  # the state a second import starts from
        cases = [
            ("link --csv --dry-run --json", lambda s: ecomsend(s, "--dry-run", "--json"), base),
            ("link --csv --dry-run (table)", lambda s: ecomsend(s, "--dry-run"), base),
            ("link --csv (import)", lambda s: ecomsend(s), base),
            ("link --csv (again: unchanged)", lambda s: ecomsend(s), imported),
        ]
        for name, cmd_for, src in cases:
            secs, mem = timed(cmd_for, src, work, args.runs)
            verdict = "ok" if secs <= 3 * floor and mem <= 300 else "MISSED"
            print(f"{name:31s} {secs:.3f}s  ratio {secs / floor:.2f}x  peak {mem:.0f} MB  "
                  f"[{verdict}: target <= 3.0x, <= 300 MB]")
            if name in judged:
                rows.append(row(judged[name], round(secs / floor, 3), round(mem), seconds=round(secs, 3)))
        startup, _, _ = run([sys.executable, "-m", "ecomsend_cli", "--version"])
        print(f"start-up: ecomsend --version {startup:.3f}s")
        breakdown(fresh_copy(base, work), csv_path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    emit("csv_import", rows)


if __name__ == "__main__":
    main()
