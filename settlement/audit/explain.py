"""`settle explain`: the whole computation of one parcel, step by step, in Chinese."""

from __future__ import annotations

import json
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import duckdb

from .. import journal
from ..errors import RefusedError, UsageError
from ..money import format_yuan
from ..statements import area_class_label
from ..store import resolve_out
from . import open_readonly


def _d(value) -> str:
    """A DECIMAL as people write it."""
    if value is None:
        return "—"
    text = format(Decimal(value).normalize(), "f")
    return text


def _line(source_row: int, header_line: int | None) -> str:
    """A row as Excel or an editor numbers it (outputs older than source_line: the data row)."""
    if header_line is None:
        return f"第 {source_row} 个数据行"
    return f"第 {source_row + header_line} 行"


def explain(store: Path, waybill: str) -> list[str]:
    """Lines describing every appearance of the waybill: settled parcels and rejected rows."""
    waybill = waybill.strip()
    if not waybill:
        raise UsageError("请给出运单号，如 settle explain 1234567890")
    con = open_readonly(store)
    try:
        parcels = (
            con.sql(
                "SELECT * FROM ledger WHERE waybill_no = ? ORDER BY month, run_id", params=[waybill]
            )
            .pl()
            .to_dicts()
        )
        rejects = (
            con.sql(
                "SELECT * FROM rejects WHERE waybill_no = ? ORDER BY month, source_file, source_row",
                params=[waybill],
            )
            .pl()
            .to_dicts()
        )
        lines: list[str] = []
        for p in parcels:
            lines += _parcel(con, store, p)
        for r in rejects:
            lines += [
                f"运单 {waybill}：剔除（盟市 {r['league']} {r['month']}，批次 {r['run_id']}）",
                f"  来源：{r['source_file']} "
                + (
                    f"第 {r['source_line']} 行"
                    if r.get("source_line") is not None
                    else _line(r["source_row"], None)
                ),
                f"  原因：{r['reason_code']} {r['reason']}",
                f"  说明：{r['detail']}",
                f"  原始值：企业 {r['company']}，签收时间 {r['delivered_at']}，村代码 {r['village_code']}，"
                f"距离 {r['distance_km']}，成本 {r['cost_yuan']}，收入 "
                f"{r['revenue_yuan'] if r['revenue_yuan'] is not None else '（空）'}",
            ]
    finally:
        con.close()
    if not lines:
        raise RefusedError(f"运单 {waybill} 不在任何有效批次的明细账或剔除清单中")
    return lines


def _parcel(con: duckdb.DuckDBPyConnection, store: Path, p: dict) -> list[str]:
    version = (
        con.sql(
            "SELECT * FROM policy_versions WHERE league_code = ? AND version_id = ?",
            params=[p["league"], p["policy_version"]],
        )
        .pl()
        .to_dicts()
    )
    v = version[0] if version else {}
    unit = (
        con.sql(
            "SELECT * FROM units WHERE run_id = ? AND unit_key = ?",
            params=[p["run_id"], p["unit_key"]],
        )
        .pl()
        .to_dicts()
    )
    u = unit[0] if unit else {}
    run = con.sql("SELECT * FROM runs WHERE run_id = ?", params=[p["run_id"]]).pl().to_dicts()[0]
    entry = resolve_out(store, run["out_dir"]) / journal.entry_rel(run["run_id"])
    manifest = json.loads(entry.read_text(encoding="utf-8")) if entry.exists() else {}
    budget = manifest.get("budget", {})
    header_line = {f["path"]: f.get("header_line") for f in manifest.get("inputs", [])}

    base = Decimal(p["base_rate_yuan"])
    mult = Decimal(p["volume_multiplier"])
    cap = Decimal(v["cap_yuan"]) if v else None
    share = v.get("max_cost_share")
    candidates = [("基础费率 × 单量系数", base * mult)]
    if cap is not None:
        candidates.append(("每件上限 cap_yuan", cap))
    if share is not None:
        candidates.append(
            (
                f"成本占比上限 {_d(share)} × 成本 {_d(p['cost_yuan'])}",
                Decimal(share) * Decimal(p["cost_yuan"]),
            )
        )
    binding = min(candidates, key=lambda c: c[1])
    rate = (binding[1] * 100).to_integral_value(rounding=ROUND_FLOOR)
    band = (
        f"[{_d(p['band_from_km'])}, {_d(p['band_to_km']) if p['band_to_km'] is not None else '∞'})"
    )
    lines = [
        f"运单 {p['waybill_no']}：已结算（盟市 {p['league']} {p['month']}，批次 {p['run_id']}）",
        f"  来源：{p['source_file']} "
        f"{_line(p['source_row'], header_line.get(p['source_file']))}；企业 {p['company']}；"
        f"签收 {p['delivered_at']}；嘎查村 {p['village_code']}（旗县 {p['county_code']}）",
        "  1 校验：通过全部检查（SPEC §4.1）",
        f"  2 政策版本：{p['policy_version']}（{v.get('reference', '')}）"
        f"；有效期 {v.get('effective_from')} 至 {v.get('effective_to') or '长期'}",
        f"  3 区域类别：{area_class_label(p['area_class'])}；距离 {_d(p['distance_km'])} 公里，距离段 {band}，"
        f"基础费率 {_d(base)} 元",
        f"  4 单量：该村本月受理 {p['village_volume']} 件，单量系数 {_d(mult)}；"
        f"{_d(base)} × {_d(mult)} = {_d(base * mult)} 元",
        "  5 上限："
        + "；".join(f"{name} = {_d(value)} 元" for name, value in candidates)
        + f"；取最小者（{binding[0]}）",
        f"  6 费率 rate_fen = floor(100 × {_d(binding[1])}) = {rate} 分"
        + ("" if rate == p["rate_fen"] else f"（明细账记载 {p['rate_fen']} 分，不一致！）"),
    ]
    if u:
        lines += _unit_lines(p, u, run["kind"] == "supplementary")
        if budget:
            avail = budget.get("available_fen")
            factor = (
                "无预算限制"
                if avail is None
                else (
                    f"本月可用 {avail} 分，申请 {budget.get('requested_fen')} 分，"
                    + ("按比例调减" if budget.get("prorated") else "未调减（系数 1）")
                )
            )
            lines.append(
                f"  8 预算（{budget.get('rule')}）：{factor}；单元应付 {u['subsidy_fen']} 分"
            )
        lines.append(
            f"  9 分配：单元 {u['subsidy_fen']} 分按费率比例分到各件（最大余数法），"
            f"本件 subsidy_fen = {p['subsidy_fen']} 分（{format_yuan(p['subsidy_fen'])} 元）"
        )
    return lines


def _unit_lines(p: dict, u: dict, supplementary: bool) -> list[str]:
    """Step 7: the unit's break-even, with the figures its cap was computed from. A
    supplementary run caps the unit over the whole month: its own parcels and the month's
    earlier runs' (prior_cost_yuan, prior_revenue_yuan), less what those already paid."""
    lines = [
        f"  7 盈亏平衡单元 {p['unit_key']}：本批 {u['parcels']} 件，基础补贴 {u['gross_fen']} 分；"
        f"成本 {_d(u['cost_yuan'])} 元，收入 {_d(u['revenue_yuan'])} 元（本件收入 "
        f"{_d(p['revenue_yuan'])} 元，来自 {p['revenue_source']}）"
    ]
    if u["cap_fen"] is None:
        lines.append(
            f"    不设盈亏平衡上限（scope none）；after_breakeven_fen = {u['after_breakeven_fen']} 分"
        )
        return lines
    prior_cost = Decimal(u.get("prior_cost_yuan") or 0)
    prior_revenue = Decimal(u.get("prior_revenue_yuan") or 0)
    cost, revenue = Decimal(u["cost_yuan"]), Decimal(u["revenue_yuan"])
    if supplementary:
        lines.append(
            f"    补充结算按全月计算上限：成本 = 本批 {_d(cost)} + 本月此前批次 {_d(prior_cost)} = "
            f"{_d(cost + prior_cost)} 元；收入 = 本批 {_d(revenue)} + 本月此前批次 "
            f"{_d(prior_revenue)} = {_d(revenue + prior_revenue)} 元"
        )
    lines.append(
        f"    上限 cap_fen = floor(100 × max(0, {_d(cost + prior_cost)} − "
        f"{_d(revenue + prior_revenue)})) = {u['cap_fen']} 分"
    )
    if supplementary:
        lines.append(
            f"    本月此前批次已付 prior_paid_fen = {u['prior_paid_fen']} 分；核减后 "
            f"after_breakeven_fen = min({u['gross_fen']}, max(0, {u['cap_fen']} − "
            f"{u['prior_paid_fen']})) = {u['after_breakeven_fen']} 分"
            + (
                f"（此前已付超出上限 {u['breakeven_excess_fen']} 分，未追回）"
                if u.get("breakeven_excess_fen")
                else ""
            )
        )
    else:
        lines.append(
            f"    核减后 after_breakeven_fen = min({u['gross_fen']}, {u['cap_fen']}) = "
            f"{u['after_breakeven_fen']} 分"
        )
    return lines
