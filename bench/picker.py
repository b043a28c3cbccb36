"""Benchmark: the picker's ranking on a catalog of 250,000 variants.

    python bench/picker.py [--variants 250000] [--repeat 5] [--quick]

Writes a real store with synthetic variants (varied products, colours, sizes
and SKU codes) in a child process, then, as `ecomsend link` does, builds the
picker's index from the store's rows and ranks a set of queries an operator
would type: an exact SKU, a SKU prefix, a SKU with a typo, title words, a
title with a typo, a word from the middle of a title, one letter, no match.
Last, a title typed one key at a time (the picker ranks again at every key).

Target (issue #12 item 8): ≤ 100 ms per query, peak ≤ 300 MB. Prints, per
query, the best and median wall time of ``--repeat`` runs and the median CPU
time (the machine may be shared: wall time then exceeds CPU time), and the
first result; the index build time (the operator waits for it before the
first key); the peak memory of this process (the store is written by a child
process, so the peak is the index's and the ranking's); a verdict. Last, one
``RESULT {json}`` line for bench/run_all.py. ``--quick``: 25,000 variants, a
smoke test whose times say little. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecomsend_cli.models import Variant  # noqa: E402
from ecomsend_cli.picker import index_catalog  # noqa: E402
from ecomsend_cli.store import Store  # noqa: E402

TARGET_MS = 100
MEMORY_MB = 300
ROW = "picker ranking, 250k variants"

NOUNS = ["Tee", "Hoodie", "Mug", "Scarf", "Beanie", "Sticker Pack", "Tote Bag", "Poster", "Notebook",
         "Water Bottle", "Sock", "Cap", "Jacket", "Candle", "Phone Case", "Blanket", "Apron", "Pin"]
ADJECTIVES = ["Classic", "Insulated", "Organic", "Vintage", "Travel", "Wool", "Ceramic", "Heavy",
              "Slim", "Recycled", "Limited", "Glow", "Summer", "Winter", "Studio", "Retro"]
COLOURS = ["Black", "White", "Red", "Navy", "Oat", "Forest", "Sand", "Grey", "Pink", "Teal"]
SIZES = ["XS", "S", "M", "L", "XL"]


def synthetic(n: int):
    per_product = len(SIZES)
    for i in range(n):
        p, size = divmod(i, per_product)
        noun = NOUNS[p % len(NOUNS)]
        adjective = ADJECTIVES[(p // len(NOUNS)) % len(ADJECTIVES)]
        colour = COLOURS[(p // 7) % len(COLOURS)]
        yield Variant(
            variant_id=f"gid://shopify/ProductVariant/{40_000_000_000_000 + i}",
            product_id=f"gid://shopify/Product/{8_000_000_000_000 + p}",
            product_title=f"{adjective} {noun} {p:06d}",
            variant_title=f"{colour} / {SIZES[size]}",
            sku=f"{noun[:3].upper()}-{colour[:3].upper()}-{SIZES[size]}-{p:06d}",
            inventory_quantity=i % 50,
        )


QUERIES = [
    ("exact SKU", "MUG-BLA-M-000002"),
    ("SKU prefix", "HOO-NAV"),
    ("SKU typo", "MGU-BLA-M-000002"),
    ("title words", "classic mug 000002 black"),
    ("title typo", "clasic mgu 000002"),
    ("mid-title", "000002"),
    ("one letter", "m"),
    ("no match", "zzzzqqqq"),
]


def timed(index, text: str, repeat: int) -> tuple[float, float, float, list]:
    """``(best wall, median wall, median CPU)`` seconds of ranking ``text``, and its last ranking."""
    times, cpu = [], []
    ranked: list = []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        ranked = index.rank(text)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return min(times), statistics.median(times), statistics.median(cpu), ranked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--variants", type=int, default=250_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="25,000 variants: a smoke test")
    parser.add_argument("--write", help=argparse.SUPPRESS)  # child process: write the store only
    args = parser.parse_args()
    if args.quick:
        args.variants = min(args.variants, 25_000)
    if args.write:
        with Store.open(Path(args.write)) as store:
            store.replace_variants(synthetic(args.variants))
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        subprocess.run([sys.executable, __file__, "--write", str(path), "--variants", str(args.variants)],
                       check=True)
        with Store.open(path) as store:
            started, started_cpu = time.perf_counter(), time.process_time()
            index = index_catalog(store.variant_search_columns())
            built, built_cpu = time.perf_counter() - started, time.process_time() - started_cpu
    print(f"picker index of {len(index):,} variants built in {built * 1000:.0f} ms "
          f"({built_cpu * 1000:.0f} ms CPU; once per `link`, before the first key)")
    print(f"{'query':<12} {'text':<26} {'best ms':>8} {'median':>8} {'cpu ms':>7}  first result")
    worst = worst_cpu = 0.0
    for name, text in QUERIES:
        best, median, cpu, ranked = timed(index, text, args.repeat)
        first = index.skus[ranked[0].index] if ranked else "(none)"
        worst, worst_cpu = max(worst, median), max(worst_cpu, cpu)
        print(f"{name:<12} {text:<26} {best * 1000:8.1f} {median * 1000:8.1f} {cpu * 1000:7.1f}  {first}")
    typed = "clasic mug 000002 black"
    keys = [timed(index, typed[:n], args.repeat) for n in range(1, len(typed) + 1)]
    slowest = max(range(len(keys)), key=lambda n: keys[n][1])
    worst, worst_cpu = max(worst, keys[slowest][1]), max(worst_cpu, max(k[2] for k in keys))
    print(f"typing {typed!r} key by key: slowest key {keys[slowest][1] * 1000:.1f} ms median "
          f"(at {typed[:slowest + 1]!r}), {statistics.median(k[1] for k in keys) * 1000:.1f} ms typical")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ok = worst * 1000 <= TARGET_MS and peak <= MEMORY_MB
    print(f"worst median {worst * 1000:.1f} ms per query ({worst_cpu * 1000:.1f} ms CPU; target ≤ {TARGET_MS} ms); "
          f"ratio to target {worst * 1000 / TARGET_MS:.2f}; index built in {built * 1000:.0f} ms; "
          f"peak memory {peak:.0f} MB (≤ {MEMORY_MB}): {'MET' if ok else 'MISSED'}")
    row = ROW  # one name at every size, as bench/results.py knows it (the size is printed above)
    # The flat keys are this bench's own; "bench"/"rows" follow bench/run_all.py's reading.
    print("RESULT " + json.dumps({
        "row": row, "value_ms": round(worst * 1000, 1), "cpu_ms": round(worst_cpu * 1000, 1),
        "build_ms": round(built * 1000), "target_ms": TARGET_MS, "peak_mb": round(peak), "ok": ok,
        "bench": "picker", "rows": [{"row": row, "value": round(worst * 1000, 1), "peak_mb": round(peak)}],
    }), flush=True)


if __name__ == "__main__":
    main()
