-- 40_units.sql — break-even units (SPEC §4.3).
--
-- purpose: group parcels into units by breakeven.scope and cap each unit's subsidy so that,
--          after subsidy, the unit's village delivery at most breaks even:
--          gross_fen = Σ rate_fen; cap_fen = floor(100 × max(0, Σ cost − Σ revenue));
--          after_breakeven_fen = min(gross_fen, cap_fen). Scope 'none': no cap (cap_fen NULL).
--          Revenue per parcel is the row's revenue_yuan, else the company's default, else the
--          policy's.
--          A supplementary run (补充结算) caps the unit over the whole month: its cost and
--          revenue include what the month's earlier runs settled (prior_units; shown in
--          prior_cost_yuan and prior_revenue_yuan, so each units row holds the figures its cap
--          was computed from), and what they already paid comes off:
--          after_breakeven_fen = min(gross_fen, cap_fen − prior_paid_fen).
-- inputs:  unit_rates, unit_map, company_dim, run_params, prior_units (empty unless a
--          supplementary run)
-- outputs: units_breakeven
-- grain:   one row per unit_key

CREATE OR REPLACE TEMP TABLE units_breakeven AS
WITH sums AS (
    SELECT
        CAST(m.unit_key AS VARCHAR)                AS unit_key,
        CASE WHEN r.scope IN ('company_county', 'company_league')
             THEN CAST(MIN(g.company) AS VARCHAR) END AS company,
        CASE WHEN r.scope IN ('company_county', 'county')
             THEN CAST(MIN(g.county_code) AS VARCHAR) END AS county_code,
        CAST(SUM(g.parcels) AS BIGINT)             AS parcels,
        CAST(SUM(g.parcels * g.rate_fen) AS BIGINT) AS gross_fen,
        SUM(g.cost_yuan)                           AS cost_yuan,
        SUM(g.revenue_logged_yuan
            + g.revenue_missing * COALESCE(c.default_revenue_yuan, r.default_revenue_yuan))
                                                   AS revenue_yuan,
        r.scope
    FROM unit_rates g
    JOIN unit_map m USING (company, county_code)
    JOIN company_dim c USING (company)
    CROSS JOIN run_params r
    GROUP BY m.unit_key, r.scope
),
capped AS (
    SELECT
        s.*,
        COALESCE(u.paid_fen, 0)                    AS prior_paid_fen,
        COALESCE(u.cost_yuan, 0)                   AS prior_cost_yuan,
        COALESCE(u.revenue_yuan, 0)                AS prior_revenue_yuan,
        CASE WHEN s.scope = 'none' THEN NULL
             ELSE CAST(FLOOR(100 * GREATEST(0, s.cost_yuan + COALESCE(u.cost_yuan, 0)
                                               - s.revenue_yuan - COALESCE(u.revenue_yuan, 0)))
                       AS BIGINT)
        END                                        AS cap_fen
    FROM sums s
    LEFT JOIN prior_units u USING (unit_key)
)
SELECT
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
    CASE WHEN cap_fen IS NULL THEN gross_fen
         ELSE LEAST(gross_fen, GREATEST(0, cap_fen - prior_paid_fen))
    END                                            AS after_breakeven_fen,
    -- what the month's earlier runs already paid beyond the cap the late parcels now imply
    -- (only a supplementary run can have any; it is reported, not clawed back)
    GREATEST(0, prior_paid_fen - COALESCE(cap_fen, prior_paid_fen)) AS breakeven_excess_fen
FROM capped;
