-- 96_annual.sql — the annual statement's lines (年度结算表, SPEC §10).
--
-- purpose: per company and month of a 盟市's budget year: accepted parcels, the regular
--          payable, supplements and clawbacks booked in the month, the month's due (their sum,
--          sql/92_payable.sql), the payment batch that pays the month and its state, what of
--          it is paid (the due of a month whose batch is confirmed, 已拨付) and what is
--          outstanding (the rest). Every month of the year has a row for every company with
--          anything due in the year, so the statement reads month by month.
-- inputs:  payable, payment_months, payment_batches, annual_params (league_code, month: one
--          row per month of the budget year)
-- outputs: annual_lines
-- grain:   one row per company × month of the budget year

CREATE OR REPLACE TEMP TABLE annual_lines AS
WITH year_payable AS (
    SELECT p.* FROM payable p JOIN annual_params a USING (league_code, month)
),
companies AS (SELECT DISTINCT company FROM year_payable),
grid AS (SELECT a.league_code, a.month, c.company FROM annual_params a CROSS JOIN companies c)
SELECT
    g.company,
    g.month,
    COALESCE(p.parcels, 0)                          AS parcels,
    COALESCE(p.regular_fen, 0)                      AS regular_fen,
    COALESCE(p.supplementary_fen, 0)                AS supplementary_fen,
    COALESCE(p.clawback_fen, 0)                     AS clawback_fen,
    COALESCE(p.due_fen, 0)                          AS due_fen,
    m.batch_id,
    b.state                                         AS batch_state,
    b.paid_on,
    CASE WHEN b.state = 'paid' THEN COALESCE(p.due_fen, 0) ELSE 0 END AS paid_fen,
    CASE WHEN b.state = 'paid' THEN 0 ELSE COALESCE(p.due_fen, 0) END AS outstanding_fen
FROM grid g
LEFT JOIN year_payable p USING (league_code, month, company)
LEFT JOIN payment_months m USING (league_code, month)
LEFT JOIN payment_batches b USING (batch_id)
ORDER BY g.company, g.month;
