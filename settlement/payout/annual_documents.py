"""The annual statements (年度结算表, SPEC §10) as XLSX and HTML: per company and for the 盟市,
month by month — regular payable, supplements and clawbacks booked in the month, the month's
due, the batch that pays it and whether it is paid, what is outstanding, the budget used —
then the year's totals in words, the break-even true-up and the signatures.

The totals are the sums of the month rows shown; `annual.json` records them with each file's
SHA-256, and `settle verify` checks them against the months in the store.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..clock import local_text
from ..money import fen_to_yuan, format_yuan, rmb_upper
from ..outputs import sha256_file
from ..statements.html import _document, _e, _head, _n, _y
from ..statements.xlsx import _Formats, _merged, _wrapped, new_workbook
from .annual import AnnualData
from .documents import print_landscape

MONTH_HEADERS = [
    "月份",
    "月份状态",
    "受理件数",
    "本月结算(元)",
    "补充结算调整(元)",
    "追缴(元)",
    "本期实付(元)",
    "拨付批次",
    "拨付情况",
    "已拨付(元)",
    "未拨付(元)",
]
BUDGET_HEADERS = ["预算累计已用(元)", "预算余额(元)"]
MONEY = ("regular_fen", "supplementary_fen", "clawback_fen", "due_fen")
WIDTHS = [9, 9, 10, 13, 14, 11, 13, 17, 17, 13, 12, 15, 14]
TOTAL_KEYS = ("regular_fen", "supplementary_fen", "clawback_fen", "due_fen", "paid_fen")
TOTAL_KEYS += ("outstanding_fen", "parcels")


def _paid_text(line: dict) -> str:
    if line["batch_state"] == "paid":
        return f"已拨付 {line['paid_on']}"
    if line["batch_state"] == "created":
        return "已生成，待拨付"
    return "未拨付" if line["due_fen"] else "—"


def _title(data: AnnualData, company: str | None) -> str:
    what = "年度结算汇总表" if company is None else "年度结算单"
    return f"{data.league_name}{data.year}年度快递进村补贴{what}"


def _info(data: AnnualData, company: str | None) -> list[tuple[str, str]]:
    return [
        ("盟市", f"{data.league_name}（{data.league}）"),
        ("快递企业", "全部企业" if company is None else data.company_label(company)),
        ("预算年度", f"{data.start} 至 {data.end}"),
        ("关账时间", f"{local_text(data.closed_at)}（{data.closed_by}）"),
    ]


def _month_cells(data: AnnualData, line: dict, summary: bool) -> list:
    """One month row: text cells as str, amounts as ('y', 分), counts as ('n', int)."""
    cells = [
        line["month"],
        data.states.get(line["month"], ""),
        ("n", line["parcels"]),
        *[("y", line[k]) for k in MONEY],
        line["batch_id"] or "—",
        _paid_text(line),
        ("y", line["paid_fen"]),
        ("y", line["outstanding_fen"]),
    ]
    if summary:
        b = next((m for m in data.budget["months"] if m["month"] == line["month"]), None)
        if b and b.get("state"):
            cells += [("y", b["used_fen"]), ("y", b["left_fen"])]
        else:
            cells += ["—", "—"]
    return cells


def _total_cells(totals: dict, summary: bool) -> list:
    cells = ["合计", "", ("n", totals["parcels"]), *[("y", totals[k]) for k in MONEY]]
    cells += ["", "", ("y", totals["paid_fen"]), ("y", totals["outstanding_fen"])]
    return cells + (["", ""] if summary else [])


def _words(data: AnnualData, company: str | None) -> list[str]:
    t = data.totals(company)
    out = [
        f"年度应付合计（大写）：人民币{rmb_upper(t['due_fen'])}（¥{format_yuan(t['due_fen'])}）"
        f" = 本月结算 {format_yuan(t['regular_fen'])} + 补充结算调整 "
        f"{format_yuan(t['supplementary_fen'])} − 追缴 {format_yuan(-t['clawback_fen'])}；"
        f"已拨付 {format_yuan(t['paid_fen'])}，未拨付 {format_yuan(t['outstanding_fen'])}。"
    ]
    if company is None:
        b = data.budget
        out.append(
            f"年度预算 {format_yuan(b['annual_fen'])} 元（规则 {b['rule']}），已用 "
            f"{format_yuan(b['used_fen'])} 元，余额 {format_yuan(b['left_fen'])} 元。"
        )
    return out


def _true_up_lines(data: AnnualData, company: str | None) -> list[str]:
    if not data.annual_true_up:
        return ["本盟市政策未启用年度盈亏平衡清算（[breakeven] annual_true_up）。"]
    units = [u for u in data.true_up_units if company is None or u["company"] == company]
    total = sum(v for c, v in data.true_up_by_company.items() if company is None or c == company)
    if not units:
        return ["年度盈亏平衡清算：全年补贴未超过各结算单元的全年盈亏平衡上限，无需追缴。"]
    return [
        f"年度盈亏平衡清算：{len(units)} 个结算单元全年补贴超过全年盈亏平衡上限 "
        f"floor(100 × max(0, 全年成本 − 全年派费收入))，超出部分 {format_yuan(-total)} 元按运单"
        f"追缴，计入 {data.booked_in_month} 结算单（负数调整）。"
    ]


UNIT_HEADERS = ["结算单元", "件数", "全年成本(元)", "全年派费收入(元)", "全年上限(元)"]
UNIT_HEADERS += ["全年已付(元)", "追缴(元)"]


def _unit_cells(u: dict) -> list:
    return [
        u["unit_key"],
        ("n", u["parcels"]),
        u["cost_yuan"],
        u["revenue_yuan"],
        ("y", u["annual_cap_fen"]),
        ("y", u["paid_fen"]),
        ("y", -u["excess_fen"]),
    ]


def _notes(data: AnnualData, company: str | None) -> list[str]:
    notes = [
        "本期实付 = 本月结算 + 计入该月的补充结算调整 + 计入该月的追缴（负数），即各月已封存结算单的"
        "本期实付；已拨付为所在拨付批次已确认拨付的月份，其余为未拨付。",
        "本年度已关账：之后的补充结算和追缴计入下一年度的月份。",
    ]
    carries = [c for code, c in data.carries.items() if company is None or code == company]
    for c in carries:
        notes.append(
            f"{data.company_label(c['company'])} 截至关账有 {format_yuan(-c['carried_fen'])} 元"
            f"结转待抵扣（拨付批次 {c['batch_id']} 应付为负数，从下一批次扣回）。"
        )
    return notes


# --------------------------------------------------------------------------- HTML


def _html_cell(cell) -> str:
    if isinstance(cell, tuple):
        kind, value = cell
        return _y(value) if kind == "y" else _n(value)
    return f'<td class="t">{_e(cell)}</td>'


def write_html(path: Path, data: AnnualData, company: str | None) -> None:
    summary = company is None
    headers = MONTH_HEADERS + (BUDGET_HEADERS if summary else [])
    out = [f"<h1>{_e(_title(data, company))}</h1>", '<table class="info">']
    info = _info(data, company)
    for (a, b), (c, d) in zip(info[::2], info[1::2], strict=True):
        out.append(f"<tr><th>{_e(a)}：</th><td>{_e(b)}</td><th>{_e(c)}：</th><td>{_e(d)}</td></tr>")
    out.append("</table><h2>一、逐月结算与拨付</h2>")
    out.append(f'<table class="lines" id="months">{_head(headers)}<tbody>')
    for line in data.company_lines(company):
        out.append("<tr>" + "".join(_html_cell(c) for c in _month_cells(data, line, summary)))
    totals = data.totals(company)
    out.append(
        '<tr class="total">'
        + "".join(_html_cell(c) for c in _total_cells(totals, summary))
        + "</tr></tbody></table>"
    )
    out += [f'<p class="words">{_e(w)}</p>' for w in _words(data, company)]
    section = 2
    if summary:
        out.append(f"<h2>{'二'}、分企业年度合计</h2>")
        heads = ["企业", "受理件数", "本月结算(元)", "补充结算调整(元)", "追缴(元)"]
        heads += ["本期实付(元)", "已拨付(元)", "未拨付(元)", "年度清算追缴(元)"]
        out.append(f'<table class="lines" id="companies">{_head(heads)}<tbody>')
        for code in data.companies:
            t = data.totals(code)
            out.append(
                f'<tr><td class="t">{_e(data.company_label(code))}</td>{_n(t["parcels"])}'
                + "".join(_y(t[k]) for k in (*MONEY, "paid_fen", "outstanding_fen"))
                + _y(data.true_up_by_company.get(code, 0))
                + "</tr>"
            )
        out.append("</tbody></table>")
        section += 1
    out.append(f"<h2>{'一二三四'[section - 1]}、年度盈亏平衡清算</h2>")
    out += [f"<p>{_e(t)}</p>" for t in _true_up_lines(data, company)]
    units = [u for u in data.true_up_units if company is None or u["company"] == company]
    if units:
        out.append(f'<table class="lines" id="true-up">{_head(UNIT_HEADERS)}<tbody>')
        for u in units:
            out.append("<tr>" + "".join(_html_cell(c) for c in _unit_cells(u)) + "</tr>")
        out.append("</tbody></table>")
    out.append(
        '<div class="keep"><div class="signatures"><span>经办人：</span><span>审核人：</span>'
        "<span>负责人：</span></div>"
        f'<div class="stamp"><span>{_e(data.league_name)}邮政管理局（盖章）</span>'
        "<span>日期：&emsp;&emsp;年&emsp;&emsp;月&emsp;&emsp;日</span></div></div>"
    )
    notes = _notes(data, company)
    out.append(
        '<div class="notes">说明：<ol>'
        + "".join(f"<li>{_e(n)}</li>" for n in notes)
        + "</ol></div>"
    )
    path.write_text(_document(_title(data, company), out, None), encoding="utf-8")


# --------------------------------------------------------------------------- XLSX


def _xlsx_cell(ws, f, row: int, col: int, cell, bold: bool = False) -> None:
    if isinstance(cell, tuple):
        kind, value = cell
        if kind == "y":
            ws.write_number(row, col, float(fen_to_yuan(value)), f.total_money if bold else f.money)
        else:
            ws.write_number(row, col, value, f.total_int if bold else f.int)
    else:
        ws.write_string(row, col, str(cell), f.total_text if bold else f.text)


def write_xlsx(path: Path, data: AnnualData, company: str | None) -> None:

    summary = company is None
    headers = MONTH_HEADERS + (BUDGET_HEADERS if summary else [])
    last = len(headers) - 1
    wb = new_workbook(path)
    wb.set_properties({"title": _title(data, company)})
    f = _Formats(wb)
    ws = wb.add_worksheet("年度结算")
    for c, w in enumerate(WIDTHS[: last + 1]):
        ws.set_column(c, c, w)
    _merged(ws, 0, 0, last, _title(data, company), f.title)
    ws.set_row(0, 30)
    row = 1
    info = _info(data, company)
    for (a, b), (c, d) in zip(info[::2], info[1::2], strict=True):
        _merged(ws, row, 0, 1, f"{a}：", f.label)
        _merged(ws, row, 2, 5, b, f.value)
        _merged(ws, row, 6, 7, f"{c}：", f.label)
        _merged(ws, row, 8, last, d, f.value)
        row += 1
    row += 1
    ws.write_string(row, 0, "一、逐月结算与拨付", f.section)
    row += 1
    for c, h in enumerate(headers):
        ws.write_string(row, c, h, f.head)
    ws.set_row(row, 30)
    header_row = row
    row += 1
    for line in data.company_lines(company):
        for c, cell in enumerate(_month_cells(data, line, summary)):
            _xlsx_cell(ws, f, row, c, cell)
        row += 1
    totals = data.totals(company)
    for c, cell in enumerate(_total_cells(totals, summary)):
        _xlsx_cell(ws, f, row, c, cell, bold=True)
    row += 1
    for text in _words(data, company):
        _merged(ws, row, 0, last, text, f.words)
        _wrapped(ws, row, text, sum(WIDTHS[: last + 1]), 18)
        row += 1
    row += 1
    section = 2
    if summary:
        ws.write_string(row, 0, "二、分企业年度合计", f.section)
        row += 1
        heads = ["企业", "", "受理件数", "本月结算(元)", "补充结算调整(元)", "追缴(元)"]
        heads += ["本期实付(元)", "已拨付(元)", "未拨付(元)", "年度清算追缴(元)"]
        _merged(ws, row, 0, 1, "企业", f.head)
        for c, h in enumerate(heads[2:], 2):
            ws.write_string(row, c, h, f.head)
        row += 1
        for code in data.companies:
            t = data.totals(code)
            _merged(ws, row, 0, 1, data.company_label(code), f.text)
            ws.write_number(row, 2, t["parcels"], f.int)
            values = [t[k] for k in (*MONEY, "paid_fen", "outstanding_fen")]
            values.append(data.true_up_by_company.get(code, 0))
            for c, v in enumerate(values, 3):
                ws.write_number(row, c, float(fen_to_yuan(v)), f.money)
            row += 1
        row += 1
        section += 1
    ws.write_string(row, 0, f"{'一二三四'[section - 1]}、年度盈亏平衡清算", f.section)
    row += 1
    for text in _true_up_lines(data, company):
        _merged(ws, row, 0, last, text, f.value)
        _wrapped(ws, row, text, sum(WIDTHS[: last + 1]))
        row += 1
    units = [u for u in data.true_up_units if company is None or u["company"] == company]
    if units:
        _merged(ws, row, 0, 1, UNIT_HEADERS[0], f.head)
        for c, h in enumerate(UNIT_HEADERS[1:], 2):
            ws.write_string(row, c, h, f.head)
        row += 1
        for u in units:
            cells = _unit_cells(u)
            _merged(ws, row, 0, 1, cells[0], f.text)
            for c, cell in enumerate(cells[1:], 2):
                if isinstance(cell, tuple):
                    _xlsx_cell(ws, f, row, c, cell)
                else:
                    ws.write_number(row, c, float(cell), f.money)
            row += 1
    row += 1
    _merged(ws, row, 0, 2, "经办人：", f.sign)
    _merged(ws, row, 3, 5, "审核人：", f.sign)
    _merged(ws, row, 6, 7, "负责人：", f.sign)
    _merged(ws, row, 8, last, "（盖章）\n\n　　年　　月　　日", f.sign)
    ws.set_row(row, 56)
    row += 2
    for text in ["说明：", *_notes(data, company)]:
        _merged(ws, row, 0, last, text, f.note)
        _wrapped(ws, row, text, sum(WIDTHS[: last + 1]), 12)
        row += 1
    print_landscape(ws, row - 1, last, header_row, f"{data.league} {data.year}")
    wb.define_name("TOTAL_DUE_YUAN", f"={fen_to_yuan(totals['due_fen'])}")
    wb.close()


def write_annual(folder: Path, data: AnnualData) -> dict[str, dict]:
    """Every company's annual statement and the 盟市's, XLSX and HTML, and annual.json; the
    files with their SHA-256, company and totals."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict] = {}
    for company in [*data.companies, None]:
        stem = company or "summary"
        totals = data.totals(company)
        for suffix, write in (("xlsx", write_xlsx), ("html", write_html)):
            path = folder / f"{stem}.{suffix}"
            write(path, data, company)
            files[path.name] = {
                "sha256": sha256_file(path),
                "company": company,
                **{k: totals[k] for k in TOTAL_KEYS},
            }
    manifest = {
        "league_code": data.league,
        "year": data.year,
        "start_month": data.start,
        "end_month": data.end,
        "closed_by": data.closed_by,
        "closed_at": str(data.closed_at),
        "true_up_fen": sum(data.true_up_by_company.values()),
        "booked_in_month": data.booked_in_month,
        "files": files,
    }
    (folder / "annual.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    files["annual.json"] = {"sha256": sha256_file(folder / "annual.json"), "company": None}
    return files
