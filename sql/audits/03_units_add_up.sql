-- 03_units_add_up.sql — SPEC §7.3: per unit, subsidy ≤ cap (unless scope none), and the units
--                       sum to the ledger exactly.
-- question: which break-even units disagree with their parcels or exceed their cap?
--           (a supplementary run may pay at most the cap less what the month already paid;
--           an excess paid earlier is reported in breakeven_excess_fen, not here)
-- inputs:   ledger, units, runs
-- scope:    run (before publishing: the new run's units)
-- returns:  one row per breaching unit: run_id, unit_key, problem
WITH sums AS (
    SELECT run_id, unit_key, COUNT(*) AS parcels, SUM(rate_fen) AS gross_fen,
           SUM(subsidy_fen) AS subsidy_fen
    FROM ledger GROUP BY ALL
),
unit_runs AS (
    SELECT u.* FROM units u WHERE u.run_id IN (SELECT run_id FROM runs WHERE status = 'current')
)
SELECT COALESCE(u.run_id, s.run_id) AS run_id, COALESCE(u.unit_key, s.unit_key) AS unit_key,
       CASE
           WHEN u.unit_key IS NULL THEN '明细账中的结算单元不在 units 中'
           WHEN s.unit_key IS NULL THEN 'units 中的结算单元没有明细'
           WHEN u.parcels <> s.parcels THEN '件数与明细不符'
           WHEN u.gross_fen <> s.gross_fen THEN '基础补贴与明细费率合计不符'
           WHEN u.subsidy_fen <> s.subsidy_fen THEN '补贴与明细合计不符'
           WHEN u.subsidy_fen > u.after_breakeven_fen THEN '补贴超过盈亏平衡后金额'
           WHEN u.cap_fen IS NOT NULL AND u.subsidy_fen > GREATEST(0, u.cap_fen - u.prior_paid_fen)
                THEN '补贴超过盈亏平衡上限'
       END AS problem
FROM unit_runs u
FULL JOIN sums s ON s.run_id = u.run_id AND s.unit_key = u.unit_key
WHERE u.unit_key IS NULL OR s.unit_key IS NULL OR u.parcels <> s.parcels
   OR u.gross_fen <> s.gross_fen OR u.subsidy_fen <> s.subsidy_fen
   OR u.subsidy_fen > u.after_breakeven_fen
   OR (u.cap_fen IS NOT NULL AND u.subsidy_fen > GREATEST(0, u.cap_fen - u.prior_paid_fen))
