-- 07_waybill_paid_once.sql — SPEC §7.7: no waybill is paid twice, across files, companies or months.
-- question: which waybills appear more than once in the current ledgers?
-- inputs:   ledger
-- returns:  one row per waybill: waybill_no, times, runs, problem
-- A waybill's 64-bit hash finds the few candidates cheaply; only they are grouped by text.
WITH repeated AS (
    SELECT hash(waybill_no) AS h FROM ledger GROUP BY h HAVING COUNT(*) > 1
)
SELECT waybill_no, COUNT(*) AS times, string_agg(DISTINCT run_id, ', ') AS runs,
       '运单被结算 ' || COUNT(*) || ' 次' AS problem
FROM ledger
WHERE hash(waybill_no) IN (SELECT h FROM repeated)
GROUP BY waybill_no
HAVING COUNT(*) > 1
