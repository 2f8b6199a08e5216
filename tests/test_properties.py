"""SPEC §7 invariants 1, 2, 3, 4 and 6 as properties over generated logs (hypothesis)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import polars as pl
from conftest import (
    V1,
    V1B,
    V2,
    V_BORDER,
    V_OTHER_LEAGUE,
    V_OVERRIDE,
    V_URBAN,
    frame,
    make_config,
    policy_text,
    settle_rows,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settlement.config import load_config

CONTENT = [
    "waybill_no",
    "company",
    "village_code",
    "county_code",
    "delivered_at",
    "distance_km",
    "cost_yuan",
    "revenue_yuan",
    "area_class",
    "policy_version",
    "rate_fen",
    "unit_key",
    "subsidy_fen",
]


@functools.cache
def config_for(scope: str, rule: str, annual: str, tiers: bool, share: str):
    root = Path(tempfile.mkdtemp(prefix="settle-prop-"))
    return load_config(
        make_config(
            root, policy_text(scope=scope, rule=rule, annual=annual, tiers=tiers, share=share)
        )
    )


policies = st.tuples(
    st.sampled_from(["company_county", "county", "company_league", "league", "none"]),
    st.sampled_from(["ytd", "monthly", "none"]),
    st.sampled_from(["0.00", "0.07", "0.33", "1.00", "12.00"]),
    st.booleans(),
    st.sampled_from(["0.5", "0.12", "1"]),
)

log_rows = st.fixed_dictionaries(
    {
        "waybill_no": st.sampled_from([f"W{i}" for i in range(12)] + [" W1", ""]),
        "company": st.sampled_from(["ZTO", "ZTO", "YTO", "YTO", "XX"]),
        "delivered_at": st.sampled_from(
            [
                "2025-03-01 00:00",
                "2025-03-05 10:00",
                "2025-03-15 23:59:59",
                "2025-03-16 00:00",
                "2025/03/31 23:59",
                "2025-02-28 12:00",
                "2025-04-01 00:00",
                "2025-03-40 10:00",
            ]
        ),
        "village_code": st.sampled_from(
            [
                V1,
                V1,
                V1B,
                V2,
                V2,
                V_BORDER,
                V_OVERRIDE,
                V_URBAN,
                V_OTHER_LEAGUE,
                "150702999999",
                "x",
            ]
        ),
        "distance_km": st.sampled_from(
            ["0", "3.5", "9.999999", "10", "42", "499.9", "-1", "501", "?"]
        ),
        "cost_yuan": st.sampled_from(
            ["0", "0.15", "0.58", "0.75", "1.00", "2.35", "19.99", "-1", "25"]
        ),
        "revenue_yuan": st.sampled_from([None, "0", "0.12", "0.85", "1.90", "3.00", "-0.5", "abc"]),
        "proof": st.sampled_from([None, "签名", "取件码"]),
    }
)


def check_invariants(result, n_rows: int, scope: str) -> None:
    ledger, rejects, units = result.ledger, result.rejects, result.units
    # 1. every input row is in exactly one of ledger and rejects
    seen = pl.concat(
        [ledger.select("source_file", "source_row"), rejects.select("source_file", "source_row")]
    )
    assert seen.height == n_rows
    assert seen.unique().height == n_rows
    # 2. 0 ≤ subsidy_fen ≤ rate_fen ≤ 30
    assert (
        ledger.filter(
            (pl.col("subsidy_fen") < 0)
            | (pl.col("subsidy_fen") > pl.col("rate_fen"))
            | (pl.col("rate_fen") > 30)
        ).height
        == 0
    )
    # 3. per unit: subsidy ≤ cap (unless scope none); units sum to the ledger exactly
    sums = ledger.group_by("unit_key").agg(
        pl.col("subsidy_fen").sum().alias("s"),
        pl.col("rate_fen").sum().alias("r"),
        pl.len().alias("n"),
    )
    joined = units.join(sums, on="unit_key", how="full", coalesce=True)
    assert joined.height == units.height
    assert (joined["subsidy_fen"] == joined["s"]).all()
    assert (joined["gross_fen"] == joined["r"]).all()
    assert (joined["parcels"] == joined["n"]).all()
    if scope != "none":
        assert (units["subsidy_fen"] <= units["cap_fen"]).all()
    assert (units["subsidy_fen"] <= units["after_breakeven_fen"]).all()
    # 4. within the budget
    available = result.budget["available_fen"]
    if available is not None:
        assert ledger["subsidy_fen"].sum() <= available
        assert ledger["subsidy_fen"].sum() <= result.budget["annual_budget_fen"]
    # no waybill twice in the ledger
    assert ledger["waybill_no"].n_unique() == ledger.height


def content(ledger: pl.DataFrame) -> pl.DataFrame:
    return ledger.select(CONTENT).sort("waybill_no")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=policies, rows=st.lists(log_rows, min_size=1, max_size=40), data=st.data())
def test_invariants_and_order_independence(policy, rows, data):
    cfg = config_for(*policy)
    result = settle_rows(cfg, rows)
    check_invariants(result, len(rows), policy[0])

    # 6. the same rows shuffled and split into two files settle to the same ledger content
    order = data.draw(st.permutations(range(len(rows))))
    cut = data.draw(st.integers(0, len(rows)))
    shuffled = [rows[i] for i in order]
    again = settle_rows(
        cfg, pl.concat([frame(shuffled[:cut], "part-b.csv"), frame(shuffled[cut:], "part-a.csv")])
    )
    check_invariants(again, len(rows), policy[0])
    assert content(again.ledger).equals(content(result.ledger))
    assert again.units.equals(result.units)
    assert sorted(again.rejects["reason_code"]) == sorted(result.rejects["reason_code"])
