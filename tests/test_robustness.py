"""Robustness (issue 7): kill -9 at every stage of a run, concurrent runs, hostile files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from conftest import V1, V2, make_config, policy_text

from settlement.cli import main
from settlement.store import connect_readonly

HEADER = "waybill_no,company,delivered_at,village_code,distance_km,cost_yuan,revenue_yuan,proof\n"
CONTENT = ["waybill_no", "company", "rate_fen", "unit_key", "subsidy_fen"]


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def run_args(cfg, out, month, logs, quiet=True):
    """The command line of `settle run` in a separate process."""
    args = [
        sys.executable,
        "-m",
        "settlement.cli",
        "run",
        "--league",
        "150700",
        "--month",
        month,
        "--logs",
        str(logs),
        "--config",
        str(cfg),
        "--out",
        str(out),
        "--replace",  # the crash tests settle a month again on purpose
    ]
    return args + ["-q"] if quiet else args


def settle_subprocess(cfg, out, month, logs, crash_at=None, timeout=120):
    env = dict(os.environ)
    if crash_at:
        env["SETTLE_CRASH_AT"] = crash_at
    return subprocess.run(
        run_args(cfg, out, month, logs),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def snapshot(out: Path) -> dict:
    """What an auditor sees: current runs and the ledger content."""
    con = connect_readonly(out / "settlement.duckdb")
    try:
        runs = con.execute("SELECT run_id, status FROM runs ORDER BY finished_at").fetchall()
        ledger = con.sql(f"SELECT month, {', '.join(CONTENT)} FROM ledger ORDER BY ALL").fetchall()
    finally:
        con.close()
    return {"runs": runs, "ledger": ledger}


@pytest.fixture(scope="module")
def months(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    cfg = make_config(root / "config", policy_text(rule="ytd", annual="5.00"))
    feb = root / "feb.csv"
    feb.write_text(
        HEADER + f"F1,ZTO,2025-02-05 10:00,{V1},12,2.00,0,签名\n"
        f"F2,YTO,2025-02-06 10:00,{V2},5,2.00,0,签名\n",
        encoding="utf-8",
    )
    mar = root / "mar.csv"
    mar.write_text(
        HEADER
        + "".join(
            f"M{i},{'ZTO' if i % 2 else 'YTO'},2025-03-0{1 + i % 9} 10:00,"
            f"{V1 if i % 3 else V2},{5 + i},2.00,0,签名\n"
            for i in range(30)
        )
        + f"F1,ZTO,2025-03-05 10:00,{V1},12,2.00,0,签名\n",
        encoding="utf-8",
    )
    mar2 = root / "mar2.csv"
    mar2.write_text(
        mar.read_text(encoding="utf-8") + f"X1,ZTO,2025-03-09 10:00,{V2},7,2.00,0,签名\n",
        encoding="utf-8",
    )
    # the uninterrupted history, for comparison: February, March, then March again
    reference = root / "reference"
    for month, logs in (("2025-02", feb), ("2025-03", mar), ("2025-03", mar2)):
        assert settle_subprocess(cfg, reference, month, logs).returncode == 0
    return cfg, feb, mar, mar2, snapshot(reference)


def ledger_only(snap):
    return snap["ledger"]


CRASH_POINTS = [
    "staged",
    "publish:1",
    "publish:2",
    "publish:3",
    "publish:4",
    "publish:5",
    "publish:6",
    "published",
    "committed",
]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_kill_at_every_stage_leaves_a_whole_verifiable_state(months, tmp_path, point):
    cfg, feb, mar, mar2, reference = months
    out = tmp_path / "out"
    assert settle_subprocess(cfg, out, "2025-02", feb).returncode == 0
    assert settle_subprocess(cfg, out, "2025-03", mar).returncode == 0
    before = snapshot(out)
    killed = settle_subprocess(cfg, out, "2025-03", mar2, crash_at=point)
    assert killed.returncode == -signal.SIGKILL
    check = cli("verify", "--out", out)
    assert check.exit_code == 0, check.output
    after_crash = snapshot(out)
    if point == "committed":
        assert len(after_crash["runs"]) == len(before["runs"]) + 1  # the run had committed
        assert ledger_only(after_crash) == ledger_only(reference)
    else:
        assert after_crash == before  # the previous state, whole
    again = settle_subprocess(cfg, out, "2025-03", mar2)
    assert again.returncode == 0, again.stderr
    assert ledger_only(snapshot(out)) == ledger_only(reference)
    assert cli("verify", "--out", out).exit_code == 0
    assert not (out / ".staging").exists()


def test_kill_at_random_moments(months, tmp_path):
    cfg, feb, mar, mar2, reference = months
    out = tmp_path / "out"
    assert settle_subprocess(cfg, out, "2025-02", feb).returncode == 0
    assert settle_subprocess(cfg, out, "2025-03", mar).returncode == 0
    for delay in (0.3, 0.6, 0.9, 1.2, 1.5, 1.8, 2.2):
        proc = subprocess.Popen(
            run_args(cfg, out, "2025-03", mar2),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        check = cli("verify", "--out", out)
        assert check.exit_code == 0, (delay, check.output)
    assert settle_subprocess(cfg, out, "2025-03", mar2).returncode == 0
    assert ledger_only(snapshot(out)) == ledger_only(reference)


def test_a_second_run_waits_then_is_refused(months, tmp_path):
    from settlement.lock import store_lock

    cfg, feb, *_ = months
    out = tmp_path / "out"
    assert settle_subprocess(cfg, out, "2025-02", feb).returncode == 0
    env = dict(os.environ, SETTLE_LOCK_TIMEOUT="0.5")
    with store_lock(out / "settlement.duckdb"):
        result = subprocess.run(
            run_args(cfg, out, "2025-02", feb, quiet=False),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        sealed = subprocess.run(
            [
                sys.executable,
                "-m",
                "settlement.cli",
                "seal",
                "--league",
                "150700",
                "--month",
                "2025-02",
                "--store",
                str(out / "settlement.duckdb"),
                "--reviewed-by",
                "a",
                "--notice-start",
                "2025-03-02",
                "--notice-end",
                "2025-03-09",
                "--approved-by",
                "b",
                "--approval-ref",
                "c",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    for r in (result, sealed):
        assert r.returncode == 2
        assert "另一个任务正在使用结算库" in r.stderr and "等待 0.5 秒后仍未结束" in r.stderr
        assert "Traceback" not in r.stderr
    assert len(snapshot(out)["runs"]) == 1


def test_two_runs_at_once_never_both_write(months, tmp_path):
    cfg, feb, mar, *_ = months
    out = tmp_path / "out"
    assert settle_subprocess(cfg, out, "2025-02", feb).returncode == 0
    procs = [
        subprocess.Popen(
            run_args(cfg, out, "2025-03", mar),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    runs = snapshot(out)["runs"]
    assert [s for _, s in runs].count("current") == 2  # February and one March
    assert [s for _, s in runs].count("superseded") == 1  # the other March, replaced
    assert cli("verify", "--out", out).exit_code == 0


def test_store_held_by_another_program_is_a_clear_message(months, tmp_path, monkeypatch):
    monkeypatch.setenv("SETTLE_BUSY_WAIT", "0.5")
    cfg, feb, *_ = months
    out = tmp_path / "out"
    assert settle_subprocess(cfg, out, "2025-02", feb).returncode == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('ok', flush=True); time.sleep(30)",
            str(out / "settlement.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ok"
        result = cli("sql", "SELECT 1", "--store", out / "settlement.duckdb")
        assert result.exit_code == 1
        assert result.output.startswith("错误：无法以只读方式打开结算库")
        assert "Traceback" not in result.output
    finally:
        holder.kill()
        holder.wait()


# --------------------------------------------------------------------------- hostile files

GOOD = f"A1,ZTO,2025-03-05 10:00,{V1},12,2.00,0,签名\n"


def hostile_files(root: Path) -> dict[str, tuple[Path, int, str]]:
    """name -> (file, expected exit code, expected text in the output)."""
    import random

    import xlsxwriter

    rnd = random.Random(7)
    files = {}

    def add(name, data, code, text):
        path = root / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        files[name] = (path, code, text)

    add("random.csv", bytes(rnd.randrange(256) for _ in range(4000)), 2, "既不是 UTF-8 也不是 GBK")
    add("random.parquet", bytes(rnd.randrange(256) for _ in range(4000)), 2, "Parquet 无法读取")
    buf = root / "whole.parquet"
    pl.DataFrame(
        {"waybill_no": [f"W{i}" for i in range(5000)], "company": ["ZTO"] * 5000}
    ).write_parquet(buf)
    whole = buf.read_bytes()
    add("truncated.parquet", whole[: len(whole) // 2], 2, "Parquet 无法读取")
    add("empty.csv", b"", 2, "文件为空")
    add("header_only.csv", HEADER, 0, "共 0 行")
    add(
        "mixed.csv",
        HEADER.encode() + GOOD.encode("utf-8") + GOOD.replace("A1", "A2").encode("gbk"),
        2,
        "文件混用了两种编码：第 2 行是 UTF-8，第 3 行不是",
    )
    add(
        "ragged.csv",
        HEADER + GOOD + GOOD.rstrip("\n") + ",extra\n",
        2,
        "第 3 行有 9 个字段，多于表头的 8 个",
    )
    add("short_rows.csv", HEADER + "A1,ZTO\n", 0, "签收时间(delivered_at)为空")
    add(
        "big_field.csv",
        HEADER + GOOD.replace("A1", "W" * 1_000_000),
        0,
        "运单号(waybill_no)超过64个字符",
    )
    add(
        "wide.csv",
        HEADER.rstrip("\n")
        + ","
        + ",".join(f"x{i}" for i in range(10_000))
        + "\n"
        + GOOD.rstrip("\n")
        + ","
        + ",".join("0" for _ in range(10_000))
        + "\n",
        0,
        "可受理 1 行",
    )
    add("nul.csv", HEADER + GOOD.replace("ZTO", "Z\x00TO"), 0, "UNKNOWN_COMPANY")
    wb_path = root / "sheets.xlsx"
    wb = xlsxwriter.Workbook(str(wb_path))
    ws = wb.add_worksheet("明细")
    ws.write_row(0, 0, HEADER.strip().split(","))
    ws.write_row(1, 0, GOOD.strip().split(","))
    ws.merge_range(2, 0, 2, 3, "合并单元格")
    ws.write_formula(3, 0, '="F"&"1"', None, "F1")
    ws.write_row(3, 1, ["ZTO", "2025-03-06 10:00", V1, "12", "2.00", "0", "签名"])
    wb.add_worksheet("其他").write(0, 0, "ignored")
    wb.close()
    files["sheets.xlsx"] = (wb_path, 0, "共 3 行，可受理 2 行，将剔除 1 行")
    return files


def test_hostile_files_are_refused_or_rejected_never_a_traceback(tmp_path, months):
    cfg = months[0]
    for name, (path, code, text) in hostile_files(tmp_path).items():
        result = cli("validate", path, "--league", "150700", "--month", "2025-03", "--config", cfg)
        assert result.exit_code == code, (name, result.output[:300])
        assert text in result.output, (name, result.output[:300])
        assert "Traceback" not in result.output and "内部错误" not in result.output, name
        if code == 2:
            assert result.output.count("\n") == 1, name
            assert str(path) in result.output


def test_hostile_files_lose_no_row_in_a_run(tmp_path, months):
    cfg = months[0]
    for name, (path, code, _) in hostile_files(tmp_path).items():
        if code != 0:
            continue
        out = tmp_path / f"out-{name}"
        result = cli(
            "run",
            "--league",
            "150700",
            "--month",
            "2025-03",
            "--logs",
            path,
            "--config",
            cfg,
            "--out",
            out,
            "-q",
        )
        assert result.exit_code == 0, (name, result.output[:300])
        manifest = json.loads((out / "manifests/league=150700/month=2025-03.json").read_text())
        assert (
            manifest["counts"]["rows_in"]
            == manifest["counts"]["parcels"] + manifest["counts"]["rejects"]
        )
        assert manifest["inputs"][0]["rows"] == manifest["counts"]["rows_in"], name


def test_a_reader_waits_while_another_process_briefly_writes(months, tmp_path):
    """DuckDB lets one process write or several read: a query started while a run records
    itself waits for it (up to SETTLE_BUSY_WAIT) instead of failing."""
    cfg, feb, *_ = months
    out = tmp_path / "out"
    assert settle_subprocess(cfg, out, "2025-02", feb).returncode == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('ok', flush=True); time.sleep(1.5); c.close(); time.sleep(30)",
            str(out / "settlement.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ok"
        started = time.monotonic()
        result = cli(
            "sql",
            "SELECT COUNT(*) AS n FROM runs",
            "--store",
            out / "settlement.duckdb",
            "--format",
            "csv",
        )
        assert (result.exit_code, result.output) == (0, "n\n1\n")
        assert time.monotonic() - started >= 1.0  # it waited for the writer
    finally:
        holder.kill()
        holder.wait()
