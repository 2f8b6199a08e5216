-- 04_budget.sql — SPEC §7.4: per 盟市 and budget year, Σ subsidy_fen ≤ the annual budget.
-- question: which 盟市 budget years paid more than their annual budget?
-- inputs:   runs, budgets
-- scope:    store (every current run of the budget year)
-- returns:  one row per breach: league_code, budget_year_start, paid_fen, annual_budget_fen, problem
WITH years AS (
    SELECT r.league_code,
           -- the first month of the budget year the run's month belongs to
           strftime(make_date(CAST(left(r.month, 4) AS INTEGER)
                              - CASE WHEN CAST(right(r.month, 2) AS INTEGER) < b.year_start_month
                                     THEN 1 ELSE 0 END, b.year_start_month, 1), '%Y-%m')
               AS budget_year_start,
           r.subsidy_fen, b.annual_budget_fen, b.budget_rule
    FROM runs r JOIN budgets b USING (league_code)
    WHERE r.status = 'current'
)
SELECT league_code, budget_year_start, SUM(subsidy_fen) AS paid_fen, MIN(annual_budget_fen) AS annual_budget_fen,
       '预算年度支付超过年度预算' AS problem
FROM years
WHERE budget_rule <> 'none'
GROUP BY league_code, budget_year_start
HAVING SUM(subsidy_fen) > MIN(annual_budget_fen)
