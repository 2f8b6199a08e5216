"""A payment batch's files for the finance office (SPEC §10): Parquet (the exact columns), CSV
(UTF-8 with BOM, the transfers to make) and the 拨付清单 workbook to sign.

The workbook's first sheet prints on one A4 landscape page wide: header, one line per company
(payee, credit code, bank, account, months, due, carry, amount, 大写), the total in words, the
note on carry-forward, signatures; the second sheet lists each company's months. Untrusted text
is always a string cell, amounts are number cells.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..clock import local_text
from ..money import fen_to_yuan, format_yuan, rmb_upper
from ..statements import excel_safe
from ..statements.xlsx import _Formats, _merged, _shown, _wrapped, new_workbook

#: The Parquet's columns, exactly as SPEC §10 fixes them.
PARQUET_SCHEMA = pa.schema(
    [
        ("batch_id", pa.string()),
        ("company", pa.string()),
        ("payee_name", pa.string()),
        ("credit_code", pa.string()),
        ("bank", pa.string()),
        ("account", pa.string()),
        ("amount_fen", pa.int64()),
        ("months", pa.string()),
    ]
)
CSV_HEADERS = [
    "批次号",
    "企业编码",
    "收款单位名称",
    "统一社会信用代码",
    "开户银行",
    "银行账号",
    "拨付金额(元)",
    "结算月份",
]
SHEET_HEADERS = [
    "序号",
    "企业",
    "收款单位名称",
    "统一社会信用代码",
    "开户银行",
    "银行账号",
    "结算月份",
    "本批应付(元)",
    "上批结转(元)",
    "拨付金额(元)",
    "拨付金额（大写）",
    "备注",
]
WIDTHS = [5, 16, 28, 20, 26, 22, 16, 12, 11, 12, 24, 28]
LAST = len(SHEET_HEADERS) - 1


def print_landscape(ws, last_row: int, last_col: int, header_row: int, footer: str) -> None:
    """A sheet to sign: A4 landscape, one page wide, the table's header on every page."""
    ws.print_area(0, 0, last_row, last_col)
    ws.set_paper(9)
    ws.set_landscape()
    ws.fit_to_pages(1, 0)
    ws.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
    ws.center_horizontally()
    ws.repeat_rows(header_row)
    ws.set_footer(f"&L{footer}&R第 &P 页，共 &N 页")


def file_names(batch_id: str) -> dict[str, str]:
    """kind -> file name of a batch's files."""
    return {k: f"{batch_id}.{k}" for k in ("parquet", "xlsx", "csv")}


def remark(line: dict) -> str:
    """What a line's carry means, in words ('' when there is none)."""
    parts = []
    if line["carried_in_fen"]:
        parts.append(f"抵扣上批结转 {format_yuan(-line['carried_in_fen'])} 元")
    if line["carried_forward_fen"]:
        parts.append(
            f"应付合计为负，本批拨付 0 元，{format_yuan(-line['carried_forward_fen'])} 元结转下一批次抵扣"
        )
    return "；".join(parts)


def write_parquet(path: Path, batch_id: str, lines: list[dict]) -> None:
    """One row per company line (carry lines of 0 included), the SPEC's columns."""
    rows = [
        {k: (batch_id if k == "batch_id" else line.get(k)) for k in PARQUET_SCHEMA.names}
        for line in lines
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=PARQUET_SCHEMA), path)


def write_csv(path: Path, batch_id: str, lines: list[dict]) -> None:
    """The transfers to make (lines paying more than 0), UTF-8 with BOM, amounts in 元."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_HEADERS)
    for line in lines:
        if line["amount_fen"] <= 0:
            continue
        writer.writerow(
            [
                batch_id,
                excel_safe(line["company"]),
                excel_safe(line["payee_name"]),
                excel_safe(line["credit_code"]),
                excel_safe(line["bank"]),
                excel_safe(line["account"]),
                str(fen_to_yuan(line["amount_fen"])),
                line["months"].replace(",", "、"),
            ]
        )
    path.write_bytes(b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8"))


def write_xlsx(path: Path, batch: dict, lines: list[dict], detail: list[dict], names: dict) -> None:
    """The 拨付清单 workbook: the signed sheet, then each company's months."""

    wb = new_workbook(path)
    title = f"{batch['league_name']}快递进村补贴资金拨付清单"
    wb.set_properties({"title": title, "comments": f"拨付批次 {batch['batch_id']}"})
    f = _Formats(wb)
    money = wb.add_format({"border": 1, "num_format": "#,##0.00", "valign": "vcenter"})
    number = wb.add_format({"border": 1, "align": "center", "valign": "vcenter"})
    ws = wb.add_worksheet("拨付清单")
    for c, w in enumerate(WIDTHS):
        ws.set_column(c, c, w)
    _merged(ws, 0, 0, LAST, title, f.title)
    ws.set_row(0, 30)
    info = [
        ("批次号", batch["batch_id"], "盟市", f"{batch['league_name']}（{batch['league_code']}）"),
        (
            "结算月份",
            batch["months"].replace(",", "、"),
            "生成时间",
            local_text(batch["created_at"]),
        ),
        ("状态", "已生成（待拨付）", "经办人", batch["created_by"]),
    ]
    row = 1
    for a, b, c, d in info:
        ws.write_string(row, 0, "", f.label)
        _merged(ws, row, 0, 1, f"{a}：", f.label)
        _merged(ws, row, 2, 4, b, f.value)
        ws.write_string(row, 5, f"{c}：", f.label)
        _merged(ws, row, 6, LAST, d, f.value)
        row += 1
    row += 1
    for c, h in enumerate(SHEET_HEADERS):
        ws.write_string(row, c, h, f.head)
    ws.set_row(row, 30)
    header_row = row
    row += 1
    for i, line in enumerate(lines, 1):
        note = remark(line)
        ws.write_number(row, 0, i, number)
        ws.write_string(row, 1, f"{names.get(line['company'], '')}（{line['company']}）", f.wrap)
        for c, key in enumerate(("payee_name", "credit_code", "bank", "account"), 2):
            ws.write_string(row, c, line.get(key) or "（未登记）", f.wrap)
        ws.write_string(row, 6, line["months"].replace(",", "、") or "—", f.wrap)
        for c, key in enumerate(("due_fen", "carried_in_fen", "amount_fen"), 7):
            ws.write_number(row, c, float(fen_to_yuan(line[key])), money)
        ws.write_string(row, 10, rmb_upper(line["amount_fen"]), f.wrap)
        ws.write_string(row, 11, note, f.wrap)
        cells = {
            1: f"{names.get(line['company'], '')}（{line['company']}）",
            10: rmb_upper(line["amount_fen"]),
            11: note,
        }
        cells |= {c: line.get(k) or "" for c, k in ((2, "payee_name"), (4, "bank"))}
        lines_needed = max(math.ceil(_shown(t) / (WIDTHS[c] - 1)) or 1 for c, t in cells.items())
        ws.set_row(row, 16 * lines_needed)
        row += 1
    total = sum(line["amount_fen"] for line in lines)
    _merged(ws, row, 0, 6, "合计", f.total_text)
    for c, key in enumerate(("due_fen", "carried_in_fen", "amount_fen"), 7):
        ws.write_number(row, c, float(fen_to_yuan(sum(x[key] for x in lines))), f.total_money)
    ws.write_string(row, 10, rmb_upper(total), f.total_text)
    ws.write_string(row, 11, "", f.total_text)
    row += 1
    words = f"拨付金额合计（大写）：人民币{rmb_upper(total)}（¥{format_yuan(total)}）；收款单位 {sum(1 for x in lines if x['amount_fen'] > 0)} 家"
    _merged(ws, row, 0, LAST, words, f.words)
    ws.set_row(row, 22)
    row += 2
    notes = [
        "说明：",
        "1. 本批应付 = 所列月份已封存结算单的“本期实付”合计（含计入该月的补充结算调整和追缴）；"
        "拨付金额 = 本批应付 + 上批结转，不为负数。",
        "2. 应付合计为负数（追缴多于应付）的企业本批拨付 0 元，差额结转下一批次抵扣，见“备注”。",
        f"3. 本清单由快递进村补贴结算引擎生成；机读文件：同目录 {batch['batch_id']}.csv（UTF-8）和 "
        f"{batch['batch_id']}.parquet。拨付后请用 settle pay confirm 登记拨付日期和凭证号。",
    ]
    for text in notes:
        _merged(ws, row, 0, LAST, text, f.note)
        _wrapped(ws, row, text, sum(WIDTHS), 12)
        row += 1
    row += 1
    _merged(ws, row, 0, 2, "经办人：", f.sign)
    _merged(ws, row, 3, 5, "审核人：", f.sign)
    _merged(ws, row, 6, 8, "负责人：", f.sign)
    _merged(ws, row, 9, LAST, "财务部门（盖章）：\n\n　　年　　月　　日", f.sign)
    ws.set_row(row, 60)
    print_landscape(ws, row, LAST, header_row, batch["batch_id"])

    ds = wb.add_worksheet("按月明细")
    heads = ["企业", "结算月份", "应付补贴(元)", "补充结算调整(元)", "追缴(元)", "本期实付(元)"]
    for c, (h, w) in enumerate(zip(heads, (16, 10, 14, 16, 12, 14), strict=True)):
        ds.set_column(c, c, w)
        ds.write_string(0, c, h, f.head)
    for r, d in enumerate(detail, 1):
        ds.write_string(r, 0, d["company"], f.text)
        ds.write_string(r, 1, d["month"], f.text)
        for c, key in enumerate(("regular_fen", "supplementary_fen", "clawback_fen", "due_fen"), 2):
            ds.write_number(r, c, float(fen_to_yuan(d[key])), f.money)
    ds.freeze_panes(1, 0)
    wb.define_name("TOTAL_AMOUNT_YUAN", f"={fen_to_yuan(total)}")
    wb.close()
