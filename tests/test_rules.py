"""The settlement rules of SPEC §4, case by case, written the way the policy reads.

Test policy (tests/conftest.py): 150700, version T-1 (to 2025-03-15): default 0.10 元 below
10 km, 0.15 元 from 10 km; border (county 150727 and village 150702100202) 0.25 元; cap 0.30,
max_cost_share 0.5. Version T-2 (from 2025-03-16): default 0.12, border 0.22, cap 0.20, no
cost share. Companies: ZTO (default revenue 0.85), YTO (none; policy default 0.50).
"""

from __future__ import annotations

import pytest
from conftest import (
    V1,
    V1B,
    V2,
    V_BORDER,
    V_OTHER_LEAGUE,
    V_OVERRIDE,
    V_URBAN,
    row,
    settle_rows,
    tiny_config,
)

# --------------------------------------------------------------------------- rates (§4.2)

RATE_CASES = [
    # (what the policy says, row, expected rate_fen)
    ("default class below 10 km: 0.10 元", row("W", km="5"), 10),
    ("band [10, ∞) starts exactly at 10 km", row("W", km="10"), 15),
    ("just below the band edge stays in [0, 10)", row("W", km="9.999999"), 10),
    ("0 km is in the first band", row("W", km="0"), 10),
    ("county class: 150727 is border, 0.25 元", row("W", village=V_BORDER, km="3"), 25),
    ("a village listed in a class overrides its county", row("W", village=V_OVERRIDE), 25),
    ("cost share: 0.5 × 0.15 元 cost = 0.075 → 7 分", row("W", km="12", cost="0.15"), 7),
    ("cost share floors: 0.5 × 0.25 = 0.125 → 12 分", row("W", km="12", cost="0.25"), 12),
    ("mid-month switch: 03-15 23:59 is still T-1", row("W", at="2025-03-15 23:59:59"), 10),
    ("mid-month switch: 03-16 00:00 is T-2, 0.12 元", row("W", at="2025-03-16 00:00"), 12),
    (
        "T-2 border 0.22 元 is capped at T-2's 0.20",
        row("W", village=V_BORDER, at="2025-03-20 08:00"),
        20,
    ),
    (
        "T-2 has no cost share: cost 0.01 still gives 12",
        row("W", at="2025-03-20 08:00", cost="0.01"),
        12,
    ),
]


@pytest.mark.parametrize(("case", "data", "expected"), RATE_CASES, ids=[c[0] for c in RATE_CASES])
def test_rate_per_parcel(tiny, case, data, expected):
    result = settle_rows(tiny, [data])
    assert result.rate() == {"W": expected}, case


def test_policy_version_and_area_class_are_recorded(tiny):
    result = settle_rows(tiny, [row("A", village=V_OVERRIDE), row("B", at="2025-03-20 08:00")])
    got = {
        r["waybill_no"]: (r["policy_version"], r["area_class"]) for r in result.ledger.to_dicts()
    }
    assert got == {"A": ("T-1", "border"), "B": ("T-2", "default")}


def test_rate_cap_030_binds(tmp_path):
    # border 0.25 × 1.5 (volume ≤ 2) = 0.375 元, capped at 0.30 → 30 分
    cfg = tiny_config(tmp_path, tiers=True)
    assert settle_rows(cfg, [row("W", village=V_BORDER)]).rate() == {"W": 30}


def test_volume_tiers_count_all_companies_in_the_village(tmp_path):
    cfg = tiny_config(tmp_path, tiers=True)
    # V1: 2 parcels (≤ 2 → ×1.5): 0.10 × 1.5 = 15; V2: 3 parcels, two companies (≤ 3 → ×1.2): 12;
    # V1B: 4 parcels: no tier holds 4 → ×1: 10.
    rows = [row("A1", village=V1), row("A2", company="YTO", village=V1)]
    rows += [row(f"B{i}", village=V2, company="YTO" if i else "ZTO") for i in range(3)]
    rows += [row(f"C{i}", village=V1B) for i in range(4)]
    rates = settle_rows(cfg, rows).rate()
    assert rates == {
        "A1": 15,
        "A2": 15,
        "B0": 12,
        "B1": 12,
        "B2": 12,
        "C0": 10,
        "C1": 10,
        "C2": 10,
        "C3": 10,
    }


def test_rejected_rows_do_not_count_towards_village_volume(tmp_path):
    cfg = tiny_config(tmp_path, tiers=True)
    # 3 rows to V1 but one is a duplicate: volume 2 → ×1.5
    rows = [row("A"), row("B"), row("B", at="2025-03-06 10:00")]
    assert settle_rows(cfg, rows).rate() == {"A": 15, "B": 15}


def test_excel_float_trap_share_012_of_075(tmp_path):
    # 0.12 × 0.75 = 0.09 exactly: 9 分 (binary floats give 0.08999… → 8)
    cfg = tiny_config(tmp_path, share="0.12")
    assert settle_rows(cfg, [row("W", km="12", cost="0.75")]).rate() == {"W": 9}


# --------------------------------------------------------------------------- validation (§4.1)

REASON_CASES = [
    ("MALFORMED", row("W", at="2025-03-32 10:00")),
    ("MALFORMED", row("W", village="15070210020")),
    ("MALFORMED", row("W", km="五公里")),
    ("MALFORMED", row("W", cost=None)),
    ("MALFORMED", row("W", revenue="n/a")),
    ("UNKNOWN_COMPANY", row("W", company="SF")),
    ("UNKNOWN_VILLAGE", row("W", village="150702999999")),
    ("WRONG_LEAGUE", row("W", village=V_OTHER_LEAGUE)),
    ("NOT_RURAL", row("W", village=V_URBAN)),
    ("OUTSIDE_PERIOD", row("W", at="2025-02-28 23:59:59")),
    ("OUTSIDE_PERIOD", row("W", at="2025-04-01 00:00")),
    ("BAD_DISTANCE", row("W", km="-0.1")),
    ("BAD_DISTANCE", row("W", km="500.000001")),
    ("BAD_COST", row("W", cost="-1")),
    ("BAD_COST", row("W", cost="20.01")),
    ("BAD_COST", row("W", revenue="-0.01")),
]


@pytest.mark.parametrize(
    ("code", "data"), REASON_CASES, ids=[f"{c}-{i}" for i, (c, _) in enumerate(REASON_CASES)]
)
def test_reason_codes(tiny, code, data):
    result = settle_rows(tiny, [data])
    assert result.ledger.height == 0
    assert result.reasons() == {"W": code}


def test_reason_texts_are_chinese_with_a_specific_detail(tiny):
    result = settle_rows(tiny, [row("W", km="五公里")])
    rej = result.rejects.to_dicts()[0]
    assert rej["reason"] == "必填字段为空或格式错误"
    assert rej["detail"] == "派送距离(distance_km)“五公里”不是数字"
    assert (rej["source_file"], rej["source_row"]) == ("t.csv", 1)


def test_blank_waybill_is_malformed(tiny):
    result = settle_rows(tiny, [row("  ")])
    assert result.rejects["detail"].to_list() == ["运单号(waybill_no)为空"]


def test_limits_are_inclusive(tiny):
    result = settle_rows(tiny, [row("A", km="500"), row("B", cost="20")])
    assert sorted(result.ledger["waybill_no"]) == ["A", "B"]


def test_no_policy_before_the_first_version(tiny):
    result = settle_rows(tiny, [row("W", at="2024-12-31 10:00")], month="2024-12")
    assert result.reasons() == {"W": "NO_POLICY"}


def test_no_proof_only_when_required(tmp_path, tiny):
    assert settle_rows(tiny, [row("W", proof=None)]).ledger.height == 1
    cfg = tiny_config(tmp_path, require_proof=True)
    result = settle_rows(cfg, [row("W", proof=None), row("X", proof="取件码")])
    assert result.reasons() == {"W": "NO_PROOF"}
    assert result.ledger["waybill_no"].to_list() == ["X"]


def test_first_failing_reason_wins(tiny):
    # unknown company AND outside the period AND a bad distance: UNKNOWN_COMPANY comes first
    data = row("W", company="XX", at="2025-02-01 10:00", km="-5")
    assert settle_rows(tiny, [data]).reasons() == {"W": "UNKNOWN_COMPANY"}


def test_duplicate_keeps_the_earliest_delivery(tiny):
    rows = [row("D", at="2025-03-09 10:00", company="YTO"), row("D", at="2025-03-08 10:00")]
    result = settle_rows(tiny, rows)
    assert result.ledger.select("company", "source_row").rows() == [("ZTO", 2)]
    rej = result.rejects.to_dicts()[0]
    assert (rej["reason_code"], rej["source_row"]) == ("DUPLICATE", 1)
    # the kept row is another company's: neither its file nor its line is named
    assert rej["detail"] == "与另一企业提交的同一运单号重复（该企业的记录已受理）"


def test_duplicate_ties_broken_by_company_then_village(tiny):
    rows = [
        row("D", company="ZTO"),
        row("D", company="YTO"),
        row("E", village=V2),
        row("E", village=V1),
    ]
    result = settle_rows(tiny, rows)
    assert sorted(result.ledger.select("waybill_no", "company", "village_code").rows()) == [
        ("D", "YTO", V1),
        ("E", "ZTO", V1),
    ]


def test_duplicate_only_among_rows_that_pass_earlier_checks(tiny):
    # the first row is rejected for its company, so the second is not a duplicate of it
    rows = [row("D", company="XX", at="2025-03-01 10:00"), row("D", at="2025-03-02 10:00")]
    result = settle_rows(tiny, rows)
    assert result.reasons() == {"D": "UNKNOWN_COMPANY"}
    assert result.ledger["source_row"].to_list() == [2]


def test_whitespace_around_values_is_ignored(tiny):
    result = settle_rows(tiny, [row(" W1 ", company=" ZTO", village=f"{V1} ", km=" 5 ")])
    assert result.rate() == {"W1": 10}


@pytest.mark.parametrize(
    "text",
    [
        "2025/03/05 10:00",
        "2025-03-05T10:00:00",
        "2025-03-05 10:00:59",
        "2025/3/5 9:05",
        "2025-03-05 10:00:00.250",
    ],
)
def test_accepted_time_formats(tiny, text):
    result = settle_rows(tiny, [row("W", at=text)])
    assert result.ledger.height == 1, result.rejects.to_dicts()


# --------------------------------------------------------------------------- break-even (§4.3)

# Four parcels: rates 15, 15, 15, 10; costs 1.00 each; revenues as below.
BREAKEVEN_ROWS = [
    row("W1", "ZTO", village=V1, km="12", cost="1.00", revenue="0.95"),
    row("W2", "ZTO", village=V2, km="12", cost="1.00", revenue="0.80"),
    row("W3", "YTO", village=V1, km="12", cost="1.00", revenue="0.92"),
    row("W4", "YTO", village=V2, km="5", cost="1.00", revenue="1.00"),
]
SCOPE_CASES = {
    # scope: ({unit_key: (gross, cap, after_breakeven)}, {waybill: subsidy_fen})
    "company_county": (
        {
            "ZTO|150702": (15, 5, 5),
            "ZTO|150783": (15, 20, 15),
            "YTO|150702": (15, 8, 8),
            "YTO|150783": (10, 0, 0),
        },
        {"W1": 5, "W2": 15, "W3": 8, "W4": 0},
    ),
    "county": (
        # 150702: cap floor(100 × (2.00 − 1.87)) = 13 shared 15:15 → 6.5 each; the spare 分
        # goes to the smaller waybill_no. 150783: cap 20 shared 15:10 → 12 and 8.
        {"150702": (30, 13, 13), "150783": (25, 20, 20)},
        {"W1": 7, "W3": 6, "W2": 12, "W4": 8},
    ),
    "company_league": (
        # ZTO: cap 25 over 15:15 → 12.5 each → W1 13, W2 12. YTO: cap 8 over 15:10 → 4.8, 3.2
        {"ZTO": (30, 25, 25), "YTO": (25, 8, 8)},
        {"W1": 13, "W2": 12, "W3": 5, "W4": 3},
    ),
    "league": (
        {"150700": (55, 33, 33)},
        {"W1": 9, "W2": 9, "W3": 9, "W4": 6},
    ),
    "none": (
        {"150700": (55, None, 55)},
        {"W1": 15, "W2": 15, "W3": 15, "W4": 10},
    ),
}


@pytest.mark.parametrize("scope", list(SCOPE_CASES))
def test_breakeven_scopes(tmp_path, scope):
    units, subsidy = SCOPE_CASES[scope]
    result = settle_rows(tiny_config(tmp_path, scope=scope), BREAKEVEN_ROWS)
    got = {
        u["unit_key"]: (u["gross_fen"], u["cap_fen"], u["after_breakeven_fen"])
        for u in result.units.to_dicts()
    }
    assert got == units
    assert result.subsidy() == subsidy
    assert sorted(result.ledger["unit_key"].unique()) == sorted(units)


def test_revenue_falls_back_to_company_then_policy(tmp_path):
    cfg = tiny_config(tmp_path, scope="company_league")
    rows = [
        row("A", "ZTO", km="12", cost="1.00", revenue=None),  # ZTO default 0.85
        row("B", "YTO", km="12", cost="1.00", revenue=None),
    ]  # policy default 0.50
    result = settle_rows(cfg, rows)
    assert result.unit("ZTO")["cap_fen"] == 15
    assert result.unit("YTO")["cap_fen"] == 50
    sources = dict(zip(result.ledger["waybill_no"], result.ledger["revenue_source"], strict=True))
    assert sources == {"A": "company", "B": "policy"}


# --------------------------------------------------------------------------- budget (§4.4, §4.5)

# Units: ZTO|150702 two parcels of 15 (gross 30), YTO|150702 15, ZTO|150783 15; no break-even
# binding (cost 2.00, revenue 0). Requested 60 分.
BUDGET_ROWS = [
    row("A1", "ZTO", village=V1, km="12"),
    row("A2", "ZTO", village=V1B, km="12"),
    row("B1", "YTO", village=V1, km="12"),
    row("C1", "ZTO", village=V2, km="12"),
]


def test_budget_none_pays_in_full(tmp_path):
    result = settle_rows(tiny_config(tmp_path, rule="none", annual="0.01"), BUDGET_ROWS)
    assert result.budget["available_fen"] is None
    assert result.subsidy() == {"A1": 15, "A2": 15, "B1": 15, "C1": 15}


def test_budget_ytd_prorates_by_largest_remainder(tmp_path):
    # available 41 of 60: ZTO|150702 30×41/60 = 20.5, YTO|150702 10.25, ZTO|150783 10.25;
    # floors 20+10+10 = 40, the spare 分 to the largest remainder (ZTO|150702) → 21, 10, 10.
    # Inside ZTO|150702: 21 over 15:15 → 10.5 each; the spare 分 to the smaller waybill A1.
    result = settle_rows(tiny_config(tmp_path, rule="ytd", annual="0.41"), BUDGET_ROWS)
    units = {u["unit_key"]: u["subsidy_fen"] for u in result.units.to_dicts()}
    assert units == {"ZTO|150702": 21, "YTO|150702": 10, "ZTO|150783": 10}
    assert result.subsidy() == {"A1": 11, "A2": 10, "B1": 10, "C1": 10}
    assert (result.budget["available_fen"], result.budget["requested_fen"]) == (41, 60)


def test_budget_monthly_uses_k_twelfths_and_ties_go_to_smaller_unit_key(tmp_path):
    # annual 1.20 元 = 120 分; March is month 3 of a January budget year: floor(120×3/12) = 30.
    # 30 of 60: ZTO|150702 15; YTO|150702 7.5; ZTO|150783 7.5 → tie, YTO|150702 (smaller) gets 8.
    result = settle_rows(tiny_config(tmp_path, rule="monthly", annual="1.20"), BUDGET_ROWS)
    units = {u["unit_key"]: u["subsidy_fen"] for u in result.units.to_dicts()}
    assert units == {"ZTO|150702": 15, "YTO|150702": 8, "ZTO|150783": 7}
    assert result.budget["available_fen"] == 30


def test_budget_monthly_in_a_july_budget_year(tmp_path):
    # budget year from July: March is month 9 → floor(120×9/12) = 90 ≥ 60: paid in full.
    cfg = tiny_config(tmp_path, rule="monthly", annual="1.20", start_month=7)
    result = settle_rows(cfg, BUDGET_ROWS)
    assert (result.budget["budget_month_index"], result.budget["available_fen"]) == (9, 90)
    assert sum(result.subsidy().values()) == 60


def test_budget_exhausted_pays_nothing(tmp_path):
    result = settle_rows(tiny_config(tmp_path, rule="ytd", annual="0.00"), BUDGET_ROWS)
    assert result.subsidy() == {"A1": 0, "A2": 0, "B1": 0, "C1": 0}
    assert result.ledger.height == 4  # still accepted, settled at zero


def test_budget_applies_after_breakeven(tmp_path):
    # company_county on the break-even rows: after break-even 5+15+8+0 = 28; ytd budget 0.14
    # → 14 of 28: ZTO|150702 2.5, ZTO|150783 7.5, YTO|150702 4, YTO|150783 0 → floors 2+7+4 = 13;
    # remainders: ZTO|150702 and ZTO|150783 tie at 0.5 → the smaller key ZTO|150702 gets it.
    cfg = tiny_config(tmp_path, scope="company_county", rule="ytd", annual="0.14")
    result = settle_rows(cfg, BREAKEVEN_ROWS)
    units = {u["unit_key"]: u["subsidy_fen"] for u in result.units.to_dicts()}
    assert units == {"ZTO|150702": 3, "ZTO|150783": 7, "YTO|150702": 4, "YTO|150783": 0}


def test_rejects_keep_text_as_it_arrived_or_in_standard_form(tmp_path):
    # An early reject keeps the text as it arrived; a DUPLICATE parsed cleanly and shows its
    # values in standard form (the row itself is named by file and row number).
    cfg = tiny_config(tmp_path)
    rows = [
        row("D", at="2025/03/05T10:00", km="5.50", cost="2.00"),
        row("D", at="2025/03/06T10:00", km="7.50", cost="2.10"),
        row("B", km="-1.50"),
    ]
    got = {(r["waybill_no"], r["source_row"]): r for r in settle_rows(cfg, rows).rejects.to_dicts()}
    dup = got[("D", 2)]
    assert (dup["reason_code"], dup["delivered_at"], dup["distance_km"], dup["cost_yuan"]) == (
        "DUPLICATE",
        "2025-03-06 10:00:00",
        "7.5",
        "2.1",
    )
    assert dup["detail"] == "与 t.csv 第 2 行的运单号相同，该行已受理"
    bad = got[("B", 3)]
    assert (bad["reason_code"], bad["distance_km"], bad["cost_yuan"]) == (
        "BAD_DISTANCE",
        "-1.50",
        "2.00",
    )
