-- 07_waybill_paid_once.sql — SPEC §7.7: no waybill is paid twice, across files, companies or months.
-- question: which waybills of the audited ledger appear more than once among the current runs'
--           paid waybills?
-- inputs:   ledger, settled_waybills
-- scope:    run (before publishing: the new run's waybills, against every current run's)
-- returns:  one row per waybill: waybill_no, times, runs, problem
-- A waybill's 64-bit hash finds the few candidates cheaply: those repeated within the audited
-- ledger, and those the other current runs also paid; only they are grouped by text.
WITH audited AS (
    SELECT hash(waybill_no) AS h FROM ledger
),
candidates AS (
    SELECT h FROM audited GROUP BY h HAVING COUNT(*) > 1
    UNION
    SELECT hash(s.waybill_no) FROM settled_waybills s
    WHERE s.run_id NOT IN (SELECT DISTINCT run_id FROM ledger)
      AND hash(s.waybill_no) IN (SELECT h FROM audited)
)
SELECT waybill_no, COUNT(*) AS times, string_agg(DISTINCT run_id, ', ') AS runs,
       '运单被结算 ' || COUNT(*) || ' 次' AS problem
FROM settled_waybills
WHERE hash(waybill_no) IN (SELECT h FROM candidates)
GROUP BY waybill_no
HAVING COUNT(*) > 1
