"""Benchmark: the picker's ranking on a catalog of 250,000 variants.

    python bench/picker.py [--variants 250000] [--repeat 5]

Writes a real store with synthetic variants (varied products, colours, sizes
and SKU codes), builds the picker's index from it as `ecomsend link` does,
then ranks a set of queries an operator would type: an exact SKU, a SKU
prefix, a SKU with a typo, title words, a title with a typo, one letter.

Target (issue #12 item 8): ≤ 100 ms per query. Prints, per query, the best
and median of ``--repeat`` runs the median CPU time (the machine may be shared: wall time then
exceeds it) and the first result; the index build time;
and the process's peak memory. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecomsend_cli.models import Variant  # noqa: E402
from ecomsend_cli.picker import index_catalog  # noqa: E402
from ecomsend_cli.store import Store  # noqa: E402

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
    ("one letter", "m"),
    ("no match", "zzzzqqqq"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--variants", type=int, default=250_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        with Store.open(path) as store:
            store.replace_variants(synthetic(args.variants))
        with Store.open(path) as store:
            started = time.perf_counter()
            index = index_catalog(store.iter_variants())
            built = time.perf_counter() - started
        print(f"picker index of {len(index):,} variants built in {built * 1000:.0f} ms (once per `link`)")
        print(f"{'query':<12} {'text':<22} {'best ms':>8} {'median':>8} {'cpu ms':>7}  first result")
        worst = 0.0
        for name, text in QUERIES:
            times, cpu = [], []
            for _ in range(args.repeat):
                started, started_cpu = time.perf_counter(), time.process_time()
                ranked = index.rank(text)
                times.append(time.perf_counter() - started)
                cpu.append(time.process_time() - started_cpu)
            first = index.skus[ranked[0].index] if ranked else "(none)"
            worst = max(worst, statistics.median(times))
            print(f"{name:<12} {text:<22} {min(times) * 1000:8.1f} {statistics.median(times) * 1000:8.1f} "
                  f"{statistics.median(cpu) * 1000:7.1f}  {first}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"worst median {worst * 1000:.1f} ms per query (target ≤ 100 ms); "
          f"ratio to target {worst * 1000 / 100:.2f}; peak memory {peak:.0f} MB")


if __name__ == "__main__":
    main()
