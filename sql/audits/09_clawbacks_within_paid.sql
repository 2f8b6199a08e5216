-- 09_clawbacks_within_paid.sql — SPEC §10: clawbacks never exceed what was paid.
-- question: which waybills were clawed back more than their subsidy_fen, or clawed back
--           without having been paid in the month and 盟市 the clawback names?
-- inputs:   clawbacks, settled_waybills
-- scope:    payments (settle verify)
-- returns:  one row per waybill: waybill_no, league_code, source_month, paid_fen, clawed_fen, problem
WITH clawed AS (
    SELECT waybill_no, MIN(league_code) AS league_code, MIN(source_month) AS source_month,
           COUNT(DISTINCT league_code || source_month) AS places,
           CAST(-SUM(amount_fen) AS BIGINT) AS clawed_fen
    FROM clawbacks GROUP BY waybill_no
)
SELECT c.waybill_no, c.league_code, c.source_month, s.subsidy_fen AS paid_fen, c.clawed_fen,
       CASE WHEN s.waybill_no IS NULL OR c.places > 1 THEN '追缴的运单不是该盟市该月份结算的运单'
            ELSE '追缴合计超过该运单的补贴' END AS problem
FROM clawed c
LEFT JOIN settled_waybills s
       ON s.waybill_no = c.waybill_no AND s.league_code = c.league_code
      AND s.month = c.source_month
WHERE s.waybill_no IS NULL OR c.places > 1 OR c.clawed_fen > s.subsidy_fen
