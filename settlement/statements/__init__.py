"""Monthly settlement statements (结算单), the public notice (公示名单) and their manifest.

Rendered from the published Parquet of a 盟市-month's regular run, so `settle statement` can
render them again at any time. What a statement shows is worked out once here (`Layout`,
`Notice`); `xlsx` and `html` only draw it. The signed part — totals, the
旗县 table, rejects counted by reason, adjustments, seal, signatures — comes first; listings
(rejected rows, parcel detail) go on other sheets or files, and the statement says where.
Text from logs is untrusted: in XLSX it is always written as a string cell (never a formula),
in HTML always escaped, in CSV guarded against formula prefixes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from .. import SQL_DIR, shipped
from ..clock import local_text
from ..config import Config
from ..db import scratch_connection
from ..errors import RefusedError, SettlementError
from ..money import fen_to_yuan, format_yuan, rmb_upper
from ..outputs import PART_FILE, manifest_path, partition, sha256_file
from ..period import Month
from ..reasons import REASONS
from ..store import connect_readonly

#: A listing (rejected rows, parcel detail) of at most this many rows may be a sheet of the
#: company's workbook; a longer one is not written with the run (the rejects and ledger Parquet
#: hold it): `settle statement --with-detail` writes it beside the statements as CSV, and
#: `--detail-csv` / `--rejects-csv` export it. xlsxwriter writes about 100,000 cells a second.
XLSX_LISTING_MAX_ROWS = 5_000
#: The rows copied into a month's workbooks, all companies together, are at most this share of
#: the month's input rows (or XLSX_LISTING_MAX_ROWS, when more): a row costs 40 (reject) to 71
#: (parcel) bytes of XLSX against about 73 of CSV input, so the statements folder stays within
#: 5% of the input (bench/RESULTS.md, bench/statements_size.py). Rejects first, shortest first.
LISTING_SHARE = 0.02
#: --with-detail writes a listing as CSV up to this many rows (Excel's sheet limit less the
#: header); a longer one only by export, however long.
CSV_LISTING_MAX_ROWS = 1_048_575
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

#: 服务发生区域 classes of the shipped policies, as people call them. Another class shows its code.
AREA_CLASS_NAMES = {
    "border": "边境旗市",
    "pastoral": "牧区",
    "forest": "林区",
    "mountain": "山区丘陵",
    "default": "一般地区",
}


def area_class_label(code: str) -> str:
    """'牧区（pastoral）' for a class code; the bare code for a class without a Chinese name."""
    name = AREA_CLASS_NAMES.get(code)
    return f"{name}（{code}）" if name else code


@dataclass
class MonthData:
    league: str
    league_name: str
    month: str
    run_id: str
    generated_at: str
    versions: list[dict]
    lines: pl.DataFrame  # statement_lines
    area_classes: pl.DataFrame  # company, county_code, area_class, parcels
    company_names: dict[str, str]
    county_names: dict[str, str]
    adjustments: pl.DataFrame  # supplementary runs paid in this month, per company
    seal: dict | None  # the seals row of this run, when the month is sealed
    con: duckdb.DuckDBPyConnection = field(repr=False)
    folder: Path = Path(".")  # where the statements are written
    with_detail: bool = False  # long listings as CSV beside the statements
    voided: dict | None = None  # {"run_id", "voided_at" (UTC), "voided_by", "reason"}
    in_workbook: set[tuple[str, str]] = field(default_factory=set)  # (company, kind) listed
    # clawbacks (追缴) booked in this month: per clawback and company; per waybill
    clawbacks: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=EMPTY_CLAWBACKS))
    clawback_lines: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema=EMPTY_CLAWBACK_LINES)
    )

    def company_lines(self, company: str | None) -> pl.DataFrame:
        if company is None:
            return self.lines
        return self.lines.filter(pl.col("company") == company)

    def company_adjustments(self, company: str | None) -> pl.DataFrame:
        if company is None:
            return self.adjustments
        return self.adjustments.filter(pl.col("company") == company)

    def company_clawbacks(self, company: str | None) -> pl.DataFrame:
        if company is None:
            return self.clawbacks
        return self.clawbacks.filter(pl.col("company") == company)

    def company_clawback_lines(self, company: str | None) -> pl.DataFrame:
        if company is None:
            return self.clawback_lines
        return self.clawback_lines.filter(pl.col("company") == company)


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
    classes = con.sql(
        "SELECT company, county_code, area_class, COUNT(*) AS parcels FROM month_ledger "
        "GROUP BY ALL ORDER BY company, county_code, parcels DESC, area_class"
    ).pl()
    adjustments, seal = _store_facts(store, league, month, manifest["run_id"])
    clawbacks, clawback_lines = _clawbacks(store, league, month)
    return MonthData(
        league=league,
        league_name=manifest["league_name"],
        month=str(month),
        run_id=manifest["run_id"],
        generated_at=manifest["finished_at"],
        versions=[v for v in manifest["policy"]["versions"] if v["parcels_settled"]]
        or manifest["policy"]["versions"],
        lines=lines,
        area_classes=classes,
        company_names={c.code: c.name for c in cfg.companies.values()},
        county_names=cfg.county_names(),
        adjustments=adjustments,
        seal=seal,
        con=con,
        clawbacks=clawbacks,
        clawback_lines=clawback_lines,
    )


EMPTY_ADJUSTMENTS = {
    "run_id": pl.String,
    "month": pl.String,
    "company": pl.String,
    "parcels": pl.Int64,
    "subsidy_fen": pl.Int64,
}


def _store_facts(
    store: Path, league: str, month: Month, run_id: str
) -> tuple[pl.DataFrame, dict | None]:
    """From the store: supplementary runs (of sealed months) whose payout is booked in this
    month, per company; and the seal of this run, when the month is sealed."""
    empty = pl.DataFrame(schema=EMPTY_ADJUSTMENTS)
    if not store.exists():
        return empty, None
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
        cursor = con.execute(
            "SELECT * FROM seals WHERE league_code = ? AND month = ? AND run_id = ?",
            [league, str(month), run_id],
        )
        names = [d[0] for d in cursor.description]
        seals = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()
    return (df if df.height else empty), (seals[0] if seals else None)


EMPTY_CLAWBACKS = {
    "clawback_id": pl.String,
    "kind": pl.String,
    "company": pl.String,
    "source_months": pl.String,
    "waybills": pl.Int64,
    "amount_fen": pl.Int64,
    "reason": pl.String,
    "recorded_by": pl.String,
    "recorded_at": pl.Datetime,
    "first_waybills": pl.List(pl.String),
}
EMPTY_CLAWBACK_LINES = {
    "clawback_id": pl.String,
    "company": pl.String,
    "waybill_no": pl.String,
    "source_month": pl.String,
    "amount_fen": pl.Int64,
}
#: Waybills named in a clawback's line of the signed page; all of them are on the workbook's
#: 追缴明细 sheet (up to XLSX_LISTING_MAX_ROWS) and in the store's clawbacks table.
CLAWBACK_WAYBILLS_SHOWN = 20


def _clawbacks(store: Path, league: str, month: Month) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Clawbacks (追缴) booked in this month: one row per clawback and company (with its first
    waybills), and one per waybill."""
    empty = pl.DataFrame(schema=EMPTY_CLAWBACKS), pl.DataFrame(schema=EMPTY_CLAWBACK_LINES)
    if not store.exists():
        return empty
    con = connect_readonly(store)
    try:
        params = [league, str(month)]
        summary = con.sql(
            f"""
            SELECT clawback_id, kind, company,
                   string_agg(DISTINCT source_month, '、' ORDER BY source_month) AS source_months,
                   COUNT(*) AS waybills, CAST(SUM(amount_fen) AS BIGINT) AS amount_fen,
                   MIN(reason) AS reason, MIN(recorded_by) AS recorded_by,
                   MIN(recorded_at) AS recorded_at,
                   list(waybill_no ORDER BY waybill_no)[1:{CLAWBACK_WAYBILLS_SHOWN}]
                       AS first_waybills
            FROM clawbacks WHERE league_code = ? AND booked_in_month = ?
            GROUP BY ALL ORDER BY recorded_at, clawback_id, company
            """,
            params=params,
        ).pl()
        lines = con.sql(
            "SELECT clawback_id, company, waybill_no, source_month, amount_fen FROM clawbacks "
            "WHERE league_code = ? AND booked_in_month = ? "
            "ORDER BY company, clawback_id, waybill_no",
            params=params,
        ).pl()
    finally:
        con.close()
    if not summary.height:
        return empty
    return summary.cast(EMPTY_CLAWBACKS), lines.cast(EMPTY_CLAWBACK_LINES)


# --------------------------------------------------------------------------- shared pieces


def excel_safe(value: object) -> str:
    """Untrusted text for CSV: a leading formula character is neutralised with an apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def excel_safe_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """`excel_safe` on every text column of a frame bound for CSV."""
    formula = "^[" + re.escape("".join(FORMULA_PREFIXES)) + "]"
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(formula))
        .then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c))
        .alias(c)
        for c, t in frame.schema.items()
        if t == pl.String
    )


def _guard(column: str) -> str:
    """SQL for untrusted text in CSV: a leading = + - @ gets an apostrophe."""
    apostrophe = "''''"
    return (
        f"CASE WHEN left({column}, 1) IN ('=', '+', '-', '@') "
        f"THEN {apostrophe} || {column} ELSE {column} END"
    )


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


def _reason_counts(value) -> dict[str, int]:
    if not value:
        return {}
    if isinstance(value, list):
        return {e["key"]: e["value"] for e in value}
    return dict(value)


def _company_label(data: MonthData, company: str) -> str:
    name = data.company_names.get(company)
    return f"{name}（{company}）" if name else f"未登记企业（{company or '空'}）"


def _zh_date(day) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


# --------------------------------------------------------------------------- listings


@dataclass
class Listing:
    """One listing of a company's statement (rejected rows or parcel detail): where it is."""

    kind: str  # "rejects" | "detail"
    sheet: str  # the workbook sheet that holds it or says where it is
    what: str  # 剔除行 | 投递量明细
    unit: str  # 行 | 件
    count: int
    in_sheet: bool  # its rows are in the sheet
    csv: str | None  # the CSV beside the statements that holds it (written on request)
    off_sheet: str  # where it is when not in the sheet: one sentence

    def where(self, workbook: str | None) -> str:
        """Where the listing really is, for the statement's footer; `workbook` None: said in
        the workbook itself."""
        head = f"{self.what} {self.count:,} {self.unit}"
        if self.count == 0:
            return f"{self.what}：无。"
        if self.in_sheet:
            book = "本工作簿" if workbook is None else f"同目录 {workbook} 的"
            return f"{head}：见{book}“{self.sheet}”工作表。"
        return f"{head}：{self.off_sheet}"


def rejects_csv_name(company: str) -> str:
    """A company's rejected rows written beside the statements on request (--with-detail)."""
    return f"{company}.rejects.csv"


def detail_csv_name(company: str) -> str:
    """A company's parcel detail written beside the statements on request (--with-detail)."""
    return f"{company}.detail.csv"


def details_written(out_dir: Path, league: str, month: Month) -> bool:
    """Whether the month's statements have listings written on request beside them."""
    folder = statements_dir(out_dir, league, str(month))
    return any(folder.glob(detail_csv_name("*"))) or any(folder.glob(rejects_csv_name("*")))


def _listing(data: MonthData, company: str, kind: str, count: int) -> Listing:
    rejects = kind == "rejects"
    what, unit = ("剔除行", "行") if rejects else ("投递量明细", "件")
    sheet = "剔除明细" if rejects else "投递量明细表"
    name = rejects_csv_name(company) if rejects else detail_csv_name(company)
    option = "--rejects-csv" if rejects else "--detail-csv"
    base = f"settle statement --league {data.league} --month {data.month}"
    export = f"运行 {base} --company {company} {option} 文件名.csv 导出"
    parquet = "rejects" if rejects else "ledger"
    source = f"输出目录下 {partition(parquet, data.league, data.month).as_posix()}/{PART_FILE}"
    if rejects:
        source += f"（company = '{company}' 的行）"
    in_sheet = (company, kind) in data.in_workbook
    written = not in_sheet and data.with_detail and count <= CSV_LISTING_MAX_ROWS
    why = (
        f"超过 {XLSX_LISTING_MAX_ROWS:,} {unit}"
        if count > XLSX_LISTING_MAX_ROWS
        else f"本月各结算单所附明细合计不超过 {_listing_budget(data):,} 行，剔除明细优先、"
        "行数少的优先"
    )
    if written:
        off = f"见同目录 {name}。"
    elif count > CSV_LISTING_MAX_ROWS:
        off = f"超过 Excel 单表上限，未随结算单生成；见{source}，或{export}。"
    else:
        off = (
            f"未随结算单生成（{why}）；见{source}；"
            f"运行 {base} --with-detail 写入同目录 {name}，或{export}。"
        )
    return Listing(kind, sheet, what, unit, count, in_sheet, name if written else None, off)


def _listing_budget(data: MonthData) -> int:
    """Rows that the month's workbooks may hold in listings, all companies together."""
    return max(XLSX_LISTING_MAX_ROWS, int(int(data.lines["submitted"].sum() or 0) * LISTING_SHARE))


def _workbook_listings(data: MonthData) -> set[tuple[str, str]]:
    """The (company, kind) listings written into the workbooks: each at most
    XLSX_LISTING_MAX_ROWS rows, together within the month's budget; rejects before parcel
    detail, shorter before longer (ties: company code). The same for one company's re-render."""
    by = data.lines.group_by("company").agg(pl.col("rejected", "accepted").sum())
    candidates = sorted(
        (k, count, company)
        for company, rejected, accepted in by.iter_rows()
        if company in data.company_names
        for k, count in ((0, rejected), (1, accepted))
        if 0 < count <= XLSX_LISTING_MAX_ROWS
    )
    left, chosen = _listing_budget(data), set()
    for k, count, company in candidates:
        if count <= left:
            chosen.add((company, ("rejects", "detail")[k]))
            left -= count
    return chosen


def _rejects_select(company: str | None) -> tuple[str, list]:
    where, params = ("", []) if company is None else ("WHERE company = ?", [company])
    return (
        "SELECT source_file, source_line, waybill_no, company, reason_code, reason, detail "
        f"FROM month_rejects {where} ORDER BY source_file, source_row",
        params,
    )


#: The parcel detail sheet and CSV: header, ledger column.
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
REJECT_COLUMNS = ["文件", "行号", "运单号", "企业", "原因代码", "原因", "说明"]


def _detail_select() -> str:
    cols = ", ".join(c for _, c in DETAIL_COLUMNS)
    return f"SELECT {cols} FROM month_ledger WHERE company = ? ORDER BY county_code, waybill_no"


def _csv_companion(con, path: Path, select: str, params: list) -> None:
    """A large listing as UTF-8 CSV with BOM (Excel reads it), written by DuckDB, not row by row.
    Text from logs that starts like a formula is prefixed with an apostrophe."""
    tmp = path.with_name(f".{path.name}.tmp")
    quoted = str(tmp).replace("'", "''")
    con.execute(f"COPY ({select}) TO '{quoted}' (HEADER, DELIMITER ',')", params)
    bom = path.with_name(f".{path.name}.bom")
    with bom.open("wb") as out, tmp.open("rb") as src:
        out.write(b"\xef\xbb\xbf")
        shutil.copyfileobj(src, out, 1 << 20)
    tmp.unlink()
    os.replace(bom, path)


def _detail_csv(con, company: str, path: Path) -> None:
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
    select = f"SELECT {cols} FROM month_ledger WHERE company = ? ORDER BY county_code, waybill_no"
    _csv_companion(con, path, select, [company])


def _rejects_csv(con, company: str | None, path: Path) -> None:
    """Rejected rows (剔除明细) of one company, or of the whole month, as CSV."""
    where, params = ("", []) if company is None else ("WHERE company = ?", [company])
    _csv_companion(
        con,
        path,
        f"SELECT source_file AS 文件, source_line AS 行号, {_guard('waybill_no')} AS 运单号, "
        f"{_guard('company')} AS 企业, reason_code AS 原因代码, reason AS 原因, detail AS 说明 "
        f"FROM month_rejects {where} ORDER BY source_file, source_row",
        params,
    )


def _export(out_dir: Path, cfg: Config, league: str, month: Month, kind: str, company, path):
    data = _load(out_dir, cfg, league, month, out_dir / "settlement.duckdb")
    try:
        table = "month_rejects" if kind == "rejects" else "month_ledger"
        where, params = ("", []) if company is None else ("WHERE company = ?", [company])
        count = data.con.execute(f"SELECT COUNT(*) FROM {table} {where}", params).fetchall()[0][0]
        if count == 0:
            what = "剔除行" if kind == "rejects" else "受理的投递"
            who = "" if company is None else f"企业 {company} "
            raise RefusedError(f"{who}在盟市 {league} {month} 没有{what}")
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "rejects":
            _rejects_csv(data.con, company, path)
        else:
            _detail_csv(data.con, company, path)
        return count
    finally:
        data.con.close()


def export_detail(
    out_dir: Path, cfg: Config, league: str, month: Month, company: str, path: Path
) -> int:
    """Write one company's parcel detail of a settled month to `path` (CSV); its row count."""
    return _export(out_dir, cfg, league, month, "detail", company, path)


def export_rejects(
    out_dir: Path, cfg: Config, league: str, month: Month, company: str | None, path: Path
) -> int:
    """Write a settled month's rejected rows (one company's, or all) to `path` (CSV); the count."""
    return _export(out_dir, cfg, league, month, "rejects", company, path)


# --------------------------------------------------------------------------- what a statement shows


MONEY_COLUMNS = ("gross_fen", "breakeven_reduction_fen", "budget_reduction_fen", "subsidy_fen")


@dataclass
class CountyRow:
    code: str
    name: str
    classes: str  # area classes of its accepted parcels, most parcels first
    counts: list[int]  # submitted, accepted, rejected
    money: list[int]  # MONEY_COLUMNS, 分


@dataclass
class CompanyRow:
    code: str
    label: str
    accepted: int
    rejected: int
    money: list[int]  # MONEY_COLUMNS, 分
    adjustment_fen: int  # supplementary runs booked in the month
    clawback_fen: int = 0  # clawbacks booked in the month (≤ 0)

    @property
    def adjusted_fen(self) -> int:
        """Supplements and clawbacks booked in the month: the company table's 调整 column."""
        return self.adjustment_fen + self.clawback_fen

    @property
    def due_fen(self) -> int:
        return self.money[-1] + self.adjustment_fen + self.clawback_fen


@dataclass
class ClawbackRow:
    """One clawback (追缴) of one company booked in the month: shown on its statement."""

    clawback_id: str
    kind: str  # manual | true_up
    company: str  # label
    source_months: str
    waybills: int
    amount_fen: int  # ≤ 0
    reason: str
    recorded: str  # who, when (Asia/Shanghai)
    first_waybills: list[str]

    @property
    def waybill_text(self) -> str:
        """The first waybills, and how many more."""
        shown = "、".join(self.first_waybills)
        more = self.waybills - len(self.first_waybills)
        return f"{shown} 等 {self.waybills:,} 个运单（全部见追缴明细）" if more > 0 else shown


@dataclass
class Layout:
    """What one statement shows, computed once for both the XLSX and the HTML."""

    title: str
    stem: str  # file name without extension
    info: list[tuple[str, str]]
    rows: list[CountyRow]
    totals: dict
    reasons: list[tuple[str, str, int]]  # code, Chinese reason, rows
    companies: list[CompanyRow] | None  # the summary's per-company table
    adjustments: list[tuple[str, str, str, int, int]]  # month, run, company, parcels, 分
    seal: list[tuple[str, str]] | None  # (label, value) of the seal block
    void_banner: str | None
    listings: list[Listing]  # a company's listings
    notes: list[str]  # where the summary's detail is
    run_id: str
    clawbacks: list[ClawbackRow] = field(default_factory=list)  # 追缴 booked in this month
    clawback_lines: pl.DataFrame | None = None  # its waybills (the workbook's 追缴明细 sheet)

    @property
    def adjustment_fen(self) -> int:
        return sum(a[4] for a in self.adjustments)

    @property
    def clawback_fen(self) -> int:
        """Clawbacks booked in this month (≤ 0)."""
        return sum(c.amount_fen for c in self.clawbacks)

    @property
    def due_fen(self) -> int:
        """本期实付: the month's payable plus supplementary adjustments and clawbacks booked
        in it (sql/92_payable.sql)."""
        return self.totals["subsidy_fen"] + self.adjustment_fen + self.clawback_fen

    @property
    def no_lines(self) -> str:
        """What the 旗县 table says when the company had no rows this month."""
        what = "、".join(
            w
            for w, present in (("补充结算调整", self.adjustments), ("追缴", self.clawbacks))
            if present
        )
        return f"本月无投递记录（本期只有{what or '补充结算调整'}）"

    @property
    def due_parts(self) -> str:
        """' = 应付补贴 … + 补充结算调整 … − 追缴 …': what 本期实付 adds up."""
        parts = f" = 应付补贴 {format_yuan(self.totals['subsidy_fen'])}"
        if self.adjustments:
            parts += f" + 补充结算调整 {format_yuan(self.adjustment_fen)}"
        if self.clawbacks:
            parts += f" − 追缴 {format_yuan(-self.clawback_fen)}"
        return parts

    @property
    def confirmation(self) -> str:
        """The sentence signed under: what is paid, in words and figures."""
        return (
            f"以上结算结果经核对无误。本期实付：人民币{rmb_upper(self.due_fen)}"
            f"（¥{format_yuan(self.due_fen)}）。"
        )

    def footer(self, workbook: str | None) -> list[str]:
        """Where the detail really is; `workbook` None: said inside the workbook."""
        return [x.where(workbook) for x in self.listings] + self.notes


#: The headings of MONEY_COLUMNS.
MONEY_HEADERS = ["基础补贴(元)", "盈亏平衡核减(元)", "预算调减(元)", "应付补贴(元)"]
COUNTY_HEADERS = ["旗县代码", "旗县名称", "服务区域类别", "提交行数", "受理件数", "剔除行数"]
COUNTY_HEADERS += MONEY_HEADERS
COMPANY_HEADERS = [
    "企业",
    "受理件数",
    "剔除行数",
    *MONEY_HEADERS,
    "补充结算及追缴(元)",
    "本期实付(元)",
]
NO_LINES = "本月无投递记录（本期只有补充结算调整）"
CLAWBACK_KINDS = {"manual": "追缴", "true_up": "年度盈亏平衡清算"}


def void_banner(voided: dict | None, subject: str = "结算单") -> str | None:
    """'本结算单已作废 — 作废时间 …（Asia/Shanghai）；作废人 …；原因：…' or None."""
    if voided is None:
        return None
    return (
        f"本{subject}已作废 — 作废时间 {local_text(voided['voided_at'])}；"
        f"作废人 {voided['voided_by']}；原因：{voided['reason']}"
    )


def _seal_block(seal: dict | None) -> list[tuple[str, str]] | None:
    if seal is None:
        return None
    return [
        ("审核人", seal["reviewed_by"]),
        ("公示期", f"{seal['notice_start']:%Y-%m-%d} 至 {seal['notice_end']:%Y-%m-%d}"),
        ("审批人", seal["approved_by"]),
        ("审批文号", seal["approval_ref"]),
        ("封存时间", local_text(seal["sealed_at"])),
    ]


def _county_classes(data: MonthData, company: str | None) -> dict[str | None, str]:
    df = data.area_classes
    if company is not None:
        df = df.filter(pl.col("company") == company)
    by = (
        df.group_by("county_code", "area_class")
        .agg(pl.col("parcels").sum())
        .sort(["county_code", "parcels", "area_class"], descending=[False, True, False])
    )
    out: dict[str | None, list[str]] = {}
    for code, cls, _ in by.iter_rows():
        out.setdefault(code, []).append(area_class_label(cls))
    return {k: "、".join(v) for k, v in out.items()}


def _layout(data: MonthData, company: str | None) -> Layout:
    lines = data.company_lines(company)
    info = [
        ("盟市", f"{data.league_name}（{data.league}）"),
        ("快递企业", "全部企业" if company is None else _company_label(data, company)),
        ("结算月份", data.month),
        ("结算批次", data.run_id),
        ("生成时间", local_text(data.generated_at)),
        ("政策版本", "；".join(f"{v['id']}：{v['reference']}" for v in data.versions)),
    ]
    classes = _county_classes(data, company)
    by_county = (
        lines.group_by("county_code")
        .agg(pl.col("submitted", "accepted", "rejected", *MONEY_COLUMNS).sum())
        .sort("county_code", nulls_last=True)
    )
    rows = []
    for rec in by_county.iter_rows(named=True):
        code = rec["county_code"]
        rows.append(
            CountyRow(
                "—" if code is None else code,
                "（非本盟市或无法识别）" if code is None else data.county_names.get(code, ""),
                classes.get(code, "—"),
                [rec["submitted"], rec["accepted"], rec["rejected"]],
                [rec[k] for k in MONEY_COLUMNS],
            )
        )
    counts: dict[str, int] = {}
    for m in lines["rejected_by_reason"].to_list():
        for k, v in _reason_counts(m).items():
            counts[k] = counts.get(k, 0) + v
    reasons = [(code, text, counts[code]) for code, text in REASONS.items() if counts.get(code)]
    adj = data.company_adjustments(company)
    adjustments = [
        (
            r["month"],
            r["run_id"],
            _company_label(data, r["company"]),
            r["parcels"],
            r["subsidy_fen"],
        )
        for r in adj.iter_rows(named=True)
    ]
    totals = _totals(lines)
    listings: list[Listing] = []
    notes: list[str] = []
    companies = None
    base = f"settle statement --league {data.league} --month {data.month}"
    if company is None:
        companies = _company_rows(data)
        if totals["rejected"]:
            notes.append(
                f"剔除行 {totals['rejected']:,} 行（按原因统计见上表）：各企业的逐行明细见其结算单；"
                "全部剔除行（含未登记企业）见输出目录下 "
                f"{partition('rejects', data.league, data.month).as_posix()}/{PART_FILE}，"
                f"或运行 {base} --rejects-csv 文件名.csv 导出。"
            )
        notes.append(
            "逐件投递量明细见各企业结算单；全部受理投递见输出目录下 "
            f"{partition('ledger', data.league, data.month).as_posix()}/{PART_FILE}。"
        )
    else:
        listings = [
            _listing(data, company, "rejects", totals["rejected"]),
            _listing(data, company, "detail", totals["accepted"]),
        ]
    prefix = "【作废】" if data.voided else ""
    title = (
        f"{data.league_name}快递进村补贴结算汇总表"
        if company is None
        else f"{data.league_name}快递进村补贴结算单"
    )
    return Layout(
        title=prefix + title,
        stem=company or "summary",
        info=info,
        rows=rows,
        totals=totals,
        reasons=reasons,
        companies=companies,
        adjustments=adjustments,
        seal=_seal_block(data.seal),
        void_banner=void_banner(data.voided),
        listings=listings,
        notes=notes,
        run_id=data.run_id,
        clawbacks=_clawback_rows(data, company),
        clawback_lines=data.company_clawback_lines(company),
    )


def _clawback_rows(data: MonthData, company: str | None) -> list[ClawbackRow]:
    return [
        ClawbackRow(
            r["clawback_id"],
            r["kind"],
            _company_label(data, r["company"]),
            r["source_months"],
            r["waybills"],
            r["amount_fen"],
            r["reason"],
            f"{r['recorded_by']}，{local_text(r['recorded_at'], seconds=False)}",
            list(r["first_waybills"] or []),
        )
        for r in data.company_clawbacks(company).iter_rows(named=True)
    ]


def _company_rows(data: MonthData) -> list[CompanyRow]:
    """The summary's per-company lines: every registered company with rows or adjustments this
    month, then one line for all company codes not in companies.toml (rejected rows only)."""
    registered = pl.col("company").is_in(list(data.company_names))
    by = (
        data.lines.filter(registered)
        .group_by("company")
        .agg(pl.col("accepted", "rejected", *MONEY_COLUMNS).sum())
        .sort("company")
    )
    adj = {
        c: int(f)
        for c, f in data.adjustments.group_by("company")
        .agg(pl.col("subsidy_fen").sum())
        .iter_rows()
    }
    clawed = {
        c: int(f)
        for c, f in data.clawbacks.group_by("company").agg(pl.col("amount_fen").sum()).iter_rows()
    }
    rows = {
        rec["company"]: CompanyRow(
            rec["company"],
            _company_label(data, rec["company"]),
            rec["accepted"],
            rec["rejected"],
            [rec[k] for k in MONEY_COLUMNS],
            adj.get(rec["company"], 0),
            clawed.get(rec["company"], 0),
        )
        for rec in by.iter_rows(named=True)
    }
    for c in {*adj, *clawed}:
        rows.setdefault(
            c,
            CompanyRow(
                c, _company_label(data, c), 0, 0, [0, 0, 0, 0], adj.get(c, 0), clawed.get(c, 0)
            ),
        )
    out = [rows[c] for c in sorted(rows)]
    others = data.lines.filter(~registered)
    if others.height:
        codes = others["company"].n_unique()
        out.append(
            CompanyRow(
                "",
                f"未登记企业编码（{codes:,} 个）",
                int(others["accepted"].sum()),
                int(others["rejected"].sum()),
                [int(others[k].sum()) for k in MONEY_COLUMNS],
                0,
            )
        )
    return out


# --------------------------------------------------------------------------- public notice


@dataclass
class Notice:
    """The public notice (公示名单): everything paid in the month's statements, per company."""

    title: str
    year: int
    month: int
    league_name: str
    # code, name, parcels, month 分, supplementary adjustments 分, clawbacks 分 (≤ 0)
    rows: list[tuple[str, str, int, int, int, int]]
    period: str | None  # 公示期 from the seal
    seal: list[tuple[str, str]] | None
    void_banner: str | None
    run_id: str
    clawbacks: list[ClawbackRow] = field(default_factory=list)

    @property
    def total_fen(self) -> int:
        return sum(r[3] + r[4] + r[5] for r in self.rows)


def _notice(data: MonthData) -> Notice:
    rows = [
        (
            r.code,
            data.company_names[r.code],
            r.accepted,
            r.money[-1],
            r.adjustment_fen,
            r.clawback_fen,
        )
        for r in _company_rows(data)
        if r.code in data.company_names and (r.accepted or r.adjustment_fen or r.clawback_fen)
    ]
    year, mon = (int(x) for x in data.month.split("-"))
    seal = data.seal
    period = f"{_zh_date(seal['notice_start'])}至{_zh_date(seal['notice_end'])}" if seal else None
    prefix = "【作废】" if data.voided else ""
    return Notice(
        title=f"{prefix}{data.league_name}{year}年{mon}月快递进村补贴公示名单",
        year=year,
        month=mon,
        league_name=data.league_name,
        rows=rows,
        period=period,
        seal=_seal_block(seal),
        void_banner=void_banner(data.voided, "公示名单"),
        run_id=data.run_id,
        clawbacks=_clawback_rows(data, None),
    )


NOTICE_HEADERS = [
    "企业编码",
    "企业名称",
    "受理件数",
    "本月结算(元)",
    "补充结算调整(元)",
    "追缴(元)",
    "合计(元)",
]


def _write_notice_csv(path: Path, notice: Notice) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(NOTICE_HEADERS)
    for code, name, parcels, fen, adj, claw in notice.rows:
        writer.writerow(
            [
                excel_safe(code),
                excel_safe(name),
                parcels,
                str(fen_to_yuan(fen)),
                str(fen_to_yuan(adj)),
                str(fen_to_yuan(claw)),
                str(fen_to_yuan(fen + adj + claw)),
            ]
        )
    path.write_bytes(b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8"))


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
    voided: dict | None = None,
) -> dict:
    """Render the 盟市-month's statements and public notice; returns the statements manifest.

    With `company`, only that company's statement is rendered again (and the manifest updated).
    With `with_detail`, a company's listing too long for its workbook is written beside it as
    CSV (up to Excel's sheet limit). With `voided` ({"run_id", "voided_at" (UTC), "voided_by",
    "reason"}), every statement and the notice carry the 作废 mark. A sealed run's statements
    show the seal.
    """
    from .html import write_notice_html, write_statement_html
    from .xlsx import write_statement_xlsx

    store = store if store is not None else out_dir / "settlement.duckdb"
    data = _load(source_dir or out_dir, cfg, league, month, store)
    try:
        if voided is not None and voided["run_id"] != data.run_id:
            raise SettlementError(
                f"作废的批次 {voided['run_id']} 不是盟市 {league} {month} 结算单的批次 {data.run_id}"
            )
        directory = statements_dir(out_dir, league, str(month))
        directory.mkdir(parents=True, exist_ok=True)
        data.folder = directory
        data.with_detail = with_detail
        data.voided = voided
        data.in_workbook = _workbook_listings(data)
        present = sorted(
            c
            for c in {
                *data.lines["company"].unique().to_list(),
                *data.adjustments["company"],
                *data.clawbacks["company"],
            }
            if c in data.company_names
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

        def record(path: Path, who: str | None, lay_totals: dict, due_fen: int) -> None:
            # subsidy_fen is the ledger's payable (settle verify compares it to the ledger);
            # due_fen adds the supplementary adjustments and clawbacks booked in this month
            # (本期实付, sql/92_payable.sql)
            manifest["files"][path.name] = {
                "sha256": sha256_file(path),
                "company": who,
                "subsidy_fen": lay_totals["subsidy_fen"],
                "due_fen": due_fen,
                "parcels": lay_totals["accepted"],
            }

        for who in targets:
            lay = _layout(data, who)
            extra = _write_listing_csvs(data, who, lay)
            final_x, final_h = directory / f"{lay.stem}.xlsx", directory / f"{lay.stem}.html"
            tmp_x, tmp_h = directory / f".{lay.stem}.xlsx.tmp", directory / f".{lay.stem}.html.tmp"
            write_statement_xlsx(tmp_x, data, lay)
            write_statement_html(tmp_h, lay)
            os.replace(tmp_x, final_x)
            os.replace(tmp_h, final_h)
            for final in (final_x, final_h, *extra):
                record(final, who, lay.totals, lay.due_fen)
        if company is None:
            notice = _notice(data)
            totals = _totals(data.lines)
            csv_path, html_path = directory / "public_notice.csv", directory / "public_notice.html"
            _write_notice_csv(csv_path, notice)
            write_notice_html(html_path, notice)
            for path in (csv_path, html_path):
                record(path, None, totals, notice.total_fen)
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
                "adjustment_fen": int(data.adjustments["subsidy_fen"].sum() or 0),
                "clawback_fen": int(data.clawbacks["amount_fen"].sum() or 0),
            }
        )
        for key, value in (("seal", data.seal), ("voided", voided)):
            if value is None:
                manifest.pop(key, None)
            else:
                manifest[key] = {k: str(v) for k, v in value.items()}
        manifest_file.write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        return manifest
    finally:
        data.con.close()


def statements_sha(out_dir: Path, league: str, month: Month | str) -> str:
    """SHA-256 of a month's statements.json, which holds every statement file's SHA-256."""
    return sha256_file(statements_dir(out_dir, league, str(month)) / "statements.json")


def rerender(
    out_dir: Path,
    cfg: Config,
    league: str,
    month: Month,
    store: Path,
    actor=None,
    why: str = "statements",
    **kwargs,
) -> dict:
    """Render a month's statements again in place (`render`) and record statements.json's
    SHA-256 in the store's events, so that `settle verify` notices a statement, or its entry in
    statements.json, changed afterwards. The caller holds the store's lock."""
    from ..events import Actor
    from ..store import record_statements, require_store

    require_store(store)
    manifest = render(out_dir, cfg, league, month, store, **kwargs)
    record_statements(
        store,
        league,
        str(month),
        manifest["run_id"],
        statements_sha(out_dir, league, month),
        actor or Actor.cli(),
        why,
    )
    return manifest


def _write_listing_csvs(data: MonthData, company: str | None, lay: Layout) -> list[Path]:
    """The listings that --with-detail writes beside the statements."""
    written = []
    for listing in lay.listings:
        if listing.csv is None:
            continue
        path = data.folder / listing.csv
        if listing.kind == "rejects":
            _rejects_csv(data.con, company, path)
        else:
            _detail_csv(data.con, company, path)
        written.append(path)
    return written
