"""What each bench reports to bench/run_all.py, and the targets its rows are judged by (issue 13).

A bench prints its report for a person as it likes and, last, one line a
program reads::

    RESULT {"bench": "autolink", "rows": [{"row": "list-unlinked --json", "value": 1.83, "peak_mb": 120}]}

``row`` names a target below; ``value`` is the measure in the target's unit
(a ratio to the row's floor, a fraction, a count); ``peak_mb`` is the peak
RSS of the measured process, or None where it does not run on its own. Every
row is also held to :data:`MEMORY_MB`. The targets live here once: run_all
judges by them, and a bench's own printed verdicts say the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MEMORY_MB = 300  # peak RSS of every measured process (issue 13, item 3)
PREFIX = "RESULT "


@dataclass(frozen=True)
class Target:
    bench: str  # the bench/<name>.py that measures the row
    what: str  # the measure and the floor it is set against
    op: str  # "<=" or ">="; "memory": the row is held to MEMORY_MB only
    limit: float = 0.0
    unit: str = "x"  # how a value is shown: "x" a ratio, "" a plain number, " ms" milliseconds

    def met(self, value: float | None) -> bool:
        if self.op == "memory":
            return True
        if value is None:
            return False
        return value <= self.limit if self.op == "<=" else value >= self.limit

    def text(self) -> str:
        if self.op == "memory":
            return f"peak ≤ {MEMORY_MB} MB"
        return f"{'≤' if self.op == '<=' else '≥'} {self.limit:g}{self.unit}"

    def show(self, value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value:.2f}x" if self.unit == "x" else f"{value:g}{self.unit}"


TARGETS: dict[str, Target] = {
    "list-unlinked --json": Target("autolink", "time / SQL-join floor", "<=", 2.0),
    "autolink --dry-run --json": Target("autolink", "time / SQL-join floor", "<=", 2.0),
    "link --csv (import)": Target("csv_import", "time / csv+insert floor", "<=", 3.0),
    "link --csv --dry-run (table, piped)": Target("csv_import", "time / csv+insert floor", "<=", 3.0),
    "bulk catalog refresh, client part": Target("catalog", "time / download+parse floor", "<=", 1.5),
    "order creation: fraction of cost ceiling": Target("sync", "orders/s / budget ceiling", ">=", 0.85, ""),
    "order creation: THROTTLED answers": Target("sync", "calls answered THROTTLED", "<=", 0, ""),
    "no-op sync-orders": Target("sync", "time / ecomsend --version", "<=", 2.0),
    # One poll per phase: orders, cancellations, returns (DESIGN §6b: each phase keeps its cursor).
    "no-op sync-orders: HTTP calls": Target("sync", "calls, 1 poll per phase", "<=", 3, ""),
    "blocked-order history: sync-orders": Target("sync", "peak memory", "memory"),
    "blocked-order history: orders --state blocked": Target("sync", "peak memory", "memory"),
    "blocked-order history: orders --state blocked --json": Target("sync", "peak memory", "memory"),
    "black-holed Shopify: run time": Target("sync", "time / (deadline x stop threshold)", "<=", 1.0),
    "tracking: run past start-up": Target("sync", "time / both budgets' ceiling", "<=", 1.2),
    "picker ranking, 250k variants": Target("picker", "worst median time of a query", "<=", 100, " ms"),
}


def emit(bench: str, rows: list[dict]) -> None:
    """Print the one line run_all reads (after the report for a person)."""
    print(PREFIX + json.dumps({"bench": bench, "rows": rows}), flush=True)


def row(name: str, value: float | None, peak_mb: float | None = None, **detail: object) -> dict:
    """One measured row; ``name`` must be a key of :data:`TARGETS`."""
    assert name in TARGETS, name
    return {"row": name, "value": value, "peak_mb": peak_mb, **detail}


def parse(output: str) -> dict | None:
    """The result a bench printed (its last ``RESULT`` line), or None."""
    found = None
    for line in output.splitlines():
        if line.startswith(PREFIX):
            found = json.loads(line[len(PREFIX):])
    return found


def judge(name: str, measured: dict | None) -> tuple[bool, str]:
    """``(ok, why)`` of one row: its target met and its peak memory within :data:`MEMORY_MB`."""
    if measured is None:
        return False, "no result"
    target = TARGETS[name]
    problems = []
    if not target.met(measured.get("value")):
        problems.append(f"{target.show(measured['value'])} against {target.text()}")
    peak = measured.get("peak_mb")
    if peak is not None and peak > MEMORY_MB:
        problems.append(f"peak {peak:.0f} MB > {MEMORY_MB} MB")
    return not problems, "; ".join(problems)
