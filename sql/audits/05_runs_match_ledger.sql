-- 05_runs_match_ledger.sql — the store's run totals and settled waybills agree with the Parquet.
-- question: which current runs record totals or paid waybills their ledger does not show?
-- inputs:   runs, ledger, settled_waybills
-- scope:    run (before publishing: the new run)
-- returns:  one row per breach: run_id, problem
WITH sums AS (
    SELECT run_id, COUNT(*) AS parcels, SUM(subsidy_fen) AS subsidy_fen, SUM(rate_fen) AS gross_fen
    FROM ledger GROUP BY run_id
),
paid AS (
    SELECT run_id, COUNT(*) AS parcels, SUM(subsidy_fen) AS subsidy_fen
    FROM settled_waybills GROUP BY run_id
)
SELECT r.run_id,
       CASE WHEN s.run_id IS NULL AND r.parcels > 0 THEN '批次的明细账文件缺失'
            WHEN r.parcels <> COALESCE(s.parcels, 0) THEN '批次记录的受理件数与明细账不符'
            WHEN r.subsidy_fen <> COALESCE(s.subsidy_fen, 0) THEN '批次记录的补贴与明细账不符'
            WHEN r.gross_fen <> COALESCE(s.gross_fen, 0) THEN '批次记录的基础补贴与明细账不符'
            ELSE '结算库中已付运单与明细账不符' END AS problem
FROM runs r
LEFT JOIN sums s USING (run_id)
LEFT JOIN paid p USING (run_id)
WHERE r.status = 'current'
  AND (r.parcels <> COALESCE(s.parcels, 0) OR r.subsidy_fen <> COALESCE(s.subsidy_fen, 0)
       OR r.gross_fen <> COALESCE(s.gross_fen, 0)
       OR COALESCE(p.parcels, 0) <> COALESCE(s.parcels, 0)
       OR COALESCE(p.subsidy_fen, 0) <> COALESCE(s.subsidy_fen, 0))
