"""Multi-month settlement on one store: budget years, reused waybills, re-runs, sealing and
supplementary runs (补充结算), with hand-computed 分."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from click.testing import CliRunner
from conftest import V1, V1B, V2, make_config, policy_text

from settlement.cli import main
from settlement.config import load_config
from settlement.engine import settle_month
from settlement.errors import RefusedError, SettlementError
from settlement.months import seal_month
from settlement.period import Month
from settlement.store import connect_readonly

HEADER = "waybill_no,company,delivered_at,village_code,distance_km,cost_yuan,revenue_yuan,proof\n"


class Office:
    """A settlement office with one store: settle months from rows written to CSV files."""

    def __init__(self, tmp_path, **knobs):
        self.root = tmp_path
        self.cfg = load_config(make_config(tmp_path / "config", policy_text(**knobs)))
        self.out = tmp_path / "out"
        self.store = self.out / "settlement.duckdb"
        self.n = 0

    def settle(self, month: str, *lines: str, supplementary: bool = False, replace: bool = False):
        self.n += 1
        path = self.root / "logs" / f"{self.n}-{month}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(HEADER + "".join(f"{x}\n" for x in lines), encoding="utf-8")
        return settle_month(
            self.cfg,
            "150700",
            Month.parse(month),
            [path],
            self.out,
            self.store,
            supplementary=supplementary,
            replace=replace,
        )

    def seal(self, month: str, notice: str = None):
        start = dt.date.fromisoformat(notice) if notice else Month.parse(month).end
        return seal_month(
            self.store,
            "150700",
            Month.parse(month),
            {
                "reviewed_by": "审核员",
                "notice_start": start,
                "notice_end": start + dt.timedelta(days=6),
                "approved_by": "审批人",
                "approval_ref": "呼邮管〔2025〕1号",
            },
        )

    def sql(self, query: str):
        con = connect_readonly(self.store)
        try:
            return con.execute(query).fetchall()
        finally:
            con.close()


def p(waybill, day, km="12", village=V1, company="ZTO", cost="2.00", revenue="0"):
    """A parcel row; at 12 km the test policy pays 15 分, at 5 km 10 分 (until 03-15)."""
    return f"{waybill},{company},{day} 10:00,{village},{km},{cost},{revenue},签名"


def paid(result) -> int:
    return result.manifest["totals"]["subsidy_fen"]


def test_ytd_budget_carries_over_three_months(tmp_path):
    # annual 0.70 元 = 70 分. Jan asks 30 → 30 (40 left); Feb asks 30 → 30 (10 left);
    # Mar asks 30 → 10, prorated over units ZTO|150702 (15) and ZTO|150783 (15): 5 and 5.
    office = Office(tmp_path, rule="ytd", annual="0.70")
    assert paid(office.settle("2025-01", p("J1", "2025-01-05"), p("J2", "2025-01-06"))) == 30
    feb = office.settle("2025-02", p("F1", "2025-02-05"), p("F2", "2025-02-06"))
    assert (feb.manifest["budget"]["available_fen"], paid(feb)) == (40, 30)
    mar = office.settle("2025-03", p("M1", "2025-03-05"), p("M2", "2025-03-06", village=V2))
    assert (mar.manifest["budget"]["paid_before_fen"], mar.manifest["budget"]["available_fen"]) == (
        60,
        10,
    )
    assert dict(office.sql("SELECT unit_key, subsidy_fen FROM units WHERE month = '2025-03'")) == {
        "ZTO|150702": 5,
        "ZTO|150783": 5,
    }


def test_monthly_budget_three_months(tmp_path):
    # annual 1.20 元 = 120 分: Jan may pay floor(120×1/12) = 10, Feb 20 − paid, Mar 30 − paid.
    office = Office(tmp_path, rule="monthly", annual="1.20")
    jan = office.settle("2025-01", p("J1", "2025-01-05", km="5"))  # asks 10
    feb = office.settle("2025-02", p("F1", "2025-02-05"))  # asks 15, may pay 20 − 10
    mar = office.settle("2025-03", p("M1", "2025-03-05", km="5"))  # asks 10, may pay 30 − 20
    assert [(r.manifest["budget"]["available_fen"], paid(r)) for r in (jan, feb, mar)] == [
        (10, 10),
        (10, 10),
        (10, 10),
    ]


def test_monthly_budget_year_starting_in_july(tmp_path):
    # Budget year 2024-07..2025-06: June 2025 is month 12 → 120 分; July 2025 opens a new year: k=1 → 10.
    office = Office(tmp_path, rule="monthly", annual="1.20", start_month=7)
    jun = office.settle("2025-06", p("A", "2025-06-05"), p("B", "2025-06-06"))
    jul = office.settle("2025-07", p("C", "2025-07-05"), p("D", "2025-07-06"))
    assert (jun.manifest["budget"]["month_index"], jun.manifest["budget"]["available_fen"]) == (
        12,
        120,
    )
    assert jun.manifest["budget"]["budget_year_start"] == "2024-07"
    assert (jul.manifest["budget"]["month_index"], jul.manifest["budget"]["paid_before_fen"]) == (
        1,
        0,
    )
    assert (jul.manifest["budget"]["available_fen"], paid(jul)) == (10, 10)


def test_reused_waybills_released_by_a_rerun(tmp_path):
    office = Office(tmp_path)
    office.settle("2025-02", p("W1", "2025-02-05"), p("W2", "2025-02-06"))
    mar = office.settle("2025-03", p("W1", "2025-03-05"), p("W3", "2025-03-06"))
    assert mar.manifest["counts"]["by_reason"] == {"ALREADY_SETTLED": 1}
    # February is re-run without W1: W1 is released, March is stale, and its re-run pays it
    feb2 = office.settle("2025-02", p("W2", "2025-02-06"), replace=True)
    assert feb2.superseded is not None
    assert [(s["month"], s["waybills"]) for s in feb2.stale] == [("2025-03", 1)]
    mar2 = office.settle("2025-03", p("W1", "2025-03-05"), p("W3", "2025-03-06"), replace=True)
    assert mar2.manifest["counts"]["by_reason"] == {}
    assert sorted(office.sql("SELECT month, waybill_no FROM settled_waybills")) == [
        ("2025-02", "W2"),
        ("2025-03", "W1"),
        ("2025-03", "W3"),
    ]
    history = office.sql(
        "SELECT month, status, superseded_by IS NOT NULL, supersedes IS NOT NULL "
        "FROM runs ORDER BY started_at"
    )
    assert history == [
        ("2025-02", "superseded", True, False),
        ("2025-03", "superseded", True, False),
        ("2025-02", "current", False, True),
        ("2025-03", "current", False, True),
    ]


def test_waybill_settled_by_another_league_is_already_settled(tmp_path):
    office = Office(tmp_path)
    office.settle("2025-02", p("W1", "2025-02-05"))
    # as if 呼和浩特 had paid it: its run and its files under league=150100
    con = duckdb.connect(str(office.store))
    con.execute("UPDATE runs SET league_code = '150100'")
    con.close()
    for kind in ("ledger", "rejects", "units"):
        (office.out / kind / "league=150100").mkdir()
        (office.out / kind / "league=150700" / "month=2025-02").rename(
            office.out / kind / "league=150100" / "month=2025-02"
        )
    assert office.sql("SELECT league_code, waybill_no FROM settled_waybills") == [("150100", "W1")]
    again = office.settle("2025-02", p("W1", "2025-02-05"), replace=True)
    assert again.manifest["counts"]["by_reason"] == {"ALREADY_SETTLED": 1}


def test_rerun_of_an_earlier_month_cannot_break_the_year(tmp_path):
    # ytd 0.40 元: Jan pays 15, Feb pays 15 (10 left). Re-running Jan with 3 parcels (asks 45):
    # the SPEC formula alone would allow 40 − 0 = 40, but Feb already took 15: at most 25.
    office = Office(tmp_path, rule="ytd", annual="0.40")
    office.settle("2025-01", p("A", "2025-01-05"))
    office.settle("2025-02", p("B", "2025-02-05"))
    jan = office.settle(
        "2025-01", p("A", "2025-01-05"), p("C", "2025-01-06"), p("D", "2025-01-07"), replace=True
    )
    assert (jan.manifest["budget"]["available_fen"], paid(jan)) == (25, 25)
    assert office.sql("SELECT SUM(subsidy_fen) FROM runs WHERE status = 'current'") == [(40,)]


def test_sealed_month_refuses_rerun_and_keeps_waybills_paid(tmp_path):
    office = Office(tmp_path)
    office.settle("2025-02", p("W1", "2025-02-05"))
    office.seal("2025-02")
    with pytest.raises(RefusedError, match="已封存.*不能重新结算"):
        office.settle("2025-02", p("W9", "2025-02-05"))
    mar = office.settle("2025-03", p("W1", "2025-03-05"))
    assert mar.manifest["counts"]["by_reason"] == {"ALREADY_SETTLED": 1}


def test_seal_refusals(tmp_path):
    office = Office(tmp_path)
    office.settle("2025-01", p("W0", "2025-01-05"))
    with pytest.raises(RefusedError, match="尚未结算"):
        office.seal("2025-02")
    office.settle("2025-02", p("W1", "2025-02-05"))
    with pytest.raises(RefusedError, match="早于结算月份结束"):
        office.seal("2025-02", notice="2025-02-20")
    office.seal("2025-02")
    with pytest.raises(RefusedError, match="无需再次封存"):
        office.seal("2025-02")


def test_supplementary_only_for_sealed_months(tmp_path):
    office = Office(tmp_path)
    office.settle("2025-02", p("W1", "2025-02-05"))
    with pytest.raises(RefusedError, match="尚未封存"):
        office.settle("2025-02", p("L1", "2025-02-07"), supplementary=True)


def test_supplementary_keeps_breakeven_and_budget_over_the_whole_month(tmp_path):
    # scope company_county, ytd 0.50 元 = 50 分.
    # February: A (cost 1.00, revenue 0.80) → rate 15, cap floor(100×0.20) = 20 → paid 15.
    office = Office(tmp_path, rule="ytd", annual="0.50")
    feb = office.settle("2025-02", p("A", "2025-02-05", cost="1.00", revenue="0.80"))
    assert paid(feb) == 15
    office.seal("2025-02")
    office.settle("2025-03", p("M", "2025-03-05", village=V2))  # March pays 15 (unit ZTO|150783)
    office.seal("2025-03")
    # Late February parcels: L1 and L2 in ZTO|150702, each cost 1.00, revenue 0.90, rate 15.
    # Over the whole month the unit's cap is floor(100×(3.00 − 2.60)) = 40, 15 already paid:
    # 25 more at most, of 30 asked. Budget: 50 − 15 (Feb) − 15 (Mar) = 20 left → 20.
    # A repeat of A is ALREADY_SETTLED; the supplement is paid in April, the next open month.
    supp = office.settle(
        "2025-02",
        p("L1", "2025-02-20", cost="1.00", revenue="0.90"),
        p("L2", "2025-02-21", cost="1.00", revenue="0.90"),
        p("A", "2025-02-05"),
        supplementary=True,
    )
    m = supp.manifest
    assert m["kind"] == "supplementary" and m["payable_in_month"] == "2025-04"
    assert m["counts"]["by_reason"] == {"ALREADY_SETTLED": 1}
    assert m["totals"]["after_breakeven_fen"] == 25
    assert (m["budget"]["available_fen"], m["totals"]["subsidy_fen"]) == (20, 20)
    assert supp.manifest_path.name == "month=2025-02.supplement-1.json"
    unit = office.sql(
        "SELECT cap_fen, prior_paid_fen, after_breakeven_fen, subsidy_fen FROM units "
        "WHERE month = '2025-02' AND prior_paid_fen > 0"
    )
    assert unit == [(40, 15, 25, 20)]
    assert sorted(
        office.sql("SELECT waybill_no, subsidy_fen FROM ledger WHERE month = '2025-02'")
    ) == [("A", 15), ("L1", 10), ("L2", 10)]
    assert office.sql("SELECT SUM(subsidy_fen) FROM runs WHERE status = 'current'") == [(50,)]
    files = sorted(f.name for f in (office.out / "ledger/league=150700/month=2025-02").iterdir())
    assert files == ["part-0.parquet", "supplement-1.parquet"]


def test_supplementary_counts_the_whole_month_for_volume_tiers(tmp_path):
    # tiers: ≤ 2 parcels ×1.5, ≤ 3 ×1.2. V1B had 2 parcels in February; one late parcel makes 3 → ×1.2.
    office = Office(tmp_path, tiers=True)
    office.settle(
        "2025-02",
        p("A", "2025-02-05", km="5", village=V1B),
        p("B", "2025-02-06", km="5", village=V1B),
    )
    office.seal("2025-02")
    supp = office.settle("2025-02", p("C", "2025-02-25", km="5", village=V1B), supplementary=True)
    assert office.sql("SELECT rate_fen, village_volume FROM ledger WHERE waybill_no = 'C'") == [
        (12, 3)
    ]
    assert paid(supp) == 12


def test_breakeven_excess_is_reported_not_clawed_back(tmp_path):
    # February paid 15 under cap 20; late parcel earns more than it costs (cost 1.00, revenue 1.50):
    # the month's cap falls to floor(100×(2.00 − 2.30)) → 0; 15 were paid beyond it.
    office = Office(tmp_path)
    office.settle("2025-02", p("A", "2025-02-05", cost="1.00", revenue="0.80"))
    office.seal("2025-02")
    supp = office.settle(
        "2025-02", p("L", "2025-02-25", cost="1.00", revenue="1.50"), supplementary=True
    )
    assert paid(supp) == 0
    assert supp.manifest["totals"]["breakeven_excess_fen"] == 15


def test_cli_seal_runs_status_and_refusal(tmp_path):
    cfg = make_config(tmp_path / "config", policy_text(rule="ytd", annual="1.00"))
    out = tmp_path / "out"
    logs = tmp_path / "feb.csv"
    logs.write_text(HEADER + p("A", "2025-02-05") + "\n", encoding="utf-8")
    store = out / "settlement.duckdb"

    def cli(*args):
        return CliRunner().invoke(main, [str(a) for a in args])

    base = ["--league", "150700", "--month", "2025-02"]
    assert cli("run", *base, "--logs", logs, "--config", cfg, "--out", out, "-q").exit_code == 0
    sealed = cli(
        "seal",
        *base,
        "--store",
        store,
        "--reviewed-by",
        "王审核",
        "--notice-start",
        "2025-03-03",
        "--notice-end",
        "2025-03-09",
        "--approved-by",
        "赵审批",
        "--approval-ref",
        "呼邮管〔2025〕7号",
    )
    assert sealed.exit_code == 0 and "已封存 盟市 150700 2025-02" in sealed.output
    again = cli("run", *base, "--logs", logs, "--config", cfg, "--out", out, "-q")
    assert again.exit_code == 2
    assert again.output.strip() == (
        "错误：盟市 150700 2025-02 已封存（审批文号 呼邮管〔2025〕7号），不能重新结算；"
        "迟到的投递请用 settle run --supplementary 补充结算"
    )
    bad_date = cli(
        "seal",
        *base,
        "--store",
        store,
        "--reviewed-by",
        "a",
        "--notice-start",
        "2025-3-3",
        "--notice-end",
        "2025-03-09",
        "--approved-by",
        "b",
        "--approval-ref",
        "c",
    )
    assert bad_date.exit_code == 2 and "应为日期 YYYY-MM-DD" in bad_date.output
    listing = cli("runs", "--store", store)
    assert listing.exit_code == 0
    assert "150700 2025-02  月度结算  有效  已封存  受理 1 件  补贴 0.15 元" in listing.output
    status = cli("status", "--league", "150700", "--year", "2025", "--store", store)
    assert status.exit_code == 0
    assert "合计已用 0.15 元，预算余额 0.85 元" in status.output
    assert "2025-03  未结算" in status.output
    empty = cli("runs", "--store", tmp_path / "none.duckdb")
    assert (empty.exit_code, empty.output.strip()) == (
        2,
        f"错误：结算库 {tmp_path / 'none.duckdb'} 不存在；请用 --store 指定已有的结算库，"
        "或先运行 settle run",
    )


def test_store_of_the_first_schema_is_migrated_to_read_paid_waybills_from_ledgers(tmp_path):
    office = Office(tmp_path)
    office.settle("2025-02", p("W1", "2025-02-05"))
    # the store as schema version 1 left it: paid waybills copied into a table
    con = duckdb.connect(str(office.store))
    con.execute("SET file_search_path = ?", [str(office.out)])
    con.execute("DROP VIEW settled_waybills")
    con.execute(
        "CREATE TABLE settled_waybills (waybill_no VARCHAR NOT NULL, league_code VARCHAR NOT "
        "NULL, month VARCHAR NOT NULL, run_id VARCHAR NOT NULL, company VARCHAR NOT NULL, "
        "subsidy_fen INTEGER NOT NULL)"
    )
    con.execute(
        "INSERT INTO settled_waybills SELECT waybill_no, '150700', '2025-02', run_id, company, "
        "subsidy_fen FROM ledger"
    )
    con.execute("DELETE FROM schema_migrations WHERE version = 2")
    con.close()
    mar = office.settle("2025-03", p("W1", "2025-03-05"), p("W2", "2025-03-06"))
    assert mar.manifest["counts"]["by_reason"] == {"ALREADY_SETTLED": 1}
    assert office.sql(
        "SELECT table_type FROM information_schema.tables WHERE table_name = 'settled_waybills'"
    ) == [("VIEW",)]
    assert office.sql("SELECT version FROM schema_migrations ORDER BY version") == [
        (1,),
        (2,),
        (3,),
        (4,),
    ]
    assert sorted(office.sql("SELECT month, waybill_no FROM settled_waybills")) == [
        ("2025-02", "W1"),
        ("2025-03", "W2"),
    ]


def test_a_current_runs_missing_ledger_stops_the_next_run(tmp_path):
    office = Office(tmp_path)
    office.settle("2025-01", p("W0", "2025-01-05"))
    office.settle("2025-02", p("W1", "2025-02-05"), p("W2", "2025-02-06"))
    feb = office.out / "ledger/league=150700/month=2025-02"
    (feb / "part-0.parquet").unlink()
    with pytest.raises(SettlementError) as err:  # W1 would be paid again
        office.settle("2025-03", p("W1", "2025-03-05"))
    assert str(err.value) == (
        f"结算库 {office.store} 记录盟市 150700 2025-02 已受理 2 件，但明细账 {feb} 中有 0 件："
        "已结算运单无法核对，请先恢复该目录的明细账文件（settle verify 可列出问题）"
    )
    assert not (office.out / "ledger/league=150700/month=2025-03").exists()
    # re-running the month itself is fine
    again = office.settle("2025-02", p("W1", "2025-02-05"), replace=True)
    assert again.superseded is not None
    assert office.settle("2025-03", p("W1", "2025-03-05")).manifest["counts"]["by_reason"] == {
        "ALREADY_SETTLED": 1
    }
