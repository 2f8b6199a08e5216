"""Claim reconciliation: a courier company's claimed waybills against a settled month.

One row per waybill with its status:
  PAID           paid to the company in the month's runs (paid_fen set)
  REJECTED       in the month's rejects (reason_code set)
  OTHER_COMPANY  paid in the month, but to another company
  NOT_SUBMITTED  in no log of the month's runs
  NOT_CLAIMED    paid to the company but not in the claim
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from .errors import RefusedError
from .ingest import read_raw, text_column
from .outputs import partition

CLAIM_ALIASES: dict[str, tuple[str, ...]] = {
    "waybill_no": ("运单号",),
    "claimed_yuan": ("申报金额", "申报金额(元)", "申报补贴", "申报补贴(元)"),
}
STATUSES = ("PAID", "REJECTED", "OTHER_COMPANY", "NOT_SUBMITTED", "NOT_CLAIMED")
STATUS_TEXT = {
    "PAID": "已支付给本企业",
    "REJECTED": "已剔除",
    "OTHER_COMPANY": "已支付给其他企业",
    "NOT_SUBMITTED": "未在本月日志中提交",
    "NOT_CLAIMED": "已支付但未申报",
}

RECONCILE_SQL = """
WITH claim AS (
    SELECT waybill_no, MIN(claim_row) AS claim_row, COUNT(*) AS claim_lines,
           -- claimed amounts are exact decimals, rounded half up to 分
           CAST(ROUND(SUM(TRY_CAST(claimed_yuan AS DECIMAL(18, 6))) * 100) AS BIGINT) AS claimed_fen,
           BOOL_OR(claimed_yuan IS NOT NULL AND TRY_CAST(claimed_yuan AS DECIMAL(18, 6)) IS NULL)
                                                                       AS claimed_unreadable
    FROM claims WHERE waybill_no IS NOT NULL GROUP BY waybill_no
),
paid AS (
    SELECT waybill_no, company, CAST(subsidy_fen AS BIGINT) AS paid_fen FROM ledger
),
rejected AS (
    SELECT waybill_no, arg_min(reason_code, source_file || ':' || lpad(CAST(source_row AS VARCHAR), 12, '0'))
           AS reason_code
    FROM rejects WHERE waybill_no IS NOT NULL GROUP BY waybill_no
)
SELECT
    COALESCE(c.waybill_no, p.waybill_no)                          AS waybill_no,
    CASE
        WHEN c.waybill_no IS NULL                  THEN 'NOT_CLAIMED'
        WHEN p.company = $company                  THEN 'PAID'
        WHEN p.company IS NOT NULL                 THEN 'OTHER_COMPANY'
        WHEN r.reason_code IS NOT NULL             THEN 'REJECTED'
        ELSE 'NOT_SUBMITTED'
    END                                                           AS status,
    CASE WHEN p.waybill_no IS NULL THEN r.reason_code END         AS reason_code,
    c.claimed_fen,
    CASE WHEN p.company = $company THEN p.paid_fen END            AS paid_fen,
    c.claim_row,
    c.claim_lines,
    c.claimed_unreadable
FROM claim c
FULL JOIN (SELECT * FROM paid WHERE company = $company
           UNION ALL
           SELECT p.* FROM paid p JOIN claim USING (waybill_no) WHERE p.company <> $company) p
  USING (waybill_no)
LEFT JOIN rejected r USING (waybill_no)
ORDER BY c.claim_row NULLS LAST, waybill_no
"""


@dataclass
class Reconciliation:
    rows: pl.DataFrame
    summary: list[dict]  # status, waybills, claimed_fen, paid_fen
    parquet: Path
    xlsx: Path
    duplicate_claims: int
    unreadable_amounts: int


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
    raw = read_raw(claim_file, CLAIM_ALIASES, ("waybill_no",))
    mapping = raw.mapping(claim_file, CLAIM_ALIASES, ("waybill_no",))
    claims = pl.DataFrame(
        [
            text_column(raw.frame, mapping["waybill_no"], "waybill_no"),
            text_column(raw.frame, mapping["claimed_yuan"], "claimed_yuan")
            if "claimed_yuan" in mapping
            else pl.repeat(None, raw.frame.height, dtype=pl.String, eager=True).alias(
                "claimed_yuan"
            ),
        ]
    ).with_columns(claim_row=pl.int_range(1, raw.frame.height + 1, dtype=pl.Int64))

    con = duckdb.connect(":memory:")
    try:
        con.register("claims", claims.to_arrow())
        con.execute(
            "CREATE VIEW ledger AS SELECT * FROM read_parquet(?)".replace("?", _list(ledgers))
        )
        con.execute(
            "CREATE VIEW rejects AS SELECT * FROM read_parquet(?)".replace("?", _list(rejects))
            if rejects
            else "CREATE VIEW rejects AS SELECT NULL::VARCHAR AS waybill_no, NULL::VARCHAR AS reason_code,"
            " NULL::VARCHAR AS source_file, NULL::BIGINT AS source_row WHERE false"
        )
        result = con.sql(RECONCILE_SQL, params={"company": company}).pl()
    finally:
        con.close()

    duplicate_claims = int((result["claim_lines"].fill_null(1) - 1).sum())
    unreadable = int(result["claimed_unreadable"].fill_null(False).sum())
    rows = result.select("waybill_no", "status", "reason_code", "claimed_fen", "paid_fen")
    summary = []
    for status in STATUSES:
        part = rows.filter(pl.col("status") == status)
        summary.append(
            {
                "status": status,
                "waybills": part.height,
                "claimed_fen": int(part["claimed_fen"].sum() or 0),
                "paid_fen": int(part["paid_fen"].sum() or 0),
            }
        )
    target = (target_dir or out_dir) / partition("reconciliation", league, month)
    target.mkdir(parents=True, exist_ok=True)
    parquet, xlsx = target / f"{company}.parquet", target / f"{company}.xlsx"
    tmp = target / f".{company}.parquet.tmp"
    rows.write_parquet(tmp)
    os.replace(tmp, parquet)
    _write_xlsx(xlsx, rows, summary, league, month, company)
    return Reconciliation(rows, summary, parquet, xlsx, duplicate_claims, unreadable)


def _list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _write_xlsx(
    path: Path, rows: pl.DataFrame, summary: list[dict], league: str, month: str, company: str
) -> None:
    import xlsxwriter

    from .money import fen_to_yuan

    tmp = path.with_name(f".{path.name}.tmp")
    wb = xlsxwriter.Workbook(
        str(tmp),
        {
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "constant_memory": True,
        },
    )
    bold = wb.add_format({"bold": True})
    head = wb.add_format({"bold": True, "border": 1, "bg_color": "#E8ECF2"})
    money = wb.add_format({"num_format": "#,##0.00"})
    ws = wb.add_worksheet("对账汇总")
    ws.write_string(0, 0, f"快递进村补贴对账单：盟市 {league}，{month}，企业 {company}", bold)
    for c, h in enumerate(["状态", "说明", "运单数", "申报金额(元)", "实付金额(元)"]):
        ws.write_string(2, c, h, head)
    for r, s in enumerate(summary, 3):
        ws.write_string(r, 0, s["status"])
        ws.write_string(r, 1, STATUS_TEXT[s["status"]])
        ws.write_number(r, 2, s["waybills"])
        ws.write_number(r, 3, float(fen_to_yuan(s["claimed_fen"])), money)
        ws.write_number(r, 4, float(fen_to_yuan(s["paid_fen"])), money)
    ws.set_column(0, 0, 16)
    ws.set_column(1, 1, 20)
    ws.set_column(2, 4, 14)
    detail = wb.add_worksheet("逐单对账")
    for c, h in enumerate(["运单号", "状态", "剔除原因代码", "申报金额(分)", "实付金额(分)"]):
        detail.write_string(0, c, h, head)
    for r, (waybill, status, reason, claimed, paid) in enumerate(rows.iter_rows(), 1):
        if r > 1_048_575:
            break
        detail.write_string(r, 0, waybill)
        detail.write_string(r, 1, status)
        if reason is not None:
            detail.write_string(r, 2, reason)
        if claimed is not None:
            detail.write_number(r, 3, claimed)
        if paid is not None:
            detail.write_number(r, 4, paid)
    detail.set_column(0, 0, 22)
    detail.set_column(1, 2, 16)
    wb.close()
    os.replace(tmp, path)
