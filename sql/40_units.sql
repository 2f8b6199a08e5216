-- 40_units.sql — break-even units (SPEC §4.3).
--
-- purpose: group parcels into units by breakeven.scope and cap each unit's subsidy so that,
--          after subsidy, the unit's village delivery at most breaks even:
--          gross_fen = Σ rate_fen; cap_fen = floor(100 × max(0, Σ cost − Σ revenue));
--          after_breakeven_fen = min(gross_fen, cap_fen). Scope 'none': no cap (cap_fen NULL).
-- inputs:  parcels, run_params
-- outputs: units_breakeven
-- grain:   one row per unit_key

CREATE OR REPLACE TEMP TABLE units_breakeven AS
WITH sums AS (
    SELECT
        unit_key,
        CASE WHEN r.scope IN ('company_county', 'company_league') THEN MIN(p.company) END AS company,
        CASE WHEN r.scope IN ('company_county', 'county') THEN MIN(p.county_code) END     AS county_code,
        COUNT(*)                                   AS parcels,
        CAST(SUM(p.rate_fen) AS BIGINT)            AS gross_fen,
        SUM(p.cost_yuan)                           AS cost_yuan,
        SUM(p.revenue_used_yuan)                   AS revenue_yuan,
        r.scope
    FROM parcels p
    CROSS JOIN run_params r
    GROUP BY unit_key, r.scope
)
SELECT
    unit_key,
    company,
    county_code,
    parcels,
    gross_fen,
    cost_yuan,
    revenue_yuan,
    CASE WHEN scope = 'none' THEN NULL
         ELSE CAST(FLOOR(100 * GREATEST(0, cost_yuan - revenue_yuan)) AS BIGINT)
    END                                            AS cap_fen,
    CASE WHEN scope = 'none' THEN gross_fen
         ELSE LEAST(gross_fen, CAST(FLOOR(100 * GREATEST(0, cost_yuan - revenue_yuan)) AS BIGINT))
    END                                            AS after_breakeven_fen
FROM sums;
