"""Run every bench in bench/ and print one table: each row's measure, its target, peak memory, verdict.

    python bench/run_all.py [--quick] [--only autolink,sync]

Each bench (every ``bench/*.py`` but this file and results.py) runs as a
subprocess of its own, alone, one after another: the machine is small and
shared, and a bench measures wall time. What a bench prints for a person goes
to stderr as it runs; its last line (``RESULT {json}``, see results.py) is
read here. The table goes to stdout; the exit code is 1 when a row missed its
target, its memory bound (results.MEMORY_MB) or its bench gave no result.
``--quick`` passes ``--quick`` on (smaller sizes: a smoke test of the benches,
whose ratios say little). ecomsend is byte-compiled first, as an installed
copy is: a checkout under PYTHONDONTWRITEBYTECODE=1 would compile every module
a command imports on every run (~0.1 s of each measured command).
"""

from __future__ import annotations

import argparse
import compileall
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import MEMORY_MB, TARGETS, judge, parse  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
HELPERS = {"run_all.py", "results.py"}


@dataclass
class Line:
    row: str
    measured: str
    target: str
    peak: str
    verdict: str


def benches(only: set[str] | None = None) -> list[Path]:
    """The benches to run, by file name without ``.py``."""
    found = sorted(p for p in BENCH_DIR.glob("*.py") if p.name not in HELPERS and not p.name.startswith("_"))
    return [p for p in found if only is None or p.stem in only]


def run_bench(path: Path, quick: bool) -> tuple[dict | None, str]:
    """``(result, problem)`` of one bench run: its RESULT document, or why there is none."""
    command = [sys.executable, str(path)] + (["--quick"] if quick else [])
    print(f"== {path.name} {'--quick ' if quick else ''}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    captured = []
    assert process.stdout is not None
    for text in process.stdout:
        captured.append(text)
        sys.stderr.write(text)
        sys.stderr.flush()
    code = process.wait()
    print(f"== {path.name}: exit {code} after {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    result = parse("".join(captured))
    if result is None:
        return None, f"{path.name} gave no result (exit {code})"
    return result, "" if code == 0 else f"{path.name} exit {code}"


def table(results: dict[str, dict | None], problems: dict[str, str]) -> list[Line]:
    """One line per target of the benches that ran (``results``: bench name -> its RESULT or None)."""
    measured = {r["row"]: r for result in results.values() if result for r in result["rows"]}
    lines = []
    for name, target in TARGETS.items():
        if target.bench not in results:
            continue
        row = measured.get(name)
        ok, why = judge(name, row)
        if row is None and problems.get(target.bench):
            why = problems[target.bench]
        peak = row.get("peak_mb") if row else None
        lines.append(Line(
            row=name,
            measured=target.show(row.get("value")) if row else "-",
            target=target.text(),
            peak="-" if peak is None else f"{peak:.0f}",
            verdict="ok" if ok else f"MISSED ({why})",
        ))
    for name in measured.keys() - TARGETS.keys():
        lines.append(Line(name, str(measured[name].get("value")), "-", "-", "MISSED (no target in results.py)"))
    for bench, result in results.items():
        if result is None and not any(t.bench == bench for t in TARGETS.values()):
            lines.append(Line(f"{bench}.py", "-", "-", "-", f"MISSED ({problems.get(bench) or 'no result'})"))
    return lines


def render(lines: list[Line]) -> str:
    """The table as aligned plain text."""
    header = Line("row", "measured", "target", "peak MB", "verdict")
    cells = [[x.row, x.measured, x.target, x.peak, x.verdict] for x in [header, *lines]]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    out = []
    for c in cells:
        out.append("  ".join([c[0].ljust(widths[0]), c[1].rjust(widths[1]), c[2].ljust(widths[2]),
                              c[3].rjust(widths[3]), c[4]]).rstrip())
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke test")
    parser.add_argument("--only", help="comma-separated bench names (e.g. autolink,sync)")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    compileall.compile_dir(BENCH_DIR.parent / "ecomsend_cli", quiet=1)
    results: dict[str, dict | None] = {}
    problems: dict[str, str] = {}
    for path in benches(only):
        results[path.stem], problems[path.stem] = run_bench(path, args.quick)
    lines = table(results, problems)
    print(render(lines))
    print(f"\n{'quick run (smaller sizes): ratios are a smoke test only; ' if args.quick else ''}"
          f"every row is also held to a peak of {MEMORY_MB} MB; ecomsend byte-compiled first.")
    return 0 if all(x.verdict == "ok" for x in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
