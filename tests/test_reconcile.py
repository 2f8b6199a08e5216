"""Claim reconciliation line by line (field-trial issue, item 10): every claim line appears, the
report's claimed total is the file's, and claimed − paid is shown, counted and summed."""

from __future__ import annotations

import openpyxl
import polars as pl
import pytest
import xlsxwriter
from click.testing import CliRunner
from conftest import V1, V2, make_config, policy_text

from settlement.cli import main

HEADER = "waybill_no,company,delivered_at,village_code,distance_km,cost_yuan,revenue_yuan,proof\n"
PART = "league=150700/month=2025-03"


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    """March settled with no budget limit: A1 and A2 paid 15 分 each to ZTO, B1 to YTO, R1
    rejected. Each test reconciles into its own output directory (--store finds the month)."""
    root = tmp_path_factory.mktemp("reconcile")
    cfg = make_config(root / "config", policy_text())
    logs = root / "logs.csv"
    logs.write_text(
        HEADER
        + f"A1,ZTO,2025-03-05 10:00,{V1},12,2.00,0,签名\n"
        + f"A2,ZTO,2025-03-05 10:00,{V2},12,2.00,0,签名\n"
        + f"B1,YTO,2025-03-06 10:00,{V1},12,2.00,0,签名\n"
        + f"R1,ZTO,2025-03-06 10:00,{V1},far,2.00,0,签名\n",
        encoding="utf-8",
    )
    out = root / "out"
    args = ["run", "--league", "150700", "--month", "2025-03", "--logs", logs, "--config", cfg]
    result = cli(*args, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    ledger = pl.read_parquet(out / "ledger" / PART / "part-0.parquet")
    assert dict(zip(ledger["waybill_no"], ledger["subsidy_fen"], strict=True)) == {
        "A1": 15,
        "A2": 15,
        "B1": 15,
    }
    return cfg, out / "settlement.duckdb"


def reconcile(month, tmp_path, claim):
    cfg, store = month
    out = tmp_path / "report"
    result = cli(
        *("reconcile", "--league", "150700", "--month", "2025-03", "--company", "ZTO"),
        *("--claim", claim, "--store", store, "--out", out, "--config", cfg),
    )
    assert result.exit_code == 0, result.output
    return result.output, pl.read_parquet(out / "reconciliation" / PART / "ZTO.parquet"), out


def summary_line(output: str, status: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.split()[:1] == [status])


def test_a_line_without_a_waybill_keeps_the_files_total(month, tmp_path):
    # the field case: the file says 621.31 元; dropping the blank 运单号 line reported 621.21
    claim = tmp_path / "claim.csv"
    claim.write_text("运单号,申报金额\nA1,0.15\n,0.10\nNOPE,621.06\n", encoding="utf-8")
    output, rows, _ = reconcile(month, tmp_path, claim)
    assert rows.select("claim_line", "waybill_no", "status", "claimed_fen").rows() == [
        (2, "A1", "PAID", 15),
        (3, None, "NO_WAYBILL", 10),
        (4, "NOPE", "NOT_SUBMITTED", 62106),
        (None, "A2", "NOT_CLAIMED", None),
    ]
    assert rows["claimed_fen"].sum() == 62131
    assert summary_line(output, "合计") == ["合计", "4", "621.31", "0.30", "621.16"]
    assert summary_line(output, "NO_WAYBILL") == [
        "NO_WAYBILL",
        "运单号为空",
        "1",
        "0.10",
        "0.00",
        "0.10",
    ]
    assert "  运单号为空：第 3 行" in output.splitlines()


def test_claimed_30_paid_15_is_a_difference_of_15(month, tmp_path):
    claim = tmp_path / "claim.csv"
    claim.write_text("运单号,申报金额\nA1,0.30\nA2,0.15\n", encoding="utf-8")
    output, rows, out = reconcile(month, tmp_path, claim)
    assert rows.select("claim_line", "waybill_no", "status", "claimed_fen", "paid_fen").rows() == [
        (2, "A1", "PAID", 30, 15),
        (3, "A2", "PAID", 15, 15),
    ]
    assert rows["difference_fen"].to_list() == [15, 0]
    assert summary_line(output, "PAID") == ["PAID", "已支付给本企业", "2", "0.45", "0.30", "0.15"]
    assert "  申报金额与实付金额不同的申报行共 1 行，差额合计 0.15 元（申报 − 实付）。" in (
        output.splitlines()
    )
    wb = openpyxl.load_workbook(out / "reconciliation" / PART / "ZTO.xlsx")
    sheet = wb["逐行对账"]
    assert [c.value for c in sheet[2]] == [
        2,
        "A1",
        "PAID",
        "已支付给本企业",
        None,
        None,
        "0.30",
        0.3,
        0.15,
        0.15,
    ]
    assert sheet["H2"].data_type == "n" and sheet["H2"].number_format == "#,##0.00"
    summary = wb["对账汇总"]
    texts = [c.value for row in summary.iter_rows() for c in row if isinstance(c.value, str)]
    assert "申报金额与实付金额不同的申报行共 1 行，差额合计 0.15 元（申报 − 实付）。" in texts


def test_a_claim_workbook_with_a_title_row_numbers_lines_as_excel(month, tmp_path):
    claim = tmp_path / "claim.xlsx"
    wb = xlsxwriter.Workbook(str(claim))
    ws = wb.add_worksheet("三月申报")
    ws.write(0, 0, "中通快递 2025年3月 补贴申报")
    ws.write_row(1, 0, ["运单号", "申报金额(元)"])
    ws.write_row(2, 0, ["A1", 0.15])
    ws.write_row(4, 0, ["A1", 0.15])  # Excel row 4 left blank
    wb.close()
    _, rows, _ = reconcile(month, tmp_path, claim)
    assert rows.select("claim_line", "waybill_no", "status", "claimed_fen").rows() == [
        (3, "A1", "PAID", 15),
        (4, None, "NO_WAYBILL", None),
        (5, "A1", "REPEATED", 15),
        (None, "A2", "NOT_CLAIMED", None),
    ]
