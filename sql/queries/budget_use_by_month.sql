-- question: 某盟市某预算年度逐月的支付、累计使用和预算余额（元）
-- params:   league (league)  盟市代码
--           year   (year)    预算年度起始年份，如 2025
-- columns:  month, kind, run_id, parcels, paid_yuan, cumulative_yuan, budget_left_yuan
WITH y AS (
    SELECT b.*, make_date(CAST($year AS INTEGER), b.year_start_month, 1) AS start_day
    FROM budgets b WHERE league_code = $league
),
paid AS (
    SELECT r.month, r.kind, r.run_id, r.parcels, r.subsidy_fen, y.annual_budget_fen, r.finished_at
    FROM runs r, y
    WHERE r.league_code = $league AND r.status = 'current'
      AND r.month >= strftime(y.start_day, '%Y-%m')
      AND r.month < strftime(y.start_day + INTERVAL 12 MONTH, '%Y-%m')
)
SELECT month, kind, run_id, parcels, subsidy_fen * 0.01 AS paid_yuan,
       SUM(subsidy_fen) OVER (ORDER BY month, finished_at) * 0.01 AS cumulative_yuan,
       (annual_budget_fen - SUM(subsidy_fen) OVER (ORDER BY month, finished_at)) * 0.01 AS budget_left_yuan
FROM paid
ORDER BY month, finished_at
