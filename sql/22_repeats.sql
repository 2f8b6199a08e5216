-- 22_repeats.sql — DUPLICATE and ALREADY_SETTLED (SPEC §4.1, the last two checks).
--
-- purpose: among rows that passed every earlier check, the earliest row of a waybill (smaller
--          delivered_at, then company, village_code, distance_km, cost_yuan) is kept and the
--          others are DUPLICATE; revenue, proof, source_file and source_row only break ties
--          between otherwise identical rows, so the accepted content never depends on file
--          order or split. A kept row whose waybill a current run of another 盟市-month already
--          paid is ALREADY_SETTLED. The detail names the kept row's file and line, or the
--          run that paid it, only when that row or run is the same company's: another company's
--          file, line, run and month are not the company's business (the statement and the
--          rejects list go to the company), so it says only that another company's row was kept
--          or another company was paid. `kept_company` (DUPLICATE: the kept row's company) lets
--          the run warn the office of waybills that several companies claim.
--          Only waybills that occur more than once need ranking: a hash aggregate on the
--          waybill's 64-bit hash finds the candidates, and just those rows are sorted.
-- inputs:  rows, file_dim, settled_elsewhere (waybills of this run already paid elsewhere, and to
--          which company)
-- outputs: late_rejects
-- grain:   one row per input row rejected as DUPLICATE or ALREADY_SETTLED

CREATE OR REPLACE TEMP TABLE late_rejects AS
WITH passing AS NOT MATERIALIZED (
    SELECT * FROM rows WHERE reason_code IS NULL
),
repeated AS (
    SELECT hash(waybill_no) AS h FROM passing GROUP BY h HAVING COUNT(*) > 1
),
ranked AS (
    SELECT
        p.*,
        ROW_NUMBER() OVER w                    AS waybill_rank,
        FIRST_VALUE(f.source_file) OVER w      AS first_source_file,
        FIRST_VALUE(CAST(p.company AS VARCHAR)) OVER w AS kept_company,
        -- the kept row's line as Excel or an editor shows it (header and title rows counted)
        FIRST_VALUE(p.source_row + f.header_line) OVER w AS first_source_line
    FROM passing p
    JOIN file_dim f USING (file_no)
    WHERE hash(p.waybill_no) IN (SELECT h FROM repeated)
    WINDOW w AS (
        PARTITION BY p.waybill_no
        ORDER BY p.delivered_at, CAST(p.company AS VARCHAR), CAST(p.village AS VARCHAR), p.distance_km,
                 p.cost_yuan, p.revenue_yuan NULLS FIRST, p.proof NULLS FIRST,
                 CAST(f.source_file AS VARCHAR), p.source_row
    )
),
duplicates AS (
    SELECT
        * EXCLUDE (waybill_rank, first_source_file, first_source_line),
        'DUPLICATE' AS reason_code_late,
        CASE WHEN kept_company = CAST(company AS VARCHAR)
             THEN '与 ' || first_source_file || ' 第 ' || first_source_line
                  || ' 行的运单号相同，该行已受理'
             ELSE '与另一企业提交的同一运单号重复（该企业的记录已受理）'
        END                                    AS detail_late
    FROM ranked
    WHERE waybill_rank > 1
),
settled AS (
    SELECT
        p.*,
        CAST(NULL AS VARCHAR) AS kept_company,
        'ALREADY_SETTLED' AS reason_code_late,
        CASE WHEN s.company = CAST(p.company AS VARCHAR)
             THEN '已在盟市 ' || s.league_code || ' ' || s.month || ' 的结算（批次 ' || s.run_id
                  || '）中结算'
             ELSE '该运单已由另一企业结算'
        END                                    AS detail_late
    FROM passing p
    JOIN settled_elsewhere s ON s.waybill_no = p.waybill_no
    WHERE NOT EXISTS (SELECT 1 FROM duplicates d
                      WHERE d.file_no = p.file_no AND d.source_row = p.source_row)
)
SELECT * EXCLUDE (reason_code, rejected, reason_code_late, detail_late),
       reason_code_late AS reason_code, detail_late AS detail
FROM (SELECT * FROM duplicates UNION ALL BY NAME SELECT * FROM settled);
