"""Monthly settlement statements (结算单), the public notice (公示名单) and their manifest.

Rendered from the published Parquet of a 盟市-month's regular run, so `settle statement` can
render them again at any time. Text from logs is untrusted: in XLSX it is always written as a
string cell (never a formula), in HTML always escaped, in CSV guarded against formula prefixes.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from . import SQL_DIR, shipped
from .config import Config
from .db import scratch_connection
from .errors import RefusedError
from .money import fen_to_yuan, format_yuan, rmb_upper
from .outputs import PART_FILE, manifest_path, partition, sha256_file
from .period import Month
from .reasons import REASONS, SHORT
from .store import connect_readonly

#: Listings (rejected rows, parcel detail) longer than this go to a CSV beside the XLSX, which
#: DuckDB writes at a million rows a second; xlsxwriter writes about 100,000 cells a second, so a
#: 20,000-row, 13-column detail sheet took 3 s per company.
XLSX_LISTING_MAX_ROWS = 5_000
#: A company's parcel detail longer than XLSX_LISTING_MAX_ROWS is not written with every run
#: (at 10 million parcels that was 500 MB of CSV and a quarter of the run's time; the ledger
#: holds it already): `settle statement --with-detail` writes it beside the statements, up to
#: this many rows (Excel's sheet limit less the header), and `settle statement --company C
#: --detail-csv FILE` exports one company's detail of any length.
CSV_LISTING_MAX_ROWS = 1_048_575
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class MonthData:
    league: str
    league_name: str
    month: str
    run_id: str
    generated_at: str
    versions: list[dict]
    lines: pl.DataFrame  # statement_lines
    company_names: dict[str, str]
    county_names: dict[str, str]
    adjustments: pl.DataFrame  # supplementary runs paid in this month, per company
    con: duckdb.DuckDBPyConnection = field(repr=False)
    folder: Path = Path(".")  # where the statements are written
    with_detail: bool = False  # long parcel details as CSV beside the statements

    def company_lines(self, company: str | None) -> pl.DataFrame:
        if company is None:
            return self.lines
        return self.lines.filter(pl.col("company") == company)


def statements_dir(out_dir: Path, league: str, month: str) -> Path:
    return out_dir / partition("statements", league, month)


def _load(out_dir: Path, cfg: Config, league: str, month: Month, store: Path) -> MonthData:
    ledger = out_dir / partition("ledger", league, str(month)) / PART_FILE
    if not ledger.exists():
        raise RefusedError(f"盟市 {league} {month} 尚未结算（没有 {ledger}），无法生成结算单")
    manifest = json.loads(manifest_path(out_dir, league, str(month)).read_text(encoding="utf-8"))
    con = scratch_connection()
    for kind in ("ledger", "rejects", "units"):
        path = out_dir / partition(kind, league, str(month)) / PART_FILE
        quoted = str(path).replace("'", "''")
        con.execute(f"CREATE VIEW month_{kind} AS SELECT * FROM read_parquet('{quoted}')")
        if kind == "rejects" and "source_line" not in con.sql("FROM month_rejects").columns:
            # written before source_line: the header taken to be on the first line, as it was
            # for nearly every file then
            con.execute(
                "CREATE OR REPLACE VIEW month_rejects AS "
                f"SELECT *, source_row + 1 AS source_line FROM read_parquet('{quoted}')"
            )
    con.register(
        "_villages",
        cfg.villages.filter(pl.col("league_code") == league)
        .select("code", "county_code")
        .to_arrow(),
    )
    con.execute("CREATE TABLE villages AS SELECT * FROM _villages")
    con.execute(shipped(SQL_DIR / "80_statement_lines.sql").read_text(encoding="utf-8"))
    lines = con.sql("SELECT * FROM statement_lines").pl()
    return MonthData(
        league=league,
        league_name=manifest["league_name"],
        month=str(month),
        run_id=manifest["run_id"],
        generated_at=manifest["finished_at"],
        versions=[v for v in manifest["policy"]["versions"] if v["parcels_settled"]]
        or manifest["policy"]["versions"],
        lines=lines,
        company_names={c.code: c.name for c in cfg.companies.values()},
        county_names=cfg.county_names(),
        adjustments=_adjustments(store, league, month),
        con=con,
    )


def _adjustments(store: Path, league: str, month: Month) -> pl.DataFrame:
    """Supplementary runs (of sealed months) whose payout is booked in this month, per company."""
    empty = pl.DataFrame(
        schema={
            "run_id": pl.String,
            "month": pl.String,
            "company": pl.String,
            "parcels": pl.Int64,
            "subsidy_fen": pl.Int64,
        }
    )
    if not store.exists():
        return empty
    con = connect_readonly(store)
    try:
        df = con.sql(
            """
            SELECT r.run_id, r.month, s.company, COUNT(*) AS parcels,
                   CAST(SUM(s.subsidy_fen) AS BIGINT) AS subsidy_fen
            FROM runs r JOIN settled_waybills s USING (run_id)
            WHERE r.kind = 'supplementary' AND r.status = 'current'
              AND r.league_code = ? AND r.payable_in_month = ?
            GROUP BY ALL ORDER BY r.month, r.run_id, s.company
            """,
            params=[league, str(month)],
        ).pl()
    finally:
        con.close()
    return df if df.height else empty


# --------------------------------------------------------------------------- shared pieces


def excel_safe(value: object) -> str:
    """Untrusted text for CSV: a leading formula character is neutralised with an apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _totals(lines: pl.DataFrame) -> dict:
    cols = [
        "submitted",
        "accepted",
        "rejected",
        "gross_fen",
        "breakeven_reduction_fen",
        "budget_reduction_fen",
        "subsidy_fen",
    ]
    return {c: int(lines[c].sum() or 0) for c in cols}


def _reasons_in(lines: pl.DataFrame) -> list[str]:
    present = set()
    for m in lines["rejected_by_reason"].to_list():
        if m:
            present |= {entry["key"] for entry in m} if isinstance(m, list) else set(m)
    return [code for code in REASONS if code in present]


def _reason_counts(value) -> dict[str, int]:
    if not value:
        return {}
    if isinstance(value, list):
        return {e["key"]: e["value"] for e in value}
    return dict(value)


def _county_label(data: MonthData, code: str | None) -> tuple[str, str]:
    if code is None:
        return "—", "（非本盟市或无法识别）"
    return code, data.county_names.get(code, "")


def _title(data: MonthData, company: str | None) -> str:
    if company is None:
        return f"{data.league_name}快递进村补贴结算汇总表"
    return f"{data.league_name}快递进村补贴结算单"


def _company_label(data: MonthData, company: str) -> str:
    name = data.company_names.get(company)
    return f"{name}（{company}）" if name else f"未登记企业（{company or '空'}）"


# --------------------------------------------------------------------------- XLSX


MONEY_COLUMNS = ("gross_fen", "breakeven_reduction_fen", "budget_reduction_fen", "subsidy_fen")


@dataclass
class Layout:
    """What one statement shows, computed once for both the XLSX and the HTML."""

    title: str
    info: list[tuple[str, str]]
    headers: list[str]
    rows: list[tuple[str, str, list[int], list[int]]]  # county code, name, counts, money 分
    total_counts: list[int]
    totals: dict
    adjustments: pl.DataFrame

    @property
    def due_fen(self) -> int:
        """本期实付: the month's payable plus supplementary adjustments booked in it."""
        return self.totals["subsidy_fen"] + int(self.adjustments["subsidy_fen"].sum() or 0)


def _layout(data: MonthData, company: str | None) -> Layout:
    lines = data.company_lines(company)
    reasons = _reasons_in(lines)
    generated = dt.datetime.fromisoformat(data.generated_at).strftime("%Y-%m-%d %H:%M:%S")
    info = [
        ("盟市", f"{data.league_name}（{data.league}）"),
        ("快递企业", "全部企业" if company is None else _company_label(data, company)),
        ("结算月份", data.month),
        ("政策版本", "；".join(f"{v['id']}：{v['reference']}" for v in data.versions)),
        ("结算批次", data.run_id),
        ("生成时间", generated + "（UTC）"),
    ]
    headers = (
        ["旗县代码", "旗县名称", "提交行数", "受理件数", "剔除行数"]
        + [f"剔除:{SHORT[c]}" for c in reasons]
        + ["基础补贴(元)", "盈亏平衡核减(元)", "预算调减(元)", "应付补贴(元)"]
    )
    by_county = (
        lines.group_by("county_code")
        .agg(
            pl.col("submitted", "accepted", "rejected", *MONEY_COLUMNS).sum(),
            pl.col("rejected_by_reason"),
        )
        .sort("county_code", nulls_last=True)
    )
    rows = []
    for rec in by_county.iter_rows(named=True):
        code, name = _county_label(data, rec["county_code"])
        counts: dict[str, int] = {}
        for m in rec["rejected_by_reason"]:
            for k, v in _reason_counts(m).items():
                counts[k] = counts.get(k, 0) + v
        rows.append(
            (
                code,
                name,
                [rec["submitted"], rec["accepted"], rec["rejected"]]
                + [counts.get(c, 0) for c in reasons],
                [rec[k] for k in MONEY_COLUMNS],
            )
        )
    totals = _totals(lines)
    total_counts = [totals["submitted"], totals["accepted"], totals["rejected"]] + [
        sum(r[2][3 + i] for r in rows) for i in range(len(reasons))
    ]
    adjustments = (
        data.adjustments
        if company is None
        else data.adjustments.filter(pl.col("company") == company)
    )
    return Layout(_title(data, company), info, headers, rows, total_counts, totals, adjustments)


def _write_xlsx(path: Path, data: MonthData, company: str | None) -> dict:
    import xlsxwriter

    lay = _layout(data, company)
    totals = lay.totals
    created = dt.datetime.fromisoformat(data.generated_at).replace(tzinfo=None)
    wb = xlsxwriter.Workbook(
        str(path),
        {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False},
    )
    wb.set_properties(
        {
            "title": lay.title,
            "author": f"{data.league_name}邮政管理局",
            "created": created,
            "comments": f"结算批次 {data.run_id}",
        }
    )
    f_title = wb.add_format({"bold": True, "font_size": 16, "align": "center"})
    f_label = wb.add_format({"bold": True})
    f_head = wb.add_format(
        {
            "bold": True,
            "border": 1,
            "bg_color": "#E8ECF2",
            "align": "center",
            "valign": "vcenter",
            "text_wrap": True,
        }
    )
    f_text = wb.add_format({"border": 1})
    f_int = wb.add_format({"border": 1, "num_format": "#,##0"})
    f_money = wb.add_format({"border": 1, "num_format": "#,##0.00"})
    f_total_text = wb.add_format({"border": 1, "bold": True})
    f_total_int = wb.add_format({"border": 1, "bold": True, "num_format": "#,##0"})
    f_total_money = wb.add_format({"border": 1, "bold": True, "num_format": "#,##0.00"})

    ws = wb.add_worksheet("结算单")
    ws.set_paper(9)  # A4
    ws.set_landscape()
    ws.fit_to_pages(1, 0)
    width = len(lay.headers)
    ws.merge_range(0, 0, 0, width - 1, lay.title, f_title)
    row = 2
    f_info = wb.add_format({"text_wrap": True, "valign": "top"})
    for label, value in lay.info:
        ws.write_string(row, 0, label, f_label)
        ws.merge_range(row, 1, row, width - 1, value, f_info)
        if len(value) > 90:
            ws.set_row(row, 30)
        row += 1
    row += 1
    ws.set_row(row, 36)
    for c, h in enumerate(lay.headers):
        ws.write_string(row, c, h, f_head)
    first_data = row + 1

    def numbers(row: int, counts: list[int], money: list[int], f_count, f_yuan) -> None:
        for c, v in enumerate(counts, 2):
            ws.write_number(row, c, v, f_count)
        for c, v in enumerate(money, 2 + len(counts)):
            ws.write_number(row, c, float(fen_to_yuan(v)), f_yuan)

    for code, name, counts, money in lay.rows:
        row += 1
        ws.write_string(row, 0, code, f_text)
        ws.write_string(row, 1, name, f_text)
        numbers(row, counts, money, f_int, f_money)
    last_data = row
    row += 1
    ws.write_string(row, 0, "合计", f_total_text)
    ws.write_string(row, 1, "", f_total_text)
    numbers(row, lay.total_counts, [totals[k] for k in MONEY_COLUMNS], f_total_int, f_total_money)
    row += 2
    ws.write_string(row, 0, "应付补贴（大写）", f_label)
    ws.write_string(
        row, 2, f"人民币{rmb_upper(totals['subsidy_fen'])}（¥{format_yuan(totals['subsidy_fen'])}）"
    )
    if lay.adjustments.height:
        row += 2
        ws.write_string(row, 0, "补充结算调整（已封存月份迟到投递，计入本期）", f_label)
        row += 1
        for c, h in enumerate(["所属月份", "结算批次", "企业", "件数", "金额(元)"]):
            ws.write_string(row, c, h, f_head)
        for rec in lay.adjustments.iter_rows(named=True):
            row += 1
            ws.write_string(row, 0, rec["month"], f_text)
            ws.write_string(row, 1, rec["run_id"], f_text)
            ws.write_string(row, 2, _company_label(data, rec["company"]), f_text)
            ws.write_number(row, 3, rec["parcels"], f_int)
            ws.write_number(row, 4, float(fen_to_yuan(rec["subsidy_fen"])), f_money)
        row += 2
        ws.write_string(row, 0, "本期实付合计", f_label)
        ws.write_string(row, 2, f"人民币{rmb_upper(lay.due_fen)}（¥{format_yuan(lay.due_fen)}）")
    row += 3
    ws.write_string(row, 0, "经办人：", f_label)
    ws.write_string(row, 3, "审核人：", f_label)
    ws.write_string(row, 6, "负责人：", f_label)
    row += 2
    ws.write_string(row, 0, "（盖章）", f_label)
    ws.write_string(row, 3, "日期：    年    月    日", f_label)
    ws.set_column(0, 0, 12)
    ws.set_column(1, 1, 26)
    ws.set_column(2, width - 1, 13)

    if company is None:
        chart = wb.add_chart({"type": "bar"})
        chart.add_series(
            {
                "name": "应付补贴(元)",
                "categories": ["结算单", first_data, 1, last_data, 1],
                "values": ["结算单", first_data, width - 1, last_data, width - 1],
                "data_labels": {"value": True, "num_format": "#,##0.00"},
            }
        )
        chart.set_title({"name": "各旗县应付补贴（元）"})
        chart.set_legend({"none": True})
        chart.set_y_axis({"reverse": True})
        chart.set_size({"width": 720, "height": max(300, 22 * (last_data - first_data + 1) + 90)})
        ws.insert_chart(row + 3, 0, chart)
        by_company = (
            data.lines.group_by("company")
            .agg(pl.col("submitted", "accepted", "rejected", *MONEY_COLUMNS).sum())
            .sort("company")
        )
        wc = wb.add_worksheet("分企业汇总")
        for c, h in enumerate(
            [
                "企业",
                "提交行数",
                "受理件数",
                "剔除行数",
                "基础补贴(元)",
                "盈亏平衡核减(元)",
                "预算调减(元)",
                "应付补贴(元)",
            ]
        ):
            wc.write_string(0, c, h, f_head)
        for r, rec in enumerate(by_company.iter_rows(named=True), 1):
            wc.write_string(r, 0, _company_label(data, rec["company"]), f_text)
            for c, key in enumerate(["submitted", "accepted", "rejected"], 1):
                wc.write_number(r, c, rec[key], f_int)
            for c, key in enumerate(
                ["gross_fen", "breakeven_reduction_fen", "budget_reduction_fen", "subsidy_fen"], 4
            ):
                wc.write_number(r, c, float(fen_to_yuan(rec[key])), f_money)
        wc.set_column(0, 0, 24)
        wc.set_column(1, 7, 15)

    extra = _reject_sheet(wb, data, company, f_head, company or "summary")
    if company is not None:
        extra += _detail_sheets(wb, data, company, f_head)
    wb.define_name("TOTAL_SUBSIDY_YUAN", f"={fen_to_yuan(totals['subsidy_fen'])}")
    wb.define_name("TOTAL_PARCELS", f"={totals['accepted']}")
    wb.close()
    return totals, extra


def _csv_companion(data: MonthData, path: Path, select: str, params: list) -> None:
    """A large listing as UTF-8 CSV with BOM (Excel reads it), written by DuckDB, not row by row.
    Text from logs that starts like a formula is prefixed with an apostrophe."""
    tmp = path.with_name(f".{path.name}.tmp")
    quoted = str(tmp).replace("'", "''")
    data.con.execute(f"COPY ({select}) TO '{quoted}' (HEADER, DELIMITER ',')", params)
    bom = path.with_name(f".{path.name}.bom")
    with bom.open("wb") as out, tmp.open("rb") as src:
        out.write(b"\xef\xbb\xbf")
        shutil.copyfileobj(src, out, 1 << 20)
    tmp.unlink()
    os.replace(bom, path)


def _guard(column: str) -> str:
    """SQL for untrusted text in CSV: a leading = + - @ gets an apostrophe."""
    apostrophe = "''''"
    return (
        f"CASE WHEN left({column}, 1) IN ('=', '+', '-', '@') "
        f"THEN {apostrophe} || {column} ELSE {column} END"
    )


def _reject_sheet(wb, data: MonthData, company: str | None, f_head, stem: str) -> list[Path]:
    ws = wb.add_worksheet("剔除明细")
    headers = ["文件", "行号", "运单号", "企业", "原因代码", "原因", "说明"]
    for c, h in enumerate(headers):
        ws.write_string(0, c, h, f_head)
    ws.set_column(0, 0, 30)
    ws.set_column(2, 2, 20)
    ws.set_column(5, 6, 40)
    where = "" if company is None else "WHERE company = ?"
    params = [] if company is None else [company]
    count = data.con.execute(f"SELECT COUNT(*) FROM month_rejects {where}", params).fetchall()[0][0]
    if count > XLSX_LISTING_MAX_ROWS:
        path = data.folder / f"{stem}.rejects.csv"
        _csv_companion(
            data,
            path,
            f"SELECT source_file AS 文件, source_line AS 行号, {_guard('waybill_no')} AS 运单号, "
            f"{_guard('company')} AS 企业, reason_code AS 原因代码, reason AS 原因, detail AS 说明 "
            f"FROM month_rejects {where} ORDER BY source_file, source_row",
            params,
        )
        ws.write_string(
            1, 0, f"剔除行共 {count:,} 行，超过 {XLSX_LISTING_MAX_ROWS:,} 行，见同目录 {path.name}"
        )
        return [path]
    cursor = data.con.execute(
        "SELECT source_file, source_line, waybill_no, company, reason_code, reason, detail "
        f"FROM month_rejects {where} ORDER BY source_file, source_row",
        params,
    )
    row = 0
    while batch := cursor.fetchmany(10_000):
        for rec in batch:
            row += 1
            ws.write_string(row, 0, rec[0])
            ws.write_number(row, 1, rec[1])
            for c, v in enumerate(rec[2:], 2):
                ws.write_string(row, c, "" if v is None else str(v))
    return []


DETAIL_COLUMNS = [
    ("运单号", "waybill_no"),
    ("签收时间", "delivered_at"),
    ("嘎查村代码", "village_code"),
    ("旗县代码", "county_code"),
    ("派送距离(公里)", "distance_km"),
    ("派送成本(元)", "cost_yuan"),
    ("派费收入(元)", "revenue_yuan"),
    ("区域类别", "area_class"),
    ("政策版本", "policy_version"),
    ("单量(件/月)", "village_volume"),
    ("费率(分)", "rate_fen"),
    ("结算单元", "unit_key"),
    ("补贴(分)", "subsidy_fen"),
]


def _plain_decimal(text: str | None) -> str:
    """'12.500000' -> '12.5', '3.000000' -> '3' (DECIMAL text, shown as people write it)."""
    if text is None:
        return ""
    return text.rstrip("0").rstrip(".") if "." in text else text


def _detail_csv(data: MonthData, company: str, path: Path) -> None:
    """A company's parcel detail (投递量明细) as CSV, by 旗县 and waybill."""
    cols = (
        ", ".join(
            f"{_guard('waybill_no')} AS {h}" if c == "waybill_no" else f"{c} AS {h}"
            for h, c in DETAIL_COLUMNS
        )
        .replace("(公里)", "_公里")
        .replace("(元)", "_元")
        .replace("(分)", "_分")
        .replace("(件/月)", "_件每月")
    )
    _csv_companion(
        data,
        path,
        f"SELECT {cols} FROM month_ledger WHERE company = ? ORDER BY county_code, waybill_no",
        [company],
    )


def export_detail(
    out_dir: Path, cfg: Config, league: str, month: Month, company: str, path: Path
) -> int:
    """Write one company's parcel detail of a settled month to `path` (CSV); its row count."""
    data = _load(out_dir, cfg, league, month, out_dir / "settlement.duckdb")
    try:
        count = data.con.execute(
            "SELECT COUNT(*) FROM month_ledger WHERE company = ?", [company]
        ).fetchall()[0][0]
        if count == 0:
            raise RefusedError(f"企业 {company} 在盟市 {league} {month} 没有受理的投递")
        path.parent.mkdir(parents=True, exist_ok=True)
        _detail_csv(data, company, path)
        return count
    finally:
        data.con.close()


def detail_csv_name(company: str) -> str:
    """A company's parcel detail written beside the statements on request (--with-detail)."""
    return f"{company}.detail.csv"


def details_written(out_dir: Path, league: str, month: Month) -> bool:
    """Whether the month's statements have parcel details written on request beside them."""
    return any(statements_dir(out_dir, league, str(month)).glob(detail_csv_name("*")))


def _detail_sheets(wb, data: MonthData, company: str, f_head) -> list[Path]:
    ws = wb.add_worksheet("投递量明细表")
    for c, (h, _) in enumerate(DETAIL_COLUMNS):
        ws.write_string(0, c, h, f_head)
    ws.set_column(0, 0, 20)
    ws.set_column(1, 1, 19)
    ws.set_column(2, 2, 14)
    count = int(data.company_lines(company).get_column("accepted").sum())
    export = (
        f"settle statement --league {data.league} --month {data.month} --company {company} "
        "--detail-csv 文件名.csv 导出"
    )
    if count > XLSX_LISTING_MAX_ROWS and data.with_detail and count <= CSV_LISTING_MAX_ROWS:
        path = data.folder / detail_csv_name(company)
        _detail_csv(data, company, path)
        ws.write_string(
            1,
            0,
            f"投递量明细共 {count:,} 件，超过 {XLSX_LISTING_MAX_ROWS:,} 件，见同目录 {path.name}",
        )
        return [path]
    if count > CSV_LISTING_MAX_ROWS:
        ws.write_string(
            1,
            0,
            f"投递量明细共 {count:,} 件，超过 Excel 单表上限，未随结算单生成；明细见本月账本 "
            f"ledger/league={data.league}/month={data.month}/，或运行 {export}",
        )
        return []
    if count > XLSX_LISTING_MAX_ROWS:
        ws.write_string(
            1,
            0,
            f"投递量明细共 {count:,} 件，超过 {XLSX_LISTING_MAX_ROWS:,} 件，未随结算单生成；运行 "
            f"settle statement --league {data.league} --month {data.month} --with-detail "
            f"另存为同目录 {detail_csv_name(company)}，或运行 {export}",
        )
        return []
    cols = ", ".join(
        f"strftime({c}, '%Y-%m-%d %H:%M:%S')"
        if c == "delivered_at"
        else f"CAST({c} AS VARCHAR)"
        if c in ("distance_km", "cost_yuan", "revenue_yuan")
        else c
        for _, c in DETAIL_COLUMNS
    )
    cursor = data.con.execute(
        f"SELECT {cols} FROM month_ledger WHERE company = ? ORDER BY county_code, waybill_no",
        [company],
    )
    numeric = {"village_volume", "rate_fen", "subsidy_fen"}
    row = 0
    while batch := cursor.fetchmany(10_000):
        for rec in batch:
            row += 1
            for c, ((_, name), v) in enumerate(zip(DETAIL_COLUMNS, rec, strict=True)):
                if name in numeric:
                    ws.write_number(row, c, v)
                elif name in ("distance_km", "cost_yuan", "revenue_yuan"):
                    ws.write_string(row, c, _plain_decimal(v))
                else:
                    ws.write_string(row, c, "" if v is None else str(v))
    return []


# --------------------------------------------------------------------------- HTML

CSS = """
@page { size: A4 landscape; margin: 14mm 12mm; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "SimSun", sans-serif;
       color: #111; font-size: 10.5pt; margin: 0; }
h1 { text-align: center; font-size: 18pt; letter-spacing: 2px; margin: 0 0 10px; }
table.info { border-collapse: collapse; margin-bottom: 10px; }
table.info th { text-align: left; padding: 2px 14px 2px 0; white-space: nowrap; }
table.info td { padding: 2px 0; }
table.lines { border-collapse: collapse; width: 100%; }
table.lines th, table.lines td { border: 1px solid #444; padding: 3px 5px; }
table.lines th { background: #e8ecf2; font-weight: bold; }
table.lines td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.lines tr.total td { font-weight: bold; }
table.lines td:nth-child(2) { white-space: nowrap; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; }
p.words { margin: 10px 0; font-size: 11pt; }
h2 { font-size: 12pt; margin: 18px 0 6px; }
.signatures { display: flex; justify-content: space-between; margin-top: 36px; font-size: 11pt; }
.signatures span { min-width: 22%; }
.stamp { margin-top: 28px; font-size: 11pt; }
.note { color: #555; font-size: 9pt; }
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _html_document(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _write_html(path: Path, data: MonthData, company: str | None) -> None:
    lay = _layout(data, company)
    totals = lay.totals
    out = [f"<h1>{_e(lay.title)}</h1>", '<table class="info">']
    out += [f"<tr><th>{_e(k)}：</th><td>{_e(v)}</td></tr>" for k, v in lay.info]
    out.append("</table>")
    out.append(
        '<table class="lines"><thead><tr>'
        + "".join(f"<th>{_e(h)}</th>" for h in lay.headers)
        + "</tr></thead><tbody>"
    )

    def cells(counts: list[int], money: list[int]) -> str:
        return "".join(f'<td class="n">{v:,}</td>' for v in counts) + "".join(
            f'<td class="n">{format_yuan(v)}</td>' for v in money
        )

    for code, name, counts, money in lay.rows:
        out.append(f"<tr><td>{_e(code)}</td><td>{_e(name)}</td>{cells(counts, money)}</tr>")
    out.append(
        '<tr class="total"><td>合计</td><td></td>'
        + cells(lay.total_counts, [totals[k] for k in MONEY_COLUMNS])
        + "</tr></tbody></table>"
    )
    out.append(
        f'<p class="words">应付补贴合计（大写）：人民币{rmb_upper(totals["subsidy_fen"])}'
        f'（<span id="total-subsidy">¥{format_yuan(totals["subsidy_fen"])}</span>）；'
        f'受理 <span id="total-parcels">{totals["accepted"]:,}</span> 件。</p>'
    )
    if lay.adjustments.height:
        out.append("<h2>补充结算调整（已封存月份迟到投递，计入本期）</h2>")
        out.append(
            '<table class="lines"><thead><tr><th>所属月份</th><th>结算批次</th><th>企业</th>'
            "<th>件数</th><th>金额(元)</th></tr></thead><tbody>"
        )
        for rec in lay.adjustments.iter_rows(named=True):
            out.append(
                f"<tr><td>{_e(rec['month'])}</td><td>{_e(rec['run_id'])}</td>"
                f"<td>{_e(_company_label(data, rec['company']))}</td>"
                f'<td class="n">{rec["parcels"]:,}</td>'
                f'<td class="n">{format_yuan(rec["subsidy_fen"])}</td></tr>'
            )
        out.append("</tbody></table>")
        out.append(
            f'<p class="words">本期实付合计：人民币{rmb_upper(lay.due_fen)}'
            f"（¥{format_yuan(lay.due_fen)}）</p>"
        )
    if company is not None:
        out.append(_html_rejects(data, company))
    out.append(
        '<div class="signatures"><span>经办人：</span><span>审核人：</span>'
        "<span>负责人：</span></div>"
    )
    out.append(
        '<div class="stamp">（盖章）&emsp;&emsp;&emsp;&emsp;&emsp;&emsp;日期：&emsp;&emsp;年&emsp;&emsp;月&emsp;&emsp;日</div>'
    )
    out.append(
        f'<p class="note">本结算单由快递进村补贴结算引擎根据结算批次 {_e(data.run_id)} 的明细账生成；'
        "逐件投递量明细见同目录 XLSX 的“投递量明细表”。</p>"
    )
    path.write_text(_html_document(lay.title, "\n".join(out)), encoding="utf-8")


def _html_rejects(data: MonthData, company: str, limit: int = 2000) -> str:
    rows = data.con.execute(
        "SELECT source_file, source_line, waybill_no, reason_code, reason, detail FROM month_rejects "
        "WHERE company = ? ORDER BY source_file, source_row LIMIT ?",
        [company, limit + 1],
    ).fetchall()
    if not rows:
        return "<h2>剔除明细</h2><p>无剔除行。</p>"
    out = [
        "<h2>剔除明细</h2>",
        '<table class="lines"><thead><tr><th>文件</th><th>行号</th>'
        "<th>运单号</th><th>原因</th><th>说明</th></tr></thead><tbody>",
    ]
    for r in rows[:limit]:
        out.append(
            f'<tr><td>{_e(r[0])}</td><td class="n">{r[1]}</td><td>{_e(r[2])}</td>'
            f"<td>{_e(r[3])} {_e(r[4])}</td><td>{_e(r[5])}</td></tr>"
        )
    out.append("</tbody></table>")
    if len(rows) > limit:
        out.append(f'<p class="note">仅列出前 {limit:,} 行，全部剔除行见 XLSX 的“剔除明细”。</p>')
    return "\n".join(out)


# --------------------------------------------------------------------------- public notice


def _write_notice(directory: Path, data: MonthData) -> list[Path]:
    by_company = (
        data.lines.filter(pl.col("company").is_in(list(data.company_names)))
        .group_by("company")
        .agg(pl.col("accepted", "subsidy_fen").sum())
        .sort("company")
    )
    rows = [(c, data.company_names[c], a, s) for c, a, s in by_company.iter_rows()]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["企业编码", "企业名称", "受理件数", "应付补贴(元)"])
    for code, name, accepted, fen in rows:
        writer.writerow([excel_safe(code), excel_safe(name), accepted, str(fen_to_yuan(fen))])
    csv_path = directory / "public_notice.csv"
    csv_path.write_bytes(b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8"))
    total = sum(r[3] for r in rows)
    year, mon = data.month.split("-")
    title = f"{data.league_name}{year}年{int(mon)}月快递进村补贴公示名单"
    body = [
        f"<h1>{_e(title)}</h1>",
        '<p class="words">根据内政办发〔2022〕39号第（十四）项及本盟市实施细则，现将'
        f"{year}年{int(mon)}月快递进村补贴结算结果公示如下：</p>",
        '<table class="lines"><thead><tr><th>序号</th><th>企业编码</th><th>企业名称</th>'
        "<th>受理件数</th><th>应付补贴(元)</th></tr></thead><tbody>",
    ]
    for i, (code, name, accepted, fen) in enumerate(rows, 1):
        body.append(
            f'<tr><td class="n">{i}</td><td>{_e(code)}</td><td>{_e(name)}</td>'
            f'<td class="n">{accepted:,}</td><td class="n">{format_yuan(fen)}</td></tr>'
        )
    body.append(
        f'<tr class="total"><td></td><td>合计</td><td></td>'
        f'<td class="n">{sum(r[2] for r in rows):,}</td>'
        f'<td class="n" id="total-subsidy">{format_yuan(total)}</td></tr></tbody></table>'
    )
    body.append(
        '<p class="words">公示期：&emsp;&emsp;年&emsp;月&emsp;日至&emsp;&emsp;年&emsp;月&emsp;日。'
        "公示期内，对公示内容有异议的，可向盟市邮政管理部门书面反映。</p>"
    )
    body.append(
        f'<div class="stamp" style="text-align:right">{_e(data.league_name)}邮政管理局（盖章）<br>'
        "&emsp;&emsp;年&emsp;&emsp;月&emsp;&emsp;日</div>"
    )
    body.append(f'<p class="note">结算批次 {_e(data.run_id)}</p>')
    html_path = directory / "public_notice.html"
    html_path.write_text(
        _html_document(title, "\n".join(body)),
        encoding="utf-8",
    )
    return [csv_path, html_path]


# --------------------------------------------------------------------------- entry point


def render(
    out_dir: Path,
    cfg: Config,
    league: str,
    month: Month,
    store: Path | None = None,
    company: str | None = None,
    source_dir: Path | None = None,
    with_detail: bool = False,
) -> dict:
    """Render the 盟市-month's statements and public notice; returns the statements manifest.

    With `company`, only that company's statement is rendered again (and the manifest updated).
    With `with_detail`, a company's parcel detail too long for its workbook is written beside
    it as CSV (up to Excel's sheet limit).
    """
    store = store if store is not None else out_dir / "settlement.duckdb"
    data = _load(source_dir or out_dir, cfg, league, month, store)
    try:
        directory = statements_dir(out_dir, league, str(month))
        directory.mkdir(parents=True, exist_ok=True)
        data.folder = directory
        data.with_detail = with_detail
        present = sorted(
            c for c in data.lines["company"].unique().to_list() if c in data.company_names
        )
        if company is not None and company not in present:
            raise RefusedError(f"企业 {company} 在盟市 {league} {month} 没有投递记录")
        targets = [company] if company else [*present, None]
        manifest_file = directory / "statements.json"
        manifest = (
            json.loads(manifest_file.read_text(encoding="utf-8"))
            if company and manifest_file.exists()
            else {"files": {}}
        )
        for who in targets:
            stem = who or "summary"
            tmp_x, tmp_h = directory / f".{stem}.xlsx.tmp", directory / f".{stem}.html.tmp"
            totals, extra = _write_xlsx(tmp_x, data, who)
            _write_html(tmp_h, data, who)
            os.replace(tmp_x, directory / f"{stem}.xlsx")
            os.replace(tmp_h, directory / f"{stem}.html")
            for final in (directory / f"{stem}.xlsx", directory / f"{stem}.html", *extra):
                manifest["files"][final.name] = {
                    "sha256": sha256_file(final),
                    "company": who,
                    "subsidy_fen": totals["subsidy_fen"],
                    "parcels": totals["accepted"],
                }
        if company is None:
            for path in _write_notice(directory, data):
                manifest["files"][path.name] = {
                    "sha256": sha256_file(path),
                    "company": None,
                    "subsidy_fen": _totals(data.lines)["subsidy_fen"],
                    "parcels": _totals(data.company_lines(None))["accepted"],
                }
            stale = (
                {p.name for p in directory.iterdir()} - set(manifest["files"]) - {"statements.json"}
            )
            for name in stale:
                (directory / name).unlink()
        manifest.update(
            {
                "league_code": league,
                "month": str(month),
                "run_id": data.run_id,
                "ledger_subsidy_fen": _totals(data.lines)["subsidy_fen"],
            }
        )
        manifest_file.write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        return manifest
    finally:
        data.con.close()
