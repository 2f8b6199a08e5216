"""The annual close (年度关账, SPEC §10): once every month of a 盟市's budget year is sealed
(or empty), the year's statements are written — per company and for the 盟市, month by month:
regular payable, supplements, clawbacks, paid in which batch, outstanding, budget used — and
the year is closed once; later changes go to the next year as adjustments.

With `[breakeven] annual_true_up = true`, each unit's year is capped at its year's loss, and
what the monthly caps paid beyond it becomes clawbacks booked in the next year's first open
month (sql/95_true_up.sql).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from .. import SQL_DIR, clock, journal, shipped
from ..config import Config
from ..errors import RefusedError
from ..events import Actor
from ..lock import store_lock
from ..months import stale_for
from ..outputs import crash_point, discard, publish, recover, stage_text
from ..period import Month
from ..store import (
    _query,
    budget_year,
    closed_years,
    committed_runs,
    connect_readonly,
    first_open_month,
    journal_head,
    league_budget,
    month_state,
    recorded_out,
    require_store,
)
from .clawbacks import rerender_month
from .records import record_close

TRUE_UP_REASON = "年度盈亏平衡清算：{year} 预算年度结算单元全年补贴超过全年盈亏平衡上限的部分"


def annual_dir(league: str, year: int) -> Path:
    """Where a closed year's statements are, relative to the output directory."""
    return Path("annual") / f"league={league}" / f"year={year}"


@dataclass
class AnnualData:
    """What the annual statements show, worked out once for the XLSX and the HTML."""

    league: str
    league_name: str
    year: int
    start: str
    end: str
    closed_at: object
    closed_by: str
    lines: list[dict]  # sql/96_annual.sql: company × month
    budget: dict  # store.budget_year
    company_names: dict[str, str]
    states: dict[str, str]  # month -> 已封存 | 未结算
    annual_true_up: bool
    true_up_units: list[dict] = field(default_factory=list)  # units with an excess
    true_up_by_company: dict[str, int] = field(default_factory=dict)  # 分 (< 0)
    booked_in_month: str | None = None
    carries: dict[str, dict] = field(default_factory=dict)  # company -> latest carry line

    def company_label(self, code: str) -> str:
        name = self.company_names.get(code)
        return f"{name}（{code}）" if name else code

    def company_lines(self, company: str | None) -> list[dict]:
        if company is not None:
            return [x for x in self.lines if x["company"] == company]
        by_month: dict[str, dict] = {}
        for x in self.lines:
            m = by_month.setdefault(
                x["month"],
                {
                    "month": x["month"],
                    "batch_id": x["batch_id"],
                    "batch_state": x["batch_state"],
                    "paid_on": x["paid_on"],
                    **dict.fromkeys(MONEY_KEYS, 0),
                    "parcels": 0,
                },
            )
            for k in (*MONEY_KEYS, "parcels"):
                m[k] += x[k]
        return [by_month[m] for m in sorted(by_month)]

    @property
    def companies(self) -> list[str]:
        return sorted({x["company"] for x in self.lines})

    def totals(self, company: str | None) -> dict:
        lines = self.company_lines(company)
        return {k: sum(x[k] for x in lines) for k in (*MONEY_KEYS, "parcels")}


MONEY_KEYS = (
    "regular_fen",
    "supplementary_fen",
    "clawback_fen",
    "due_fen",
    "paid_fen",
    "outstanding_fen",
)


def _rows(con, sql: str, params: list | None = None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def year_months(start: Month) -> list[Month]:
    return [start.shift(k) for k in range(12)]


def check_year(store: Path, league: str, year: int, start: Month) -> dict[str, str]:
    """Refuse while a month of the budget year is settled but unsealed, stale, empty with
    adjustments booked in it, or not yet ended; the state of each month."""
    today = clock.today()
    end = start.shift(11)
    if end.end > today:
        raise RefusedError(
            f"盟市 {league} {year} 预算年度（{start} 至 {end}）尚未结束（今天是 {today}），不能关账"
        )
    booked = {
        r["month"]
        for r in _query(
            store,
            "SELECT DISTINCT month FROM payable WHERE league_code = ? AND month BETWEEN ? AND ?",
            [league, str(start), str(end)],
        )
    }
    states, problems = {}, []
    for month in year_months(start):
        state = month_state(store, league, month)
        if state.run_id is None:
            states[str(month)] = "未结算"
            if str(month) in booked:
                problems.append(f"{month} 没有结算，但有计入该月的补充结算或追缴（须先结算并封存）")
        elif stale_for(store, league, month):
            problems.append(f"{month} 需重算")
        elif state.seal is None:
            problems.append(f"{month} 已结算但尚未封存")
        else:
            states[str(month)] = "已封存"
    if not problems and "已封存" not in states.values():
        # closing is once and for ever: a mistyped year or 盟市 would shut months never settled
        raise RefusedError(
            f"盟市 {league} {year} 预算年度（{start} 至 {end}）没有任何已结算的月份，不能关账；"
            "请检查 --league 和 --year 是否写错"
        )
    if problems:
        raise RefusedError(
            f"盟市 {league} {year} 预算年度不能关账："
            + "；".join(problems)
            + "。每个月份都须封存（没有结算的月份除外）"
        )
    return states


def gather(
    cfg: Config, store: Path, league: str, year: int, start: Month, true_up: bool
) -> tuple[AnnualData, list[dict]]:
    """The year's lines, budget, carries and (with true_up) the true-up's units and parcels."""
    months = [str(m) for m in year_months(start)]
    con = connect_readonly(store)
    try:
        con.register("annual_params", pa.table({"league_code": [league] * 12, "month": months}))
        con.execute(shipped(SQL_DIR / "96_annual.sql").read_text(encoding="utf-8"))
        lines = _rows(con, "SELECT * FROM annual_lines ORDER BY company, month")
        carries = {
            r["company"]: r
            for r in _rows(
                con,
                "SELECT l.company, arg_max(l.carried_forward_fen, b.created_at) AS carried_fen, "
                "arg_max(b.batch_id, b.created_at) AS batch_id FROM payment_lines l "
                "JOIN payment_batches b USING (batch_id) WHERE b.league_code = ? GROUP BY 1",
                [league],
            )
            if r["carried_fen"]
        }
        units, parcels = [], []
        if true_up:
            con.register(
                "true_up_params",
                pa.table(
                    {"league_code": [league], "start_month": [months[0]], "end_month": [months[-1]]}
                ),
            )
            con.execute(shipped(SQL_DIR / "95_true_up.sql").read_text(encoding="utf-8"))
            units = _rows(con, "SELECT * FROM true_up_units WHERE excess_fen > 0 ORDER BY unit_key")
            parcels = _rows(con, "SELECT * FROM true_up_parcels ORDER BY waybill_no")
    finally:
        con.close()
    by_company: dict[str, int] = {}
    for p in parcels:
        by_company[p["company"]] = by_company.get(p["company"], 0) + p["amount_fen"]
    data = AnnualData(
        league=league,
        league_name=cfg.policy(league).league_name,
        year=year,
        start=months[0],
        end=months[-1],
        closed_at=clock.now_naive_utc(),
        closed_by="",
        lines=lines,
        budget=budget_year(store, league, year),
        company_names={c.code: c.name for c in cfg.companies.values()},
        states={},
        annual_true_up=true_up,
        true_up_units=units,
        true_up_by_company=by_company,
        carries=carries,
    )
    return data, parcels


@dataclass
class CloseResult:
    entry_id: str
    data: AnnualData
    folder: Path
    files: dict[str, dict]
    true_up_fen: int
    booked_in_month: str | None
    clawbacks: int  # parcels with a true-up clawback


def close_year(
    cfg: Config,
    store: Path,
    league: str,
    year: int,
    actor: Actor | None = None,
    say=None,
) -> CloseResult:
    """Close a 盟市's budget year once: refused while a month of it is unsealed or stale;
    writes the annual statements (annual/league=L/year=Y/), and with annual_true_up books the
    true-up's clawbacks in the next year's first open month."""
    from .annual_documents import write_annual

    say = say or (lambda _m: None)
    require_store(store)
    actor = actor or Actor.cli()
    policy = cfg.policy(league)
    with store_lock(store, say=say):
        out_dir = recorded_out(store)
        recorded = league_budget(store, league)
        if out_dir is None or recorded is None:
            raise RefusedError(f"结算库 {store} 中没有盟市 {league} 的结算记录")
        for message in recover(out_dir, committed_runs(store)):
            say(message)
        start = Month(year, recorded["year_start_month"])
        done = [c for c in closed_years(store, league) if c["year"] == year]
        if done:
            raise RefusedError(
                f"盟市 {league} {year} 预算年度已于 {clock.local_text(done[0]['closed_at'], seconds=False)}"
                f" 由 {done[0]['closed_by']} 关账，每个年度只能关账一次；之后的变化计入下一年度"
            )
        states = check_year(store, league, year, start)
        say("计算年度结算" + ("和年度盈亏平衡清算" if policy.annual_true_up else ""))
        data, parcels = gather(cfg, store, league, year, start, policy.annual_true_up)
        data.closed_by, data.states = actor.name, states
        entry_id = journal.new_entry_id("close", league, str(year))
        booked = first_open_month(store, league, start.shift(12)) if parcels else None
        data.booked_in_month = str(booked) if booked else None
        rows = [
            {
                "clawback_id": entry_id,
                "kind": "true_up",
                "league_code": league,
                "booked_in_month": str(booked),
                "company": p["company"],
                "waybill_no": p["waybill_no"],
                "amount_fen": int(p["amount_fen"]),
                "source_month": p["source_month"],
                "source_run_id": p["source_run_id"],
                "reason": TRUE_UP_REASON.format(year=year),
                "recorded_by": actor.name,
                "recorded_at": data.closed_at,
            }
            for p in parcels
        ]
        true_up_fen = sum(r["amount_fen"] for r in rows)
        staging = out_dir / ".staging" / entry_id
        folder = annual_dir(league, year)
        try:
            say("生成年度结算表")
            files = write_annual(staging / folder, data)
            hashes = {name: f["sha256"] for name, f in files.items()}
            fields = {
                "league_code": league,
                "year": year,
                "start_month": data.start,
                "end_month": data.end,
                "annual_true_up": policy.annual_true_up,
                "true_up_fen": true_up_fen,
                "booked_in_month": data.booked_in_month,
                "closed_by": actor.name,
                "closed_at": data.closed_at,
            }
            payload = {
                "kind": "close",
                **fields,
                "true_up_units": data.true_up_units,
                "files": files,
            }
            text = journal.entry_text(journal.chain(payload, journal_head(store)))
            stage_text(staging, journal.entry_rel(entry_id), text)
            crash_point("staged")
            publish(staging, out_dir, entry_id, [folder, journal.entry_rel(entry_id)])
            crash_point("published")
            close = {**fields, "files": json.dumps(hashes, sort_keys=True), "entry_id": entry_id}
            record_close(store, close, rows, actor, hashlib.sha256(text.encode()).hexdigest())
            crash_point("committed")
        finally:
            discard(staging)
        if booked is not None:
            rerender_month(cfg, store, out_dir, league, booked, say, actor, "true_up")
    return CloseResult(
        entry_id, data, out_dir / folder, files, true_up_fen, data.booked_in_month, len(rows)
    )
