-- 10_parse.sql — type every raw input row, and say what is malformed about it.
--
-- purpose: turn the text rows read by Polars into typed fields; name the first field that is
--          blank or unparsable (SPEC §4.1 MALFORMED) in Chinese, with its column and value.
-- inputs:  raw_logs  (settlement/ingest.py LogStream: the eight SPEC columns as text stripped of
--                     surrounding white space, file_no (input_files), source_row (1-based row)),
--          village_dim (the registry: a village found there is also looked up here)
-- outputs: parsed (a view: 20_validate.sql reads it in the same pass)
-- grain:   one row per input row
--
-- Blank text is NULL. Amounts and distances are DECIMAL(18,6): exact to 0.000001 元 / km (finer digits are
-- rounded half up by the cast). Times are local (Asia/Shanghai) TIMESTAMPs; '/' and 'T'
-- separators are accepted: 2025/03/05T14:30 reads as 2025-03-05 14:30:00.

CREATE OR REPLACE TEMP VIEW parsed AS
WITH stripped AS (
    SELECT
        file_no,
        source_row,
        NULLIF(waybill_no, '')    AS waybill_no,
        NULLIF(company, '')       AS company,
        NULLIF(delivered_at, '')  AS delivered_at,
        NULLIF(village_code, '')  AS village_code,
        NULLIF(distance_km, '')   AS distance_km,
        NULLIF(cost_yuan, '')     AS cost_yuan,
        NULLIF(revenue_yuan, '')  AS revenue_yuan,
        NULLIF(proof, '')         AS proof
    FROM raw_logs
),
typed AS (
    SELECT
        s.file_no,
        s.source_row,
        s.waybill_no,
        s.company,
        s.delivered_at                                 AS delivered_at_text,
        s.village_code,
        s.distance_km                                  AS distance_text,
        s.cost_yuan                                    AS cost_text,
        s.revenue_yuan                                 AS revenue_text,
        s.proof,
        -- the usual form first (fast); the others only for the rows it does not fit
        COALESCE(
            TRY_STRPTIME(s.delivered_at, '%Y-%m-%d %H:%M:%S'),
            TRY_STRPTIME(translate(s.delivered_at, '/T', '- '),
                         ['%Y-%m-%d %H:%M:%S', '%Y-%m-%d %H:%M', '%Y-%m-%d %H:%M:%S.%f'])
        )                                              AS delivered_at,
        TRY_CAST(s.distance_km  AS DECIMAL(18, 6))     AS distance_km,
        TRY_CAST(s.cost_yuan    AS DECIMAL(18, 6))     AS cost_yuan,
        TRY_CAST(s.revenue_yuan AS DECIMAL(18, 6))     AS revenue_yuan,
        -- the village in the registry (village_dim), if it is there
        v.village,
        v.county_code,
        v.league_code                                  AS village_league_code,
        v.urban_rural_code,
        v.rural_eligible
    FROM stripped s
    LEFT JOIN village_dim v ON v.village_code = s.village_code
)
SELECT
    *,
    CASE
        WHEN waybill_no IS NULL
            THEN '运单号(waybill_no)为空'
        WHEN length(waybill_no) > 64
            THEN '运单号(waybill_no)超过64个字符'
        WHEN company IS NULL
            THEN '快递企业(company)为空'
        WHEN delivered_at_text IS NULL
            THEN '签收时间(delivered_at)为空'
        WHEN delivered_at IS NULL
            THEN '签收时间(delivered_at)“' || left(delivered_at_text, 40)
                 || '”无法识别，应为 YYYY-MM-DD HH:MM[:SS] 的有效日期时间'
        WHEN village_code IS NULL
            THEN '嘎查村代码(village_code)为空'
        -- a code in the registry is 12 digits: the pattern is only tried on the others
        WHEN village IS NULL AND NOT regexp_full_match(village_code, '[0-9]{12}')
            THEN '嘎查村代码(village_code)“' || left(village_code, 40) || '”不是12位数字'
                 || CASE WHEN village_code ILIKE '%E+%' THEN '（疑被 Excel 转为科学计数法）' ELSE '' END
        WHEN distance_text IS NULL
            THEN '派送距离(distance_km)为空'
        WHEN distance_km IS NULL
            THEN '派送距离(distance_km)“' || left(distance_text, 40) || '”不是数字'
        WHEN cost_text IS NULL
            THEN '派送成本(cost_yuan)为空'
        WHEN cost_yuan IS NULL
            THEN '派送成本(cost_yuan)“' || left(cost_text, 40) || '”不是数字'
        WHEN revenue_text IS NOT NULL AND revenue_yuan IS NULL
            THEN '派费收入(revenue_yuan)“' || left(revenue_text, 40) || '”不是数字'
    END AS malformed_detail
FROM typed;
