"""Rounding, boundaries and tie-breaks of sql/, each pinned by a hand-computed case.

Every case here kills at least one mutant of tests/mutants.py (a FLOOR made CEIL, a `<` made
`<=`, a tie sent the other way), so a change to one of those lines fails a test. Test policy
as in tests/test_rules.py: T-1 (to 03-15) default 0.10 元 below 10 km, 0.15 from 10 km, border
0.25, cap 0.30, max_cost_share 0.5; T-2 (from 03-16) default 0.12, no cost share. ZTO's
default revenue is 0.85, YTO has none (policy 0.50).
"""

from __future__ import annotations

from decimal import Decimal

import duckdb
import polars as pl
import pytest
from conftest import (
    V1,
    V1B,
    V2,
    V_OVERRIDE,
    frame,
    make_config,
    policy_text,
    row,
    settle_rows,
    tiny_config,
)
from test_rules import BUDGET_ROWS

from settlement import SQL_DIR
from settlement.config import load_config
from settlement.engine import compute, settle_month
from settlement.period import Month

# --------------------------------------------------------------------------- rates (§4.2)

RATE_ROUNDING = [
    # (what the policy says, policy knobs, (old, new) edit of the policy text, row, rate_fen)
    (
        "0.15 元 × tier 1.5 = 0.225 元 floors to 22 分 (CEIL, ROUND or a rounding cast: 23)",
        {"tiers": True},
        None,
        row("W", km="12"),
        22,
    ),
    (
        "a base rate of 0.125 元 floors to 12 分 (kept to 6 decimals, not 2: 0.13)",
        {},
        ("rate_yuan = 0.10", "rate_yuan = 0.125"),
        row("W", km="5"),
        12,
    ),
    (
        "cost share 0.5 × 0.159999 元 = 0.0799995 元 floors to 7 分 (the cost not rounded to the fen)",
        {},
        None,
        row("W", km="12", cost="0.159999"),
        7,
    ),
    (
        "cost share 0.125 × 1.00 元 = 0.125 元 → 12 分 (the share kept to 6 decimals, not 2: 13)",
        {"share": "0.125"},
        None,
        row("W", km="12", cost="1.00"),
        12,
    ),
    (
        "a 7th decimal rounds half up: 9.9999995 km is 10.000000 km, in the band [10, ∞)",
        {},
        None,
        row("W", km="9.9999995"),
        15,
    ),
]


@pytest.mark.parametrize(
    ("case", "knobs", "edit", "data", "expected"), RATE_ROUNDING, ids=[c[0] for c in RATE_ROUNDING]
)
def test_rate_rounding(tmp_path, case, knobs, edit, data, expected):
    text = policy_text(**knobs)
    if edit:
        assert text.count(edit[0]) == 1
        text = text.replace(*edit)
    cfg = load_config(make_config(tmp_path / "config", text))
    assert settle_rows(cfg, [data]).rate() == {"W": expected}, case


def test_a_parcel_on_a_band_edge_is_in_the_upper_band_only(tiny):
    # bands are [from, to): 10 km is in [10, ∞) and not in [0, 10) as well
    result = settle_rows(tiny, [row("EDGE", km="10"), row("ZERO", km="0")])
    got = sorted(
        result.ledger.select("waybill_no", "band_from_km", "band_to_km", "rate_fen").rows()
    )
    assert got == [("EDGE", Decimal(10), None, 15), ("ZERO", Decimal(0), Decimal(10), 10)]
    assert result.unit("ZTO|150702")["parcels"] == 2


# --------------------------------------------------------------------------- validation (§4.1)


def test_validation_at_its_limits(tiny):
    # the month is [03-01 00:00, 04-01 00:00); a cost of 0 is allowed (the share makes it 0 分);
    # a waybill_no may have 64 characters, not 65
    long = "W" * 64
    rows = [
        row("FIRST", at="2025-03-01 00:00:00"),
        row("LAST", at="2025-03-31 23:59:59"),
        row("FREE", cost="0"),
        row(long),
        row(long + "X"),
    ]
    result = settle_rows(tiny, rows)
    assert result.rate() == {"FIRST": 10, "LAST": 12, "FREE": 0, long: 10}
    assert result.rejects.select("source_row", "reason_code").rows() == [(5, "MALFORMED")]


def test_duplicate_tie_breaks_after_village(tiny):
    # Each waybill comes twice, the two rows equal up to the field named; the row kept is the
    # smaller one (blank revenue and proof first), whatever the file order.
    a = [
        row("KM", km="5"),
        row("KM", km="3"),  # kept: 3 < 5
        row("COST", cost="2.00"),
        row("COST", cost="1.50"),  # kept
        row("REV", revenue="0.50"),
        row("REV", revenue=None),  # kept: blank first
        row("REV2", revenue="0.60"),
        row("REV2", revenue="0.40"),  # kept
        row("PROOF", proof="签名"),
        row("PROOF", proof=None),  # kept: blank first
        row("PROOF2", proof="签名"),
        row("PROOF2", proof="取件码"),  # kept: '取' (U+53D6) < '签' (U+7B7E)
        row("ROW"),  # kept: the earlier row of the same file
        row("ROW"),
        row("FILE"),  # kept: a.csv before b.csv
    ]
    b = [row("FILE")]
    result = settle_rows(tiny, pl.concat([frame(b, "b.csv"), frame(a, "a.csv")]))
    kept = {r["waybill_no"]: (r["source_file"], r["source_row"]) for r in result.ledger.to_dicts()}
    assert kept == {
        "KM": ("a.csv", 2),
        "COST": ("a.csv", 4),
        "REV": ("a.csv", 6),
        "REV2": ("a.csv", 8),
        "PROOF": ("a.csv", 10),
        "PROOF2": ("a.csv", 12),
        "ROW": ("a.csv", 13),
        "FILE": ("a.csv", 15),
    }
    rejected = {
        (r["source_file"], r["source_row"], r["reason_code"]) for r in result.rejects.to_dicts()
    }
    assert rejected == {
        *(("a.csv", n, "DUPLICATE") for n in (1, 3, 5, 7, 9, 11, 14)),
        ("b.csv", 1, "DUPLICATE"),
    }


# --------------------------------------------------------------------------- break-even (§4.3)

# Three units whose costs and revenues have digits below the fen.
#   ZTO|150702: A 10 分 (5 km), B 15 分 (12 km), C 25 分 (border village); gross 50.
#     Σ cost − Σ revenue = 3.019999 − 2.96 = 0.059999 元 → cap floor(5.9999) = 5 分
#     (CEIL or ROUND: 6; the cost read to 5 decimals, 1.02: 6).
#     Shares of 5 over 10:15:25 = 1, 1.5, 2.5 → floors 1, 1, 2 and remainders 0, 25, 25 (in
#     fiftieths): the spare 分 goes to a largest remainder, B or C, and of those to the smaller
#     waybill B (not to A, the smallest waybill; not to C, the larger rate).
#   YTO|150702: D1, D2, D3 at 15 分 each; gross 45.
#     Σ cost − Σ revenue = 3.00 − 2.790001 = 0.209999 元 → cap 20 分 (revenue read to 5
#     decimals, 0.93: 21). Shares 20 × 15/45 = 6.67 each: floors 6, leftover 2 to D1 and D2.
#   ZTO|150783: E earns more than it costs (1.20 > 1.00): cap 0 分, never below.
BREAKEVEN_FEN_ROWS = [
    row("A", "ZTO", village=V1, km="5", cost="1.00", revenue="0.99"),
    row("B", "ZTO", village=V1, km="12", cost="1.019999", revenue="0.98"),
    row("C", "ZTO", village=V_OVERRIDE, km="5", cost="1.00", revenue="0.99"),
    row("D1", "YTO", village=V1, km="12", cost="1.00", revenue="0.93"),
    row("D2", "YTO", village=V1B, km="12", cost="1.00", revenue="0.93"),
    row("D3", "YTO", village=V1, km="12", cost="1.00", revenue="0.930001"),
    row("E", "ZTO", village=V2, km="12", cost="1.00", revenue="1.20"),
]


def test_breakeven_cap_floors_costs_below_the_fen(tiny):
    result = settle_rows(tiny, BREAKEVEN_FEN_ROWS)
    units = {
        u["unit_key"]: (u["gross_fen"], u["cap_fen"], u["after_breakeven_fen"], u["subsidy_fen"])
        for u in result.units.to_dicts()
    }
    assert units == {
        "ZTO|150702": (50, 5, 5, 5),
        "YTO|150702": (45, 20, 20, 20),
        "ZTO|150783": (15, 0, 0, 0),
    }
    assert result.subsidy() == {"A": 1, "B": 2, "C": 2, "D1": 7, "D2": 7, "D3": 6, "E": 0}


def _csv(path, waybill: str, revenue: str):
    """One February parcel of 15 分 (12 km, cost 1.00) in a log file of its own."""
    path.write_text(
        "waybill_no,company,delivered_at,village_code,distance_km,cost_yuan,revenue_yuan,proof\n"
        f"{waybill},ZTO,2025-02-05 10:00,{V1},12,1.00,{revenue},签名\n",
        encoding="utf-8",
    )
    return path


def test_supplement_under_a_higher_cap_reports_no_excess(tiny, tmp_path):
    # February: A (cost 1.00, revenue 0.80) → cap 20, paid 15. A late parcel L (cost 1.00,
    # revenue 0.50) raises the month's cap to floor(100 × (2.00 − 1.30)) = 70: nothing was
    # paid beyond it, so the excess is 0 (not 15 − 70 = −55); L gets its full 15.
    out, store = tmp_path / "out", tmp_path / "out" / "settlement.duckdb"
    month = Month.parse("2025-02")
    settle_month(tiny, "150700", month, [_csv(tmp_path / "feb.csv", "A", "0.80")], out, store)
    ledgers = sorted((out / "ledger/league=150700/month=2025-02").glob("*.parquet"))
    late = frame([row("L", at="2025-02-25 10:00", km="12", cost="1.00", revenue="0.50")])
    with compute(
        tiny, "150700", month, late, store, "TEST", supplementary=True, month_ledgers=ledgers
    ) as con:
        units = con.execute(
            "SELECT cap_fen, prior_paid_fen, breakeven_excess_fen, subsidy_fen FROM units"
        ).fetchall()
    assert units == [(70, 15, 0, 15)]


# --------------------------------------------------------------------------- budget (§4.4)


def test_monthly_allowance_floors_and_remainders_tie(tmp_path):
    # tests/test_rules.py's BUDGET_ROWS: units ZTO|150702 30, YTO|150702 15, ZTO|150783 15.
    # annual 1.25 元 = 125 分; March, month 3: floor(125 × 3 / 12) = floor(31.25) = 31.
    # 31 of 60: ZTO|150702 15.5, YTO|150702 7.75, ZTO|150783 7.75 → floors 15 + 7 + 7 = 29;
    # the 2 spare 分 go to the two largest remainders, the tied 0.75s (not to 0.5).
    result = settle_rows(tiny_config(tmp_path, rule="monthly", annual="1.25"), BUDGET_ROWS)
    assert result.budget["available_fen"] == 31
    units = {u["unit_key"]: u["subsidy_fen"] for u in result.units.to_dicts()}
    assert units == {"ZTO|150702": 15, "YTO|150702": 8, "ZTO|150783": 8}


def test_budget_cut_below_what_was_paid_pays_nothing(tmp_path):
    # January pays 30 under an annual budget of 0.30 元; the budget is then cut to 0.20 元:
    # February may pay max(0, 20 − 30) = 0, not −10.
    out, store = tmp_path / "out", tmp_path / "out" / "settlement.duckdb"
    jan = tiny_config(tmp_path / "jan", rule="ytd", annual="0.30")
    logs = tmp_path / "jan.csv"
    logs.write_text(
        "waybill_no,company,delivered_at,village_code,distance_km,cost_yuan,revenue_yuan,proof\n"
        f"J1,ZTO,2025-01-05 10:00,{V1},12,2.00,0,签名\nJ2,ZTO,2025-01-06 10:00,{V2},12,2.00,0,签名\n",
        encoding="utf-8",
    )
    paid = settle_month(jan, "150700", Month.parse("2025-01"), [logs], out, store)
    assert paid.manifest["totals"]["subsidy_fen"] == 30
    cut = tiny_config(tmp_path / "cut", rule="ytd", annual="0.20")
    feb = settle_rows(
        cut, [row("F1", at="2025-02-05 10:00", km="12")], month="2025-02", store=store
    )
    assert (feb.budget["paid_before_fen"], feb.budget["available_fen"]) == (30, 0)
    assert feb.subsidy() == {"F1": 0}
    assert feb.unit("ZTO|150702")["subsidy_fen"] == 0


# --------------------------------------------------------------------------- statements


def statement_lines(cfg, result) -> dict:
    """sql/80_statement_lines.sql over a settled month held in memory, as the statements read it:
    {(company, county_code): (gross, break-even reduction, budget reduction, payable)}."""
    con = duckdb.connect()
    try:
        con.register("month_ledger", result.ledger.to_arrow())
        con.register("month_units", result.units.to_arrow())
        con.register("month_rejects", result.rejects.to_arrow())
        villages = cfg.villages.filter(pl.col("league_code") == "150700")
        con.register("villages", villages.select("code", "county_code").to_arrow())
        con.execute((SQL_DIR / "80_statement_lines.sql").read_text(encoding="utf-8"))
        return {
            (c, k): tuple(rest)
            for c, k, *rest in con.execute(
                "SELECT company, county_code, gross_fen, breakeven_reduction_fen, "
                "budget_reduction_fen, subsidy_fen FROM statement_lines"
            ).fetchall()
        }
    finally:
        con.close()


def test_statement_lines_share_the_budget_reduction_by_largest_remainder(tmp_path):
    # League scope: one unit over four lines, a parcel of 10 分 each (gross 40).
    # Σ cost − Σ revenue = 4.00 − 3.965 = 0.035 元 → cap 3; the ytd budget 0.01 元 pays 1 分,
    # to A1 (the four parcels tie; A1 is the smallest waybill). The unit's reductions:
    # break-even 40 − 3 = 37, budget 3 − 1 = 2. The budget's 2 分 are shared over the lines'
    # own reductions 9, 10, 10, 10 (of 39): 0.46, 0.51, 0.51, 0.51 → floors 0; the 2 spare 分
    # to the largest remainders, the three 0.51s tie: by company, then 旗县 → YTO 150783 and
    # ZTO 150702. Each line: gross = break-even + budget reduction + payable.
    cfg = tiny_config(tmp_path, scope="league", rule="ytd", annual="0.01")
    rows = [
        row("A1", "YTO", village=V1, cost="1.00", revenue="0.99"),
        row("B1", "YTO", village=V2, cost="1.00", revenue="0.99"),
        row("C1", "ZTO", village=V1, cost="1.00", revenue="0.99"),
        row("D1", "ZTO", village=V2, cost="1.00", revenue="0.995"),
    ]
    result = settle_rows(cfg, rows)
    assert result.unit("150700")["cap_fen"] == 3
    assert result.subsidy() == {"A1": 1, "B1": 0, "C1": 0, "D1": 0}
    assert statement_lines(cfg, result) == {
        ("YTO", "150702"): (10, 9, 0, 1),
        ("YTO", "150783"): (10, 9, 1, 0),
        ("ZTO", "150702"): (10, 9, 1, 0),
        ("ZTO", "150783"): (10, 10, 0, 0),
    }
