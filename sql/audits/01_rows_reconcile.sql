-- 01_rows_reconcile.sql — SPEC §7.1: every input row is in exactly one of ledger and rejects.
-- question: which current runs do not account for every row they read, and which input rows
--           appear more than once (in the ledger, the rejects, or both)?
-- inputs:   runs, ledger, rejects
-- scope:    run (before publishing: the new run's rows)
-- returns:  one row per breach: run_id, source_file, source_row, problem
WITH counted AS (
    SELECT run_id, COUNT(*) AS n FROM (
        SELECT run_id FROM ledger UNION ALL SELECT run_id FROM rejects
    ) GROUP BY run_id
),
rows_in AS (
    SELECT r.run_id, NULL::VARCHAR AS source_file, NULL::BIGINT AS source_row,
           '批次读取 ' || r.rows_in || ' 行，但明细账与剔除清单合计 ' || COALESCE(c.n, 0) || ' 行' AS problem
    FROM runs r LEFT JOIN counted c USING (run_id)
    WHERE r.status = 'current' AND r.rows_in <> COALESCE(c.n, 0)
),
all_rows AS (
    SELECT run_id, source_file, source_row, hash(run_id, source_file, source_row) AS h FROM ledger
    UNION ALL
    SELECT run_id, source_file, source_row, hash(run_id, source_file, source_row) FROM rejects
),
-- the 64-bit hash finds the candidates cheaply; only they are compared in full
repeated AS (
    SELECT h FROM all_rows GROUP BY h HAVING COUNT(*) > 1
),
twice AS (
    SELECT run_id, source_file, source_row, '同一输入行出现 ' || COUNT(*) || ' 次' AS problem
    FROM all_rows
    WHERE h IN (SELECT h FROM repeated)
    GROUP BY run_id, source_file, source_row HAVING COUNT(*) > 1
)
SELECT * FROM rows_in UNION ALL SELECT * FROM twice
