-- 25_rejects.sql — the rejects, as published (SPEC §6), and the rows of each input file.
--
-- purpose: one row per rejected input row with the reason code, its Chinese text and a detail
--          naming the column and value that failed, so a courier company's clerk can find and
--          fix the row: `source_line` is the row as Excel or an editor numbers it (source_row,
--          the 1-based data row, plus the line of the file's header). Values are text as they arrived; a DUPLICATE or ALREADY_SETTLED row
--          parsed cleanly, so its time and amounts are shown in standard form
--          ('2025-03-05 14:30:00', '12.5').
-- inputs:  rows, late_rejects, reason_codes, file_dim, run_params
-- outputs: rejects_out, file_counts
-- grain:   rejects_out: one row per rejected input row; file_counts: one row per input file

CREATE OR REPLACE TEMP MACRO plain_decimal(x) AS
    CASE WHEN CAST(x AS VARCHAR) LIKE '%.%'
         THEN rtrim(rtrim(CAST(x AS VARCHAR), '0'), '.') ELSE CAST(x AS VARCHAR) END;

CREATE OR REPLACE TEMP TABLE rejects_out AS
WITH early AS (
    SELECT file_no, source_row, waybill_no,
           NULLIF(f[1], '') AS company, NULLIF(f[2], '') AS delivered_at,
           NULLIF(f[3], '') AS village_code, NULLIF(f[4], '') AS distance_km,
           NULLIF(f[5], '') AS cost_yuan, NULLIF(f[6], '') AS revenue_yuan, proof,
           CAST(reason_code AS VARCHAR) AS reason_code, NULLIF(f[7], '') AS detail
    FROM (SELECT *, string_split(rejected, chr(31)) AS f FROM rows WHERE reason_code IS NOT NULL)
),
late AS (
    SELECT file_no, source_row, waybill_no, CAST(company AS VARCHAR) AS company,
           strftime(delivered_at, '%Y-%m-%d %H:%M:%S') AS delivered_at,
           CAST(village AS VARCHAR) AS village_code,
           plain_decimal(distance_km) AS distance_km, plain_decimal(cost_yuan) AS cost_yuan,
           plain_decimal(revenue_yuan) AS revenue_yuan, proof, reason_code, detail
    FROM late_rejects
)
SELECT
    CAST(f.source_file AS VARCHAR)     AS source_file,
    x.source_row,
    x.source_row + f.header_line       AS source_line,
    x.waybill_no,
    x.company,
    x.delivered_at,
    x.village_code,
    x.distance_km,
    x.cost_yuan,
    x.revenue_yuan,
    x.proof,
    x.reason_code,
    rc.reason,
    x.detail,
    r.run_id
FROM (SELECT * FROM early UNION ALL SELECT * FROM late) x
JOIN file_dim f USING (file_no)
JOIN reason_codes rc ON rc.reason_code = x.reason_code
CROSS JOIN run_params r
ORDER BY source_file, x.source_row;

-- Rows accepted and rejected per input file: SPEC §7.1 reconciles these with each file's rows.
CREATE OR REPLACE TEMP TABLE file_counts AS
WITH counted AS (
    SELECT file_no, COUNT(*) AS rows_in, COUNT(reason_code) AS early_rejected
    FROM rows GROUP BY file_no
),
late AS (
    SELECT file_no, COUNT(*) AS late_rejected FROM late_rejects GROUP BY file_no
)
SELECT
    CAST(f.source_file AS VARCHAR)                          AS source_file,
    c.rows_in,
    c.rows_in - c.early_rejected - COALESCE(l.late_rejected, 0) AS accepted,
    c.early_rejected + COALESCE(l.late_rejected, 0)         AS rejected
FROM counted c
JOIN file_dim f USING (file_no)
LEFT JOIN late l USING (file_no);
