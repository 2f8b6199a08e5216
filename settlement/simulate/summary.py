"""The policy simulation's summary for a policy office (SPEC §9): XLSX and HTML, in Chinese.

Totals under the current and the simulated policy, budget use run by run, winners and losers
by company and 旗县, the units whose break-even cap binds, the rates side by side, the budget
fit's steps, and charts (a native Excel chart; inline SVG in the HTML, nothing fetched).
Amounts are integer 分 from simulate.summary_tables, shown as 元 by money.format_yuan.
"""

from __future__ import annotations

import html
from decimal import Decimal
from pathlib import Path

import polars as pl

from ..clock import local_text
from ..config import Config
from ..money import fen_to_yuan, format_yuan
from ..period import Month
from ..statements import area_class_label

YUAN_FORMAT = "#,##0.00"
SIGNED_FORMAT = "+#,##0.00;-#,##0.00;0.00"
#: the HTML lists at most this many break-even units (the XLSX has them all)
HTML_UNIT_ROWS = 200


def signed_yuan(fen: int) -> str:
    """'+1,234.56' / '-0.05' / '0.00' for a change in 分."""
    return ("+" if fen > 0 else "") + format_yuan(fen)


def percent(delta: int, base: int) -> str:
    """The change as a share of the base, one decimal: '+5.3%' ('—' when the base is 0)."""
    if base == 0:
        return "—"
    value = (Decimal(delta) * 100 / Decimal(base)).quantize(Decimal("0.1"))
    return ("+" if value > 0 else "") + f"{value}%"


def rate_text(value: str) -> str:
    """A rate as people write money: at least two decimals (0.10, 0.185175)."""
    if not value:
        return ""
    d = Decimal(value)
    return f"{d:.2f}" if d == d.quantize(Decimal("0.01")) else format(d.normalize(), "f")


class Names:
    """Companies and 旗县 as people know them."""

    def __init__(self, cfg: Config) -> None:
        self.companies = {c.code: c.name for c in cfg.companies.values()}
        self.counties = cfg.county_names()

    def company(self, code: str | None) -> str:
        return f"{code} {self.companies.get(code, '')}".strip() if code else "—"

    def county(self, code: str | None) -> str:
        return f"{code} {self.counties.get(code, '')}".strip() if code else "—"


# --------------------------------------------------------------------------- the words


def title(sim) -> str:
    return f"补贴政策模拟测算 · {sim.league_name}（{sim.league}） {sim.first} 至 {sim.last}"


def variant_text(sim) -> str:
    """What was simulated, in words."""
    parts = [sim.source]
    for cls, factor in sorted(sim.scale.items()):
        parts.append(f"区域类别 {cls} 的基础费率 ×{factor}")
    if sim.fit is not None:
        parts.append(f"全部基础费率 ×{sim.fit.multiplier:.4f}（预算拟合结果）")
    return "；".join(parts)


def info_rows(sim) -> list[tuple[str, str]]:
    """The header lines: what was compared with what, over which runs, when."""
    runs = sim.the_plan.runs
    supplements = sum(1 for r in runs if r.kind == "supplementary")
    rows = [
        ("现行政策", f"{sim.current.path}（{'、'.join(v.id for v in sim.current.versions)}）"),
        ("模拟政策", variant_text(sim)),
        (
            "重放结算批次",
            f"{len(runs)} 个（月度结算 {len(runs) - supplements} 个、补充结算 {supplements} 个），"
            f"已受理包裹 {sum(r.parcels for r in runs):,} 件；结算库 {sim.the_plan.store}",
        ),
        (
            "预算",
            f"年度预算 {format_yuan(int(sim.variant.annual_budget_yuan * 100))} 元，"
            f"规则 {sim.variant.budget_rule}，预算年度自 {sim.variant.year_start_month} 月起",
        ),
    ]
    if sim.the_plan.missing:
        rows.append(
            ("未结算月份", "、".join(sim.the_plan.missing) + "（结算库中没有有效批次，未计入）")
        )
    rows.append(("生成时间", local_text(sim.generated_at)))
    return rows


def findings(sim, names: Names) -> list[str]:
    """The few sentences an officer reads first."""
    t = sim.totals
    out = [
        f"模拟政策下应付补贴 {format_yuan(t['variant_fen'])} 元，现行政策实付 "
        f"{format_yuan(t['baseline_fen'])} 元，"
        + (
            "两者相同。"
            if t["delta_fen"] == 0
            else f"{'增加' if t['delta_fen'] > 0 else '减少'} {format_yuan(abs(t['delta_fen']))} 元"
            f"（{percent(t['delta_fen'], t['baseline_fen'])}）。"
        )
    ]
    budget = sim.tables["budget"]
    if t["prorated_runs"]:
        months = "、".join(
            f"{r['month']}{'' if r['label'] == '月度结算' else r['label']}"
            for r in budget.filter(pl.col("budget_reduction_fen") > 0).to_dicts()
        )
        out.append(
            f"预算不足：{t['prorated_runs']} 个批次（{months}）需按比例预算调减，合计 "
            f"{format_yuan(t['budget_reduction_fen'])} 元。"
        )
    elif sim.variant.budget_rule == "none":
        out.append("预算规则为 none（不限额），没有预算调减。")
    else:
        last = budget.tail(1).to_dicts()[0]
        out.append(
            f"全期无需预算调减；截至最后一个批次，本预算年度累计已付 "
            f"{format_yuan(last['year_paid_fen'])} 元，年度预算余额 "
            f"{format_yuan(last['year_left_fen'])} 元。"
        )
    out.append(
        f"盈亏平衡上限约束 {t['binding_units']} 个结算单元，核减 "
        f"{format_yuan(t['breakeven_reduction_fen'])} 元（现行政策核减 "
        f"{format_yuan(t['baseline_breakeven_reduction_fen'])} 元）。"
    )
    sides = {r["side"]: r for r in sim.tables["sides"].to_dicts()}
    for what, table, label in (
        ("企业", sim.tables["by_company"], names.company),
        ("旗县", sim.tables["by_county"], names.county),
    ):
        side = sides.get(what, {"up": 0, "down": 0, "same": 0})
        unit = "家" if what == "企业" else "个"
        if not side["up"] and not side["down"]:
            out.append(f"按{what}：各{what}的补贴均不变。")
            continue
        parts = []
        if side["up"]:
            parts.append(f"增加 {side['up']} {unit}，合计 {signed_yuan(side['up_fen'])} 元")
        if side["down"]:
            parts.append(f"减少 {side['down']} {unit}，合计 {signed_yuan(side['down_fen'])} 元")
        if side["same"]:
            parts.append(f"不变 {side['same']} {unit}")
        # the tables are ordered by the change, largest rise first
        first, last = table.row(0, named=True), table.row(table.height - 1, named=True)
        if first["delta_fen"] > 0:
            parts.append(
                f"增加最多：{label(first[table.columns[0]])} {signed_yuan(first['delta_fen'])} 元"
            )
        if last["delta_fen"] < 0:
            parts.append(
                f"减少最多：{label(last[table.columns[0]])} {signed_yuan(last['delta_fen'])} 元"
            )
        out.append(f"按{what}：" + "；".join(parts) + "。")
    if sim.fit is not None:
        out.append(fit_sentence(sim))
    # what could mislead comes first: parcels the variant would not accept at all, and a budget
    # year of which only some months are settled
    warnings = []
    if t["refused_parcels"]:
        refused = sim.tables["refused"]
        warnings.append(
            f"注意：模拟政策下有 {t['refused_parcels']:,} 件已受理包裹不予受理（"
            + "、".join(f"{r['reason']} {r['parcels']:,} 件" for r in refused.to_dicts())
            + f"），现行政策曾付 {format_yuan(t['refused_baseline_fen'])} 元；请检查模拟政策的"
            "有效期和适用范围。"
        )
    if sim.variant.budget_rule != "none":
        warnings.extend(part_year(sim))
    return warnings + out


def part_year(sim) -> list[str]:
    """A note for each budget year of the period that has months without a settlement: the
    budget is checked against the months settled so far only."""
    start = sim.variant.year_start_month
    settled = {r.month for r in sim.the_plan.runs} | {r.month for r in sim.the_plan.others}
    notes = []
    years: dict[Month, None] = {}
    for month in sim.the_plan.months:
        m = Month.parse(month)
        years[Month(m.year if m.month >= start else m.year - 1, start)] = None
    for first in years:
        months = [str(first.shift(i)) for i in range(12)]
        have = [m for m in months if m in settled]
        if len(have) == 12:
            continue
        simulated = [m for m in sim.the_plan.months if m in months]
        paid = sim.tables["budget"].filter(pl.col("month").is_in(simulated))["variant_fen"].sum()
        notes.append(
            f"注意：预算年度 {months[0]} 至 {months[-1]} 只有 {len(have)} 个月已结算，其余 "
            f"{12 - len(have)} 个月的支出未计入；预算调减"
            + ("和预算拟合" if sim.fit is not None else "")
            + f"只针对已结算的月份。按本次模拟的 {len(simulated)} 个月月均推算，全年约 "
            f"{format_yuan(paid * 12 // max(1, len(simulated)))} 元（年度预算 "
            f"{format_yuan(int(sim.variant.annual_budget_yuan * 100))} 元）。"
        )
    return notes


def fit_sentence(sim) -> str:
    """The budget fit's answer in one sentence."""
    fit = sim.fit
    if fit.unbounded:
        return (
            f"预算拟合：即使全部基础费率乘以 {fit.multiplier:.4f}（此时每件均达到上限），全期也无需"
            f"预算调减，预算不构成约束（试算 {len(fit.steps)} 次）。"
        )
    above = fit.steps_by_k[fit.k + 1]
    return (
        f"预算拟合：全部基础费率乘以 {fit.multiplier:.4f} 时全期无需预算调减，应付 "
        f"{format_yuan(sim.totals['variant_fen'])} 元；乘以 {above.multiplier:.4f} 时 "
        f"{above.prorated_runs} 个批次需调减 {format_yuan(above.requested_fen - above.paid_fen)} 元"
        f"（二分法试算 {len(fit.steps)} 次，每次完整重新结算全期）。"
    )


NOTES = [
    "现行政策一栏为结算库中各有效批次的明细账（实际结算结果）；模拟政策一栏用同一套结算规则（sql/）"
    "把这些已受理的包裹重新结算一遍，不改变结算库，也不是结算结果。",
    "按实际结算的先后顺序逐批重放（含补充结算）：每个批次的预算按当时的情况滚动计算，"
    "本期间内此前批次用模拟结果，本期间以外的月份用已结算金额。",
    "区域类别按模拟政策划分：模拟政策改变了旗县或嘎查村的类别时，包裹计入新的类别。",
    "“增加/减少件数”为单件补贴比现行政策多或少的包裹数。金额以分精确计算，显示为元。",
]


def show_available(sim) -> bool:
    """Whether the charts draw each run's available budget: when the budget binds or is of the
    payouts' size (a year's whole budget beside one month's payouts would flatten the bars)."""
    budget = sim.tables["budget"]
    if sim.variant.budget_rule == "none" or not budget.height:
        return False
    top = max(int(budget["variant_fen"].max()), int(budget["baseline_fen"].max()), 1)
    return sim.totals["prorated_runs"] > 0 or int(budget["available_fen"].max()) <= 3 * top


def budget_rows(sim) -> list[list]:
    """The budget table: one row per replayed run (None: not limited)."""
    rows = []
    for r in sim.tables["budget"].to_dicts():
        rows.append(
            [
                r["month"],
                r["label"],
                r["parcels"],
                r["available_fen"],
                r["requested_fen"],
                r["variant_fen"],
                r["budget_reduction_fen"],
                r["year_paid_fen"],
                r["year_left_fen"] if r["available_fen"] is not None else None,
                r["baseline_fen"],
                r["delta_fen"],
            ]
        )
    return rows


BUDGET_HEADERS = [
    "月份",
    "批次",
    "件数",
    "本批可用预算(元)",
    "盈亏平衡后申请(元)",
    "模拟应付(元)",
    "预算调减(元)",
    "本年度累计已付(元)",
    "年度预算余额(元)",
    "现行实付(元)",
    "差额(元)",
]
BUDGET_KINDS = [
    "text",
    "text",
    "int",
    "yuan",
    "yuan",
    "yuan",
    "yuan",
    "yuan",
    "yuan",
    "yuan",
    "delta",
]


def party_rows(table: pl.DataFrame, label) -> list[list]:
    key = table.columns[0]
    return [
        [
            label(r[key]),
            r["parcels"],
            r["baseline_fen"],
            r["variant_fen"],
            r["delta_fen"],
            percent(r["delta_fen"], r["baseline_fen"]),
            r["gained"],
            r["lost"],
        ]
        for r in table.to_dicts()
    ]


PARTY_KINDS = ["text", "int", "yuan", "yuan", "delta", "pct", "int", "int"]


def party_headers(what: str) -> list[str]:
    return [
        what,
        "件数",
        "现行实付(元)",
        "模拟应付(元)",
        "差额(元)",
        "变化",
        "增加件数",
        "减少件数",
    ]


def class_rows(table: pl.DataFrame) -> list[list]:
    return [
        [
            area_class_label(r["area_class"]),
            r["parcels"],
            r["baseline_fen"],
            r["variant_fen"],
            r["delta_fen"],
            percent(r["delta_fen"], r["baseline_fen"]),
        ]
        for r in table.to_dicts()
    ]


CLASS_HEADERS = ["区域类别（模拟政策）", "件数", "现行实付(元)", "模拟应付(元)", "差额(元)", "变化"]
CLASS_KINDS = ["text", "int", "yuan", "yuan", "delta", "pct"]


def unit_rows(sim, names: Names) -> list[list]:
    return [
        [
            r["month"],
            r["label"],
            r["unit_key"],
            names.company(r["company"]),
            names.county(r["county_code"]),
            r["parcels"],
            r["gross_fen"],
            r["cap_fen"],
            r["after_breakeven_fen"],
            r["breakeven_reduction_fen"],
            {True: "是", False: "否", None: "—"}[r["baseline_binding"]],
        ]
        for r in sim.tables["binding"].to_dicts()
    ]


UNIT_HEADERS = [
    "月份",
    "批次",
    "结算单元",
    "企业",
    "旗县",
    "件数",
    "基础补贴(元)",
    "盈亏平衡上限(元)",
    "盈亏平衡后(元)",
    "核减(元)",
    "现行政策下也触及",
]
UNIT_KINDS = ["text", "text", "text", "text", "text", "int", "yuan", "yuan", "yuan", "yuan", "text"]


def rate_rows(sim) -> list[list]:
    rows = []
    for r in sim.tables["rates"].to_dicts():
        band = f"{r['distance_from_km']}–{r['distance_to_km'] or '∞'} 公里"
        period = f"{r['effective_from']} 至 {r['effective_to'] or '（未定）'}"
        current, variant = rate_text(r["current_rate_yuan"]), rate_text(r["variant_rate_yuan"])
        rows.append(
            [
                r["version_id"],
                period,
                area_class_label(r["area_class"]),
                band,
                current or "—",
                variant,
                "" if current == variant else "已调整",
                rate_text(r["cap_yuan"]),
            ]
        )
    return rows


RATE_HEADERS = [
    "政策版本",
    "有效期",
    "区域类别",
    "派送距离",
    "现行基础费率(元/件)",
    "模拟基础费率(元/件)",
    "",
    "每件上限(元)",
]


def fit_rows(sim) -> list[list]:
    return [
        [
            i,
            f"{s.multiplier:.4f}",
            s.requested_fen,
            s.paid_fen,
            s.requested_fen - s.paid_fen,
            "无需调减" if s.fits else f"{s.prorated_runs} 个批次需调减",
        ]
        for i, s in enumerate(sim.fit.steps, 1)
    ]


FIT_HEADERS = ["步", "系数", "盈亏平衡后申请(元)", "应付(元)", "预算调减(元)", "结果"]
FIT_KINDS = ["int", "text", "yuan", "yuan", "yuan", "text"]


def overview_rows(sim) -> list[list]:
    """项目, current, simulated, change, change in percent (the first row counts parcels)."""
    t = sim.totals
    rows = [["已受理包裹（件）", t["parcels"], t["parcels"], None, ""]]
    for label, base, variant, delta in (
        ("基础补贴", "baseline_gross_fen", "gross_fen", "gross_delta_fen"),
        (
            "盈亏平衡核减",
            "baseline_breakeven_reduction_fen",
            "breakeven_reduction_fen",
            "breakeven_reduction_delta_fen",
        ),
        (
            "预算调减",
            "baseline_budget_reduction_fen",
            "budget_reduction_fen",
            "budget_reduction_delta_fen",
        ),
        ("应付补贴", "baseline_fen", "variant_fen", "delta_fen"),
    ):
        rows.append([label, t[base], t[variant], t[delta], percent(t[delta], t[base])])
    return rows


# --------------------------------------------------------------------------- XLSX


def write_xlsx(sim, path: Path) -> None:
    """The summary workbook: 总览 (with a native chart), then one sheet per table."""
    from ..statements.xlsx import new_workbook

    names = Names(sim.cfg)
    wb = new_workbook(path)
    wb.set_properties(
        {"title": title(sim), "author": f"{sim.league_name}邮政管理局", "comments": "政策模拟测算"}
    )
    f = {
        "title": wb.add_format({"bold": True, "font_size": 15}),
        "label": wb.add_format({"bold": True, "valign": "top"}),
        "wrap": wb.add_format({"text_wrap": True, "valign": "top"}),
        "head": wb.add_format(
            {
                "bold": True,
                "border": 1,
                "bg_color": "#E8ECF2",
                "align": "center",
                "valign": "vcenter",
                "text_wrap": True,
            }
        ),
        "text": wb.add_format({"border": 1}),
        "pct": wb.add_format({"border": 1, "align": "right"}),
        "int": wb.add_format({"border": 1, "num_format": "#,##0"}),
        "yuan": wb.add_format({"border": 1, "num_format": YUAN_FORMAT}),
        "delta": wb.add_format({"border": 1, "num_format": SIGNED_FORMAT}),
        "note": wb.add_format({"italic": True, "font_color": "#555555"}),
    }

    def table(ws, row: int, headers: list[str], kinds: list[str], rows: list[list]) -> int:
        """Write a bordered table at `row`; returns the row after it. 分 become 元 numbers."""
        ws.set_row(row, 32)
        for c, h in enumerate(headers):
            ws.write_string(row, c, h, f["head"])
        for r, values in enumerate(rows, row + 1):
            for c, (v, kind) in enumerate(zip(values, kinds, strict=True)):
                if v is None:
                    ws.write_string(r, c, "不限" if kind == "yuan" else "", f["text"])
                elif kind in ("yuan", "delta"):
                    ws.write_number(r, c, float(fen_to_yuan(v)), f[kind])
                elif kind == "int":
                    ws.write_number(r, c, v, f["int"])
                else:
                    ws.write_string(r, c, str(v), f["pct" if kind == "pct" else "text"])
        return row + len(rows) + 1

    def sheet(name: str, header_rows: int = 0):
        """A worksheet printed on A4 landscape, one page wide, its header on every page."""
        ws = wb.add_worksheet(name)
        ws.set_landscape()
        ws.set_paper(9)
        ws.fit_to_pages(1, 0)
        if header_rows:
            ws.repeat_rows(0, header_rows - 1)
        return ws

    def tall(ws, row: int, text: str, chars: int = 62) -> None:
        """Height for a merged, wrapped line of about `chars` characters per line."""
        lines = max(1, -(-len(text) // chars))
        ws.set_row(row, 16 * lines + 2 if lines > 1 else None)

    ws = sheet("总览")
    ws.write_string(0, 0, title(sim), f["title"])
    row = 2
    for label, value in info_rows(sim):
        ws.write_string(row, 0, label, f["label"])
        ws.merge_range(row, 1, row, 7, value, f["wrap"])
        tall(ws, row, value)
        row += 1
    row += 1
    ws.write_string(row, 0, "结论", f["label"])
    for sentence in findings(sim, names):
        ws.merge_range(row, 1, row, 7, sentence, f["wrap"])
        tall(ws, row, sentence)
        row += 1
    row += 1
    overview = overview_rows(sim)
    ws.set_row(row, 32)
    for c, h in enumerate(["项目", "现行政策(元)", "模拟政策(元)", "差额(元)", "变化"]):
        ws.write_string(row, c, h, f["head"])
    for values in overview:
        row += 1
        ws.write_string(row, 0, values[0], f["text"])
        money = values[0] != "已受理包裹（件）"
        for c in (1, 2):
            if money:
                ws.write_number(row, c, float(fen_to_yuan(values[c])), f["yuan"])
            else:
                ws.write_number(row, c, values[c], f["int"])
        if money:
            ws.write_number(row, 3, float(fen_to_yuan(values[3])), f["delta"])
            ws.write_string(row, 4, values[4], f["pct"])
        else:
            ws.write_string(row, 3, "", f["text"])
            ws.write_string(row, 4, "", f["text"])
    wsb = sheet("预算使用", 1)
    wsb.freeze_panes(1, 2)
    budget = budget_rows(sim)
    table(wsb, 0, BUDGET_HEADERS, BUDGET_KINDS, budget)
    wsb.set_column(0, 1, 11)
    wsb.set_column(2, len(BUDGET_HEADERS) - 1, 15)
    # on 总览, below the totals: paid per run, current beside simulated (from 预算使用)
    chart = wb.add_chart({"type": "column"})
    last = len(budget)
    for series, col, colour in (("现行实付", 9, "#9AA5B1"), ("模拟应付", 5, "#2F6DB5")):
        chart.add_series(
            {
                "name": series,
                "categories": ["预算使用", 1, 0, last, 1],
                "values": ["预算使用", 1, col, last, col],
                "fill": {"color": colour},
                "gap": 80,
            }
        )
    if show_available(sim):
        line = wb.add_chart({"type": "line"})
        line.add_series(
            {
                "name": "本批可用预算",
                "categories": ["预算使用", 1, 0, last, 1],
                "values": ["预算使用", 1, 3, last, 3],
                "line": {"color": "#C0392B", "width": 2, "dash_type": "dash"},
                "marker": {"type": "diamond", "fill": {"color": "#C0392B"}},
            }
        )
        chart.combine(line)
    chart.set_title({"name": "各批次应付补贴：现行政策与模拟政策（元）"})
    chart.set_y_axis({"num_format": "#,##0", "min": 0, "major_gridlines": {"visible": True}})
    chart.set_legend({"position": "bottom"})
    chart.set_size({"width": 760, "height": 340})
    ws.insert_chart(row + 2, 0, chart)
    row += 20
    for note in NOTES:
        ws.merge_range(row, 0, row, 7, "注：" + note, f["wrap"])
        tall(ws, row, note, 80)
        row += 1
    ws.set_column(0, 0, 16)
    ws.set_column(1, 7, 15)

    for name, what, key, label in (
        ("按企业", "企业", "by_company", names.company),
        ("按旗县", "旗县", "by_county", names.county),
    ):
        wsp = sheet(name, 1)
        wsp.freeze_panes(1, 1)
        rows = party_rows(sim.tables[key], label)
        table(wsp, 0, party_headers(what), PARTY_KINDS, rows)
        wsp.set_column(0, 0, 24)
        wsp.set_column(1, 7, 14)
        if any(r[4] for r in rows):
            bar = wb.add_chart({"type": "bar"})
            bar.add_series(
                {
                    "name": "差额(元)",
                    "categories": [name, 1, 0, len(rows), 0],
                    "values": [name, 1, 4, len(rows), 4],
                    "points": [
                        {"fill": {"color": "#2E8B57" if r[4] >= 0 else "#C0392B"}} for r in rows
                    ],
                }
            )
            bar.set_title({"name": f"各{what}补贴变化（模拟 − 现行，元）"})
            bar.set_legend({"none": True})
            bar.set_y_axis({"reverse": True, "label_position": "low"})
            bar.set_x_axis({"num_format": "+#,##0;-#,##0;0", "major_gridlines": {"visible": True}})
            bar.set_size({"width": 640, "height": max(260, 24 * len(rows) + 90)})
            wsp.insert_chart(len(rows) + 3, 0, bar)

    wsc = sheet("按区域类别", 1)
    table(wsc, 0, CLASS_HEADERS, CLASS_KINDS, class_rows(sim.tables["by_class"]))
    wsc.set_column(0, 0, 20)
    wsc.set_column(1, 5, 14)

    wsu = sheet("盈亏平衡单元", 1)
    wsu.freeze_panes(1, 3)
    units = unit_rows(sim, names)
    end = table(wsu, 0, UNIT_HEADERS, UNIT_KINDS, units)
    if not units:
        wsu.write_string(end + 1, 0, "模拟政策下没有结算单元触及盈亏平衡上限。", f["note"])
    wsu.set_column(0, 2, 12)
    wsu.set_column(3, 4, 22)
    wsu.set_column(5, 10, 13)

    wsr = sheet("费率对照", 1)
    table(wsr, 0, RATE_HEADERS, ["text"] * len(RATE_HEADERS), rate_rows(sim))
    wsr.set_column(0, 0, 16)
    wsr.set_column(1, 1, 24)
    wsr.set_column(2, 7, 14)

    if sim.fit is not None:
        wsf = sheet("预算拟合", 1)
        end = table(wsf, 0, FIT_HEADERS, FIT_KINDS, fit_rows(sim))
        wsf.merge_range(end + 1, 0, end + 1, 5, fit_sentence(sim), f["wrap"])
        tall(wsf, end + 1, fit_sentence(sim), 50)
        wsf.set_column(0, 5, 16)

    if sim.tables["refused"].height:
        wsx = sheet("不予受理", 1)
        table(
            wsx,
            0,
            ["原因代码", "原因", "件数", "现行实付(元)"],
            ["text", "text", "int", "yuan"],
            [list(r.values()) for r in sim.tables["refused"].to_dicts()],
        )
        wsx.set_column(0, 1, 24)

    t = sim.totals
    wb.define_name("BASELINE_SUBSIDY_YUAN", f"={fen_to_yuan(t['baseline_fen'])}")
    wb.define_name("VARIANT_SUBSIDY_YUAN", f"={fen_to_yuan(t['variant_fen'])}")
    wb.define_name("BUDGET_REDUCTION_YUAN", f"={fen_to_yuan(t['budget_reduction_fen'])}")
    wb.close()


# --------------------------------------------------------------------------- HTML

CSS = """
@page { size: A4 landscape; margin: 12mm; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "SimSun", sans-serif;
       color: #111; font-size: 10.5pt; margin: 16px; }
h1 { font-size: 17pt; margin: 0 0 10px; }
h2 { font-size: 12.5pt; margin: 22px 0 6px; border-bottom: 2px solid #2f6db5; padding-bottom: 2px; }
table { border-collapse: collapse; margin: 4px 0 8px; }
table.info th { text-align: left; padding: 2px 14px 2px 0; white-space: nowrap; vertical-align: top; }
table.info td { padding: 2px 0; }
table.t th, table.t td { border: 1px solid #888; padding: 3px 6px; }
table.t th { background: #e8ecf2; }
table.t td { white-space: nowrap; }
table.t td.n { text-align: right; font-variant-numeric: tabular-nums; }
h2 { page-break-after: avoid; }
section { page-break-inside: avoid; }
td.up { color: #1e7b45; } td.down { color: #b03a2e; }
ul.findings li { margin: 3px 0; }
.note { color: #555; font-size: 9pt; }
svg text { font-family: inherit; font-size: 11px; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; }
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _cell(value, kind: str) -> str:
    if value is None:
        return '<td class="n">不限</td>' if kind == "yuan" else "<td></td>"
    if kind == "yuan":
        return f'<td class="n">{format_yuan(value)}</td>'
    if kind == "delta":
        cls = "up" if value > 0 else "down" if value < 0 else ""
        return f'<td class="n {cls}">{signed_yuan(value)}</td>'
    if kind == "int":
        return f'<td class="n">{value:,}</td>'
    if kind == "pct":
        return f'<td class="n">{_e(value)}</td>'
    return f"<td>{_e(value)}</td>"


def _table(headers: list[str], kinds: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(_cell(v, k) for v, k in zip(r, kinds, strict=True)) + "</tr>" for r in rows
    )
    return f'<table class="t"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _axis_step(top: int) -> int:
    """A round gridline step (in 分) giving about four lines up to `top`."""
    step = 1
    while step * 5 < top:
        for k in (2, 5, 10):
            if step * k * 5 >= top or k == 10:
                step *= k
                break
    return max(step, 1)


def tick_label(fen: int, step: int) -> str:
    """An axis label in 元: whole 元 when the gridlines fall on whole 元."""
    text = format_yuan(fen)
    return text[:-3] if step % 100 == 0 else text


def column_svg(
    labels: list[str],
    series: list[tuple[str, str, list[int]]],
    line: tuple[str, str, list[int | None]] | None = None,
) -> str:
    """Grouped columns (one group per label, one column per series) and an optional dashed
    line, inline SVG. Values in 分; pixel geometry only (no money is computed here)."""
    width, height, left, bottom, top_pad = 760, 300, 78, 58, 30
    drawn = [v for _, _, values in series for v in values]
    drawn += [v for v in (line[2] if line else []) if v is not None]
    top = max([1] + drawn)
    step = _axis_step(top)
    top = ((top + step - 1) // step) * step
    plot_h = height - bottom - top_pad
    group = (width - left - 10) / max(1, len(labels))
    bar = min(28.0, group * 0.8 / len(series))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">'
    ]
    y = 0
    while y <= top:
        py = top_pad + plot_h - plot_h * y / top
        parts.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{py:.1f}" y2="{py:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{py + 4:.1f}" text-anchor="end">{_e(tick_label(y, step))}</text>'
        )
        y += step
    for i, label in enumerate(labels):
        x0 = left + i * group + (group - bar * len(series)) / 2
        for j, (_, colour, values) in enumerate(series):
            h = plot_h * values[i] / top
            parts.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{top_pad + plot_h - h:.1f}" width="{bar - 2:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{_e(label)} {_e(series[j][0])}：'
                f"{_e(format_yuan(values[i]))} 元</title></rect>"
            )
        parts.append(
            f'<text x="{left + i * group + group / 2:.1f}" y="{height - bottom + 16}" '
            f'text-anchor="middle">{_e(label)}</text>'
        )
    if line is not None:
        points = [
            (left + i * group + group / 2, top_pad + plot_h - plot_h * v / top)
            for i, v in enumerate(line[2])
            if v is not None
        ]
        parts.append(
            f'<polyline fill="none" stroke="{line[1]}" stroke-width="2" stroke-dasharray="6 4" '
            f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}"/>'
        )
        parts += [
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{line[1]}"/>' for x, y in points
        ]
    for j, (name, colour, _) in enumerate(series + ([line] if line else [])):
        x = left + j * 120
        parts.append(
            f'<rect x="{x}" y="{height - 22}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{x + 16}" y="{height - 12}">{_e(name)}</text>'
        )
    parts.append(f'<text x="{left}" y="16">元</text></svg>')
    return "".join(parts)


def diverging_svg(labels: list[str], deltas: list[int]) -> str:
    """Horizontal bars of changes (green up, red down) from a zero line placed so that the
    largest rise and the largest fall both fit; inline SVG, pixel geometry only."""
    row_h, left, width, margin = 22, 190, 740, 70
    height = row_h * len(labels) + 30
    fall = max([0] + [-d for d in deltas])
    rise = max([0] + deltas)
    span = width - left - 2 * margin
    whole = (fall + rise) or 1
    zero = left + margin + span * fall / whole
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">'
    ]
    parts.append(f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="4" y2="{height - 22}" stroke="#666"/>')
    for i, (label, d) in enumerate(zip(labels, deltas, strict=True)):
        y = 6 + i * row_h
        w = span * abs(d) / whole
        x = zero if d >= 0 else zero - w
        colour = "#2e8b57" if d >= 0 else "#c0392b"
        text_x = zero + w + 4 if d >= 0 else zero - w - 4
        parts.append(
            f'<text x="{left - 8}" y="{y + 14}" text-anchor="end">{_e(label)}</text>'
            f'<rect x="{x:.1f}" y="{y + 3}" width="{max(w, 0.5):.1f}" height="{row_h - 8}" '
            f'fill="{colour}"/>'
            f'<text x="{text_x:.1f}" y="{y + 14}" text-anchor="{"start" if d >= 0 else "end"}">'
            f"{_e(signed_yuan(d))}</text>"
        )
    parts.append(
        f'<text x="{zero:.1f}" y="{height - 6}" text-anchor="middle">0（元，模拟 − 现行）</text></svg>'
    )
    return "".join(parts)


def write_html(sim, path: Path) -> None:
    """The summary as one self-contained HTML page (inline CSS and SVG, nothing fetched)."""
    body = f"<h1>{_e(title(sim))}</h1>\n" + html_body(sim)
    path.write_text(
        '<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title(sim))}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n"
        "</body>\n</html>\n",
        encoding="utf-8",
    )


def html_body(sim) -> str:
    """The summary's content under its title, every value escaped (the portal shows it in its
    own page): header lines, findings, tables and inline SVG charts."""
    names = Names(sim.cfg)
    out = ['<table class="info">']
    out += [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in info_rows(sim)]
    out.append("</table>")
    out.append("<h2>结论</h2><ul class='findings'>")
    out += [f"<li>{_e(s)}</li>" for s in findings(sim, names)]
    out.append("</ul>")

    out.append("<h2>总览</h2>")
    rows = []
    for r in overview_rows(sim):
        if r[0] == "已受理包裹（件）":
            rows.append(
                f"<tr><td>{_e(r[0])}</td>{_cell(r[1], 'int')}{_cell(r[2], 'int')}<td></td><td></td></tr>"
            )
        else:
            rows.append(
                f"<tr><td>{_e(r[0])}</td>{_cell(r[1], 'yuan')}{_cell(r[2], 'yuan')}"
                f'<td class="n">{signed_yuan(r[3])}</td>{_cell(r[4], "pct")}</tr>'
            )
    out.append(
        '<table class="t"><thead><tr><th>项目</th><th>现行政策(元)</th><th>模拟政策(元)</th>'
        f"<th>差额(元)</th><th>变化</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )

    out.append("<section><h2>预算使用（按批次，按实际结算顺序）</h2>")
    budget = budget_rows(sim)
    labels = [r[0] + ("" if r[1] == "月度结算" else " " + r[1]) for r in budget]
    out.append(
        column_svg(
            labels,
            [
                ("现行实付", "#9aa5b1", [r[9] for r in budget]),
                ("模拟应付", "#2f6db5", [r[5] for r in budget]),
            ],
            ("本批可用预算", "#c0392b", [r[3] for r in budget]) if show_available(sim) else None,
        )
    )
    out.append("</section>")
    out.append(_table(BUDGET_HEADERS, BUDGET_KINDS, budget))

    for what, key, label in (
        ("企业", "by_company", names.company),
        ("旗县", "by_county", names.county),
    ):
        table = sim.tables[key]
        out.append(f"<section><h2>按{what}：增加与减少</h2>")
        rows = party_rows(table, label)
        if any(r[4] for r in rows):
            out.append(diverging_svg([r[0] for r in rows], [r[4] for r in rows]))
        out.append("</section>")
        out.append(_table(party_headers(what), PARTY_KINDS, rows))

    out.append("<h2>按区域类别</h2>")
    out.append(_table(CLASS_HEADERS, CLASS_KINDS, class_rows(sim.tables["by_class"])))

    out.append("<h2>触及盈亏平衡上限的结算单元（模拟政策）</h2>")
    units = unit_rows(sim, names)
    if not units:
        out.append("<p>模拟政策下没有结算单元触及盈亏平衡上限。</p>")
    else:
        if len(units) > HTML_UNIT_ROWS:
            out.append(
                f"<p class='note'>共 {len(units):,} 个，此处列出前 {HTML_UNIT_ROWS} 个"
                "（按批次、核减额从大到小）；全部见 summary.xlsx 的“盈亏平衡单元”表。</p>"
            )
        out.append(_table(UNIT_HEADERS, UNIT_KINDS, units[:HTML_UNIT_ROWS]))

    out.append("<h2>费率对照</h2>")
    out.append(_table(RATE_HEADERS, ["text"] * len(RATE_HEADERS), rate_rows(sim)))

    if sim.fit is not None:
        out.append("<h2>预算拟合</h2>")
        out.append(f"<p>{_e(fit_sentence(sim))}</p>")
        out.append(_table(FIT_HEADERS, FIT_KINDS, fit_rows(sim)))

    if sim.tables["refused"].height:
        out.append("<h2>模拟政策下不予受理的包裹</h2>")
        out.append(
            _table(
                ["原因代码", "原因", "件数", "现行实付(元)"],
                ["text", "text", "int", "yuan"],
                [list(r.values()) for r in sim.tables["refused"].to_dicts()],
            )
        )

    out.append("<h2>说明</h2><ul class='note'>")
    out += [f"<li>{_e(n)}</li>" for n in NOTES]
    out.append("</ul>")
    return "\n".join(out)
