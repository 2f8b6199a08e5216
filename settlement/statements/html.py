"""A statement and the public notice as one self-contained HTML page each, printed on A4
landscape: the signed part on the first page(s), no listings (the footer says where they are).
A voided document has a banner and a diagonal 作废 watermark on every printed page. Every value
is escaped: text from logs is untrusted.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

from ..money import format_yuan, rmb_upper
from ..reasons import SHORT
from . import (
    CLAWBACK_KINDS,
    COMPANY_HEADERS,
    COUNTY_HEADERS,
    MONEY_COLUMNS,
    NOTICE_HEADERS,
)

if TYPE_CHECKING:
    from . import Layout, Notice

CSS = """
@page { size: A4 landscape; margin: 9mm 11mm; }
* { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "SimSun", sans-serif;
       color: #111; font-size: 9pt; margin: 0; }
h1 { text-align: center; font-size: 16pt; letter-spacing: 2px; margin: 0 0 4px; }
h2 { font-size: 10pt; margin: 6px 0 2px; }
table.info { border-collapse: collapse; margin-bottom: 2px; width: 100%; }
table.info th { text-align: left; padding: 1px 6px 1px 0; white-space: nowrap; width: 5em;
                vertical-align: top; }
table.info td { padding: 1px 18px 1px 0; vertical-align: top; }
table.lines { border-collapse: collapse; width: 100%; }
table.lines th, table.lines td { border: 1px solid #444; padding: 1px 4px; }
table.lines th { background: #e8ecf2; font-weight: bold; }
table.lines th small { font-weight: normal; color: #333; }
table.lines td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.lines td.t { white-space: nowrap; }
table.lines tr.total td { font-weight: bold; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; }
p.words { margin: 4px 0; font-size: 10pt; font-weight: bold; }
.keep { page-break-inside: avoid; }
table.seal { border-collapse: collapse; margin-top: 2px; }
table.seal th, table.seal td { border: 1px solid #444; padding: 2px 8px; text-align: left; }
table.seal th { background: #f3f3f3; white-space: nowrap; }
.signatures { display: flex; justify-content: space-between; margin-top: 16px; font-size: 11pt;
              font-weight: bold; }
.signatures span { min-width: 22%; }
.stamp { margin-top: 16px; font-size: 11pt; font-weight: bold; display: flex;
         justify-content: space-between; }
.stamp span:last-child { min-width: 30%; }
.notes { color: #333; font-size: 8.5pt; margin-top: 10px; border-top: 1px solid #999;
         padding-top: 4px; }
.notes ol { margin: 2px 0 0 1.5em; padding: 0; }
.void-banner { border: 3px solid #c00000; color: #c00000; background: #fde8e8; font-weight: bold;
               font-size: 13pt; padding: 5px 10px; margin-bottom: 6px; text-align: center; }
.void-mark { position: fixed; top: 38%; left: 0; right: 0; text-align: center; z-index: 10;
             transform: rotate(-28deg); font-size: 150pt; font-weight: bold; letter-spacing: 40px;
             color: rgba(192, 0, 0, 0.16); pointer-events: none; }
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _document(title: str, body: list[str], banner: str | None) -> str:
    if banner:
        body = [
            '<div class="void-mark" aria-hidden="true">作废</div>',
            f'<div class="void-banner" id="void-banner">{_e(banner)}</div>',
            *body,
        ]
    text = "\n".join(body)
    return (
        f'<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{text}\n</body>\n</html>\n"
    )


def _n(value: int) -> str:
    return f'<td class="n">{value:,}</td>'


def _y(fen: int) -> str:
    return f'<td class="n">{format_yuan(fen)}</td>'


def _head(headers: list[str]) -> str:
    return "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr></thead>"


def _seal_table(seal: list[tuple[str, str]] | None) -> list[str]:
    if not seal:
        return []
    cells = "".join(f"<th>{_e(k)}</th><td>{_e(v)}</td>" for k, v in seal)
    return [
        "<h2>审核与审批（已封存）</h2>",
        f'<table class="seal" id="seal"><tr>{cells}</tr></table>',
    ]


def write_statement_html(path: Path, lay: Layout) -> None:
    """The statement page: everything to sign, and where the listings are."""
    info = dict(lay.info)
    out = [f"<h1>{_e(lay.title)}</h1>", '<table class="info">']
    for a, b in (("盟市", "快递企业"), ("结算月份", "结算批次"), ("生成时间", "政策版本")):
        out.append(
            f"<tr><th>{_e(a)}：</th><td>{_e(info[a])}</td>"
            f"<th>{_e(b)}：</th><td>{_e(info[b])}</td></tr>"
        )
    out.append("</table>")
    out.append("<h2>一、分旗县结算</h2>")
    out.append(f'<table class="lines">{_head(COUNTY_HEADERS)}<tbody>')
    for line in lay.rows:
        out.append(
            f'<tr><td class="t">{_e(line.code)}</td><td class="t">{_e(line.name)}</td>'
            f"<td>{_e(line.classes)}</td>"
            + "".join(_n(v) for v in line.counts)
            + "".join(_y(v) for v in line.money)
            + "</tr>"
        )
    if not lay.rows:
        out.append(f'<tr><td colspan="{len(COUNTY_HEADERS)}">{_e(lay.no_lines)}</td></tr>')
    totals = lay.totals
    out.append(
        '<tr class="total"><td>合计</td><td></td><td></td>'
        + "".join(_n(totals[k]) for k in ("submitted", "accepted", "rejected"))
        + "".join(_y(totals[k]) for k in MONEY_COLUMNS)
        + "</tr></tbody></table>"
    )
    out.append(
        f'<p class="words">应付补贴合计（大写）：人民币{rmb_upper(totals["subsidy_fen"])}'
        f'（<span id="total-subsidy">¥{format_yuan(totals["subsidy_fen"])}</span>）；'
        f'受理 <span id="total-parcels">{totals["accepted"]:,}</span> 件。</p>'
    )
    section = 2
    if lay.companies is not None:
        out += _company_table(lay, section)
        section += 1
    out += _reason_table(lay, section)
    section += 1
    if lay.adjustments:
        out += _adjustment_table(lay, section)
        section += 1
    if lay.clawbacks:
        out += _clawback_table(lay.clawbacks, f"{_number(section)}、追缴（负数调整，计入本期）")
    if lay.adjustments or lay.clawbacks:
        out.append(
            f'<p class="words">本期实付合计：人民币{rmb_upper(lay.due_fen)}'
            f'（<span id="total-due">¥{format_yuan(lay.due_fen)}</span>）{_e(lay.due_parts)}</p>'
        )
    out.append('<div class="keep">')
    out += _seal_table(lay.seal)
    out.append(
        f'<p class="words" id="confirmation">{_e(lay.confirmation)}</p>'
        '<div class="signatures"><span>经办人：</span><span>审核人：</span>'
        "<span>负责人：</span></div>"
        '<div class="stamp"><span>（盖章）</span>'
        "<span>日期：&emsp;&emsp;年&emsp;&emsp;月&emsp;&emsp;日</span></div></div>"
    )
    notes = lay.footer(f"{lay.stem}.xlsx")
    notes.append(f"本结算单由快递进村补贴结算引擎根据结算批次 {lay.run_id} 的明细账生成。")
    out.append(
        '<div class="notes" id="where">说明：<ol>'
        + "".join(f"<li>{_e(n)}</li>" for n in notes)
        + "</ol></div>"
    )
    path.write_text(_document(lay.title, out, lay.void_banner), encoding="utf-8")


def _number(n: int) -> str:
    return "一二三四五六七八九十"[n - 1]


def _company_table(lay: Layout, section: int) -> list[str]:
    rows = lay.companies or []
    out = [f"<h2>{_number(section)}、分企业结算</h2>"]
    out.append(f'<table class="lines">{_head(COMPANY_HEADERS)}<tbody>')
    for r in rows:
        out.append(
            f'<tr><td class="t">{_e(r.label)}</td>{_n(r.accepted)}{_n(r.rejected)}'
            + "".join(_y(v) for v in [*r.money, r.adjusted_fen, r.due_fen])
            + "</tr>"
        )
    sums = [sum(r.money[i] for r in rows) for i in range(4)]
    sums += [sum(r.adjusted_fen for r in rows), sum(r.due_fen for r in rows)]
    out.append(
        f'<tr class="total"><td>合计</td>{_n(sum(r.accepted for r in rows))}'
        f"{_n(sum(r.rejected for r in rows))}"
        + "".join(_y(v) for v in sums)
        + "</tr></tbody></table>"
    )
    return out


def _reason_table(lay: Layout, section: int) -> list[str]:
    out = [f"<h2>{_number(section)}、剔除行按原因统计</h2>"]
    if not lay.reasons:
        return [*out, "<p>本月无剔除行。</p>"]
    heads = "".join(
        f'<th title="{_e(text)}">{_e(SHORT[code])}<br><small>{_e(code)}</small></th>'
        for code, text, _ in lay.reasons
    )
    counts = "".join(_n(count) for _, _, count in lay.reasons)
    out.append(
        f'<table class="lines" id="reasons"><thead><tr>{heads}<th>合计</th></tr></thead>'
        f'<tbody><tr>{counts}<td class="n"><b>{lay.totals["rejected"]:,}</b></td></tr>'
        "</tbody></table>"
    )
    return out


def _adjustment_table(lay: Layout, section: int) -> list[str]:
    out = [
        f"<h2>{_number(section)}、补充结算调整（已封存月份迟到投递，计入本期）</h2>",
        f'<table class="lines">{_head(["所属月份", "结算批次", "企业", "件数", "金额(元)"])}<tbody>',
    ]
    for month, run_id, label, parcels, fen in lay.adjustments:
        out.append(
            f'<tr><td class="t">{_e(month)}</td><td>{_e(run_id)}</td>'
            f'<td class="t">{_e(label)}</td>{_n(parcels)}{_y(fen)}</tr>'
        )
    out.append("</tbody></table>")
    return out


def _clawback_table(rows: list, heading: str) -> list[str]:
    """Clawbacks (追缴) booked in the month: who recorded them, why, which waybills."""
    out = [
        f"<h2>{_e(heading)}</h2>",
        '<table class="lines" id="clawbacks">'
        + _head(["类别", "追缴编号", "企业", "所属月份", "运单数", "金额(元)", "原因", "登记人"])
        + "<tbody>",
    ]
    for c in rows:
        out.append(
            f'<tr><td class="t">{_e(CLAWBACK_KINDS.get(c.kind, c.kind))}</td>'
            f'<td class="t">{_e(c.clawback_id)}</td><td class="t">{_e(c.company)}</td>'
            f"<td>{_e(c.source_months)}</td>{_n(c.waybills)}{_y(c.amount_fen)}"
            f"<td>{_e(c.reason)}</td><td>{_e(c.recorded)}</td></tr>"
            f'<tr><td></td><td colspan="7"><small>运单：{_e(c.waybill_text)}</small></td></tr>'
        )
    out.append("</tbody></table>")
    return out


def write_notice_html(path: Path, notice: Notice) -> None:
    """The public notice (公示名单): per company, the month's payable, supplements, clawbacks
    (listed with their waybills, reason and who recorded them) and the total."""
    when = f"{notice.year}年{notice.month}月"
    body = [
        f"<h1>{_e(notice.title)}</h1>",
        '<p class="words" style="font-weight:normal">根据内政办发〔2022〕39号第（十四）项及本盟市'
        f"实施细则，现将{when}快递进村补贴结算结果（含本月计入的补充结算调整）公示如下：</p>",
        '<table class="lines">' + _head(["序号", *NOTICE_HEADERS]) + "<tbody>",
    ]
    for i, (code, name, parcels, fen, adj, claw) in enumerate(notice.rows, 1):
        body.append(
            f'<tr><td class="n">{i}</td><td>{_e(code)}</td><td>{_e(name)}</td>'
            f"{_n(parcels)}{_y(fen)}{_y(adj)}{_y(claw)}{_y(fen + adj + claw)}</tr>"
        )
    rows = notice.rows
    body.append(
        '<tr class="total"><td></td><td>合计</td><td></td>'
        f"{_n(sum(r[2] for r in rows))}"
        f'<td class="n" id="total-subsidy">{format_yuan(sum(r[3] for r in rows))}</td>'
        f"{_y(sum(r[4] for r in rows))}{_y(sum(r[5] for r in rows))}"
        f'<td class="n" id="total-due">{format_yuan(notice.total_fen)}</td></tr></tbody></table>'
    )
    if notice.clawbacks:
        body += _clawback_table(notice.clawbacks, "追缴明细（计入本月，负数调整）")
    period = notice.period or "&emsp;&emsp;年&emsp;月&emsp;日至&emsp;&emsp;年&emsp;月&emsp;日"
    body.append(
        f'<p class="words" style="font-weight:normal" id="notice-period">公示期：'
        f"{_e(period) if notice.period else period}。"
        "公示期内，对公示内容有异议的，可向盟市邮政管理部门书面反映。</p>"
    )
    body.append('<div class="keep">')
    body += _seal_table(notice.seal)
    body.append(
        f'<div class="stamp"><span></span><span>{_e(notice.league_name)}邮政管理局（盖章）<br>'
        "&emsp;&emsp;年&emsp;&emsp;月&emsp;&emsp;日</span></div></div>"
    )
    body.append(f'<div class="notes">结算批次 {_e(notice.run_id)}</div>')
    path.write_text(_document(notice.title, body, notice.void_banner), encoding="utf-8")
