-- 25_rejects.sql — the rejects, as published (SPEC §6).
--
-- purpose: one row per rejected input row, keeping the values as they arrived (text), with the
--          reason code, its Chinese text and a detail naming the column and value that failed,
--          so a courier company's clerk can find and fix the row.
-- inputs:  checked, reason_codes, run_params
-- outputs: rejects_out, file_counts
-- grain:   rejects_out: one row per rejected input row; file_counts: one row per input file

CREATE OR REPLACE TEMP TABLE rejects_out AS
SELECT
    c.source_file,
    c.source_row,
    c.waybill_no,
    c.company,
    c.delivered_at_text                                    AS delivered_at,
    c.village_code,
    c.distance_text                                        AS distance_km,
    c.cost_text                                            AS cost_yuan,
    c.revenue_text                                         AS revenue_yuan,
    c.proof,
    c.reason_code,
    rc.reason,
    CASE c.reason_code
        WHEN 'MALFORMED'       THEN c.malformed_detail
        WHEN 'UNKNOWN_COMPANY' THEN '企业编码“' || left(c.company, 40) || '”未在 companies.toml 中登记'
        WHEN 'UNKNOWN_VILLAGE' THEN '嘎查村代码 ' || c.village_code || ' 不在2023年统计用区划代码中'
        WHEN 'WRONG_LEAGUE'    THEN '嘎查村 ' || c.village_code || ' 属于盟市 ' || c.village_league_code
                                    || '，本次结算盟市为 ' || r.league_code
        WHEN 'NOT_RURAL'       THEN '城乡分类代码 ' || c.urban_rural_code || ' 不在补贴范围（'
                                    || r.eligible_codes || '）内'
        WHEN 'OUTSIDE_PERIOD'  THEN '签收时间 ' || strftime(c.delivered_at, '%Y-%m-%d %H:%M:%S')
                                    || ' 不在结算月份 ' || strftime(r.month_start, '%Y-%m') || ' 内'
        WHEN 'NO_POLICY'       THEN strftime(c.delivered_at, '%Y-%m-%d') || ' 没有有效的政策版本'
        WHEN 'BAD_DISTANCE'    THEN '派送距离 ' || c.distance_text || ' 公里，应在 0 至 '
                                    || r.max_distance_text || ' 公里之间'
        WHEN 'BAD_COST'        THEN CASE WHEN c.revenue_yuan < 0
                                         THEN '派费收入 ' || c.revenue_text || ' 元为负数'
                                         ELSE '派送成本 ' || c.cost_text || ' 元，应在 0 至 '
                                              || r.max_cost_text || ' 元之间'
                                    END
        WHEN 'NO_PROOF'        THEN '政策要求妥投凭证，签收方式(proof)为空'
        WHEN 'DUPLICATE'       THEN '与 ' || c.first_source_file || ' 第 ' || c.first_source_row
                                    || ' 行的运单号相同，该行已受理'
        WHEN 'ALREADY_SETTLED' THEN '已在盟市 ' || c.settled_league_code || ' ' || c.settled_month
                                    || ' 的结算（批次 ' || c.settled_run_id || '）中结算'
    END                                                    AS detail,
    r.run_id
FROM checked c
JOIN reason_codes rc ON rc.reason_code = c.reason_code
CROSS JOIN run_params r
WHERE c.reason_code IS NOT NULL
ORDER BY c.source_file, c.source_row;

-- Rows accepted and rejected per input file: SPEC §7.1 reconciles these with each file's rows.
CREATE OR REPLACE TEMP TABLE file_counts AS
SELECT
    source_file,
    COUNT(*)                                     AS rows_in,
    COUNT(*) FILTER (WHERE reason_code IS NULL)  AS accepted,
    COUNT(*) FILTER (WHERE reason_code IS NOT NULL) AS rejected
FROM checked
GROUP BY source_file;
