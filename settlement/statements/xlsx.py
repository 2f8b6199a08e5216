"""A statement as an XLSX workbook: the signed sheet 结算单 first, listings on other sheets.

The first sheet prints on A4 landscape, one page wide: header, 旗县 table, rejects counted by
reason, adjustments, seal, signatures and where the detail is — scaled onto one page when it
fits a row budget, else its closing part starts a page, so the signatures always print with the
totals they sign for. A voided statement has a red
banner row at the top of every sheet and 作废 in every printed page's header. Untrusted text is
always a string cell; amounts, distances and counts are number cells with number formats.
"""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

from ..money import fen_to_yuan, format_yuan, rmb_upper
from ..reasons import SHORT
from . import (
    CLAWBACK_KINDS,
    COMPANY_HEADERS,
    COUNTY_HEADERS,
    DETAIL_COLUMNS,
    MONEY_COLUMNS,
    REJECT_COLUMNS,
    XLSX_LISTING_MAX_ROWS,
    _detail_select,
    _rejects_select,
    area_class_label,
)

if TYPE_CHECKING:
    from . import Layout, Listing, MonthData

LAST = len(COUNTY_HEADERS) - 1  # the signed sheet is ten columns wide, A..J
#: The printable height of an A4 landscape page at 100 %, in pixels (210 mm less the margins).
PAGE_PX = 670
#: The signed sheet is scaled onto one page when it is at most this tall (scale ≥ 2/3: the
#: text stays readable, about 7 pt); a taller one starts its closing part on a new page, so
#: that the totals to be signed and the signatures are always on the same page.
ONE_PAGE_PX = PAGE_PX * 3 // 2
WIDTHS = [11, 24, 22, 10, 10, 10, 13, 15, 13, 13]
RED = "#C00000"


def _shown(text: str) -> int:
    """Display width of text, a Chinese character counting two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _wrapped(ws, row: int, text: str, width: int, points: float = 15) -> None:
    """Set a row tall enough for `text` wrapped in `width` characters (Excel does not grow
    a row for a wrapped merged cell)."""
    lines = sum(max(1, math.ceil(_shown(part) / max(1, width - 2))) for part in text.split("\n"))
    if lines > 1:
        ws.set_row(row, points * lines)


class _Formats:
    def __init__(self, wb) -> None:
        add = wb.add_format
        self.title = add({"bold": True, "font_size": 16, "align": "center", "valign": "vcenter"})
        self.void = add(
            {
                "bold": True,
                "font_size": 13,
                "font_color": "#FFFFFF",
                "bg_color": RED,
                "align": "center",
                "valign": "vcenter",
                "text_wrap": True,
            }
        )
        self.section = add({"bold": True, "font_size": 11})
        self.label = add({"bold": True, "valign": "top"})
        self.value = add({"valign": "top", "text_wrap": True})
        self.head = add(
            {
                "bold": True,
                "border": 1,
                "bg_color": "#E8ECF2",
                "align": "center",
                "valign": "vcenter",
                "text_wrap": True,
            }
        )
        self.text = add({"border": 1, "valign": "vcenter"})
        self.wrap = add({"border": 1, "valign": "vcenter", "text_wrap": True})
        self.int = add({"border": 1, "num_format": "#,##0"})
        self.money = add({"border": 1, "num_format": "#,##0.00"})
        self.total_text = add({"border": 1, "bold": True})
        self.total_int = add({"border": 1, "bold": True, "num_format": "#,##0"})
        self.total_money = add({"border": 1, "bold": True, "num_format": "#,##0.00"})
        self.words = add({"bold": True, "font_size": 11, "valign": "vcenter"})
        self.sign = add({"bold": True, "font_size": 11, "valign": "top", "text_wrap": True})
        self.note = add(
            {"font_color": "#444444", "font_size": 9, "text_wrap": True, "valign": "top"}
        )
        self.seal_label = add({"bold": True, "border": 1, "bg_color": "#F3F3F3"})
        self.seal_value = add({"border": 1, "text_wrap": True})
        # listing cells: plain text, and numbers exact to the 6 decimals the ledger keeps
        self.cell = add({})
        self.n_int = add({"num_format": "#,##0"})
        self.n_fen = add({"num_format": "0"})
        self.n_km = add({"num_format": "0.0#####"})
        self.n_yuan = add({"num_format": "0.00####"})
        self.when = add({"num_format": "yyyy-mm-dd hh:mm:ss"})


def _print_setup(ws, lay: Layout, rows_to_repeat: int | None = None) -> None:
    ws.set_paper(9)  # A4
    ws.set_landscape()
    ws.fit_to_pages(1, 0)
    ws.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
    ws.center_horizontally()
    _void_header(ws, lay)
    ws.set_footer(f"&L{lay.run_id}&R第 &P 页，共 &N 页")
    if rows_to_repeat is not None:
        ws.repeat_rows(0, rows_to_repeat)


def _void_header(ws, lay: Layout) -> None:
    """作废 in red at the head of every printed page of a voided statement."""
    if lay.void_banner:
        ws.set_header('&C&"-,Bold"&16&KC00000作废  本结算单已作废')


def _void_row(ws, f: _Formats, lay: Layout, last_col: int) -> int:
    """The red 作废 banner across the top of a sheet; the next free row."""
    if not lay.void_banner:
        return 0
    ws.merge_range(0, 0, 0, last_col, lay.void_banner, f.void)
    ws.set_row(0, 36)
    return 1


def _merged(ws, row: int, first: int, last: int, text: str, fmt) -> None:
    if first == last:
        ws.write_string(row, first, text, fmt)
    else:
        ws.merge_range(row, first, row, last, text, fmt)


def new_workbook(path: Path, **options):
    """A workbook for untrusted text: nothing written is taken for a formula, URL or number.
    in_memory: the parts are assembled in memory, not in temporary files (half the CPU of a
    small workbook; listings in a workbook are bounded, so memory is too)."""
    import xlsxwriter

    settings = {
        "strings_to_formulas": False,
        "strings_to_urls": False,
        "strings_to_numbers": False,
        "in_memory": True,
    }
    return xlsxwriter.Workbook(str(path), settings | options)


def write_statement_xlsx(path: Path, data: MonthData, lay: Layout) -> None:
    """The statement workbook: the signed sheet 结算单, then its listings."""
    wb = new_workbook(path)
    created = dt.datetime.fromisoformat(data.generated_at).replace(tzinfo=None)
    wb.set_properties(
        {
            "title": lay.title,
            "author": f"{data.league_name}邮政管理局",
            "created": created,
            "comments": f"结算批次 {data.run_id}",
        }
    )
    f = _Formats(wb)
    ws = wb.add_worksheet("结算单")
    first_data, last_data = _signed_sheet(ws, f, lay)
    if lay.companies is not None:
        _chart_sheet(wb, f, lay, first_data, last_data)
    for listing in lay.listings:
        _listing_sheet(wb, f, data, lay, listing)
    if lay.clawbacks:
        _clawback_sheet(wb, f, lay)
    totals = lay.totals
    wb.define_name("TOTAL_SUBSIDY_YUAN", f"={fen_to_yuan(totals['subsidy_fen'])}")
    wb.define_name("TOTAL_DUE_YUAN", f"={fen_to_yuan(lay.due_fen)}")
    wb.define_name("TOTAL_PARCELS", f"={totals['accepted']}")
    wb.close()


def _signed_sheet(ws, f: _Formats, lay: Layout) -> tuple[int, int]:
    """The first sheet, to be printed and signed; the rows of the 旗县 table's data."""
    for c, w in enumerate(WIDTHS):
        ws.set_column(c, c, w)
    row = _void_row(ws, f, lay, LAST)
    _merged(ws, row, 0, LAST, lay.title, f.title)
    ws.set_row(row, 30)
    row += 1
    info = dict(lay.info)
    for a, b in (("盟市", "快递企业"), ("结算月份", "结算批次"), ("生成时间", None)):
        ws.write_string(row, 0, f"{a}：", f.label)
        _merged(ws, row, 1, 4, info[a], f.value)
        if b:
            ws.write_string(row, 5, f"{b}：", f.label)
            _merged(ws, row, 6, LAST, info[b], f.value)
        row += 1
    ws.write_string(row, 0, "政策版本：", f.label)
    _merged(ws, row, 1, LAST, info["政策版本"], f.value)
    _wrapped(ws, row, info["政策版本"], sum(WIDTHS[1:]))
    row += 2

    ws.write_string(row, 0, "一、分旗县结算", f.section)
    row += 1
    for c, h in enumerate(COUNTY_HEADERS):
        ws.write_string(row, c, h, f.head)
    ws.set_row(row, 30)
    row += 1
    first_data = row
    for line in lay.rows:
        ws.write_string(row, 0, line.code, f.text)
        ws.write_string(row, 1, line.name, f.text)
        ws.write_string(row, 2, line.classes, f.wrap)
        _wrapped(ws, row, line.classes, WIDTHS[2])
        for c, v in enumerate(line.counts, 3):
            ws.write_number(row, c, v, f.int)
        for c, v in enumerate(line.money, 6):
            ws.write_number(row, c, float(fen_to_yuan(v)), f.money)
        row += 1
    last_data = row - 1
    if not lay.rows:
        _merged(ws, row, 0, LAST, lay.no_lines, f.text)
        row += 1
    totals = lay.totals
    ws.write_string(row, 0, "合计", f.total_text)
    ws.write_string(row, 1, "", f.total_text)
    ws.write_string(row, 2, "", f.total_text)
    for c, key in enumerate(["submitted", "accepted", "rejected"], 3):
        ws.write_number(row, c, totals[key], f.total_int)
    for c, key in enumerate(MONEY_COLUMNS, 6):
        ws.write_number(row, c, float(fen_to_yuan(totals[key])), f.total_money)
    row += 1
    words = (
        f"应付补贴合计（大写）：人民币{rmb_upper(totals['subsidy_fen'])}"
        f"（¥{format_yuan(totals['subsidy_fen'])}）；受理 {totals['accepted']:,} 件"
    )
    _merged(ws, row, 0, LAST, words, f.words)
    ws.set_row(row, 20)
    row += 2

    second = row  # where the sections after the 旗县 table begin
    section = 2
    if lay.companies is not None:
        row = _company_table(ws, f, lay, row, section)
        section += 1
    row = _reason_table(ws, f, lay, row, section)
    section += 1
    if lay.adjustments:
        row = _adjustment_table(ws, f, lay, row, section)
        section += 1
    if lay.clawbacks:
        row = _clawback_table(ws, f, lay, row, section)
    closing = row  # the amount to be signed, the seal, the signatures
    if lay.adjustments or lay.clawbacks:
        words = (
            f"本期实付合计（大写）：人民币{rmb_upper(lay.due_fen)}（¥{format_yuan(lay.due_fen)}）"
        )
        _merged(ws, row, 0, LAST, words + lay.due_parts, f.words)
        ws.set_row(row, 20)
        row += 2
    if lay.seal:
        row = _seal_rows(ws, f, lay, row)
    row = _signatures(ws, f, lay, row)
    footer = ["说明：", *lay.footer(None)]
    footer.append(f"本结算单由快递进村补贴结算引擎根据结算批次 {lay.run_id} 的明细账生成。")
    for text in footer:
        _merged(ws, row, 0, LAST, text, f.note)
        _wrapped(ws, row, text, sum(WIDTHS), 12)
        row += 1
    ws.print_area(0, 0, row - 1, LAST)
    _print_setup(ws, lay)
    _keep_signatures_with_totals(ws, row, second, closing)
    return first_data, last_data


def _height(ws, first: int, end: int) -> int:
    """The height of rows first..end-1 in pixels, as xlsxwriter records them."""
    default = ws.default_row_height
    return sum((ws.row_info[r].height if r in ws.row_info else default) for r in range(first, end))


def _keep_signatures_with_totals(ws, end: int, second: int, closing: int) -> None:
    """The signed sheet on one page when it fits the row budget; else its sections (or, when
    they are long, only its closing part) start a new page, so the signatures never print
    on a page without the totals they sign for."""
    if _height(ws, 0, end) <= ONE_PAGE_PX:
        ws.fit_to_pages(1, 1)
    elif _height(ws, second, end) <= PAGE_PX:
        ws.set_h_pagebreaks([second])
    else:
        ws.set_h_pagebreaks([closing])


def _number(n: int) -> str:
    return "一二三四五六七八九十"[n - 1]


def _company_table(ws, f: _Formats, lay: Layout, row: int, section: int) -> int:
    ws.write_string(row, 0, f"{_number(section)}、分企业结算", f.section)
    row += 1
    _merged(ws, row, 0, 1, COMPANY_HEADERS[0], f.head)
    for c, h in enumerate(COMPANY_HEADERS[1:], 2):
        ws.write_string(row, c, h, f.head)
    ws.set_row(row, 30)
    row += 1
    for rec in lay.companies or []:
        _merged(ws, row, 0, 1, rec.label, f.text)
        ws.write_number(row, 2, rec.accepted, f.int)
        ws.write_number(row, 3, rec.rejected, f.int)
        for c, v in enumerate([*rec.money, rec.adjusted_fen, rec.due_fen], 4):
            ws.write_number(row, c, float(fen_to_yuan(v)), f.money)
        row += 1
    lines = lay.companies or []
    _merged(ws, row, 0, 1, "合计", f.total_text)
    ws.write_number(row, 2, sum(r.accepted for r in lines), f.total_int)
    ws.write_number(row, 3, sum(r.rejected for r in lines), f.total_int)
    sums = [sum(r.money[i] for r in lines) for i in range(4)]
    sums += [sum(r.adjusted_fen for r in lines), sum(r.due_fen for r in lines)]
    for c, v in enumerate(sums, 4):
        ws.write_number(row, c, float(fen_to_yuan(v)), f.total_money)
    return row + 2


#: The reason table, three reasons a row: (first, last) columns of the label, column of the count.
REASON_CELLS = ((0, 1, 2), (3, 5, 6), (7, 8, 9))


def _reason_table(ws, f: _Formats, lay: Layout, row: int, section: int) -> int:
    ws.write_string(row, 0, f"{_number(section)}、剔除行按原因统计", f.section)
    row += 1
    if not lay.reasons:
        ws.write_string(row, 0, "本月无剔除行。")
        return row + 2
    for first, last, count in REASON_CELLS:
        _merged(ws, row, first, last, "剔除原因", f.head)
        ws.write_string(row, count, "剔除行数", f.head)
    row += 1
    cells = [(f"{SHORT[code]}（{code}）", n) for code, _, n in lay.reasons]
    cells.append(("合计", lay.totals["rejected"]))
    cells += [("", None)] * (-len(cells) % len(REASON_CELLS))
    for i in range(0, len(cells), len(REASON_CELLS)):
        for (first, last, at), (label, n) in zip(REASON_CELLS, cells[i : i + 3], strict=True):
            bold = label == "合计"
            _merged(ws, row, first, last, label, f.total_text if bold else f.text)
            if n is None:
                ws.write_string(row, at, "", f.text)
            else:
                ws.write_number(row, at, n, f.total_int if bold else f.int)
        row += 1
    return row + 1


def _adjustment_table(ws, f: _Formats, lay: Layout, row: int, section: int) -> int:
    ws.write_string(
        row, 0, f"{_number(section)}、补充结算调整（已封存月份迟到投递，计入本期）", f.section
    )
    row += 1
    ws.write_string(row, 0, "所属月份", f.head)
    _merged(ws, row, 1, 3, "结算批次", f.head)
    _merged(ws, row, 4, 5, "企业", f.head)
    ws.write_string(row, 6, "件数", f.head)
    ws.write_string(row, 7, "金额(元)", f.head)
    row += 1
    for month, run_id, label, parcels, fen in lay.adjustments:
        ws.write_string(row, 0, month, f.text)
        _merged(ws, row, 1, 3, run_id, f.text)
        _merged(ws, row, 4, 5, label, f.text)
        ws.write_number(row, 6, parcels, f.int)
        ws.write_number(row, 7, float(fen_to_yuan(fen)), f.money)
        row += 1
    return row + 1


def _clawback_table(ws, f: _Formats, lay: Layout, row: int, section: int) -> int:
    """Clawbacks (追缴) booked in the month: two rows each, the second naming the waybills."""
    ws.write_string(row, 0, f"{_number(section)}、追缴（负数调整，计入本期）", f.section)
    row += 1
    heads = [(0, 0, "类别"), (1, 2, "追缴编号"), (3, 4, "企业"), (5, 5, "所属月份")]
    heads += [(6, 6, "运单数"), (7, 7, "金额(元)"), (8, 8, "原因"), (9, 9, "登记人")]
    for first, last, text in heads:
        _merged(ws, row, first, last, text, f.head)
    row += 1
    for c in lay.clawbacks:
        ws.write_string(row, 0, CLAWBACK_KINDS.get(c.kind, c.kind), f.text)
        _merged(ws, row, 1, 2, c.clawback_id, f.wrap)
        _merged(ws, row, 3, 4, c.company, f.text)
        ws.write_string(row, 5, c.source_months, f.wrap)
        ws.write_number(row, 6, c.waybills, f.int)
        ws.write_number(row, 7, float(fen_to_yuan(c.amount_fen)), f.money)
        ws.write_string(row, 8, c.reason, f.wrap)
        ws.write_string(row, 9, c.recorded, f.wrap)
        _wrapped(ws, row, max(c.reason, c.clawback_id, key=_shown), WIDTHS[8])
        row += 1
        text = f"运单：{c.waybill_text}"
        _merged(ws, row, 0, LAST, text, f.wrap)
        _wrapped(ws, row, text, sum(WIDTHS))
        row += 1
    return row + 1


def _clawback_sheet(wb, f: _Formats, lay: Layout) -> None:
    """追缴明细: every waybill of the month's clawbacks (up to XLSX_LISTING_MAX_ROWS)."""
    lines = lay.clawback_lines
    ws = wb.add_worksheet("追缴明细")
    for c, (head, width) in enumerate(
        (("追缴编号", 40), ("企业", 10), ("运单号", 24), ("所属月份", 10), ("金额(元)", 12))
    ):
        ws.set_column(c, c, width)
        ws.write_string(0, c, head, f.head)
    for r, rec in enumerate(lines.head(XLSX_LISTING_MAX_ROWS).iter_rows(named=True), 1):
        ws.write_string(r, 0, rec["clawback_id"], f.cell)
        ws.write_string(r, 1, rec["company"], f.cell)
        ws.write_string(r, 2, rec["waybill_no"], f.cell)
        ws.write_string(r, 3, rec["source_month"], f.cell)
        ws.write_number(r, 4, float(fen_to_yuan(rec["amount_fen"])), f.money)
    if lines.height > XLSX_LISTING_MAX_ROWS:
        ws.write_string(
            XLSX_LISTING_MAX_ROWS + 1,
            0,
            f"共 {lines.height:,} 行，此处列出前 {XLSX_LISTING_MAX_ROWS:,} 行；全部见结算库 "
            "clawbacks 表（settle sql）",
        )
    ws.freeze_panes(1, 0)


def _seal_rows(ws, f: _Formats, lay: Layout, row: int) -> int:
    seal = dict(lay.seal or [])
    ws.write_string(row, 0, "审核与审批（已封存）", f.section)
    row += 1
    cells = [
        [("审核人", 0, 1, 2), ("审批人", 3, 4, 5), ("审批文号", 6, 7, LAST)],
        [("公示期", 0, 1, 5), ("封存时间", 6, 7, LAST)],
    ]
    for line in cells:
        for label, at, first, last in line:
            ws.write_string(row, at, label, f.seal_label)
            _merged(ws, row, first, last, seal[label], f.seal_value)
        row += 1
    return row + 1


#: The signature block: one tall row, which a printed page never splits.
SPACE = "\u3000"
SIGNATURES = (
    f"经办人：{SPACE * 22}审核人：{SPACE * 22}负责人：\n\n\n"
    f"（盖章）{SPACE * 46}日期：{SPACE * 2}年{SPACE * 2}月{SPACE * 2}日"
)


def _signatures(ws, f: _Formats, lay: Layout, row: int) -> int:
    _merged(ws, row, 0, LAST, f"{lay.confirmation}\n\n\n{SIGNATURES}", f.sign)
    ws.set_row(row, 15 * 8)
    return row + 2


def _chart_sheet(wb, f: _Formats, lay: Layout, first_data: int, last_data: int) -> None:
    if last_data < first_data:
        return
    cs = wb.add_worksheet("应付补贴图")
    top = _void_row(cs, f, lay, 11)
    chart = wb.add_chart({"type": "bar"})
    chart.add_series(
        {
            "name": "应付补贴(元)",
            "categories": ["结算单", first_data, 1, last_data, 1],
            "values": ["结算单", first_data, LAST, last_data, LAST],
            "data_labels": {"value": True, "num_format": "#,##0.00"},
        }
    )
    chart.set_title({"name": "各旗县应付补贴（元）"})
    chart.set_legend({"none": True})
    chart.set_y_axis({"reverse": True})
    chart.set_size({"width": 720, "height": max(300, 22 * (last_data - first_data + 1) + 90)})
    cs.insert_chart(top + 1, 0, chart)
    cs.set_paper(9)
    cs.set_landscape()
    cs.fit_to_pages(1, 1)
    _void_header(cs, lay)


REJECT_WIDTHS = [28, 8, 20, 10, 16, 30, 44]
DETAIL_WIDTHS = [20, 19, 14, 10, 15, 13, 13, 20, 14, 12, 9, 16, 9]


def _listing_sheet(wb, f: _Formats, data: MonthData, lay: Layout, listing: Listing) -> None:
    ws = wb.add_worksheet(listing.sheet)
    rejects = listing.kind == "rejects"
    headers = REJECT_COLUMNS if rejects else [h for h, _ in DETAIL_COLUMNS]
    top = _void_row(ws, f, lay, len(headers) - 1)
    for c, h in enumerate(headers):
        ws.write_string(top, c, h, f.head)
    widths = REJECT_WIDTHS if rejects else DETAIL_WIDTHS
    for c, w in enumerate(widths):
        ws.set_column(c, c, w)
    ws.freeze_panes(top + 1, 0)
    _print_setup(ws, lay, top)
    if not listing.in_sheet or listing.count == 0:
        note = "本企业本月无剔除行。" if listing.count == 0 and rejects else None
        note = note or ("本企业本月无受理的投递。" if listing.count == 0 else None)
        ws.write_string(top + 1, 0, note or listing.where(None))
        return
    if rejects:
        _reject_rows(ws, f, data, lay, top)
    else:
        _detail_rows(ws, f, data, lay, top)


def _reject_rows(ws, f: _Formats, data: MonthData, lay: Layout, top: int) -> None:
    select, params = _rejects_select(lay.stem)
    cursor = data.con.execute(select, params)
    row = top
    while batch := cursor.fetchmany(10_000):
        for rec in batch:
            row += 1
            ws.write_string(row, 0, rec[0] or "", f.cell)
            ws.write_number(row, 1, rec[1], f.n_int)
            for c, v in enumerate(rec[2:], 2):
                ws.write_string(row, c, "" if v is None else str(v), f.cell)


def _detail_rows(ws, f: _Formats, data: MonthData, lay: Layout, top: int) -> None:
    """Every accepted parcel: numbers as number cells (the ledger's exact decimals), times as
    date cells (签收时间 is local time as logged)."""
    number = {
        "distance_km": f.n_km,
        "cost_yuan": f.n_yuan,
        "revenue_yuan": f.n_yuan,
        "village_volume": f.n_int,
        "rate_fen": f.n_fen,
        "subsidy_fen": f.n_fen,
    }
    names = [c for _, c in DETAIL_COLUMNS]
    cursor = data.con.execute(_detail_select(), [lay.stem])
    row = top
    while batch := cursor.fetchmany(10_000):
        for rec in batch:
            row += 1
            for c, (name, v) in enumerate(zip(names, rec, strict=True)):
                if v is None:
                    continue
                if name in number:
                    # DECIMAL(18, 6) as a double: exact to the 6 decimals shown (< 2**53)
                    ws.write_number(row, c, float(v), number[name])
                elif name == "delivered_at":
                    ws.write_datetime(row, c, v, f.when)
                elif name == "area_class":
                    ws.write_string(row, c, area_class_label(v), f.cell)
                else:
                    ws.write_string(row, c, str(v), f.cell)
