-- 08_payments_match_statements.sql — SPEC §10: a batch pays what its months' sealed statements say.
-- question: which payment batch lines or months do not equal their sealed months' payable
--           (statement totals plus adjustments booked in them), carry forward wrongly, pay a
--           negative amount, or pay a month that is not sealed?
-- inputs:   payment_batches, payment_lines, payment_months, payable, seals
-- scope:    payments (settle verify)
-- returns:  one row per breach: batch_id, company, month, expected_fen, recorded_fen, problem
WITH batch_months AS (
    SELECT b.batch_id, b.league_code, b.created_at, m.month
    FROM payment_batches b JOIN payment_months m USING (batch_id)
),
line_due AS (
    SELECT bm.batch_id, p.company, CAST(SUM(p.due_fen) AS BIGINT) AS due_fen
    FROM batch_months bm JOIN payable p USING (league_code, month)
    GROUP BY ALL
),
lines AS (
    SELECT l.*, b.league_code, b.created_at,
           LAG(l.carried_forward_fen, 1, 0) OVER (
               PARTITION BY b.league_code, l.company ORDER BY b.created_at, b.batch_id
           ) AS previous_carry_fen
    FROM payment_lines l JOIN payment_batches b USING (batch_id)
)
SELECT l.batch_id, l.company, NULL AS month, COALESCE(d.due_fen, 0) AS expected_fen,
       l.due_fen AS recorded_fen, '拨付行的本批应付与所列月份结算单的本期实付合计不符' AS problem
FROM lines l LEFT JOIN line_due d USING (batch_id, company)
WHERE l.due_fen <> COALESCE(d.due_fen, 0)
UNION ALL
SELECT d.batch_id, d.company, NULL, d.due_fen, NULL, '所列月份有应付款的企业不在拨付批次中'
FROM line_due d ANTI JOIN payment_lines l USING (batch_id, company)
UNION ALL
SELECT batch_id, company, NULL, previous_carry_fen, carried_in_fen,
       '上批结转与该企业上一批次的结转下批不符'
FROM lines WHERE carried_in_fen <> previous_carry_fen
UNION ALL
SELECT batch_id, company, NULL, GREATEST(0, due_fen + carried_in_fen), amount_fen,
       '拨付金额应为 max(0, 本批应付 + 上批结转)'
FROM lines WHERE amount_fen <> GREATEST(0, due_fen + carried_in_fen)
UNION ALL
SELECT batch_id, company, NULL, LEAST(0, due_fen + carried_in_fen), carried_forward_fen,
       '结转下批应为 min(0, 本批应付 + 上批结转)'
FROM lines WHERE carried_forward_fen <> LEAST(0, due_fen + carried_in_fen)
UNION ALL
SELECT m.batch_id, NULL, m.month, CAST(COALESCE(SUM(p.due_fen), 0) AS BIGINT), MIN(m.due_fen),
       '拨付月份记录的应付与该月结算单的本期实付合计不符'
FROM payment_months m LEFT JOIN payable p USING (league_code, month)
GROUP BY m.batch_id, m.month
HAVING COALESCE(SUM(p.due_fen), 0) <> MIN(m.due_fen)
UNION ALL
SELECT m.batch_id, NULL, m.month, NULL::BIGINT, NULL::BIGINT, '拨付的月份未封存'
FROM payment_months m ANTI JOIN seals s USING (league_code, month)
UNION ALL
SELECT b.batch_id, NULL, NULL, CAST(COALESCE(SUM(l.amount_fen), 0) AS BIGINT), MIN(b.amount_fen),
       '批次拨付合计与各行之和不符'
FROM payment_batches b LEFT JOIN payment_lines l USING (batch_id)
GROUP BY b.batch_id
HAVING COALESCE(SUM(l.amount_fen), 0) <> MIN(b.amount_fen)
