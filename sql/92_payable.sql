-- 92_payable.sql — what each company is due in each 盟市-month's statement (SPEC §10).
--
-- purpose: a month's statement pays a company its regular run's payable (应付补贴), plus the
--          supplementary runs (补充结算) booked in that month (runs.payable_in_month), plus the
--          clawbacks (追缴, negative) booked in that month: due_fen = regular_fen +
--          supplementary_fen + clawback_fen. This is the statement's 本期实付, and what a
--          payment batch pays for the month (sql/93_batch.sql). A store view, so that auditors
--          query it as `payable`; it reads the current runs' ledgers (settled_waybills).
-- inputs:  runs, settled_waybills, clawbacks
-- outputs: payable (view)
-- grain:   one row per league_code × month × company with anything settled or booked

CREATE OR REPLACE VIEW payable AS
WITH regular AS (
    SELECT r.league_code, r.month, s.company,
           COUNT(*)                                  AS parcels,
           CAST(SUM(s.subsidy_fen) AS BIGINT)        AS regular_fen
    FROM runs r JOIN settled_waybills s USING (run_id)
    WHERE r.status = 'current' AND r.kind = 'regular'
    GROUP BY ALL
),
supplements AS (
    SELECT r.league_code, r.payable_in_month AS month, s.company,
           CAST(SUM(s.subsidy_fen) AS BIGINT)        AS supplementary_fen
    FROM runs r JOIN settled_waybills s USING (run_id)
    WHERE r.status = 'current' AND r.kind = 'supplementary'
    GROUP BY ALL
),
clawed AS (
    SELECT league_code, booked_in_month AS month, company,
           CAST(SUM(amount_fen) AS BIGINT)           AS clawback_fen
    FROM clawbacks
    GROUP BY ALL
),
keys AS (
    SELECT league_code, month, company FROM regular
    UNION SELECT league_code, month, company FROM supplements
    UNION SELECT league_code, month, company FROM clawed
)
SELECT
    k.league_code,
    k.month,
    k.company,
    COALESCE(g.parcels, 0)                           AS parcels,
    COALESCE(g.regular_fen, 0)                       AS regular_fen,
    COALESCE(s.supplementary_fen, 0)                 AS supplementary_fen,
    COALESCE(c.clawback_fen, 0)                      AS clawback_fen,
    COALESCE(g.regular_fen, 0) + COALESCE(s.supplementary_fen, 0)
        + COALESCE(c.clawback_fen, 0)                AS due_fen
FROM keys k
LEFT JOIN regular g USING (league_code, month, company)
LEFT JOIN supplements s USING (league_code, month, company)
LEFT JOIN clawed c USING (league_code, month, company);
