-- 90_reconcile.sql — a courier company's claim against a settled 盟市-month, line by line.
--
-- purpose: say what became of every line of the claim file, so that the report's claimed total
--          is the file's: a line without 运单号 is NO_WAYBILL, a later line of a waybill claimed
--          on an earlier line REPEATED, an amount that is not a number BAD_AMOUNT; otherwise the
--          month's outcome for the waybill: PAID to this company, paid to another company
--          (OTHER_COMPANY), REJECTED (with reason_code; the company's own rejected rows only:
--          another company's reject of the same waybill is not its business) or in no log of
--          the month, or only in another company's rejects (NOT_SUBMITTED). Then every waybill paid to the company that no line claims
--          (NOT_CLAIMED). A waybill's payment and reject reason stand on its first line only,
--          so that paid amounts add up too. difference_fen = claimed_fen − paid_fen (a waybill
--          not paid: 0) on every line with an amount.
-- inputs:  claims (claim_line: the line as Excel or an editor shows it; waybill_no and
--          claimed_yuan as text, blank = NULL), ledger and rejects (the month's Parquet),
--          reconcile_params (company)
-- outputs: reconciliation (one row per claim line, then per waybill paid and not claimed),
--          reconciliation_summary (per status, and a total row with status NULL)

CREATE OR REPLACE TEMP TABLE reconciliation AS
WITH lines AS (
    SELECT
        claim_line,
        waybill_no,
        claimed_yuan                                   AS claimed_text,
        -- claimed amounts are exact decimals, rounded half up to 分
        CAST(ROUND(TRY_CAST(claimed_yuan AS DECIMAL(18, 6)) * 100) AS BIGINT) AS claimed_fen,
        ROW_NUMBER() OVER (PARTITION BY waybill_no ORDER BY claim_line) AS nth
    FROM claims
),
paid AS (
    SELECT waybill_no, company, CAST(subsidy_fen AS BIGINT) AS paid_fen FROM ledger
),
-- the claiming company's own files: every row of them that names a company names it
own_files AS (
    SELECT source_file
    FROM (
        SELECT source_file, CAST(company AS VARCHAR) AS company FROM ledger
        UNION ALL
        SELECT source_file, trim(CAST(company AS VARCHAR)) FROM rejects
        WHERE NULLIF(trim(CAST(company AS VARCHAR)), '') IS NOT NULL
    )
    GROUP BY source_file
    HAVING bool_and(company = (SELECT company FROM reconcile_params))
),
-- its own rejected rows only: a row naming it, or naming no company in one of its files (never
-- another company's reject reason)
rejected AS (
    SELECT waybill_no,
           arg_min(reason_code, source_file || ':' || lpad(CAST(source_row AS VARCHAR), 12, '0'))
               AS reason_code
    FROM rejects
    WHERE waybill_no IS NOT NULL
      AND (trim(CAST(company AS VARCHAR)) = (SELECT company FROM reconcile_params)
           OR (NULLIF(trim(CAST(company AS VARCHAR)), '') IS NULL
               AND source_file IN (SELECT source_file FROM own_files)))
    GROUP BY waybill_no
),
claimed AS (
    SELECT
        l.claim_line,
        l.waybill_no,
        CASE
            WHEN l.waybill_no IS NULL                               THEN 'NO_WAYBILL'
            WHEN l.nth > 1                                          THEN 'REPEATED'
            WHEN l.claimed_text IS NOT NULL AND l.claimed_fen IS NULL THEN 'BAD_AMOUNT'
            WHEN p.company = k.company                              THEN 'PAID'
            WHEN p.company IS NOT NULL                              THEN 'OTHER_COMPANY'
            WHEN r.reason_code IS NOT NULL                          THEN 'REJECTED'
            ELSE 'NOT_SUBMITTED'
        END                                                         AS status,
        CASE WHEN p.waybill_no IS NULL THEN r.reason_code END       AS reason_code,
        l.claimed_text,
        l.claimed_fen,
        CASE WHEN p.company = k.company THEN p.paid_fen END         AS paid_fen
    FROM lines l
    CROSS JOIN reconcile_params k
    -- the waybill's outcome, on its first line
    LEFT JOIN paid p     ON p.waybill_no = l.waybill_no AND l.nth = 1
    LEFT JOIN rejected r ON r.waybill_no = l.waybill_no AND l.nth = 1
),
unclaimed AS (
    SELECT
        CAST(NULL AS BIGINT) AS claim_line, p.waybill_no, 'NOT_CLAIMED' AS status,
        CAST(NULL AS VARCHAR) AS reason_code, CAST(NULL AS VARCHAR) AS claimed_text,
        CAST(NULL AS BIGINT) AS claimed_fen, p.paid_fen
    FROM paid p
    JOIN reconcile_params k ON p.company = k.company
    WHERE NOT EXISTS (SELECT 1 FROM claims c WHERE c.waybill_no = p.waybill_no)
)
SELECT
    *,
    claimed_fen - COALESCE(paid_fen, 0) AS difference_fen
FROM (SELECT * FROM claimed UNION ALL SELECT * FROM unclaimed)
ORDER BY claim_line NULLS LAST, waybill_no;

CREATE OR REPLACE TEMP TABLE reconciliation_summary AS
SELECT
    status,
    COUNT(*)                                                       AS lines,
    CAST(COALESCE(SUM(claimed_fen), 0) AS BIGINT)                  AS claimed_fen,
    CAST(COALESCE(SUM(paid_fen), 0) AS BIGINT)                     AS paid_fen,
    COUNT(*) FILTER (WHERE difference_fen <> 0)                    AS differing_lines,
    CAST(COALESCE(SUM(difference_fen), 0) AS BIGINT)               AS difference_fen
FROM reconciliation
GROUP BY GROUPING SETS ((status), ());
