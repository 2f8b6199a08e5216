-- 07_waybill_paid_once.sql — SPEC §7.7: no waybill is paid twice, across files, companies or months.
-- question: which waybills appear more than once in the current ledgers?
-- inputs:   ledger
-- returns:  one row per waybill: waybill_no, times, runs, problem
SELECT waybill_no, COUNT(*) AS times, string_agg(DISTINCT run_id, ', ') AS runs,
       '运单被结算 ' || COUNT(*) || ' 次' AS problem
FROM ledger
GROUP BY waybill_no
HAVING COUNT(*) > 1
