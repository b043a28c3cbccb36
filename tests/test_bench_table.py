"""bench/run_all.py's table and verdicts, from results as the benches print them (not the benches
themselves: they take minutes); and each bench still starts and offers --quick, so none rots unseen."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def load(name: str):
    """A module of bench/ (not a package: the benches import each other by plain name)."""
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))


run_all = load("run_all")
results = load("results")


def printed(bench: str, *rows: dict) -> str:
    """What a bench prints: its report for a person, then its RESULT line."""
    return f"some report\nratio 9.99x [MISSED]\nRESULT {json.dumps({'bench': bench, 'rows': list(rows)})}\n"


def verdicts(lines) -> dict[str, str]:
    return {x.row: x.verdict for x in lines}


def test_each_row_is_judged_by_its_target_and_the_memory_bound():
    outputs = {
        "autolink": printed("autolink",
                            {"row": "list-unlinked --json", "value": 1.9, "peak_mb": 120},
                            {"row": "autolink --dry-run --json", "value": 2.4, "peak_mb": 110}),
        "catalog": printed("catalog", {"row": "bulk catalog refresh, client part", "value": 1.2, "peak_mb": 320}),
    }
    lines = run_all.table({name: results.parse(text) for name, text in outputs.items()}, {})
    got = verdicts(lines)
    assert got == {
        "list-unlinked --json": "ok",
        "autolink --dry-run --json": "MISSED (2.40x against ≤ 2x)",
        "bulk catalog refresh, client part": f"MISSED (peak 320 MB > {results.MEMORY_MB} MB)",
    }
    table = run_all.render(lines)
    header, rule, *body = table.splitlines()
    assert header.split() == ["row", "measured", "target", "peak", "MB", "verdict"]
    assert set(rule) == {"-"} and len(body) == 3
    assert "1.90x" in body[0] and "≤ 2x" in body[0] and "120" in body[0] and body[0].endswith("ok")


def test_a_floor_a_count_and_a_memory_only_row():
    text = printed(
        "sync",
        {"row": "order creation: fraction of cost ceiling", "value": 0.84, "peak_mb": None},
        {"row": "order creation: THROTTLED answers", "value": 0, "peak_mb": None},
        {"row": "no-op sync-orders: HTTP calls", "value": 3, "peak_mb": 40},
        {"row": "blocked-order history: orders --state blocked", "value": None, "peak_mb": 180},
        {"row": "blocked-order history: sync-orders", "value": None, "peak_mb": 301},
    )
    lines = {x.row: x for x in run_all.table({"sync": results.parse(text)}, {})}
    assert lines["order creation: fraction of cost ceiling"].verdict == "MISSED (0.84 against ≥ 0.85)"
    assert lines["order creation: THROTTLED answers"].verdict == "ok"
    assert lines["no-op sync-orders: HTTP calls"].measured == "3"
    assert lines["no-op sync-orders: HTTP calls"].verdict == "ok"
    assert lines["blocked-order history: orders --state blocked"].verdict == "ok"
    assert lines["blocked-order history: orders --state blocked"].target == f"peak ≤ {results.MEMORY_MB} MB"
    assert lines["blocked-order history: sync-orders"].verdict.startswith("MISSED (peak 301 MB")
    # Rows the bench did not report (it was cut short) are missed, never left out.
    assert lines["no-op sync-orders"].verdict == "MISSED (no result)"
    assert lines["tracking: run past start-up"].measured == "-"


def test_a_bench_that_gave_no_result_misses_all_its_rows():
    lines = run_all.table({"csv_import": results.parse("Traceback (most recent call last):\n  boom\n")},
                          {"csv_import": "csv_import.py gave no result (exit 1)"})
    assert verdicts(lines) == {
        "link --csv (import)": "MISSED (csv_import.py gave no result (exit 1))",
        "link --csv --dry-run (table, piped)": "MISSED (csv_import.py gave no result (exit 1))",
    }


def test_the_last_result_line_counts():
    text = printed("catalog", {"row": "bulk catalog refresh, client part", "value": 3.0, "peak_mb": 100})
    text += printed("catalog", {"row": "bulk catalog refresh, client part", "value": 1.4, "peak_mb": 100})
    assert results.parse(text)["rows"][0]["value"] == 1.4
    assert results.parse("no result here\n") is None


def test_every_target_names_a_bench_that_run_all_runs():
    names = {p.stem for p in run_all.benches()}
    assert {t.bench for t in results.TARGETS.values()} <= names
    assert {"autolink", "csv_import", "catalog", "sync"} <= names


@pytest.mark.parametrize("name", sorted(p.stem for p in run_all.benches()))
def test_each_bench_starts_and_offers_quick(name):
    r = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), "--help"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "--quick" in r.stdout
