-- 93_batch.sql — the lines of a payment batch (拨付清单, SPEC §10).
--
-- purpose: per company, what a batch pays for the chosen sealed months of one 盟市:
--          due_fen = Σ the months' payable (sql/92_payable.sql: each month's statement total,
--          supplements and clawbacks booked in it included); carried_in_fen = what the
--          company's previous batch in this 盟市 could not recover (≤ 0); a batch never pays a
--          negative amount, so amount_fen = max(0, due_fen + carried_in_fen) and the rest,
--          carried_forward_fen = min(0, due_fen + carried_in_fen), is recovered from the next
--          batch. A company with a carry and nothing due in these months still gets a line
--          (amount 0), so the carry stays visible and is passed on.
-- inputs:  payable, batch_params (league_code, month: one row per month of the batch),
--          payment_batches, payment_lines (earlier batches)
-- outputs: batch_lines
-- grain:   one row per company

CREATE OR REPLACE TEMP TABLE batch_lines AS
WITH due AS (
    SELECT p.company,
           string_agg(p.month, ',' ORDER BY p.month)  AS months,
           CAST(SUM(p.due_fen) AS BIGINT)             AS due_fen
    FROM payable p
    JOIN batch_params b USING (league_code, month)
    GROUP BY p.company
),
previous AS (
    -- the company's latest line in this 盟市: its carried_forward_fen is the carry now
    SELECT l.company,
           arg_max(l.carried_forward_fen, (b.created_at, b.batch_id)) AS carried_in_fen
    FROM payment_lines l
    JOIN payment_batches b USING (batch_id)
    WHERE b.league_code = (SELECT MIN(league_code) FROM batch_params)
    GROUP BY l.company
),
lines AS (
    SELECT COALESCE(d.company, p.company)           AS company,
           COALESCE(d.months, '')                   AS months,
           COALESCE(d.due_fen, 0)                   AS due_fen,
           COALESCE(p.carried_in_fen, 0)            AS carried_in_fen
    FROM due d
    FULL JOIN (SELECT * FROM previous WHERE carried_in_fen < 0) p USING (company)
)
SELECT company, months, due_fen, carried_in_fen,
       GREATEST(0, due_fen + carried_in_fen)        AS amount_fen,
       LEAST(0, due_fen + carried_in_fen)           AS carried_forward_fen
FROM lines
ORDER BY company;
