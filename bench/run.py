"""Benchmark: `settle run` against a bare DuckDB baseline on the same CSV, alternating.

    python bench/run.py --rows 1000000 10000000 [--league 152500] [--repeat 3]
    python bench/run.py --rows 50000000 --engine-only          # memory at 50M rows

Logs are made once with `settle sample` and kept in bench/data/ for reuse. Prints wall time,
peak RSS, rows per second and the engine/baseline time ratio (both measured in the same run,
since these machines are shared and noisy).
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
CONFIG = ROOT / "config"
MONTH = "2025-03"


def measure(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    return wall, usage.ru_maxrss / 1024


def logs_for(rows: int, league: str) -> Path:
    path = DATA / f"{league}-{MONTH}-{rows}.csv"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        print(f"making {path.name} with settle sample …", file=sys.stderr)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "settlement.cli",
                "sample",
                "--league",
                league,
                "--month",
                MONTH,
                "--rows",
                str(rows),
                "--faults",
                "0.001",
                "--seed",
                "7",
                "-o",
                str(path),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return path


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--league", default="152500")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--engine-only", action="store_true", help="skip the baseline (memory runs)")
    ap.add_argument("--memory-limit", default=None, help="passed to settle run --memory-limit")
    args = ap.parse_args()
    print(
        f"# {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}"
    )
    print("| rows | tool | wall s (median) | peak RSS MiB | rows/s | time ratio engine/baseline |")
    print("|---:|---|---:|---:|---:|---:|")
    for rows in args.rows:
        logs = logs_for(rows, args.league)
        times: dict[str, list[float]] = {"baseline": [], "engine": []}
        rss: dict[str, list[float]] = {"baseline": [], "engine": []}
        for _ in range(args.repeat):
            work = Path(tempfile.mkdtemp(prefix="settle-bench-"))
            try:
                if not args.engine_only:
                    t, m = measure(
                        [
                            sys.executable,
                            str(ROOT / "bench" / "baseline.py"),
                            str(logs),
                            str(CONFIG),
                            args.league,
                            str(work / "baseline.parquet"),
                        ]
                    )
                    times["baseline"].append(t)
                    rss["baseline"].append(m)
                cmd = [
                    sys.executable,
                    "-m",
                    "settlement.cli",
                    "run",
                    "-q",
                    "--league",
                    args.league,
                    "--month",
                    MONTH,
                    "--logs",
                    str(logs),
                    "--out",
                    str(work / "out"),
                ]
                if args.memory_limit:
                    cmd += ["--memory-limit", args.memory_limit]
                t, m = measure(cmd)
                times["engine"].append(t)
                rss["engine"].append(m)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        base = statistics.median(times["baseline"]) if times["baseline"] else None
        for tool in ("baseline", "engine"):
            if not times[tool]:
                continue
            t = statistics.median(times[tool])
            ratio = f"{t / base:.2f}" if base and tool == "engine" else ""
            print(
                f"| {rows:,} | {tool} | {t:.1f} | {max(rss[tool]):,.0f} | {rows / t:,.0f} | {ratio} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
