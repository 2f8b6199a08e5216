-- 94_clawback.sql — checking a clawback (追缴) against what was paid (SPEC §10).
--
-- purpose: each line of the clawback list names a waybill paid in the sealed month and,
--          optionally, an amount in 元. A line is refused (problem set) when the waybill is
--          blank, named on an earlier line, not paid in that 盟市-month, when the amount is
--          not a positive number of whole 分, or when it exceeds what is left to recover:
--          left_fen = subsidy_fen paid − earlier clawbacks of the waybill. Without an amount,
--          everything left is recovered (a waybill with nothing left is refused).
-- inputs:  clawback_request (line, waybill_no, amount_text), clawback_params (league_code,
--          month), settled_waybills, clawbacks (earlier)
-- outputs: clawback_check
-- grain:   one row per line of the list

CREATE OR REPLACE TEMP TABLE clawback_check AS
WITH req AS (
    SELECT q.*,
           ROW_NUMBER() OVER (PARTITION BY q.waybill_no ORDER BY q.line) AS seen,
           TRY_CAST(NULLIF(trim(q.amount_text), '') AS DECIMAL(38, 6))   AS amount_yuan
    FROM clawback_request q
),
paid AS (
    SELECT s.waybill_no, s.company, s.run_id, CAST(s.subsidy_fen AS BIGINT) AS paid_fen
    FROM settled_waybills s
    JOIN clawback_params p ON s.league_code = p.league_code AND s.month = p.month
    WHERE s.waybill_no IN (SELECT waybill_no FROM req)
),
earlier AS (
    SELECT waybill_no, CAST(-SUM(amount_fen) AS BIGINT) AS clawed_fen
    FROM clawbacks
    WHERE waybill_no IN (SELECT waybill_no FROM req)
    GROUP BY waybill_no
),
joined AS (
    SELECT q.line, q.waybill_no, q.amount_text, q.amount_yuan, q.seen,
           p.company, p.run_id AS source_run_id, p.paid_fen,
           COALESCE(e.clawed_fen, 0)                               AS clawed_before_fen,
           p.paid_fen - COALESCE(e.clawed_fen, 0)                  AS left_fen
    FROM req q
    LEFT JOIN paid p USING (waybill_no)
    LEFT JOIN earlier e USING (waybill_no)
),
amounts AS (
    SELECT *,
           CASE WHEN amount_text IS NULL OR trim(amount_text) = '' THEN left_fen
                WHEN amount_yuan IS NOT NULL AND amount_yuan > 0
                     AND amount_yuan = ROUND(amount_yuan, 2)
                THEN CAST(amount_yuan * 100 AS BIGINT) END        AS amount_fen
    FROM joined
)
SELECT line, waybill_no, company, source_run_id, paid_fen, clawed_before_fen, left_fen,
       amount_text, amount_fen,
       CASE
           WHEN waybill_no IS NULL OR trim(waybill_no) = '' THEN 'NO_WAYBILL'
           WHEN seen > 1 THEN 'REPEATED'
           WHEN paid_fen IS NULL THEN 'NOT_PAID'
           WHEN amount_fen IS NULL THEN 'BAD_AMOUNT'
           WHEN left_fen <= 0 THEN 'NOTHING_LEFT'
           WHEN amount_fen > left_fen THEN 'TOO_MUCH'
       END                                                         AS problem
FROM amounts
ORDER BY line;
