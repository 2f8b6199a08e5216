"""Claim reconciliation: a courier company's claim file against a settled month, line by line.

One row per claim line (`claim_line` as Excel or an editor numbers it), with its status:
  PAID           paid to the company in the month's runs (paid_fen set)
  REJECTED       in the company's own rejected rows of the month (reason_code set)
  OTHER_COMPANY  paid in the month, but to another company
  NOT_SUBMITTED  in no log of the month's runs, or rejected only in another company's
  REPEATED       a waybill already claimed on an earlier line
  BAD_AMOUNT     the claimed amount is not a number
  NO_WAYBILL     the line has no 运单号
then one row per waybill paid to the company that no line claims:
  NOT_CLAIMED    paid to the company but not in the claim
The rules are sql/90_reconcile.sql; here the claim is read and the report written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from . import SQL_DIR
from .errors import RefusedError
from .ingest import read_raw, text_column
from .outputs import partition

CLAIM_ALIASES: dict[str, tuple[str, ...]] = {
    "waybill_no": ("运单号",),
    "claimed_yuan": ("申报金额", "申报金额(元)", "申报补贴", "申报补贴(元)"),
}
STATUSES = (
    "PAID",
    "REJECTED",
    "OTHER_COMPANY",
    "NOT_SUBMITTED",
    "REPEATED",
    "BAD_AMOUNT",
    "NO_WAYBILL",
    "NOT_CLAIMED",
)
STATUS_TEXT = {
    "PAID": "已支付给本企业",
    "REJECTED": "已剔除",
    "OTHER_COMPANY": "已支付给其他企业",
    "NOT_SUBMITTED": "未在本月日志中提交",
    "REPEATED": "运单号在前面的申报行已出现",
    "BAD_AMOUNT": "申报金额不是数字",
    "NO_WAYBILL": "运单号为空",
    "NOT_CLAIMED": "已支付但未申报",
}
#: Statuses whose rows have no difference_fen (nothing claimed, or no number to compare).
NO_DIFFERENCE = ("BAD_AMOUNT", "NOT_CLAIMED")
#: The report's columns (Parquet), in order.
COLUMNS = (
    "claim_line",
    "waybill_no",
    "status",
    "reason_code",
    "claimed_text",
    "claimed_fen",
    "paid_fen",
    "difference_fen",
)


@dataclass
class Reconciliation:
    rows: pl.DataFrame  # COLUMNS
    summary: list[
        dict
    ]  # per status: status, lines, claimed_fen, paid_fen, differing_lines, difference_fen
    total: dict  # the same over every row
    has_amounts: bool  # the claim file has an amount column
    parquet: Path
    xlsx: Path

    def compares(self, status: str | None) -> bool:
        """Whether a summary row's difference means anything (else it is shown as blank)."""
        return self.has_amounts and status not in NO_DIFFERENCE

    def lines_with(self, status: str, limit: int = 10) -> list[dict]:
        """The first claim lines of a status (for the notes under the summary)."""
        return self.rows.filter(pl.col("status") == status).head(limit).to_dicts()


def read_claim(claim_file: Path) -> tuple[pl.DataFrame, bool]:
    """The claim as claims(claim_line, waybill_no, claimed_yuan), and whether it has amounts."""
    return read_waybill_list(claim_file, CLAIM_ALIASES, "claimed_yuan", "claim_line")


def read_waybill_list(
    path: Path, aliases: dict[str, tuple[str, ...]], amount: str, line: str
) -> tuple[pl.DataFrame, bool]:
    """A list of waybills with an optional amount column (a claim, a clawback list) as
    (line, waybill_no, amount) text — line as Excel shows it, amount null when the file has no
    such column — and whether it has one."""
    raw = read_raw(path, aliases, ("waybill_no",))
    mapping = raw.mapping(path, aliases, ("waybill_no",))
    height = raw.frame.height
    amounts = (
        text_column(raw.frame, mapping[amount], amount)
        if amount in mapping
        else pl.repeat(None, height, dtype=pl.String, eager=True).alias(amount)
    )
    rows = pl.DataFrame(
        [
            pl.int_range(
                raw.header_line + 1, raw.header_line + height + 1, dtype=pl.Int64, eager=True
            ).alias(line),
            text_column(raw.frame, mapping["waybill_no"], "waybill_no"),
            amounts,
        ]
    )
    return rows, amount in mapping


def reconcile(
    out_dir: Path,
    league: str,
    month: str,
    company: str,
    claim_file: Path,
    known_companies: set[str],
    target_dir: Path | None = None,
) -> Reconciliation:
    """Reconcile one company's claim for a settled 盟市-month; write Parquet and XLSX."""
    if company not in known_companies:
        raise RefusedError(f"企业编码 {company} 未在 companies.toml 中登记")
    ledgers = sorted((out_dir / partition("ledger", league, month)).glob("*.parquet"))
    rejects = sorted((out_dir / partition("rejects", league, month)).glob("*.parquet"))
    if not ledgers:
        raise RefusedError(
            f"盟市 {league} {month} 尚未结算（{out_dir / 'ledger'} 下没有该月明细账）"
        )
    claims, has_amounts = read_claim(claim_file)

    con = duckdb.connect(":memory:")
    try:
        con.register("claims", claims.to_arrow())
        con.register("reconcile_params", pa.table({"company": [company]}))
        con.execute(f"CREATE VIEW ledger AS SELECT * FROM read_parquet({_list(ledgers)})")
        con.execute(
            f"CREATE VIEW rejects AS SELECT * FROM read_parquet({_list(rejects)})"
            if rejects
            else "CREATE VIEW rejects AS SELECT NULL::VARCHAR AS waybill_no, NULL::VARCHAR AS reason_code,"
            " NULL::VARCHAR AS source_file, NULL::BIGINT AS source_row, NULL::VARCHAR AS company"
            " WHERE false"
        )
        con.execute((SQL_DIR / "90_reconcile.sql").read_text(encoding="utf-8"))
        rows = con.sql(f"SELECT {', '.join(COLUMNS)} FROM reconciliation").pl()
        by_status = {
            r["status"]: r for r in con.sql("SELECT * FROM reconciliation_summary").pl().to_dicts()
        }
    finally:
        con.close()

    none = {"lines": 0, "claimed_fen": 0, "paid_fen": 0, "differing_lines": 0, "difference_fen": 0}
    summary = [none | by_status.get(status, {}) | {"status": status} for status in STATUSES]
    total = none | by_status.get(None, {}) | {"status": None}
    target = (target_dir or out_dir) / partition("reconciliation", league, month)
    target.mkdir(parents=True, exist_ok=True)
    parquet, xlsx = target / f"{company}.parquet", target / f"{company}.xlsx"
    tmp = target / f".{company}.parquet.tmp"
    rows.write_parquet(tmp)
    os.replace(tmp, parquet)
    result = Reconciliation(rows, summary, total, has_amounts, parquet, xlsx)
    _write_xlsx(xlsx, result, league, month, company, claim_file)
    return result


def _list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _write_xlsx(
    path: Path, result: Reconciliation, league: str, month: str, company: str, claim_file: Path
) -> None:
    """The report for people: a summary sheet and one sheet of every line, in Chinese, amounts
    in 元 as numbers."""
    from .money import fen_to_yuan
    from .reasons import REASONS
    from .statements.xlsx import new_workbook

    def yuan(fen: int) -> float:
        return float(fen_to_yuan(fen))

    tmp = path.with_name(f".{path.name}.tmp")
    wb = new_workbook(tmp, in_memory=False, constant_memory=True)
    bold = wb.add_format({"bold": True})
    head = wb.add_format({"bold": True, "border": 1, "bg_color": "#E8ECF2"})
    money = wb.add_format({"num_format": "#,##0.00"})
    money_bold = wb.add_format({"num_format": "#,##0.00", "bold": True})
    ws = wb.add_worksheet("对账汇总")
    ws.write_string(0, 0, f"快递进村补贴对账单：盟市 {league}，{month}，企业 {company}", bold)
    ws.write_string(1, 0, f"申报文件：{claim_file.name}")
    headers = [
        "状态",
        "说明",
        "行数",
        "申报金额(元)",
        "实付金额(元)",
        "差额(元)",
        "差额不为0的行数",
    ]
    for c, h in enumerate(headers):
        ws.write_string(3, c, h, head)
    r = 4
    for s in [*result.summary, result.total]:
        total = s["status"] is None
        ws.write_string(r, 0, "合计" if total else s["status"], bold if total else None)
        ws.write_string(r, 1, "" if total else STATUS_TEXT[s["status"]])
        ws.write_number(r, 2, s["lines"])
        ws.write_number(r, 3, yuan(s["claimed_fen"]), money_bold if total else money)
        ws.write_number(r, 4, yuan(s["paid_fen"]), money_bold if total else money)
        if result.compares(s["status"]):
            ws.write_number(r, 5, yuan(s["difference_fen"]), money_bold if total else money)
            ws.write_number(r, 6, s["differing_lines"])
        r += 1
    ws.write_string(r + 1, 0, difference_note(result))
    ws.write_string(
        r + 2,
        0,
        "差额 = 申报金额 − 实付金额；未支付的运单实付按 0 计；未申报（NOT_CLAIMED）的运单不计差额。",
    )
    ws.set_column(0, 0, 16)
    ws.set_column(1, 1, 26)
    ws.set_column(2, 6, 14)
    ws.set_landscape()
    ws.fit_to_pages(1, 0)  # printed one page wide
    detail = wb.add_worksheet("逐行对账")
    headers = [
        "申报行号",
        "运单号",
        "状态",
        "状态说明",
        "剔除原因代码",
        "剔除原因",
        "申报金额(原文)",
        "申报金额(元)",
        "实付金额(元)",
        "差额(元)",
    ]
    for c, h in enumerate(headers):
        detail.write_string(0, c, h, head)
    for r, rec in enumerate(result.rows.iter_rows(named=True), 1):
        if r > 1_048_575:  # Excel's last row: the Parquet beside it has every line
            break
        if rec["claim_line"] is not None:
            detail.write_number(r, 0, rec["claim_line"])
        if rec["waybill_no"] is not None:
            detail.write_string(r, 1, rec["waybill_no"])
        detail.write_string(r, 2, rec["status"])
        detail.write_string(r, 3, STATUS_TEXT[rec["status"]])
        if rec["reason_code"] is not None:
            detail.write_string(r, 4, rec["reason_code"])
            detail.write_string(r, 5, REASONS.get(rec["reason_code"], ""))
        if rec["claimed_text"] is not None:
            detail.write_string(r, 6, rec["claimed_text"])
        for c, key in ((7, "claimed_fen"), (8, "paid_fen"), (9, "difference_fen")):
            if rec[key] is not None:
                detail.write_number(r, c, yuan(rec[key]), money)
    detail.set_column(0, 0, 10)
    detail.set_column(1, 1, 22)
    detail.set_column(2, 2, 16)
    detail.set_column(3, 3, 26)
    detail.set_column(4, 4, 16)
    detail.set_column(5, 5, 30)
    detail.set_column(6, 9, 14)
    detail.freeze_panes(1, 0)
    detail.repeat_rows(0)
    detail.set_landscape()
    detail.fit_to_pages(1, 0)
    wb.close()
    os.replace(tmp, path)


def difference_note(result: Reconciliation) -> str:
    """One sentence on the lines whose claimed amount differs from what was paid."""
    from .money import format_yuan

    if not result.has_amounts:
        return "申报文件没有申报金额列，不计算差额。"
    t = result.total
    return (
        f"申报金额与实付金额不同的申报行共 {t['differing_lines']:,} 行，"
        f"差额合计 {format_yuan(t['difference_fen'])} 元（申报 − 实付）。"
    )
