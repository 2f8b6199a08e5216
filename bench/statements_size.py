"""Benchmark: a month's statements folder against the size of its input (goal: ≤ 5 %).

    python bench/statements_size.py --rows 200000 --faults 0.01 0.05 [--league 150700]

For each fault share, generates the month with `settle sample` (every fault kind at that
share), settles it in a scratch directory and prints the input's size, the statements
folder's size and their ratio, and the files that weigh most.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

MONTH = "2025-03"


def settle(*args: str) -> None:
    cmd = [sys.executable, "-m", "settlement.cli", *args]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--faults", type=float, nargs="+", default=[0.01, 0.05])
    parser.add_argument("--league", default="150700")
    opts = parser.parse_args()
    print("| rows | faults (each kind) | rejected | input bytes | statements bytes | share |")
    print("|---:|---:|---:|---:|---:|---:|")
    heaviest = []
    for faults in opts.faults:
        with tempfile.TemporaryDirectory() as tmp:
            logs, out = Path(tmp) / "logs.csv", Path(tmp) / "out"
            base = ["--league", opts.league, "--month", MONTH]
            sample = ["--rows", str(opts.rows), "--faults", str(faults), "-o", str(logs)]
            settle("sample", *base, *sample)
            settle("run", *base, "--logs", str(logs), "--out", str(out), "-q")
            folder = out / "statements" / f"league={opts.league}" / f"month={MONTH}"
            files = {p.name: p.stat().st_size for p in folder.iterdir()}
            size, given = sum(files.values()), logs.stat().st_size
            glob = str(out / "rejects" / "*" / "*" / "*.parquet")
            count = duckdb.sql(f"SELECT COUNT(*) FROM read_parquet('{glob}')").fetchall()[0][0]
            print(
                f"| {opts.rows:,} | {faults:.2%} | {count:,} | {given:,} | {size:,} "
                f"| {size / given:.2%} |"
            )
            top = sorted(files.items(), key=lambda kv: -kv[1])[:4]
            heaviest.append((faults, top))
    for faults, top in heaviest:
        listed = ", ".join(f"{name} {size:,}" for name, size in top)
        print(f"\nfaults {faults:.2%}, heaviest files: {listed}")


if __name__ == "__main__":
    main()
