"""Benchmark: `settle run` against a bare DuckDB script and a pandas peer on the same CSV,
alternating, on two shapes of month.

    python bench/run.py --rows 1000000 10000000 [--shape clean rejects] [--repeat 3]
    python bench/run.py --rows 50000000 --engine-only          # memory at 50M rows
    python bench/run.py --rows 10000000 --serial-audits        # audits timed on their own

Shapes (logs made once with `settle sample` and kept in bench/data/ for reuse):
- clean: `--faults 0.001` (every fault kind at 0.1 %);
- rejects: also `--urban 0.3`, every delivery of the 盟市 as a company exports it, urban ones
  included (30 % of the rows NOT_RURAL).

The pandas peer runs in `.venv-bench` when it exists
(`python3 -m venv .venv-bench && .venv-bench/bin/pip install pandas pyarrow`).

Tools, each in its own process, alternating within every repeat: baseline (bench/baseline.py,
bare DuckDB), pandas (bench/pandas_peer.py), engine (`settle run` through bench/stages.py, which
records wall and CPU time at each progress message). Prints wall time, CPU seconds (user +
system of the process and its threads), peak RSS, rows per second, the ratios to the baseline
and the pandas peer (medians of the same run), the load average before and after each
measurement, and the engine's time per stage.
"""

from __future__ import annotations

import argparse
import json
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
SHAPES = {"clean": [], "rejects": ["--urban", "0.3"]}
TOOLS = ("baseline", "pandas", "engine")
#: Progress messages (prefix) -> the stage they begin; other messages continue the stage.
STAGES = (
    ("start", "start-up: imports"),
    ("imported", "start-up: imports"),
    ("执行 sql/05", "configuration, sql/05–10 set up"),
    ("执行 sql/10", "configuration, sql/05–10 set up"),
    ("执行 sql/20", "read + validate"),  # the last view; the reading starts right after it
    ("读取", "read + validate"),
    ("已读取并校验", "read + validate"),
    ("共读取", "refuse misdirected, lock, store look-up"),
    ("执行 sql/22", "sql/22 repeats"),
    ("执行 sql/25", "sql/25 rejects"),
    ("执行 sql/30", "sql/30 rates"),
    ("执行 sql/40", "sql/40–50 units, budget"),
    ("执行 sql/60", "sql/60–70 allocation, ledger view"),
    ("写出 Parquet", "ledger, rejects, units Parquet, manifest"),
    ("audits done", "statements"),
    ("audits", "pre-publication audits"),
    ("statements", "statements"),
    ("生成结算单", "statements beside the audits"),
    ("发布前审计", None),  # from the audits' thread: not a boundary
    ("发布", "publish"),
    ("写入结算库", "store commit"),
    ("完成", "exit"),
    ("exit", None),
)


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def measure(cmd: list[str]) -> dict:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one child process."""
    before = load()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss": usage.ru_maxrss / 1024,
        "load": f"{before} → {load()}",
    }


def pandas_python() -> str:
    """The interpreter for the pandas peer: .venv-bench (pandas and pyarrow) when there is one,
    so that pandas is not installed beside the engine (pyarrow imports it when it is there)."""
    own = ROOT / ".venv-bench" / "bin" / "python"
    return str(own) if own.exists() else sys.executable


def logs_for(rows: int, league: str, shape: str) -> Path:
    suffix = "" if shape == "clean" else f"-{shape}"
    path = DATA / f"{league}-{MONTH}-{rows}{suffix}.csv"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        print(f"making {path.name} with settle sample …", file=sys.stderr)
        subprocess.run(
            [
                *(sys.executable, "-m", "settlement.cli", "sample", "--league", league),
                *("--month", MONTH, "--rows", str(rows), "--faults", "0.001", "--seed", "7"),
                *SHAPES[shape],
                *("-o", str(path)),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return path


def stages(path: Path, serial: bool) -> dict[str, tuple[float, float]]:
    """Stage -> (wall s, CPU s), from the marks bench/stages.py wrote."""
    marks = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    out: dict[str, list[float]] = {}
    current, since = None, None
    for m in marks:
        if serial and m["message"] == "生成结算单":
            continue  # said while the audits hold the lock
        stage = next((s for prefix, s in STAGES if m["message"].startswith(prefix)), "…")
        if stage == "…" or (stage is None and m["message"] != "exit"):
            continue
        if current is not None and stage != current:
            spent = out.setdefault(current, [0.0, 0.0])
            spent[0] += m["wall"] - since["wall"]
            spent[1] += m["cpu"] - since["cpu"]
        if stage != current:
            current, since = stage, m
    return {k: (w, c) for k, (w, c) in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--shape", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    ap.add_argument("--league", default="152500")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--engine-only", action="store_true", help="skip the peers (memory runs)")
    ap.add_argument("--no-pandas", action="store_true", help="skip the pandas peer")
    ap.add_argument(
        "--serial-audits",
        action="store_true",
        help="run the engine's pre-publication audits before the statements, timed on their own",
    )
    ap.add_argument("--memory-limit", default=None, help="passed to settle run --memory-limit")
    args = ap.parse_args()
    print(
        f"# {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}",
        flush=True,
    )
    tools = (
        ["engine"]
        if args.engine_only
        else [t for t in TOOLS if t != "pandas" or not args.no_pandas]
    )
    results = []
    for shape in args.shape:
        for rows in args.rows:
            logs = logs_for(rows, args.league, shape)
            runs: dict[str, list[dict]] = {t: [] for t in tools}
            stage_runs: list[dict[str, tuple[float, float]]] = []
            for _ in range(args.repeat):
                work = Path(tempfile.mkdtemp(prefix="settle-bench-"))
                try:
                    for tool in tools:
                        if tool == "engine":
                            marks = work / "stages.jsonl"
                            cmd = [sys.executable, str(ROOT / "bench" / "stages.py"), str(marks)]
                            cmd += ["--serial-audits"] if args.serial_audits else []
                            cmd += ["run", "-q", "--league", args.league, "--month", MONTH]
                            cmd += ["--logs", str(logs), "--out", str(work / "out")]
                            if args.memory_limit:
                                cmd += ["--memory-limit", args.memory_limit]
                        else:
                            script = "baseline.py" if tool == "baseline" else "pandas_peer.py"
                            python = sys.executable if tool == "baseline" else pandas_python()
                            cmd = [python, str(ROOT / "bench" / script), str(logs)]
                            cmd += [str(CONFIG), args.league, str(work / f"{tool}.parquet")]
                        result = measure(cmd)
                        runs[tool].append(result)
                        print(
                            f"  {shape} {rows:,} {tool}: {result['wall']:.1f} s wall, "
                            f"{result['cpu']:.1f} CPU-s, {result['rss']:,.0f} MiB, "
                            f"load {result['load']}",
                            file=sys.stderr,
                            flush=True,
                        )
                        if tool == "engine":
                            stage_runs.append(stages(marks, args.serial_audits))
                            folder = sum(
                                f.stat().st_size
                                for f in (work / "out" / "statements").rglob("*")
                                if f.is_file()
                            )
                            print(
                                f"  statements folder {folder:,} bytes, "
                                f"{100 * folder / logs.stat().st_size:.2f} % of the input's "
                                f"{logs.stat().st_size:,}",
                                file=sys.stderr,
                                flush=True,
                            )
                finally:
                    shutil.rmtree(work, ignore_errors=True)
            results.append((shape, rows, runs, stage_runs))
    print()
    print(
        "| shape | rows | tool | wall s (median) | CPU s (median) | peak RSS MiB | rows/s "
        "| wall ÷ baseline | wall ÷ pandas | CPU ÷ baseline |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for shape, rows, runs, _ in results:
        med = {
            t: (
                statistics.median(r["wall"] for r in rs),
                statistics.median(r["cpu"] for r in rs),
            )
            for t, rs in runs.items()
        }
        for tool, rs in runs.items():
            wall, cpu = med[tool]
            ratios = ["", "", ""]
            if tool != "baseline" and "baseline" in med:
                ratios[0] = f"{wall / med['baseline'][0]:.2f}"
                ratios[2] = f"{cpu / med['baseline'][1]:.2f}"
            if tool == "engine" and "pandas" in med:
                ratios[1] = f"{wall / med['pandas'][0]:.2f}"
            print(
                f"| {shape} | {rows:,} | {tool} | {wall:.1f} | {cpu:.1f} "
                f"| {max(r['rss'] for r in rs):,.0f} | {rows / wall:,.0f} | "
                + " | ".join(ratios)
                + " |"
            )
    for shape, rows, _, stage_runs in results:
        if not stage_runs:
            continue
        print(f"\nEngine stages, {shape} {rows:,} rows (median of {len(stage_runs)}):\n")
        print("| stage | wall s | CPU s |")
        print("|---|---:|---:|")
        names = list(dict.fromkeys(n for s in stage_runs for n in s))
        for name in names:
            walls = [s.get(name, (0.0, 0.0))[0] for s in stage_runs]
            cpus = [s.get(name, (0.0, 0.0))[1] for s in stage_runs]
            print(f"| {name} | {statistics.median(walls):.2f} | {statistics.median(cpus):.2f} |")


if __name__ == "__main__":
    main()
