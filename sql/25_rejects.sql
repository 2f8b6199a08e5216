-- 25_rejects.sql — the rejects, as published (SPEC §6), and the rows of each input file.
--
-- purpose: one row per rejected input row with the reason code, its Chinese text and a detail
--          naming the column and value that failed, so a courier company's clerk can find and
--          fix the row: `source_line` is the row as Excel or an editor numbers it (source_row,
--          the 1-based data row, plus the line of the file's header). Values are text as they arrived; a DUPLICATE or ALREADY_SETTLED row
--          parsed cleanly, so its time and amounts are shown in standard form
--          ('2025-03-05 14:30:00', '12.5').
-- inputs:  rows, late_rejects, reason_codes, file_dim, run_params, village_dim, company_hint
-- outputs: rejects_out, file_counts
-- grain:   rejects_out: one row per rejected input row; file_counts: one row per input file

CREATE OR REPLACE TEMP MACRO plain_decimal(x) AS
    CASE WHEN CAST(x AS VARCHAR) LIKE '%.%'
         THEN rtrim(rtrim(CAST(x AS VARCHAR), '0'), '.') ELSE CAST(x AS VARCHAR) END;

CREATE OR REPLACE TEMP TABLE rejects_out AS
WITH unpacked AS (
    SELECT
        file_no, source_row, waybill_no, village, delivered_at AS delivered, revenue_yuan AS revenue,
        -- a registered company or village was not packed: its text is its code
        COALESCE(NULLIF(f[1], ''), CAST(company AS VARCHAR)) AS company,
        NULLIF(f[2], '') AS delivered_at,
        COALESCE(NULLIF(f[3], ''), CAST(village AS VARCHAR)) AS village_code,
        NULLIF(f[4], '') AS distance_km, NULLIF(f[5], '') AS cost_yuan,
        NULLIF(f[6], '') AS revenue_yuan, proof,
        CAST(reason_code AS VARCHAR) AS reason_code, NULLIF(f[7], '') AS malformed_detail
    FROM (SELECT *, string_split(rejected, chr(31)) AS f FROM rows WHERE reason_code IS NOT NULL)
),
early AS (
    SELECT
        k.file_no, k.source_row, k.waybill_no, k.company, k.delivered_at, k.village_code,
        k.distance_km, k.cost_yuan, k.revenue_yuan, k.proof, k.reason_code,
        -- the detail (SPEC §4.1): the column and value that failed, and what was expected
        CASE k.reason_code
            WHEN 'MALFORMED'       THEN k.malformed_detail
            WHEN 'UNKNOWN_COMPANY' THEN '企业编码“' || left(k.company, 40) || '”未在 companies.toml 中登记'
                                        || COALESCE('（是否为 ' || h.code || '？）', '')
            WHEN 'UNKNOWN_VILLAGE' THEN '嘎查村代码 ' || k.village_code || ' 不在2023年统计用区划代码中'
            WHEN 'WRONG_LEAGUE'    THEN '嘎查村 ' || k.village_code || ' 属于盟市 '
                                        || v.league_code || '，本次结算盟市为 ' || r.league_code
            WHEN 'NOT_RURAL'       THEN '城乡分类代码 ' || v.urban_rural_code || ' 不在补贴范围（'
                                        || r.eligible_codes || '）内'
            WHEN 'OUTSIDE_PERIOD'  THEN '签收时间 ' || strftime(k.delivered, '%Y-%m-%d %H:%M:%S')
                                        || ' 不在结算月份 ' || strftime(r.month_start, '%Y-%m') || ' 内'
            WHEN 'NO_POLICY'       THEN strftime(k.delivered, '%Y-%m-%d') || ' 没有有效的政策版本'
            WHEN 'BAD_DISTANCE'    THEN '派送距离 ' || k.distance_km || ' 公里，应在 0 至 '
                                        || r.max_distance_text || ' 公里之间'
            WHEN 'BAD_COST'        THEN CASE WHEN k.revenue < 0
                                             THEN '派费收入 ' || k.revenue_yuan || ' 元为负数'
                                             ELSE '派送成本 ' || k.cost_yuan || ' 元，应在 0 至 '
                                                  || r.max_cost_text || ' 元之间'
                                        END
            WHEN 'NO_PROOF'        THEN '政策要求妥投凭证，签收方式(proof)为空'
        END AS detail
    FROM unpacked k
    CROSS JOIN run_params r
    LEFT JOIN village_dim v ON v.village = k.village
    -- what an unregistered company text most likely meant (the key is NULL for the others)
    LEFT JOIN company_hint h
        ON h.hint_key = CASE WHEN k.reason_code = 'UNKNOWN_COMPANY' THEN upper(k.company) END
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
-- by file name, then row: the file ENUM is in name order, so its integer key sorts as the names do
ORDER BY f.source_file, x.source_row;

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
