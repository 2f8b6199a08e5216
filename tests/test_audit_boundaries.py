"""The audits of sql/audits/ at their limits: each finds exactly the rows past its limit, with
the right problem, and none at it. Tables are built in memory with the columns the audits read."""

from __future__ import annotations

import duckdb
import polars as pl

from settlement.audit import load_audits

AUDITS = {name: sql for name, _question, sql in load_audits()}


def audit(name: str, **tables: list[dict]) -> list[tuple]:
    """Run one audit over the given tables (lists of rows); its findings, sorted."""
    con = duckdb.connect()
    try:
        for table, rows in tables.items():
            con.register(f"_{table}", pl.DataFrame(rows).to_arrow())
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM _{table}")
        return sorted(con.execute(AUDITS[name]).fetchall(), key=str)
    finally:
        con.close()


def run(run_id: str, **values) -> dict:
    return {"run_id": run_id, "status": "current", "league_code": "150700"} | values


def test_subsidy_bounds():
    def parcel(waybill, rate, subsidy):
        return {"run_id": "R", "waybill_no": waybill, "rate_fen": rate, "subsidy_fen": subsidy}

    ledger = [
        parcel("AT-30", 30, 30),  # at every limit: subsidy = rate = 30
        parcel("ZERO", 0, 0),
        parcel("NOTHING", 15, 0),
        parcel("NEG", 15, -1),
        parcel("OVER", 15, 16),
        parcel("RATE-31", 31, 31),
    ]
    assert audit("02_subsidy_bounds", ledger=ledger) == [
        ("R", "NEG", 15, -1, "补贴为负数"),
        ("R", "OVER", 15, 16, "补贴超过费率"),
        ("R", "RATE-31", 31, 31, "费率超出 0–30 分"),
    ]


def test_units_add_up_at_and_past_the_cap():
    def unit(key, subsidy, after, cap, prior):
        return {
            "run_id": "R",
            "unit_key": key,
            "parcels": 1,
            "gross_fen": 30,
            "subsidy_fen": subsidy,
            "after_breakeven_fen": after,
            "cap_fen": cap,
            "prior_paid_fen": prior,
        }

    units = [
        unit("AT-CAP", 20, 20, 20, 0),  # subsidy = after break-even = cap: fine
        unit("PAID-PAST-CAP", 0, 0, 10, 15),  # earlier runs paid past the cap: 0 more is fine
        unit("OVER-AFTER", 21, 20, 30, 0),
        unit("OVER-CAP", 20, 20, 25, 10),  # 20 > 25 − 10
    ]
    ledger = [
        {"run_id": "R", "unit_key": u["unit_key"], "rate_fen": 30, "subsidy_fen": u["subsidy_fen"]}
        for u in units
    ]
    assert audit("03_units_add_up", units=units, ledger=ledger, runs=[run("R")]) == [
        ("R", "OVER-AFTER", "补贴超过盈亏平衡后金额"),
        ("R", "OVER-CAP", "补贴超过盈亏平衡上限"),
    ]


def test_budget_years_and_the_annual_limit():
    # 150700's budget year starts in July (100 分): June belongs to the year from 2024-07, July
    # starts the next; July + August spend exactly 100 (fine). 150100's calendar year (50 分)
    # spends 51.
    budgets = [
        {
            "league_code": league,
            "year_start_month": start,
            "annual_budget_fen": fen,
            "budget_rule": "ytd",
        }
        for league, start, fen in [("150700", 7, 100), ("150100", 1, 50)]
    ]
    runs = [
        run("JUN", month="2025-06", subsidy_fen=61),
        run("JUL", month="2025-07", subsidy_fen=40),
        run("AUG", month="2025-08", subsidy_fen=60),
        run("OLD", month="2025-08", subsidy_fen=60, status="superseded"),
        run("H1", month="2025-01", subsidy_fen=30, league_code="150100"),
        run("H2", month="2025-02", subsidy_fen=21, league_code="150100"),
    ]
    assert audit("04_budget", budgets=budgets, runs=runs) == [
        ("150100", "2025-01", 51, 50, "预算年度支付超过年度预算")
    ]


def test_rows_reconcile_finds_a_row_counted_twice():
    # 3 rows read, 3 accounted for; but row 2 is both in the ledger and in the rejects
    ledger = [
        {"run_id": "R", "source_file": "a.csv", "source_row": 1},
        {"run_id": "R", "source_file": "a.csv", "source_row": 2},
    ]
    rejects = [{"run_id": "R", "source_file": "a.csv", "source_row": 2}]
    assert audit(
        "01_rows_reconcile", ledger=ledger, rejects=rejects, runs=[run("R", rows_in=3)]
    ) == [("R", "a.csv", 2, "同一输入行出现 2 次")]


def test_waybill_paid_once():
    # the audited run R pays X twice itself, and W that run P had already paid; V only once
    ledger = [{"run_id": "R", "waybill_no": w} for w in ("X", "X", "W", "V")]
    settled = [
        {"run_id": r, "waybill_no": w}
        for r, w in [("R", "X"), ("R", "X"), ("R", "W"), ("P", "W"), ("R", "V")]
    ]
    assert audit("07_waybill_paid_once", ledger=ledger, settled_waybills=settled) == [
        ("W", 2, "P, R", "运单被结算 2 次"),
        ("X", 2, "R", "运单被结算 2 次"),
    ]
