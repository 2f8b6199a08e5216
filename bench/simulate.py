"""Benchmark: `settle simulate` of a year against settling the same months for real.

    python bench/simulate.py --rows 2000000 --months 12 [--league 152500] [--repeat 2]

Logs are made once per month with `settle sample` (bench/data/), and the months are settled
once with `settle run`, in order, into a store kept in bench/data/ (the simulation's input).
Then, alternating, each measured in its own process:

- simulate: `settle simulate --from M1 --to M12` on that store (the current policy: every run
  replayed through sql/, compared with its ledger, comparison.parquet and the summary written);
- settle: the same months settled for real from their logs, without statements and without
  publication (the stages of `settle run` up to its Parquet outputs: read and validate the
  logs, sql/ 05–70, ledger, rejects and units written to Parquet; no store, so no month waits
  on another's audits or statements).

Prints wall seconds, CPU seconds (user + system of the process and its threads) and peak RSS.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
YEAR = 2025


def month_names(months: int) -> list[str]:
    return [f"{YEAR}-{m:02d}" for m in range(1, months + 1)]


def measure(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def settle_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "settlement.cli", *args]


def logs_for(league: str, month: str, rows: int) -> Path:
    path = DATA / f"{league}-{month}-{rows}.csv"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        print(f"making {path.name} with settle sample …", file=sys.stderr)
        seed = str(100 + int(month[-2:]))
        subprocess.run(
            settle_cli(
                "sample",
                "--league",
                league,
                "--month",
                month,
                "--rows",
                str(rows),
                "--faults",
                "0.001",
                "--seed",
                seed,
                "-o",
                str(path),
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return path


def store_for(league: str, rows: int, months: int) -> Path:
    """The months settled for real, in order, once (the simulation reads them)."""
    out = DATA / f"simulate-{league}-{rows}x{months}"
    done = out / "complete"
    if not done.exists():
        shutil.rmtree(out, ignore_errors=True)
        for month in month_names(months):
            logs = logs_for(league, month, rows)
            print(f"settling {league} {month} into {out.name} …", file=sys.stderr)
            subprocess.run(
                settle_cli(
                    "run",
                    "-q",
                    "--league",
                    league,
                    "--month",
                    month,
                    "--logs",
                    str(logs),
                    "--out",
                    str(out),
                ),
                check=True,
                stdout=subprocess.DEVNULL,
            )
        done.write_text("")
    return out / "settlement.duckdb"


def settle_core(league: str, rows: int, months: int, work: Path) -> None:
    """In-process: each month from its logs through sql/ to its Parquet outputs, no store."""
    from settlement import DEFAULT_CONFIG_DIR
    from settlement.config import load_config
    from settlement.engine import compute
    from settlement.ingest import LogStream
    from settlement.outputs import write_staged
    from settlement.period import Month

    cfg = load_config(DEFAULT_CONFIG_DIR)
    for month in month_names(months):
        stream = LogStream([logs_for(league, month, rows)])
        spill = work / f"spill-{month}"
        with compute(cfg, league, Month.parse(month), stream, None, "BENCH", temp_dir=spill) as con:
            write_staged(con, work / "staging", league, month)
        shutil.rmtree(spill, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=2_000_000, help="rows per month")
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--league", default="152500")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--core", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.core is not None:  # the child process measured as "settle"
        settle_core(args.league, args.rows, args.months, args.core)
        return
    store = store_for(args.league, args.rows, args.months)
    months = month_names(args.months)
    print(
        f"# {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{args.months} months × {args.rows:,} rows of {args.league}"
    )
    results: dict[str, list[tuple[float, float, float]]] = {"settle": [], "simulate": []}
    for _ in range(args.repeat):
        for tool in ("settle", "simulate"):
            work = Path(tempfile.mkdtemp(prefix="settle-bench-"))
            try:
                if tool == "settle":
                    cmd = [
                        sys.executable,
                        __file__,
                        "--league",
                        args.league,
                        "--rows",
                        str(args.rows),
                        "--months",
                        str(args.months),
                        "--core",
                        str(work),
                    ]
                else:
                    cmd = settle_cli(
                        "simulate",
                        "-q",
                        "--league",
                        args.league,
                        "--from",
                        months[0],
                        "--to",
                        months[-1],
                        "--store",
                        str(store),
                        "--out",
                        str(work / "simulation"),
                    )
                results[tool].append(measure(cmd))
                wall, cpu, rss = results[tool][-1]
                print(f"  {tool}: {wall:.1f} s wall, {cpu:.1f} CPU-s, {rss:,.0f} MiB", flush=True)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    print("| tool | wall s (median) | CPU s (median) | peak RSS MiB | parcels/s |")
    print("|---|---:|---:|---:|---:|")
    parcels = args.rows * args.months
    for tool, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        rss = max(r[2] for r in runs)
        print(f"| {tool} | {wall:.1f} | {cpu:.1f} | {rss:,.0f} | {parcels / wall:,.0f} |")
    ratio_wall = statistics.median(r[0] for r in results["simulate"]) / statistics.median(
        r[0] for r in results["settle"]
    )
    ratio_cpu = statistics.median(r[1] for r in results["simulate"]) / statistics.median(
        r[1] for r in results["settle"]
    )
    print(f"simulate / settle: {ratio_wall:.2f} wall, {ratio_cpu:.2f} CPU")


if __name__ == "__main__":
    main()
