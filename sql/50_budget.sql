-- 50_budget.sql — the budget limit (SPEC §4.4).
--
-- purpose: how much this month may pay, and each unit's share of it.
--          ytd:     available = annual − paid in earlier months of the budget year
--          monthly: available = floor(annual × k / 12) − paid in earlier months, k = 1..12
--          none:    unlimited
--          It is also never more than the annual budget less what every other month of the
--          budget year was paid (so a re-run of an earlier month cannot break the year), and a
--          supplementary run subtracts what this month's earlier runs paid. Never below 0. When Σ after_breakeven_fen exceeds it, each unit gets
--          floor(after_breakeven_fen × available / Σ) and the leftover 分 go one each to the
--          largest remainders (ties: smaller unit_key). The factor is never above 1.
-- inputs:  units_breakeven, run_params (annual_budget_fen, budget_month_index),
--          earlier_paid (paid_before_fen, paid_other_fen, paid_in_month_fen: from the store)
-- outputs: budget (one row), units (one row per unit_key)
-- grain:   units: one row per unit_key

CREATE OR REPLACE TEMP TABLE budget AS
SELECT
    r.budget_rule,
    r.annual_budget_fen,
    r.budget_year_start,
    r.budget_month_index,
    e.paid_before_fen,
    e.paid_other_fen,
    e.paid_in_month_fen,
    CASE WHEN r.budget_rule IN ('ytd', 'monthly') THEN GREATEST(0, LEAST(
        CASE r.budget_rule
            WHEN 'ytd'     THEN r.annual_budget_fen - e.paid_before_fen
            WHEN 'monthly' THEN r.annual_budget_fen * r.budget_month_index // 12 - e.paid_before_fen
        END,
        r.annual_budget_fen - e.paid_other_fen
    ) - e.paid_in_month_fen) END                                 AS available_fen,
    CAST((SELECT COALESCE(SUM(after_breakeven_fen), 0) FROM units_breakeven) AS BIGINT)
                                                                 AS requested_fen
FROM run_params r, earlier_paid e;

CREATE OR REPLACE TEMP TABLE units AS
WITH shares AS (
    SELECT
        u.*,
        b.available_fen IS NOT NULL AND b.requested_fen > b.available_fen AS prorated,
        b.available_fen,
        b.requested_fen,
        CAST(u.after_breakeven_fen AS HUGEINT) * COALESCE(b.available_fen, 0) AS numerator
    FROM units_breakeven u, budget b
),
floored AS (
    SELECT
        *,
        CASE WHEN prorated THEN numerator // requested_fen ELSE after_breakeven_fen END AS base_fen,
        CASE WHEN prorated THEN numerator %  requested_fen ELSE 0 END                   AS remainder
    FROM shares
),
ranked AS (
    SELECT
        *,
        ROW_NUMBER() OVER (ORDER BY remainder DESC, unit_key)     AS remainder_rank,
        available_fen - SUM(base_fen) OVER ()                     AS leftover_fen
    FROM floored
)
SELECT
    r.run_id,
    unit_key,
    company,
    county_code,
    parcels,
    gross_fen,
    cost_yuan,
    revenue_yuan,
    prior_cost_yuan,
    prior_revenue_yuan,
    cap_fen,
    prior_paid_fen,
    after_breakeven_fen,
    breakeven_excess_fen,
    CAST(base_fen + CASE WHEN prorated AND remainder_rank <= leftover_fen THEN 1 ELSE 0 END
         AS BIGINT)                                               AS subsidy_fen
FROM ranked, run_params r;
