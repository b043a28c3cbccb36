"""Benchmark: a full catalog refresh of 250,000 variants — bulk operation vs paging vs the floor.

    python bench/catalog.py [--variants 250000] [--per-product 5] [--skip-paged] [--quick]

Builds a Shopify simulator state file with synthetic products, serves it from
a process of its own, then runs each measurement in a fresh subprocess (so
its peak RSS is its own):

* ``floor``  — download the bulk operation's JSONL with httpx and ``json.loads``
  every line (``iter_lines``); nothing else: the plain way to read the file.
* ``floor_batched`` — the same download, parsed as the client does it (one
  ``json.loads`` per network chunk); the least the client's approach costs.
* ``stream`` — ``client.bulk_variant_rows()`` consumed without a store: run
  the bulk operation, wait for it, then download, parse and join into the
  rows a full refresh writes. The client part (after the operation
  completed) is the client library's cost beside the floor.
* ``bulk``   — ``refresh_catalog(full=True)`` into a real store: the same plus
  ``store.replace_variants`` (SQLite). Reported whole and split into the wait
  for the operation (server time: Shopify's, not ours) and the client part
  (download, parse, join, store).
* ``paged``  — ``iter_variants()`` (250 per page) into ``store.replace_variants``,
  with the simulator's budget set huge so throttle sleeps do not dominate;
  the time the same pages would need at Shopify's standard 100 points/s is
  printed beside it.

Targets (issues #3, #13): bulk refresh client part ≤ 1.5 × floor, peak
memory ≤ 300 MB. Timings on a shared machine are noisy: every measurement
runs several times, the best is shown, and all runs are printed at the end,
then one RESULT line for bench/run_all.py.
Nothing here asserts: it prints times, ratios and peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

OUT = ROOT / "bench" / ".out"
HUGE = 10**9  # points and points/s: no throttling


def synthetic_products(variants: int, per_product: int):
    """Products in the simulator's seed format, ``per_product`` variants each."""
    for p in range(variants // per_product):
        pid = 7_000_000_000 + p
        yield {
            "id": pid,
            "title": f"Synthetic product {p:06d} — cotton tee",
            "status": "ACTIVE" if p % 10 else "DRAFT",
            "updated_at": "2026-01-01T00:00:00Z",
            "variants": [
                {
                    "id": 40_000_000_000 + p * per_product + i,
                    "title": f"Size {i} / Colour {p % 7}",
                    "sku": f"TEE-{p:06d}-{i}" if (p + i) % 50 else "",
                    "price": "19.99",
                    "inventory_item_id": 45_000_000_000 + p * per_product + i,
                    "inventory_quantity": (p * 7 + i) % 40,
                    "inventory_policy": "DENY" if i % 2 else "CONTINUE",
                }
                for i in range(per_product)
            ],
        }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


# -- subprocess roles -----------------------------------------------------------------------


def serve(state: Path) -> None:
    """Serve the simulator on an ephemeral port; print its URL and token; run until stdin closes."""
    from ecomsend_cli.sandbox.shopify_sim import ShopifySimulator

    sim = ShopifySimulator(state, bucket_size=HUGE, restore_rate=HUGE).start()
    print(json.dumps({"url": sim.url, "token": sim.credentials["access_token"]}), flush=True)
    sys.stdin.read()
    sim.stop()


def worker(mode: str, url: str, token: str, store_path: Path, file_url: str | None) -> None:
    """Run one measurement and print its result as one JSON line."""
    import httpx

    from ecomsend_cli.catalog import refresh_catalog
    from ecomsend_cli.config import Secret, ShopifyConfig
    from ecomsend_cli.models import MemoryTokenCache
    from ecomsend_cli.shopify import ShopifyClient
    from ecomsend_cli.store import Store

    baseline = peak_rss_mb()
    result: dict = {"mode": mode}
    if mode == "floor":
        assert file_url
        http = httpx.Client(timeout=60)
        started = time.perf_counter()
        count = 0
        loads = json.loads
        with http.stream("GET", file_url) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line:
                    loads(line)
                    count += 1
        result.update(seconds=time.perf_counter() - started, objects=count)
    elif mode == "floor_batched":
        assert file_url
        http = httpx.Client(timeout=60)
        started = time.perf_counter()
        count = 0
        tail = b""
        with http.stream("GET", file_url) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                buffer = tail + chunk
                cut = buffer.rfind(b"\n")
                if cut < 0:
                    tail = buffer
                    continue
                tail = buffer[cut + 1:]
                count += len(json.loads(b"[" + buffer[:cut].replace(b"\n", b",") + b"]"))
        result.update(seconds=time.perf_counter() - started, objects=count)
    else:
        client = ShopifyClient(ShopifyConfig(shop=url, access_token=Secret(token)), MemoryTokenCache())
        store = Store.open(store_path)
        if mode == "stream":
            started = time.perf_counter()
            batches = client.bulk_variant_rows(poll_interval=0.25)
            ready = time.perf_counter()
            count = sum(len(batch) for batch in batches)
            ended = time.perf_counter()
            result.update(seconds=ended - started, operation_wait=ready - started,
                          client_part=ended - ready, variants=count)
        elif mode == "bulk":
            marks: dict[str, float] = {}
            run_bulk = client.bulk_variant_rows

            def timed_bulk(**kwargs):
                iterator = run_bulk(**kwargs)
                marks["ready"] = time.perf_counter()  # the operation completed; streaming starts
                return iterator

            client.bulk_variant_rows = timed_bulk  # type: ignore[method-assign]
            started = time.perf_counter()
            refreshed = refresh_catalog(store, client, full=True, poll_interval=0.25)
            ended = time.perf_counter()
            result.update(
                seconds=ended - started,
                operation_wait=marks["ready"] - started,
                client_part=ended - marks["ready"],
                variants=refreshed.variants,
            )
        else:
            started = time.perf_counter()
            count = store.replace_variants(client.iter_variants())
            result.update(seconds=time.perf_counter() - started, variants=count)
        store.close()
        client.close()
    result.update(peak_rss_mb=peak_rss_mb(), baseline_rss_mb=baseline)
    print(json.dumps(result), flush=True)


# -- the orchestrator ---------------------------------------------------------------------------


def run_worker(mode: str, server: dict, store: Path, file_url: str | None = None) -> dict:
    command = [sys.executable, __file__, "--worker", mode, "--url", server["url"], "--token", server["token"],
               "--store", str(store)]
    if file_url:
        command += ["--file-url", file_url]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def latest_bulk_url(server: dict) -> str:
    import httpx

    answer = httpx.post(
        f"{server['url']}/admin/api/2026-07/graphql.json",
        json={"query": "{ currentBulkOperation { url } }"},
        headers={"X-Shopify-Access-Token": server["token"]},
    ).json()
    return answer["data"]["currentBulkOperation"]["url"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", type=int, default=250_000)
    parser.add_argument("--per-product", type=int, default=5)
    parser.add_argument("--skip-paged", action="store_true")
    parser.add_argument("--serve", type=Path)
    parser.add_argument("--worker", choices=["floor", "floor_batched", "stream", "bulk", "paged"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url")
    parser.add_argument("--token")
    parser.add_argument("--store", type=Path)
    parser.add_argument("--file-url")
    parser.add_argument("--quick", action="store_true", help="25,000 variants, 1 run, no paging: a smoke test")
    args = parser.parse_args()
    if args.quick:
        args.variants, args.repeat, args.skip_paged = 25_000, 1, True
    if args.serve:
        serve(args.serve)
        return
    if args.worker:
        worker(args.worker, args.url, args.token, args.store, args.file_url)
        return

    from results import MEMORY_MB, emit, row

    from ecomsend_cli import shopify_documents as docs
    from ecomsend_cli.sandbox.shopify_sim import ShopifySimulator

    folder = OUT / f"catalog-{int(time.time())}"
    folder.mkdir(parents=True)
    state = folder / "shopify.db"
    started = time.perf_counter()
    ShopifySimulator(state, products=synthetic_products(args.variants, args.per_product)).close()
    print(f"seeded {args.variants:,} variants ({args.variants // args.per_product:,} products) "
          f"in {time.perf_counter() - started:.1f} s")

    server_process = subprocess.Popen([sys.executable, __file__, "--serve", str(state)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        server = json.loads(server_process.stdout.readline())
        results: dict[str, list[dict]] = {"floor": [], "floor_batched": [], "stream": [], "bulk": [], "paged": []}
        # Interleaved, so a burst of load elsewhere on the machine hits every kind alike.
        for attempt in range(args.repeat):
            results["bulk"].append(run_worker("bulk", server, folder / f"bulk-{attempt}.db"))
            file_url = latest_bulk_url(server)
            results["floor"].append(run_worker("floor", server, folder / "unused.db", file_url))
            results["floor_batched"].append(run_worker("floor_batched", server, folder / "unused.db", file_url))
            results["stream"].append(run_worker("stream", server, folder / "unused.db"))
        if not args.skip_paged:
            results["paged"].append(run_worker("paged", server, folder / "paged.db"))
    finally:
        server_process.stdin.close()
        server_process.wait(timeout=30)

    floor = min(r["seconds"] for r in results["floor"])
    bulk = min(results["bulk"], key=lambda r: r["client_part"])
    stream = min(results["stream"], key=lambda r: r["client_part"])
    print(f"\n{'measurement':<34}{'seconds':>9}{'× floor':>9}{'peak RSS MB':>13}")
    print(f"{'floor (httpx + json.loads)':<34}{floor:>9.2f}{1.0:>9.2f}"
          f"{max(r['peak_rss_mb'] for r in results['floor']):>13.0f}")
    batched = min(r["seconds"] for r in results["floor_batched"])
    print(f"{'floor, batched json.loads':<34}{batched:>9.2f}{batched / floor:>9.2f}"
          f"{max(r['peak_rss_mb'] for r in results['floor_batched']):>13.0f}")
    print(f"{'bulk stream, client part':<34}{stream['client_part']:>9.2f}"
          f"{stream['client_part'] / floor:>9.2f}{stream['peak_rss_mb']:>13.0f}")
    verdict = "ok" if bulk["client_part"] <= 1.5 * floor and bulk["peak_rss_mb"] <= MEMORY_MB else "MISSED"
    print(f"{'bulk refresh, client part':<34}{bulk['client_part']:>9.2f}{bulk['client_part'] / floor:>9.2f}"
          f"{bulk['peak_rss_mb']:>13.0f}  [{verdict}: target <= 1.5x, <= {MEMORY_MB} MB]")
    print(f"{'bulk refresh, operation wait':<34}{bulk['operation_wait']:>9.2f}"
          f"{bulk['operation_wait'] / floor:>9.2f}{'':>13}")
    print(f"{'bulk refresh, total':<34}{bulk['seconds']:>9.2f}{bulk['seconds'] / floor:>9.2f}{'':>13}")
    if results["paged"]:
        paged = results["paged"][0]
        pages = -(-paged["variants"] // docs.PAGE_SIZE)
        standard = pages * docs.PRODUCT_VARIANTS_COST / 100.0
        print(f"{'paged refresh (budget unlimited)':<34}{paged['seconds']:>9.2f}"
              f"{paged['seconds'] / floor:>9.2f}{paged['peak_rss_mb']:>13.0f}")
        print(f"{'paged at standard 100 points/s':<34}{standard:>9.0f}{standard / floor:>9.0f}"
              f"{'':>13}  (throttle-bound estimate: {pages} pages × {docs.PRODUCT_VARIANTS_COST} points)")
    print(f"\nbulk variants written: {bulk['variants']:,}; python baseline RSS "
          f"{bulk['baseline_rss_mb']:.0f} MB; runs: " + json.dumps(results))
    if not os.environ.get("BENCH_KEEP"):
        shutil.rmtree(folder, ignore_errors=True)
    emit("catalog", [row("bulk catalog refresh, client part", round(bulk["client_part"] / floor, 3),
                         round(max(r["peak_rss_mb"] for r in results["bulk"])), seconds=round(bulk["client_part"], 3),
                         floor_seconds=round(floor, 3))])


if __name__ == "__main__":
    main()
