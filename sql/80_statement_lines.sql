-- 80_statement_lines.sql — the lines of the monthly settlement statements (结算单).
--
-- purpose: per company × 旗县 of one 盟市-month's regular run: rows submitted, accepted and
--          rejected (by reason), 基础补贴 (gross), 盈亏平衡核减 (break-even reduction),
--          预算调减 (budget reduction) and 应付补贴 (payable), all in 分.
--          Reductions are computed per break-even unit (SPEC §4.3–4.4). Where a unit spans
--          several company × 旗县 lines (scopes county, company_league, league), the unit's
--          budget reduction is shared among its lines in proportion to their total reduction
--          (Σ rate_fen − Σ subsidy_fen), largest remainder first (ties: smaller line key), and
--          the rest of each line's reduction is break-even. So every line keeps
--          gross = break-even reduction + budget reduction + payable, and lines sum to units.
-- inputs:  month_ledger, month_rejects, month_units (the month's Parquet files),
--          villages (this 盟市's villages: a reject elsewhere has no county here)
-- outputs: statement_lines
-- grain:   one row per company (as written in the logs) × county_code (NULL: not identifiable)

CREATE OR REPLACE TEMP TABLE statement_lines AS
WITH parcel_lines AS (
    SELECT
        l.company,
        l.county_code,
        l.unit_key,
        COUNT(*)                                 AS accepted,
        CAST(SUM(l.rate_fen) AS BIGINT)          AS gross_fen,
        CAST(SUM(l.subsidy_fen) AS BIGINT)       AS subsidy_fen
    FROM month_ledger l
    GROUP BY ALL
),
shared AS (
    SELECT
        p.*,
        u.after_breakeven_fen - u.subsidy_fen                      AS unit_budget_fen,
        SUM(p.gross_fen - p.subsidy_fen) OVER (PARTITION BY p.unit_key) AS unit_reduction_fen,
        CAST(p.gross_fen - p.subsidy_fen AS HUGEINT) * (u.after_breakeven_fen - u.subsidy_fen)
                                                                   AS numerator
    FROM parcel_lines p
    JOIN month_units u USING (unit_key)
),
floored AS (
    SELECT
        *,
        CASE WHEN unit_reduction_fen = 0 THEN 0 ELSE numerator // unit_reduction_fen END AS base_fen,
        CASE WHEN unit_reduction_fen = 0 THEN 0 ELSE numerator %  unit_reduction_fen END AS remainder
    FROM shared
),
ranked AS (
    SELECT
        *,
        ROW_NUMBER() OVER (PARTITION BY unit_key ORDER BY remainder DESC, company, county_code)
                                                                   AS remainder_rank,
        unit_budget_fen - SUM(base_fen) OVER (PARTITION BY unit_key) AS leftover_fen
    FROM floored
),
accepted AS (
    SELECT
        company,
        county_code,
        CAST(SUM(accepted) AS BIGINT)                              AS accepted,
        CAST(SUM(gross_fen) AS BIGINT)                             AS gross_fen,
        CAST(SUM(base_fen + CASE WHEN remainder_rank <= leftover_fen THEN 1 ELSE 0 END) AS BIGINT)
                                                                   AS budget_reduction_fen,
        CAST(SUM(subsidy_fen) AS BIGINT)                           AS subsidy_fen
    FROM ranked
    GROUP BY company, county_code
),
rejected AS (
    SELECT
        COALESCE(r.company, '')                                    AS company,
        v.county_code,
        COUNT(*)                                                   AS rejected,
        histogram(r.reason_code)                                   AS rejected_by_reason
    FROM month_rejects r
    LEFT JOIN villages v ON v.code = r.village_code
    GROUP BY ALL
)
SELECT
    COALESCE(a.company, j.company)                                 AS company,
    COALESCE(a.county_code, j.county_code)                         AS county_code,
    COALESCE(a.accepted, 0) + COALESCE(j.rejected, 0)              AS submitted,
    COALESCE(a.accepted, 0)                                        AS accepted,
    COALESCE(j.rejected, 0)                                        AS rejected,
    j.rejected_by_reason,
    COALESCE(a.gross_fen, 0)                                       AS gross_fen,
    COALESCE(a.gross_fen - a.subsidy_fen - a.budget_reduction_fen, 0) AS breakeven_reduction_fen,
    COALESCE(a.budget_reduction_fen, 0)                            AS budget_reduction_fen,
    COALESCE(a.subsidy_fen, 0)                                     AS subsidy_fen
FROM accepted a
FULL JOIN rejected j
  ON j.company = a.company AND j.county_code IS NOT DISTINCT FROM a.county_code
ORDER BY company, county_code NULLS LAST;
